//! `ledger ingest gitlab-api` against a local mock of the GitLab REST API v4 (wiremock) serving
//! objects taken from the real deliveries in `../shared/realdata`: three pages of merge
//! requests (one by `X-Next-Page`, one by `Link`), a rate limit by GitLab's `RateLimit-*`
//! headers, a 429 with `Retry-After`, a 502 then success, 304s on a re-run, a 401; approvals
//! bound to the head commit of their time; and a pipeline, an approval and a deployment that
//! webhook deliveries recorded first, recorded once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod common;
use common::{ledger_etag, ledgerd, realdata, Run};

const PROJECT: &str = "acme/shop";
const ID: u64 = 14;
/// Merge requests merged in the window (pages of 100, 100 and 30).
const MRS: u64 = 230;

/// The real objects the mock's answers are built from.
struct Objects {
    mrs: u64,
    project: Value,
    mr: Value,
    user: Value,
    pipeline: Value,
    job: Value,
    deployment: Value,
}

fn sha(tag: &str, n: u64) -> String {
    format!("{tag}{n:039x}")[..40].to_string()
}

fn number_of(sha: &str) -> u64 {
    u64::from_str_radix(&sha[1..], 16).unwrap()
}

fn merged_at(n: u64) -> String {
    format!("2026-03-{:02}T{:02}:{:02}:00.123Z", 1 + n % 28, n % 24, n % 60)
}

fn mr(o: &Objects, n: u64) -> Value {
    let a = &o.mr["object_attributes"];
    json!({
        "id": 9000 + n, "iid": n, "project_id": ID, "title": format!("{} {n}", a["title"].as_str().unwrap()),
        "description": format!("Change {n}"), "state": "merged",
        "created_at": "2026-02-20T08:00:00.000Z", "updated_at": merged_at(n), "merged_at": merged_at(n),
        "author": {"id": 51, "username": "ann"}, "merge_user": o.user, "merged_by": o.user,
        "sha": sha("a", n), "merge_commit_sha": sha("b", n), "squash_commit_sha": null,
        "labels": ["API"], "web_url": a["url"],
        "diff_refs": {"base_sha": sha("c", n), "head_sha": sha("a", n), "start_sha": sha("c", n)},
        "changes_count": "2",
    })
}

/// The pipeline `pid`: 100,000 + n ran for merge request n at its head, 500,000 + n at its
/// landed commit.
fn pipeline(o: &Objects, pid: u64) -> Value {
    let (commit, source) = if pid >= 500_000 {
        (sha("b", pid - 500_000), "push")
    } else {
        (sha("a", pid - 100_000), "merge_request_event")
    };
    let a = &o.pipeline["object_attributes"];
    json!({
        "id": pid, "iid": pid, "project_id": ID, "name": a["name"], "sha": commit, "ref": a["ref"],
        "status": a["status"], "source": source,
        "created_at": "2026-02-27T09:00:00.000Z", "finished_at": "2026-02-27T09:05:00.437Z",
        "updated_at": "2026-02-27T09:05:01.000Z", "web_url": format!("https://gl.example/{PROJECT}/-/pipelines/{pid}"),
        "user": o.pipeline["user"],
    })
}

