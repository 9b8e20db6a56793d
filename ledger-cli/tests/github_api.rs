//! `ledger ingest github-api` against a local mock of the GitHub REST API (wiremock) serving
//! objects taken from the real deliveries in `../shared/realdata`: three pages of pull
//! requests, a primary rate limit, a secondary limit with `Retry-After`, a 502 then success,
//! 304s on a re-run, a 401; and a review that a webhook delivery recorded first, recorded once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod common;
use common::{ledger_etag, ledgerd, realdata, Run};

const REPO: &str = "acme/shop";
/// Pull requests merged in the window (three pages of 100 and one of 10).
const PRS: u64 = 310;

/// The objects the mock serves, built from real ones, and how many pull requests it lists.
struct Objects {
    prs: u64,
    repo: Value,
    pr: Value,
    review: Value,
    check_run: Value,
    deployment: Value,
    status: Value,
}

fn sha(tag: &str, n: u64) -> String {
    format!("{tag}{n:039x}")[..40].to_string()
}

fn pr(o: &Objects, n: u64) -> Value {
    let mut pr = o.pr.clone();
    pr["number"] = json!(n);
    pr["head"]["sha"] = json!(sha("a", n));
    pr["merge_commit_sha"] = json!(sha("b", n));
    let t = format!("2026-03-{:02}T{:02}:{:02}:00Z", 1 + n % 28, n % 24, n % 60);
    pr["merged_at"] = json!(t);
    pr["closed_at"] = json!(t);
    pr["updated_at"] = json!(t);
    pr["changed_files"] = json!(2);
    pr["additions"] = json!(15);
    pr["deletions"] = json!(2);
    pr["body"] = json!(format!("Change {n}"));
    pr
}

/// Answers every resource; `If-None-Match` with the resource's ETag gets a 304.
fn respond(o: &Objects, server: &str, req: &Request) -> ResponseTemplate {
    let p = req.url.path().to_string();
    let etag = format!("\"{}\"", ledger_etag(req.url.as_ref()));
    if req.headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
    }
    let base = format!("/repos/{REPO}");
    let page: u64 = req.url.query_pairs().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).unwrap_or(1);
    let body = if p == base {
        o.repo.clone()
    } else if p == format!("{base}/pulls") {
        let first = (page - 1) * 100 + 1;
        let last = (page * 100).min(o.prs);
        let mut list: Vec<Value> = (first..=last).rev().map(|n| pr(o, n)).collect();
        for item in &mut list {
            for k in ["merged", "merged_by", "additions", "deletions", "changed_files"] {
                item.as_object_mut().unwrap().remove(k);
            }
        }
        let mut t = ResponseTemplate::new(200).set_body_json(Value::Array(list)).insert_header("ETag", etag.as_str());
        if last < o.prs {
            let next = format!(
                "<{server}{base}/pulls?state=closed&sort=updated&direction=desc&per_page=100&page={}>; rel=\"next\"",
                page + 1
            );
            t = t.insert_header("Link", next.as_str());
        }
        return t;
    } else if let Some(rest) = p.strip_prefix(&format!("{base}/pulls/")) {
        let mut parts = rest.split('/');
        let n: u64 = parts.next().unwrap().parse().unwrap();
        match parts.next() {
            None => pr(o, n),
            Some("files") => json!([
                {"filename": format!("src/f{n}.rs"), "additions": 10, "deletions": 2},
                {"filename": "tests/it.rs", "additions": 5, "deletions": 0},
            ]),
            Some("commits") => json!([{
                "sha": sha("a", n),
                "commit": {
                    "message": format!("Change {n}\n\nAssisted-by: Claude Code <noreply@anthropic.com>"),
                    "author": {"name": "Ann Dev", "email": "ann@example.com", "date": "2026-02-26T09:00:00Z"},
                },
            }]),
            Some("reviews") => {
                let mut r = o.review.clone();
                r["id"] = json!(1000 + n);
                r["commit_id"] = json!(sha("a", n));
                r["state"] = json!("APPROVED");
                r["submitted_at"] = json!("2026-02-27T10:00:00Z");
                json!([r])
            }
            _ => json!([]),
        }
    } else if let Some(rest) = p.strip_prefix(&format!("{base}/commits/")) {
        let (commit, what) = rest.split_once('/').unwrap();
        if what == "check-runs" {
            let mut run = o.check_run.clone();
            run["head_sha"] = json!(commit);
            run["pull_requests"] = json!([]);
            json!({"total_count": 1, "check_runs": [run]})
        } else {
            json!({"state": "success", "sha": commit, "statuses": [
                {"id": 1, "state": "success", "context": "ci/unit", "target_url": "https://ci.example/1",
                 "created_at": "2026-02-27T09:00:00Z", "updated_at": "2026-02-27T09:05:00Z"}
            ]})
        }
    } else if p == format!("{base}/deployments") {
        let mut a = o.deployment.clone();
        a["id"] = json!(71);
        a["created_at"] = json!("2026-03-20T10:00:00Z");
        let mut b = o.deployment.clone();
        b["id"] = json!(70);
        b["created_at"] = json!("2025-12-01T10:00:00Z"); // before the window
        json!([a, b])
    } else if p.starts_with(&format!("{base}/deployments/")) && p.ends_with("/statuses") {
        let mut s = o.status.clone();
        s["state"] = json!("success");
        s["created_at"] = json!("2026-03-20T10:05:00Z");
        json!([s])
    } else {
        return ResponseTemplate::new(404);
    };
    ResponseTemplate::new(200).set_body_json(body).insert_header("ETag", etag.as_str())
}

