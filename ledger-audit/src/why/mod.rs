//! "Who approved this, and what evidence proved it was safe?": the analysis behind
//! `ledger why`. Pure: the caller gathers the related entries (see `ledger-store`), this
//! module links them into a report with findings.
//!
//! Approvals are judged against the change's **final commit**: the head commit at merge
//! (for a squash or direct landing, the landed commit also counts). An approval of any other
//! commit is reported as stale. Missing links are findings, not errors.
//!
//! The JSON form of [`WhyReport`] is stable and documented in `docs/WHY.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ledger_core::record::{Body, Change, CheckResult, MergeMethod, Record, Rel, Verdict};
use ledger_core::subject::Subject;
use ledger_core::types::{CommitId, EntryHash, Identity, Seq, Timestamp};

/// A record as gathered for analysis: its position, entry hash and decoded content.
#[derive(Clone, Debug)]
pub struct Gathered {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Integration time.
    pub integrated: Timestamp,
    /// The record.
    pub record: Record,
}

/// Where an item of the report comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    /// Sequence number.
    pub seq: u64,
    /// Entry hash, lowercase hex.
    pub entry: String,
}

impl From<&Gathered> for EntryRef {
    fn from(g: &Gathered) -> Self {
        EntryRef { seq: g.seq.0, entry: g.hash.to_hex() }
    }
}

/// A finding: something an auditor should know, with a stable machine-readable code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `no_approval`.
    pub code: String,
    /// Human sentence.
    pub message: String,
}

/// One commit of a change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitLine {
    /// Commit id.
    pub sha: CommitId,
    /// Author.
    pub author: Identity,
    /// Committer.
    pub committer: Identity,
    /// First line of the message.
    pub title: String,
    /// Signature kind (`none`, `pgp`, `ssh`, `x509`, `unknown`); not verified.
    pub signature: ledger_core::record::CommitSignature,
    /// Trailers, as `Key: value`.
    pub trailers: Vec<String>,
}

/// The merge of a change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergeLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// The commit that landed.
    pub commit: CommitId,
    /// The change's head commit at merge.
    pub head_commit: CommitId,
    /// Who merged, when known.
    pub merged_by: Option<Identity>,
    /// When (the author's claimed time).
    pub time: Timestamp,
    /// `merge`, `squash`, `rebase` or `direct`.
    pub method: MergeMethod,
}

/// An approval or other review.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Reviewer.
    pub reviewer: Identity,
    /// Verdict.
    pub verdict: Verdict,
    /// The commit reviewed.
    pub commit: CommitId,
    /// `valid` (at the final commit), `stale` (an older commit) or `dismissed` (an approval
    /// its reviewer's later dismissal cancelled).
    pub status: String,
    /// Where the review came from (`review`, or the trailer key such as `Reviewed-by`).
    pub via: String,
}

/// A check result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvidenceLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Check name.
    pub check: String,
    /// Result.
    pub result: CheckResult,
    /// Commit checked.
    pub commit: CommitId,
    /// Whether it was run at the final commit.
    pub at_final_commit: bool,
}

/// An AI session involved in the change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Session subject.
    pub subject: String,
    /// Tool.
    pub tool: String,
    /// Model, as reported.
    pub model: Option<String>,
    /// Short summary.
    pub summary: Option<String>,
    /// Where it came from (`Assisted-by` trailer, provenance file...).
    pub via: String,
    /// Tiers the model is approved for, when a `model` record names it.
    pub model_approved_tiers: Option<Vec<ledger_core::types::Tier>>,
}

/// An exception in force (or expired) for the change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExceptionLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Approver.
    pub approver: Identity,
    /// Reason.
    pub reason: String,
    /// Expiry.
    pub not_after: Timestamp,
    /// Whether it had expired at the time of the report.
    pub expired: bool,
}

/// A deployment of the change's landed or final commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeploymentLine {
    /// Where its latest record is.
    #[serde(flatten)]
    pub at: EntryRef,
    /// `deploy:<service>/<environment>/<id>`.
    pub subject: String,
    /// Environment.
    pub environment: String,
    /// Latest status.
    pub status: ledger_core::record::DeployStatus,
    /// Who deployed (from the first record).
    pub deployer: Identity,
    /// The commit deployed that belongs to this change.
    pub commit: CommitId,
    /// When (event time of the latest record).
    pub time: Timestamp,
}

