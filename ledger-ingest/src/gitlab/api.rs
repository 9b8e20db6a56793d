//! Backfill from the GitLab REST API (v4): merge requests, their approvals, pipelines and
//! jobs, and deployments, mapped to records by the webhook rules. Pipelines, jobs, approvals
//! and deployments are put in the shape of the delivery that would have carried them and
//! mapped by [`super::map`]'s code; a merge request goes through the same change builder as a
//! `merge_request` delivery. `source` names the API resource and the SHA-256 of the exact
//! response body. Pure: the caller does the HTTP.
//!
//! What the API says that a delivery does not: which commit landed (merge, squash, or the head
//! itself for a fast-forward), who merged (`merge_user`), the diff's base commit, the touched
//! paths (`/diffs`). What it does not say: when an approval was given and of which commit; the
//! approvals endpoint names only who approves now. The approval system notes ("approved this
//! merge request") give who and when, and the merge request's diff versions which head commit
//! the merge request had then: an approval is bound to that commit. An approver listed by the
//! approvals endpoint without such a note cannot be bound to a commit and is skipped, with the
//! reason. A deployment's statuses are not listed: its current status is recorded, at the time
//! it finished (or was last updated).

use serde_json::{json, Value};

use super::{map_value, merge_request_records, parse_time, Landing, MergeRequest, P};
use crate::backfill::{attach, ChangedFile, Response};
use crate::Mapped;
use ledger_core::record::MergeMethod;
use ledger_core::types::{CommitId, Timestamp};
use ledger_core::{Error, Result};

/// The system note GitLab writes when a user approves a merge request, and when they take
/// the approval back.
const APPROVED_NOTE: &str = "approved this merge request";
const UNAPPROVED_NOTE: &str = "unapproved this merge request";

fn missing(field: &str) -> Error {
    crate::payload::missing(field)
}

/// Label names from a list of strings (the API's default) or of label objects.
fn labels(v: Option<&Value>) -> Vec<String> {
    let Some(list) = v.and_then(Value::as_array) else { return vec![] };
    list.iter()
        .filter_map(|l| l.as_str().or_else(|| l.get("title").or(l.get("name")).and_then(Value::as_str)))
        .take(100)
        .map(|s| crate::git::truncate(s, 200))
        .collect()
}

/// A merge request (`project`: the project object, `mr`: `/projects/{id}/merge_requests/{iid}`
/// or an item of the listing): its change record, the AI sessions its description declares,
/// and, when it was merged, its merge: the merge commit, else the squash commit, else (a
/// fast-forward) the head commit itself. `files`: every file it changed, when the listing is
/// complete (`None` leaves the paths unknown); `lines_known`: whether every file's diff was
/// given, so that the lines added and removed can be counted.
///
/// # Errors
/// A missing or malformed field (`iid`, `title`, `author.username`, `sha`, `updated_at`),
/// named.
pub fn merge_request(
    project: &Value,
    mr: &Value,
    files: Option<&[ChangedFile]>,
    lines_known: bool,
    from: Response<'_>,
) -> Result<Mapped> {
    let v = json!({ "project": project, "object_attributes": mr });
    let p = P::new(&v, "merge_request", from.source("gitlab")?);
    let head = p.sha("/object_attributes/sha")?;
    let updated = p.time("/object_attributes/updated_at")?;
    let merged = p.word("/object_attributes/state") == Some("merged");
    let landed = if merged {
        let by = ["/object_attributes/merge_user/username", "/object_attributes/merged_by/username"]
            .into_iter()
            .find(|ptr| p.get(ptr).is_some())
            .map(|ptr| p.login(ptr))
            .transpose()?;
        let (commit, method) = if p.get("/object_attributes/merge_commit_sha").is_some() {
            (p.sha("/object_attributes/merge_commit_sha")?, MergeMethod::Merge)
        } else if p.get("/object_attributes/squash_commit_sha").is_some() {
            (p.sha("/object_attributes/squash_commit_sha")?, MergeMethod::Squash)
        } else {
            (head.clone(), MergeMethod::Rebase)
        };
        let time = match p.get("/object_attributes/merged_at") {
            Some(_) => p.time("/object_attributes/merged_at")?,
            None => updated,
        };
        Some(Landing { commit, by, method, time })
    } else {
        None
    };
    let mr = MergeRequest {
        iid: p.u64("/object_attributes/iid")?,
        title: p.str("/object_attributes/title")?,
        description: p.opt_str("/object_attributes/description").unwrap_or(""),
        author: p.login("/object_attributes/author/username")?,
        head,
        base: p
            .get("/object_attributes/diff_refs/base_sha")
            .map(|_| p.sha("/object_attributes/diff_refs/base_sha"))
            .transpose()?,
        labels: labels(p.get("/object_attributes/labels")),
        updated,
        landed,
    };
    let mut records = merge_request_records(&p, mr)?;
    if let Some(files) = files {
        attach(&mut records, files, lines_known)?;
    }
    Ok(Mapped::Records(records))
}

