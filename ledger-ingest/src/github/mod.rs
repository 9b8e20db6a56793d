//! Mapping GitHub webhook deliveries to records. Pure: the caller reads the payload (a file,
//! or an HTTP body already authenticated by its `X-Hub-Signature-256`) and the event name
//! (`X-GitHub-Event`); this module decides which records the delivery implies.
//!
//! Every record keeps the SHA-256 of the exact payload bytes (`source.payload.digest`), so an
//! auditor holding the delivery can tie the record to it. Record times come from the payload,
//! so the same delivery always yields the same bytes, and re-ingesting it appends nothing.
//! Events and actions that carry no provenance are [`Mapped::Skipped`], with the reason.

use serde_json::Value;

use crate::Mapped;
use sha2::{Digest as _, Sha256};

use crate::git::truncate;
use crate::payload::{Payload, Platform};
use ledger_core::ai::ai_tool_name;
use ledger_core::record::{
    Body, Change, CheckKind, CheckResult, Evidence, Incident, Link, Merge, MergeMethod, Review, Session, Source,
    Verdict,
};
use ledger_core::types::{Digest, DigestAlg, Identity, Timestamp, Token};
use ledger_core::{Error, Result};

pub mod api;
mod deploy;
mod landing;
#[cfg(test)]
mod tests;

/// The events [`map`] reads (`X-GitHub-Event` names). Others carry no provenance and map to
/// [`Mapped::Skipped`].
pub const EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "check_run",
    "check_suite",
    "workflow_run",
    "workflow_job",
    "status",
    "deployment",
    "deployment_status",
    "issues",
    "push",
];

/// GitHub's webhook event names (docs.github.com, "Webhook events and payloads"): an event
/// named here but not in [`EVENTS`] is skipped; a name in neither is not a GitHub event.
pub const KNOWN_EVENTS: &[&str] = &[
    "branch_protection_configuration",
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "create",
    "custom_property",
    "custom_property_values",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_protection_rule",
    "deployment_review",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "github_app_authorization",
    "gollum",
    "installation",
    "installation_repositories",
    "installation_target",
    "issue_comment",
    "issues",
    "label",
    "marketplace_purchase",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "org_block",
    "organization",
    "package",
    "page_build",
    "personal_access_token_request",
    "ping",
    "project",
    "project_card",
    "project_column",
    "projects_v2",
    "projects_v2_item",
    "projects_v2_status_update",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_advisory",
    "repository_dispatch",
    "repository_import",
    "repository_ruleset",
    "repository_vulnerability_alert",
    "secret_scanning_alert",
    "secret_scanning_alert_location",
    "secret_scanning_scan",
    "security_advisory",
    "security_and_analysis",
    "sponsorship",
    "star",
    "status",
    "sub_issues",
    "team",
    "team_add",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// The action of a delivery, if it has one.
pub fn action(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(payload).ok()?.get("action")?.as_str().map(str::to_string)
}

/// GitHub's payload conventions.
pub(crate) struct GitHub;

impl Platform for GitHub {
    const PREFIX: &'static str = "github";
    const REPO: &'static str = "/repository/full_name";
    fn parse_time(s: &str) -> Result<Timestamp> {
        s.parse()
    }
}

type P<'a> = Payload<'a, GitHub>;

impl<'a> P<'a> {
    fn pr_links(&self, ptr: &str) -> Result<Vec<Link>> {
        let mut out = vec![];
        for pr in self.get(ptr).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            if let Some(n) = pr.get("number").and_then(Value::as_u64) {
                out.push(self.change_link(n)?);
            }
        }
        Ok(out)
    }
}

/// A check conclusion as a result; `None` for a check that has not concluded.
fn conclusion(c: &str) -> Option<CheckResult> {
    Some(match c {
        "success" => CheckResult::Pass,
        "failure" => CheckResult::Fail,
        "neutral" | "skipped" | "cancelled" | "stale" => CheckResult::Neutral,
        "timed_out" | "action_required" | "startup_failure" | "error" => CheckResult::Error,
        _ => return None,
    })
}

