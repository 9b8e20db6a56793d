//! The findings about one change, judged from its built report, by topic: approvals, the
//! merge, the evidence, deployments, incidents and exceptions. Codes, messages and their order
//! are part of the report (docs/WHY.md).

use std::collections::BTreeMap;

use ledger_core::record::{CheckResult, DeployStatus, MergeMethod, Verdict};
use ledger_core::types::{CommitId, Identity};

use super::report::{
    ChangeReport, EvidenceLine, ExceptionLine, Finding, IncidentLine, ReviewLine, ReviewStatus, Verification,
};
use super::CLOCK_SKEW_MS;

/// A finding with the stable `code`.
pub(super) fn finding(code: &str, message: String) -> Finding {
    Finding { code: code.to_string(), message }
}

/// The first 12 characters of a commit id, as messages show it.
fn short(c: &CommitId) -> &str {
    &c.as_str()[..12]
}

/// Every finding about the change `c`, in report order.
pub(super) fn of_change(c: &ChangeReport) -> Vec<Finding> {
    let approvals = Approvals::of(c);
    let checks = FinalChecks::of(&c.evidence);
    let mut out = final_commit_approval_findings(c, &approvals);
    out.extend(author_approval_findings(c, &approvals));
    out.extend(ai_approval_finding(c, &approvals));
    out.extend(changes_requested_findings(&c.reviews));
    out.extend(late_approval_findings(c));
    out.extend(merge_finding(c));
    out.extend(evidence_findings(c, &checks));
    out.extend(deployment_findings(c, &approvals, &checks));
    out.extend(deployment_time_findings(c));
    out.extend(incident_findings(&c.incidents));
    out.extend(incident_time_findings(c));
    out.extend(exception_findings(&c.exceptions));
    out
}

/// The change's approvals, narrowed step by step to the ones that show independent review.
struct Approvals<'a> {
    /// Every approval, whatever its status.
    all: Vec<&'a ReviewLine>,
    /// Approvals at the final commit that were not dismissed.
    valid: Vec<&'a ReviewLine>,
    /// Valid approvals by people: a bot's or an AI tool's approval is not a review.
    human: Vec<&'a ReviewLine>,
    /// Human approvals by someone who neither opened the change nor wrote one of its commits.
    independent: Vec<&'a ReviewLine>,
}

impl<'a> Approvals<'a> {
    fn of(c: &'a ChangeReport) -> Self {
        let all: Vec<&ReviewLine> = c.reviews.iter().filter(|r| r.verdict == Verdict::Approved).collect();
        let valid: Vec<&ReviewLine> = all.iter().copied().filter(|r| r.status == ReviewStatus::Valid).collect();
        let human: Vec<&ReviewLine> = valid.iter().copied().filter(|r| !r.reviewer.is_automation()).collect();
        let independent = human.iter().copied().filter(|r| !is_author(c, &r.reviewer)).collect();
        Approvals { all, valid, human, independent }
    }
}

/// Whether `who` opened the change or wrote one of its commits.
fn is_author(c: &ChangeReport, who: &Identity) -> bool {
    who.same_person(&c.author) || c.commit_authors.iter().any(|a| a.same_person(who))
}

/// No approval at all; or approvals, none of which counts: why each does not (dismissed, then
/// stale), then that the final commit has none.
fn final_commit_approval_findings(c: &ChangeReport, a: &Approvals) -> Vec<Finding> {
    if a.all.is_empty() {
        return vec![finding("no_approval", "no approval recorded".into())];
    }
    if !a.valid.is_empty() {
        return vec![];
    }
    let mut out = vec![];
    for r in a.all.iter().filter(|r| r.status == ReviewStatus::Dismissed) {
        out.push(finding("dismissed_approval", format!("approval by {} was dismissed", r.reviewer)));
    }
    for r in a.all.iter().filter(|r| r.status == ReviewStatus::Stale) {
        let message = format!(
            "approval by {} is for commit {}, not the final commit {}",
            r.reviewer,
            short(&r.commit),
            short(&c.final_commit)
        );
        out.push(finding("stale_approval", message));
    }
    let message = format!("no approval at the final commit {}", short(&c.final_commit));
    out.push(finding("no_approval_at_final_commit", message));
    out
}