/// An incident linked to the change through one of its deployments (or directly).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IncidentLine {
    /// Where its latest record is.
    #[serde(flatten)]
    pub at: EntryRef,
    /// `incident:<system>/<id>`.
    pub subject: String,
    /// Title.
    pub title: String,
    /// Severity, as the system names it.
    pub severity: Option<String>,
    /// Opened.
    pub opened: Timestamp,
    /// Resolved, if it was.
    pub resolved: Option<Timestamp>,
    /// What it is linked to (a deployment or the change).
    pub cause: String,
    /// True when the link was inferred from timing alone, not an explicit reference.
    pub inferred: bool,
}

/// Everything recorded about one change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangeReport {
    /// Where the (latest) change record is.
    #[serde(flatten)]
    pub at: EntryRef,
    /// `pr:<repo>#<n>`, or the commit for a change without a PR.
    pub subject: String,
    /// Repository.
    pub repo: String,
    /// PR number.
    pub number: Option<u64>,
    /// Title.
    pub title: String,
    /// Author.
    pub author: Identity,
    /// Head commit as recorded on the change.
    pub head_commit: CommitId,
    /// The commit approvals must be for: the head at merge.
    pub final_commit: CommitId,
    /// Commits brought in (possibly truncated; see `commits_total`).
    pub commits: Vec<CommitLine>,
    /// Number of commits brought in.
    pub commits_total: u64,
    /// Distinct commit authors.
    pub commit_authors: Vec<Identity>,
    /// The merge, if recorded.
    pub merge: Option<MergeLine>,
    /// Reviews, oldest first.
    pub reviews: Vec<ReviewLine>,
    /// Evidence, oldest first.
    pub evidence: Vec<EvidenceLine>,
    /// AI sessions and bots involved.
    pub sessions: Vec<SessionLine>,
    /// Exceptions.
    pub exceptions: Vec<ExceptionLine>,
    /// Deployments of the landed or final commit.
    pub deployments: Vec<DeploymentLine>,
    /// Incidents linked to those deployments or to the change.
    pub incidents: Vec<IncidentLine>,
    /// Findings about this change.
    pub findings: Vec<Finding>,
}

/// The answer to `why <subject>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhyReport {
    /// The subject asked about, canonical.
    pub subject: String,
    /// Changes the subject belongs to.
    pub changes: Vec<ChangeReport>,
    /// Findings about the subject as a whole (e.g. nothing recorded).
    pub findings: Vec<Finding>,
}

fn finding(code: &str, message: String) -> Finding {
    Finding { code: code.to_string(), message }
}

fn short(c: &CommitId) -> &str {
    &c.as_str()[..12]
}

/// The change subjects a record belongs to.
pub fn change_subjects_of(record: &Record) -> Vec<Subject> {
    let mut out: Vec<Subject> =
        record.links.iter().filter(|l| l.rel == Rel::Change).map(|l| l.target.clone()).collect();
    if let Body::Change(c) = &record.body {
        out.push(c.subject());
    }
    out
}

/// The subjects worth following from a record when gathering what `why` needs: the change it
/// belongs to, a change's head commit, a merge's head and merge commits, a deployment and
/// its commits, an incident and its causes. (A change's other commits are not followed: they
/// lead back to the same change.)
pub fn follow(record: &Record) -> Vec<Subject> {
    let mut out = change_subjects_of(record);
    for l in &record.links {
        if matches!(l.rel, Rel::Deployment | Rel::CausedBy | Rel::CausedByInferred | Rel::RollbackOf) {
            out.push(l.target.clone());
        }
    }
    match &record.body {
        Body::Change(c) => out.push(Subject::Commit { repo: Some(c.repo.clone()), sha: c.head_commit.clone() }),
        Body::Merge(m) => {
            out.push(Subject::Commit { repo: Some(m.repo.clone()), sha: m.head_commit.clone() });
            out.push(Subject::Commit { repo: Some(m.repo.clone()), sha: m.merge_commit.clone() });
        }
        Body::Deployment(d) => {
            out.push(d.subject());
            out.extend(d.commits.iter().map(|c| Subject::Commit { repo: None, sha: c.clone() }));
            out.extend(d.rollback_of.iter().cloned());
        }
        Body::Incident(i) => out.push(i.subject()),
        _ => {}
    }
    out
}