/// A check's kind from its name, by common naming conventions.
pub(crate) fn check_kind(name: &str) -> CheckKind {
    let n = name.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| n.contains(x));
    if has(&["secret", "gitleaks", "trufflehog"]) {
        CheckKind::SecretScan
    } else if has(&["codeql", "sast", "semgrep", "security", "scan"]) {
        CheckKind::Sast
    } else if has(&["lint", "fmt", "format", "clippy", "eslint"]) {
        CheckKind::Lint
    } else if has(&["integration", "e2e"]) {
        CheckKind::Integration
    } else if has(&["test", "unit"]) {
        CheckKind::Unit
    } else if has(&["build", "compile"]) {
        CheckKind::Build
    } else if has(&["canary"]) {
        CheckKind::Canary
    } else if has(&["provenance", "slsa", "attest"]) {
        CheckKind::Provenance
    } else {
        CheckKind::Other
    }
}

/// Maps one delivery.
///
/// # Errors
/// [`Error::Malformed`] if the payload is not JSON; [`Error::InvalidField`] naming the first
/// field a mapped event needs and lacks (e.g. `pull_request.head.sha`).
pub fn map(event: &str, payload: &[u8]) -> Result<Mapped> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::Malformed { what: "GitHub webhook payload", detail: e.to_string() })?;
    map_value(event, &v, Source::payload(format!("github-webhook:{event}"), sha256(payload)?))
}

/// The SHA-256 of `bytes` as a record digest.
fn sha256(bytes: &[u8]) -> Result<Digest> {
    Digest::new(DigestAlg::Sha256, Sha256::digest(bytes).to_vec())
}

/// [`map`] for a payload already parsed, every record naming `source`.
fn map_value(event: &str, v: &Value, source: Source) -> Result<Mapped> {
    let p = P::new(v, event, source);
    let action = p.opt_str("/action");
    let skip = |why: String| Ok(Mapped::Skipped(why));
    match event {
        "pull_request" => match action {
            Some("opened" | "synchronize" | "reopened" | "edited" | "ready_for_review" | "closed") => pull_request(&p),
            other => skip(format!("pull_request action `{}` carries no provenance", other.unwrap_or("none"))),
        },
        "pull_request_review" => match action {
            Some("submitted" | "dismissed") => review(&p, action == Some("dismissed")),
            other => skip(format!("pull_request_review action `{}` carries no provenance", other.unwrap_or("none"))),
        },
        "check_run" | "check_suite" | "workflow_run" | "workflow_job" => {
            if action != Some("completed") {
                return skip(format!(
                    "{event} action `{}`: only completed checks are evidence",
                    action.unwrap_or("none")
                ));
            }
            check(&p)
        }
        "status" => status(&p),
        "deployment" | "deployment_status" => deploy::deployment(&p),
        "issues" => issue(&p),
        "push" => landing::push(&p),
        other => skip(format!("event `{other}` carries no provenance the ledger records")),
    }
}

