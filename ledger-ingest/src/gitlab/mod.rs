//! Mapping GitLab webhook deliveries to records. Pure: the caller reads the payload (a file,
//! or an HTTP body already authenticated by its `X-Gitlab-Token`) and names the event (the
//! payload's `object_kind`, which GitLab puts in every delivery, or the `X-Gitlab-Event`
//! header); this module decides which records the delivery implies.
//!
//! Every record keeps the SHA-256 of the exact payload bytes (`source.payload.digest`), so an
//! auditor holding the delivery can tie the record to it. Record times come from the payload,
//! so the same delivery always yields the same bytes, and re-ingesting it appends nothing.
//! Events and actions that carry no provenance are [`Mapped::Skipped`], with the reason.
//!
//! A merge request is a change `pr:<group/sub/project>#<iid>`, like a GitHub pull request.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::git::truncate;
use crate::github::check_kind;
use crate::payload::{missing, Payload, Platform};
pub use crate::Mapped;

/// Backfill from the GitLab REST API.
pub mod api;
use ledger_core::record::{
    Body, Change, CheckResult, DeployStatus, Deployment, Evidence, Merge, MergeMethod, Record, Review, Source, Verdict,
};
use ledger_core::types::{CommitId, Digest, DigestAlg, Identity, RepoName, Timestamp, Token};
use ledger_core::{Error, Result};

/// The events [`map`] reads (GitLab `object_kind` names; `build` is a job). Others carry no
/// provenance and map to [`Mapped::Skipped`].
pub const EVENTS: &[&str] = &["merge_request", "note", "pipeline", "build", "deployment"];

/// GitLab's webhook event kinds (`object_kind`; docs.gitlab.com, "Webhook events"): a kind
/// named here but not in [`EVENTS`] is skipped; a name in neither is not a GitLab event.
pub const KNOWN_EVENTS: &[&str] = &[
    "access_token",
    "build",
    "deployment",
    "emoji",
    "feature_flag",
    "issue",
    "member",
    "merge_request",
    "milestone",
    "note",
    "pipeline",
    "project",
    "push",
    "release",
    "subgroup",
    "tag_push",
    "vulnerability",
    "wiki_page",
    "work_item",
];

/// The event name GitLab's `object_kind` uses for a name given either that way
/// (`merge_request`) or as the `X-Gitlab-Event` header says it (`Merge Request Hook`;
/// `Job Hook` is `build`, confidential issues and notes are `issue` and `note`).
pub fn event_kind(name: &str) -> String {
    let n = name.trim();
    let n = n.strip_suffix(" Hook").or_else(|| n.strip_suffix(" hook")).unwrap_or(n);
    let n = n.strip_prefix("Confidential ").or_else(|| n.strip_prefix("confidential ")).unwrap_or(n);
    let kind = n.to_ascii_lowercase().replace([' ', '-'], "_");
    if kind == "job" {
        "build".into()
    } else {
        kind
    }
}

/// The payload's `object_kind` (GitLab's name of the event), if it has one.
pub fn object_kind(payload: &[u8]) -> Option<String> {
    let v = trim_keys(serde_json::from_slice::<Value>(payload).ok()?);
    v.get("object_kind")?.as_str().map(|s| s.trim().to_string())
}

/// The action of a delivery, if it has one: `object_attributes.action` (merge requests,
/// issues, notes), else a top-level `action` (releases).
pub fn action(payload: &[u8]) -> Option<String> {
    let v = trim_keys(serde_json::from_slice::<Value>(payload).ok()?);
    v.pointer("/object_attributes/action").or_else(|| v.get("action"))?.as_str().map(|s| s.trim().to_string())
}

