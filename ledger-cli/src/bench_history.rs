//! `ledger bench history`: writes a realistic change history into the local ledger, for
//! measuring the audit commands at scale (docs/BENCHMARKS.md). Each change is a pull request
//! with its records in the order a forge delivers them: the change, an AI session for some,
//! an approval for most, two checks, the merge, the deployment (pending, then success) and, for
//! a few, an incident or a rollback. Times spread evenly over `--days` ending at `--until`;
//! everything is derived from the change number, so two runs write the same history.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use ledger_core::entry::SignedRecord;
use ledger_core::record::{Kind, Record};
use ledger_core::types::Timestamp;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Records appended per atomic batch.
const BATCH: usize = 2000;
const HOUR_MS: i64 = 3_600_000;

/// The records of change `i` (as `append` bodies), `at` its opening time in milliseconds.
fn change_records(i: u64, at: i64) -> Vec<(Kind, Value)> {
    let repo_n = i % 12;
    let (repo, service) = (format!("acme/svc{repo_n}"), format!("svc{repo_n}"));
    let number = 10_000 + i;
    let pr = format!("pr:{repo}#{number}");
    let head = format!("a1{i:038x}");
    let landed = format!("b2{i:038x}");
    let author = format!("github:dev{}", i % 40);
    let reviewer = format!("github:rev{}", (i / 40) % 15);
    let t = |ms: i64| Timestamp(at + ms).to_rfc3339();
    let link = json!([{"rel": "change", "target": pr}]);
    let mut out = vec![(
        Kind::Change,
        json!({"actor": author, "time": t(0), "repo": repo, "number": number, "title": format!("Change {i}"),
               "author": author, "head_commit": head, "commits_total": 1, "lines_added": 20 + i % 200,
               "lines_removed": i % 30, "labels": if i % 97 == 5 { json!(["hotfix"]) } else { json!([]) }}),
    )];
    if i % 4 == 1 {
        out.push((
            Kind::Session,
            json!({"actor": author, "time": t(60_000), "links": link, "tool": "codex", "model": "gpt-5",
                   "session_id": format!("s{i}")}),
        ));
    }
    if i % 23 != 7 {
        out.push((
            Kind::Review,
            json!({"actor": reviewer, "time": t(HOUR_MS / 2), "links": link, "repo": repo, "reviewer": reviewer,
                   "verdict": "approved", "commit": head}),
        ));
    }
    for (check, kind) in [("unit-tests", "unit"), ("lint", "lint")] {
        let result = if check == "unit-tests" && i % 31 == 3 { "fail" } else { "pass" };
        out.push((
            Kind::Evidence,
            json!({"actor": "ci:github-actions", "time": t(40 * 60_000), "repo": repo, "commit": head,
                   "check": check, "check_kind": kind, "result": result}),
        ));
    }
    out.push((
        Kind::Merge,
        json!({"actor": "github:lead", "time": t(HOUR_MS), "links": link, "repo": repo, "merge_commit": landed,
               "head_commit": head, "method": "squash"}),
    ));
    if i % 101 == 50 {
        return out; // merged, never deployed
    }
    let deploy_at = HOUR_MS * if i.is_multiple_of(10) { 5 } else { 2 };
    let id = 100_000 + i;
    for (status, delay) in [("pending", -300_000), ("success", 0)] {
        out.push((
            Kind::Deployment,
            json!({"actor": "github:deploy-bot", "time": t(deploy_at + delay), "service": service,
                   "environment": "production", "deployment_id": id.to_string(), "repo": repo,
                   "commits": [landed], "deployer": "github:deploy-bot", "status": status}),
        ));
    }
    let subject = format!("deploy:{service}/production/{id}");
    if i % 41 == 11 {
        out.push((
            Kind::Incident,
            json!({"actor": "pagerduty:bot", "time": t(deploy_at + 2 * HOUR_MS), "system": "pagerduty",
                   "incident_id": format!("Q{i}"), "title": format!("{service} errors"), "service": service,
                   "opened": t(deploy_at + 2 * HOUR_MS), "resolved": t(deploy_at + 5 * HOUR_MS),
                   "links": [{"rel": "caused_by", "target": subject}]}),
        ));
    }
    if i % 97 == 23 {
        out.push((
            Kind::Deployment,
            json!({"actor": "github:deploy-bot", "time": t(deploy_at + 30 * 60_000), "service": service,
                   "environment": "production", "deployment_id": (200_000 + i).to_string(), "repo": repo,
                   "commits": [landed], "deployer": "github:deploy-bot", "status": "success",
                   "rollback_of": subject}),
        ));
    }
    out
}

/// `ledger bench history --changes N [--days D] [--until DATE] [--first F]`: changes numbered
/// `numbers`, spread evenly over the `days` before `until`.
pub fn history(
    ctx: &Ctx,
    numbers: std::ops::Range<u64>,
    days: u64,
    until: &str,
    signer: &crate::cli::SignerArgs,
) -> Result<ExitCode> {
    ctx.local_only("bench history")?;
    let changes = numbers.end - numbers.start;
    if changes == 0 || days == 0 {
        bail!("--changes and --days must be at least 1");
    }
    let end: Timestamp = until.parse().map_err(|e| anyhow::anyhow!("--until `{until}`: {e}"))?;
    let span = days as i64 * 24 * HOUR_MS;
    let start = end.0 - span;
    let step = span / changes as i64;
    let key = ctx.signer_key(signer)?;
    let mut ledger = ctx.backend()?;
    let before = ledger.len()?;
    let bar = crate::output::progress(ctx.json, changes, "history {bar:40} {pos}/{len} changes ({eta} left)");
    let began = Instant::now();
    let mut batch: Vec<SignedRecord> = Vec::with_capacity(BATCH + 16);
    let mut appended = 0u64;
    for (n, i) in numbers.enumerate() {
        for (kind, body) in change_records(i, start + n as i64 * step) {
            let record: Record = crate::commands::records::parse_body(kind, body.to_string().as_bytes(), end)?;
            batch.push(SignedRecord::sign(&record, &key)?);
        }
        if batch.len() >= BATCH || n as u64 + 1 == changes {
            appended += ledger.append(&batch)?.len() as u64;
            batch.clear();
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = began.elapsed().as_secs_f64();
    let size = ledger.len()?;
    if ctx.json {
        json_out(&json!({"changes": changes, "appended": appended, "tree_size": size, "seconds": seconds}))?;
    } else {
        line(format!(
            "{changes} changes: {appended} entries appended in {seconds:.1} s (tree size {before} → {size})"
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