/// Valid approvals by the change's author; without one, human approvals that all come from
/// authors of the change's commits (a self-approval already says so).
fn author_approval_findings(c: &ChangeReport, a: &Approvals) -> Vec<Finding> {
    let mut out: Vec<Finding> = a
        .valid
        .iter()
        .filter(|r| r.reviewer.same_person(&c.author))
        .map(|r| finding("self_approval", format!("author {} approved their own change", r.reviewer)))
        .collect();
    if out.is_empty() && !a.human.is_empty() && a.independent.is_empty() {
        let message = "every approval at the final commit is by an author of the change".into();
        out.push(finding("no_independent_approval", message));
    }
    out
}

/// An AI-assisted change without a person's approval at the final commit.
fn ai_approval_finding(c: &ChangeReport, a: &Approvals) -> Option<Finding> {
    if c.sessions.is_empty() || !a.human.is_empty() {
        return None;
    }
    let tools = c.sessions.iter().map(|s| s.tool.as_str()).collect::<Vec<_>>().join(", ");
    let message = format!("AI-assisted change ({tools}) without a human approval at the final commit");
    Some(finding("ai_without_human_approval", message))
}

/// Requests for changes that their reviewer did not follow with an approval.
fn changes_requested_findings(reviews: &[ReviewLine]) -> Vec<Finding> {
    let approved_later = |r: &ReviewLine| {
        reviews
            .iter()
            .any(|o| o.reviewer.same_person(&r.reviewer) && o.at.seq > r.at.seq && o.verdict == Verdict::Approved)
    };
    reviews
        .iter()
        .filter(|r| r.verdict == Verdict::ChangesRequested && !approved_later(r))
        .map(|r| finding("changes_requested", format!("{} requested changes and did not approve later", r.reviewer)))
        .collect()
}

/// Approvals given after the merge: they approved nothing before the change shipped.
fn late_approval_findings(c: &ChangeReport) -> Vec<Finding> {
    let Some(m) = &c.merge else { return vec![] };
    c.reviews
        .iter()
        .filter(|r| r.status == ReviewStatus::Late && r.verdict == Verdict::Approved)
        .map(|r| {
            let message = format!(
                "approval by {} at {} came after the merge at {}: it does not count",
                r.reviewer, r.time, m.time
            );
            finding("approval_after_merge", message)
        })
        .collect()
}

/// Not merged; or landed without a pull request; or merged by someone unrecorded.
fn merge_finding(c: &ChangeReport) -> Option<Finding> {
    match &c.merge {
        None => Some(finding("not_merged", "no merge recorded".into())),
        Some(m) if m.method == MergeMethod::Direct => Some(finding(
            "no_pull_request",
            format!("commit {} landed directly, without a pull request", short(&m.commit)),
        )),
        Some(m) if m.merged_by.is_none() => {
            Some(finding("merger_unknown", "who merged is not recorded (merged through the platform's web UI)".into()))
        }
        Some(_) => None,
    }
}

/// The latest result of each check at the final commit, by check name: a re-run may fix a
/// failure, so only the last result of a check decides.
struct FinalChecks<'a> {
    latest: BTreeMap<&'a str, &'a EvidenceLine>,
}

impl<'a> FinalChecks<'a> {
    fn of(evidence: &'a [EvidenceLine]) -> Self {
        let mut latest = BTreeMap::new();
        for e in evidence.iter().filter(|e| e.at_final_commit && e.counts) {
            latest.insert(e.check.as_str(), e);
        }
        FinalChecks { latest }
    }

    /// Checks whose latest result is a failure or an error, by name.
    fn failing(&self) -> impl Iterator<Item = &&'a EvidenceLine> {
        self.latest.values().filter(|e| fails(e.result))
    }

    /// At least one check passed and none is failing.
    fn passed(&self) -> bool {
        self.latest.values().any(|e| e.result == CheckResult::Pass) && self.failing().next().is_none()
    }
}

fn fails(result: CheckResult) -> bool {
    matches!(result, CheckResult::Fail | CheckResult::Error)
}