/// Builds the report for `subject` from the gathered records (any order, duplicates allowed).
/// `now` decides which exceptions have expired.
pub fn analyze(subject: &Subject, gathered: &[Gathered], now: Timestamp) -> WhyReport {
    let mut by_seq: BTreeMap<Seq, &Gathered> = BTreeMap::new();
    for g in gathered {
        by_seq.insert(g.seq, g);
    }
    let all: Vec<&Gathered> = by_seq.into_values().collect();

    // Latest change record per change subject.
    let mut changes: BTreeMap<Subject, (&Gathered, &Change)> = BTreeMap::new();
    for g in &all {
        if let Body::Change(c) = &g.record.body {
            changes.insert(c.subject(), (g, c));
        }
    }
    let models: Vec<&ledger_core::record::Model> = all
        .iter()
        .filter_map(|g| match &g.record.body {
            Body::Model(m) => Some(m),
            _ => None,
        })
        .collect();

    let mut report = WhyReport { subject: subject.to_string(), changes: vec![], findings: vec![] };
    if changes.is_empty() {
        let msg = if all.is_empty() {
            format!("nothing recorded mentions {subject}")
        } else {
            format!("no change record covers {subject} ({} other record(s) mention it)", all.len())
        };
        report.findings.push(finding("no_change", msg));
    }
    for (csub, (cg, change)) in changes {
        report.changes.push(change_report(&csub, cg, change, &all, &models, now));
    }
    report
}

fn belongs_to(g: &Gathered, change: &Subject) -> bool {
    g.record.links.iter().any(|l| l.rel == Rel::Change && &l.target == change)
}

