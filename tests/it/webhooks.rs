//! The webhook receiver of `ledgerd`, over real HTTP with real payloads: signed deliveries are
//! appended (and re-deliveries deduplicated), unsigned or badly signed ones get 401 and
//! change nothing, oversized ones get 413.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::{ledgerd_bin, shared_data, Ledger};

const SECRET: &str = "test-webhook-secret-not-a-real-one";

struct Daemon {
    child: Child,
    grpc: String,
    hooks: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(l: &Ledger) -> Daemon {
    let dir = l.db().parent().unwrap().to_path_buf();
    let key = dir.join("ingest.key");
    l.stdout(["keygen", "--out", key.to_str().unwrap()]);
    l.stdout(["key", "add", "--name", "ingest", "--kinds", "all", "--public-key", &format!("{}.pub", key.display())]);
    std::fs::write(dir.join("gh.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.join("pd.secret"), SECRET).unwrap();
    let mut child = Command::new(ledgerd_bin())
        .arg("--db")
        .arg(l.db())
        .args(["--listen", "127.0.0.1:0", "--webhook-listen", "127.0.0.1:0", "--log-filter", "warn"])
        .arg("--ingest-key")
        .arg(&key)
        .arg("--github-secret-file")
        .arg(dir.join("gh.secret"))
        .arg("--pagerduty-secret-file")
        .arg(dir.join("pd.secret"))
        .arg("--gitlab-token-file")
        .arg(dir.join("gh.secret"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start ledgerd");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let mut second = String::new();
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let grpc = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{first}")).to_string();
    let hooks = second.trim().strip_prefix("webhooks on ").unwrap_or_else(|| panic!("{second}")).to_string();
    Daemon { child, grpc, hooks }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs `body` with `headers`; returns (status, JSON body).
fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    try_post(url, headers, body).unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// [`post`], with a transport error returned instead of panicking.
fn try_post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(u16, Value), String> {
    // A fresh connection per delivery, as webhook senders make them.
    let agent = ureq::AgentBuilder::new().max_idle_connections(0).build();
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn entries(l: &Ledger, grpc: &str) -> u64 {
    let v = l.json(["--server", &format!("http://{grpc}"), "verify", "--json"]);
    v["entries"].as_u64().unwrap()
}

#[test]
fn signed_deliveries_are_appended_and_bad_ones_refused() {
    let (Some(pr), Some(headers), Some(pd)) = (
        shared_data("realdata/github-webhooks/reallyfastci/webhook-pr-close.json"),
        shared_data("realdata/github-webhooks/reallyfastci/webhook-pr-close-header.txt"),
        shared_data("realdata/incidents/pagerduty/triggered_v3.json"),
    ) else {
        return;
    };
    let l = Ledger::init();
    let d = start(&l);
    let body = std::fs::read(&pr).unwrap();
    // The event name as the captured delivery's headers carry it.
    let event = std::fs::read_to_string(&headers)
        .unwrap()
        .lines()
        .find_map(|line| {
            let mut p = line.split_whitespace();
            (p.next()?.eq_ignore_ascii_case("x-github-event")).then(|| p.next().map(str::to_string)).flatten()
        })
        .expect("x-github-event in the captured headers");
    let url = format!("http://{}/webhooks/github", d.hooks);
    let before = entries(&l, &d.grpc);

    // Unsigned, wrongly signed, and signed for other bytes: 401, nothing appended.
    let bad_sig = format!("sha256={}", sign(b"other bytes"));
    for hs in [
        vec![("X-GitHub-Event", event.as_str())],
        vec![("X-GitHub-Event", event.as_str()), ("X-Hub-Signature-256", bad_sig.as_str())],
    ] {
        let (status, _) = post(&url, &hs, &body);
        assert_eq!(status, 401);
    }
    assert_eq!(entries(&l, &d.grpc), before, "a refused delivery changed the ledger");

    // Signed: appended; the same delivery again: the original receipts.
    let sig = format!("sha256={}", sign(&body));
    let hs = [("X-GitHub-Event", event.as_str()), ("X-Hub-Signature-256", sig.as_str())];
    let (status, first) = post(&url, &hs, &body);
    assert_eq!(status, 200, "{first}");
    let kinds: Vec<&str> = first["records"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["change", "merge"], "a merged pull_request delivery: {first}");
    let (status, again) = post(&url, &hs, &body);
    assert_eq!(status, 200);
    assert!(again["records"].as_array().unwrap().iter().all(|r| r["duplicate"] == true), "{again}");
    assert_eq!(again["records"][0]["seq"], first["records"][0]["seq"]);
    assert_eq!(entries(&l, &d.grpc), before + 2);

    // The records are answerable through the service.
    let payload: Value = serde_json::from_slice(&body).unwrap();
    let subject = format!("pr:{}#{}", payload["repository"]["full_name"].as_str().unwrap(), payload["number"]);
    let why = l.json(["--server", &format!("http://{}", d.grpc), "why", &subject, "--json"]);
    let c = &why["changes"][0];
    assert_eq!(c["merge"]["commit"], payload["pull_request"]["merge_commit_sha"]);
    assert_eq!(
        c["merge"]["merged_by"],
        format!("github:{}", payload["pull_request"]["merged_by"]["login"].as_str().unwrap())
    );

    // Oversized: 413, and nothing appended. The server may answer and close while the client
    // is still sending the rest of the 26 MiB body (HTTP/1.1 without `Expect: 100-continue`),
    // which the client then sees as a broken pipe or a reset instead of the 413.
    let huge = vec![b' '; 26 * 1024 * 1024];
    let huge_sig = format!("sha256={}", sign(&huge));
    let count = entries(&l, &d.grpc);
    match try_post(&url, &[("X-GitHub-Event", "pull_request"), ("X-Hub-Signature-256", huge_sig.as_str())], &huge) {
        Ok((status, _)) => assert_eq!(status, 413),
        Err(e) => assert!(e.contains("Broken pipe") || e.contains("reset"), "oversized delivery: {e}"),
    }
    assert_eq!(entries(&l, &d.grpc), count, "an oversized delivery changed the ledger");

    // A skipped event is accepted and says why.
    let ping = br#"{"zen":"Keep it logically awesome."}"#;
    let ping_sig = format!("sha256={}", sign(ping));
    let (status, v) = post(&url, &[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", ping_sig.as_str())], ping);
    assert_eq!((status, v["skipped"].is_string()), (202, true), "{v}");

    // PagerDuty: `v1=` signatures; a bad one is refused, a good one appends an incident.
    let pbody = std::fs::read(&pd).unwrap();
    let purl = format!("http://{}/webhooks/pagerduty", d.hooks);
    let (status, _) = post(&purl, &[("X-PagerDuty-Signature", "v1=00")], &pbody);
    assert_eq!(status, 401);
    let psig = format!("v1=deadbeef,v1={}", sign(&pbody));
    let (status, v) = post(&purl, &[("X-PagerDuty-Signature", psig.as_str())], &pbody);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["records"][0]["kind"], "incident");
    assert_eq!(entries(&l, &d.grpc), before + 3);

    // GitLab: the secret token itself, compared in constant time.
    if let Some(mr) = shared_data("realdata/gitlab-webhooks/go-playground/merge-request-event.json") {
        let gbody = std::fs::read(&mr).unwrap();
        let gurl = format!("http://{}/webhooks/gitlab", d.hooks);
        let (status, _) = post(&gurl, &[("X-Gitlab-Event", "Merge Request Hook"), ("X-Gitlab-Token", "wrong")], &gbody);
        assert_eq!(status, 401);
        let (status, _) = post(&gurl, &[("X-Gitlab-Event", "Merge Request Hook")], &gbody);
        assert_eq!(status, 401);
        assert_eq!(entries(&l, &d.grpc), before + 3);
        let (status, v) = post(&gurl, &[("X-Gitlab-Event", "Merge Request Hook"), ("X-Gitlab-Token", SECRET)], &gbody);
        assert!(status == 200 || status == 202, "{status}: {v}");
        let p: Value = serde_json::from_slice(&gbody).unwrap();
        if status == 200 {
            assert_eq!(v["records"][0]["kind"], "change", "{v}");
            let subject = format!(
                "pr:{}#{}",
                p["project"]["path_with_namespace"].as_str().unwrap(),
                p["object_attributes"]["iid"]
            );
            let why = l.json(["--server", &format!("http://{}", d.grpc), "why", &subject, "--json"]);
            assert_eq!(why["changes"][0]["head_commit"], p["object_attributes"]["last_commit"]["id"]);
        }
    }
}