/// No check result that counts at the final commit; each piece of evidence that does not count
/// (an attestation whose signature was not checked, or from an untrusted builder); then each
/// check failing at the final commit.
fn evidence_findings(c: &ChangeReport, checks: &FinalChecks) -> Vec<Finding> {
    let mut out = vec![];
    if !c.evidence.iter().any(|e| e.at_final_commit && e.counts) {
        let uncounted = c.evidence.iter().filter(|e| e.at_final_commit && !e.counts).count();
        let message = match uncounted {
            0 => format!("no check results recorded at the final commit {}", short(&c.final_commit)),
            n => format!(
                "no check result that counts at the final commit {} ({n} recorded that do not: see below)",
                short(&c.final_commit)
            ),
        };
        out.push(finding("no_evidence", message));
    }
    for e in c.evidence.iter().filter(|e| !e.counts) {
        if e.verification == Verification::NotVerified {
            let message = format!(
                "`{}` at commit {} is a signed attestation whose signature was not checked: it counts for nothing",
                e.check,
                short(&e.commit)
            );
            out.push(finding("unverified_evidence", message));
        }
        if !e.trusted_builder {
            let message = format!(
                "`{}` at commit {} was built by {}, which is not a trusted builder: it counts for nothing",
                e.check,
                short(&e.commit),
                e.builder.as_deref().unwrap_or("an unnamed builder")
            );
            out.push(finding("untrusted_builder", message));
        }
    }
    for e in checks.failing() {
        out.push(finding("failing_check", format!("check `{}` did not pass at the final commit", e.check)));
    }
    out
}

/// For each successful deployment: deployed without passing checks, and deployed by the only
/// human approver (one person both approved and shipped it).
fn deployment_findings(c: &ChangeReport, a: &Approvals, checks: &FinalChecks) -> Vec<Finding> {
    let mut out = vec![];
    for d in c.deployments.iter().filter(|d| d.status == DeployStatus::Success) {
        if !checks.passed() {
            let message = format!("{} deployed commit {} with failing or missing checks", d.subject, short(&d.commit));
            out.push(finding("deployed_without_passing_checks", message));
        }
        if let [only] = a.human.as_slice() {
            if only.reviewer.same_person(&d.deployer) {
                let message = format!("{} was deployed by {}, the only approver", d.subject, d.deployer);
                out.push(finding("deployer_sole_approver", message));
            }
        }
    }
    out
}

/// Deployments dated before the merge of what they ship (beyond the tolerated clock skew): a
/// deployment cannot ship what had not landed, so one of the two records' times is wrong.
fn deployment_time_findings(c: &ChangeReport) -> Vec<Finding> {
    let Some(m) = &c.merge else { return vec![] };
    c.deployments
        .iter()
        .filter(|d| d.time.0 < m.time.0.saturating_sub(CLOCK_SKEW_MS))
        .map(|d| {
            let message = format!(
                "{} is dated {}, before the merge of commit {} at {}",
                d.subject,
                d.time,
                short(&m.commit),
                m.time
            );
            finding("deployed_before_merge", message)
        })
        .collect()
}

/// Incidents opened before the deployment they are linked to as caused by (beyond the
/// tolerated clock skew): a deployment cannot cause an incident that had already begun.
fn incident_time_findings(c: &ChangeReport) -> Vec<Finding> {
    let mut out = vec![];
    for i in &c.incidents {
        let Some(d) = c.deployments.iter().find(|d| d.subject == i.cause) else { continue };
        if i.opened.0 < d.time.0.saturating_sub(CLOCK_SKEW_MS) {
            let message = format!(
                "{} opened at {}, before {} at {} that it is linked to as its cause",
                i.subject, i.opened, d.subject, d.time
            );
            out.push(finding("cause_precedes_deployment", message));
        }
    }
    out
}

/// Each incident linked to the change, and whether the link is explicit or inferred.
fn incident_findings(incidents: &[IncidentLine]) -> Vec<Finding> {
    incidents
        .iter()
        .map(|i| {
            let how = if i.inferred { "inferred from timing" } else { "explicit" };
            finding("incident", format!("{} \"{}\" is linked to {} ({how})", i.subject, i.title, i.cause))
        })
        .collect()
}

/// Each exception for the change that had expired at the time of the report.
fn exception_findings(exceptions: &[ExceptionLine]) -> Vec<Finding> {
    exceptions
        .iter()
        .filter(|x| x.expired)
        .map(|x| {
            finding("exception_expired", format!("exception approved by {} expired at {}", x.approver, x.not_after))
        })
        .collect()
}
