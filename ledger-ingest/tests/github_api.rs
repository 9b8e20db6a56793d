//! The GitHub API backfill maps REST objects as the webhook ingest maps the deliveries that
//! carry the same objects: checked on the real deliveries in `../shared/realdata`, each object
//! taken out of its delivery and given to the API mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ledger_core::record::{Body, Record, Source};
use ledger_core::types::Identity;
use ledger_ingest::github::api::{self, ChangedFile, Response};
use ledger_ingest::{dedupe_key, github, Mapped};
use serde_json::{json, Value};

mod common;
use common::records;

/// A real delivery from `../shared/realdata/github-webhooks`.
fn delivery(relative: &str) -> Option<(Vec<u8>, Value)> {
    common::realdata(&format!("github-webhooks/{relative}"))
}

/// The records with their source taken out (and, with `actor`, their actor too: the API does
/// not say who sent a check), for comparing what the two paths state.
fn facts(mut rs: Vec<Record>, actor: bool) -> Vec<Record> {
    for r in &mut rs {
        if let Some(s) = r.body.source_mut() {
            *s = Source::payload("-", ledger_core::record::document_digest("-"));
        }
        if actor {
            r.actor = Identity::new("github:x").unwrap();
        }
    }
    rs
}

fn source_format(r: &Record) -> String {
    match r.body.source() {
        Some(Source::Payload { format, .. }) => format.clone(),
        other => panic!("no payload source: {other:?}"),
    }
}

const BODY: &[u8] = b"{\"the\": \"response\"}";

fn from(resource: &str) -> Response<'_> {
    Response { resource, body: BODY }
}

#[test]
fn a_merged_pull_request_maps_as_its_closing_delivery_does_with_its_paths() {
    let Some((bytes, v)) = delivery("reallyfastci/webhook-pr-close.json") else { return };
    let hook = records(github::map("pull_request", &bytes).unwrap());
    assert!(hook.iter().any(|r| matches!(r.body, Body::Merge(_))), "the delivery is a merge");
    let api = records(api::pull_request(&v["repository"], &v["pull_request"], None, from("/repos/o/r/pulls")).unwrap());
    assert_eq!(facts(api.clone(), false), facts(hook.clone(), false));
    assert!(api.iter().all(|r| source_format(r) == "github-api:/repos/o/r/pulls"));
    let keys = |rs: &[Record]| rs.iter().map(dedupe_key).collect::<Vec<_>>();
    assert_eq!(keys(&api), keys(&hook), "the same facts, the same keys");
    assert!(keys(&api).iter().all(Option::is_some));
    let Some(Source::Payload { digest, .. }) = api[0].body.source() else { panic!() };
    assert_eq!(digest.to_string(), format!("sha256:{}", sha256_hex(BODY)), "the response's digest");

    // A list item: no `merged` flag, no line counts; the files give paths and counts.
    let mut item = v["pull_request"].clone();
    for k in ["merged", "additions", "deletions"] {
        item.as_object_mut().unwrap().remove(k);
    }
    let files = [
        ChangedFile { path: "src/b.rs".into(), additions: 3, deletions: 1 },
        ChangedFile { path: "tests/a.rs".into(), additions: 10, deletions: 0 },
    ];
    let api = records(api::pull_request(&v["repository"], &item, Some(&files), from("/repos/o/r/pulls")).unwrap());
    assert!(api.iter().any(|r| matches!(r.body, Body::Merge(_))), "merged_at says it merged");
    let Some(Body::Change(c)) = api.iter().map(|r| &r.body).find(|b| matches!(b, Body::Change(_))) else { panic!() };
    assert_eq!(c.paths.as_deref(), Some(&["src/b.rs".to_string(), "tests/a.rs".to_string()][..]));
    assert_eq!((c.lines_added, c.lines_removed), (Some(13), Some(1)));
}

#[test]
fn an_open_pull_request_has_no_merge() {
    let Some((bytes, v)) = delivery("octokit/pull_request/opened.payload.json") else { return };
    let hook = records(github::map("pull_request", &bytes).unwrap());
    let api = records(api::pull_request(&v["repository"], &v["pull_request"], None, from("/r")).unwrap());
    assert_eq!(facts(api.clone(), false), facts(hook, false));
    assert!(!api.iter().any(|r| matches!(r.body, Body::Merge(_))));
}

