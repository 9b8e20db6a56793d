//! Building one [`ChangeReport`]: the change's merge and final commit, then what was recorded
//! about it (reviews, evidence, sessions, exceptions), then what shipped (deployments) and what
//! went wrong after (incidents). The findings are judged last, from the built report.
//!
//! Reviews, evidence, sessions and exceptions come in ledger order (`all` is sorted by sequence
//! number); deployments and incidents, one line each, in subject order.

use std::collections::BTreeMap;

use ledger_core::record::{Body, Change, MergeMethod, Model, Rel, SignatureCheck, Source, Verdict};
use ledger_core::subject::Subject;
use ledger_core::types::{CommitId, Identity, RepoName, Timestamp};

use super::report::{
    ChangeReport, CommitLine, DeploymentLine, EntryRef, EvidenceLine, ExceptionLine, GateLine, GateRuleLine, Gathered,
    IncidentLine, MergeLine, ReviewLine, ReviewStatus, SessionLine, Verification, Vouch,
};
use super::{findings, Trust, CLOCK_SKEW_MS};

/// Everything recorded about the change `subject`, whose latest change record is `record`.
/// `all` is every gathered record in ledger order; `models` the `model` records among them.
pub(super) fn change_report(
    subject: &Subject,
    record: &Gathered,
    change: &Change,
    all: &[&Gathered],
    models: &[&Model],
    now: Timestamp,
    trust: &Trust,
) -> ChangeReport {
    let merge = merge_line(subject, all);
    let final_commit = FinalCommit::of(change, merge.as_ref());
    let mut reviews = reviews(subject, change, all, &final_commit);
    apply_dismissals(&mut reviews);
    mark_late(&mut reviews, merge.as_ref());
    let reviews = merge_duplicate_reviews(reviews);
    let shipped = shipped_commits(&final_commit, merge.as_ref());
    let deployments = deployments(all, &shipped);
    let causes = incident_causes(subject, change, &deployments, &shipped);
    let mut report = ChangeReport {
        at: EntryRef::from(record),
        subject: subject.to_string(),
        repo: change.repo.to_string(),
        number: change.number,
        title: change.title.clone(),
        author: change.author.clone(),
        head_commit: change.head_commit.clone(),
        final_commit: final_commit.commit.clone(),
        commits: commit_lines(change),
        commits_total: change.commits_total,
        commit_authors: commit_authors(change),
        merge,
        reviews,
        evidence: evidence(subject, all, &final_commit, trust),
        sessions: sessions(subject, all, models),
        exceptions: exceptions(subject, all, now),
        deployments,
        incidents: incidents(all, &causes),
        findings: vec![],
        gates: vec![],
        labels: labels(subject, all),
    };
    report.gates = gates(subject, all, &report);
    report.findings = findings::of_change(&report);
    report
}

/// Whether `g` is linked to the change `change`.
fn belongs_to(g: &Gathered, change: &Subject) -> bool {
    g.record.links.iter().any(|l| l.rel == Rel::Change && &l.target == change)
}

/// Where a review or session came from: the trailer or payload format, else `default`.
fn via(source: &Option<Source>, default: &str) -> String {
    match source {
        Some(Source::GitCommit { trailer: Some(t), .. }) => t.clone(),
        Some(Source::Payload { format, .. }) => format.clone(),
        _ => default.to_string(),
    }
}

/// The change's merge: the latest merge record linked to it.
fn merge_line(change: &Subject, all: &[&Gathered]) -> Option<MergeLine> {
    all.iter().rev().find_map(|g| match &g.record.body {
        Body::Merge(m) if belongs_to(g, change) => Some(MergeLine {
            at: EntryRef::from(*g),
            commit: m.merge_commit.clone(),
            head_commit: m.head_commit.clone(),
            merged_by: m.merged_by.clone(),
            time: g.record.time,
            method: m.method,
            vouched: Vouch::of(g),
        }),
        _ => None,
    })
}

/// What approvals and checks must be for.
struct FinalCommit {
    /// The head commit at merge, or the change's recorded head when it has not merged.
    commit: CommitId,
    /// The landed commit of a squash, rebase or direct landing: it is what shipped, so it counts
    /// too. A merge commit does not: the approvals are for the head it merged.
    landed: Option<CommitId>,
}

