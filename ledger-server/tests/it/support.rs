//! Helpers for the daemon tests: the ledger fixtures and record builders of
//! `ledger_store::testkit`, append requests, and a `ledgerd` child process that is always
//! killed when its handle is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ledger_core::entry::SignedRecord;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_client::LedgerClient;
use tonic::transport::{Channel, Endpoint};

/// How long a daemon may take to start or to stop.
const PATIENCE: Duration = Duration::from_secs(30);

pub use ledger_store::testkit::{evidence, evidence_with_check, key, policy, signed, Fixture, SETUP_ENTRIES};

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

/// A running `ledgerd` child process; killed (SIGKILL) when dropped if still running.
pub struct Daemon {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The webhook receiver's address, when started with `--webhook-listen`.
    pub hooks: Option<SocketAddr>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `ledgerd` on the fixture's ledger and waits until it listens.
    pub fn start(fx: &Fixture) -> Daemon {
        Daemon::start_with(fx, &[])
    }

    /// Starts `ledgerd` with extra arguments and waits until it listens.
    pub fn start_with(fx: &Fixture, extra: &[&str]) -> Daemon {
        let log = fx.root().join("ledgerd.log");
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
        let (hooks_tx, hooks_rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                } else if let Some(addr) = line.strip_prefix("webhooks on ") {
                    let _ = hooks_tx.send(addr.trim().to_string());
                }
            }
        });
        let mut daemon = Daemon { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), hooks: None, log };
        match rx.recv_timeout(PATIENCE) {
            Ok(addr) => {
                daemon.addr = addr.parse().unwrap();
                // `ledgerd` prints the webhook address right after, when it serves webhooks.
                if extra.contains(&"--webhook-listen") {
                    daemon.hooks = hooks_rx.recv_timeout(PATIENCE).ok().and_then(|a| a.parse().ok());
                }
            }
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

/// SplitMix64: reproducible choices for the tests (credentials, mutations). Not for secrets.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn pick(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[(self.next() % a.len() as u64) as usize] as char).collect()
    }
    pub fn alnum(&mut self, n: usize) -> String {
        self.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", n)
    }
    pub fn upper(&mut self, n: usize) -> String {
        self.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
    }
    pub fn hex(&mut self, n: usize) -> String {
        self.pick("0123456789abcdef", n)
    }
    pub fn b64(&mut self, n: usize) -> String {
        self.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", n)
    }
    pub fn b64url(&mut self, n: usize) -> String {
        self.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", n)
    }
    pub fn digits(&mut self, n: usize) -> String {
        // No leading zero, so that a number reads as one.
        format!("{}{}", 1 + self.next() % 9, self.pick("0123456789", n - 1))
    }
}
