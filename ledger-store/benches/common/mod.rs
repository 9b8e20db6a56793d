//! Helpers shared by the benches: fixed-seed test keys and record builders.
#![allow(dead_code, clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use ledger_core::record::*;
use ledger_core::types::*;

/// Test keys from fixed seeds; not secret.
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("provenance-ledger test key (not secret)", label.as_bytes()))
}

/// A record with a fixed time and actor.
pub fn rec(body: Body) -> Record {
    Record { v: 1, time: Timestamp(1_764_000_000_000), actor: Identity::new("bench:x").unwrap(), links: vec![], body }
}

/// A `key` record registering `k` under `name`.
pub fn key_record(action: KeyAction, name: &str, k: &SigningKey, kinds: Vec<Kind>) -> Record {
    rec(Body::Key(KeyBody {
        action,
        name: Token::new(name).unwrap(),
        public_key: PublicKeyBytes(k.verifying_key().to_bytes()),
        kinds,
        not_before: Timestamp(0),
        not_after: None,
        replaces: None,
    }))
}

/// A distinct `evidence` record number `i` whose check name is `pad` bytes long.
pub fn evidence(repo: &str, i: u64, pad: usize) -> Record {
    rec(Body::Evidence(Evidence {
        repo: RepoName::new(repo).unwrap(),
        commit: CommitId::new(format!("{i:040x}")).unwrap(),
        check: format!("check-{i}-{}", "x".repeat(pad)),
        check_kind: CheckKind::Unit,
        result: CheckResult::Pass,
        artifact: None,
        predicate_type: None,
        url: None,
        signature: None,
        source: None,
    }))
}
