//! Several `ledgerd` on one PostgreSQL database, through the `ledger` binary: one appends, the
//! other serves reads at the database's head and refuses appends naming the writer, `ledger
//! --store` reads beside them, and the standby takes over when the writer is killed. Needs
//! `LEDGER_TEST_PG` (skipped without it unless `CI` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ledgerd_with, Run};
use serde_json::Value;

fn change_body(number: u64) -> String {
    serde_json::json!({
        "actor": "github:octocat", "time": "2026-11-01T10:00:00Z",
        "repo": "o/r", "number": number, "title": format!("change {number}"), "author": "github:octocat",
        "head_commit": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "commits_total": 1
    })
    .to_string()
}

/// `ledger [--server URL] append` of change `number`: exit code and stderr.
fn append(run: &Run, via: &[&str], number: u64, code: i32) -> String {
    let body = run.dir.path().join(format!("change-{number}.json"));
    std::fs::write(&body, change_body(number)).unwrap();
    let mut args = via.to_vec();
    args.extend(["append", "--kind", "change", "--body", body.to_str().unwrap(), "--json"]);
    run.ledger(&args, code).1
}

fn entries(run: &Run, via: &[&str]) -> u64 {
    let mut args = via.to_vec();
    args.extend(["verify", "--json"]);
    let v: Value = serde_json::from_str(&run.ledger(&args, 0).0).unwrap();
    v["entries"].as_u64().unwrap()
}

#[test]
fn two_servers_on_one_database_one_appends_the_other_reads_and_takes_over() {
    let Some(url) = ledger_store::testkit::pg_database() else { return };
    let run = Run::empty();
    run.ledger(&["init", "--store", &url], 0);
    let db = run.dir.path().join("ledger-data");
    let Some(writer) = ledgerd_with(&db, &["--store", &url]) else { return };
    let standby = ledgerd_with(&db, &["--store", &url]).unwrap();
    let (w, s) = (writer.url.clone(), standby.url.clone());
    let base = entries(&run, &["--server", &w]);

    append(&run, &["--server", &w], 1, 0);
    // The standby refuses, naming the writer, and writes nothing.
    let err = append(&run, &["--server", &s], 2, 2);
    assert!(err.contains("Unavailable") && err.contains("standby") && err.contains(&w), "{err}");
    // It reads at the database's head: the writer's append is there at once.
    assert_eq!(entries(&run, &["--server", &s]), base + 1);
    let (log, _) = run.ledger(&["--server", &s, "log", "--kind", "change", "--json"], 0);
    assert_eq!(log.lines().filter(|l| !l.trim().is_empty()).count(), 1, "{log}");
    // A local command reads beside both servers; its append is refused while ledgerd writes.
    assert_eq!(entries(&run, &["--store", &url]), base + 1);
    let err = append(&run, &["--store", &url], 3, 2);
    assert!(err.contains("standby") && err.contains(&w), "{err}");

    // The writer dies: the standby takes over within seconds and appends after its last entry.
    drop(writer);
    let killed = Instant::now();
    loop {
        let body = run.dir.path().join("change-4.json");
        std::fs::write(&body, change_body(4)).unwrap();
        let out = assert_cmd::Command::cargo_bin("ledger")
            .unwrap()
            .current_dir(run.dir.path())
            .args(["--server", &s, "append", "--kind", "change", "--body", body.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "no takeover: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(entries(&run, &["--server", &s]), base + 2);
    assert_eq!(entries(&run, &["--store", &url]), base + 2);
}
