//! `ledger verify --from-checkpoint FILE` through the real binary: what was appended since a
//! signed checkpoint is verified; a checkpoint whose signature does not verify is an error
//! (exit 2); a history rewritten under the checkpoint and an altered new entry are tampering
//! (exit 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Run;
use serde_json::Value;

/// A ledger with a history, a signed checkpoint of it in `cp.txt`, then more history.
fn ledger_with_checkpoint() -> (Run, u64, u64) {
    let r = Run::new();
    r.ledger(&["bench", "history", "--changes", "40", "--until", "2026-03-01"], 0);
    let (cp, _) = r.ledger(&["checkpoint", "--json"], 0);
    let cp: Value = serde_json::from_str(&cp).unwrap();
    std::fs::write(r.dir.path().join("cp.txt"), cp["checkpoint"].as_str().unwrap()).unwrap();
    r.ledger(&["bench", "history", "--changes", "40", "--until", "2026-06-01"], 0);
    let (head, _) = r.ledger(&["checkpoint", "--json"], 0);
    let head: Value = serde_json::from_str(&head).unwrap();
    (r, cp["tree_size"].as_u64().unwrap(), head["tree_size"].as_u64().unwrap())
}

#[test]
fn the_entries_since_a_checkpoint_verify_and_a_bad_checkpoint_is_refused() {
    let (r, from, size) = ledger_with_checkpoint();
    assert!(size > from + 100, "the second history was appended ({from} → {size})");
    let (out, _) = r.ledger(&["verify", "--from-checkpoint", "cp.txt", "--json"], 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["from_tree_size"].as_u64(), v["entries"].as_u64()),
        (Some(true), Some(from), Some(size))
    );
    let (out, _) = r.ledger(&["verify", "--from-checkpoint", "cp.txt"], 0);
    assert!(
        out.contains(&format!("{} entries appended since the checkpoint of tree size {from}", size - from)),
        "{out}"
    );
    // Its own verifier key works too; another key's does not.
    let (vk, _) = r.ledger(&["log-key"], 0);
    r.ledger(&["verify", "--from-checkpoint", "cp.txt", "--verifier-key", vk.trim()], 0);
    let other = "other+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (_, err) = r.ledger(&["verify", "--from-checkpoint", "cp.txt", "--verifier-key", other], 2);
    assert!(err.contains("cp.txt"), "{err}");
    // An edited checkpoint (another tree size) does not verify: an error, not a verdict.
    let text = std::fs::read_to_string(r.dir.path().join("cp.txt")).unwrap();
    let edited = text.replacen(&format!("\n{from}\n"), &format!("\n{}\n", from - 1), 1);
    assert_ne!(edited, text);
    std::fs::write(r.dir.path().join("edited.txt"), edited).unwrap();
    let (_, err) = r.ledger(&["verify", "--from-checkpoint", "edited.txt"], 2);
    assert!(err.contains("not signed by this ledger's log key"), "{err}");
    let (_, err) = r.ledger(&["verify", "--from-checkpoint", "missing.txt"], 2);
    assert!(err.contains("missing.txt"), "{err}");
}

#[test]
fn a_rewritten_history_under_the_checkpoint_and_an_altered_new_entry_are_tampering() {
    let (r, from, _) = ledger_with_checkpoint();
    let db = r.dir.path().join("ledger-data");
    // The first stored Merkle tile rewritten: the tree no longer hashes to the pinned root.
    {
        let store = ledger_store::store::DiskStore::open(&db).unwrap();
        let mut k = vec![b't', 0];
        k.extend_from_slice(&0u64.to_be_bytes());
        let mut tile = store.raw().get(&k).unwrap().unwrap();
        tile[100] ^= 1;
        store.raw().insert(&k, &tile).unwrap();
    }
    let (out, _) = r.ledger(&["verify", "--from-checkpoint", "cp.txt", "--json"], 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["ok"].as_bool(), v["seq"].as_u64()), (Some(false), Some(from - 1)), "{out}");

    let (r, from, size) = ledger_with_checkpoint();
    let db = r.dir.path().join("ledger-data");
    let victim = (from + size) / 2;
    {
        let store = ledger_store::store::DiskStore::open(&db).unwrap();
        let mut k = vec![b'e'];
        k.extend_from_slice(&victim.to_be_bytes());
        let mut v = store.raw().get(&k).unwrap().unwrap();
        let at = v.len() / 2;
        v[at] ^= 0x01;
        store.raw().insert(&k, &v).unwrap();
    }
    let (out, _) = r.ledger(&["verify", "--from-checkpoint", "cp.txt"], 1);
    assert!(out.contains("TAMPERED: entry #"), "{out}");
    let named: u64 = out.split('#').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((victim.saturating_sub(1)..=victim + 1).contains(&named), "named #{named}, altered #{victim}: {out}");
}