/// Answers every resource; `If-None-Match` with the resource's ETag gets a 304.
fn respond(o: &Objects, server: &str, req: &Request) -> ResponseTemplate {
    let p = req.url.path().to_string();
    let etag = format!("\"{}\"", ledger_etag(req.url.as_ref()));
    if req.headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
    }
    let base = format!("/api/v4/projects/{ID}");
    let page: u64 = req.url.query_pairs().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).unwrap_or(1);
    let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body).insert_header("ETag", etag.as_str());
    if p == "/api/v4/projects/acme%2Fshop" {
        return ok(o.project.clone());
    }
    if p == format!("{base}/merge_requests") {
        let first = (page - 1) * 100 + 1;
        let last = (page * 100).min(o.mrs);
        let list: Vec<Value> = (first..=last).rev().map(|n| mr(o, n)).collect();
        let mut t = ok(Value::Array(list));
        // The first page says where the next is only by `X-Next-Page`; the second by `Link`.
        if last < o.mrs && page == 1 {
            t = t.insert_header("X-Next-Page", "2");
        } else if last < o.mrs {
            let next = format!(
                "<{server}{base}/merge_requests?state=merged&order_by=updated_at&sort=desc&per_page=100&page={}>; rel=\"next\"",
                page + 1
            );
            t = t.insert_header("Link", next.as_str()).insert_header("X-Next-Page", (page + 1).to_string().as_str());
        }
        return t;
    }
    if let Some(rest) = p.strip_prefix(&format!("{base}/merge_requests/")) {
        let mut parts = rest.split('/');
        let n: u64 = parts.next().unwrap().parse().unwrap();
        return ok(match parts.next() {
            None => mr(o, n),
            Some("diffs") => json!([
                {"old_path": format!("src/f{n}.rs"), "new_path": format!("src/f{n}.rs"), "diff": "@@ -1,2 +1,11 @@\n-a\n+b\n+c\n+d\n+e\n+f\n+g\n+h\n+i\n+j\n+k\n-l\n"},
                {"old_path": "tests/it.rs", "new_path": "tests/it.rs", "diff": "@@ -0,0 +1,5 @@\n+1\n+2\n+3\n+4\n+5\n"},
            ]),
            Some("commits") => json!([{
                "id": sha("a", n), "short_id": &sha("a", n)[..8], "title": format!("Change {n}"),
                "message": format!("Change {n}\n\nAssisted-by: Claude Code <noreply@anthropic.com>\n"),
                "author_name": "Ann Dev", "author_email": "ann@example.com", "authored_date": "2026-02-26T09:00:00.000+00:00",
            }]),
            Some("versions") => json!([
                {"id": 2, "head_commit_sha": sha("a", n), "base_commit_sha": sha("c", n), "created_at": "2026-02-20T08:00:00.000Z", "state": "collected"},
            ]),
            Some("notes") => json!([
                {"id": 1, "system": false, "body": "LGTM", "author": {"username": "reviewer1"}, "created_at": "2026-02-27T09:59:00.000Z"},
                {"id": 2, "system": true, "body": "approved this merge request", "author": {"username": "reviewer1"}, "created_at": "2026-02-27T10:00:00.250Z"},
            ]),
            Some("approvals") => json!({
                "iid": n, "approved": true,
                "approved_by": [{"user": {"username": "reviewer1"}}, {"user": {"username": "ghost"}}],
            }),
            Some("pipelines") => json!([{"id": 100_000 + n, "sha": sha("a", n), "status": "success"}]),
            _ => return ResponseTemplate::new(404),
        });
    }
    if p == format!("{base}/pipelines") {
        let commit = req.url.query_pairs().find(|(k, _)| k == "sha").map(|(_, v)| v.into_owned()).unwrap_or_default();
        return ok(json!([{"id": 500_000 + number_of(&commit), "sha": commit, "status": "success"}]));
    }
    if let Some(rest) = p.strip_prefix(&format!("{base}/pipelines/")) {
        let mut parts = rest.split('/');
        let pid: u64 = parts.next().unwrap().parse().unwrap();
        let pipe = pipeline(o, pid);
        return ok(match parts.next() {
            None => pipe,
            Some("jobs") => {
                let mut job = o.job.clone();
                job["commit"] = json!({"id": pipe["sha"]});
                job["pipeline"] = json!({"id": pid, "sha": pipe["sha"]});
                json!([job])
            }
            _ => return ResponseTemplate::new(404),
        });
    }
    if p == format!("{base}/deployments") {
        let mut a = o.deployment.clone();
        a["id"] = json!(71);
        a["created_at"] = json!("2026-03-20T10:00:00.000Z");
        let mut b = o.deployment.clone();
        b["id"] = json!(70);
        b["created_at"] = json!("2025-12-01T10:00:00.000Z"); // before the window
        return ok(json!([a, b]));
    }
    ResponseTemplate::new(404)
}

