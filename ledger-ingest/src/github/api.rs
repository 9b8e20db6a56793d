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

use super::map_value;
use crate::Mapped;
use ledger_core::Result;

pub use crate::backfill::{ChangedFile, Response};

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
    let mapped = map_value("pull_request", &delivery, from.source("github")?)?;
    match (mapped, files) {
        (Mapped::Records(mut records), Some(files)) => {
            crate::backfill::attach(&mut records, files, true)?;
            Ok(Mapped::Records(records))
        }
        (mapped, _) => Ok(mapped),
    }
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
    map_value("pull_request_review", &delivery, from.source("github")?)
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
    map_value("check_run", &delivery, from.source("github")?)
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
    map_value("status", &delivery, from.source("github")?)
}

/// A deployment (an item of `/deployments`), as created: pending.
///
/// # Errors
/// As [`pull_request`].
pub fn deployment(repo: &Value, deployment: &Value, from: Response<'_>) -> Result<Mapped> {
    let delivery = json!({ "action": "created", "deployment": deployment, "repository": repo });
    map_value("deployment", &delivery, from.source("github")?)
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
    map_value("deployment_status", &delivery, from.source("github")?)
}

/// The AI sessions a pull request's commit declares in its trailers (an item of
/// `/pulls/{n}/commits`; `pr`: the pull request), linked to the change and the commit, with the
/// session ids `ledger ingest git` gives the same commit (`git-<sha>`). No records for a commit
/// without such a trailer.
///
/// # Errors
/// A missing or malformed `sha`, `commit.message`, `commit.author` or pull request number.
pub fn commit_sessions(repo: &Value, pr: &Value, commit: &Value, from: Response<'_>) -> Result<Mapped> {
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
    let records = crate::git::change_commit_sessions(
        crate::git::ChangeCommit { repo, number, sha, time, author, message: field("/commit/message")? },
        &from.source("github")?,
    )?;
    Ok(Mapped::Records(records))
}