/// A file of a merge request's diffs (an item of `/merge_requests/{iid}/diffs`): its path
/// after the change and its lines added and removed, counted from the unified diff text, and
/// whether they could be counted (not when GitLab left the diff out: `too_large`,
/// `collapsed`, or no `diff`). `None` for an item without a path.
pub fn changed_file(diff: &Value) -> Option<(ChangedFile, bool)> {
    let path = diff.get("new_path").or(diff.get("old_path")).and_then(Value::as_str)?.to_string();
    let left_out = |k: &str| diff.get(k).and_then(Value::as_bool) == Some(true);
    let text = diff.get("diff").and_then(Value::as_str).filter(|_| !left_out("too_large") && !left_out("collapsed"));
    let (mut additions, mut deletions) = (0, 0);
    if let Some(text) = text {
        // GitLab's diff text starts at the first hunk; any header before it is not a line.
        for line in text.lines().skip_while(|l| !l.starts_with("@@")) {
            if line.starts_with('+') {
                additions += 1;
            } else if line.starts_with('-') {
                deletions += 1;
            }
        }
    }
    Some((ChangedFile { path, additions, deletions }, text.is_some()))
}

/// A diff version of a merge request (an item of `/merge_requests/{iid}/versions`): its head
/// commit from when it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The merge request's head commit in this version.
    pub head: CommitId,
    /// When the version was created (the push).
    pub created: Timestamp,
}

/// The versions of a merge request, oldest first.
///
/// # Errors
/// A version without `head_commit_sha` or `created_at`.
pub fn versions(list: &[Value]) -> Result<Vec<Version>> {
    let mut out = list
        .iter()
        .map(|v| {
            let sha = v.get("head_commit_sha").and_then(Value::as_str).ok_or_else(|| missing("head_commit_sha"))?;
            let created =
                parse_time(v.get("created_at").and_then(Value::as_str).ok_or_else(|| missing("created_at"))?)?;
            Ok(Version { head: CommitId::new(sha.trim().to_ascii_lowercase())?, created })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|v| v.created);
    Ok(out)
}

/// Whether a note (an item of `/merge_requests/{iid}/notes`) is an approval or its taking back.
pub fn is_approval_note(note: &Value) -> bool {
    note.get("system").and_then(Value::as_bool) == Some(true)
        && note.get("body").and_then(Value::as_str).is_some_and(|b| {
            let b = b.trim();
            b == APPROVED_NOTE || b == UNAPPROVED_NOTE
        })
}

/// The username of a note's author.
pub fn note_author(note: &Value) -> Option<&str> {
    note.pointer("/author/username").and_then(Value::as_str)
}

/// An approval (or its taking back) from its system note, bound to the head commit the merge
/// request had then (the last of `versions` created at or before the note), as an `approved`
/// (`unapproved`) delivery would bind it to the merge request's `last_commit`. Skipped when
/// no version is that old.
///
/// # Errors
/// A note without `author.username` or `created_at`; a merge request without `iid`.
pub fn approval(project: &Value, iid: u64, note: &Value, versions: &[Version], from: Response<'_>) -> Result<Mapped> {
    let user = note_author(note).ok_or_else(|| missing("author.username"))?;
    let at = note.get("created_at").and_then(Value::as_str).ok_or_else(|| missing("created_at"))?;
    let when = parse_time(at)?;
    let Some(version) = versions.iter().rev().find(|v| v.created <= when) else {
        return Ok(Mapped::Skipped(format!(
            "approval by {user} at {at} predates every diff version of !{iid}: the commit approved is not known"
        )));
    };
    let approved = note.get("body").and_then(Value::as_str).is_some_and(|b| b.trim() == APPROVED_NOTE);
    let delivery = json!({
        "object_kind": "merge_request",
        "user": { "username": user },
        "project": project,
        "object_attributes": {
            "iid": iid,
            "action": if approved { "approved" } else { "unapproved" },
            "updated_at": at,
            "last_commit": { "id": version.head.as_str() },
        },
    });
    map_value("merge_request", &delivery, from.source("gitlab")?)
}

/// The usernames the approvals endpoint (`/merge_requests/{iid}/approvals`) lists as approving.
pub fn approvers(approvals: &Value) -> Vec<String> {
    let list = approvals.get("approved_by").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    list.iter().filter_map(|a| a.pointer("/user/username").and_then(Value::as_str).map(str::to_string)).collect()
}

/// A pipeline (`/projects/{id}/pipelines/{pipeline_id}`): evidence at its commit when it has
/// finished, linked to merge request `mr_iid` when it ran for it (`source` is
/// `merge_request_event`), as a pipeline delivery is.
///
/// # Errors
/// As the pipeline delivery: a missing `status`, `sha` or time.
pub fn pipeline(project: &Value, pipeline: &Value, mr_iid: Option<u64>, from: Response<'_>) -> Result<Mapped> {
    let for_mr = pipeline.get("source").and_then(Value::as_str) == Some("merge_request_event");
    let field = |k: &str| pipeline.get(k).cloned().unwrap_or(Value::Null);
    let delivery = json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": field("id"),
            "name": field("name"),
            "sha": field("sha"),
            "status": field("status"),
            "source": field("source"),
            "created_at": field("created_at"),
            "finished_at": field("finished_at"),
            "url": field("web_url"),
        },
        "merge_request": match (for_mr, mr_iid) {
            (true, Some(iid)) => json!({ "iid": iid, "target_project_id": project.get("id") }),
            _ => Value::Null,
        },
        "user": field("user"),
        "project": project,
    });
    map_value("pipeline", &delivery, from.source("gitlab")?)
}