fn backfill(run: &Run, server: &str, token: &str, code: i32) -> (String, String) {
    run.backfill("github-api", ["--repo", REPO], server, token, code)
}

/// The real objects the mock's answers are built from (`None`: the data is missing).
fn objects(prs: u64) -> Option<(Objects, Value)> {
    let (Some(closed), Some(review), Some(check), Some(dep)) = (
        realdata("github-webhooks/reallyfastci/webhook-pr-close.json"),
        realdata("github-webhooks/octokit/pull_request_review/submitted.payload.json"),
        realdata("github-webhooks/octokit/check_run/completed.payload.json"),
        realdata("github-webhooks/octokit/deployment_status/payload.json"),
    ) else {
        return None;
    };
    let mut repo = closed["repository"].clone();
    repo["full_name"] = json!(REPO);
    repo["name"] = json!("shop");
    let o = Objects {
        prs,
        repo,
        pr: closed["pull_request"].clone(),
        review: review["review"].clone(),
        check_run: check["check_run"].clone(),
        deployment: dep["deployment"].clone(),
        status: dep["deployment_status"].clone(),
    };
    Some((o, review))
}

/// A mock API on its own runtime answering every resource from `o`.
fn serve(o: Objects) -> (tokio::runtime::Runtime, MockServer, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    let uri = server.uri();
    let (objects, base) = (std::sync::Arc::new(o), uri.clone());
    rt.block_on(
        Mock::given(method("GET"))
            .and(path_regex("^/repos/.*"))
            .respond_with(move |req: &Request| respond(&objects, &base, req))
            .with_priority(5)
            .mount(&server),
    );
    (rt, server, uri)
}

#[test]
fn a_backfill_pages_waits_retries_and_appends_each_fact_once() {
    let Some((o, review)) = objects(PRS) else { return };
    let (rt, server, uri) = serve(o);
    let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 2;
    rt.block_on(async {
        // Once each, ahead of the normal answers: a primary rate limit on the second page, a
        // secondary limit on one pull request, a 502 on another's files.
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls")))
            .and(wiremock::matchers::query_param("page", "2"))
            .respond_with(
                ResponseTemplate::new(403)
                    .insert_header("X-RateLimit-Remaining", "0")
                    .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
            )
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/7")))
            .respond_with(ResponseTemplate::new(403).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/9/files")))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
    });

    let run = Run::new();
    // A webhook delivery recorded the review of pull request 5 first.
    let mut delivery = review.clone();
    delivery["repository"] = json!({"full_name": REPO, "name": "shop"});
    delivery["pull_request"]["number"] = json!(5);
    delivery["review"]["commit_id"] = json!(sha("a", 5));
    delivery["review"]["state"] = json!("approved");
    delivery["review"]["submitted_at"] = json!("2026-02-27T10:00:00Z");
    let file = run.dir.path().join("review.json");
    std::fs::write(&file, delivery.to_string()).unwrap();
    run.ledger(&["ingest", "github", "--event", "pull_request_review", file.to_str().unwrap()], 0);
    assert_eq!(run.count("review"), 1);

    // A wrong token: a clear error, nothing appended.
    let before = run.count("change");
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(wiremock::matchers::header("authorization", "Bearer wrong"))
            .respond_with(ResponseTemplate::new(401))
            .with_priority(1)
            .mount(&server)
            .await;
    });
    let (_, err) = backfill(&run, &uri, "wrong", 2);
    assert!(err.contains("401") && err.contains("token"), "{err}");
    assert_eq!(run.count("change"), before);

    let (out, _) = backfill(&run, &uri, "good", 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["pull_requests"], PRS, "{report:#}");
    assert_eq!(report["deployments"], 1, "the deployment before the window is left out: {report:#}");
    assert!(report["rate_limit_waits"].as_u64().unwrap() >= 2, "the primary and the secondary limit: {report:#}");
    assert!(report["waited_ms"].as_u64().unwrap() >= 1000, "{report:#}");
    assert!(report["retries"].as_u64().unwrap() >= 1, "the 502: {report:#}");
    assert_eq!(run.count("change"), PRS as usize);
    assert_eq!(run.count("merge"), PRS as usize);
    assert_eq!(run.count("review"), PRS as usize, "the webhook's review is not recorded again");
    assert_eq!(report["already_present"], 1, "{report:#}");
    // Per pull request: a check run and a status at its head and at its landed commit.
    assert_eq!(run.count("evidence"), 4 * PRS as usize);
    assert_eq!(run.count("deployment"), 2, "the deployment and its success");
    assert_eq!(run.count("session"), PRS as usize, "an AI session per pull request, from its commit's trailer");

    // Paths from the files, the merger from the full object, the review at its commit.
    let (why, _) = run.ledger(&["why", &format!("pr:{REPO}#9"), "--json"], 0);
    let why: Value = serde_json::from_str(&why).unwrap();
    let change = &why["changes"][0];
    assert_eq!(change["reviews"].as_array().unwrap().len(), 1, "{change:#}");
    let (shown, _) = run.ledger(&["log", "--kind", "change", "--subject", &format!("pr:{REPO}#9"), "--json"], 0);
    let rec: Value = serde_json::from_str(shown.lines().next().unwrap()).unwrap();
    assert_eq!(rec["record"]["body"]["change"]["paths"], json!(["src/f9.rs", "tests/it.rs"]), "{rec:#}");
    assert_eq!(rec["record"]["body"]["change"]["lines_added"], 15);

    // A re-run: every resource answers 304, nothing is appended.
    let (out, _) = backfill(&run, &uri, "good", 0);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["appended"], 0, "{again:#}");
    assert!(again["not_modified"].as_u64().unwrap() >= PRS * 7, "{again:#}");
    assert_eq!(run.count("review"), PRS as usize);
    run.ledger(&["verify"], 0);
}