fn pull_request(p: &P<'_>) -> Result<Mapped> {
    let repo = p.repo()?;
    let number = p.u64("/pull_request/number")?;
    let author = p.login("/pull_request/user/login")?;
    let head = p.sha("/pull_request/head/sha")?;
    let body = p.opt_str("/pull_request/body").unwrap_or("");
    let change = Change {
        repo: repo.clone(),
        number: Some(number),
        title: truncate(p.str("/pull_request/title")?, 500),
        description: (!body.trim().is_empty()).then(|| truncate(body, 4096)),
        author: author.clone(),
        head_commit: head.clone(),
        base_commit: p.get("/pull_request/base/sha").map(|_| p.sha("/pull_request/base/sha")).transpose()?,
        commits: vec![],
        commits_total: p.get("/pull_request/commits").and_then(Value::as_u64).unwrap_or(0),
        risk_tier: None,
        intent: None,
        source: Some(p.source.clone()),
        // The payload counts lines but does not list files: paths stay unknown.
        paths: None,
        lines_added: p.get("/pull_request/additions").and_then(Value::as_u64),
        lines_removed: p.get("/pull_request/deletions").and_then(Value::as_u64),
        labels: label_names(p.get("/pull_request/labels"), "name"),
    };
    let updated = p.time("/pull_request/updated_at")?;
    let mut out = vec![p.record(updated, author.clone(), vec![], Body::Change(change))];
    let link = p.change_link(number)?;
    let id_prefix = format!("gh-{}-{number}", repo.as_str().replace('/', "-"));
    for session in description_sessions(body, &id_prefix, &p.source)? {
        out.push(p.record(updated, author.clone(), vec![link.clone()], Body::Session(session)));
    }
    if p.opt_str("/action") == Some("closed") && p.get("/pull_request/merged").and_then(Value::as_bool) == Some(true) {
        let merged_by =
            p.get("/pull_request/merged_by/login").map(|_| p.login("/pull_request/merged_by/login")).transpose()?;
        let time =
            p.get("/pull_request/merged_at").map(|_| p.time("/pull_request/merged_at")).transpose()?.unwrap_or(updated);
        out.push(p.record(
            time,
            merged_by.clone().unwrap_or(author),
            vec![link],
            Body::Merge(Merge {
                repo,
                merge_commit: p.sha("/pull_request/merge_commit_sha")?,
                head_commit: head,
                base_commit: p.get("/pull_request/base/sha").map(|_| p.sha("/pull_request/base/sha")).transpose()?,
                merged_by,
                method: MergeMethod::Merge,
                source: Some(p.source.clone()),
            }),
        ));
    }
    Ok(Mapped::Records(out))
}

/// The AI sessions a pull or merge request's description declares: `Assisted-by:` /
/// `Generated-by:` lines, `Co-authored-by:` lines naming an AI tool, and `.ai/provenance.json`
/// documents pasted as fenced `json` blocks. Declared sessions are numbered by their line:
/// `<id_prefix>-<line>`.
///
/// # Errors
/// A tool, model or session id that is not a valid token.
pub(crate) fn description_sessions(body: &str, id_prefix: &str, source: &Source) -> Result<Vec<Session>> {
    let mut out = vec![];
    for (i, line) in body.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let key = key.trim();
        let value = value.trim();
        let model = value.split('<').next().unwrap_or("").trim();
        let ai = match key.to_ascii_lowercase().as_str() {
            "assisted-by" | "generated-by" => true,
            "co-authored-by" => ai_tool_name(model).is_some(),
            _ => false,
        };
        if !ai || model.is_empty() {
            continue;
        }
        let tool = ai_tool_name(model).map(str::to_string).unwrap_or_else(|| {
            model.to_ascii_lowercase().split_whitespace().next().unwrap_or("unknown").replace('/', "-")
        });
        out.push(crate::git::declared_session(&tool, model, format!("{id_prefix}-{i}"), source.clone())?);
    }
    for block in json_blocks(body) {
        out.extend(provenance_session(&block, source)?);
    }
    Ok(out)
}

/// The contents of fenced code blocks tagged `json` in a Markdown text.
fn json_blocks(body: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut rest = body;
    while let Some(start) = rest.find("```json") {
        let after = &rest[start + 7..];
        let Some(end) = after.find("```") else { break };
        if let Ok(v) = serde_json::from_str::<Value>(after[..end].trim()) {
            out.push(v);
        }
        rest = &after[end + 3..];
    }
    out
}

