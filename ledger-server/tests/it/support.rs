//! Helpers for the ledger and daemon tests: a ledger on disk with test keys, record builders, and a
//! `ledgerd` child process that is always killed when its handle is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger_core::entry::SignedRecord;
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_client::LedgerClient;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Backend, DiskStore};
use tonic::transport::{Channel, Endpoint};

/// Entries a fresh [`Fixture`] holds: the admin genesis and the `ci` key registration.
pub const SETUP_ENTRIES: u64 = 2;

/// How long a daemon may take to start or to stop.
const PATIENCE: Duration = Duration::from_secs(30);

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
    }))
}

/// A 40-hex commit id derived from `label`, so every label gives a distinct record.
fn commit_for(label: &str) -> CommitId {
    CommitId::new(blake3::hash(label.as_bytes()).to_hex()[..40].to_string()).unwrap()
}

/// An `evidence` record with a `check` name; distinct for every `label`.
pub fn evidence_with_check(label: &str, check: String) -> Record {
    rec(Body::Evidence(Evidence {
        repo: RepoName::new("o/r").unwrap(),
        commit: commit_for(label),
        check,
        check_kind: CheckKind::Unit,
        result: CheckResult::Pass,
        artifact: None,
        predicate_type: None,
        url: None,
        signature: None,
        source: None,
    }))
}

/// An `evidence` record, distinct for every `label`.
pub fn evidence(label: &str) -> Record {
    evidence_with_check(label, "unit-tests".into())
}

/// A `policy` record (a kind the `ci` key may not append).
pub fn policy(name: &str) -> Record {
    rec(Body::Policy(Policy { name: Token::new(name).unwrap(), version: 1, document: "[tiers]\n".into() }))
}

/// `record` signed by `key`.
pub fn signed(record: &Record, key: &SigningKey) -> SignedRecord {
    SignedRecord::sign(record, key).unwrap()
}

/// An append request for a signed record.
pub fn req(s: &SignedRecord) -> pb::AppendRequest {
    pb::AppendRequest { record: Some(pb::SignedRecord::from(s)), prove: false }
}

/// An append request for `evidence(label)` signed by the `ci` key.
pub fn ci_req(label: &str) -> pb::AppendRequest {
    req(&signed(&evidence(label), &key("ci")))
}

/// The record id the ledger gives a request's record bytes.
pub fn record_id_of(r: &pb::AppendRequest) -> Vec<u8> {
    ledger_core::entry::record_id(&r.record.as_ref().unwrap().record).0.to_vec()
}

/// A temporary directory holding a ledger (in `db/`) and the daemon's log (`ledgerd.log`).
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

    /// The temporary root (for token files and the like).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("ledgerd.log")
    }
}

/// A running `ledgerd` child process; killed (SIGKILL) when dropped if still running.
pub struct Daemon {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    /// Starts `ledgerd` on the fixture's ledger and waits until it listens.
    pub fn start(fx: &Fixture) -> Daemon {
        Daemon::start_with(fx, &[])
    }

    /// Starts `ledgerd` with extra arguments and waits until it listens.
    pub fn start_with(fx: &Fixture, extra: &[&str]) -> Daemon {
        let log = fx.log();
        let stderr = File::options().create(true).append(true).open(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledgerd"))
            .arg("--db")
            .arg(fx.db())
            .args(["--listen", "127.0.0.1:0", "--log-filter", "warn"])
            .args(extra)
            .env_remove("LEDGER_READ_TOKEN_FILE")
            .env_remove("LEDGER_TLS_CERT")
            .env_remove("LEDGER_TLS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        // A thread reads stdout to its end, so the child never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut daemon = Daemon { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), log };
        match rx.recv_timeout(PATIENCE) {
            Ok(addr) => daemon.addr = addr.parse().unwrap(),
            Err(_) => {
                let status = daemon.child.try_wait().unwrap();
                panic!("ledgerd did not report its address (exit status {status:?}); log:\n{}", daemon.log_text());
            }
        }
        daemon
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon wrote to stderr so far (all runs on this fixture).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reap the process.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "a SIGKILLed process cannot exit cleanly: {status:?}");
    }

    /// Sends SIGTERM (through `kill(1)`), without waiting.
    pub fn send_term(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -TERM failed: {ok:?}");
    }

    /// Waits (blocking) until the process exits, failing the test after a timeout.
    pub fn wait_exit(mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "ledgerd did not exit in {PATIENCE:?}; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn term(self) -> ExitStatus {
        self.send_term();
        self.wait_exit()
    }

    /// A channel with its own connection.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
    }