/// The backfill benchmark (docs/BENCHMARKS.md): `LEDGER_BENCH_PRS` (default 5,000) merged pull
/// requests served by the mock, no rate limit; prints the wall time of the backfill. Run with
/// `cargo test --release -p ledger-cli --test github_api -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run on purpose, in release"]
fn backfill_benchmark() {
    let prs = std::env::var("LEDGER_BENCH_PRS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let Some((o, _)) = objects(prs) else { return };
    let (_rt, _server, uri) = serve(o);
    let run = Run::new();
    let began = std::time::Instant::now();
    let (out, _) = backfill(&run, &uri, "good", 0);
    let took = began.elapsed();
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["pull_requests"], prs, "{report:#}");
    println!(
        "backfill of {prs} pull requests: {:.1} s, {} requests, {} records appended",
        took.as_secs_f64(),
        report["requests"],
        report["appended"]
    );
}

#[test]
fn an_api_that_never_stops_limiting_ends_the_run_with_an_error() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
            .mount(&server),
    );
    let run = Run::new();
    let (_, err) = backfill(&run, &server.uri(), "good", 2);
    assert!(err.contains("still rate limited"), "{err}");
    let asked = rt.block_on(server.received_requests()).unwrap().len();
    assert_eq!(asked, 21, "twenty waits, then the error");
    assert_eq!(run.count("change"), 0);
}

#[test]
fn a_backfill_through_ledgerd_appends_the_same_and_a_rerun_nothing() {
    let Some((o, _)) = objects(120) else { return };
    let (_rt, _server, uri) = serve(o);
    let run = Run::new();
    let Some(d) = ledgerd(&run.dir.path().join("ledger-data")) else { return };
    let args = |cache: &str| {
        vec![
            "--server".to_string(),
            d.url.clone(),
            "ingest".into(),
            "github-api".into(),
            "--repo".into(),
            REPO.into(),
            "--since".into(),
            "2026-01-01".into(),
            "--api-url".into(),
            uri.clone(),
            "--cache".into(),
            cache.into(),
            "--json".into(),
        ]
    };
    let argv = args("cache");
    let (out, _) = run.ledger(&argv.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["pull_requests"], 120, "{report:#}");
    // 120 × (change, session, merge, review, 4 checks) and the deployment's two records.
    assert_eq!(report["appended"], 120 * 8 + 2, "{report:#}");
    let (log, _) = run.ledger(&["--server", &d.url, "log", "--kind", "change", "--json"], 0);
    assert_eq!(log.lines().filter(|l| !l.trim().is_empty()).count(), 120);
    // Again through ledgerd, without the cache: every fact is found in the ledger.
    let argv = args("another-cache");
    let (out, _) = run.ledger(&argv.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((again["appended"].as_u64(), again["not_modified"].as_u64()), (Some(0), Some(0)), "{again:#}");
    assert_eq!(again["already_present"], report["appended"], "{again:#}");
}
