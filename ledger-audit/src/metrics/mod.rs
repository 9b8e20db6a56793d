//! DORA and AI-era metrics from the log alone (docs/METRICS.md): deployment frequency, lead
//! time, change failure rate, time to restore, shares of changes with test evidence, a test
//! delta, an approval at the final commit and AI assistance, AI diff size, review time,
//! exceptions. Every figure is a distribution (`count`, `median`, `p90`) or a rate with its
//! numerator and denominator, and speed is never reported without the failure rate beside it.
//! Pure: the caller gathers the records.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ledger_core::record::{Body, Change, CheckResult, DeployStatus, Rel, Verdict};
use ledger_core::types::Timestamp;
use serde::Serialize;

use crate::policy::{Policy, TierRules};
use crate::population::Period;
use crate::why::Gathered;

mod spend;

use spend::ai_spend;
pub use spend::AiSpend;

/// A distribution of values: nearest-rank median and 90th percentile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Distribution {
    /// How many values.
    pub count: usize,
    /// The median (nearest rank, the lower of two middles); `null` when empty.
    pub median: Option<f64>,
    /// The 90th percentile (nearest rank); `null` when empty.
    pub p90: Option<f64>,
}

impl Distribution {
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = |p: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some((v[i] * 100.0).round() / 100.0)
        };
        Distribution { count: v.len(), median: rank(0.5), p90: rank(0.9) }
    }
}

/// A rate with what it is made of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rate {
    /// How many of the denominator have the property.
    pub numerator: usize,
    /// How many there are.
    pub denominator: usize,
    /// numerator / denominator (4 decimals); `null` when the denominator is 0.
    pub rate: Option<f64>,
}

impl Rate {
    fn of(numerator: usize, denominator: usize) -> Self {
        let rate = (denominator > 0).then(|| (numerator as f64 / denominator as f64 * 10_000.0).round() / 10_000.0);
        Rate { numerator, denominator, rate }
    }
}

/// The metrics of one group (all changes, or one tier, repository or service).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// Successful deployments in the window.
    pub deployments: usize,
    /// Successful deployments per day.
    pub deployments_per_day: f64,
    /// Hours from a change's first commit to its first production deployment.
    pub lead_time_first_commit_hours: Distribution,
    /// Hours from a change's merge to its first production deployment.
    pub lead_time_merge_hours: Distribution,
    /// Deployments an incident names as its cause (explicitly), or rolled back.
    pub change_failure_rate: Rate,
    /// The same, counting inferred incident causes too.
    pub change_failure_rate_with_inferred: Rate,
    /// Hours from an incident opening to its resolution (or the rollback of its cause).
    pub time_to_restore_hours: Distribution,
    /// Changes merged in the window with a passing check at their final commit.
    pub with_test_evidence: Rate,
    /// Changes merged in the window that touch a test path (of those whose paths are known).
    pub with_test_delta: Rate,
    /// Changes merged in the window approved at their final commit by a person not their
    /// author (bots and AI tools do not count).
    pub approved_at_final_commit: Rate,
    /// Changes merged in the window with an AI session.
    pub ai_assisted: Rate,
    /// Changed lines of AI-assisted changes merged in the window (of those with counts).
    pub ai_diff_lines: Distribution,
    /// Hours from a change's first record to its first approval.
    pub review_time_hours: Distribution,
}

/// Exceptions recorded by the end of the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExceptionCounts {
    /// Still in force at the end of the window.
    pub open: usize,
    /// Expired by the end of the window (review due).
    pub expired: usize,
}

/// A finding about the metrics themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricFinding {
    /// Stable code, e.g. `speed_without_stability`.
    pub code: String,
    /// In words.
    pub message: String,
}

/// The metrics of a window.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    /// The window.
    pub window: Period,
    /// The environment counted as production.
    pub environment: String,
    /// `tier`, `repo` or `service` when split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Every change and deployment of the window.
    pub all: Figures,
    /// One entry per group, when split.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Figures>,
    /// Exceptions.
    pub exceptions: ExceptionCounts,
    /// AI tooling spend per engineer per month, when the window's costed sessions are in one
    /// currency (see `ai_spend` for each currency); `null` when no session records a cost.
    pub ai_spend_per_engineer_month: Option<f64>,
    /// AI tooling spend of the window, one entry per currency.
    pub ai_spend: Vec<AiSpend>,
    /// Integrity findings (speed improving while stability worsens).
    pub findings: Vec<MetricFinding>,
}