/// A session from an `.ai/provenance.json`-shaped object (`tool`, `model`, `session_id`,
/// `prompt_summary`, `reviewer`, `risk_area`, `verification`); `None` for other JSON.
fn provenance_session(v: &Value, source: &Source) -> Result<Option<Session>> {
    let (Some(tool), Some(id)) = (v.get("tool").and_then(Value::as_str), v.get("session_id").and_then(Value::as_str))
    else {
        return Ok(None);
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(|s| truncate(s, 1000));
    let tool =
        ai_tool_name(tool).map(str::to_string).unwrap_or_else(|| tool.to_ascii_lowercase().replace([' ', '/'], "-"));
    let verification = match v.get("verification") {
        Some(Value::String(s)) => vec![truncate(s, 500)],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(|s| truncate(s, 500)).collect(),
        _ => vec![],
    };
    Ok(Some(Session {
        tool: Token::new(tool)?,
        model: text("model"),
        session_id: Token::new(id)?,
        prompt_digest: v.get("prompt_digest").and_then(Value::as_str).map(str::parse).transpose()?,
        summary: text("prompt_summary"),
        context: vec![],
        declared_reviewer: v.get("reviewer").and_then(Value::as_str).map(Identity::new).transpose()?,
        risk_area: text("risk_area"),
        verification,
        source: Some(source.clone()),
        cost: v.get("cost").map(crate::provenance::cost_of).transpose()?,
    }))
}

fn review(p: &P<'_>, dismissed: bool) -> Result<Mapped> {
    if p.get("/review/commit_id").is_none() {
        // An approval that names no commit cannot be judged valid or stale; recording it at
        // the PR's head would make a possibly stale approval look valid.
        return Ok(Mapped::Skipped("review has no commit_id: an approval must name the exact commit".into()));
    }
    let reviewer = p.login("/review/user/login")?;
    let verdict = if dismissed {
        Verdict::Dismissed
    } else {
        match p.str("/review/state")?.to_ascii_lowercase().as_str() {
            "approved" => Verdict::Approved,
            "changes_requested" => Verdict::ChangesRequested,
            "dismissed" => Verdict::Dismissed,
            _ => Verdict::Commented,
        }
    };
    let time = match p.get("/review/submitted_at") {
        Some(_) => p.time("/review/submitted_at")?,
        None => p.time("/pull_request/updated_at")?,
    };
    let links = vec![p.change_link(p.u64("/pull_request/number")?)?];
    let body = Body::Review(Review {
        repo: p.repo()?,
        reviewer: reviewer.clone(),
        verdict,
        commit: p.sha("/review/commit_id")?,
        source: Some(p.source.clone()),
    });
    Ok(Mapped::Records(vec![p.record(time, reviewer, links, body)]))
}

fn check(p: &P<'_>) -> Result<Mapped> {
    let (root, name, time_field) = match p.event {
        "check_run" => ("/check_run", p.str("/check_run/name")?.to_string(), "/check_run/completed_at"),
        "check_suite" => {
            let app = p.opt_str("/check_suite/app/slug").or(p.opt_str("/check_suite/app/name")).unwrap_or("app");
            ("/check_suite", format!("check_suite/{app}"), "/check_suite/updated_at")
        }
        "workflow_run" => {
            // Some deliveries carry an empty run name; the workflow's name is what a human knows.
            let name = p
                .opt_str("/workflow_run/name")
                .filter(|n| !n.is_empty())
                .or(p.opt_str("/workflow/name").filter(|n| !n.is_empty()))
                .unwrap_or("workflow_run");
            ("/workflow_run", name.to_string(), "/workflow_run/updated_at")
        }
        _ => {
            let job = p.str("/workflow_job/name")?;
            let name = match p.opt_str("/workflow_job/workflow_name") {
                Some(w) => format!("{w}/{job}"),
                None => job.to_string(),
            };
            ("/workflow_job", name, "/workflow_job/completed_at")
        }
    };
    let concl = p.str(&format!("{root}/conclusion"))?;
    let Some(result) = conclusion(concl) else {
        return Ok(Mapped::Skipped(format!("{} conclusion `{concl}` is not a result", p.event)));
    };
    let time = match p.get(time_field) {
        Some(_) => p.time(time_field)?,
        None => p.time(&format!("{root}/created_at"))?,
    };
    let actor = p.login("/sender/login").unwrap_or_else(|_| unreachable_identity());
    let links = p.pr_links(&format!("{root}/pull_requests"))?;
    let body = Body::Evidence(Evidence {
        repo: p.repo()?,
        commit: p.sha(&format!("{root}/head_sha"))?,
        check_kind: check_kind(&name),
        check: truncate(&name, 500),
        result,
        artifact: None,
        predicate_type: None,
        url: p.opt_str(&format!("{root}/html_url")).map(str::to_string),
        signature: None,
        source: Some(p.source.clone()),
        builder: None,
    });
    Ok(Mapped::Records(vec![p.record(time, actor, links, body)]))
}

/// A fixed identity for the impossible case that a constant fails validation.
fn unreachable_identity() -> Identity {
    #[allow(clippy::expect_used)]
    Identity::new("github:unknown").expect("constant identity is valid")
}

fn status(p: &P<'_>) -> Result<Mapped> {
    let state = p.str("/state")?;
    let result = match state {
        "success" => CheckResult::Pass,
        "failure" => CheckResult::Fail,
        "error" => CheckResult::Error,
        other => return Ok(Mapped::Skipped(format!("status state `{other}` is not a result"))),
    };
    let context = p.str("/context")?;
    let time = match p.get("/updated_at") {
        Some(_) => p.time("/updated_at")?,
        None => p.time("/created_at")?,
    };
    let actor = p.login("/sender/login").unwrap_or_else(|_| unreachable_identity());
    let body = Body::Evidence(Evidence {
        repo: p.repo()?,
        commit: p.sha("/sha")?,
        check: truncate(context, 500),
        check_kind: check_kind(context),
        result,
        artifact: None,
        predicate_type: None,
        url: p.opt_str("/target_url").map(str::to_string),
        signature: None,
        source: Some(p.source.clone()),
        builder: None,
    });
    Ok(Mapped::Records(vec![p.record(time, actor, vec![], body)]))
}

/// The `key` field of each object in a label array (GitHub `name`, GitLab `title`), at most
/// 100 labels of at most 200 bytes each.
pub(crate) fn label_names(labels: Option<&Value>, key: &str) -> Vec<String> {
    labels
        .and_then(Value::as_array)
        .map(|a| {
            a.iter().filter_map(|l| l.get(key).and_then(Value::as_str)).take(100).map(|s| truncate(s, 200)).collect()
        })
        .unwrap_or_default()
}

fn issue(p: &P<'_>) -> Result<Mapped> {
    let labels: Vec<&str> = p
        .get("/issue/labels")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|l| l.get("name").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    let event_label = p.opt_str("/label/name");
    let is_incident = labels.iter().chain(event_label.iter()).any(|l| l.to_ascii_lowercase().contains("incident"));
    if !is_incident {
        return Ok(Mapped::Skipped("issue without an incident label".into()));
    }
    let severity = labels
        .iter()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("sev") || l.starts_with("severity") || (l.len() == 2 && l.starts_with('p'))
        })
        .map(|s| s.to_string());
    let number = p.u64("/issue/number")?;
    let body = Body::Incident(Incident {
        system: Token::new("github")?,
        incident_id: Token::new(format!("{}#{number}", p.repo()?))?,
        title: truncate(p.str("/issue/title")?, 500),
        service: Some(p.str("/repository/name")?.to_string()),
        severity,
        opened: p.time("/issue/created_at")?,
        resolved: p.get("/issue/closed_at").map(|_| p.time("/issue/closed_at")).transpose()?,
        source: Some(p.source.clone()),
        inference: None,
    });
    let time = p.time("/issue/updated_at")?;
    Ok(Mapped::Records(vec![p.record(time, p.login("/issue/user/login")?, vec![], body)]))
}