    /// A client with its own connection.
    pub async fn client(&self) -> LedgerClient<Channel> {
        LedgerClient::new(self.channel().await)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- ledgerd log ---\n{}--- end of ledgerd log ---", self.log_text());
        }
    }
}

/// The number of entries, from `Head`.
pub async fn entries(c: &mut LedgerClient<Channel>) -> u64 {
    c.head(pb::HeadRequest {}).await.unwrap().into_inner().entries
}

/// `Verify`, asserting it passes; returns the entry count.
pub async fn verify_ok(c: &mut LedgerClient<Channel>) -> u64 {
    let v = c.verify(pb::VerifyRequest {}).await.unwrap().into_inner();
    assert!(v.ok, "verify failed at #{}: {}", v.bad_seq, v.reason);
    let head = c.head(pb::HeadRequest {}).await.unwrap().into_inner();
    assert_eq!((v.entries, &v.head), (head.entries, &head.head), "verify and head disagree");
    v.entries
}

/// Asserts that the entry at `seq` exists and its stored bytes hash to `hash`.
pub async fn assert_entry(c: &mut LedgerClient<Channel>, seq: u64, hash: &[u8]) {
    let e = c
        .get_entry(pb::GetEntryRequest { by: Some(pb::get_entry_request::By::Seq(seq)) })
        .await
        .unwrap_or_else(|s| panic!("entry #{seq}: {s}"))
        .into_inner();
    assert_eq!(e.seq, seq);
    assert_eq!(ledger_core::entry::entry_hash(&e.entry).0.as_slice(), hash, "entry #{seq}: stored bytes' hash");
    assert_eq!(e.entry_hash, hash, "entry #{seq}: reported hash");
}

/// Asserts that every acknowledged (seq, hash) is stored with that hash: all of them through
/// one `Query` over their seq range (whose entries must be contiguous and hash to what the
/// server reports), and a sample (first, last, every 97th) through `GetEntry`.
pub async fn assert_stored(c: &mut LedgerClient<Channel>, acked: &[(u64, Vec<u8>)]) {
    let lo = acked.iter().map(|(s, _)| *s).min().unwrap();
    let hi = acked.iter().map(|(s, _)| *s).max().unwrap();
    let q = pb::QueryRequest { from_seq: Some(lo), to_seq: Some(hi), ..Default::default() };
    let mut stream = c.query(q).await.unwrap().into_inner();
    let mut stored = std::collections::HashMap::new();
    let mut next = lo;
    while let Some(e) = stream.message().await.unwrap() {
        assert_eq!(e.seq, next, "query entries are contiguous and ascending");
        assert_eq!(ledger_core::entry::entry_hash(&e.entry).0.as_slice(), e.entry_hash, "entry #{}", e.seq);
        stored.insert(e.seq, e.entry_hash);
        next += 1;
    }
    assert_eq!(next, hi + 1, "query returned #{lo}..=#{hi}");
    for (seq, hash) in acked {
        assert_eq!(stored.get(seq), Some(hash), "acknowledged entry #{seq} is stored with its hash");
    }
    let last = acked.len() - 1;
    for (i, (seq, hash)) in acked.iter().enumerate() {
        if i == 0 || i == last || i % 97 == 0 {
            assert_entry(c, *seq, hash).await;
        }
    }
}
