//! `ledger ingest gitlab-api`: backfill from the GitLab REST API (v4). Reads the project,
//! its merged merge requests (newest update first, until before `--since`), for each one
//! merged in the window its full object, diffs (touched paths), commits (AI trailers), diff
//! versions, notes and approvals (approvals bound to the head commit of their time), the
//! pipelines and their jobs at its head and landed commits; then the deployments created in
//! the window. Every object is mapped by the webhook rules (`ledger_ingest::gitlab::api`) and
//! what the ledger does not hold yet is appended, in batches of merge requests.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use ledger_ingest::gitlab::api;
use ledger_ingest::Mapped;
use serde::Serialize;
use serde_json::Value;

use super::api_client::{ApiClient, Fetched, Forge};
use super::backfill::{items, json_of, resp, time_of, Backfill, Options, Totals, Window};
use crate::cli::GitlabApiArgs;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Merge requests fetched, mapped and appended together.
const BATCH: usize = 100;

#[derive(Serialize)]
struct Report {
    project: String,
    merge_requests: u64,
    deployments: u64,
    #[serde(flatten)]
    totals: Totals,
}

/// The API base: `--api-url` with `/api/v4` added when it does not end so.
fn api_base(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    if u.ends_with("/api/v4") {
        u.to_string()
    } else {
        format!("{u}/api/v4")
    }
}

/// Every page of `path` (on the API), each with its items.
async fn pages(client: &ApiClient, path: &str) -> Result<Vec<(Fetched, Vec<Value>)>> {
    let mut out = vec![];
    for page in client.get_all(&client.url(path)).await? {
        let list = items(&page, None)?;
        out.push((page, list));
    }
    Ok(out)
}

/// A pipeline and its jobs.
async fn pipeline(client: &ApiClient, project: &Value, pid: u64, iid: u64) -> Result<Vec<Mapped>> {
    let base = format!("/projects/{}/pipelines/{pid}", project["id"]);
    let full = client.get(&client.url(&base)).await?;
    let mut out = vec![api::pipeline(project, &json_of(&full)?, Some(iid), resp(&full))?];
    for (page, jobs) in pages(client, &format!("{base}/jobs?per_page=100")).await? {
        for j in &jobs {
            out.push(api::job(project, j, resp(&page))?);
        }
    }
    Ok(out)
}

