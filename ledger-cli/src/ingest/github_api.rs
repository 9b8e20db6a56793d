//! `ledger ingest github-api`: backfill from the GitHub REST API. Reads the repository, its
//! closed pull requests (newest update first, until before `--since`), for each one merged in
//! the window its full object, files, commits (AI trailers) and reviews, the check runs and commit statuses at its
//! head and landed commits, then the deployments created in the window with their statuses;
//! maps every object by the webhook rules (`ledger_ingest::github::api`) and appends what the
//! ledger does not hold yet (`ledger_ingest::dedupe_key`), in batches of pull requests, so an
//! interrupted run keeps what it appended and a re-run continues from there.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Context as _, Result};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use ledger_core::record::{Kind, Record};
use ledger_core::types::Timestamp;
use ledger_ingest::github::api::{self, ChangedFile, Response};
use ledger_ingest::{dedupe_key, Mapped};
use serde::Serialize;
use serde_json::Value;

use super::api_client::{ApiClient, Fetched};
use super::sign_and_append;
use crate::backend::{Backend, LogArgs};
use crate::cli::GithubApiArgs;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Pull requests fetched, mapped and appended together.
const BATCH: usize = 100;

/// The kinds a backfill makes, whose facts already in the ledger it skips.
const KINDS: &[Kind] = &[Kind::Change, Kind::Session, Kind::Merge, Kind::Review, Kind::Evidence, Kind::Deployment];

#[derive(Serialize, Default)]
struct Report {
    repo: String,
    pull_requests: u64,
    deployments: u64,
    requests: u64,
    not_modified: u64,
    retries: u64,
    rate_limit_waits: u64,
    waited_ms: u64,
    appended: u64,
    already_present: u64,
    skipped: u64,
}