/// The payload with surrounding whitespace removed from object keys (where that makes no key
/// collide with another). go-gitlab's recorded group merge request event has keys such as
/// `"iid "` and `"state "`; the fields are read by their names, while the digest kept on
/// every record is still of the exact bytes received.
fn trim_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            let exact: Vec<String> = m.keys().filter(|k| k.trim() == k.as_str()).cloned().collect();
            for (k, v) in m {
                let t = k.trim();
                let key =
                    if t != k && !exact.iter().any(|e| e == t) && !out.contains_key(t) { t.to_string() } else { k };
                out.insert(key, trim_keys(v));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(trim_keys).collect()),
        other => other,
    }
}

/// Parses a GitLab time: RFC 3339 (`2013-12-03T17:23:34Z`, as merge request events write it),
/// `YYYY-MM-DD HH:MM:SS UTC` (pipelines, jobs, notes) or `YYYY-MM-DD HH:MM:SS +ZZZZ`
/// (deployments). Fractional seconds are kept to the millisecond.
///
/// # Errors
/// [`Error::InvalidField`] for any other form.
pub fn parse_time(s: &str) -> Result<Timestamp> {
    let bad = || Error::InvalidField {
        field: "time".into(),
        reason: format!("`{s}` is not an RFC 3339 time, `YYYY-MM-DD HH:MM:SS UTC` or `YYYY-MM-DD HH:MM:SS +ZZZZ`"),
    };
    let s = s.trim();
    // The GitLab forms are recognized by their zone.
    if let Some((date_time, zone)) = s.rsplit_once(' ') {
        let offset = if zone == "UTC" {
            Some("Z".to_string())
        } else {
            let b = zone.as_bytes();
            (b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit))
                .then(|| format!("{}:{}", &zone[..3], &zone[3..]))
        };
        if let Some(offset) = offset {
            let (date, time) = date_time.split_once(' ').ok_or_else(bad)?;
            let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
            let d: Vec<&str> = date.split('-').collect();
            let hms: Vec<&str> = time.split('.').next().unwrap_or("").split(':').collect();
            let shaped = d.len() == 3
                && digits(d[0], 4)
                && digits(d[1], 2)
                && digits(d[2], 2)
                && hms.len() == 3
                && hms.iter().all(|x| digits(x, 2));
            if !shaped {
                return Err(bad());
            }
            return rfc3339(&format!("{date}T{time}{offset}")).ok_or_else(bad);
        }
    }
    rfc3339(s).ok_or_else(bad)
}

/// An RFC 3339 time with its offset. Not [`Timestamp`]'s `FromStr`, which also reads bare
/// dates and so takes a time without a zone (`2013-12-03 17:23:34`) for midnight.
fn rfc3339(s: &str) -> Option<Timestamp> {
    s.parse::<jiff::Timestamp>().ok().map(|t| Timestamp(t.as_millisecond()))
}

/// GitLab's payload conventions.
pub(crate) struct GitLab;

impl Platform for GitLab {
    const PREFIX: &'static str = "gitlab";
    const REPO: &'static str = "/project/path_with_namespace";
    fn parse_time(s: &str) -> Result<Timestamp> {
        parse_time(s)
    }
}

pub(crate) type P<'a> = Payload<'a, GitLab>;

impl<'a> P<'a> {
    /// A keyword (action, state, status), without surrounding whitespace.
    fn word(&self, ptr: &str) -> Option<&'a str> {
        self.opt_str(ptr).map(str::trim)
    }
    /// The time of the first of `ptrs` present.
    fn first_time(&self, ptrs: &[&str]) -> Result<Timestamp> {
        match ptrs.iter().find(|p| self.get(p).is_some()) {
            Some(p) => self.time(p),
            None => Err(missing(&ptrs.first().map(|p| p[1..].replace('/', ".")).unwrap_or_default())),
        }
    }
    /// `user.username`, or a fixed `gitlab:unknown` for a record whose actor is incidental
    /// (a check's trigger); go-playground's job event names its user without a username.
    fn user_or_unknown(&self) -> Identity {
        self.login("/user/username").unwrap_or_else(|_| unreachable_identity())
    }
}

