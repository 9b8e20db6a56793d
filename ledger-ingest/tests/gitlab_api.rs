//! The GitLab API backfill maps REST objects as the webhook ingest maps the deliveries that
//! carry the same objects: checked on the real deliveries in `../shared/realdata`, each object
//! rewritten in the shape the REST API returns it (RFC 3339 times with milliseconds, `web_url`,
//! nested `environment` and `commit`) and given to the API mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ledger_core::record::{Body, MergeMethod, Record, Rel, Source, Verdict};
use ledger_core::types::Identity;
use ledger_ingest::gitlab::api;
use ledger_ingest::{dedupe_key, gitlab, Held, Mapped, Response};
use serde_json::{json, Value};

mod common;
use common::records;

/// A real delivery from `../shared/realdata/gitlab-webhooks`.
fn delivery(relative: &str) -> Option<(Vec<u8>, Value)> {
    common::realdata(&format!("gitlab-webhooks/{relative}"))
}

/// What the records state: source taken out, times to the second (deliveries write seconds,
/// the API milliseconds).
fn facts(mut rs: Vec<Record>) -> Vec<Record> {
    for r in &mut rs {
        if let Some(s) = r.body.source_mut() {
            *s = Source::payload("-", ledger_core::record::document_digest("-"));
        }
        r.time.0 -= r.time.0.rem_euclid(1000);
    }
    rs
}

fn keys(rs: &[Record]) -> Vec<Option<String>> {
    rs.iter().map(dedupe_key).collect()
}

const BODY: &[u8] = b"[{\"the\": \"response\"}]";

fn from(resource: &str) -> Response<'_> {
    Response { resource, body: BODY }
}

/// A delivery's time as the REST API writes it: RFC 3339, UTC, with milliseconds.
fn rest_time(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => {
            let t = gitlab::parse_time(s).unwrap();
            json!(t.to_rfc3339().replace('Z', ".437Z"))
        }
        None => Value::Null,
    }
}

/// Checks that the API mapping of `rest` states what the delivery's mapping does, with the
/// same dedupe keys, and names the API resource and the response's digest.
fn same(hook: Vec<Record>, api: Vec<Record>, resource: &str) {
    assert!(!hook.is_empty());
    assert_eq!(facts(api.clone()), facts(hook.clone()));
    assert_eq!(keys(&api), keys(&hook), "the same facts, the same keys");
    for r in &api {
        let Some(Source::Payload { format, digest, .. }) = r.body.source() else { panic!("{r:?}") };
        assert_eq!(format, &format!("gitlab-api:{resource}"));
        use sha2::Digest as _;
        assert_eq!(digest.to_string(), format!("sha256:{}", hex::encode(sha2::Sha256::digest(BODY))));
    }
}

#[test]
fn pipelines_map_as_their_deliveries_do() {
    let mut compared = 0;
    for file in ["go-gitlab/pipeline.json", "go-playground/pipeline-event.json"] {
        let Some((bytes, v)) = delivery(file) else { return };
        let hook = records(gitlab::map("pipeline", &bytes).unwrap());
        let a = &v["object_attributes"];
        let rest = json!({
            "id": a["id"], "iid": a["iid"], "name": a.get("name"), "sha": a["sha"], "ref": a["ref"],
            "status": a["status"], "source": "merge_request_event",
            "created_at": rest_time(&a["created_at"]), "finished_at": rest_time(&a["finished_at"]),
            "web_url": a.get("url"), "user": v["user"],
        });
        let iid = v["merge_request"]["iid"].as_u64();
        let api = records(api::pipeline(&v["project"], &rest, iid, from("/projects/1/pipelines/31")).unwrap());
        assert_eq!(api[0].links.iter().filter(|l| l.rel == Rel::Change).count(), 1, "{file}: linked to its MR");
        same(hook, api, "/projects/1/pipelines/31");
        compared += 1;
        // A pipeline still running is not a result, from either source.
        let mut running = rest.clone();
        running["status"] = json!("running");
        assert!(matches!(api::pipeline(&v["project"], &running, iid, from("/p")).unwrap(), Mapped::Skipped(_)));
    }
    assert_eq!(compared, 2);
}