/// A time window: `[since, until)`.
#[derive(Clone, Copy)]
struct Window {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Window {
    fn contains(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

fn time_arg(s: &str, flag: &str, end_of_day: bool) -> Result<Timestamp> {
    let t: Timestamp = s.parse().map_err(|e| anyhow!("{flag} `{s}`: {e}"))?;
    Ok(if end_of_day && !s.contains('T') { Timestamp(t.0 + 24 * 3600 * 1000) } else { t })
}

fn time_of(v: &Value, field: &str) -> Option<Timestamp> {
    v.get(field)?.as_str()?.parse().ok()
}

fn json_of(f: &Fetched) -> Result<Value> {
    serde_json::from_slice(&f.body).with_context(|| format!("{}: the answer is not JSON", f.resource))
}

/// Items of a list answer: the array itself, or the array under `key` (`check_runs`).
fn items(f: &Fetched, key: Option<&str>) -> Result<Vec<Value>> {
    let v = json_of(f)?;
    let list = match key {
        None => v,
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
    };
    match list {
        Value::Array(a) => Ok(a),
        _ => bail!("{}: expected a list{}", f.resource, key.map(|k| format!(" under `{k}`")).unwrap_or_default()),
    }
}

fn resp(f: &Fetched) -> Response<'_> {
    Response { resource: &f.resource, body: &f.body }
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

/// The dedupe keys of every record of [`KINDS`] in the ledger.
fn keys_in(ledger: &mut Backend) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    for kind in KINDS {
        ledger.log_each(&LogArgs { kind: Some(*kind), ..Default::default() }, |v| {
            if let Some(k) = dedupe_key(&v.record) {
                keys.insert(k);
            }
            Ok(())
        })?;
    }
    Ok(keys)
}

/// `ledger ingest github-api`.
pub fn run(ctx: &Ctx, args: &GithubApiArgs) -> Result<ExitCode> {
    let owner_repo = args.repo.trim().trim_matches('/');
    if owner_repo.split('/').count() != 2 || owner_repo.split('/').any(str::is_empty) {
        bail!("--repo `{}`: expected OWNER/NAME", args.repo);
    }
    let window = Window {
        since: args.since.as_deref().map(|s| time_arg(s, "--since", false)).transpose()?,
        until: args.until.as_deref().map(|s| time_arg(s, "--until", true)).transpose()?,
    };
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let token = match &args.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("GITHUB_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
    };
    let cache = match &args.cache {
        Some(c) => c.clone(),
        None if ctx.remote.is_some() => ".ledger-api-cache".into(),
        None => ctx.db.join("api-cache"),
    }
    .join("github")
    .join(owner_repo.replace('/', "__"));
    let key = ctx.signer_key(&args.signer)?;
    let mut ledger = ctx.backend()?;
    let mut seen = keys_in(&mut ledger)?;
    let bar = crate::output::progress(ctx.json, 0, "{spinner} {pos} pull requests {msg}");
    let client = ApiClient::new(&args.api_url, token.map(|t| format!("Bearer {t}")), Some(cache), bar.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let mut report = Report { repo: owner_repo.to_string(), ..Default::default() };
    let mut append = |ledger: &mut Backend, mapped: Vec<Mapped>, report: &mut Report| -> Result<()> {
        let mut records: Vec<Record> = vec![];
        for m in mapped {
            match m {
                Mapped::Skipped(_) => report.skipped += 1,
                Mapped::Records(rs) => {
                    for r in rs {
                        if dedupe_key(&r).is_some_and(|k| !seen.insert(k)) {
                            report.already_present += 1;
                        } else {
                            records.push(r);
                        }
                    }
                }
            }
        }
        for receipt in sign_and_append(ledger, &records, &key)? {
            if receipt.duplicate {
                report.already_present += 1;
            } else {
                report.appended += 1;
            }
        }
        Ok(())
    };

    let repo: Value =
        rt.block_on(async { json_of(&client.get(&client.url(&format!("/repos/{owner_repo}"))).await?) })?;
    // Closed pull requests, most recently updated first: one merged in the window was updated
    // at or after its merge, so the listing stops at the first page updated before `--since`.
    let mut next =
        Some(client.url(&format!("/repos/{owner_repo}/pulls?state=closed&sort=updated&direction=desc&per_page=100")));
    let mut merged: Vec<u64> = vec![];
    while let Some(url) = next.take() {
        let page = rt.block_on(client.get(&url))?;
        let list = items(&page, None)?;
        let mut older = false;
        for pr in &list {
            if window.since.is_some_and(|s| time_of(pr, "updated_at").is_some_and(|u| u < s)) {
                older = true;
                continue;
            }
            let Some(at) = time_of(pr, "merged_at") else { continue };
            if let (true, Some(n)) = (window.contains(at), pr.get("number").and_then(Value::as_u64)) {
                merged.push(n);
            }
        }
        next = if older { None } else { page.next.clone() };
    }
    merged.sort_unstable();
    merged.dedup();
    bar.set_length(merged.len() as u64);
    for batch in merged.chunks(BATCH) {
        let mapped: Vec<Vec<Mapped>> = rt.block_on(
            stream::iter(batch.iter().map(|n| pull_request(&client, owner_repo, &repo, *n)))
                .buffered(args.concurrency)
                .try_collect(),
        )?;
        append(&mut ledger, mapped.into_iter().flatten().collect(), &mut report)?;
        report.pull_requests += batch.len() as u64;
        bar.inc(batch.len() as u64);
    }

    // Deployments, newest first: the listing stops at the first one created before `--since`.
    let mut next = Some(client.url(&format!("/repos/{owner_repo}/deployments?per_page=100")));
    while let Some(url) = next.take() {
        let page = rt.block_on(client.get(&url))?;
        let list = items(&page, None)?;
        let older = window.since.is_some_and(|s| list.iter().any(|d| time_of(d, "created_at").is_some_and(|c| c < s)));
        let wanted: Vec<&Value> =
            list.iter().filter(|d| time_of(d, "created_at").is_some_and(|c| window.contains(c))).collect();
        let mapped: Vec<Vec<Mapped>> = rt.block_on(
            stream::iter(wanted.iter().map(|d| deployment(&client, owner_repo, &repo, &page, d)))
                .buffered(args.concurrency)
                .try_collect(),
        )?;
        report.deployments += wanted.len() as u64;
        append(&mut ledger, mapped.into_iter().flatten().collect(), &mut report)?;
        next = if older { None } else { page.next.clone() };
    }
    bar.finish_and_clear();

    let c = &client.counters;
    report.requests = c.requests.load(Ordering::Relaxed);
    report.not_modified = c.not_modified.load(Ordering::Relaxed);
    report.retries = c.retries.load(Ordering::Relaxed);
    report.rate_limit_waits = c.waits.load(Ordering::Relaxed);
    report.waited_ms = c.waited_ms.load(Ordering::Relaxed);
    if ctx.json {
        json_out(&report)?;
    } else {
        line(format!(
            "{}: {} merged pull requests and {} deployments read ({} requests, {} not modified, {} retries, {} rate-limit waits); {} records appended, {} already present, {} skipped",
            report.repo,
            report.pull_requests,
            report.deployments,
            report.requests,
            report.not_modified,
            report.retries,
            report.rate_limit_waits,
            report.appended,
            report.already_present,
            report.skipped
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