/// A fixed identity for the impossible case that a constant fails validation.
fn unreachable_identity() -> Identity {
    #[allow(clippy::expect_used)]
    Identity::new("gitlab:unknown").expect("constant identity is valid")
}

/// A pipeline or job status as a result; `None` for one that has not concluded.
fn status_result(status: &str) -> Option<CheckResult> {
    Some(match status {
        "success" => CheckResult::Pass,
        "failed" => CheckResult::Fail,
        "canceled" | "cancelled" | "skipped" => CheckResult::Neutral,
        _ => return None,
    })
}

/// Maps one delivery. `event` is GitLab's `object_kind` (`merge_request`, `pipeline`,
/// `build`, `deployment`, `note`, `push`…) or an `X-Gitlab-Event` header value; see
/// [`event_kind`].
///
/// # Errors
/// [`Error::Malformed`] if the payload is not JSON; [`Error::InvalidField`] when the payload's
/// `object_kind` names another event than `event`, or naming the first field a mapped event
/// needs and lacks (e.g. `object_attributes.iid`).
pub fn map(event: &str, payload: &[u8]) -> Result<Mapped> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::Malformed { what: "GitLab webhook payload", detail: e.to_string() })?;
    let v = trim_keys(v);
    let event = event_kind(event);
    if let Some(kind) = v.get("object_kind").and_then(Value::as_str).map(str::trim) {
        if kind != event {
            return Err(Error::InvalidField {
                field: "object_kind".into(),
                reason: format!("the payload is a `{kind}` event, not `{event}`"),
            });
        }
    }
    let digest = Digest::new(DigestAlg::Sha256, Sha256::digest(payload).to_vec())?;
    map_value(&event, &v, Source::payload(format!("gitlab-webhook:{event}"), digest))
}

/// [`map`] for a payload already parsed (keys trimmed) and its event known, every record
/// naming `source`.
pub(crate) fn map_value(event: &str, v: &Value, source: Source) -> Result<Mapped> {
    let p = P::new(v, event, source);
    let skip = |why: String| Ok(Mapped::Skipped(why));
    match p.event {
        "merge_request" => {
            let state = p.word("/object_attributes/state");
            match p.word("/object_attributes/action") {
                Some(a @ ("open" | "reopen" | "update" | "merge")) => {
                    merge_request(&p, a == "merge" || state == Some("merged"))
                }
                Some("approved" | "approval") => review(&p, Verdict::Approved),
                Some("unapproved" | "unapproval") => review(&p, Verdict::Dismissed),
                Some(other) => skip(format!("merge_request action `{other}` carries no provenance")),
                // System hooks and older deliveries carry no action: the state says what is known.
                None => match state {
                    Some("opened") => merge_request(&p, false),
                    Some("merged") => merge_request(&p, true),
                    other => skip(format!(
                        "merge_request without an action, in state `{}`, carries no provenance",
                        other.unwrap_or("none")
                    )),
                },
            }
        }
        "note" => match p.word("/object_attributes/noteable_type") {
            Some("MergeRequest") => skip("note on a merge request: comments are not approvals".into()),
            other => skip(format!("note on a `{}` carries no provenance", other.unwrap_or("none"))),
        },
        "pipeline" => pipeline(&p),
        "build" => job(&p),
        "deployment" => deployment(&p),
        other => skip(format!("event `{other}` carries no provenance the ledger records")),
    }
}

