//! Control tests over a period's population (SOC 2 CC8.1, SOX ITGC change management): for
//! every deployment, was it authorized, tested, linked to an approved change, reviewed after
//! the fact when it was an emergency, approved by a human when AI-assisted, and (with a
//! policy) allowed by the deploy gate? Pure: the caller gives the population, the `why` report
//! of each deployment and, with a policy, its gate decision. docs/AUDIT.md defines each control.

use std::collections::BTreeMap;

use ledger_core::record::{CheckResult, Decision, Verdict};
use serde::Serialize;

use crate::gate::GateReport;
use crate::population::{Period, Population, PopulationItem};
use crate::why::{ChangeReport, ReviewStatus, WhyReport};

/// Labels and title words that mark a change as an emergency (case-insensitive).
pub const EMERGENCY_MARKS: &[&str] = &["emergency", "hotfix", "hot-fix", "expedite"];

/// One failing deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failing {
    /// The deployment.
    pub subject: String,
    /// Its success entry.
    pub seq: u64,
    /// Why it fails.
    pub reason: String,
}

/// One control's result over the population.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControlResult {
    /// `authorized`, `tested`, `linked`, `emergency_reviewed`, `ai_human_approved`,
    /// `policy_gate`.
    pub control: String,
    /// Deployments that pass.
    pub passed: u64,
    /// Deployments that fail.
    pub failed: u64,
    /// Deployments it does not apply to.
    pub not_applicable: u64,
    /// The failing deployments, in population order.
    pub failing: Vec<Failing>,
}

/// The control tests of a period.
#[derive(Clone, Debug, Serialize)]
pub struct ControlsReport {
    /// The period.
    pub period: Period,
    /// Deployments in the population.
    pub population: usize,
    /// One result per control.
    pub controls: Vec<ControlResult>,
}

impl ControlsReport {
    /// Whether every control passed for every deployment it applies to.
    pub fn all_pass(&self) -> bool {
        self.controls.iter().all(|c| c.failed == 0)
    }
}

/// What one control says of one deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// The control holds.
    Pass,
    /// The control fails, with the reason (naming the change and commit).
    Fail(String),
    /// The control does not apply (e.g. `emergency_reviewed` for a routine change).
    NotApplicable,
}

/// The controls evaluated: the five always, `policy_gate` when a policy is given.
pub fn control_names(with_policy: bool) -> Vec<&'static str> {
    let mut n = vec!["authorized", "tested", "linked", "emergency_reviewed", "ai_human_approved"];
    if with_policy {
        n.push("policy_gate");
    }
    n
}

/// Every control's outcome for one deployment of the population, in [`control_names`] order.
/// `why` is the deployment's report (`None`: nothing links it to a change); `gate`, when
/// `with_policy`, its deploy-stage gate decision; `within_ms` bounds the after-the-fact review
/// of an emergency change.
pub fn outcomes(
    item: &PopulationItem,
    why: Option<&WhyReport>,
    with_policy: bool,
    gate: Option<&GateReport>,
    within_ms: i64,
) -> Vec<(&'static str, Outcome)> {
    let changes: Vec<&ChangeReport> =
        why.map(|w| w.changes.iter().filter(|c| item.changes.contains(&c.subject)).collect()).unwrap_or_default();
    control_names(with_policy)
        .into_iter()
        .map(|name| {
            let v = match name {
                "authorized" => per_change(&changes, authorized),
                "tested" => per_change(&changes, tested),
                "linked" => linked(item, &changes),
                "emergency_reviewed" => emergency_reviewed(item, &changes, within_ms),
                "ai_human_approved" => ai_human_approved(&changes),
                _ => policy_gate(gate),
            };
            (name, v)
        })
        .collect()
}

/// Evaluates the controls. `why` holds each deployment's report by subject (a deployment
/// without one fails `linked` and the controls that need a change); `gates`, when a policy is
/// given, each deployment's deploy-stage gate decision; `within_ms` bounds the after-the-fact
/// review of an emergency change.
pub fn test(
    population: &Population,
    why: &BTreeMap<String, WhyReport>,
    gates: Option<&BTreeMap<String, GateReport>>,
    within_ms: i64,
) -> ControlsReport {
    let each = population
        .deployments
        .iter()
        .map(|item| {
            let gate = gates.and_then(|g| g.get(&item.subject));
            outcomes(item, why.get(&item.subject), gates.is_some(), gate, within_ms)
        })
        .collect();
    tally(population, each, gates.is_some())
}

