//! Golden vectors: fixed-seed keys → records → CBOR → signatures → entries → entry hashes.
//!
//! The expected values live in `tests/golden/vectors.json`. After an intended format change,
//! regenerate them with:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p ledger-core --test it golden
//! ```
//!
//! and review the diff: any change there breaks every existing ledger.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use ledger_core::chain::ChainState;
use ledger_core::entry::{key_id, SignedRecord};
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_core::{merkle, note};
use serde_json::{json, Value};

use crate::chain::{key_body, test_key, T0};

fn vectors() -> Value {
    let admin = test_key("admin");
    let ci = test_key("ci");
    let change = Body::Change(Change {
        repo: RepoName::new("in-toto/attestation").unwrap(),
        number: Some(555),
        title: "spec: bump SVR predicate to v0.2".into(),
        description: None,
        author: Identity::new("arewm <arewm@users.noreply.github.com>").unwrap(),
        head_commit: CommitId::new("d98c09f13137fbb6ec27bc5b7aa77c418605431a").unwrap(),
        base_commit: None,
        commits: vec![],
        commits_total: 1,
        risk_tier: Some(Tier::T1),
        intent: None,
        source: None,
        paths: None,
        lines_added: None,
        lines_removed: None,
        labels: vec![],
    });
    let log = test_key("log");
    let mut log_body = key_body(KeyAction::Register, "log", &log, vec![]);
    if let Body::Key(b) = &mut log_body {
        b.role = Some(KeyRole::Log);
    }
    let review = Body::Review(Review {
        repo: RepoName::new("in-toto/attestation").unwrap(),
        reviewer: Identity::new("github:bo").unwrap(),
        verdict: Verdict::Approved,
        commit: CommitId::new("d98c09f13137fbb6ec27bc5b7aa77c418605431a").unwrap(),
        source: None,
    });
    let later = Body::Change(Change {
        repo: RepoName::new("in-toto/attestation").unwrap(),
        number: Some(556),
        title: "docs: link the SVR predicate".into(),
        description: Some("Follow-up to #555.".into()),
        author: Identity::new("github:bo").unwrap(),
        head_commit: CommitId::new("0f8c3a4e9b1d2c5f6a7b8c9d0e1f2a3b4c5d6e7f").unwrap(),
        base_commit: Some(CommitId::new("d98c09f13137fbb6ec27bc5b7aa77c418605431a").unwrap()),
        commits: vec![],
        commits_total: 1,
        risk_tier: Some(Tier::T0),
        intent: None,
        source: None,
        paths: None,
        lines_added: None,
        lines_removed: None,
        labels: vec![],
    });
    let records = [
        (&admin, key_body(KeyAction::Genesis, "admin", &admin, vec![Kind::Key])),
        (&admin, key_body(KeyAction::Register, "ci", &ci, vec![Kind::Change, Kind::Review])),
        (&ci, change),
        (&admin, log_body),
        (&ci, review),
        (&ci, later),
    ];
    let label = |key: &SigningKey| -> &'static str {
        if std::ptr::eq(key, &admin) {
            "admin"
        } else {
            "ci"
        }
    };
    let mut chain = ChainState::new();
    let mut out = vec![];
    let mut entries = vec![];
    for (i, (key, body)) in records.into_iter().enumerate() {
        let record = Record { v: 1, time: T0, actor: Identity::new("github:octocat").unwrap(), links: vec![], body };
        let signed = SignedRecord::sign(&record, key).unwrap();
        let at = Timestamp(T0.0 + i as i64);
        let entry = chain.sequence(&chain.verify(&signed, at).unwrap()).unwrap();
        entries.push(entry.bytes.clone());
        out.push(json!({
            "signer_seed_label": label(key),
            "signer_public_key": hex::encode(key.verifying_key().to_bytes()),
            "signer_key_id": key_id(&key.verifying_key()).to_hex(),
            "record_cbor": hex::encode(&signed.record.0),
            "record_id": entry.record_id.to_hex(),
            "signature": hex::encode(signed.sig.0),
            "entry_cbor": hex::encode(&entry.bytes),
            "entry_hash": entry.hash.to_hex(),
        }));
    }
    let bundle = golden_bundle(&entries, &log);
    json!({
        "about": "Golden vectors of Provenance Ledger format v1. Test keys: SigningKey::from_bytes(blake3::derive_key(\"provenance-ledger test key (not secret)\", label)). Regenerate: UPDATE_GOLDEN=1 cargo test -p ledger-core --test it golden",
        "entries": out,
        "log_key": {
            "seed_label": "log",
            "public_key": hex::encode(log.verifying_key().to_bytes()),
            "key_id": key_id(&log.verifying_key()).to_hex(),
            "verifier_key": note::verifier_key(GOLDEN_ORIGIN, &log.verifying_key()).unwrap(),
        },
        "bundle_file": "bundle.jsonl",
        "bundle_blake3": blake3::hash(bundle.as_bytes()).to_hex().to_string(),
    })
}

/// The origin (and note signer name) of the golden bundle's checkpoint.
const GOLDEN_ORIGIN: &str = "ledger.example/golden";