#[test]
fn jobs_map_as_their_deliveries_do() {
    let Some((bytes, v)) = delivery("go-gitlab/job.json") else { return };
    let hook = records(gitlab::map("build", &bytes).unwrap());
    let Body::Evidence(e) = &hook[0].body else { panic!() };
    let project = json!({ "id": v["project_id"], "path_with_namespace": e.repo.as_str() });
    let rest = json!({
        "id": v["build_id"], "status": v["build_status"], "stage": v["build_stage"], "name": v["build_name"],
        "created_at": rest_time(&v["build_created_at"]), "started_at": rest_time(&v["build_started_at"]),
        "finished_at": rest_time(&v["build_finished_at"]),
        "commit": { "id": v["sha"] }, "pipeline": { "id": v["pipeline_id"], "sha": v["sha"] }, "user": v["user"],
    });
    let api = records(api::job(&project, &rest, from("/projects/31537070/pipelines/743121198/jobs")).unwrap());
    same(hook, api, "/projects/31537070/pipelines/743121198/jobs");
    // go-playground's job is only created: skipped by both.
    let Some((bytes, v)) = delivery("go-playground/job-event.json") else { return };
    assert!(matches!(gitlab::map("build", &bytes).unwrap(), Mapped::Skipped(_)));
    let rest = json!({"status": v["build_status"], "stage": "test", "name": "test", "commit": {"id": v["sha"]}});
    assert!(matches!(api::job(&json!({"path_with_namespace": "g/p"}), &rest, from("/j")).unwrap(), Mapped::Skipped(_)));
}

#[test]
fn deployments_map_as_their_deliveries_do() {
    for file in ["go-gitlab/deployment.json", "go-playground/deployment-event.json"] {
        let Some((bytes, v)) = delivery(file) else { return };
        let hook = records(gitlab::map("deployment", &bytes).unwrap());
        let sha = v["commit_url"].as_str().unwrap().rsplit('/').next().unwrap();
        let rest = json!({
            "id": v["deployment_id"], "iid": 3, "ref": v.get("ref"), "sha": sha, "status": v["status"],
            "created_at": "2021-04-28T19:40:00.000Z", "updated_at": rest_time(&v["status_changed_at"]),
            "finished_at": rest_time(&v["status_changed_at"]),
            "environment": { "id": 9, "name": v["environment"] }, "user": v["user"],
        });
        let api = records(api::deployment(&v["project"], &rest, from("/projects/30/deployments")).unwrap());
        same(hook, api, "/projects/30/deployments");
    }
}

/// The REST object of the merge request a delivery carries.
fn rest_mr(v: &Value, author: &Identity) -> Value {
    let a = &v["object_attributes"];
    let labels: Vec<Value> = v["labels"].as_array().unwrap().iter().map(|l| l["title"].clone()).collect();
    json!({
        "id": a["id"], "iid": a["iid"], "title": a["title"], "description": a["description"],
        "state": a["state"], "updated_at": rest_time(&a["updated_at"]), "created_at": rest_time(&a["created_at"]),
        "author": { "id": a["author_id"], "username": author.as_str().trim_start_matches("gitlab:") },
        "sha": a["last_commit"]["id"], "merge_commit_sha": null, "squash_commit_sha": null,
        "labels": labels, "web_url": a["url"],
    })
}