/// The real objects, shaped as the REST API returns them (`None`: the data is missing).
fn objects(mrs: u64) -> Option<Objects> {
    let (Some(mr), Some(pipe), Some(job), Some(dep)) = (
        realdata("gitlab-webhooks/go-playground/merge-request-event.json"),
        realdata("gitlab-webhooks/go-playground/pipeline-event.json"),
        realdata("gitlab-webhooks/go-gitlab/job.json"),
        realdata("gitlab-webhooks/go-gitlab/deployment.json"),
    ) else {
        return None;
    };
    let mut project = mr["project"].clone();
    project["id"] = json!(ID);
    project["name"] = json!("shop");
    project["path_with_namespace"] = json!(PROJECT);
    let job = json!({
        "id": job["build_id"], "status": job["build_status"], "stage": job["build_stage"], "name": job["build_name"],
        "created_at": "2026-02-27T09:01:00.000Z", "started_at": "2026-02-27T09:02:00.000Z",
        "finished_at": "2026-02-27T09:04:00.100Z", "user": job["user"],
    });
    let commit = dep["commit_url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let deployment = json!({
        "iid": 3, "ref": dep["ref"], "sha": commit, "status": dep["status"],
        "updated_at": "2026-03-20T10:05:00.000Z", "finished_at": "2026-03-20T10:05:00.000Z",
        "environment": {"id": 9, "name": dep["environment"]}, "user": dep["user"],
    });
    Some(Objects { mrs, project, user: mr["user"].clone(), mr, pipeline: pipe, job, deployment })
}

/// A mock API on its own runtime answering every resource from `o`.
fn serve(o: Objects) -> (tokio::runtime::Runtime, MockServer, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    let uri = server.uri();
    let (objects, base) = (std::sync::Arc::new(o), uri.clone());
    rt.block_on(
        Mock::given(method("GET"))
            .and(path_regex("^/api/v4/.*"))
            .respond_with(move |req: &Request| respond(&objects, &base, req))
            .with_priority(5)
            .mount(&server),
    );
    (rt, server, uri)
}

fn backfill(run: &Run, server: &str, token: &str, code: i32) -> (String, String) {
    run.backfill("gitlab-api", ["--project", PROJECT], server, token, code)
}

/// Deliveries of what the mock serves for merge request 5 (its head pipeline, its approval)
/// and for deployment 71, as GitLab's webhooks would have sent them, ingested first.
fn deliver_first(run: &Run) {
    let (Some(mut pipe), Some(mut approval), Some(mut dep)) = (
        realdata("gitlab-webhooks/go-playground/pipeline-event.json"),
        realdata("gitlab-webhooks/go-playground/merge-request-event.json"),
        realdata("gitlab-webhooks/go-gitlab/deployment.json"),
    ) else {
        return;
    };
    let project = json!({"id": ID, "name": "shop", "path_with_namespace": PROJECT});
    pipe["project"] = project.clone();
    pipe["object_attributes"]["id"] = json!(100_005);
    pipe["object_attributes"]["sha"] = json!(sha("a", 5));
    pipe["object_attributes"]["finished_at"] = json!("2026-02-27 09:05:00 UTC");
    pipe["merge_request"]["iid"] = json!(5);
    pipe["merge_request"]["target_project_id"] = json!(ID);
    approval["project"] = project.clone();
    approval["user"]["username"] = json!("reviewer1");
    approval["object_attributes"]["iid"] = json!(5);
    approval["object_attributes"]["action"] = json!("approved");
    // The delivery's time is the merge request's `updated_at`, not the approval note's.
    approval["object_attributes"]["updated_at"] = json!("2026-02-27T10:00:07Z");
    approval["object_attributes"]["last_commit"]["id"] = json!(sha("a", 5));
    dep["project"] = project;
    dep["deployment_id"] = json!(71);
    dep["status_changed_at"] = json!("2026-03-20 11:05:00 +0100");
    let mut files = vec![];
    for (name, v) in [("pipeline", pipe), ("approval", approval), ("deployment", dep)] {
        let f = run.dir.path().join(format!("{name}.json"));
        std::fs::write(&f, v.to_string()).unwrap();
        files.push(f.to_str().unwrap().to_string());
    }
    let mut args = vec!["ingest", "gitlab"];
    args.extend(files.iter().map(String::as_str));
    run.ledger(&args, 0);
    assert_eq!((run.count("evidence"), run.count("review"), run.count("deployment")), (1, 1, 1));
}

