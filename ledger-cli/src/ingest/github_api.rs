//! `ledger ingest github-api`: backfill from the GitHub REST API. Reads the repository, its
//! closed pull requests (newest update first, until before `--since`), for each one merged in
//! the window its full object, files, commits (AI trailers) and reviews, the check runs and commit statuses at its
//! head and landed commits, then the deployments created in the window with their statuses;
//! maps every object by the webhook rules (`ledger_ingest::github::api`) and appends what the
//! ledger does not hold yet (`ledger_ingest::Held`), in batches of pull requests, so an
//! interrupted run keeps what it appended and a re-run continues from there.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use ledger_ingest::github::api::{self, ChangedFile};
use ledger_ingest::Mapped;
use serde::Serialize;
use serde_json::Value;

use super::api_client::{ApiClient, Fetched, Forge};
use super::backfill::{items, json_of, resp, time_of, Backfill, Options, Totals, Window};
use crate::cli::GithubApiArgs;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Pull requests fetched, mapped and appended together.
const BATCH: usize = 100;

#[derive(Serialize)]
struct Report {
    repo: String,
    pull_requests: u64,
    deployments: u64,
    #[serde(flatten)]
    totals: Totals,
}

/// What one merged pull request brings: its records, in order.
async fn pull_request(client: &ApiClient, owner_repo: &str, repo: &Value, n: u64) -> Result<Vec<Mapped>> {
    let base = format!("/repos/{owner_repo}/pulls/{n}");
    let full = client.get(&client.url(&base)).await?;
    let pr = json_of(&full)?;
    let file_pages = client.get_all(&client.url(&format!("{base}/files?per_page=100"))).await?;
    let mut files = vec![];
    for page in &file_pages {
        for f in items(page, None)? {
            let path = f.get("filename").and_then(Value::as_str).unwrap_or_default().to_string();
            let count = |k: &str| f.get(k).and_then(Value::as_u64).unwrap_or(0);
            files.push(ChangedFile { path, additions: count("additions"), deletions: count("deletions") });
        }
    }
    // GitHub lists at most 3,000 files: a longer change keeps its paths unknown.
    let complete = pr.get("changed_files").and_then(Value::as_u64).is_some_and(|c| c == files.len() as u64);
    let mut out = vec![api::pull_request(repo, &pr, complete.then_some(&files[..]), resp(&full))?];
    for page in client.get_all(&client.url(&format!("{base}/reviews?per_page=100"))).await? {
        for r in items(&page, None)? {
            out.push(api::review(repo, &pr, &r, resp(&page))?);
        }
    }
    for page in client.get_all(&client.url(&format!("{base}/commits?per_page=100"))).await? {
        for c in items(&page, None)? {
            out.push(api::commit_sessions(repo, &pr, &c, resp(&page))?);
        }
    }
    let mut shas: Vec<String> = vec![];
    for ptr in ["/head/sha", "/merge_commit_sha"] {
        if let Some(s) = pr.pointer(ptr).and_then(Value::as_str) {
            if !shas.iter().any(|x| x == s) {
                shas.push(s.to_string());
            }
        }
    }
    for sha in &shas {
        let runs = format!("/repos/{owner_repo}/commits/{sha}/check-runs?per_page=100");
        for page in client.get_all(&client.url(&runs)).await? {
            for run in items(&page, Some("check_runs"))? {
                out.push(api::check_run(repo, &run, resp(&page))?);
            }
        }
        let status = client.get(&client.url(&format!("/repos/{owner_repo}/commits/{sha}/status"))).await?;
        for s in items(&status, Some("statuses"))? {
            out.push(api::status(repo, sha, &s, resp(&status))?);
        }
    }
    Ok(out)
}

/// A deployment created in the window and its statuses.
async fn deployment(
    client: &ApiClient,
    owner_repo: &str,
    repo: &Value,
    page: &Fetched,
    d: &Value,
) -> Result<Vec<Mapped>> {
    let mut out = vec![api::deployment(repo, d, resp(page))?];
    let id =
        d.get("id").map(Value::to_string).ok_or_else(|| anyhow!("{}: a deployment without an id", page.resource))?;
    let statuses = format!("/repos/{owner_repo}/deployments/{id}/statuses?per_page=100");
    for p in client.get_all(&client.url(&statuses)).await? {
        // Oldest first, as they happened.
        let mut list = items(&p, None)?;
        list.reverse();
        for s in list {
            out.push(api::deployment_status(repo, d, &s, resp(&p))?);
        }
    }
    Ok(out)
}

/// `ledger ingest github-api`.
pub fn run(ctx: &Ctx, args: &GithubApiArgs) -> Result<ExitCode> {
    let owner_repo = args.repo.trim().trim_matches('/');
    if owner_repo.split('/').count() != 2 || owner_repo.split('/').any(str::is_empty) {
        bail!("--repo `{}`: expected OWNER/NAME", args.repo);
    }
    let window = Window::of(args.backfill.since.as_deref(), args.backfill.until.as_deref())?;
    let options = Options {
        forge: Forge::GitHub,
        api_url: &args.api_url,
        token_file: args.token_file.as_deref(),
        token_env: "GITHUB_TOKEN",
        name: owner_repo,
        args: &args.backfill,
    };
    let mut b = Backfill::start(ctx, &options, "{spinner} {pos} pull requests {msg}")?;
    let (mut pull_requests, mut deployments) = (0u64, 0u64);
    let client = &b.client;
    let repo: Value =
        b.rt.block_on(async { json_of(&client.get(&client.url(&format!("/repos/{owner_repo}"))).await?) })?;
    let first = client.url(&format!("/repos/{owner_repo}/pulls?state=closed&sort=updated&direction=desc&per_page=100"));
    let merged = b.merged_in(first, window, "number")?;
    for batch in merged.chunks(BATCH) {
        let mapped: Vec<Vec<Mapped>> = b.rt.block_on(
            stream::iter(batch.iter().map(|n| pull_request(&b.client, owner_repo, &repo, *n)))
                .buffered(args.backfill.concurrency)
                .try_collect(),
        )?;
        b.append(mapped.into_iter().flatten().collect())?;
        pull_requests += batch.len() as u64;
        b.bar.inc(batch.len() as u64);
    }

    // Deployments, newest first: the listing stops at the first one created before `--since`.
    let mut next = Some(b.client.url(&format!("/repos/{owner_repo}/deployments?per_page=100")));
    while let Some(url) = next.take() {
        let page = b.rt.block_on(b.client.get(&url))?;
        let list = items(&page, None)?;
        let older = list.iter().any(|d| time_of(d, "created_at").is_some_and(|c| window.before(c)));
        let wanted: Vec<&Value> =
            list.iter().filter(|d| time_of(d, "created_at").is_some_and(|c| window.contains(c))).collect();
        let mapped: Vec<Vec<Mapped>> = b.rt.block_on(
            stream::iter(wanted.iter().map(|d| deployment(&b.client, owner_repo, &repo, &page, d)))
                .buffered(args.backfill.concurrency)
                .try_collect(),
        )?;
        deployments += wanted.len() as u64;
        b.append(mapped.into_iter().flatten().collect())?;
        next = if older { None } else { page.next.clone() };
    }
    let report = Report { repo: owner_repo.to_string(), pull_requests, deployments, totals: b.finish() };
    if ctx.json {
        json_out(&report)?;
    } else {
        line(format!(
            "{}: {} merged pull requests and {} deployments read ({})",
            report.repo,
            report.pull_requests,
            report.deployments,
            report.totals.summary()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