fn change_report(
    csub: &Subject,
    cg: &Gathered,
    change: &Change,
    all: &[&Gathered],
    models: &[&ledger_core::record::Model],
    now: Timestamp,
) -> ChangeReport {
    let merge = all.iter().rev().find_map(|g| match &g.record.body {
        Body::Merge(m) if belongs_to(g, csub) => Some(MergeLine {
            at: EntryRef::from(*g),
            commit: m.merge_commit.clone(),
            head_commit: m.head_commit.clone(),
            merged_by: m.merged_by.clone(),
            time: g.record.time,
            method: m.method,
        }),
        _ => None,
    });
    let final_commit = merge.as_ref().map_or(change.head_commit.clone(), |m| m.head_commit.clone());
    // For squash and direct landings the landed commit is what shipped, so it counts too.
    let landed = merge.as_ref().filter(|m| m.method != MergeMethod::Merge).map(|m| m.commit.clone());
    let is_final = |c: &CommitId| *c == final_commit || landed.as_ref() == Some(c);

    let mut reviews = vec![];
    let mut evidence = vec![];
    let mut sessions = vec![];
    let mut exceptions = vec![];
    for g in all {
        match &g.record.body {
            Body::Review(r) if belongs_to(g, csub) => reviews.push(ReviewLine {
                at: EntryRef::from(*g),
                reviewer: r.reviewer.clone(),
                verdict: r.verdict,
                commit: r.commit.clone(),
                status: if is_final(&r.commit) { "valid" } else { "stale" }.to_string(),
                via: via(&r.source, "review"),
            }),
            Body::Evidence(e) if belongs_to(g, csub) || is_final(&e.commit) => evidence.push(EvidenceLine {
                at: EntryRef::from(*g),
                check: e.check.clone(),
                result: e.result,
                commit: e.commit.clone(),
                at_final_commit: is_final(&e.commit),
            }),
            Body::Session(s) if belongs_to(g, csub) => sessions.push(SessionLine {
                at: EntryRef::from(*g),
                subject: s.subject().to_string(),
                tool: s.tool.to_string(),
                model: s.model.clone(),
                summary: s.summary.clone(),
                via: via(&s.source, "session"),
                model_approved_tiers: models
                    .iter()
                    .find(|m| m.tool == s.tool && Some(&m.model) == s.model.as_ref())
                    .map(|m| m.approved_tiers.clone()),
            }),
            Body::Exception(x) if &x.scope == csub => exceptions.push(ExceptionLine {
                at: EntryRef::from(*g),
                approver: x.approver.clone(),
                reason: x.reason.clone(),
                not_after: x.not_after,
                expired: x.not_after <= now,
            }),
            _ => {}
        }
    }

    // Deployments of what this change shipped, grouped by deployment; the latest record wins.
    let shipped: Vec<CommitId> =
        [Some(final_commit.clone()), merge.as_ref().map(|m| m.commit.clone())].into_iter().flatten().collect();
    let mut deps: BTreeMap<String, DeploymentLine> = BTreeMap::new();
    for g in all {
        if let Body::Deployment(d) = &g.record.body {
            let Some(commit) = d.commits.iter().find(|c| shipped.contains(c)) else { continue };
            let key = d.subject().to_string();
            let deployer = deps.get(&key).map_or(d.deployer.clone(), |x| x.deployer.clone());
            deps.insert(
                key.clone(),
                DeploymentLine {
                    at: EntryRef::from(*g),
                    subject: key,
                    environment: d.environment.to_string(),
                    status: d.status,
                    deployer,
                    commit: commit.clone(),
                    time: g.record.time,
                },
            );
        }
    }
    let deployments: Vec<DeploymentLine> = deps.into_values().collect();
    let mut causes: Vec<String> = deployments.iter().map(|d| d.subject.clone()).collect();
    causes.push(csub.to_string());
    // An incident may name the shipped commit itself (bare or in this repository).
    for c in &shipped {
        causes.push(Subject::Commit { repo: None, sha: c.clone() }.to_string());
        causes.push(Subject::Commit { repo: Some(change.repo.clone()), sha: c.clone() }.to_string());
    }
    let mut incs: BTreeMap<String, IncidentLine> = BTreeMap::new();
    for g in all {
        if let Body::Incident(i) = &g.record.body {
            let link = g.record.links.iter().find(|l| {
                matches!(l.rel, Rel::CausedBy | Rel::CausedByInferred) && causes.contains(&l.target.to_string())
            });
            let Some(link) = link else { continue };
            let key = i.subject().to_string();
            incs.insert(
                key.clone(),
                IncidentLine {
                    at: EntryRef::from(*g),
                    subject: key,
                    title: i.title.clone(),
                    severity: i.severity.clone(),
                    opened: i.opened,
                    resolved: i.resolved,
                    cause: link.target.to_string(),
                    inferred: link.rel == Rel::CausedByInferred,
                },
            );
        }
    }
    let incidents: Vec<IncidentLine> = incs.into_values().collect();

    let mut commit_authors: Vec<Identity> = vec![];
    for c in &change.commits {
        if !commit_authors.iter().any(|a| a.same_person(&c.author)) {
            commit_authors.push(c.author.clone());
        }
    }

    // A later dismissal by the same person (GitHub "dismissed", GitLab "unapproved") cancels
    // that person's earlier approvals: they are reported as `dismissed` and count for nothing.
    let dismissals: Vec<(Identity, u64)> =
        reviews.iter().filter(|r| r.verdict == Verdict::Dismissed).map(|r| (r.reviewer.clone(), r.at.seq)).collect();
    for r in reviews.iter_mut().filter(|r| r.verdict == Verdict::Approved) {
        if dismissals.iter().any(|(who, seq)| who.same_person(&r.reviewer) && *seq > r.at.seq) {
            r.status = "dismissed".to_string();
        }
    }

    let mut findings = vec![];
    let approvals: Vec<&ReviewLine> = reviews.iter().filter(|r| r.verdict == Verdict::Approved).collect();
    let valid: Vec<&&ReviewLine> = approvals.iter().filter(|r| r.status == "valid").collect();
    let human_valid: Vec<&&&ReviewLine> = valid.iter().filter(|r| !r.reviewer.is_automation()).collect();
    let independent: Vec<&&&&ReviewLine> = human_valid
        .iter()
        .filter(|r| {
            !r.reviewer.same_person(&change.author) && !commit_authors.iter().any(|a| a.same_person(&r.reviewer))
        })
        .collect();
    if approvals.is_empty() {
        findings.push(finding("no_approval", "no approval recorded".into()));
    } else if valid.is_empty() {
        for r in approvals.iter().filter(|r| r.status == "dismissed") {
            findings.push(finding("dismissed_approval", format!("approval by {} was dismissed", r.reviewer)));
        }
        for r in approvals.iter().filter(|r| r.status == "stale") {
            findings.push(finding(
                "stale_approval",
                format!(
                    "approval by {} is for commit {}, not the final commit {}",
                    r.reviewer,
                    short(&r.commit),
                    short(&final_commit)
                ),
            ));
        }
        findings.push(finding(
            "no_approval_at_final_commit",
            format!("no approval at the final commit {}", short(&final_commit)),
        ));
    }
    for r in &valid {
        if r.reviewer.same_person(&change.author) {
            findings.push(finding("self_approval", format!("author {} approved their own change", r.reviewer)));
        }
    }
    if !human_valid.is_empty() && independent.is_empty() && !findings.iter().any(|f| f.code == "self_approval") {
        findings.push(finding(
            "no_independent_approval",
            "every approval at the final commit is by an author of the change".into(),
        ));
    }
    if !sessions.is_empty() && human_valid.is_empty() {
        findings.push(finding(
            "ai_without_human_approval",
            format!(
                "AI-assisted change ({}) without a human approval at the final commit",
                sessions.iter().map(|s| s.tool.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for r in reviews.iter().filter(|r| r.verdict == Verdict::ChangesRequested) {
        let later_ok = reviews
            .iter()
            .any(|o| o.reviewer.same_person(&r.reviewer) && o.at.seq > r.at.seq && o.verdict == Verdict::Approved);
        if !later_ok {
            findings.push(finding(
                "changes_requested",
                format!("{} requested changes and did not approve later", r.reviewer),
            ));
        }
    }
    match &merge {
        None => findings.push(finding("not_merged", "no merge recorded".into())),
        Some(m) if m.method == MergeMethod::Direct => findings.push(finding(
            "no_pull_request",
            format!("commit {} landed directly, without a pull request", short(&m.commit)),
        )),
        Some(m) if m.merged_by.is_none() => findings.push(finding(
            "merger_unknown",
            "who merged is not recorded (merged through the platform's web UI)".into(),
        )),
        _ => {}
    }
    if !evidence.iter().any(|e| e.at_final_commit) {
        findings.push(finding(
            "no_evidence",
            format!("no check results recorded at the final commit {}", short(&final_commit)),
        ));
    }
    // The latest result of each check at the final commit decides (a re-run may fix a failure).
    let mut latest: BTreeMap<&str, &EvidenceLine> = BTreeMap::new();
    for e in evidence.iter().filter(|e| e.at_final_commit) {
        latest.insert(e.check.as_str(), e);
    }
    for e in latest.values().filter(|e| matches!(e.result, CheckResult::Fail | CheckResult::Error)) {
        findings.push(finding("failing_check", format!("check `{}` did not pass at the final commit", e.check)));
    }
    let checks_ok = latest.values().any(|e| e.result == CheckResult::Pass)
        && !latest.values().any(|e| matches!(e.result, CheckResult::Fail | CheckResult::Error));
    for d in deployments.iter().filter(|d| d.status == ledger_core::record::DeployStatus::Success) {
        if !checks_ok {
            findings.push(finding(
                "deployed_without_passing_checks",
                format!("{} deployed commit {} with failing or missing checks", d.subject, short(&d.commit)),
            ));
        }
        if human_valid.len() == 1 && human_valid[0].reviewer.same_person(&d.deployer) {
            findings.push(finding(
                "deployer_sole_approver",
                format!("{} was deployed by {}, the only approver", d.subject, d.deployer),
            ));
        }
    }
    for i in &incidents {
        let how = if i.inferred { "inferred from timing" } else { "explicit" };
        findings.push(finding("incident", format!("{} \"{}\" is linked to {} ({how})", i.subject, i.title, i.cause)));
    }
    for x in exceptions.iter().filter(|x| x.expired) {
        findings.push(finding(
            "exception_expired",
            format!("exception approved by {} expired at {}", x.approver, x.not_after),
        ));
    }

    ChangeReport {
        at: EntryRef::from(cg),
        subject: csub.to_string(),
        repo: change.repo.to_string(),
        number: change.number,
        title: change.title.clone(),
        author: change.author.clone(),
        head_commit: change.head_commit.clone(),
        final_commit,
        commits: change
            .commits
            .iter()
            .map(|c| CommitLine {
                sha: c.sha.clone(),
                author: c.author.clone(),
                committer: c.committer.clone(),
                title: c.title.clone(),
                signature: c.signature,
                trailers: c.trailers.iter().map(|t| format!("{}: {}", t.key, t.value)).collect(),
            })
            .collect(),
        commits_total: change.commits_total,
        commit_authors,
        merge,
        reviews,
        evidence,
        sessions,
        exceptions,
        deployments,
        incidents,
        findings,
    }
}

fn via(source: &Option<ledger_core::record::Source>, default: &str) -> String {
    match source {
        Some(ledger_core::record::Source::GitCommit { trailer: Some(t), .. }) => t.clone(),
        Some(ledger_core::record::Source::Payload { format, .. }) => format.clone(),
        _ => default.to_string(),
    }
}
