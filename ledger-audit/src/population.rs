//! The auditor's population: every successful deployment to an environment in a period, each
//! with the change(s) it shipped, and what makes the population incomplete (deployments linked
//! to no change, landings without a pull request, changes no recorded deployment shipped).
//! Pure: the caller gathers the `deployment`, `change` and `merge` records.
//!
//! A deployment ships a change when one of its commits is the change's landed (merge or squash)
//! commit or its head commit at merge (for a change not yet merged, its recorded head). The
//! JSON form is documented in docs/AUDIT.md.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ledger_core::record::{Body, Change, DeployStatus, Merge, Rel};
use ledger_core::subject::Subject;
use ledger_core::types::{Identity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::why::Gathered;

/// A period: from `since` (inclusive) to `until` (exclusive), in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// First instant in the period.
    pub since: Timestamp,
    /// First instant after it.
    pub until: Timestamp,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Period {
    /// Whether `t` falls in the period.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.since <= t && t < self.until
    }
}

impl FromStr for Period {
    type Err = String;

    /// `START..END`, each a date (`2026-06-30`: the whole day, so `END` is included) or an RFC
    /// 3339 time (`END` then excluded).
    fn from_str(s: &str) -> Result<Period, String> {
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("period `{s}` is not START..END (e.g. 2026-01-01..2026-06-30)"))?;
        let start: Timestamp = a.trim().parse().map_err(|e| format!("period start `{a}`: {e}"))?;
        let end: Timestamp = b.trim().parse().map_err(|e| format!("period end `{b}`: {e}"))?;
        let date_only = !b.contains('T');
        let until = if date_only { Timestamp(end.0.saturating_add(DAY_MS)) } else { end };
        if until <= start {
            return Err(format!("period `{s}` ends before it starts"));
        }
        Ok(Period { since: start, until })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.since.to_rfc3339(), self.until.to_rfc3339())
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Period", 2)?;
        st.serialize_field("since", &self.since)?;
        st.serialize_field("until", &self.until)?;
        st.end()
    }
}

/// One deployment of the population.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopulationItem {
    /// `deploy:<service>/<environment>/<id>`.
    pub subject: String,
    /// The entry that recorded its success.
    pub seq: u64,
    /// When it succeeded (the record's time).
    pub time: Timestamp,
    /// Who deployed (from its first record).
    pub deployer: Identity,
    /// The commits it shipped.
    pub commits: Vec<String>,
    /// The changes it shipped, sorted.
    pub changes: Vec<String>,
}

/// Something that makes the population incomplete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopulationFinding {
    /// `deployment_without_change`, `landing_without_pull_request` or `change_not_deployed`.
    pub code: String,
    /// The deployment or change.
    pub subject: String,
    /// The entry it rests on.
    pub seq: u64,
}

/// The population of a period.
#[derive(Clone, Debug, Serialize)]
pub struct Population {
    /// The period.
    pub period: Period,
    /// The environment.
    pub environment: String,
    /// The repository filter, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Every successful deployment in the period, by time then entry.
    pub deployments: Vec<PopulationItem>,
    /// Completeness findings, by code then entry.
    pub findings: Vec<PopulationFinding>,
}