/// Counts every deployment's [`outcomes`] (`each`, in the population's order) into the
/// report: what [`test`] does once the outcomes are known (a caller may work them out on
/// several threads and keep no `why` report).
pub fn tally(population: &Population, each: Vec<Vec<(&'static str, Outcome)>>, with_policy: bool) -> ControlsReport {
    let mut results: Vec<ControlResult> = control_names(with_policy)
        .iter()
        .map(|n| ControlResult { control: n.to_string(), passed: 0, failed: 0, not_applicable: 0, failing: vec![] })
        .collect();
    for (item, each) in population.deployments.iter().zip(each) {
        for (r, (_, v)) in results.iter_mut().zip(each) {
            match v {
                Outcome::Pass => r.passed += 1,
                Outcome::NotApplicable => r.not_applicable += 1,
                Outcome::Fail(reason) => {
                    r.failed += 1;
                    r.failing.push(Failing { subject: item.subject.clone(), seq: item.seq, reason });
                }
            }
        }
    }
    ControlsReport { period: population.period, population: population.deployments.len(), controls: results }
}

/// Passes when `check` passes for every shipped change; fails with the first failure, or when
/// nothing links the deployment to a change.
fn per_change(changes: &[&ChangeReport], check: fn(&ChangeReport) -> Result<(), String>) -> Outcome {
    if changes.is_empty() {
        return Outcome::Fail("the deployment ships no recorded change".into());
    }
    for c in changes {
        if let Err(why) = check(c) {
            return Outcome::Fail(format!("{}: {why}", c.subject));
        }
    }
    Outcome::Pass
}

/// The people who wrote the change: its author and its commits' authors.
fn is_author(c: &ChangeReport, who: &ledger_core::types::Identity) -> bool {
    who.same_person(&c.author) || c.commit_authors.iter().any(|a| a.same_person(who))
}

/// A valid approval of the final (deployed) commit by a person other than its authors.
fn authorized(c: &ChangeReport) -> Result<(), String> {
    let ok = c.reviews.iter().any(|r| {
        r.status == ReviewStatus::Valid
            && r.verdict == Verdict::Approved
            && !r.reviewer.is_automation()
            && !is_author(c, &r.reviewer)
    });
    if ok {
        Ok(())
    } else {
        Err(format!("no approval of the final commit {} by someone other than its authors", short(&c.final_commit)))
    }
}

/// Checks recorded at the final commit, counting, each check's latest result a pass.
fn tested(c: &ChangeReport) -> Result<(), String> {
    let mut latest: BTreeMap<&str, (u64, CheckResult)> = BTreeMap::new();
    for e in c.evidence.iter().filter(|e| e.at_final_commit && e.counts) {
        latest.insert(e.check.as_str(), (e.at.seq, e.result));
    }
    if latest.is_empty() {
        return Err(format!("no check recorded at the final commit {}", short(&c.final_commit)));
    }
    match latest.iter().find(|(_, (_, r))| *r != CheckResult::Pass) {
        Some((name, (seq, r))) => Err(format!("`{name}` {r:?} at the final commit (entry {seq})").to_lowercase()),
        None => Ok(()),
    }
}

fn linked(item: &PopulationItem, changes: &[&ChangeReport]) -> Outcome {
    if item.changes.is_empty() || changes.is_empty() {
        return Outcome::Fail("the deployment ships no recorded change".into());
    }
    match changes
        .iter()
        .find(|c| !c.reviews.iter().any(|r| r.verdict == Verdict::Approved && r.status == ReviewStatus::Valid))
    {
        Some(c) => Outcome::Fail(format!("{} has no valid approval", c.subject)),
        None => Outcome::Pass,
    }
}

/// Whether a change is an emergency: an exception in scope, an emergency label, or an
/// emergency word in its title (a hotfix).
fn is_emergency(c: &ChangeReport) -> bool {
    let marked = |s: &str| {
        let lower = s.to_ascii_lowercase();
        EMERGENCY_MARKS.iter().any(|m| lower.contains(m))
    };
    !c.exceptions.is_empty() || marked(&c.title) || c.labels.iter().any(|l| marked(l))
}

fn emergency_reviewed(item: &PopulationItem, changes: &[&ChangeReport], within_ms: i64) -> Outcome {
    let emergencies: Vec<&&ChangeReport> = changes.iter().filter(|c| is_emergency(c)).collect();
    if emergencies.is_empty() {
        return Outcome::NotApplicable;
    }
    let deadline = item.time.0.saturating_add(within_ms);
    for c in emergencies {
        let reviewed = c.reviews.iter().any(|r| {
            r.time.0 >= item.time.0.saturating_sub(crate::why::CLOCK_SKEW_MS)
                && r.time.0 <= deadline
                && !r.reviewer.is_automation()
                && !is_author(c, &r.reviewer)
                && r.verdict != Verdict::Dismissed
        });
        if !reviewed {
            return Outcome::Fail(format!(
                "{} is an emergency change with no review within {} h after the deployment",
                c.subject,
                within_ms / 3_600_000
            ));
        }
    }
    Outcome::Pass
}

fn ai_human_approved(changes: &[&ChangeReport]) -> Outcome {
    let ai: Vec<&&ChangeReport> = changes.iter().filter(|c| !c.sessions.is_empty()).collect();
    if ai.is_empty() {
        return Outcome::NotApplicable;
    }
    for c in ai {
        if authorized(c).is_err() {
            return Outcome::Fail(format!(
                "{} is AI-assisted and no human other than its authors approved it",
                c.subject
            ));
        }
    }
    Outcome::Pass
}

fn policy_gate(gate: Option<&GateReport>) -> Outcome {
    match gate {
        None => Outcome::Fail("no gate decision could be made".into()),
        Some(g) if g.decision == Decision::Allow => Outcome::Pass,
        Some(g) => {
            let failed: Vec<&str> = g
                .rules
                .iter()
                .filter(|r| r.result == ledger_core::record::RuleResult::Fail)
                .map(|r| r.rule.as_str())
                .collect();
            Outcome::Fail(format!("the deploy gate denies (tier {:?}): {}", g.tier, failed.join(", ")))
        }
    }
}

fn short(c: &ledger_core::types::CommitId) -> String {
    c.as_str().chars().take(12).collect()
}
