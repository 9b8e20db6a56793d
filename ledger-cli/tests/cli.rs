//! The `ledger` command-line contract: exit codes, clear errors that change nothing, tamper
//! detection, deduplication and key rules, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// A fresh ledger in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture { dir: tempfile::tempdir().unwrap() };
        f.ok(&["init"]);
        f
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("ledger-data")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("ledger").unwrap();
        c.current_dir(self.dir.path()).env_remove("LEDGER_DB").env_remove("LEDGER_KEY").args(args);
        c
    }
    /// Runs and expects exit code `code`; returns (stdout, stderr).
    fn run(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.cmd(args).output().unwrap();
        let (so, se) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "ledger {args:?}\nstdout: {so}\nstderr: {se}");
        assert!(!se.contains("panicked"), "panic in ledger {args:?}: {se}");
        (so, se)
    }
    fn ok(&self, args: &[&str]) -> String {
        self.run(args, 0).0
    }
    /// Expects exit 2 with `needle` in the error message, and no entry written.
    fn refused(&self, args: &[&str], needle: &str) {
        let before = self.entries();
        let (_, err) = self.run(args, 2);
        assert!(err.contains(needle), "ledger {args:?}: expected `{needle}` in: {err}");
        assert_eq!(self.entries(), before, "ledger {args:?} changed the ledger");
    }
    fn entries(&self) -> u64 {
        let v: Value = serde_json::from_str(&self.ok(&["verify", "--json"])).unwrap();
        v["entries"].as_u64().unwrap()
    }
    fn write(&self, name: &str, content: &str) -> String {
        std::fs::write(self.path(name), content).unwrap();
        name.to_string()
    }
    fn append_json(&self, kind: &str, body: &str) -> Value {
        let f = self.write("body.json", body);
        serde_json::from_str(&self.ok(&["append", "--kind", kind, "--body", &f, "--json"])).unwrap()
    }
}

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn change_body(title: &str) -> String {
    serde_json::json!({
        "actor": "github:octocat", "time": "2026-11-01T10:00:00Z",
        "repo": "o/r", "number": 5, "title": title, "author": "github:octocat",
        "head_commit": SHA_B, "commits_total": 2
    })
    .to_string()
}

fn review_body(reviewer: &str, commit: &str) -> String {
    serde_json::json!({
        "actor": reviewer, "links": [{"rel": "change", "target": "pr:o/r#5"}],
        "repo": "o/r", "reviewer": reviewer, "verdict": "approved", "commit": commit
    })
    .to_string()
}

#[test]
fn init_creates_private_key_files_and_refuses_to_reinit() {
    let f = Fixture::new();
    #[cfg(unix)]
    for k in ["admin.key", "log.key", "local.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.db().join("keys").join(k)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{k}");
    }
    assert_eq!(f.entries(), 3, "genesis + log key + local key registrations");
    let (_, err) = f.run(&["init"], 2);
    assert!(err.contains("not empty") || err.contains("already exists"), "{err}");
    assert_eq!(f.entries(), 3);
}

#[test]
fn init_refuses_a_foreign_directory_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let out = Command::cargo_bin("ledger").unwrap().args(["--db"]).arg(dir.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn appends_are_signed_chained_and_deduplicated() {
    let f = Fixture::new();
    let r1 = f.append_json("change", &change_body("Add login"));
    assert_eq!(r1["seq"], 3);
    assert_eq!(r1["duplicate"], false);
    let r2 = f.append_json("change", &change_body("Add login"));
    assert_eq!(r2["duplicate"], true);
    assert_eq!(r2["entry"], r1["entry"], "a re-appended record returns the original receipt");
    assert_eq!(f.entries(), 4);
    // `show --raw` writes the exact stored bytes: they hash to the entry id.
    let raw = f.cmd(&["show", "#3", "--raw"]).output().unwrap().stdout;
    assert_eq!(ledger_core::entry::entry_hash(&raw).to_hex(), r1["entry"].as_str().unwrap());
    let e = ledger_core::entry::Entry::decode(&raw).unwrap();
    assert_eq!(e.seq.0, 3);
    // Lookup by a unique hash prefix.
    let prefix = &r1["entry"].as_str().unwrap()[..14];
    let shown: Value = serde_json::from_str(&f.ok(&["show", prefix, "--json"])).unwrap();
    assert_eq!(shown["record"]["body"]["change"]["title"], "Add login");
    assert_eq!(shown["signer_name"], "local");
}

#[test]
fn bad_bodies_are_refused_with_the_field_named_and_nothing_appended() {
    let f = Fixture::new();
    let cases: Vec<(&str, String, &str)> = vec![
        ("change", "{ not json".into(), "malformed JSON"),
        ("change", "[1,2]".into(), "must be a JSON object"),
        ("change", change_body("x").replace("\"title\"", "\"titel\""), "titel"),
        ("change", change_body("x").replace("\"head_commit\"", "\"other\""), "head_commit"),
        ("change", change_body("x").replace("\"number\":5", "\"number\":\"five\""), "number"),
        ("change", change_body("x").replace(SHA_B, "nothex"), "commit id"),
        ("change", change_body("x").replace("\"actor\":\"github:octocat\",", ""), "actor"),
        ("review", review_body("Bo <bo@example.com>", SHA_A).replace("approved", "meh"), "verdict"),
        ("review", review_body("Bo <bo@example.com>", SHA_A).replace("pr:o/r#5", "pr:o/r"), "links"),
        ("change", change_body(&"x".repeat(70_000)), "limit is"),
        ("change", change_body(&format!("leak AKIA{}", "ABCDEFGH23456789")), "body.title"),
    ];
    for (kind, body, needle) in cases {
        let file = f.write("bad.json", &body);
        f.refused(&["append", "--kind", kind, "--body", &file], needle);
    }
    let file = f.write("ok.json", &change_body("x"));
    f.refused(&["append", "--kind", "changes", "--body", &file], "unknown record kind");
    f.refused(&["append", "--kind", "change", "--body", "missing.json"], "missing.json");
    let big = "x".repeat(2 * 1024 * 1024);
    let file = f.write("huge.json", &big);
    f.refused(&["append", "--kind", "change", "--body", &file], "larger than");
}

#[test]
fn key_rules_are_enforced() {
    let f = Fixture::new();
    let body = f.write("c.json", &change_body("t"));
    // An unknown key.
    f.ok(&["keygen", "--out", "ci.key"]);
    f.refused(&["append", "--kind", "change", "--body", &body, "--key", "ci.key"], "unknown signer key");
    // Registered for reviews only.
    f.ok(&["key", "add", "--name", "ci", "--public-key", "ci.key.pub", "--kinds", "review"]);
    f.refused(&["append", "--kind", "change", "--body", &body, "--key", "ci.key"], "may not append `change`");
    let rev = f.write("r.json", &review_body("Bo <bo@example.com>", SHA_B));
    f.ok(&["append", "--kind", "review", "--body", &rev, "--key", "ci.key"]);
    // Only the admin key may append key records.
    f.refused(
        &[
            "key",
            "add",
            "--name",
            "x",
            "--public-key",
            "ci.key.pub",
            "--kinds",
            "review",
            "--admin-key",
            "ledger-data/keys/local.key",
        ],
        "may not append `key`",
    );
    // Revoked.
    f.ok(&["key", "revoke", "ci"]);
    let rev2 = f.write("r2.json", &review_body("Cy <cy@example.com>", SHA_B));
    f.refused(&["append", "--kind", "review", "--body", &rev2, "--key", "ci.key"], "revoked");
    // Expired.
    f.ok(&["keygen", "--out", "old.key"]);
    f.ok(&[
        "key",
        "add",
        "--name",
        "old",
        "--public-key",
        "old.key.pub",
        "--kinds",
        "review",
        "--not-before",
        "2020-01-01",
        "--not-after",
        "2021-01-01",
    ]);
    f.refused(&["append", "--kind", "review", "--body", &rev2, "--key", "old.key"], "expired");
    let list: Value = serde_json::from_str(&f.ok(&["key", "list", "--json"])).unwrap();
    let status: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().to_string(), k["status"].as_str().unwrap().to_string()))
        .collect();
    assert!(status.contains(&("ci".into(), "revoked".into())), "{status:?}");
    assert!(status.contains(&("old".into(), "expired".into())), "{status:?}");
    // History signed by the revoked key still verifies.
    f.ok(&["verify"]);
}