/// How to split the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// By risk tier, under the policy given.
    Tier,
    /// By repository.
    Repo,
    /// By deployed service.
    Service,
}

const HOUR: f64 = 3_600_000.0;

struct ChangeRow<'a> {
    subject: String,
    change: &'a Change,
    first_seen: Timestamp,
    /// When it merged, its landed commit and its head commit at merge.
    merged: Option<(Timestamp, &'a str, &'a str)>,
    ai: bool,
    risk_areas: Vec<String>,
}

/// Computes the metrics of `window` from `records` (every record of the kinds `deployment`,
/// `change`, `merge`, `review`, `evidence`, `session`, `incident`, `exception`; others are
/// ignored). `policy` classifies tiers for [`By::Tier`].
pub fn compute(window: Period, environment: &str, by: Option<By>, policy: &Policy, records: &[Gathered]) -> Metrics {
    let mut all: Vec<&Gathered> = records.iter().collect();
    all.sort_by_key(|g| g.seq);
    all.dedup_by_key(|g| g.seq);
    let rows = change_rows(&all);
    let facts = Facts::of(&all, environment);
    let figures_for = |keep: &dyn Fn(&str, &ChangeRow<'_>) -> bool, keep_dep: &dyn Fn(&str) -> bool, whole| {
        figures(window, &facts, &rows, keep, keep_dep, whole)
    };
    let everything = figures_for(&|_, _| true, &|_| true, true);
    let mut groups = BTreeMap::new();
    if let Some(by) = by {
        let key_of = |r: &ChangeRow<'_>| -> String {
            match by {
                By::Repo => r.change.repo.to_string(),
                By::Service => r.change.repo.as_str().rsplit('/').next().unwrap_or_default().to_string(),
                By::Tier => {
                    let cls = policy.classify(&crate::policy::ClassifyInput {
                        repo: r.change.repo.as_str(),
                        paths: r.change.paths.as_deref(),
                        labels: &r.change.labels,
                        risk_areas: &r.risk_areas,
                    });
                    crate::policy::tier_name(cls.tier).to_string()
                }
            }
        };
        let keys: BTreeSet<String> = rows.iter().map(&key_of).collect();
        for k in keys {
            let dep_services: HashSet<String> = deployments_shipping(&all, &rows, &|r| key_of(r) == k);
            let f = figures_for(&|_, r| key_of(r) == k, &|d| dep_services.contains(d), false);
            groups.insert(k, f);
        }
    }
    let exceptions = exceptions(&all, window.until);
    let findings = integrity(window, &facts, &rows);
    let spend = ai_spend(window, &all);
    Metrics {
        window,
        environment: environment.to_string(),
        by: by.map(|b| match b {
            By::Tier => "tier".into(),
            By::Repo => "repo".into(),
            By::Service => "service".into(),
        }),
        all: everything,
        groups,
        exceptions,
        ai_spend_per_engineer_month: match spend.as_slice() {
            [one] => Some(one.per_engineer_month),
            _ => None,
        },
        ai_spend: spend,
        findings,
    }
}

fn change_rows<'a>(all: &[&'a Gathered]) -> Vec<ChangeRow<'a>> {
    // A row per change subject (its latest record; first seen at its first), in order of
    // first appearance.
    let mut rows: Vec<ChangeRow<'a>> = vec![];
    let mut at: HashMap<String, usize> = HashMap::new();
    for g in all {
        if let Body::Change(c) = &g.record.body {
            let subject = c.subject().to_string();
            match at.get(&subject) {
                Some(&i) => rows[i].change = c,
                None => {
                    at.insert(subject.clone(), rows.len());
                    rows.push(ChangeRow {
                        subject,
                        change: c,
                        first_seen: g.record.time,
                        merged: None,
                        ai: false,
                        risk_areas: vec![],
                    });
                }
            }
        }
    }
    for g in all {
        if !matches!(g.record.body, Body::Merge(_) | Body::Session(_)) {
            continue;
        }
        for l in g.record.links.iter().filter(|l| l.rel == Rel::Change) {
            let Some(&i) = at.get(&l.target.to_string()) else { continue };
            let row = &mut rows[i];
            match &g.record.body {
                Body::Merge(m) => row.merged = Some((g.record.time, m.merge_commit.as_str(), m.head_commit.as_str())),
                Body::Session(s) => {
                    row.ai = true;
                    row.risk_areas.extend(s.risk_area.iter().cloned());
                }
                _ => {}
            }
        }
    }
    rows
}

/// A successful deployment: its time, its commits, whether it was rolled back.
type Shipped<'a> = (Timestamp, Vec<&'a str>, bool);

