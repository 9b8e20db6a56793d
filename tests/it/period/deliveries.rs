//! The webhook deliveries of the generated half-year, built from the recorded ones in
//! `../shared/realdata`: each payload is a recorded delivery with the fields that name the
//! change, commit, person, time and deployment set to the generated history's.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{ai, author, emergency, failing_check, head, landed, merged_at, opened_at, service, time};
use crate::support::shared_data;

/// The recorded deliveries the payloads are built from.
pub(super) struct Templates {
    opened: Value,
    closed: Value,
    review: Value,
    check: Value,
    deployment: Value,
    status: Value,
    push: Value,
    triggered: Value,
    resolved: Value,
}

impl Templates {
    pub(super) fn load() -> Option<Templates> {
        let read = |rel: &str| -> Option<Value> {
            let p = shared_data(&format!("realdata/{rel}"))?;
            Some(serde_json::from_slice(&std::fs::read(&p).expect("reading a template")).expect("JSON"))
        };
        Some(Templates {
            opened: read("github-webhooks/octokit/pull_request/opened.payload.json")?,
            closed: read("github-webhooks/octokit/pull_request/closed.payload.json")?,
            review: read("github-webhooks/go-playground/pull-request-review.json")?,
            check: read("github-webhooks/octokit/check_run/completed.payload.json")?,
            deployment: read("github-webhooks/octokit/deployment/payload.json")?,
            status: read("github-webhooks/octokit/deployment_status/payload.json")?,
            push: read("github-webhooks/go-playground/push.json")?,
            triggered: read("incidents/pagerduty/triggered_v3.json")?,
            resolved: read("incidents/pagerduty/resolved_v3.json")?,
        })
    }

    fn repository(&self, svc: &str) -> Value {
        let mut r = self.opened["repository"].clone();
        r["full_name"] = json!(format!("acme/{svc}"));
        r["name"] = json!(svc);
        r["owner"]["login"] = json!("acme");
        r["default_branch"] = json!("main");
        r
    }

    pub(super) fn pull_request(&self, i: usize, merged: bool) -> Value {
        let mut p = if merged { self.closed.clone() } else { self.opened.clone() };
        let n = 1000 + i;
        p["repository"] = self.repository(service(i));
        p["number"] = json!(n);
        let pr = &mut p["pull_request"];
        pr["number"] = json!(n);
        pr["title"] = json!(format!("Change {i}: update {}", service(i)));
        pr["user"]["login"] = json!(author(i));
        pr["head"]["sha"] = json!(head(i));
        pr["base"]["sha"] = json!(format!("c3{i:038x}"));
        pr["created_at"] = json!(time(opened_at(i)));
        pr["updated_at"] = json!(time(if merged { merged_at(i) } else { opened_at(i) }));
        pr["labels"] = if emergency(i) { json!([{"name": "hotfix"}]) } else { json!([]) };
        pr["body"] =
            json!(if ai(i) { "Updates the service.\n\nAssisted-by: Codex 5.3\n" } else { "Updates the service.\n" });
        pr["additions"] = json!(10 + i % 50);
        pr["deletions"] = json!(i % 7);
        pr["commits"] = json!(1);
        pr["merged"] = json!(merged);
        if merged {
            pr["state"] = json!("closed");
            pr["merged_by"] = json!({"login": "lead", "id": 1, "type": "User"});
            pr["merged_at"] = json!(time(merged_at(i)));
            pr["closed_at"] = json!(time(merged_at(i)));
            pr["merge_commit_sha"] = json!(landed(i));
        }
        p
    }

    pub(super) fn review(&self, i: usize, who: &str, at: i64, id: u64) -> Value {
        let mut r = self.review.clone();
        r["repository"] = self.repository(service(i));
        r["pull_request"]["number"] = json!(1000 + i);
        r["pull_request"]["head"]["sha"] = json!(head(i));
        r["pull_request"]["user"]["login"] = json!(author(i));
        r["review"]["commit_id"] = json!(head(i));
        r["review"]["id"] = json!(id);
        r["review"]["user"]["login"] = json!(who);
        r["review"]["submitted_at"] = json!(time(at));
        r["review"]["state"] = json!("approved");
        r
    }