#[test]
fn rotation_keeps_history_verifying() {
    let f = Fixture::new();
    f.ok(&["keygen", "--out", "a.key"]);
    f.ok(&["keygen", "--out", "b.key"]);
    f.ok(&["key", "add", "--name", "ci", "--public-key", "a.key.pub", "--kinds", "review"]);
    let r1 = f.write("r1.json", &review_body("Bo <bo@example.com>", SHA_A));
    f.ok(&["append", "--kind", "review", "--body", &r1, "--key", "a.key"]);
    f.ok(&["key", "rotate", "ci", "--public-key", "b.key.pub"]);
    let r2 = f.write("r2.json", &review_body("Bo <bo@example.com>", SHA_B));
    f.refused(&["append", "--kind", "review", "--body", &r2, "--key", "a.key"], "rotated out");
    f.ok(&["append", "--kind", "review", "--body", &r2, "--key", "b.key"]);
    f.ok(&["verify"]);
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let f = Fixture::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = f.db().join("keys").join("local.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let body = f.write("c.json", &change_body("t"));
        f.refused(&["append", "--kind", "change", "--body", &body], "chmod 600");
    }
}

#[test]
fn missing_foreign_and_corrupt_databases_are_clear_errors() {
    let f = Fixture::new();
    for args in [vec!["--db", "nowhere", "log"], vec!["--db", ".", "verify"]] {
        let (_, err) = f.run(&args, 2);
        assert!(err.contains("no ledger"), "{err}");
    }
    assert!(!f.path("nowhere").exists(), "a read must not create the directory");
    // Corrupt every database file, on each backend: an error, never a crash.
    for backend in ["fjall", "sled"] {
        let f = Fixture { dir: tempfile::tempdir().unwrap() };
        f.ok(&["init", "--backend", backend]);
        let mut files = vec![];
        let mut dirs = vec![f.db()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() && !p.ends_with("keys") {
                    dirs.push(p);
                } else if p.is_file() && p.file_name().is_some_and(|n| n != "LOCK") {
                    files.push(p);
                }
            }
        }
        assert!(!files.is_empty(), "{backend}: no database files found");
        for p in files {
            let len = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![0xA5u8; len.max(64)]).unwrap();
        }
        let (_, err) = f.run(&["log"], 2);
        assert!(err.contains("no ledger") || err.contains("storage") || err.contains("corrupt"), "{backend}: {err}");
    }
}

#[test]
fn ingest_of_a_non_git_path_is_refused() {
    let f = Fixture::new();
    std::fs::create_dir(f.path("plain")).unwrap();
    f.refused(&["ingest", "git", "plain"], "not a git repository");
    let bad = f.write("prov.json", "{\"tool\": 3}");
    f.refused(&["ingest", "provenance", &bad, "--change", "pr:o/r#5"], "tool");
}

/// Flips one byte of the stored entry `seq` at `offset` (from its start).
fn tamper(db: &Path, seq: u64, offset: usize) {
    let store = ledger_store::store::DiskStore::open(db).unwrap();
    let mut key = vec![b'e'];
    key.extend_from_slice(&seq.to_be_bytes());
    let raw = store.raw();
    let mut v = raw.get(&key).unwrap().unwrap();
    let i = offset.min(v.len() - 1);
    v[i] ^= 0x01;
    raw.insert(key, v).unwrap();
}

#[test]
fn a_flipped_byte_is_found_by_verify_naming_the_seq() {
    let f = Fixture::new();
    for t in ["a", "b", "c", "d"] {
        f.append_json("change", &change_body(t));
    }
    let len = f.cmd(&["show", "#3", "--raw"]).output().unwrap().stdout.len();
    for offset in [5, 20, len / 3, len / 2, len - 30, len - 1] {
        let g = Fixture::new();
        for t in ["a", "b", "c", "d"] {
            g.append_json("change", &change_body(t));
        }
        tamper(&g.db(), 3, offset);
        let (out, _) = g.run(&["verify"], 1);
        assert!(out.contains("TAMPERED: entry #3"), "offset {offset}: {out}");
        let (json, _) = g.run(&["verify", "--json"], 1);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!((v["ok"].as_bool(), v["seq"].as_u64()), (Some(false), Some(3)), "offset {offset}");
    }
}