/// A job (an item of `/projects/{id}/pipelines/{pipeline_id}/jobs`): evidence at its commit
/// when it has finished, as a job (`build`) delivery is.
///
/// # Errors
/// As the job delivery: a missing `status`, `stage`, `name`, commit or time.
pub fn job(project: &Value, job: &Value, from: Response<'_>) -> Result<Mapped> {
    let field = |ptr: &str| job.pointer(ptr).cloned().unwrap_or(Value::Null);
    let sha = job.pointer("/commit/id").or(job.pointer("/pipeline/sha")).cloned().unwrap_or(Value::Null);
    let delivery = json!({
        "object_kind": "build",
        "build_id": field("/id"),
        "build_status": field("/status"),
        "build_stage": field("/stage"),
        "build_name": field("/name"),
        "build_created_at": field("/created_at"),
        "build_started_at": field("/started_at"),
        "build_finished_at": field("/finished_at"),
        "sha": sha,
        "user": field("/user"),
        "project": project,
    });
    map_value("build", &delivery, from.source("gitlab")?)
}

/// A deployment (an item of `/projects/{id}/deployments`): its current status at the time it
/// finished (else was last updated), as a deployment delivery reports a status change.
///
/// # Errors
/// As the deployment delivery: a missing `status`, `id`, `environment.name`, `user.username`
/// or time; a `sha` that is not a full commit id is skipped.
pub fn deployment(project: &Value, d: &Value, from: Response<'_>) -> Result<Mapped> {
    let field = |ptr: &str| d.pointer(ptr).cloned().unwrap_or(Value::Null);
    let sha = d.get("sha").and_then(Value::as_str).unwrap_or("");
    let changed = d.get("finished_at").filter(|t| !t.is_null()).or(d.get("updated_at")).cloned();
    let delivery = json!({
        "object_kind": "deployment",
        "status": field("/status"),
        "deployment_id": field("/id"),
        "environment": field("/environment/name"),
        "sha": sha,
        "short_sha": sha.get(..8).unwrap_or(sha),
        "status_changed_at": changed.unwrap_or(Value::Null),
        "user": field("/user"),
        "project": project,
    });
    map_value("deployment", &delivery, from.source("gitlab")?)
}

/// The AI sessions a merge request's commit declares in its trailers (an item of
/// `/merge_requests/{iid}/commits`), linked to the change and the commit, with the session ids
/// `ledger ingest git` gives the same commit.
///
/// # Errors
/// A commit without `id`, `message`, `author_name`, `author_email` or `authored_date`, or a
/// project without `path_with_namespace`.
pub fn commit_sessions(project: &Value, iid: u64, commit: &Value, from: Response<'_>) -> Result<Mapped> {
    let field = |k: &str| commit.get(k).and_then(Value::as_str).ok_or_else(|| missing(k));
    let repo =
        project.get("path_with_namespace").and_then(Value::as_str).ok_or_else(|| missing("path_with_namespace"))?;
    let records = crate::git::change_commit_sessions(
        crate::git::ChangeCommit {
            repo: ledger_core::types::RepoName::new(repo)?,
            number: iid,
            sha: CommitId::new(field("id")?.trim().to_ascii_lowercase())?,
            time: parse_time(field("authored_date")?)?,
            author: crate::git::person_identity(field("author_name")?, field("author_email")?),
            message: field("message")?,
        },
        &from.source("gitlab")?,
    )?;
    Ok(Mapped::Records(records))
}