/// The merge request's author. GitLab's merge request events name the author only by
/// `object_attributes.author_id`; `user` is whoever triggered the event (the author when
/// opening, often a maintainer when updating or merging). The author is `user` when the ids
/// match, else a user object elsewhere in the payload with that id (`assignees`,
/// `reviewers`, `assignee`). When none matches this falls back to `user`: an approximation
/// that names the triggering user as author, so a change record from an event someone else
/// triggered may name the wrong author.
fn author(p: &P<'_>) -> Result<Identity> {
    let user = p.login("/user/username")?;
    let Some(author_id) = p.get("/object_attributes/author_id").and_then(Value::as_u64) else { return Ok(user) };
    if p.get("/user/id").and_then(Value::as_u64) == Some(author_id) {
        return Ok(user);
    }
    let mut candidates: Vec<&Value> = vec![];
    for list in ["/assignees", "/reviewers"] {
        candidates.extend(p.get(list).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default());
    }
    candidates.extend(p.get("/assignee"));
    let found = candidates.iter().find_map(|u| {
        (u.get("id").and_then(Value::as_u64) == Some(author_id)).then(|| u.get("username").and_then(Value::as_str))?
    });
    match found {
        Some(name) => Identity::new(format!("gitlab:{name}")),
        None => Ok(user),
    }
}

/// A merge request as a delivery or the API states it.
pub(crate) struct MergeRequest<'a> {
    pub(crate) iid: u64,
    pub(crate) title: &'a str,
    pub(crate) description: &'a str,
    pub(crate) author: Identity,
    pub(crate) head: CommitId,
    /// The target branch's commit the diff is against (the API's `diff_refs.base_sha`).
    pub(crate) base: Option<CommitId>,
    pub(crate) labels: Vec<String>,
    /// The time of this version (`updated_at`).
    pub(crate) updated: Timestamp,
    pub(crate) landed: Option<Landing>,
}

/// How a merge request landed.
pub(crate) struct Landing {
    /// The commit that landed on the target branch.
    pub(crate) commit: CommitId,
    /// Who merged, when known.
    pub(crate) by: Option<Identity>,
    pub(crate) method: MergeMethod,
    pub(crate) time: Timestamp,
}

/// A merge request's records: its change, the AI sessions its description declares (session
/// ids `gl-<group-project>-<iid>-<line>`), and its merge when it landed.
pub(crate) fn merge_request_records(p: &P<'_>, mr: MergeRequest<'_>) -> Result<Vec<Record>> {
    let repo = p.repo()?;
    let body = mr.description;
    let change = Change {
        repo: repo.clone(),
        number: Some(mr.iid),
        title: truncate(mr.title, 500),
        description: (!body.trim().is_empty()).then(|| truncate(body, 4096)),
        author: mr.author.clone(),
        head_commit: mr.head.clone(),
        base_commit: mr.base.clone(),
        commits: vec![],
        commits_total: 0,
        risk_tier: None,
        intent: None,
        paths: None,
        lines_added: None,
        lines_removed: None,
        labels: mr.labels,
        source: Some(p.source.clone()),
    };
    let mut out = vec![p.record(mr.updated, mr.author.clone(), vec![], Body::Change(change))];
    let link = p.change_link(mr.iid)?;
    let id_prefix = format!("gl-{}-{}", repo.as_str().replace('/', "-"), mr.iid);
    for session in crate::github::description_sessions(body, &id_prefix, &p.source)? {
        out.push(p.record(mr.updated, mr.author.clone(), vec![link.clone()], Body::Session(session)));
    }
    if let Some(landed) = mr.landed {
        out.push(p.record(
            landed.time,
            landed.by.clone().unwrap_or(mr.author),
            vec![link],
            Body::Merge(Merge {
                repo,
                merge_commit: landed.commit,
                head_commit: mr.head,
                base_commit: mr.base,
                merged_by: landed.by,
                method: landed.method,
                source: Some(p.source.clone()),
            }),
        ));
    }
    Ok(out)
}