#[test]
fn reviews_checks_statuses_and_deployments_map_as_their_deliveries_do() {
    let cases: &[(&str, &str)] = &[
        ("octokit/pull_request_review/submitted.payload.json", "pull_request_review"),
        ("octokit/pull_request_review/submitted.with-organization.payload.json", "pull_request_review"),
        ("octokit/pull_request_review/dismissed.payload.json", "pull_request_review"),
        ("go-playground/pull-request-review.json", "pull_request_review"),
        ("octokit/check_run/completed.payload.json", "check_run"),
        ("octokit/check_run/completed.1.payload.json", "check_run"),
        ("go-playground/check-run.json", "check_run"),
        ("go-playground/status.json", "status"),
        ("go-playground/deployment.json", "deployment"),
        ("go-playground/deployment-status.json", "deployment_status"),
        ("octokit/deployment_status/payload.json", "deployment_status"),
        ("octokit/deployment_status/gh-pages.payload.json", "deployment_status"),
    ];
    let mut compared = 0;
    for (file, event) in cases {
        let Some((bytes, v)) = delivery(file) else { return };
        let hook = if *event == "check_run" && v["check_run"]["status"] == "completed" && v["action"] != "completed" {
            // A `rerequested` delivery of a completed run: the API lists the run as completed.
            let mut completed = v.clone();
            completed["action"] = json!("completed");
            github::map(event, completed.to_string().as_bytes()).unwrap()
        } else {
            github::map(event, &bytes).unwrap()
        };
        let repo = &v["repository"];
        let api = match *event {
            "pull_request_review" => {
                let mut review = v["review"].clone();
                if v["action"] == "dismissed" {
                    // The API lists a dismissed review with that state.
                    review["state"] = json!("DISMISSED");
                }
                api::review(repo, &v["pull_request"], &review, from("/reviews")).unwrap()
            }
            "check_run" => api::check_run(repo, &v["check_run"], from("/check-runs")).unwrap(),
            "status" => {
                let mut status = v.clone();
                for k in ["sha", "repository", "sender", "commit", "branches", "name"] {
                    status.as_object_mut().unwrap().remove(k);
                }
                api::status(repo, v["sha"].as_str().unwrap(), &status, from("/status")).unwrap()
            }
            "deployment" => api::deployment(repo, &v["deployment"], from("/deployments")).unwrap(),
            _ => api::deployment_status(repo, &v["deployment"], &v["deployment_status"], from("/statuses")).unwrap(),
        };
        match (hook, api) {
            (Mapped::Records(hook), Mapped::Records(api)) => {
                assert_eq!(facts(api.clone(), true), facts(hook.clone(), true), "{file}");
                for (a, h) in api.iter().zip(&hook) {
                    assert_eq!(dedupe_key(a), dedupe_key(h), "{file}: the same fact has the same key");
                    assert!(dedupe_key(a).is_some(), "{file}");
                }
                compared += 1;
            }
            (Mapped::Skipped(_), Mapped::Skipped(_)) => {}
            (hook, api) => panic!("{file}: the delivery maps to {hook:?}, the API object to {api:?}"),
        }
    }
    assert!(compared >= 10, "{compared} cases compared record by record");
}

#[test]
fn the_dedupe_key_tells_facts_apart() {
    let Some((bytes, _)) = delivery("octokit/pull_request_review/submitted.payload.json") else { return };
    let review = records(github::map("pull_request_review", &bytes).unwrap()).remove(0);
    let mut later = review.clone();
    later.time.0 += 1000;
    let mut other_actor = review.clone();
    other_actor.actor = Identity::new("github:someone-else").unwrap();
    assert_ne!(dedupe_key(&review), dedupe_key(&later), "another time is another review");
    assert_eq!(dedupe_key(&review), dedupe_key(&other_actor), "the actor is not part of the fact");
    let Some((bytes, _)) = delivery("octokit/pull_request/opened.payload.json") else { return };
    let change = records(github::map("pull_request", &bytes).unwrap()).remove(0);
    let mut edited = change.clone();
    edited.time.0 += 1000;
    assert!(dedupe_key(&change).is_some());
    assert_ne!(dedupe_key(&change), dedupe_key(&edited), "a later version of a change is another fact");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_commit_trailer_becomes_the_session_git_ingest_would_record() {
    let sha = "c".repeat(40);
    let commit = json!({
        "sha": sha,
        "commit": {
            "message": "Add login\n\nBody.\n\nAssisted-by: Claude Code <noreply@anthropic.com>\nCo-authored-by: Bob <bob@example.com>",
            "author": {"name": "Ann", "email": "ann@example.com", "date": "2026-02-26T09:00:00Z"},
        },
    });
    let repo = json!({"full_name": "acme/shop"});
    let pr = json!({"number": 12});
    let rs = records(api::commit_sessions(&repo, &pr, &commit, from("/repos/acme/shop/pulls/12/commits")).unwrap());
    assert_eq!(rs.len(), 1, "one AI trailer; Bob is a person: {rs:?}");
    let Body::Session(s) = &rs[0].body else { panic!() };
    assert_eq!((s.tool.as_str(), s.session_id.as_str()), ("claude", format!("git-{sha}").as_str()));
    assert_eq!(rs[0].actor.as_str(), "Ann <ann@example.com>");
    let targets: Vec<String> = rs[0].links.iter().map(|l| l.target.to_string()).collect();
    assert_eq!(targets, ["pr:acme/shop#12".to_string(), format!("git:acme/shop@{sha}")]);
    let bare = json!({"sha": sha, "commit": {"message": "No trailers", "author": {"name": "A", "email": "a@x", "date": "2026-02-26T09:00:00Z"}}});
    assert!(records(api::commit_sessions(&repo, &pr, &bare, from("/c")).unwrap()).is_empty());
    assert!(
        api::commit_sessions(&repo, &pr, &json!({"sha": sha}), from("/c")).is_err(),
        "a commit without its message"
    );
}