#[test]
fn merge_requests_map_as_their_deliveries_do_and_say_which_commit_landed() {
    let Some((bytes, v)) = delivery("go-playground/merge-request-event.json") else { return };
    let hook = records(gitlab::map("merge_request", &bytes).unwrap());
    let Body::Change(c) = &hook[0].body else { panic!() };
    assert_eq!(c.labels, ["API"]);
    let rest = rest_mr(&v, &c.author);
    let api =
        records(api::merge_request(&v["project"], &rest, None, false, from("/projects/1/merge_requests/1")).unwrap());
    same(hook, api, "/projects/1/merge_requests/1");

    // Merged: a merge commit, a squash commit, or (fast-forward) the head itself landed.
    let head = v["object_attributes"]["last_commit"]["id"].as_str().unwrap();
    let (m, s) = ("a".repeat(40), "b".repeat(40));
    for (merge_sha, squash_sha, landed, method) in [
        (Some(&m), Some(&s), m.as_str(), MergeMethod::Merge),
        (None, Some(&s), s.as_str(), MergeMethod::Squash),
        (None, None, head, MergeMethod::Rebase),
    ] {
        let mut merged = rest.clone();
        merged["state"] = json!("merged");
        merged["merge_commit_sha"] = json!(merge_sha);
        merged["squash_commit_sha"] = json!(squash_sha);
        merged["merged_at"] = json!("2014-01-02T03:04:05.000Z");
        merged["merge_user"] = json!({"username": "maint"});
        merged["diff_refs"] = json!({"base_sha": "c".repeat(40), "head_sha": head});
        let r = records(api::merge_request(&v["project"], &merged, None, false, from("/m")).unwrap());
        let Body::Change(change) = &r[0].body else { panic!() };
        assert_eq!(change.base_commit.as_ref().map(|b| b.as_str().to_string()), Some("c".repeat(40)));
        let Body::Merge(mg) = &r[1].body else { panic!("{r:?}") };
        assert_eq!((mg.merge_commit.as_str(), mg.method, mg.head_commit.as_str()), (landed, method, head));
        assert_eq!(mg.merged_by.as_ref().map(Identity::as_str), Some("gitlab:maint"));
        assert_eq!((r[1].actor.as_str(), r[1].time.to_rfc3339()), ("gitlab:maint", "2014-01-02T03:04:05Z".into()));
    }

    // The diffs give paths and counted lines; a diff GitLab left out leaves lines unknown.
    let diffs = [
        json!({"old_path": "a.rs", "new_path": "a.rs", "diff": "@@ -1,2 +1,3 @@\n-x\n+y\n+z\n ctx\n"}),
        json!({"old_path": "old.rs", "new_path": "new.rs", "diff": "@@ -1 +1 @@\n+--x\n"}),
        json!({"old_path": "big.bin", "new_path": "big.bin", "diff": "", "too_large": true}),
    ];
    let parsed: Vec<_> = diffs.iter().filter_map(api::changed_file).collect();
    assert_eq!(
        parsed.iter().map(|(f, c)| (f.path.as_str(), f.additions, f.deletions, *c)).collect::<Vec<_>>(),
        [("a.rs", 2, 1, true), ("new.rs", 1, 0, true), ("big.bin", 0, 0, false)]
    );
    let files: Vec<_> = parsed.iter().map(|(f, _)| f.clone()).collect();
    let r = records(api::merge_request(&v["project"], &rest, Some(&files[..2]), true, from("/m")).unwrap());
    let Body::Change(change) = &r[0].body else { panic!() };
    assert_eq!((change.lines_added, change.lines_removed), (Some(3), Some(1)));
    assert_eq!(change.paths.as_deref(), Some(&["a.rs".to_string(), "new.rs".to_string()][..]));
    let r = records(api::merge_request(&v["project"], &rest, Some(&files), false, from("/m")).unwrap());
    let Body::Change(change) = &r[0].body else { panic!() };
    assert_eq!((change.lines_added, change.paths.as_ref().map(Vec::len)), (None, Some(3)));
}