fn merge_request(p: &P<'_>, merged: bool) -> Result<Mapped> {
    let updated = p.time("/object_attributes/updated_at")?;
    // A fast-forward merge has no merge commit, and a delivery does not say which commit
    // landed: the change alone is recorded.
    let landed = match merged && p.get("/object_attributes/merge_commit_sha").is_some() {
        true => Some(Landing {
            commit: p.sha("/object_attributes/merge_commit_sha")?,
            by: Some(p.login("/user/username")?),
            method: MergeMethod::Merge,
            time: updated,
        }),
        false => None,
    };
    let mr = MergeRequest {
        iid: p.u64("/object_attributes/iid")?,
        title: p.str("/object_attributes/title")?,
        description: p.opt_str("/object_attributes/description").unwrap_or(""),
        author: author(p)?,
        head: p.sha("/object_attributes/last_commit/id")?,
        // Merge request events do not name the target branch's commit.
        base: None,
        labels: crate::github::label_names(p.get("/labels").or(p.get("/object_attributes/labels")), "title"),
        updated,
        landed,
    };
    Ok(Mapped::Records(merge_request_records(p, mr)?))
}

fn review(p: &P<'_>, verdict: Verdict) -> Result<Mapped> {
    if p.get("/object_attributes/last_commit/id").is_none() {
        // An approval that names no commit cannot be judged valid or stale.
        return Ok(Mapped::Skipped(
            "merge_request approval has no last_commit.id: an approval must name the exact commit".into(),
        ));
    }
    let reviewer = p.login("/user/username")?;
    let links = vec![p.change_link(p.u64("/object_attributes/iid")?)?];
    let body = Body::Review(Review {
        repo: p.repo()?,
        reviewer: reviewer.clone(),
        verdict,
        commit: p.sha("/object_attributes/last_commit/id")?,
        source: Some(p.source.clone()),
    });
    Ok(Mapped::Records(vec![p.record(p.time("/object_attributes/updated_at")?, reviewer, links, body)]))
}

fn pipeline(p: &P<'_>) -> Result<Mapped> {
    let status = p.word("/object_attributes/status").ok_or_else(|| missing("object_attributes.status"))?;
    let Some(result) = status_result(status) else {
        return Ok(Mapped::Skipped(format!("pipeline status `{status}` is not a result")));
    };
    let name = match p.opt_str("/object_attributes/name").filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("pipeline/{n}"),
        None => "pipeline".to_string(),
    };
    // The merge request a pipeline ran for, when it belongs to this project: a pipeline of a
    // fork's project names the target project only by id, so no change subject can be formed.
    let mut links = vec![];
    if let Some(iid) = p.get("/merge_request/iid").and_then(Value::as_u64) {
        let target = p.get("/merge_request/target_project_id").and_then(Value::as_u64);
        let project = p.get("/project/id").and_then(Value::as_u64);
        if target.is_none() || project.is_none() || target == project {
            links.push(p.change_link(iid)?);
        }
    }
    let time = p.first_time(&["/object_attributes/finished_at", "/object_attributes/created_at"])?;
    let body = Body::Evidence(Evidence {
        repo: p.repo()?,
        commit: p.sha("/object_attributes/sha")?,
        check_kind: check_kind(&name),
        check: truncate(&name, 500),
        result,
        artifact: None,
        predicate_type: None,
        url: p.opt_str("/object_attributes/url").map(str::to_string),
        signature: None,
        source: Some(p.source.clone()),
        builder: None,
    });
    Ok(Mapped::Records(vec![p.record(time, p.user_or_unknown(), links, body)]))
}

/// The `group/project` path of a project's URL (`https://gitlab.com/group/project(.git)`).
fn url_path(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1.trim_end_matches('/');
    Some(path.strip_suffix(".git").unwrap_or(path))
}

/// A job event's repository. Job events carry no `project` object in older GitLab versions;
/// their `project_name` is the display name with namespace (`John Smith / release-tools-fake`
/// in go-gitlab's recording), not a path, so the path of `repository.homepage` comes first.
fn job_repo(p: &P<'_>) -> Result<RepoName> {
    if p.get("/project/path_with_namespace").is_some() {
        return p.repo();
    }
    let from_url = p.opt_str("/repository/homepage").and_then(url_path).and_then(|x| RepoName::new(x).ok());
    let from_name = || p.opt_str("/project_name").and_then(|x| RepoName::new(x.trim()).ok());
    from_url.or_else(from_name).ok_or_else(|| missing("project.path_with_namespace"))
}

