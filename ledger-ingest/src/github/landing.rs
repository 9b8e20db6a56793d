//! Pushes to the default branch: a landing without a pull request (a direct push), with the
//! commits it carried and the paths they touched.

use serde_json::Value;

use super::P;
use crate::git::truncate;
use crate::payload::missing;
use crate::Mapped;
use ledger_core::record::Body;
use ledger_core::types::{CommitId, Identity};
use ledger_core::Result;

/// `Name <email>` of a commit author or committer in a push payload.
fn push_person(c: &Value, who: &str) -> Option<crate::git::GitPerson> {
    let p = c.get(who)?;
    Some(crate::git::GitPerson {
        name: p.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
        email: p.get("email").and_then(Value::as_str).unwrap_or("").to_string(),
        time: c.get("timestamp").and_then(Value::as_str)?.parse().ok()?,
    })
}

/// A push to the default branch that is not a pull request's landing: the commits landed
/// directly. Pushes to other branches and tags are skipped (their commits are recorded when a
/// pull request lands them), and so are pushes whose head is a pull request's merge or squash
/// commit (the `pull_request` event records that landing with the right head commit).
pub(super) fn push(p: &P<'_>) -> Result<Mapped> {
    let default = p.opt_str("/repository/default_branch").or(p.opt_str("/repository/master_branch")).unwrap_or("main");
    let r#ref = p.str("/ref")?;
    if r#ref != format!("refs/heads/{default}") {
        return Ok(Mapped::Skipped(format!("push to `{ref}`, not the default branch `{default}`", ref = r#ref)));
    }
    if p.get("/deleted").and_then(Value::as_bool) == Some(true) || p.get("/head_commit").is_none() {
        return Ok(Mapped::Skipped("push without a head commit (a branch deletion)".into()));
    }
    let after = p.sha("/after")?;
    let before = p
        .opt_str("/before")
        .filter(|b| b.bytes().any(|c| c != b'0'))
        .map(|b| CommitId::new(b.to_ascii_lowercase()))
        .transpose()?;
    let to_commit = |c: &Value| -> Result<Option<crate::git::GitCommit>> {
        let (Some(id), Some(author), Some(committer)) =
            (c.get("id").and_then(Value::as_str), push_person(c, "author"), push_person(c, "committer"))
        else {
            return Ok(None);
        };
        Ok(Some(crate::git::GitCommit {
            sha: CommitId::new(id.to_ascii_lowercase())?,
            parents: before.iter().cloned().collect(),
            author,
            committer,
            message: c.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
            signature: ledger_core::record::CommitSignature::NotReported,
            diff: None,
        }))
    };
    let head_value = p.get("/head_commit").ok_or_else(|| missing("head_commit"))?;
    let Some(mut head) = to_commit(head_value)? else { return Err(missing("head_commit.author")) };
    head.diff = pushed_paths(p).map(|paths| crate::git::DiffStat { paths, lines_added: None, lines_removed: None });
    let kind = crate::git::classify(&head);
    let message_says_merge = head.subject_line().starts_with("Merge pull request #");
    if kind.pr.is_some() || message_says_merge {
        return Ok(Mapped::Skipped(format!(
            "push of a pull request's landing ({}): recorded from the pull_request event",
            truncate(head.subject_line(), 80)
        )));
    }
    let mut pushed = vec![];
    for c in p.get("/commits").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        if c.get("distinct").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if let Some(gc) = to_commit(c)? {
            pushed.push(gc);
        }
    }
    if !pushed.iter().any(|c| c.sha == after) {
        pushed.push(head.clone());
    }
    let repo = p.repo()?;
    let mut records = crate::git::landing_records(&repo, &head, &pushed)?;
    let pusher = p.opt_str("/pusher/name").map(|n| Identity::new(format!("github:{n}"))).transpose()?;
    for r in &mut records {
        match &mut r.body {
            Body::Change(c) => c.source = Some(p.source.clone()),
            Body::Merge(m) => {
                m.source = Some(p.source.clone());
                // Who pushed is known from the delivery, unlike from git alone.
                if let Some(who) = &pusher {
                    m.merged_by = Some(who.clone());
                    r.actor = who.clone();
                }
            }
            Body::Review(x) => x.source = Some(p.source.clone()),
            Body::Session(x) => x.source = Some(p.source.clone()),
            _ => {}
        }
    }
    Ok(Mapped::Records(records))
}

/// The paths a push touched: the union of its commits' `added`, `removed` and `modified`
/// lists. `None` when they may be incomplete: GitHub lists at most 20 commits in a push.
fn pushed_paths(p: &P<'_>) -> Option<Vec<String>> {
    let commits = p.get("/commits").and_then(Value::as_array)?;
    if commits.is_empty() || commits.len() >= 20 {
        return None;
    }
    let mut paths = std::collections::BTreeSet::new();
    for c in commits {
        for list in ["added", "removed", "modified"] {
            for path in c.get(list).and_then(Value::as_array)?.iter() {
                paths.insert(path.as_str()?.to_string());
            }
        }
    }
    (paths.len() <= crate::git::MAX_PATHS).then(|| paths.into_iter().collect())
}