/// A change as the population sees it: its latest change record and its merge.
struct ChangeState<'a> {
    change: (u64, &'a Change),
    merge: Option<(u64, Timestamp, &'a Merge)>,
}

/// The changes one commit ships: nearly always one.
enum Shipped {
    One(usize),
    Many(Vec<usize>),
}

impl Shipped {
    fn add(&mut self, i: usize) {
        match self {
            Shipped::One(j) if *j == i => {}
            Shipped::One(j) => *self = Shipped::Many(vec![*j, i]),
            Shipped::Many(v) if v.contains(&i) => {}
            Shipped::Many(v) => v.push(i),
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (one, many) = match self {
            Shipped::One(i) => (Some(*i), &[][..]),
            Shipped::Many(v) => (None, &v[..]),
        };
        one.into_iter().chain(many.iter().copied())
    }
}

/// Builds the population from the `deployment`, `change` and `merge` records in `records`
/// (any order; others are ignored).
pub fn population(period: Period, environment: &str, repo: Option<&str>, records: &[Gathered]) -> Population {
    let mut by_seq: Vec<&Gathered> = records
        .iter()
        .filter(|g| matches!(g.record.body, Body::Change(_) | Body::Merge(_) | Body::Deployment(_)))
        .collect();
    by_seq.sort_by_key(|g| g.seq);
    by_seq.dedup_by_key(|g| g.seq);

    // Changes (latest record per subject) and their merges (latest merge linked to each);
    // below, a change is its position in `changes`, commits are borrowed from the records.
    let mut changes: Vec<(Subject, ChangeState<'_>)> = vec![];
    let mut change_at: HashMap<Subject, usize> = HashMap::new();
    for g in &by_seq {
        if let Body::Change(c) = &g.record.body {
            let subject = c.subject();
            match change_at.get(&subject) {
                Some(&i) => changes[i].1.change = (g.seq.0, c),
                None => {
                    change_at.insert(subject.clone(), changes.len());
                    changes.push((subject, ChangeState { change: (g.seq.0, c), merge: None }));
                }
            }
        }
    }
    for g in &by_seq {
        if let Body::Merge(m) = &g.record.body {
            for l in g.record.links.iter().filter(|l| l.rel == Rel::Change) {
                if let Some(&i) = change_at.get(&l.target) {
                    changes[i].1.merge = Some((g.seq.0, g.record.time, m));
                }
            }
        }
    }
    let repo_ok = |r: &str| repo.is_none_or(|want| want == r);
    // Which changes each commit ships (almost always one: no list allocated for it).
    let mut shipped_by: HashMap<&str, Shipped> = HashMap::new();
    for (i, (_, s)) in changes.iter().enumerate() {
        let merge = s.merge.map(|(_, _, m)| [m.merge_commit.as_str(), m.head_commit.as_str()]);
        for c in std::iter::once(s.change.1.head_commit.as_str()).chain(merge.into_iter().flatten()) {
            shipped_by.entry(c).and_modify(|v| v.add(i)).or_insert(Shipped::One(i));
        }
    }

    // Deployments: every record of a deployment subject; in the population when one of its
    // `success` records falls in the period.
    struct Dep<'a> {
        first: &'a Gathered,
        success: Option<&'a Gathered>,
        commits: Vec<&'a str>,
        repo: Option<&'a str>,
    }
    // Keyed by (service, environment, id), borrowed: the subject's parts.
    let mut deps: HashMap<(&str, &str, &str), Dep<'_>> = HashMap::new();
    for g in &by_seq {
        let Body::Deployment(d) = &g.record.body else { continue };
        if !d.environment.as_str().eq_ignore_ascii_case(environment) {
            continue;
        }
        let key = (d.service.as_str(), d.environment.as_str(), d.deployment_id.as_str());
        let e = deps.entry(key).or_insert(Dep {
            first: g,
            success: None,
            commits: vec![],
            repo: d.repo.as_ref().map(|r| r.as_str()),
        });
        e.commits.extend(d.commits.iter().map(|c| c.as_str()));
        if e.repo.is_none() {
            e.repo = d.repo.as_ref().map(|r| r.as_str());
        }
        if d.status == DeployStatus::Success && e.success.is_none_or(|s| !period.contains(s.record.time)) {
            e.success = Some(g);
        }
    }
    let mut items = vec![];
    let mut findings = vec![];
    let mut deployed = vec![false; changes.len()];
    for d in deps.values_mut() {
        let Some(ok) = d.success else { continue };
        d.commits.sort_unstable();
        d.commits.dedup();
        let mut shipped: Vec<usize> =
            d.commits.iter().filter_map(|c| shipped_by.get(c)).flat_map(Shipped::iter).collect();
        shipped.sort_unstable();
        shipped.dedup();
        for &i in &shipped {
            deployed[i] = true;
        }
        if !period.contains(ok.record.time) || !d.repo.is_none_or(repo_ok) {
            continue;
        }
        if repo.is_some() && d.repo.is_none() {
            continue;
        }
        let Body::Deployment(first) = &d.first.record.body else { continue };
        let subject = first.subject().to_string();
        if shipped.is_empty() {
            findings.push((
                PopulationFinding { code: "deployment_without_change".into(), subject: subject.clone(), seq: ok.seq.0 },
                None,
            ));
        }
        let mut shipped_subjects: Vec<String> = shipped.into_iter().map(|i| changes[i].0.to_string()).collect();
        shipped_subjects.sort();
        items.push(PopulationItem {
            subject,
            seq: ok.seq.0,
            time: ok.record.time,
            deployer: first.deployer.clone(),
            commits: d.commits.iter().map(|c| c.to_string()).collect(),
            changes: shipped_subjects,
        });
    }
    items.sort_by_key(|i| (i.time, i.seq));

    for (i, (subject, s)) in changes.iter().enumerate() {
        let Some((mseq, mtime, _)) = s.merge else { continue };
        if !period.contains(mtime) || !repo_ok(s.change.1.repo.as_str()) {
            continue;
        }
        if s.change.1.number.is_none() {
            findings.push((
                PopulationFinding {
                    code: "landing_without_pull_request".into(),
                    subject: subject.to_string(),
                    seq: mseq,
                },
                Some(subject),
            ));
        }
        if !deployed[i] {
            findings.push((
                PopulationFinding { code: "change_not_deployed".into(), subject: subject.to_string(), seq: mseq },
                Some(subject),
            ));
        }
    }
    // By code, then entry, then (one merge landing two changes) the change's subject.
    findings.sort_by(|(a, sa), (b, sb)| (a.code.as_str(), a.seq, sa).cmp(&(b.code.as_str(), b.seq, sb)));
    let findings: Vec<PopulationFinding> = findings.into_iter().map(|(f, _)| f).collect();
    Population {
        period,
        environment: environment.to_string(),
        repo: repo.map(str::to_string),
        deployments: items,
        findings,
    }
}

/// One drawn item: its sampling key and the deployment.
#[derive(Clone, Debug, Serialize)]
pub struct Drawn<'a> {
    /// Lowercase hex SHA-256 of `ledger-sample-v1\n<seed>\n<subject>` ([`sample_key`]).
    pub key: String,
    /// The deployment.
    #[serde(flatten)]
    pub item: &'a PopulationItem,
}

/// The sampling key of a deployment: the lowercase hex SHA-256 of the UTF-8 text
/// `ledger-sample-v1`, newline, the seed, newline, the deployment's subject. An auditor
/// re-derives it with `printf 'ledger-sample-v1\n%s\n%s' SEED SUBJECT | sha256sum`.
pub fn sample_key(seed: &str, subject: &str) -> String {
    let d = ledger_core::record::document_digest(&format!("ledger-sample-v1\n{seed}\n{subject}"));
    d.value().iter().map(|b| format!("{b:02x}")).collect()
}

/// A reproducible sample of `n` deployments: the population's deployments ordered by their
/// [`sample_key`] under `seed`, the first `n` (all of them when there are fewer). It depends
/// only on the seed and the population's subjects: the same seed over the same population
/// draws the same items, anywhere.
pub fn sample<'a>(population: &'a Population, seed: &str, n: usize) -> Vec<Drawn<'a>> {
    let mut drawn: Vec<Drawn<'a>> =
        population.deployments.iter().map(|item| Drawn { key: sample_key(seed, &item.subject), item }).collect();
    drawn.sort_by(|a, b| a.key.cmp(&b.key));
    drawn.truncate(n);
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_include_their_last_day() {
        let p: Period = "2026-01-01..2026-06-30".parse().unwrap();
        assert!(p.contains("2026-06-30T23:59:59Z".parse().unwrap()));
        assert!(!p.contains("2026-07-01T00:00:00Z".parse().unwrap()));
        assert!(p.contains("2026-01-01T00:00:00Z".parse().unwrap()));
        assert!("2026-06-30..2026-01-01".parse::<Period>().is_err());
        assert!("2026-01-01".parse::<Period>().is_err());
        let exact: Period = "2026-01-01T00:00:00Z..2026-01-02T00:00:00Z".parse().unwrap();
        assert!(!exact.contains("2026-01-02T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn the_sample_key_is_sha256_of_the_documented_text() {
        // printf 'ledger-sample-v1\nS\ndeploy:a/b/c' | sha256sum
        assert_eq!(sample_key("S", "deploy:a/b/c"), "2f0d9203202479622d989c6927cfe9f4259ec63cd31c17bc59394a7f7a8547f2");
    }
}