/// Removes one key from the store directly, as someone with write access to its files could.
fn remove_store_key(db: &Path, key: &[u8]) {
    let store = ledger_store::store::DiskStore::open(db).unwrap();
    let raw = store.raw();
    assert!(raw.get(key).unwrap().is_some(), "the key to remove exists");
    raw.remove(key).unwrap();
}

#[test]
fn a_revocation_hidden_from_the_kind_index_is_caught_and_the_key_stays_revoked() {
    let f = Fixture::new();
    f.ok(&["keygen", "--out", "ci.key"]);
    f.ok(&["key", "add", "--name", "ci", "--public-key", "ci.key.pub", "--kinds", "review"]);
    let revoked: Value = serde_json::from_str(&f.ok(&["key", "revoke", "ci", "--json"])).unwrap();
    let seq = revoked["seq"].as_u64().unwrap();
    // The kind index key of the revocation: `k` ‖ the `key` kind's code (11) ‖ seq.
    let mut k = vec![b'k', 11];
    k.extend_from_slice(&seq.to_be_bytes());
    remove_store_key(&f.db(), &k);
    let (json, _) = f.run(&["verify", "--json"], 1);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["seq"].as_u64(), Some(seq), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("kind index"), "{v}");
    // The revoked key must not sign anything, and nothing is appended.
    let rev = f.write("r.json", &review_body("Cy <cy@example.com>", SHA_B));
    let (_, err) = f.run(&["append", "--kind", "review", "--body", &rev, "--key", "ci.key"], 1);
    assert!(err.contains("tamper"), "{err}");
    let mut next = vec![b'e'];
    next.extend_from_slice(&(seq + 1).to_be_bytes());
    let store = ledger_store::store::DiskStore::open(&f.db()).unwrap();
    assert!(store.raw().get(&next).unwrap().is_none(), "nothing was appended");
}

#[test]
fn a_review_hidden_from_the_subject_index_is_caught_by_verify() {
    let f = Fixture::new();
    f.append_json("change", &change_body("Add login"));
    let r: Value = f.append_json("review", &review_body("Bo <bo@example.com>", SHA_B));
    let seq = r["seq"].as_u64().unwrap();
    // `s` ‖ subject ‖ 0x00 ‖ seq: the review's change subject.
    let mut k = b"spr:o/r#5\0".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    remove_store_key(&f.db(), &k);
    let (out, _) = f.run(&["verify"], 1);
    assert!(out.contains(&format!("TAMPERED: entry #{seq}")), "{out}");
    assert!(out.contains("subject index") && out.contains("pr:o/r#5"), "{out}");
}

#[test]
fn why_reports_stale_and_valid_approvals_and_self_approval() {
    let f = Fixture::new();
    f.append_json("change", &change_body("Add login"));
    f.append_json("review", &review_body("Bo <bo@example.com>", SHA_A));
    let merge = serde_json::json!({
        "actor": "github:octocat", "links": [{"rel": "change", "target": "pr:o/r#5"}],
        "repo": "o/r", "merge_commit": "cccccccccccccccccccccccccccccccccccccccc", "head_commit": SHA_B,
        "merged_by": "github:octocat", "method": "merge"
    });
    f.append_json("merge", &merge.to_string());
    let v: Value = serde_json::from_str(&f.ok(&["why", "pr:o/r#5", "--json"])).unwrap();
    let c = &v["changes"][0];
    assert_eq!(c["final_commit"], SHA_B);
    assert_eq!(c["reviews"][0]["status"], "stale");
    let codes: Vec<&str> = c["findings"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"stale_approval") && codes.contains(&"no_approval_at_final_commit"), "{codes:?}");
    // The author approves the final commit: valid, but a self-approval.
    f.append_json("review", &review_body("github:octocat", SHA_B));
    let v: Value = serde_json::from_str(&f.ok(&["why", "cccccccccc", "--json"])).unwrap();
    let c = &v["changes"][0];
    assert_eq!(c["reviews"][1]["status"], "valid");
    let codes: Vec<&str> = c["findings"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"self_approval"), "{codes:?}");
    assert!(!codes.contains(&"no_approval_at_final_commit"), "{codes:?}");
    // Nothing recorded about an unknown PR is a finding, not an error.
    let v: Value = serde_json::from_str(&f.ok(&["why", "pr:o/r#6", "--json"])).unwrap();
    assert_eq!(v["findings"][0]["code"], "no_change");
    // The author's approval is dismissed later: it no longer counts.
    let dismissal = review_body("github:octocat", SHA_B).replace("\"approved\"", "\"dismissed\"");
    f.append_json("review", &dismissal);
    let v: Value = serde_json::from_str(&f.ok(&["why", "pr:o/r#5", "--json"])).unwrap();
    let c = &v["changes"][0];
    assert_eq!(c["reviews"][1]["status"], "dismissed", "{c:#}");
    let codes: Vec<&str> = c["findings"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"dismissed_approval") && codes.contains(&"no_approval_at_final_commit"), "{codes:?}");
    assert!(!codes.contains(&"self_approval"), "a dismissed approval is no self-approval: {codes:?}");
}

#[test]
fn provenance_files_become_sessions_and_reingest_adds_nothing() {
    let f = Fixture::new();
    f.append_json("change", &change_body("Add login"));
    let prov = f.write(
        "provenance.json",
        r#"{"tool":"Claude Code","model":"claude-opus-4","session_id":"s-123","prompt_summary":"add a login form",
            "reviewer":"github:bo","risk_area":"auth","verification":["unit tests"]}"#,
    );
    let r1: Value =
        serde_json::from_str(&f.ok(&["ingest", "provenance", &prov, "--change", "pr:o/r#5", "--json"])).unwrap();
    let r2: Value =
        serde_json::from_str(&f.ok(&["ingest", "provenance", &prov, "--change", "pr:o/r#5", "--json"])).unwrap();
    assert_eq!(r1["duplicate"], false);
    assert_eq!((r2["duplicate"].as_bool(), &r2["seq"]), (Some(true), &r1["seq"]));
    let v: Value = serde_json::from_str(&f.ok(&["why", "pr:o/r#5", "--json"])).unwrap();
    let s = &v["changes"][0]["sessions"][0];
    assert_eq!((s["tool"].as_str(), s["model"].as_str()), (Some("claude"), Some("claude-opus-4")));
    let codes: Vec<&str> =
        v["changes"][0]["findings"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"ai_without_human_approval"), "{codes:?}");
}

