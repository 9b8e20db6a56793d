//! Helpers for tests and benchmarks (feature `testkit`): test keys from fixed seeds, record
//! builders, and a ledger in a temporary directory. Not for production use: the keys are
//! public and every helper panics on failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::new_without_default)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger_core::entry::SignedRecord;
use ledger_core::record::*;
use ledger_core::types::*;

use crate::clock::SystemClock;
use crate::ledger::Ledger;
use crate::store::{Backend, DiskStore};

/// Entries a fresh [`Fixture`] holds: the admin genesis and the `ci` key registration.
pub const SETUP_ENTRIES: u64 = 2;

/// Test keys from fixed seeds; not secret.
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("provenance-ledger test key (not secret)", label.as_bytes()))
}

/// A record with a fixed time (2025-11-24) and actor.
pub fn rec(body: Body) -> Record {
    Record {
        v: 1,
        time: Timestamp(1_764_000_000_000),
        actor: Identity::new("github:octocat").unwrap(),
        links: vec![],
        body,
    }
}

/// A `key` record for `k`, valid from the epoch, never expiring.
pub fn key_rec(action: KeyAction, name: &str, k: &SigningKey, kinds: Vec<Kind>) -> Record {
    rec(Body::Key(KeyBody {
        action,
        name: Token::new(name).unwrap(),
        public_key: PublicKeyBytes(k.verifying_key().to_bytes()),
        kinds,
        not_before: Timestamp(0),
        not_after: None,
        replaces: None,
        role: None,
        handover: None,
    }))
}

/// A 40-hex commit id derived from `label`, so every label gives a distinct record.
fn commit_for(label: &str) -> CommitId {
    CommitId::new(blake3::hash(label.as_bytes()).to_hex()[..40].to_string()).unwrap()
}

/// A passing unit-test `evidence` record about `commit` in `repo`.
fn passing_check(repo: &str, commit: CommitId, check: String) -> Record {
    rec(Body::Evidence(Evidence {
        repo: RepoName::new(repo).unwrap(),
        commit,
        check,
        check_kind: CheckKind::Unit,
        result: CheckResult::Pass,
        artifact: None,
        predicate_type: None,
        url: None,
        signature: None,
        source: None,
        builder: None,
    }))
}

/// An `evidence` record with a `check` name; distinct for every `label`.
pub fn evidence_with_check(label: &str, check: String) -> Record {
    passing_check("o/r", commit_for(label), check)
}

/// An `evidence` record, distinct for every `label`.
pub fn evidence(label: &str) -> Record {
    evidence_with_check(label, "unit-tests".into())
}

/// A distinct `evidence` record number `i` in `repo` whose check name is about `pad` bytes
/// long (benchmarks size their records with it).
pub fn numbered_evidence(repo: &str, i: u64, pad: usize) -> Record {
    passing_check(repo, CommitId::new(format!("{i:040x}")).unwrap(), format!("check-{i}-{}", "x".repeat(pad)))
}

/// A `policy` record (a kind the `ci` key may not append).
pub fn policy(name: &str) -> Record {
    rec(Body::Policy(Policy {
        name: Token::new(name).unwrap(),
        version: 1,
        document: "[tiers]\n".into(),
        digest: None,
    }))
}

/// `record` signed by `key`.
pub fn signed(record: &Record, key: &SigningKey) -> SignedRecord {
    SignedRecord::sign(record, key).unwrap()
}

/// A temporary directory holding a ledger (in `db/`).
/// The ledger has the admin genesis and a `ci` key allowed `evidence` and `review`.
pub struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    /// Creates the ledger through the library (default storage backend), then closes it.
    pub fn new() -> Fixture {
        Fixture::with_backend(Backend::default())
    }

    /// [`Fixture::new`] with the given storage backend.
    pub fn with_backend(backend: Backend) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let admin = key("admin");
        let genesis = signed(&key_rec(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin);
        let ledger =
            Ledger::create(DiskStore::create_with(&db, backend).unwrap(), &genesis, Arc::new(SystemClock)).unwrap();
        let ci = key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Evidence, Kind::Review]);
        ledger.append(&[signed(&ci, &admin)]).unwrap();
        assert_eq!(ledger.len(), SETUP_ENTRIES);
        drop(ledger);
        Fixture { root }
    }

    /// The ledger directory.
    pub fn db(&self) -> PathBuf {
        self.root.path().join("db")
    }

    /// The temporary directory holding `db/` (for token files, logs and the like).
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// Opens a store, waiting while a handle dropped a moment ago in this process still holds the
/// directory's lock.
pub fn open_store(dir: &Path) -> DiskStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match DiskStore::open(dir) {
            Ok(s) => return s,
            Err(crate::Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("opening the store at {}: {e}", dir.display()),
        }
    }
}