impl FinalCommit {
    fn of(change: &Change, merge: Option<&MergeLine>) -> Self {
        FinalCommit {
            commit: merge.map_or(change.head_commit.clone(), |m| m.head_commit.clone()),
            landed: merge.filter(|m| m.method != MergeMethod::Merge).map(|m| m.commit.clone()),
        }
    }

    /// Whether an approval or check of `c` counts as one of the final commit.
    fn is_final(&self, c: &CommitId) -> bool {
        *c == self.commit || self.landed.as_ref() == Some(c)
    }
}

/// The change's reviews, `valid` at the final commit and `stale` elsewhere (dismissals and
/// lateness are applied after, by [`apply_dismissals`] and [`mark_late`]). A review linked to
/// no change at all is the change's when it names the change's repository and one of its
/// commits: nothing is dropped for a missing link.
fn reviews(subject: &Subject, change: &Change, all: &[&Gathered], final_commit: &FinalCommit) -> Vec<ReviewLine> {
    let status = |c: &CommitId| if final_commit.is_final(c) { ReviewStatus::Valid } else { ReviewStatus::Stale };
    let of_change = |g: &Gathered, repo: &RepoName, commit: &CommitId| {
        belongs_to(g, subject)
            || (!g.record.links.iter().any(|l| l.rel == Rel::Change)
                && *repo == change.repo
                && (final_commit.is_final(commit)
                    || *commit == change.head_commit
                    || change.commits.iter().any(|c| c.sha == *commit)))
    };
    all.iter()
        .filter_map(|g| match &g.record.body {
            Body::Review(r) if of_change(g, &r.repo, &r.commit) => Some(ReviewLine {
                at: EntryRef::from(*g),
                reviewer: r.reviewer.clone(),
                verdict: r.verdict,
                commit: r.commit.clone(),
                status: status(&r.commit),
                via: via(&r.source, "review"),
                time: g.record.time,
                also: vec![],
                vouched: Vouch::of(g),
            }),
            _ => None,
        })
        .collect()
}

/// Reviews given after the merge (beyond [`CLOCK_SKEW_MS`]) are `late`: they approved nothing
/// before the change shipped.
fn mark_late(reviews: &mut [ReviewLine], merge: Option<&MergeLine>) {
    let Some(m) = merge else { return };
    for r in reviews.iter_mut().filter(|r| r.time.0 > m.time.0.saturating_add(CLOCK_SKEW_MS)) {
        r.status = ReviewStatus::Late;
    }
}

/// One line per review: the same reviewer's same verdict on the same commit from the same
/// source, with the same standing, recorded more than once (a redelivered webhook, a review
/// appended again), is listed once, with the other entries in `also`.
fn merge_duplicate_reviews(reviews: Vec<ReviewLine>) -> Vec<ReviewLine> {
    let mut out: Vec<ReviewLine> = vec![];
    for r in reviews {
        let same = out.iter_mut().find(|o| {
            o.reviewer.same_person(&r.reviewer)
                && (o.verdict, &o.commit, &o.via, o.status) == (r.verdict, &r.commit, &r.via, r.status)
        });
        match same {
            Some(o) => o.also.push(r.at),
            None => out.push(r),
        }
    }
    out
}

/// A later dismissal by the same person (GitHub "dismissed", GitLab "unapproved") cancels
/// that person's earlier approvals: they become `dismissed` and count for nothing.
fn apply_dismissals(reviews: &mut [ReviewLine]) {
    let dismissals: Vec<(Identity, u64)> =
        reviews.iter().filter(|r| r.verdict == Verdict::Dismissed).map(|r| (r.reviewer.clone(), r.at.seq)).collect();
    for r in reviews.iter_mut().filter(|r| r.verdict == Verdict::Approved) {
        if dismissals.iter().any(|(who, seq)| who.same_person(&r.reviewer) && *seq > r.at.seq) {
            r.status = ReviewStatus::Dismissed;
        }
    }
}