#[test]
fn an_approval_note_is_bound_to_the_head_commit_of_its_time_as_a_delivery_binds_it() {
    let Some((bytes, v)) = delivery("go-playground/merge-request-event.json") else { return };
    let head = v["object_attributes"]["last_commit"]["id"].as_str().unwrap();
    let at = v["object_attributes"]["updated_at"].clone();
    // The delivery of the approval: the same merge request event, action `approved`.
    let approved = String::from_utf8(bytes).unwrap().replace("\"action\": \"open\"", "\"action\": \"approved\"");
    assert!(approved.contains("\"approved\""));
    let hook = records(gitlab::map("merge_request", approved.as_bytes()).unwrap());
    let versions = api::versions(&[
        json!({"id": 2, "head_commit_sha": head, "created_at": "2013-12-03T17:00:00.000Z"}),
        json!({"id": 1, "head_commit_sha": "e".repeat(40), "created_at": "2013-12-01T10:00:00.000Z"}),
    ])
    .unwrap();
    assert_eq!(versions[0].head.as_str(), "e".repeat(40), "oldest first");
    let note = |body: &str, time: Value| json!({"id": 5, "system": true, "body": body, "author": v["user"], "created_at": time, "noteable_type": "MergeRequest"});
    let n = note("approved this merge request", rest_time(&at));
    assert!(api::is_approval_note(&n));
    assert!(!api::is_approval_note(&note("added 1 commit", rest_time(&at))));
    let api_r =
        records(api::approval(&v["project"], 1, &n, &versions, from("/projects/1/merge_requests/1/notes")).unwrap());
    same(hook.clone(), api_r, "/projects/1/merge_requests/1/notes");

    // Given before the second push, an approval is of the first version's head; taking it
    // back is a dismissal; before any version, the commit is unknown.
    let early = records(
        api::approval(
            &v["project"],
            1,
            &note("approved this merge request", json!("2013-12-02T00:00:00Z")),
            &versions,
            from("/n"),
        )
        .unwrap(),
    );
    let Body::Review(r) = &early[0].body else { panic!() };
    assert_eq!((r.commit.as_str(), r.verdict), ("e".repeat(40).as_str(), Verdict::Approved));
    let back = records(
        api::approval(
            &v["project"],
            1,
            &note("unapproved this merge request", json!("2013-12-04T00:00:00Z")),
            &versions,
            from("/n"),
        )
        .unwrap(),
    );
    let Body::Review(r) = &back[0].body else { panic!() };
    assert_eq!((r.commit.as_str(), r.verdict), (head, Verdict::Dismissed));
    let before = api::approval(
        &v["project"],
        1,
        &note("approved this merge request", json!("2013-11-01T00:00:00Z")),
        &versions,
        from("/n"),
    );
    assert!(matches!(before.unwrap(), Mapped::Skipped(_)));
    assert!(api::versions(&[json!({"head_commit_sha": head})]).is_err(), "a version without a time");

    assert_eq!(
        api::approvers(&json!({"approved_by": [{"user": {"username": "root"}}, {"user": {"id": 3}}]})),
        ["root"]
    );
}

#[test]
fn an_approval_delivered_by_webhook_is_held_when_the_api_times_it_differently() {
    let Some((bytes, _)) = delivery("go-playground/merge-request-event.json") else { return };
    let approved = String::from_utf8(bytes).unwrap().replace("\"action\": \"open\"", "\"action\": \"approved\"");
    let delivered = records(gitlab::map("merge_request", approved.as_bytes()).unwrap()).remove(0);
    let mut from_api = delivered.clone();
    from_api.time.0 += 90_000; // the note's time, not the merge request's `updated_at`
    if let Some(s) = from_api.body.source_mut() {
        *s =
            Source::payload("gitlab-api:/projects/1/merge_requests/1/notes", ledger_core::record::document_digest("n"));
    }
    let mut held = Held::default();
    held.note(&delivered);
    assert!(!held.admit(&delivered), "the same record");
    assert!(!held.admit(&from_api), "the same approval, from the API");
    let mut again = from_api.clone();
    again.time.0 += 3_600_000;
    assert!(held.admit(&again), "a second approval of the same commit is another fact");
    assert!(!held.admit(&again), "once");
}

#[test]
fn commit_trailers_declare_sessions_with_the_ids_git_ingest_gives() {
    let project = json!({"id": 1, "path_with_namespace": "grp/app"});
    let sha = "d".repeat(40);
    let commit = json!({
        "id": sha, "message": "Fix\n\nAssisted-by: Claude Code <noreply@anthropic.com>\n",
        "author_name": "Ann Dev", "author_email": "ann@example.com", "authored_date": "2026-02-26T09:00:00.000+01:00",
    });
    let r = records(api::commit_sessions(&project, 7, &commit, from("/projects/1/merge_requests/7/commits")).unwrap());
    assert_eq!(r.len(), 1);
    let Body::Session(s) = &r[0].body else { panic!() };
    assert_eq!(s.session_id.as_str(), format!("git-{sha}"));
    assert_eq!(r[0].time.to_rfc3339(), "2026-02-26T08:00:00Z");
    assert!(r[0].links.iter().any(|l| l.target.to_string() == "pr:grp/app#7"));
    let mut plain = commit.clone();
    plain["message"] = json!("Fix");
    assert!(records(api::commit_sessions(&project, 7, &plain, from("/c")).unwrap()).is_empty());
    plain.as_object_mut().unwrap().remove("author_email");
    assert!(api::commit_sessions(&project, 7, &plain, from("/c")).is_err(), "a commit without its author");
}
