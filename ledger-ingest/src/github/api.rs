//! Backfill from the GitHub REST API: the objects it returns (pull requests, reviews, check
//! runs, commit statuses, deployments and their statuses) mapped to records by the same rules
//! as webhook deliveries. Each object is put in the shape of the delivery that would have
//! carried it (the REST objects and the webhook objects are the same schema) and mapped by
//! [`super::map`]'s code; `source` names the API resource and the SHA-256 of the exact
//! response body the object came from. Pure: the caller does the HTTP.
//!
//! What the API adds to a delivery: a pull request's touched paths (`/pulls/{n}/files`), when
//! the listing is complete. What it lacks: the sender of a check or status (the record's actor
//! is then `github:unknown`), so [`crate::dedupe_key`] leaves the actor out.

use serde_json::{json, Value};

use super::{map_value, sha256};
use crate::Mapped;
use ledger_core::domain::MAX_RECORD_BYTES;
use ledger_core::record::{Body, Source};
use ledger_core::Result;

/// The API response an object came from.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    /// The resource path, without host or query (`/repos/o/r/pulls/7/reviews`).
    pub resource: &'a str,
    /// The response body, exactly as received.
    pub body: &'a [u8],
}

impl Response<'_> {
    fn source(&self) -> Result<Source> {
        Ok(Source::payload(format!("github-api:{}", self.resource), sha256(self.body)?))
    }
}

/// A file a pull request changed (an item of `/pulls/{n}/files`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    /// Its path after the change.
    pub path: String,
    /// Lines added.
    pub additions: u64,
    /// Lines removed.
    pub deletions: u64,
}

/// A pull request (`repo`: the repository object, `pr`: an item of `/pulls` or `/pulls/{n}`):
/// its change record, the AI sessions its body declares, and, when it was merged, its merge.
/// `files`: every file it changed, when the listing is complete (`None` leaves the paths
/// unknown, as a webhook delivery does); line counts come from the files when the pull
/// request object (a list item) has none.
///
/// # Errors
/// A missing or malformed field, named as the webhook mapping names it.
pub fn pull_request(repo: &Value, pr: &Value, files: Option<&[ChangedFile]>, from: Response<'_>) -> Result<Mapped> {
    let mut pr = pr.clone();
    // A list item has `merged_at` but no `merged`.
    if pr.get("merged").is_none() {
        let merged = pr.get("merged_at").is_some_and(|m| !m.is_null());
        pr["merged"] = Value::Bool(merged);
    }
    let closed = pr.get("state").and_then(Value::as_str) == Some("closed");
    let delivery = json!({
        "action": if closed { "closed" } else { "opened" },
        "pull_request": pr,
        "repository": repo,
    });
    let mapped = map_value("pull_request", &delivery, from.source()?)?;
    let (mut records, files) = match (mapped, files) {
        (Mapped::Records(records), Some(files)) => (records, files),
        (mapped, _) => return Ok(mapped),
    };
    for record in &mut records {
        let Body::Change(change) = &mut record.body else { continue };
        if change.lines_added.is_none() && change.lines_removed.is_none() {
            change.lines_added = Some(files.iter().map(|f| f.additions).sum());
            change.lines_removed = Some(files.iter().map(|f| f.deletions).sum());
        }
        let mut paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        paths.sort();
        paths.dedup();
        if paths.len() <= crate::git::MAX_PATHS {
            change.paths = Some(paths);
            // The path list goes (the paths are then unknown, never partly known) when it
            // would take the record over the size limit.
            if ledger_core::encoding::to_canonical(record, "record")?.len() > MAX_RECORD_BYTES - 1024 {
                if let Body::Change(change) = &mut record.body {
                    change.paths = None;
                }
            }
        }
    }
    Ok(Mapped::Records(records))
}

/// A review of a pull request (an item of `/pulls/{n}/reviews`; `pr`: the pull request
/// object), bound to the commit it names. A review whose state is `DISMISSED` maps to a
/// dismissed verdict, as a `dismissed` delivery does.
///
/// # Errors
/// As [`pull_request`].
pub fn review(repo: &Value, pr: &Value, review: &Value, from: Response<'_>) -> Result<Mapped> {
    let dismissed = review.get("state").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("dismissed"));
    let delivery = json!({
        "action": if dismissed { "dismissed" } else { "submitted" },
        "review": review,
        "pull_request": pr,
        "repository": repo,
    });
    map_value("pull_request_review", &delivery, from.source()?)
}