/// What one merged merge request brings: its records, in order.
async fn merge_request(client: &ApiClient, project: &Value, iid: u64) -> Result<Vec<Mapped>> {
    let base = format!("/projects/{}/merge_requests/{iid}", project["id"]);
    let full = client.get(&client.url(&base)).await?;
    let mr = json_of(&full)?;
    let (mut files, mut lines_known) = (vec![], true);
    for (_, diffs) in pages(client, &format!("{base}/diffs?per_page=100")).await? {
        for (file, counted) in diffs.iter().filter_map(api::changed_file) {
            files.push(file);
            lines_known &= counted;
        }
    }
    // `changes_count` is a string, "1000+" when GitLab stopped counting: the paths are then
    // not known to be all.
    let complete = mr
        .get("changes_count")
        .and_then(Value::as_str)
        .and_then(|c| c.trim().parse::<usize>().ok())
        .is_some_and(|c| c == files.len());
    let mut out = vec![api::merge_request(project, &mr, complete.then_some(&files[..]), lines_known, resp(&full))?];
    for (page, commits) in pages(client, &format!("{base}/commits?per_page=100")).await? {
        for c in &commits {
            out.push(api::commit_sessions(project, iid, c, resp(&page))?);
        }
    }
    let mut versions = vec![];
    for (_, list) in pages(client, &format!("{base}/versions?per_page=100")).await? {
        versions.extend(api::versions(&list)?);
    }
    versions.sort_by_key(|v| v.created);
    let mut noted: Vec<String> = vec![];
    for (page, notes) in pages(client, &format!("{base}/notes?sort=asc&order_by=created_at&per_page=100")).await? {
        for note in notes.iter().filter(|n| api::is_approval_note(n)) {
            noted.extend(api::note_author(note).map(str::to_string));
            out.push(api::approval(project, iid, note, &versions, resp(&page))?);
        }
    }
    let approvals = client.get(&client.url(&format!("{base}/approvals"))).await?;
    for user in api::approvers(&json_of(&approvals)?) {
        if !noted.contains(&user) {
            out.push(Mapped::Skipped(format!(
                "approval of !{iid} by {user}: no approval note says when it was given, so the commit approved is not known"
            )));
        }
    }
    // Pipelines at the head and at the landed commit.
    let head = mr.get("sha").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let landed = ["merge_commit_sha", "squash_commit_sha"]
        .iter()
        .find_map(|k| mr.get(*k).and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .filter(|s| *s != head);
    let mut ids: Vec<u64> = vec![];
    let at = |p: &Value, sha: &str| p.get("sha").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case(sha));
    for (_, list) in pages(client, &format!("{base}/pipelines?per_page=100")).await? {
        ids.extend(list.iter().filter(|p| at(p, &head)).filter_map(|p| p.get("id").and_then(Value::as_u64)));
    }
    if let Some(sha) = &landed {
        let path = format!("/projects/{}/pipelines?sha={sha}&per_page=100", project["id"]);
        for (_, list) in pages(client, &path).await? {
            ids.extend(list.iter().filter(|p| at(p, sha)).filter_map(|p| p.get("id").and_then(Value::as_u64)));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    for pid in ids {
        out.extend(pipeline(client, project, pid, iid).await?);
    }
    Ok(out)
}

/// `ledger ingest gitlab-api`.
pub fn run(ctx: &Ctx, args: &GitlabApiArgs) -> Result<ExitCode> {
    let path = args.project.trim().trim_matches('/');
    if path.split('/').count() < 2 || path.split('/').any(str::is_empty) {
        bail!("--project `{}`: expected GROUP/NAME (or GROUP/SUBGROUP/NAME)", args.project);
    }
    let window = Window::of(args.backfill.since.as_deref(), args.backfill.until.as_deref())?;
    let api_url = api_base(&args.api_url);
    let options = Options {
        forge: Forge::GitLab,
        api_url: &api_url,
        token_file: args.token_file.as_deref(),
        token_env: "GITLAB_TOKEN",
        name: path,
        args: &args.backfill,
    };
    let mut b = Backfill::start(ctx, &options, "{spinner} {pos} merge requests {msg}")?;
    let (mut merge_requests, mut deployments) = (0u64, 0u64);
    let client = &b.client;
    let encoded = path.replace('/', "%2F");
    let project: Value =
        b.rt.block_on(async { json_of(&client.get(&client.url(&format!("/projects/{encoded}"))).await?) })?;
    let id = project
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("{api_url}/projects/{encoded}: the project has no numeric `id`"))?;
    if project.get("path_with_namespace").and_then(Value::as_str).is_none() {
        bail!("{api_url}/projects/{encoded}: the project has no `path_with_namespace`");
    }

    let first =
        client.url(&format!("/projects/{id}/merge_requests?state=merged&order_by=updated_at&sort=desc&per_page=100"));
    let merged = b.merged_in(first, window, "iid")?;
    for batch in merged.chunks(BATCH) {
        let mapped: Vec<Vec<Mapped>> = b.rt.block_on(
            stream::iter(batch.iter().map(|iid| merge_request(&b.client, &project, *iid)))
                .buffered(args.backfill.concurrency)
                .try_collect(),
        )?;
        b.append(mapped.into_iter().flatten().collect())?;
        merge_requests += batch.len() as u64;
        b.bar.inc(batch.len() as u64);
    }

    // Deployments, newest first: the listing stops at the first one created before `--since`.
    let mut next =
        Some(b.client.url(&format!("/projects/{id}/deployments?order_by=created_at&sort=desc&per_page=100")));
    while let Some(url) = next.take() {
        let page = b.rt.block_on(b.client.get(&url))?;
        let list = items(&page, None)?;
        let older = list.iter().any(|d| time_of(d, "created_at").is_some_and(|c| window.before(c)));
        let mut mapped = vec![];
        for d in list.iter().filter(|d| time_of(d, "created_at").is_some_and(|c| window.contains(c))) {
            mapped.push(api::deployment(&project, d, resp(&page))?);
            deployments += 1;
        }
        b.append(mapped)?;
        next = if older { None } else { page.next.clone() };
    }
    let report = Report { project: path.to_string(), merge_requests, deployments, totals: b.finish() };
    if ctx.json {
        json_out(&report)?;
    } else {
        line(format!(
            "{}: {} merged merge requests and {} deployments read ({})",
            report.project,
            report.merge_requests,
            report.deployments,
            report.totals.summary()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