fn job(p: &P<'_>) -> Result<Mapped> {
    let status = p.word("/build_status").ok_or_else(|| missing("build_status"))?;
    let result = match status {
        "success" => CheckResult::Pass,
        "failed" => CheckResult::Fail,
        "canceled" | "cancelled" => CheckResult::Neutral,
        other => return Ok(Mapped::Skipped(format!("build (job) status `{other}` is not a result"))),
    };
    let name = format!("{}/{}", p.str("/build_stage")?, p.str("/build_name")?);
    let commit = match p.get("/sha") {
        Some(_) => p.sha("/sha")?,
        None => p.sha("/commit/sha")?,
    };
    let time = p.first_time(&["/build_finished_at", "/build_started_at", "/build_created_at"])?;
    let body = Body::Evidence(Evidence {
        repo: job_repo(p)?,
        commit,
        check_kind: check_kind(&name),
        check: truncate(&name, 500),
        result,
        artifact: None,
        predicate_type: None,
        url: None,
        signature: None,
        source: Some(p.source.clone()),
        builder: None,
    });
    Ok(Mapped::Records(vec![p.record(time, p.user_or_unknown(), vec![], body)]))
}

/// Whether `s` is a full commit id (40 or 64 hex digits).
fn full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn deployment(p: &P<'_>) -> Result<Mapped> {
    let status = match p.word("/status").ok_or_else(|| missing("status"))? {
        "success" => DeployStatus::Success,
        "failed" => DeployStatus::Failure,
        "running" => DeployStatus::InProgress,
        "canceled" | "cancelled" => DeployStatus::Inactive,
        other => return Ok(Mapped::Skipped(format!("deployment status `{other}` is not recorded"))),
    };
    // Deployment events name the commit by `short_sha` and `commit_url`; the full id is the
    // URL's last segment. A `sha` field, where there is one, comes first.
    let short = p.word("/short_sha").unwrap_or("").to_ascii_lowercase();
    let candidates =
        [p.word("/sha"), p.opt_str("/commit_url").and_then(|u| u.trim_end_matches('/').rsplit('/').next())];
    let Some(sha) = candidates.into_iter().flatten().map(str::to_ascii_lowercase).find(|s| full_sha(s)) else {
        return Ok(Mapped::Skipped(format!(
            "deployment names no full commit id (short_sha `{short}`): deployed commits must be exact"
        )));
    };
    if !sha.starts_with(&short) {
        return Err(Error::InvalidField {
            field: "commit_url".into(),
            reason: format!("commit {sha} does not start with the deployment's short_sha `{short}`"),
        });
    }
    let id = match p.get("/deployment_id").ok_or_else(|| missing("deployment_id"))? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(missing("deployment_id")),
    };
    let repo = p.repo()?;
    // `project.name` is a display name and may hold spaces; the path's last segment never does.
    let service =
        match p.opt_str("/project/name").and_then(|n| Token::new(n).ok()).filter(|t| !t.as_str().contains('/')) {
            Some(t) => t,
            None => Token::new(repo.as_str().rsplit('/').next().unwrap_or(repo.as_str()))?,
        };
    // Environments may be nested (`review/feature-x`), but a deployment subject's environment
    // holds no `/`.
    let environment = p.str("/environment")?.trim().replace(|c: char| c.is_whitespace() || c == '/', "-");
    let deployer = p.login("/user/username")?;
    let time = p.time("/status_changed_at")?;
    let body = Body::Deployment(Deployment {
        service,
        environment: Token::new(environment)?,
        deployment_id: Token::new(id)?,
        repo: Some(repo),
        commits: vec![CommitId::new(sha)?],
        version: None,
        deployer: deployer.clone(),
        status,
        rollback_of: None,
        source: Some(p.source.clone()),
        strategy: None,
    });
    Ok(Mapped::Records(vec![p.record(time, deployer, vec![], body)]))
}

#[cfg(test)]
mod tests;