#[test]
fn a_backfill_pages_waits_retries_binds_approvals_and_appends_each_fact_once() {
    let Some(o) = objects(MRS) else { return };
    let (rt, server, uri) = serve(o);
    let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 2;
    rt.block_on(async {
        // Once each, ahead of the normal answers: GitLab's rate limit on the second page, a
        // 429 with `Retry-After` on one merge request, a 502 on another's diffs.
        Mock::given(method("GET"))
            .and(path(format!("/api/v4/projects/{ID}/merge_requests")))
            .and(query_param("page", "2"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("RateLimit-Remaining", "0")
                    .insert_header("RateLimit-Reset", reset.to_string().as_str()),
            )
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/api/v4/projects/{ID}/merge_requests/7")))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/api/v4/projects/{ID}/merge_requests/9/diffs")))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
    });

    let run = Run::new();
    deliver_first(&run);

    // A wrong token: a clear error, nothing appended.
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(wiremock::matchers::header("authorization", "Bearer wrong"))
            .respond_with(ResponseTemplate::new(401))
            .with_priority(1)
            .mount(&server)
            .await;
    });
    let (_, err) = backfill(&run, &uri, "wrong", 2);
    assert!(err.contains("401") && err.contains("GITLAB_TOKEN") && err.contains("read_api"), "{err}");
    assert_eq!(run.count("change"), 0);
    // A project that is not there: the path and what to check.
    let (_, err) = run.ledger(&["ingest", "gitlab-api", "--project", "acme/nope", "--api-url", &uri], 2);
    assert!(err.contains("404") && err.contains("acme%2Fnope") && err.contains("GROUP/NAME"), "{err}");

    let (out, _) = backfill(&run, &uri, "good", 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["merge_requests"], MRS, "{report:#}");
    assert_eq!(report["deployments"], 1, "the deployment before the window is left out: {report:#}");
    assert!(report["rate_limit_waits"].as_u64().unwrap() >= 2, "both limits: {report:#}");
    assert!(report["waited_ms"].as_u64().unwrap() >= 1000, "{report:#}");
    assert!(report["retries"].as_u64().unwrap() >= 1, "the 502: {report:#}");
    assert_eq!(report["already_present"], 3, "the delivered pipeline, approval and deployment: {report:#}");
    assert_eq!(report["skipped"], MRS, "per merge request, the approver no note dates: {report:#}");
    let n = MRS as usize;
    assert_eq!(run.count("change"), n);
    assert_eq!(run.count("merge"), n);
    assert_eq!(run.count("session"), n, "an AI session per merge request, from its commit's trailer");
    assert_eq!(run.count("review"), n, "the delivered approval is not recorded again");
    // Per merge request: a pipeline and its job at the head, and at the landed commit.
    assert_eq!(run.count("evidence"), 4 * n);
    assert_eq!(run.count("deployment"), 1);

    // The approval is valid at the head; paths and lines from the diffs; the merger.
    let (why, _) = run.ledger(&["why", &format!("pr:{PROJECT}#5"), "--json"], 0);
    let why: Value = serde_json::from_str(&why).unwrap();
    let change = &why["changes"][0];
    let reviews = change["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 1, "shown once: {change:#}");
    assert_eq!(reviews[0]["status"], "valid", "{change:#}");
    let (shown, _) = run.ledger(&["log", "--kind", "change", "--subject", &format!("pr:{PROJECT}#9"), "--json"], 0);
    let rec: Value = serde_json::from_str(shown.lines().next().unwrap()).unwrap();
    let body = &rec["record"]["body"]["change"];
    assert_eq!(body["paths"], json!(["src/f9.rs", "tests/it.rs"]), "{rec:#}");
    assert_eq!((body["lines_added"].as_u64(), body["lines_removed"].as_u64()), (Some(15), Some(2)), "{rec:#}");
    assert_eq!(body["base_commit"], sha("c", 9), "{rec:#}");
    let (merges, _) = run.ledger(&["log", "--kind", "merge", "--subject", &format!("pr:{PROJECT}#9"), "--json"], 0);
    let m: Value = serde_json::from_str(merges.lines().next().unwrap()).unwrap();
    assert_eq!(m["record"]["body"]["merge"]["merged_by"], "gitlab:root", "{m:#}");
    assert_eq!(m["record"]["body"]["merge"]["merge_commit"], sha("b", 9), "{m:#}");

    // A re-run: every resource answers 304, nothing is appended.
    let (out, _) = backfill(&run, &uri, "good", 0);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["appended"], 0, "{again:#}");
    assert!(again["not_modified"].as_u64().unwrap() >= MRS * 10, "{again:#}");
    assert_eq!(run.count("review"), n);
    run.ledger(&["verify"], 0);
}