/// A v2 bundle of the golden entries: the time range [T0+4, T0+5) (entry 4), with the key
/// entries 0, 1, 3 and the boundary entries 3 and 5, in the runs [0, 2) and [3, 6), against a
/// checkpoint of the 6 entries signed by the log key. Built from the primitives alone, as an
/// outside implementation would.
fn golden_bundle(entries: &[Vec<u8>], log: &SigningKey) -> String {
    use ledger_core::bundle::{BundleWriter, Selection};
    let leaves: Vec<merkle::Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let size = leaves.len() as u64;
    let head = ledger_core::entry::entry_hash(&entries[entries.len() - 1]);
    let cp = note::Checkpoint {
        origin: GOLDEN_ORIGIN.into(),
        size,
        root: merkle::root(&leaves),
        extensions: vec![format!("blake3-head {} {head}", size - 1)],
    };
    let signed = note::sign(&cp.to_text(), GOLDEN_ORIGIN, log).unwrap();
    let vkey = note::verifier_key(GOLDEN_ORIGIN, &log.verifying_key()).unwrap();
    let selection = Selection::Time { since: Some(Timestamp(T0.0 + 4)), until: Some(Timestamp(T0.0 + 5)) };
    let (mut w, header) = BundleWriter::new(selection, &signed, &vkey).unwrap();
    let mut out = header;
    for (a, b) in [(0u64, 2u64), (3, 6)] {
        let (left, right) = merkle::range_proof_from(&mut merkle::Leaves(&leaves), a, b, size).unwrap();
        out.push_str(&w.run(a, b, &left, &right));
        for seq in a..b {
            out.push_str(&w.entry(seq, &entries[seq as usize], seq == 4));
        }
    }
    let manifest = note::sign(&w.manifest_text(), GOLDEN_ORIGIN, log).unwrap();
    out.push_str(&BundleWriter::manifest_line(&manifest));
    out
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn the_golden_bundle_is_stable_and_verifies_with_the_log_key_only() {
    use ledger_core::bundle::{BundleVerifier, Completeness};
    let v = vectors();
    let entries: Vec<Vec<u8>> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hex::decode(e["entry_cbor"].as_str().unwrap()).unwrap())
        .collect();
    let bundle = golden_bundle(&entries, &test_key("log"));
    let path = golden_dir().join("bundle.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &bundle).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bundle, "bundle format drift; regenerate with UPDATE_GOLDEN=1");
    let check = |key: &SigningKey| {
        let mut lines = bundle.as_bytes().split_inclusive(|b| *b == b'\n');
        let mut verifier = BundleVerifier::start(lines.next().unwrap(), GOLDEN_ORIGIN, &key.verifying_key())?;
        for l in lines {
            verifier.line(l)?;
        }
        verifier.end()
    };
    let s = check(&test_key("log")).unwrap();
    assert_eq!((s.entries, s.selected, s.completeness), (5, 1, Completeness::Proven));
    assert!(check(&test_key("admin")).is_ok(), "the admin key registered the log key");
    assert!(check(&test_key("ci")).is_err());
}

/// docs/FORMAT.md carries every golden byte: each entry's hex, the keys, and the bundle.
#[test]
fn format_md_carries_the_golden_vectors() {
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/FORMAT.md")).unwrap();
    // Long hex strings are wrapped in the document: compare without whitespace.
    let flat: String = doc.chars().filter(|c| !c.is_whitespace()).collect();
    let v = vectors();
    for e in v["entries"].as_array().unwrap() {
        for field in ["entry_cbor", "entry_hash", "signer_public_key", "record_id", "signature"] {
            let hex = e[field].as_str().unwrap();
            assert!(flat.contains(hex), "docs/FORMAT.md lacks {field} {}…", &hex[..16]);
        }
    }
    assert!(flat.contains(v["log_key"]["public_key"].as_str().unwrap()));
    assert!(flat.contains(v["log_key"]["verifier_key"].as_str().unwrap()));
    let bundle = std::fs::read_to_string(golden_dir().join("bundle.jsonl")).unwrap();
    assert!(doc.contains(&bundle), "docs/FORMAT.md lacks the golden bundle verbatim");
}

#[test]
fn golden_vectors_match() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/vectors.json");
    let actual = vectors();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate with UPDATE_GOLDEN=1", path.display()));
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(actual, expected, "format drift; if intended, regenerate with UPDATE_GOLDEN=1 and review the diff");
}

#[test]
fn golden_entries_verify_from_their_bytes_alone() {
    // Replaying the stored hex (not the in-memory values) must reproduce the hashes.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/vectors.json");
    let Ok(text) = std::fs::read_to_string(&path) else { panic!("missing {}", path.display()) };
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut chain = ChainState::new();
    for e in v["entries"].as_array().unwrap() {
        let bytes = hex::decode(e["entry_cbor"].as_str().unwrap()).unwrap();
        let s = chain.replay(&bytes).unwrap();
        assert_eq!(s.hash.to_hex(), e["entry_hash"].as_str().unwrap());
        assert_eq!(hex::encode(&s.entry.record.0), e["record_cbor"].as_str().unwrap());
    }
}
