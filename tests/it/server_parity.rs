//! The CLI gives the same answers through `ledgerd` as on the local store: the same ledger is
//! queried through the server, the server is stopped with SIGTERM, and the same commands run
//! locally must print byte-identical output. Also: TLS and the read token, end to end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{ledgerd_bin, manifest_dir, Ledger};

/// A running `ledgerd`, killed on drop.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) addr: String,
}

impl Daemon {
    pub(crate) fn start(db: &Path, extra: &[&str]) -> Daemon {
        let mut child = Command::new(ledgerd_bin())
            .arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0", "--log-filter", "warn"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ledgerd");
        let stdout = child.stdout.take().expect("ledgerd stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ledgerd's first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Daemon { child, addr }
    }

    /// SIGTERM, and the exit code.
    fn term(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill").success();
        assert!(ok, "kill -TERM failed");
        let status = self.child.wait().expect("wait for ledgerd");
        std::mem::forget(self);
        status.code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ledger ARGS` (through `server` when given) and returns (exit code, stdout bytes).
fn run(l: &Ledger, server: Option<&str>, args: &[&str]) -> (i32, Vec<u8>) {
    let (code, out, _) = run_full(l, server, args);
    (code, out)
}

/// [`run`], with standard error as text too.
fn run_full(l: &Ledger, server: Option<&str>, args: &[&str]) -> (i32, Vec<u8>, String) {
    let mut c = l.command(args);
    if let Some(s) = server {
        c.arg("--server").arg(s);
    }
    let out = c.output().expect("run ledger");
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_query_prints_the_same_through_the_server_as_locally() {
    let l = Ledger::init();
    let repo = manifest_dir().join("..");
    let git = git2::Repository::open(&repo).unwrap();
    let head_commit = git.head().unwrap().peel_to_commit().unwrap();
    let head = head_commit.id().to_string();
    // The review is given a minute before HEAD landed: one given after the merge is late.
    let reviewed_at = jiff::Timestamp::from_second(head_commit.committer().when().seconds() - 60).unwrap();
    let review = l.db().join("review.json");
    std::fs::write(
        &review,
        serde_json::json!({
            "actor": "github:bo", "links": [{"rel": "change", "target": format!("git:provenance-ledger/ledger@{head}")}],
            "repo": "provenance-ledger/ledger", "reviewer": "github:bo", "verdict": "approved", "commit": head,
            "time": reviewed_at.to_string()
        })
        .to_string(),
    )
    .unwrap();
    // A second approval, appended with a proof.
    let review2 = l.db().join("review2.json");
    let mut second: serde_json::Value = serde_json::from_slice(&std::fs::read(&review).unwrap()).unwrap();
    (second["actor"], second["reviewer"]) = ("github:cy".into(), "github:cy".into());
    std::fs::write(&review2, second.to_string()).unwrap();
    let mut queries: Vec<Vec<String>> = vec![
        vec!["log".into()],
        vec!["log".into(), "--json".into()],
        vec!["log".into(), "--kind".into(), "merge".into(), "--limit".into(), "2".into()],
        vec!["why".into(), head.clone(), "--json".into()],
        vec!["why".into(), head[..10].to_string()],
        vec!["show".into(), "#3".into(), "--json".into()],
        vec!["show".into(), "#3".into(), "--raw".into()],
        vec!["key".into(), "list".into(), "--json".into()],
        vec!["verify".into(), "--json".into()],
        vec!["checkpoint".into(), "--json".into()],
        vec!["prove".into(), "#3".into(), "--json".into()],
        vec!["consistency".into(), "2".into(), "--json".into()],
    ];
    let remote_out: Vec<(i32, Vec<u8>)> = {
        // `init`'s log key, which ledgerd also takes by default.
        let log_key = l.db().join("keys").join("log.key");
        let d = Daemon::start(l.db(), &["--checkpoint-key", log_key.to_str().unwrap()]);
        let url = format!("http://{}", d.addr);
        let (code, out) = run(
            &l,
            Some(&url),
            &["ingest", "git", repo.to_str().unwrap(), "--repo", "provenance-ledger/ledger", "--json"],
        );
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        let (code, out) = run(&l, Some(&url), &["append", "--kind", "review", "--body", review.to_str().unwrap()]);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        // Another review with a proof: a tlog-proof the CLI has checked against the server's
        // log key (exit 0).
        let (code, out) = run(
            &l,
            Some(&url),
            &["append", "--kind", "review", "--body", review2.to_str().unwrap(), "--prove", "--json"],
        );
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["duplicate"], false, "{v}");
        assert!(v["tlog_proof"].as_str().unwrap().starts_with("c2sp.org/tlog-proof@v1\nextra "), "{v}");
        // The gate through the server: publish the default policy, record a decision, and
        // compare the decision and its re-check with the local ones below.
        let (code, out) = run(&l, Some(&url), &["policy", "show", "--json"]);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        let shown: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let policy = l.db().parent().unwrap().join("policy.toml");
        std::fs::write(&policy, shown["document"].as_str().unwrap()).unwrap();
        let (code, out) = run(&l, Some(&url), &["policy", "publish", policy.to_str().unwrap()]);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        let (code, out) = run(&l, Some(&url), &["gate", &head, "--stage", "merge", "--record", "--json"]);
        assert!(code == 0 || code == 1, "{}", String::from_utf8_lossy(&out));
        let recorded: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let entry = format!("#{}", recorded["recorded_at"].as_u64().expect("recorded_at"));
        queries.push(vec!["gate".into(), head.clone(), "--stage".into(), "merge".into()]);
        queries.push(vec!["gate".into(), head.clone(), "--stage".into(), "deploy".into()]);
        queries.push(vec!["gate".into(), "--recheck".into(), entry.clone()]);
        queries.push(vec!["policy".into(), "show".into(), "--json".into()]);
        queries.push(vec!["why".into(), head.clone()]);
        // Bundles exported through the server (built and signed there, streamed).
        for (sel, file) in [(vec!["--all"], "remote-all.jsonl"), (vec![head.as_str()], "remote-head.jsonl")] {
            let out_path = l.db().parent().unwrap().join(file);
            let mut args = vec!["export", "--out", out_path.to_str().unwrap()];
            args.extend(sel);
            let (code, out) = run(&l, Some(&url), &args);
            assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        }
        // TLS against a plain server fails cleanly, and says to check the scheme.
        let (code, _, err) = run_full(&l, Some(&format!("https://{}", d.addr)), &["key", "list"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("use http://"), "the error points at the scheme: {err}");
        let outs =
            queries.iter().map(|q| run(&l, Some(&url), &q.iter().map(String::as_str).collect::<Vec<_>>())).collect();
        assert_eq!(d.term(), Some(0), "ledgerd exits 0 on SIGTERM");
        outs
    };
    for (q, remote) in queries.iter().zip(remote_out) {
        let local = run(&l, None, &q.iter().map(String::as_str).collect::<Vec<_>>());
        // A gate that denies exits 1, through the server as locally.
        if q[0] != "gate" {
            assert_eq!(remote.0, 0, "ledger {q:?} through the server failed: {}", String::from_utf8_lossy(&remote.1));
        }
        assert_eq!(
            String::from_utf8_lossy(&remote.1),
            String::from_utf8_lossy(&local.1),
            "ledger {q:?}: output through the server differs from the local output"
        );
        assert_eq!(remote.0, local.0, "ledger {q:?}: exit codes differ");
    }
    // The same bundles exported locally are the same bytes (one tree, one log key, and
    // Ed25519 signatures are deterministic), and they verify offline.
    let vkey = String::from_utf8(run(&l, None, &["log-key"]).1).unwrap();
    for (sel, file) in [("--all", "all"), (head.as_str(), "head")] {
        let dir = l.db().parent().unwrap().to_path_buf();
        let local = dir.join(format!("local-{file}.jsonl"));
        let (code, out) = run(&l, None, &["export", sel, "--out", local.to_str().unwrap()]);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
        let remote = dir.join(format!("remote-{file}.jsonl"));
        assert!(
            std::fs::read(&remote).unwrap() == std::fs::read(&local).unwrap(),
            "export {sel}: the server's bundle differs"
        );
        let (code, out) = run(&l, None, &["verify-bundle", remote.to_str().unwrap(), "--log-key", vkey.trim()]);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    }
    // The review appended through the server is a valid approval of HEAD.
    let why = l.why(&head);
    assert_eq!(why["changes"][0]["reviews"][0]["status"], "valid", "{why:#}");
}

#[test]
fn tls_and_the_read_token_work_end_to_end() {
    let l = Ledger::init();
    let dir = l.db().parent().unwrap().to_path_buf();
    // A CA and a server certificate for `localhost`, made for this test only.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let (ca_pem, cert_pem, key_pem, token) =
        (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"), dir.join("token"));
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&cert_pem, leaf.pem()).unwrap();
    std::fs::write(&key_pem, leaf_key.serialize_pem()).unwrap();
    std::fs::write(&token, "s3cret-read-token\n").unwrap();

    let d = Daemon::start(
        l.db(),
        &[
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
            "--read-token-file",
            token.to_str().unwrap(),
        ],
    );
    let port = d.addr.rsplit(':').next().unwrap().to_string();
    let https = format!("https://localhost:{port}");
    let with_tls = |extra: &[&str]| {
        let mut args = vec!["--ca-cert", ca_pem.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    // Reads need the token.
    let args = with_tls(&["key", "list", "--json"]);
    let (code, _, err) = run_full(&l, Some(&https), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 2, "a read without the token must be refused");
    assert!(err.contains("--read-token-file"), "the refusal says how to pass the token: {err}");
    let args = with_tls(&["--read-token-file", token.to_str().unwrap(), "key", "list", "--json"]);
    let (code, out) = run(&l, Some(&https), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    let keys: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(keys.as_array().map(Vec::len), Some(3)); // admin, log, local
                                                        // Appends need no token: their signatures authenticate them.
    let body = dir.join("c.json");
    std::fs::write(
        &body,
        r#"{"actor":"github:o","repo":"o/r","number":1,"title":"t","author":"github:o","head_commit":"1111111111111111111111111111111111111111","commits_total":0}"#,
    )
    .unwrap();
    let args = with_tls(&["append", "--kind", "change", "--body", body.to_str().unwrap(), "--json"]);
    let (code, out) = run(&l, Some(&https), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    // Plaintext to a TLS server fails cleanly, and says to check the scheme.
    let (code, _, err) = run_full(&l, Some(&format!("http://{}", d.addr)), &["key", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("https://"), "the error points at the scheme: {err}");
    assert_eq!(d.term(), Some(0));
}