/// A check run (an item of `/commits/{sha}/check-runs`): evidence at its head commit when it
/// has completed.
///
/// # Errors
/// As [`pull_request`].
pub fn check_run(repo: &Value, run: &Value, from: Response<'_>) -> Result<Mapped> {
    let completed = run.get("status").and_then(Value::as_str) == Some("completed");
    let delivery = json!({
        "action": if completed { "completed" } else { "created" },
        "check_run": run,
        "repository": repo,
    });
    map_value("check_run", &delivery, from.source()?)
}

/// A commit status (an item of `/commits/{sha}/status`'s `statuses`, for the commit `sha`).
///
/// # Errors
/// As [`pull_request`].
pub fn status(repo: &Value, sha: &str, status: &Value, from: Response<'_>) -> Result<Mapped> {
    let mut delivery = status.clone();
    if let Some(o) = delivery.as_object_mut() {
        o.insert("sha".into(), Value::String(sha.to_string()));
        o.insert("repository".into(), repo.clone());
    }
    map_value("status", &delivery, from.source()?)
}

/// A deployment (an item of `/deployments`), as created: pending.
///
/// # Errors
/// As [`pull_request`].
pub fn deployment(repo: &Value, deployment: &Value, from: Response<'_>) -> Result<Mapped> {
    let delivery = json!({ "action": "created", "deployment": deployment, "repository": repo });
    map_value("deployment", &delivery, from.source()?)
}

/// A deployment's status (an item of `/deployments/{id}/statuses`).
///
/// # Errors
/// As [`pull_request`].
pub fn deployment_status(repo: &Value, deployment: &Value, status: &Value, from: Response<'_>) -> Result<Mapped> {
    let delivery = json!({
        "action": "created",
        "deployment_status": status,
        "deployment": deployment,
        "repository": repo,
    });
    map_value("deployment_status", &delivery, from.source()?)
}

/// The AI sessions a pull request's commit declares in its trailers (an item of
/// `/pulls/{n}/commits`; `pr`: the pull request), linked to the change and the commit, with the
/// session ids `ledger ingest git` gives the same commit (`git-<sha>`). No records for a commit
/// without such a trailer.
///
/// # Errors
/// A missing or malformed `sha`, `commit.message`, `commit.author` or pull request number.
pub fn commit_sessions(repo: &Value, pr: &Value, commit: &Value, from: Response<'_>) -> Result<Mapped> {
    use ledger_core::record::{Link, Record, Rel};
    use ledger_core::subject::Subject;
    use ledger_core::types::{CommitId, RepoName, Timestamp};

    let field = |ptr: &str| {
        commit.pointer(ptr).and_then(Value::as_str).ok_or_else(|| crate::payload::missing(&ptr[1..].replace('/', ".")))
    };
    let repo = RepoName::new(
        repo.get("full_name").and_then(Value::as_str).ok_or_else(|| crate::payload::missing("repository.full_name"))?,
    )?;
    let number =
        pr.get("number").and_then(Value::as_u64).ok_or_else(|| crate::payload::missing("pull_request.number"))?;
    let sha = CommitId::new(field("/sha")?.trim().to_ascii_lowercase())?;
    let time: Timestamp = field("/commit/author/date")?.parse()?;
    let author = crate::git::person_identity(field("/commit/author/name")?, field("/commit/author/email")?);
    let source = from.source()?;
    let links = vec![
        Link { rel: Rel::Change, target: Subject::Change { repo: repo.clone(), number } },
        Link { rel: Rel::Commit, target: Subject::Commit { repo: Some(repo), sha: sha.clone() } },
    ];
    let mut seen = std::collections::BTreeSet::new();
    let mut out = vec![];
    for t in crate::git::parse_trailers(field("/commit/message")?) {
        if !seen.insert((t.key.clone(), t.value.clone())) {
            continue;
        }
        if let Some(session) = crate::git::trailer_session(&t, &sha, source.clone())? {
            out.push(Record {
                v: ledger_core::domain::FORMAT_VERSION,
                time,
                actor: author.clone(),
                links: links.clone(),
                body: Body::Session(session),
            });
        }
    }
    Ok(Mapped::Records(out))
}
