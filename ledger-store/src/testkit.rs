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

/// A temporary directory holding a ledger (in `db/`, or in a fresh PostgreSQL database).
/// The ledger has the admin genesis and a `ci` key allowed `evidence` and `review`.
pub struct Fixture {
    root: tempfile::TempDir,
    /// The database's URL, for a PostgreSQL fixture.
    url: Option<String>,
}

/// The environment variable naming the PostgreSQL server the tests may use: the URL of a
/// database from which the test user can `CREATE DATABASE`
/// (`postgresql://ledger@localhost/postgres?host=/tmp/pg`).
pub const PG_ENV: &str = "LEDGER_TEST_PG";

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let host = before_query.split_once('/').map_or(before_query, |(h, _)| h);
    match query {
        Some(q) => format!("{scheme}://{host}/{name}?{q}"),
        None => format!("{scheme}://{host}/{name}"),
    }
}

/// A fresh, empty PostgreSQL database for one test: its URL. `None` (with a notice) when
/// [`PG_ENV`] is not set; a panic when `CI` is set and it is not, since CI runs every store
/// test on PostgreSQL too.
pub fn pg_database() -> Option<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Ok(admin) = std::env::var(PG_ENV) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{PG_ENV} is not set (CI is set): .ci/run starts a PostgreSQL server"
        );
        eprintln!("notice: {PG_ENV} is not set; the PostgreSQL cases are skipped");
        return None;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("ledger_t{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV}: cannot connect: {e}"));
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    });
    Some(with_database(&admin, &name))
}

/// The backends the store tests run on: fjall, sled, and PostgreSQL when [`PG_ENV`] names a
/// server (required when `CI` is set).
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Fjall, Backend::Sled];
    if std::env::var_os(PG_ENV).is_some() || std::env::var_os("CI").is_some() {
        b.push(Backend::Postgres);
    }
    b
}

/// A new store kept by `backend`: in `dir` for an embedded one, in a fresh database for
/// PostgreSQL. Its location, for [`open_store`], and the store.
pub fn create_store(dir: &Path, backend: Backend) -> (PathBuf, DiskStore) {
    match backend {
        Backend::Postgres => {
            let url = pg_database().expect("a PostgreSQL server for the PostgreSQL case");
            let store = DiskStore::create_url(&url).unwrap();
            (PathBuf::from(url), store)
        }
        _ => (dir.to_path_buf(), DiskStore::create_with(dir, backend).unwrap()),
    }
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
        let (location, store) = create_store(&db, backend);
        let url = (backend == Backend::Postgres).then(|| location.display().to_string());
        let ledger = Ledger::create(store, &genesis, Arc::new(SystemClock)).unwrap();
        let ci = key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Evidence, Kind::Review]);
        ledger.append(&[signed(&ci, &admin)]).unwrap();
        assert_eq!(ledger.len(), SETUP_ENTRIES);
        drop(ledger);
        Fixture { root, url }
    }

    /// Where the ledger is: its directory, or (PostgreSQL) its database's URL, which
    /// [`open_store`] opens alike.
    pub fn db(&self) -> PathBuf {
        match &self.url {
            Some(url) => PathBuf::from(url),
            None => self.root.path().join("db"),
        }
    }

    /// The temporary directory holding `db/` (for token files, logs and the like).
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// Opens a store (a directory, or a PostgreSQL URL), waiting while a handle dropped a moment ago
/// in this process still holds its lock.
pub fn open_store(dir: &Path) -> DiskStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match DiskStore::open_location(dir) {
            Ok(s) => return s,
            Err(crate::Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("opening the store at {}: {e}", dir.display()),
        }
    }
}