    pub(super) fn check(&self, i: usize) -> Value {
        let mut c = self.check.clone();
        c["repository"] = self.repository(service(i));
        let run = &mut c["check_run"];
        run["name"] = json!("unit-tests");
        run["head_sha"] = json!(head(i));
        run["id"] = json!(5_000_000 + i);
        run["conclusion"] = json!(if failing_check(i) { "failure" } else { "success" });
        run["completed_at"] = json!(time(opened_at(i) + 40 * 60));
        let mut linked = run["pull_requests"][0].clone();
        linked["number"] = json!(1000 + i);
        linked["head"]["sha"] = json!(head(i));
        run["pull_requests"] = json!([linked]);
        c
    }

    /// The `deployment` delivery (5 min before `at`) and its `success` status (at `at`).
    pub(super) fn deployment(
        &self,
        svc: &str,
        id: usize,
        sha: &str,
        at: i64,
        rollback_of: Option<usize>,
    ) -> [Value; 2] {
        let mut d = self.deployment.clone();
        d["repository"] = self.repository(svc);
        let dep = &mut d["deployment"];
        dep["id"] = json!(id);
        dep["sha"] = json!(sha);
        dep["environment"] = json!("production");
        dep["created_at"] = json!(time(at - 300));
        dep["creator"]["login"] = json!("deploy-bot");
        dep["payload"] = rollback_of.map_or(json!({}), |r| json!({"rollback_of": r}));
        let mut s = self.status.clone();
        s["repository"] = self.repository(svc);
        s["deployment"] = d["deployment"].clone();
        let st = &mut s["deployment_status"];
        st["state"] = json!("success");
        st["environment"] = json!("production");
        st["created_at"] = json!(time(at));
        st["creator"]["login"] = json!("deploy-bot");
        [d, s]
    }

    /// A direct push of one commit to `acme/shop`'s default branch at `at`.
    pub(super) fn push(&self, sha: &str, at: i64) -> Value {
        let mut p = self.push.clone();
        p["repository"] = self.repository("shop");
        p["repository"]["master_branch"] = json!("main");
        p["ref"] = json!("refs/heads/main");
        p["after"] = json!(sha);
        p["before"] = json!("d4".to_string() + &"0".repeat(37) + "1");
        let mut c = p["head_commit"].clone();
        c["id"] = json!(sha);
        c["message"] = json!("Tune the cache size");
        c["timestamp"] = json!(time(at));
        p["head_commit"] = c.clone();
        p["commits"] = json!([c]);
        p
    }

    /// PagerDuty's `incident.triggered` (and, when `resolved`, `incident.resolved`) deliveries.
    pub(super) fn incident(&self, id: &str, svc: &str, opened: i64, resolved: Option<i64>) -> Vec<Value> {
        let make = |t: &Value, event: &str, at: i64| {
            let mut v = t.clone();
            v["event"]["id"] = json!(format!("{event}-{id}"));
            v["event"]["occurred_at"] = json!(time(at));
            v["event"]["data"]["id"] = json!(id);
            v["event"]["data"]["title"] = json!(format!("{svc} errors"));
            v["event"]["data"]["service"]["summary"] = json!(svc);
            v
        };
        let mut out = vec![make(&self.triggered, "t", opened)];
        if let Some(r) = resolved {
            out.push(make(&self.resolved, "r", r));
        }
        out
    }
}

/// Writes one captured delivery (payload and the header file naming its event).
pub(super) fn write_delivery(dir: &Path, name: &str, event: &str, payload: &Value) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(payload).expect("JSON")).expect("writing a payload");
    let header = format!("content-type \tapplication/json\nx-github-event \t{event}\n");
    std::fs::write(dir.join(format!("{name}-header.txt")), header).expect("writing a header");
    path
}