/// The successful deployments to `environment`, by subject.
fn successful<'a>(all: &[&'a Gathered], environment: &str) -> HashMap<String, Shipped<'a>> {
    let mut out: HashMap<String, Shipped<'a>> = HashMap::new();
    let mut rolled_back: HashSet<String> = HashSet::new();
    for g in all {
        let Body::Deployment(d) = &g.record.body else { continue };
        if let Some(r) = &d.rollback_of {
            rolled_back.insert(r.to_string());
        }
        if !d.environment.as_str().eq_ignore_ascii_case(environment) {
            continue;
        }
        if d.status != DeployStatus::RolledBack && d.status != DeployStatus::Success {
            continue;
        }
        let subject = d.subject().to_string();
        if d.status == DeployStatus::RolledBack {
            rolled_back.insert(subject);
        } else {
            let e = out.entry(subject).or_insert((g.record.time, vec![], false));
            e.1.extend(d.commits.iter().map(|c| c.as_str()));
        }
    }
    for (s, v) in out.iter_mut() {
        v.2 = rolled_back.contains(s);
    }
    out
}

/// When each deployment was rolled back: the times of the successful deployments to
/// `environment` whose `rollback_of` names it, by the rolled-back subject.
fn rollback_times(all: &[&Gathered], environment: &str) -> HashMap<String, Vec<Timestamp>> {
    let mut out: HashMap<String, Vec<Timestamp>> = HashMap::new();
    for g in all {
        let Body::Deployment(d) = &g.record.body else { continue };
        if let Some(target) = &d.rollback_of {
            if d.status == DeployStatus::Success && d.environment.as_str().eq_ignore_ascii_case(environment) {
                out.entry(target.to_string()).or_default().push(g.record.time);
            }
        }
    }
    out
}