#[test]
fn log_filters_by_kind_and_subject() {
    let f = Fixture::new();
    f.append_json("change", &change_body("Add login"));
    f.append_json("review", &review_body("Bo <bo@example.com>", SHA_A));
    let lines =
        |args: &[&str]| -> Vec<Value> { f.ok(args).lines().map(|l| serde_json::from_str(l).unwrap()).collect() };
    assert_eq!(lines(&["log", "--json"]).len(), 5);
    let reviews = lines(&["log", "--kind", "review", "--json"]);
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["kind"], "review");
    assert_eq!(lines(&["log", "--subject", "pr:o/r#5", "--json"]).len(), 2);
    assert_eq!(lines(&["log", "--subject", "aaaaaaaa", "--json"]).len(), 1, "abbreviated commit id");
    assert_eq!(lines(&["log", "--since", "2999-01-01", "--json"]).len(), 0);
    f.refused(&["log", "--kind", "nope"], "unknown record kind");
    f.refused(&["log", "--since", "yesterday"], "RFC 3339");
}

/// A file under `../shared/realdata`, or `None` (with a notice) outside CI when it is missing.
fn realdata(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata").join(rel);
    if p.is_file() {
        return Some(p);
    }
    assert!(std::env::var_os("CI").is_none(), "{} is missing and CI is set", p.display());
    eprintln!("notice: {} is missing; skipping", p.display());
    None
}

#[test]
fn incidents_from_pagerduty_and_opsgenie_link_back_to_the_change() {
    let (Some(triggered), Some(ack), Some(close)) = (
        realdata("incidents/pagerduty/triggered_v3.json"),
        realdata("incidents/pagerduty/acknowledged_v3.json"),
        realdata("incidents/opsgenie/close.json"),
    ) else {
        return;
    };
    let f = Fixture::new();
    f.append_json("change", &change_body("Add login"));
    let merge = serde_json::json!({
        "actor": "github:octocat", "links": [{"rel": "change", "target": "pr:o/r#5"}],
        "repo": "o/r", "merge_commit": "cccccccccccccccccccccccccccccccccccccccc", "head_commit": SHA_B,
        "merged_by": "github:octocat", "method": "merge"
    });
    f.append_json("merge", &merge.to_string());
    let deploy = serde_json::json!({
        "actor": "github:deployer", "service": "api", "environment": "production", "deployment_id": "42",
        "repo": "o/r", "commits": ["cccccccccccccccccccccccccccccccccccccccc"], "deployer": "github:deployer", "status": "success"
    });
    f.append_json("deployment", &deploy.to_string());
    let (t, a) = (triggered.to_str().unwrap(), ack.to_str().unwrap());
    let v: Value = serde_json::from_str(&f.ok(&[
        "ingest",
        "incident",
        "--system",
        "pagerduty",
        t,
        a,
        "--caused-by",
        "deploy:api/production/42",
        "--json",
    ]))
    .unwrap();
    assert_eq!((v["appended"].as_u64(), v["skipped"].as_u64()), (Some(1), Some(1)), "{v}");
    let payload: Value = serde_json::from_str(&std::fs::read_to_string(&triggered).unwrap()).unwrap();
    let id = payload["event"]["data"]["id"].as_str().unwrap();
    let why: Value = serde_json::from_str(&f.ok(&["why", &format!("incident:pagerduty/{id}"), "--json"])).unwrap();
    let c = &why["changes"][0];
    assert_eq!(c["subject"], "pr:o/r#5");
    assert_eq!(c["deployments"][0]["subject"], "deploy:api/production/42");
    let inc = &c["incidents"][0];
    assert_eq!(inc["title"], payload["event"]["data"]["title"]);
    assert_eq!(inc["opened"], payload["event"]["occurred_at"]);
    assert_eq!((inc["inferred"].as_bool(), inc["cause"].as_str()), (Some(false), Some("deploy:api/production/42")));
    // Opsgenie's nanosecond `updatedAt` (> 2^53) must not lose precision on the way.
    let v: Value =
        serde_json::from_str(&f.ok(&["ingest", "incident", "--system", "opsgenie", close.to_str().unwrap(), "--json"]))
            .unwrap();
    let seq = v["files"][0]["records"][0]["seq"].as_u64().unwrap();
    let shown: Value = serde_json::from_str(&f.ok(&["show", &format!("#{seq}"), "--json"])).unwrap();
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&close).unwrap()).unwrap();
    let ns = raw["alert"]["updatedAt"].as_u64().unwrap();
    let resolved = shown["record"]["body"]["incident"]["resolved"].as_str().unwrap();
    let ms: i64 = resolved.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert_eq!(ms, (ns / 1_000_000) as i64);
    // Re-ingesting appends nothing.
    let again: Value =
        serde_json::from_str(&f.ok(&["ingest", "incident", "--system", "opsgenie", close.to_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!(again["appended"], 0);
}

#[test]
fn every_incident_payload_is_ingested_or_skipped() {
    let Some(any) = realdata("incidents/pagerduty/triggered_v3.json") else { return };
    let root = any.parent().unwrap().parent().unwrap().to_path_buf();
    let f = Fixture::new();
    let mut handled = 0;
    for system in ["pagerduty", "opsgenie"] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(system)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let p: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let out: Value = serde_json::from_str(&f.ok(&[
                "ingest",
                "incident",
                "--system",
                system,
                file.to_str().unwrap(),
                "--json",
            ]))
            .unwrap();
            let r = &out["files"][0];
            let (opens_or_closes, id, title) = match system {
                "pagerduty" => (
                    matches!(p["event"]["event_type"].as_str(), Some("incident.triggered" | "incident.resolved")),
                    p["event"]["data"]["id"].clone(),
                    p["event"]["data"]["title"].clone(),
                ),
                _ => (
                    matches!(p["action"].as_str(), Some("Create" | "Close")),
                    p["alert"]["alertId"].clone(),
                    p["alert"]["message"].clone(),
                ),
            };
            if opens_or_closes {
                let seq = r["records"][0]["seq"].as_u64().unwrap_or_else(|| panic!("{}: {out}", file.display()));
                let shown: Value = serde_json::from_str(&f.ok(&["show", &format!("#{seq}"), "--json"])).unwrap();
                let inc = &shown["record"]["body"]["incident"];
                assert_eq!((&inc["incident_id"], &inc["title"]), (&id, &title), "{}", file.display());
                assert_eq!(inc["system"], system);
            } else {
                assert!(r["skipped"].is_string(), "{}: {out}", file.display());
            }
            handled += 1;
        }
    }
    assert_eq!(handled, 8, "every incident payload in realdata was handled");
}