/// Check results linked to the change, or run at its final commit: CI often records a check
/// against a commit without naming the pull request. Each says whether it counts: an
/// attestation whose signature was not checked, or whose builder is not trusted, does not.
fn evidence(change: &Subject, all: &[&Gathered], final_commit: &FinalCommit, trust: &Trust) -> Vec<EvidenceLine> {
    all.iter()
        .filter_map(|g| match &g.record.body {
            Body::Evidence(e) if belongs_to(g, change) || final_commit.is_final(&e.commit) => {
                let verification = match e.signature {
                    Some(SignatureCheck::Verified) => Verification::Verified,
                    Some(SignatureCheck::NotVerified) => Verification::NotVerified,
                    None => Verification::Unsigned,
                };
                let trusted_builder = e.builder.as_deref().is_none_or(|b| trust.trusts(b));
                Some(EvidenceLine {
                    at: EntryRef::from(*g),
                    check: e.check.clone(),
                    result: e.result,
                    commit: e.commit.clone(),
                    at_final_commit: final_commit.is_final(&e.commit),
                    verification,
                    builder: e.builder.clone(),
                    trusted_builder,
                    counts: verification != Verification::NotVerified && trusted_builder,
                    vouched: Vouch::of(g),
                })
            }
            _ => None,
        })
        .collect()
}

/// AI sessions linked to the change, each with the tiers its model is approved for when a
/// `model` record names the same tool and model. One session named by several records (a
/// pull request body seen in each delivery) is listed once, with the other entries in `also`.
fn sessions(change: &Subject, all: &[&Gathered], models: &[&Model]) -> Vec<SessionLine> {
    let mut out: Vec<SessionLine> = vec![];
    for g in all {
        let Body::Session(s) = &g.record.body else { continue };
        if !belongs_to(g, change) {
            continue;
        }
        let subject = s.subject().to_string();
        if let Some(seen) = out.iter_mut().find(|x| x.subject == subject) {
            seen.also.push(EntryRef::from(*g));
            continue;
        }
        out.push(SessionLine {
            at: EntryRef::from(*g),
            subject,
            tool: s.tool.to_string(),
            model: s.model.clone(),
            summary: s.summary.clone(),
            via: via(&s.source, "session"),
            model_approved_tiers: models
                .iter()
                .find(|m| m.tool == s.tool && Some(&m.model) == s.model.as_ref())
                .map(|m| m.approved_tiers.clone()),
            also: vec![],
        });
    }
    out
}

/// Exceptions scoped to the change, marked expired when they ended at or before `now`.
fn exceptions(change: &Subject, all: &[&Gathered], now: Timestamp) -> Vec<ExceptionLine> {
    all.iter()
        .filter_map(|g| match &g.record.body {
            Body::Exception(x) if &x.scope == change => Some(ExceptionLine {
                at: EntryRef::from(*g),
                approver: x.approver.clone(),
                reason: x.reason.clone(),
                not_after: x.not_after,
                expired: x.not_after <= now,
            }),
            _ => None,
        })
        .collect()
}

/// The commits a deployment of this change would name: the final commit, and the commit that
/// landed when there is a merge.
fn shipped_commits(final_commit: &FinalCommit, merge: Option<&MergeLine>) -> Vec<CommitId> {
    [Some(final_commit.commit.clone()), merge.map(|m| m.commit.clone())].into_iter().flatten().collect()
}

/// Deployments of a shipped commit, one line per deployment: status, time and entry from its
/// latest record, the deployer from its first (a later status update may be posted by a bot).
fn deployments(all: &[&Gathered], shipped: &[CommitId]) -> Vec<DeploymentLine> {
    let mut by_subject: BTreeMap<String, DeploymentLine> = BTreeMap::new();
    for g in all {
        let Body::Deployment(d) = &g.record.body else { continue };
        let Some(commit) = d.commits.iter().find(|c| shipped.contains(c)) else { continue };
        let key = d.subject().to_string();
        let deployer = by_subject.get(&key).map_or(d.deployer.clone(), |x| x.deployer.clone());
        let line = DeploymentLine {
            at: EntryRef::from(*g),
            subject: key.clone(),
            environment: d.environment.to_string(),
            status: d.status,
            deployer,
            commit: commit.clone(),
            time: g.record.time,
            vouched: Vouch::of(g),
        };
        by_subject.insert(key, line);
    }
    by_subject.into_values().collect()
}

