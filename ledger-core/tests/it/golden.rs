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

use ledger_core::chain::ChainState;
use ledger_core::entry::{key_id, SignedRecord};
use ledger_core::record::*;
use ledger_core::types::*;
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
    });
    let records = [
        (&admin, key_body(KeyAction::Genesis, "admin", &admin, vec![Kind::Key])),
        (&admin, key_body(KeyAction::Register, "ci", &ci, vec![Kind::Change, Kind::Review])),
        (&ci, change),
    ];
    let mut chain = ChainState::new();
    let mut out = vec![];
    for (i, (key, body)) in records.into_iter().enumerate() {
        let record = Record { v: 1, time: T0, actor: Identity::new("github:octocat").unwrap(), links: vec![], body };
        let signed = SignedRecord::sign(&record, key).unwrap();
        let at = Timestamp(T0.0 + i as i64);
        let entry = chain.sequence(&chain.verify(&signed, at).unwrap()).unwrap();
        out.push(json!({
            "signer_seed_label": if std::ptr::eq(key, &admin) { "admin" } else { "ci" },
            "signer_public_key": hex::encode(key.verifying_key().to_bytes()),
            "signer_key_id": key_id(&key.verifying_key()).to_hex(),
            "record_cbor": hex::encode(&signed.record.0),
            "record_id": entry.record_id.to_hex(),
            "signature": hex::encode(signed.sig.0),
            "entry_cbor": hex::encode(&entry.bytes),
            "entry_hash": entry.hash.to_hex(),
        }));
    }
    json!({
        "about": "Golden vectors of Provenance Ledger format v1. Test keys: SigningKey::from_bytes(blake3::derive_key(\"provenance-ledger test key (not secret)\", label)). Regenerate: UPDATE_GOLDEN=1 cargo test -p ledger-core --test it golden",
        "entries": out,
    })
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