#[test]
fn a_backfill_through_ledgerd_appends_the_same_and_a_rerun_nothing() {
    let Some(o) = objects(40) else { return };
    let (_rt, _server, uri) = serve(o);
    let run = Run::new();
    let Some(d) = ledgerd(&run.dir.path().join("ledger-data")) else { return };
    let args = |cache: &str| {
        vec![
            "--server".to_string(),
            d.url.clone(),
            "ingest".into(),
            "gitlab-api".into(),
            "--project".into(),
            PROJECT.into(),
            "--since".into(),
            "2026-01-01".into(),
            "--api-url".into(),
            format!("{uri}/api/v4"),
            "--cache".into(),
            cache.into(),
            "--json".into(),
        ]
    };
    let argv = args("cache");
    let (out, _) = run.ledger(&argv.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["merge_requests"], 40, "{report:#}");
    // 40 × (change, session, merge, review, 4 pieces of evidence) and the deployment.
    assert_eq!(report["appended"], 40 * 8 + 1, "{report:#}");
    let argv = args("another-cache");
    let (out, _) = run.ledger(&argv.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((again["appended"].as_u64(), again["not_modified"].as_u64()), (Some(0), Some(0)), "{again:#}");
    assert_eq!(again["already_present"], report["appended"], "{again:#}");
}

/// The GitLab backfill benchmark (docs/BENCHMARKS.md): `LEDGER_BENCH_MRS` (default 5,000)
/// merged merge requests served by the mock, no rate limit. Run with
/// `cargo test --release -p ledger-cli --test gitlab_api -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run on purpose, in release"]
fn gitlab_backfill_benchmark() {
    let mrs = std::env::var("LEDGER_BENCH_MRS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let Some(o) = objects(mrs) else { return };
    let (_rt, _server, uri) = serve(o);
    let run = Run::new();
    let began = std::time::Instant::now();
    let (out, _) = backfill(&run, &uri, "good", 0);
    let took = began.elapsed();
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["merge_requests"], mrs, "{report:#}");
    assert_eq!(report["appended"], mrs * 8 + 1, "{report:#}");
    println!(
        "backfill of {mrs} merge requests: {:.1} s, {} requests, {} records appended",
        took.as_secs_f64(),
        report["requests"],
        report["appended"]
    );
}