/// The subjects an incident may name as its cause to be linked to this change: one of its
/// deployments, the change itself, or a shipped commit (bare or in the change's repository).
fn incident_causes(
    change_subject: &Subject,
    change: &Change,
    deployments: &[DeploymentLine],
    shipped: &[CommitId],
) -> Vec<String> {
    let mut causes: Vec<String> = deployments.iter().map(|d| d.subject.clone()).collect();
    causes.push(change_subject.to_string());
    for c in shipped {
        causes.push(Subject::Commit { repo: None, sha: c.clone() }.to_string());
        causes.push(Subject::Commit { repo: Some(change.repo.clone()), sha: c.clone() }.to_string());
    }
    causes
}

/// Incidents caused (explicitly or by inference) by one of `causes`, one line per incident
/// from its latest record, with the first matching link as the cause.
fn incidents(all: &[&Gathered], causes: &[String]) -> Vec<IncidentLine> {
    let mut by_subject: BTreeMap<String, IncidentLine> = BTreeMap::new();
    for g in all {
        let Body::Incident(i) = &g.record.body else { continue };
        let link =
            g.record.links.iter().find(|l| {
                matches!(l.rel, Rel::CausedBy | Rel::CausedByInferred) && causes.contains(&l.target.to_string())
            });
        let Some(link) = link else { continue };
        let key = i.subject().to_string();
        let line = IncidentLine {
            at: EntryRef::from(*g),
            subject: key.clone(),
            title: i.title.clone(),
            severity: i.severity.clone(),
            opened: i.opened,
            resolved: i.resolved,
            cause: link.target.to_string(),
            inferred: link.rel == Rel::CausedByInferred,
            inference: i.inference.clone().filter(|_| link.rel == Rel::CausedByInferred),
        };
        by_subject.insert(key, line);
    }
    by_subject.into_values().collect()
}

/// Recorded gate decisions about the change: gating it, one of its commits, or one of its
/// deployments, or linked to it.
fn gates(subject: &Subject, all: &[&Gathered], report: &ChangeReport) -> Vec<GateLine> {
    let mut about: Vec<String> = vec![subject.to_string(), format!("git:{}", report.final_commit)];
    about.push(format!("git:{}@{}", report.repo, report.final_commit));
    about.extend(report.deployments.iter().map(|d| d.subject.clone()));
    all.iter()
        .filter_map(|g| match &g.record.body {
            Body::Gate(x) if belongs_to(g, subject) || about.contains(&x.subject.to_string()) => Some(GateLine {
                at: EntryRef::from(*g),
                subject: x.subject.to_string(),
                stage: x.stage,
                decision: x.decision,
                tier: x.tier,
                policy: x.policy.to_string(),
                policy_version: x.policy_version,
                rules: x
                    .rules
                    .iter()
                    .map(|r| GateRuleLine { rule: r.rule.clone(), result: r.result, exception: r.exception })
                    .collect(),
                time: g.record.time,
                vouched: Vouch::of(g),
            }),
            _ => None,
        })
        .collect()
}

/// The labels of the latest change record of `subject` that carries any.
fn labels(subject: &Subject, all: &[&Gathered]) -> Vec<String> {
    all.iter()
        .rev()
        .find_map(|g| match &g.record.body {
            Body::Change(c) if &c.subject() == subject && !c.labels.is_empty() => Some(c.labels.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The distinct authors of the change's commits, in commit order (one person under two names
/// with the same e-mail address counts once).
fn commit_authors(change: &Change) -> Vec<Identity> {
    let mut authors: Vec<Identity> = vec![];
    for c in &change.commits {
        if !authors.iter().any(|a| a.same_person(&c.author)) {
            authors.push(c.author.clone());
        }
    }
    authors
}

/// The change's commits as reported, trailers written `Key: value`.
fn commit_lines(change: &Change) -> Vec<CommitLine> {
    change
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
        .collect()
}
