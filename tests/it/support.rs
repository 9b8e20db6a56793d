//! Running the `ledger` binary: locating it, one fresh ledger per test, and one checking
//! helper per command whose output the tests read.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

/// The `ledger` binary next to this test binary: `target/debug/deps/it-…` → `target/debug/ledger`.
pub fn ledger_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    // target/debug/deps/it-xxxx → target/debug
    let dir = exe.parent().and_then(Path::parent).expect("the test binary lives in <target>/<profile>/deps");
    let bin = dir.join(format!("ledger{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        panic!(
            "{} not found; build it first: cargo build -p ledger-cli (or run cargo test --workspace)",
            bin.display()
        );
    }
    bin
}

/// The `ledgerd` binary next to `ledger`.
pub fn ledgerd_bin() -> PathBuf {
    let bin = ledger_bin().with_file_name(format!("ledgerd{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} not found; build it first: cargo build -p ledger-server", bin.display());
    bin
}

/// The directory of this package (`tests/`).
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A data file under the shared directory next to the workspace (`<workspace>/../shared`).
/// `None` (after printing a notice) when it is absent outside CI; a panic when it is absent
/// in CI, where the data must be present.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let path = manifest_dir().join("../../shared").join(relative);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("test data {} is missing (CI is set, so this is an error)", path.display());
    }
    eprintln!("notice: test data {} is missing; skipping this test", path.display());
    None
}

/// A new ledger in a temporary directory, created with `ledger init`.
pub struct Ledger {
    _dir: TempDir,
    db: PathBuf,
}

impl Ledger {
    /// Runs `ledger --db <tmp>/db init --json` and checks it created a ledger with a local key.
    pub fn init() -> Self {
        let dir = tempfile::Builder::new().prefix("ledger-e2e-").tempdir().expect("temporary directory");
        let db = dir.path().join("db");
        let ledger = Ledger { _dir: dir, db };
        let v = ledger.json(["init", "--json"]);
        assert!(v["local"]["key_id"].is_string(), "init did not register a local signer key: {v}");
        assert!(ledger.db.join("keys").join("local.key").is_file(), "init did not write keys/local.key");
        ledger
    }

    /// The ledger directory.
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// `ledger --db <db> ARGS…`, with the environment variables the CLI reads removed so that
    /// the caller's environment cannot change the outcome.
    pub fn command<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = assert_cmd::Command::new(ledger_bin());
        for var in [
            "LEDGER_DB",
            "LEDGER_KEY",
            "LEDGER_ADMIN_KEY",
            "LEDGER_LOG",
            "LEDGER_SERVER",
            "LEDGER_CA_CERT",
            "LEDGER_READ_TOKEN_FILE",
        ] {
            c.env_remove(var);
        }
        c.arg("--db").arg(&self.db).args(args);
        c
    }

    /// Runs a command that must exit 0 and returns its standard output.
    pub fn stdout<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.command(args).assert().success().get_output().stdout.clone();
        String::from_utf8(out).expect("ledger printed UTF-8")
    }

    /// Runs a command that must exit 0 and print one JSON document.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        let out = self.stdout(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`ledger {}` printed invalid JSON ({e}):\n{out}", args.join(" ")))
    }

    /// Runs a command that may exit non-zero (a finding) and prints one JSON document.
    pub fn json_code_any<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.command(args).output().expect("run ledger");
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    }

    /// Runs a command that must exit 0 and print one JSON object per line.
    pub fn json_lines<I, S>(&self, args: I) -> Vec<Value>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.stdout(args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON line ({e}): {l}")))
            .collect()
    }

    /// `ledger ingest git PATH --repo REPO --json`: checks the summary's shape and returns it.
    pub fn ingest_git(&self, path: &Path, repo: &str) -> Value {
        let v = self.json([
            OsStr::new("ingest"),
            OsStr::new("git"),
            path.as_os_str(),
            OsStr::new("--repo"),
            OsStr::new(repo),
            OsStr::new("--json"),
        ]);
        assert_eq!(v["repo"], repo, "ingest summary names another repository: {v}");
        for field in ["landings", "appended", "already_present", "entries"] {
            assert!(v[field].is_u64(), "ingest summary lacks a count `{field}`: {v}");
        }
        v
    }

    /// `ledger verify --json`: checks the ledger is intact (exit 0, `ok: true`) and returns
    /// the number of entries verified.
    pub fn verify(&self) -> u64 {
        let v = self.json(["verify", "--json"]);
        assert_eq!(v["ok"], true, "verify reports a broken ledger: {v}");
        v["entries"].as_u64().unwrap_or_else(|| panic!("verify reports no entry count: {v}"))
    }

    /// `ledger why SUBJECT --json`: checks the report's shape and returns it.
    pub fn why(&self, subject: &str) -> Value {
        let v = self.json(["why", subject, "--json"]);
        assert!(v["changes"].is_array() && v["findings"].is_array(), "malformed why report for {subject}: {v}");
        v
    }

    /// `ledger why SUBJECT --json` for a subject that must belong to exactly one change:
    /// returns that change.
    pub fn why_one_change(&self, subject: &str) -> Value {
        let v = self.why(subject);
        let changes = v["changes"].as_array().expect("changes is an array");
        assert_eq!(changes.len(), 1, "why {subject}: expected exactly one change, got {}:\n{v:#}", changes.len());
        changes[0].clone()
    }
}

/// The e-mail address of an identity `Name <email>`, lowercased.
pub fn email_of(identity: &str) -> Option<String> {
    let start = identity.rfind('<')?;
    let end = identity[start..].find('>')? + start;
    Some(identity[start + 1..end].trim().to_ascii_lowercase())
}

/// The `code`s of a JSON array of findings.
pub fn finding_codes(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap_or_else(|| panic!("findings is not an array: {findings}"))
        .iter()
        .map(|f| f["code"].as_str().unwrap_or_else(|| panic!("finding without a code: {f}")).to_string())
        .collect()
}
