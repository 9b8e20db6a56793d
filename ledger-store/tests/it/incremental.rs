//! Incremental verification (`Ledger::verify_since`): from trusted tree heads at and around
//! tile boundaries, on every backend; and the attacks it must catch: a rewritten history, a
//! tree head the ledger never had, a truncation, an altered new entry, a lost index key, an
//! altered tile over the new leaves.

use std::sync::Arc;

use ledger_core::types::Seq;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::{Ledger, TrustedHead};
use ledger_store::store::{Backend, DiskStore, IndexKey};
use ledger_store::Error;

use crate::support::{evidence, key, signed, Fixture};

/// Trusted heads are taken at these sizes (across the 256-leaf tiles), the ledger ends at 700.
const MARKS: [u64; 7] = [3, 255, 256, 257, 300, 512, 700];

/// A ledger of 700 entries, and the tree head at each of [`MARKS`].
fn build(backend: Backend) -> (Fixture, Vec<TrustedHead>) {
    let fx = Fixture::with_backend(backend);
    let l = Ledger::open(crate::support::open_store(&fx.db()), Arc::new(SystemClock)).unwrap();
    let ci = key("ci");
    let mut heads = vec![];
    for mark in MARKS {
        let records: Vec<_> = (l.len()..mark).map(|s| signed(&evidence(&format!("inc-{s}")), &ci)).collect();
        if !records.is_empty() {
            l.append(&records).unwrap();
        }
        let (size, root) = l.tree_head();
        assert_eq!(size, mark);
        heads.push(TrustedHead { size, root, chain_head: Some(l.head().1) });
    }
    (fx, heads)
}

fn open(fx: &Fixture) -> Ledger<DiskStore> {
    Ledger::open(crate::support::open_store(&fx.db()), Arc::new(SystemClock)).unwrap()
}

fn tampered_at(r: ledger_store::Result<ledger_store::ledger::IncrementalSummary>) -> (u64, String) {
    match r {
        Err(e @ Error::Tampered { seq, .. }) => (seq.0, e.tamper_detail().unwrap_or_default()),
        Err(e) => panic!("expected tampering, got the error {e}"),
        Ok(s) => panic!("expected tampering, the ledger verified: {s:?}"),
    }
}

#[test]
fn from_every_trusted_head_the_rest_verifies_on_every_backend() {
    for backend in crate::support::backends() {
        let (fx, heads) = build(backend);
        let l = open(&fx);
        let end = l.tree_head();
        for h in &heads {
            let mut seen = 0;
            let s = l.verify_since(h, |n| seen = n).unwrap_or_else(|e| panic!("{backend:?} from {}: {e}", h.size));
            assert_eq!((s.from, s.summary.entries, s.root), (h.size, end.0, end.1), "{backend:?} from {}", h.size);
            assert_eq!(s.summary.head, l.head().1);
            assert_eq!(seen, end.0, "progress reaches the head");
        }
        // A checkpoint without the chain-head line is enough.
        let bare = TrustedHead { chain_head: None, ..heads[2].clone() };
        assert_eq!(l.verify_since(&bare, |_| {}).unwrap().summary.entries, end.0);
    }
}

#[test]
fn a_tree_head_the_ledger_never_had_or_a_shorter_ledger_is_caught() {
    let (fx, heads) = build(Backend::default());
    let l = open(&fx);
    let h = &heads[4];
    let mut forged = h.clone();
    forged.root[0] ^= 1;
    let (seq, why) = tampered_at(l.verify_since(&forged, |_| {}));
    assert_eq!(seq, h.size - 1);
    assert!(why.contains("does not hash to the trusted checkpoint's root"), "{why}");
    let mut other_chain = h.clone();
    other_chain.chain_head = Some(ledger_core::types::EntryHash([7; 32]));
    let (seq, why) = tampered_at(l.verify_since(&other_chain, |_| {}));
    assert_eq!(seq, h.size - 1);
    assert!(why.contains("chain head"), "{why}");
    let beyond = TrustedHead { size: 800, ..h.clone() };
    let (_, why) = tampered_at(l.verify_since(&beyond, |_| {}));
    assert!(why.contains("fewer than the 800"), "{why}");
}

#[test]
fn a_rewritten_history_before_the_trusted_head_is_caught() {
    let (fx, heads) = build(Backend::default());
    // The first full tile (leaves 0..256) replaced: the tree at 300 no longer hashes to the root.
    let store = crate::support::open_store(&fx.db());
    let mut k = vec![b't', 0];
    k.extend_from_slice(&0u64.to_be_bytes());
    let mut tile = store.raw().get(&k).unwrap().expect("the first tile is stored");
    tile[40] ^= 1;
    store.raw().insert(&k, &tile).unwrap();
    drop(store);
    let l = open(&fx);
    let (seq, why) = tampered_at(l.verify_since(&heads[4], |_| {}));
    assert_eq!(seq, 299);
    assert!(why.contains("rewritten"), "{why}");
}

#[test]
fn an_altered_new_entry_a_lost_index_key_and_an_altered_new_tile_are_caught() {
    // An entry after the trusted head, one byte of its record changed.
    let (fx, heads) = build(Backend::default());
    let store = crate::support::open_store(&fx.db());
    let mut k = vec![b'e'];
    k.extend_from_slice(&400u64.to_be_bytes());
    let mut v = store.raw().get(&k).unwrap().unwrap();
    let at = v.len() - 10;
    v[at] ^= 0x20;
    store.raw().insert(&k, &v).unwrap();
    drop(store);
    let (seq, _) = tampered_at(open(&fx).verify_since(&heads[4], |_| {}));
    assert!((399..=401).contains(&seq), "named #{seq}");

    // A new entry's record id key removed from its index.
    let (fx, heads) = build(Backend::default());
    let l = open(&fx);
    let gone = l.get(Seq(450)).unwrap().unwrap();
    drop(l);
    let store = crate::support::open_store(&fx.db());
    let id = ledger_core::entry::record_id(&gone.entry.record.0);
    store.raw().remove_index(&IndexKey::Record(id), Seq(450)).unwrap();
    drop(store);
    let (seq, why) = tampered_at(open(&fx).verify_since(&heads[4], |_| {}));
    assert_eq!(seq, 450);
    assert!(why.contains("record index lacks"), "{why}");

    // The second full tile (leaves 256..512), which the new leaves after 300 complete.
    let (fx, heads) = build(Backend::default());
    let store = crate::support::open_store(&fx.db());
    let mut k = vec![b't', 0];
    k.extend_from_slice(&1u64.to_be_bytes());
    let mut tile = store.raw().get(&k).unwrap().expect("the second tile is stored");
    let last = tile.len() - 1;
    tile[last] ^= 1;
    store.raw().insert(&k, &tile).unwrap();
    drop(store);
    let (seq, why) = tampered_at(open(&fx).verify_since(&heads[4], |_| {}));
    assert_eq!(seq, 256);
    assert!(why.contains("tile 0/1"), "{why}");
}
