//! What the API backfill tests share: a ledger in a temporary directory driven through the
//! `ledger` binary, the real data, stable ETags, and `ledgerd` beside the binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

/// A real payload from `../shared/realdata/<relative>`; `None` (a notice) when the data is
/// missing, an error when `CI` is set.
pub fn realdata(relative: &str) -> Option<Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata").join(relative);
    match std::fs::read(&p) {
        Ok(b) => Some(serde_json::from_slice(&b).unwrap()),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "test data {} is missing (CI is set)", p.display());
            eprintln!("notice: test data {} is missing; skipping", p.display());
            None
        }
    }
}

/// A stable ETag per URL.
pub fn ledger_etag(url: &str) -> String {
    format!("{:x}", url.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3)))
}

/// A ledger in a temporary directory, driven through the `ledger` binary.
pub struct Run {
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn new() -> Run {
        let r = Run::empty();
        r.ledger(&["init"], 0);
        r
    }
    /// A temporary directory without a ledger yet.
    pub fn empty() -> Run {
        Run { dir: tempfile::tempdir().unwrap() }
    }
    /// Runs `ledger ARGS` there, which must exit with `code`: its stdout and stderr.
    pub fn ledger(&self, args: &[&str], code: i32) -> (String, String) {
        let out = Command::cargo_bin("ledger")
            .unwrap()
            .current_dir(self.dir.path())
            .env_remove("LEDGER_DB")
            .env_remove("LEDGER_KEY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITLAB_TOKEN")
            .env("LEDGER_API_BACKOFF_MS", "50")
            .args(args)
            .output()
            .unwrap();
        let (so, se) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "ledger {args:?}\nstdout: {so}\nstderr: {se}");
        assert!(!se.contains("panicked"), "{se}");
        (so, se)
    }
    /// `ledger ingest COMMAND TARGET_FLAG TARGET` (`github-api --repo …`, `gitlab-api
    /// --project …`) from the API at `server` over the first half of 2026, with `token` in a
    /// token file, as JSON; it must exit with `code`.
    pub fn backfill(&self, command: &str, target: [&str; 2], server: &str, token: &str, code: i32) -> (String, String) {
        let token_file = self.dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let token_file = token_file.to_str().unwrap();
        let [flag, value] = target;
        self.ledger(
            &[
                "ingest",
                command,
                flag,
                value,
                "--since",
                "2026-01-01",
                "--until",
                "2026-06-30",
                "--api-url",
                server,
                "--token-file",
                token_file,
                "--json",
            ],
            code,
        )
    }
    /// How many records of `kind` the ledger holds.
    pub fn count(&self, kind: &str) -> usize {
        let (out, _) = self.ledger(&["log", "--kind", kind, "--json"], 0);
        out.lines().filter(|l| !l.trim().is_empty()).count()
    }
}

/// `ledgerd` beside the `ledger` binary (`cargo test --workspace` builds both), serving `db`;
/// killed on drop.
pub struct Daemon {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn ledgerd(db: &std::path::Path) -> Option<Daemon> {
    ledgerd_with(db, &[])
}

/// [`ledgerd`] with more flags (`--store URL`: a PostgreSQL store, `db` then holding the keys).
pub fn ledgerd_with(db: &std::path::Path, extra: &[&str]) -> Option<Daemon> {
    use std::io::BufRead as _;
    let bin = assert_cmd::cargo::cargo_bin("ledger").with_file_name(format!("ledgerd{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing (CI is set): cargo build -p ledger-server",
            bin.display()
        );
        eprintln!("notice: {} is missing; skipping (cargo build -p ledger-server)", bin.display());
        return None;
    }
    let mut child = std::process::Command::new(bin)
        .arg("--db")
        .arg(db)
        .args(["--listen", "127.0.0.1:0", "--log-filter", "warn", "--checkpoint-key"])
        .arg(db.join("keys").join("log.key"))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr =
        first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("ledgerd said: {first}")).to_string();
    Some(Daemon { child, url: format!("http://{addr}") })
}