#[test]
fn checkpoints_and_proofs_verify_independently() {
    use ledger_core::merkle;
    use ledger_core::note;
    let f = Fixture::new();
    for t in ["a", "b", "c"] {
        f.append_json("change", &change_body(t));
    }
    // A signed checkpoint, opened with its verifier key.
    let cp: Value = serde_json::from_str(&f.ok(&["checkpoint", "--json"])).unwrap();
    let (name, vk) = note::parse_verifier_key(cp["verifier_key"].as_str().unwrap()).unwrap();
    let signed = cp["checkpoint"].as_str().unwrap();
    let body = note::open(signed, &name, &vk).unwrap();
    let pinned = note::Checkpoint::parse(body).unwrap();
    assert_eq!(pinned.size, 6);
    assert!(
        note::open(&signed.replacen("\n6\n", "\n7\n", 1), &name, &vk).is_err(),
        "an edited checkpoint does not open"
    );
    // The root recomputed from the exact stored bytes of every entry.
    let leaves: Vec<merkle::Hash> = (0..pinned.size)
        .map(|s| merkle::leaf_hash(&f.cmd(&["show", &format!("#{s}"), "--raw"]).output().unwrap().stdout))
        .collect();
    assert_eq!(merkle::root(&leaves), pinned.root);
    let head: Value = serde_json::from_str(&f.ok(&["verify", "--json"])).unwrap();
    assert_eq!(pinned.extensions, vec![format!("blake3-head 5 {}", head["head"].as_str().unwrap())]);
    // An inclusion proof for every entry, checked here.
    for s in 0..pinned.size {
        let p: Value = serde_json::from_str(&f.ok(&["prove", &format!("#{s}"), "--json"])).unwrap();
        let proof: Vec<merkle::Hash> = p["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| hex::decode(x.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect();
        merkle::verify_inclusion(&leaves[s as usize], s, pinned.size, &proof, &pinned.root).unwrap();
    }
    // The ledger grows; the pinned checkpoint is consistent with the new head.
    f.append_json("change", &change_body("d"));
    let c: Value = serde_json::from_str(&f.ok(&["consistency", &pinned.size.to_string(), "--json"])).unwrap();
    let proof: Vec<merkle::Hash> = c["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| hex::decode(x.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    let new_root: merkle::Hash = hex::decode(c["new_root"].as_str().unwrap()).unwrap().try_into().unwrap();
    merkle::verify_consistency(pinned.size, 7, &proof, &pinned.root, &new_root).unwrap();
    assert!(merkle::verify_consistency(pinned.size, 7, &proof, &[0; 32], &new_root).is_err());
    // Out of range: a clear error.
    f.refused(&["prove", "#2", "--size", "99"], "tree size 99");
}

#[test]
fn audit_pins_moves_forward_and_detects_truncation_rewrites_and_forks() {
    use ledger_core::note;
    let f = Fixture::new();
    for t in ["a", "b", "c"] {
        f.append_json("change", &change_body(t));
    }
    let vkey = f.ok(&["log-key"]).trim().to_string();
    let audit = |code: i32| -> Value {
        let (out, _) = f.run(&["audit", "--pin", "pin.txt", "--verifier-key", &vkey, "--json"], code);
        serde_json::from_str(&out).unwrap()
    };
    // First use pins; later runs move the pin forward as the ledger grows.
    let first = audit(0);
    assert_eq!((first["ok"].as_bool(), first["tree_size"].as_u64()), (Some(true), Some(6)));
    f.append_json("change", &change_body("d"));
    let second = audit(0);
    assert_eq!((second["pinned_size"].as_u64(), second["tree_size"].as_u64()), (Some(6), Some(7)));
    let pin_text = std::fs::read_to_string(f.path("pin.txt")).unwrap();
    let log_key = ledger_store::keyfile::read_private(&f.db().join("keys/log.key")).unwrap();
    let (name, _) = note::parse_verifier_key(&vkey).unwrap();
    let pinned = note::Checkpoint::parse(note::open(&pin_text, &name, &log_key.verifying_key()).unwrap()).unwrap();
    assert_eq!(pinned.size, 7, "the pin moved forward");
    // A pin the log key signed but that this ledger does not extend: the same size with another
    // root (a fork), a larger size (a truncation since), a smaller tree with another root (a
    // rewrite). Each exits 1 and keeps the conflicting checkpoint as evidence.
    for (label, forged, needle) in [
        ("fork", note::Checkpoint { root: [9; 32], ..pinned.clone() }, "fork"),
        ("truncation", note::Checkpoint { size: 99, ..pinned.clone() }, "truncated"),
        ("rewrite", note::Checkpoint { size: 4, root: [7; 32], ..pinned.clone() }, "rewritten"),
    ] {
        std::fs::write(f.path("pin.txt"), note::sign(&forged.to_text(), &name, &log_key).unwrap()).unwrap();
        let v = audit(1);
        assert!(v["message"].as_str().unwrap().contains(needle), "{label}: {v}");
    }
    assert!(std::fs::read_dir(f.dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("pin.txt.conflict-")));
    // A pin not signed by the verifier key is an error, not a verdict.
    f.ok(&["keygen", "--out", "other.key"]);
    let other = ledger_store::keyfile::read_private(&f.path("other.key")).unwrap();
    std::fs::write(f.path("pin.txt"), note::sign(&pinned.to_text(), &name, &other).unwrap()).unwrap();
    let (_, err) = f.run(&["audit", "--pin", "pin.txt", "--verifier-key", &vkey], 2);
    assert!(err.contains("no valid signature"), "{err}");
}

#[test]
fn tlog_proofs_follow_c2sp_and_verify_with_the_log_key() {
    use base64::Engine as _;
    use ledger_core::{merkle, note};
    let f = Fixture::new();
    for t in ["a", "b", "c", "d"] {
        f.append_json("change", &change_body(t));
    }
    let vkey = f.ok(&["log-key"]).trim().to_string();
    let (name, vk) = note::parse_verifier_key(&vkey).unwrap();
    let j: Value = serde_json::from_str(&f.ok(&["log-key", "--json"])).unwrap();
    assert_eq!(j["verifier_key"], vkey.as_str());
    assert_eq!(j["name"], name.as_str());
    assert_eq!(j["key_id"], hex::encode(note::key_id(&name, &vk)));
    let text = f.ok(&["prove", "#4", "--format", "tlog-proof"]);
    // c2sp.org/tlog-proof@v1: header, index, proof hashes, blank line, signed checkpoint.
    let (head, checkpoint) = text.split_once("\n\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
    // The entry's exact bytes ride on the `extra` line.
    let raw = f.cmd(&["show", "#4", "--raw"]).output().unwrap().stdout;
    assert_eq!(
        lines.next(),
        Some(format!("extra {}", base64::engine::general_purpose::STANDARD.encode(&raw)).as_str())
    );
    assert_eq!(lines.next(), Some("index 4"));
    let proof: Vec<merkle::Hash> =
        lines.map(|l| base64::engine::general_purpose::STANDARD.decode(l).unwrap().try_into().unwrap()).collect();
    let cp = note::Checkpoint::parse(note::open(checkpoint, &name, &vk).unwrap()).unwrap();
    let leaf = merkle::leaf_hash(&f.cmd(&["show", "#4", "--raw"]).output().unwrap().stdout);
    merkle::verify_inclusion(&leaf, 4, cp.size, &proof, &cp.root).unwrap();
    assert_eq!(cp.size, 7);
}

#[test]
fn export_bundles_verify_offline_and_tampering_is_named() {
    let f = Fixture::new();
    f.append_json("change", &change_body("Add login"));
    f.append_json("review", &review_body("Bo <bo@example.com>", SHA_B));
    f.append_json(
        "change",
        &serde_json::json!({
            "actor": "github:x", "repo": "o/other", "number": 9, "title": "unrelated", "author": "github:x",
            "head_commit": SHA_A, "commits_total": 1
        })
        .to_string(),
    );
    let vkey = f.ok(&["log-key"]).trim().to_string();
    let out: Value = serde_json::from_str(&f.ok(&["export", "pr:o/r#5", "--out", "b.jsonl", "--json"])).unwrap();
    assert_eq!(out["selected"], 2, "the change and its review: {out}");
    assert!(!f.path("b.jsonl.partial").exists(), "no partial file is left behind");
    // Offline: another directory, no database, no server.
    let elsewhere = tempfile::tempdir().unwrap();
    let bundle = f.path("b.jsonl");
    let run = |file: &Path, code: i32| -> String {
        let o = Command::cargo_bin("ledger")
            .unwrap()
            .current_dir(elsewhere.path())
            .args(["verify-bundle", file.to_str().unwrap(), "--log-key", &vkey])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(code), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let ok = run(&bundle, 0);
    assert!(ok.contains("2 selected") && ok.contains("attests"), "{ok}");
    assert!(!elsewhere.path().join("ledger-data").exists(), "verify-bundle created nothing");
    // The readable form: every entry decoded, the selected ones marked.
    let o = Command::cargo_bin("ledger")
        .unwrap()
        .current_dir(elsewhere.path())
        .args(["verify-bundle", bundle.to_str().unwrap(), "--log-key", &vkey, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let readable: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(readable["ok"], true);
    assert_eq!(readable["completeness"], "attested");
    let selected: Vec<&Value> =
        readable["entries"].as_array().unwrap().iter().filter(|e| e["selected"] == true).collect();
    assert_eq!(selected.len(), 2);
    assert_eq!(selected[0]["record"]["body"]["change"]["title"], "Add login", "{readable}");
    let original = std::fs::read_to_string(&bundle).unwrap();
    let tamper = |edit: &dyn Fn(&mut Vec<String>)| -> PathBuf {
        let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
        edit(&mut lines);
        let p = f.path("t.jsonl");
        std::fs::write(&p, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        p
    };
    // A changed byte in the review entry: named by its seq.
    let review_seq =
        readable["entries"].as_array().unwrap().iter().find(|e| e["record"]["body"]["review"].is_object()).unwrap()
            ["seq"]
            .as_u64()
            .unwrap();
    let flipped = tamper(&|lines| {
        let i = lines.iter().position(|l| l.starts_with(&format!("{{\"seq\":{review_seq},"))).unwrap();
        let at = lines[i].find("\"entry\":\"").unwrap() + 30;
        let c = if lines[i].as_bytes()[at] == b'A' { "B" } else { "A" };
        lines[i] = format!("{}{c}{}", &lines[i][..at], &lines[i][at + 1..]);
    });
    assert!(run(&flipped, 1).contains(&format!("entry #{review_seq}")));
    // The key registration of the signer removed (with its run): the signer is unknown.
    let no_key = tamper(&|lines| {
        let i = lines.iter().position(|l| l.starts_with("{\"seq\":2,")).unwrap();
        lines.remove(i);
    });
    assert!(run(&no_key, 1).contains("TAMPERED"));
    // A checkpoint signed by someone else.
    let other_cp = tamper(&|lines| lines[0] = lines[0].replace("\\n— ", "\\n— x"));
    assert!(run(&other_cp, 1).contains("checkpoint"));
    // The last line (the manifest) dropped: truncated.
    let truncated = tamper(&|lines| {
        lines.pop();
    });
    assert!(run(&truncated, 1).contains("truncated"));
    // Not a bundle at all: an error.
    std::fs::write(f.path("junk.json"), "{}").unwrap();
    run(&f.path("junk.json"), 2);
    // --all and a time range export every (or no) entry, and prove it.
    let all: Value = serde_json::from_str(&f.ok(&["export", "--all", "--out", "all.jsonl", "--json"])).unwrap();
    assert_eq!(all["selected"], 6);
    assert!(run(&f.path("all.jsonl"), 0).contains("proven"));
    let none: Value =
        serde_json::from_str(&f.ok(&["export", "--since", "2999-01-01", "--out", "none.jsonl", "--json"])).unwrap();
    assert_eq!(none["selected"], 0);
    assert!(run(&f.path("none.jsonl"), 0).contains("proven"));
    // The last entry of an `all` bundle dropped: caught.
    let all_text = std::fs::read_to_string(f.path("all.jsonl")).unwrap();
    let mut lines: Vec<&str> = all_text.lines().collect();
    lines.remove(lines.len() - 2);
    std::fs::write(f.path("short.jsonl"), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    assert!(run(&f.path("short.jsonl"), 1).contains("TAMPERED"));
}

#[test]
fn append_with_prove_returns_a_checked_tlog_proof() {
    use ledger_core::{merkle, note};
    let f = Fixture::new();
    f.append_json("change", &change_body("a"));
    let body = f.write("body.json", &change_body("b"));
    let v: Value = serde_json::from_str(&f.ok(&[
        "append",
        "--kind",
        "change",
        "--body",
        &body,
        "--prove",
        "--proof-out",
        "receipt.proof",
        "--json",
    ]))
    .unwrap();
    let seq = v["seq"].as_u64().unwrap();
    let proof = v["tlog_proof"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(f.path("receipt.proof")).unwrap(), proof);
    // The proof verifies offline with the log key, for the entry's exact bytes.
    let vkey = f.ok(&["log-key"]).trim().to_string();
    assert_eq!(v["verifier_key"], vkey.as_str());
    let (name, vk) = note::parse_verifier_key(&vkey).unwrap();
    let leaf = merkle::leaf_hash(&f.cmd(&["show", &format!("#{seq}"), "--raw"]).output().unwrap().stdout);
    let (index, cp) = note::open_tlog_proof(proof, &leaf, &name, &vk).unwrap();
    assert_eq!((index, cp.size), (seq, seq + 1));
    // Not for another entry.
    let other = merkle::leaf_hash(&f.cmd(&["show", "#1", "--raw"]).output().unwrap().stdout);
    assert!(note::open_tlog_proof(proof, &other, &name, &vk).is_err());
    // `verify-proof` checks the receipt offline, from the entry it carries.
    let checked: Value =
        serde_json::from_str(&f.ok(&["verify-proof", "receipt.proof", "--log-key", &vkey, "--json"])).unwrap();
    assert_eq!((checked["ok"].as_bool(), checked["seq"].as_u64()), (Some(true), Some(seq)));
    assert_eq!(checked["record"]["body"]["change"]["title"], "b");
    // With the entry swapped for another one, or another log's key: invalid (exit 1).
    let raw_other = f.cmd(&["show", "#1", "--raw"]).output().unwrap().stdout;
    std::fs::write(f.path("other.entry"), raw_other).unwrap();
    let (out, _) = f.run(&["verify-proof", "receipt.proof", "--log-key", &vkey, "--entry", "other.entry"], 1);
    assert!(out.contains("INVALID"), "{out}");
    f.ok(&["keygen", "--out", "stranger.key"]);
    let stranger = ledger_store::keyfile::read_private(&f.path("stranger.key")).unwrap();
    let stranger_vkey = note::verifier_key(&name, &stranger.verifying_key()).unwrap();
    f.run(&["verify-proof", "receipt.proof", "--log-key", &stranger_vkey], 1);
    // An unreadable proof: exit 2.
    std::fs::write(f.path("junk.proof"), "not a proof").unwrap();
    f.run(&["verify-proof", "junk.proof", "--log-key", &vkey], 2);
    // --proof-out needs --prove.
    f.run(&["append", "--kind", "change", "--body", &body, "--proof-out", "x"], 2);
}

#[test]
fn errors_say_what_to_do() {
    let f = Fixture::new();
    let rev = f.write("r.json", &review_body("Bo <bo@example.com>", SHA_B));
    // A public key where the private key belongs.
    f.ok(&["keygen", "--out", "ci.key"]);
    f.refused(&["append", "--kind", "review", "--body", &rev, "--key", "ci.key.pub"], "is a public key");
    // A server address without a scheme.
    let (_, err) = f.run(&["--server", "127.0.0.1:7700", "log"], 2);
    assert!(err.contains("http://127.0.0.1:7700"), "{err}");
    // Several causes after one --caused-by: the second is read as a file.
    let payload = f.write("pd.json", "{}");
    f.refused(
        &["ingest", "incident", "--system", "pagerduty", "--caused-by", "deploy:a/p/1", "deploy:a/p/2", &payload],
        "--caused-by A --caused-by B",
    );
    // A typo in an event name is an error listing the events, not a skip; a real event the
    // ledger does not read is a skip.
    let (_, err) = f.run(&["ingest", "github", "--event", "pull_requests", &payload], 2);
    assert!(err.contains("pull_request, pull_request_review"), "{err}");
    assert!(f.ok(&["ingest", "github", "--event", "star", &payload]).contains("skipped"));
    let (_, err) = f.run(&["ingest", "gitlab", "--event", "merge_requests", &payload], 2);
    assert!(err.contains("merge_request"), "{err}");
    // `Merge Request Hook` (the header's name) is accepted; this payload maps to nothing.
    assert!(f.ok(&["ingest", "gitlab", "--event", "Merge Request Hook", &payload]).contains("skipped"));
}

#[test]
fn a_damaged_store_is_reported_as_damaged_not_as_missing() {
    for backend in ["fjall", "sled"] {
        let f = Fixture { dir: tempfile::tempdir().unwrap() };
        f.ok(&["init", "--backend", backend]);
        // Overwrite the engine's files (not the lock file) with garbage.
        let mut dirs = vec![f.db()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() && !p.ends_with("keys") {
                    dirs.push(p);
                } else if p.is_file()
                    && p.file_name().is_some_and(|n| n != "LOCK")
                    && !p.starts_with(f.db().join("keys"))
                {
                    std::fs::write(&p, vec![0xA5u8; 4096]).unwrap();
                }
            }
        }
        let (_, err) = f.run(&["log"], 2);
        assert!(err.contains("is damaged") && err.contains("backup"), "{backend}: {err}");
    }
}

#[test]
fn log_lines_show_the_event_time_and_the_change() {
    let f = Fixture::new();
    let mut body: Value = serde_json::from_str(&review_body("Bo <bo@example.com>", SHA_B)).unwrap();
    body["time"] = "2021-03-04T05:06:07Z".into();
    f.append_json("review", &body.to_string());
    let out = f.ok(&["log", "--kind", "review"]);
    assert!(out.contains("event 2021-03-04T05:06:07"), "the record's own time: {out}");
    assert!(out.contains("[pr:o/r#5]"), "the change it belongs to: {out}");
}

#[test]
fn why_answers_subjects_nothing_covers_and_shows_the_chain_it_walked() {
    let f = Fixture::new();
    // A commit abbreviation nothing recorded starts with: an answer, not an error.
    let v: Value = serde_json::from_str(&f.ok(&["why", "deadbeef1", "--json"])).unwrap();
    assert_eq!(v["findings"][0]["code"], "no_change", "{v}");
    assert_eq!(v["walked"][0]["subject"], "git:deadbeef1", "{v}");
    let v: Value = serde_json::from_str(&f.ok(&["why", "pr:o/r#9999", "--json"])).unwrap();
    assert_eq!(v["findings"][0]["code"], "no_change", "{v}");
    // An incident caused by a deployment of a commit no change covers: the walk is shown.
    let deploy = serde_json::json!({
        "actor": "ci:deployer", "time": "2026-11-02T10:00:00Z", "service": "api", "environment": "production",
        "deployment_id": "42", "commits": [SHA_B], "deployer": "github:ops", "status": "success"
    });
    f.append_json("deployment", &deploy.to_string());
    let incident = serde_json::json!({
        "actor": "pagerduty:bot", "time": "2026-11-02T11:00:00Z",
        "links": [{"rel": "caused_by", "target": "deploy:api/production/42"}],
        "system": "pagerduty", "incident_id": "P1", "title": "errors", "opened": "2026-11-02T11:00:00Z"
    });
    f.append_json("incident", &incident.to_string());
    let v: Value = serde_json::from_str(&f.ok(&["why", "incident:pagerduty/P1", "--json"])).unwrap();
    let walked: Vec<&str> = v["walked"].as_array().unwrap().iter().map(|w| w["subject"].as_str().unwrap()).collect();
    assert_eq!(walked[..2], ["incident:pagerduty/P1", "deploy:api/production/42"], "{v}");
    assert!(walked.contains(&format!("git:{SHA_B}").as_str()), "the walk reaches the deployed commit: {walked:?}");
    let text = f.ok(&["why", "incident:pagerduty/P1"]);
    assert!(text.contains("walked  incident:pagerduty/P1 [#"), "{text}");
}

#[test]
fn the_log_key_signs_checkpoints_and_a_rotation_hands_over_to_the_new_one() {
    let f = Fixture::new();
    f.append_json("change", &change_body("a"));
    // `init` registered the log key; it, not the admin key, signs checkpoints.
    let keys: Value = serde_json::from_str(&f.ok(&["key", "list", "--json"])).unwrap();
    let log: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["role"] == "log").collect();
    assert_eq!(log.len(), 1, "{keys}");
    assert_eq!(log[0]["name"], "log");
    assert_eq!(log[0]["kinds"].as_array().map(Vec::len), Some(0));
    let admin = f.db().join("keys/admin.key");
    f.refused(&["checkpoint", "--key", admin.to_str().unwrap()], "does not sign this ledger's checkpoints");
    let old_vkey = f.ok(&["log-key"]).trim().to_string();
    let audit = |vkey: &str, extra: &[&str], code: i32| -> Value {
        let mut args = vec!["audit", "--pin", "pin.txt", "--verifier-key", vkey, "--json"];
        args.extend_from_slice(extra);
        let (out, _) = f.run(&args, code);
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(audit(&old_vkey, &[], 0)["ok"], true);
    // Rotation: the hand-over must be signed by the old log key.
    f.ok(&["keygen", "--out", "log2.key"]);
    f.ok(&["keygen", "--out", "stranger.key"]);
    f.refused(
        &["key", "rotate", "log", "--public-key", "log2.key.pub", "--handover-key", "stranger.key"],
        "is not the log key being rotated",
    );
    f.refused(
        &["key", "rotate", "local", "--public-key", "log2.key.pub", "--handover-key", "stranger.key"],
        "only for rotating the log key",
    );
    f.ok(&["key", "rotate", "log", "--public-key", "log2.key.pub"]);
    // The old log key signs no more; the new one does, under the same name.
    let old = f.db().join("keys/log.key");
    f.refused(&["checkpoint", "--key", old.to_str().unwrap()], "rotated out");
    let new_vkey = f.ok(&["log-key", "--key", "log2.key"]).trim().to_string();
    assert_ne!(new_vkey, old_vkey);
    assert_eq!(new_vkey.split('+').next(), old_vkey.split('+').next(), "the note name (origin) stays");
    f.append_json("change", &change_body("b"));
    // An auditor pinned to the old key follows the signed hand-over, and keeps doing so.
    for _ in 0..2 {
        let v = audit(&old_vkey, &["--key", "log2.key"], 0);
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["message"].as_str().unwrap().contains("handed over"), "{v}");
    }
    assert_eq!(audit(&new_vkey, &["--key", "log2.key"], 0)["ok"], true);
    // A log key registered with no hand-over (the old one revoked, a new one added) is not
    // trusted by an auditor pinned to the rotated-out keys.
    f.ok(&["key", "revoke", "log"]);
    f.ok(&["keygen", "--out", "log3.key"]);
    f.ok(&["key", "add", "--name", "log", "--log", "--public-key", "log3.key.pub"]);
    let v = audit(&old_vkey, &["--key", "log3.key"], 1);
    assert_eq!(v["ok"], false);
    assert!(v["message"].as_str().unwrap().contains("no hand-over"), "{v}");
    // A second active log key is refused.
    f.refused(&["key", "add", "--name", "log-b", "--log", "--public-key", "stranger.key.pub"], "already active");
    assert!(f.ok(&["verify"]).contains("ok"));
}