/// The subjects of the deployments that ship a change `keep` accepts.
fn deployments_shipping(
    all: &[&Gathered],
    rows: &[ChangeRow<'_>],
    keep: &dyn Fn(&ChangeRow<'_>) -> bool,
) -> HashSet<String> {
    let commits: HashSet<&str> = rows
        .iter()
        .filter(|r| keep(r))
        .flat_map(|r| r.merged.iter().flat_map(|(_, landed, head)| [*landed, *head]))
        .collect();
    let mut out = HashSet::new();
    for g in all {
        if let Body::Deployment(d) = &g.record.body {
            if d.commits.iter().any(|c| commits.contains(c.as_str())) {
                out.insert(d.subject().to_string());
            }
        }
    }
    out
}

/// What the figures read of the whole log, gathered once per `compute` (every window and
/// group filters these instead of scanning the log again).
struct Facts<'a> {
    /// Successful deployments to the environment, by subject.
    deps: HashMap<String, Shipped<'a>>,
    /// Deployments named as a cause: explicitly, and by inference.
    explicit: HashSet<String>,
    inferred: HashSet<String>,
    /// Each incident (by subject): opened, resolved, the causes it names.
    incidents: HashMap<String, (Timestamp, Option<Timestamp>, BTreeSet<String>)>,
    /// When each deployment was rolled back.
    rollbacks: HashMap<String, Vec<Timestamp>>,
    /// The first successful deployment of each commit.
    first_deploy_of: HashMap<&'a str, Timestamp>,
    /// Commits with a passing check.
    passed_at: HashSet<&'a str>,
    /// Approvers of each commit.
    approvals_at: HashMap<&'a str, Vec<&'a ledger_core::types::Identity>>,
    /// Each change's first approval.
    first_approval_of: HashMap<String, Timestamp>,
}

impl<'a> Facts<'a> {
    fn of(all: &[&'a Gathered], environment: &str) -> Facts<'a> {
        let deps = successful(all, environment);
        // Incidents and what they name as causes (every record of an incident counts for its
        // causes; its latest record for its times).
        let mut explicit: HashSet<String> = HashSet::new();
        let mut inferred: HashSet<String> = HashSet::new();
        let mut incidents: HashMap<String, (Timestamp, Option<Timestamp>, BTreeSet<String>)> = HashMap::new();
        let mut passed_at: HashSet<&'a str> = HashSet::new();
        let mut approvals_at: HashMap<&'a str, Vec<&'a ledger_core::types::Identity>> = HashMap::new();
        let mut first_approval_of: HashMap<String, Timestamp> = HashMap::new();
        for g in all {
            match &g.record.body {
                Body::Incident(i) => {
                    let entry = incidents.entry(i.subject().to_string()).or_insert((i.opened, None, BTreeSet::new()));
                    entry.0 = i.opened;
                    entry.1 = i.resolved.or(entry.1);
                    for l in &g.record.links {
                        match l.rel {
                            Rel::CausedBy => {
                                explicit.insert(l.target.to_string());
                            }
                            Rel::CausedByInferred => {
                                inferred.insert(l.target.to_string());
                            }
                            _ => continue,
                        }
                        entry.2.insert(l.target.to_string());
                    }
                }
                Body::Evidence(e) if e.result == CheckResult::Pass => {
                    passed_at.insert(e.commit.as_str());
                }
                Body::Review(v) if v.verdict == Verdict::Approved => {
                    approvals_at.entry(v.commit.as_str()).or_default().push(&v.reviewer);
                    for l in g.record.links.iter().filter(|l| l.rel == Rel::Change) {
                        let e = first_approval_of.entry(l.target.to_string()).or_insert(g.record.time);
                        *e = (*e).min(g.record.time);
                    }
                }
                _ => {}
            }
        }
        let mut first_deploy_of: HashMap<&'a str, Timestamp> = HashMap::new();
        for (t, commits, _) in deps.values() {
            for &c in commits {
                let e = first_deploy_of.entry(c).or_insert(*t);
                *e = (*e).min(*t);
            }
        }
        Facts {
            rollbacks: rollback_times(all, environment),
            deps,
            explicit,
            inferred,
            incidents,
            first_deploy_of,
            passed_at,
            approvals_at,
            first_approval_of,
        }
    }
}

fn figures<'a>(
    window: Period,
    facts: &Facts<'a>,
    rows: &[ChangeRow<'a>],
    keep: &dyn Fn(&str, &ChangeRow<'_>) -> bool,
    keep_dep: &dyn Fn(&str) -> bool,
    whole: bool,
) -> Figures {
    let Facts {
        deps,
        explicit,
        inferred,
        incidents,
        rollbacks,
        first_deploy_of,
        passed_at,
        approvals_at,
        first_approval_of,
    } = facts;
    let in_window: Vec<(&String, &Shipped)> =
        deps.iter().filter(|(s, (t, _, _))| window.contains(*t) && keep_dep(s)).collect();
    let days = ((window.until.0 - window.since.0) as f64 / (24.0 * HOUR)).max(1.0);

    // Restored: resolved, or a rollback of a cause deployed, whichever came first.
    let mut restore = vec![];
    for (opened, resolved, causes) in incidents.values() {
        if !window.contains(*opened) || !(whole || causes.iter().any(|c| keep_dep(c))) {
            continue;
        }
        let rolled_back = causes
            .iter()
            .filter_map(|c| rollbacks.get(c))
            .flat_map(|times| times.iter().copied().filter(|t| t >= opened))
            .min();
        let restored = match (resolved, rolled_back) {
            (Some(a), Some(b)) => Some((*a).min(b)),
            (a, b) => a.or(b),
        };
        if let Some(r) = restored {
            restore.push((r.0 - opened.0) as f64 / HOUR);
        }
    }
    let failed = |with_inferred: bool| {
        in_window
            .iter()
            .filter(|(s, (_, _, rolled))| *rolled || explicit.contains(*s) || (with_inferred && inferred.contains(*s)))
            .count()
    };

    // Changes merged in the window, and their first production deployment.
    let merged: Vec<&ChangeRow<'_>> = rows
        .iter()
        .filter(|r| keep(&r.subject, r) && r.merged.as_ref().is_some_and(|(t, _, _)| window.contains(*t)))
        .collect();
    let first_deploy = |r: &ChangeRow<'_>| -> Option<Timestamp> {
        let (_, landed, head) = r.merged.as_ref()?;
        [first_deploy_of.get(landed), first_deploy_of.get(head)].into_iter().flatten().min().copied()
    };
    let mut lead_first = vec![];
    let mut lead_merge = vec![];
    for r in rows.iter().filter(|r| keep(&r.subject, r)) {
        let Some(deployed) = first_deploy(r).filter(|t| window.contains(*t)) else { continue };
        if let Some((mt, _, _)) = &r.merged {
            lead_merge.push((deployed.0 - mt.0) as f64 / HOUR);
        }
        if let Some(first) = r.change.commits.iter().map(|c| c.authored_at).min() {
            lead_first.push((deployed.0 - first.0) as f64 / HOUR);
        }
    }
    let final_commit = |r: &ChangeRow<'a>| -> &'a str { r.merged.map_or(r.change.head_commit.as_str(), |(_, _, h)| h) };
    let landed = |r: &ChangeRow<'a>| r.merged.map(|(_, l, _)| l);
    let tested = merged
        .iter()
        .filter(|r| passed_at.contains(final_commit(r)) || landed(r).is_some_and(|l| passed_at.contains(l)))
        .count();
    let rules = TierRules::default();
    let with_paths: Vec<&&ChangeRow<'_>> = merged.iter().filter(|r| r.change.paths.is_some()).collect();
    let delta = with_paths
        .iter()
        .filter(|r| rules.first_test_path(r.change.paths.as_deref().unwrap_or_default()).is_some())
        .count();
    let approved = merged
        .iter()
        .filter(|r| {
            approvals_at
                .get(final_commit(r))
                .is_some_and(|who| who.iter().any(|v| !v.same_person(&r.change.author) && !v.is_automation()))
        })
        .count();
    let ai: Vec<&&ChangeRow<'_>> = merged.iter().filter(|r| r.ai).collect();
    let ai_lines: Vec<f64> = ai.iter().filter_map(|r| r.change.lines_changed()).map(|n| n as f64).collect();
    let mut review = vec![];
    for r in &merged {
        let first_approval = first_approval_of.get(&r.subject).copied();
        if let Some(t) = first_approval {
            review.push(((t.0 - r.first_seen.0).max(0)) as f64 / HOUR);
        }
    }
    Figures {
        deployments: in_window.len(),
        deployments_per_day: (in_window.len() as f64 / days * 100.0).round() / 100.0,
        lead_time_first_commit_hours: Distribution::of(lead_first),
        lead_time_merge_hours: Distribution::of(lead_merge),
        change_failure_rate: Rate::of(failed(false), in_window.len()),
        change_failure_rate_with_inferred: Rate::of(failed(true), in_window.len()),
        time_to_restore_hours: Distribution::of(restore),
        with_test_evidence: Rate::of(tested, merged.len()),
        with_test_delta: Rate::of(delta, with_paths.len()),
        approved_at_final_commit: Rate::of(approved, merged.len()),
        ai_assisted: Rate::of(ai.len(), merged.len()),
        ai_diff_lines: Distribution::of(ai_lines),
        review_time_hours: Distribution::of(review),
    }
}

fn exceptions(all: &[&Gathered], at: Timestamp) -> ExceptionCounts {
    let mut open = 0;
    let mut expired = 0;
    for g in all {
        if let Body::Exception(x) = &g.record.body {
            if g.record.time >= at {
                continue;
            }
            if x.not_after <= at {
                expired += 1;
            } else {
                open += 1;
            }
        }
    }
    ExceptionCounts { open, expired }
}

/// Speed is not reported without stability: when the lead time (merge → production) of the
/// window's second half is shorter than its first half's while the change failure rate
/// rises, that is a finding.
fn integrity(window: Period, facts: &Facts<'_>, rows: &[ChangeRow<'_>]) -> Vec<MetricFinding> {
    let mid = Timestamp(window.since.0 + (window.until.0 - window.since.0) / 2);
    let halves = [Period { since: window.since, until: mid }, Period { since: mid, until: window.until }];
    let f: Vec<Figures> = halves.iter().map(|h| figures(*h, facts, rows, &|_, _| true, &|_| true, true)).collect();
    let (Some(lead_a), Some(lead_b)) = (f[0].lead_time_merge_hours.median, f[1].lead_time_merge_hours.median) else {
        return vec![];
    };
    let (Some(cfr_a), Some(cfr_b)) = (f[0].change_failure_rate.rate, f[1].change_failure_rate.rate) else {
        return vec![];
    };
    if lead_b < lead_a && cfr_b > cfr_a {
        return vec![MetricFinding {
            code: "speed_without_stability".into(),
            message: format!(
                "lead time (merge → production, median) fell from {lead_a} h to {lead_b} h while the change failure rate rose from {cfr_a} to {cfr_b} between the window's halves"
            ),
        }];
    }
    vec![]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = Distribution::of(vec![5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!((d.count, d.median, d.p90), (10, Some(5.0), Some(9.0)));
        let one = Distribution::of(vec![2.5]);
        assert_eq!((one.median, one.p90), (Some(2.5), Some(2.5)));
        assert_eq!(Distribution::of(vec![]).median, None);
        assert_eq!(Rate::of(1, 3).rate, Some(0.3333));
        assert_eq!(Rate::of(0, 0).rate, None);
    }
}
