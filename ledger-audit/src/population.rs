//! The auditor's population: every successful deployment to an environment in a period, each
//! with the change(s) it shipped, and what makes the population incomplete (deployments linked
//! to no change, landings without a pull request, changes no recorded deployment shipped).
//! Pure: the caller gathers the `deployment`, `change` and `merge` records.
//!
//! A deployment ships a change when one of its commits is the change's landed (merge or squash)
//! commit or its head commit at merge (for a change not yet merged, its recorded head). The
//! JSON form is documented in docs/AUDIT.md.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

/// Builds the population from the `deployment`, `change` and `merge` records in `records`
/// (any order; others are ignored).
pub fn population(period: Period, environment: &str, repo: Option<&str>, records: &[Gathered]) -> Population {
    let mut by_seq: Vec<&Gathered> = records
        .iter()
        .filter(|g| matches!(g.record.body, Body::Change(_) | Body::Merge(_) | Body::Deployment(_)))
        .collect();
    by_seq.sort_by_key(|g| g.seq);
    by_seq.dedup_by_key(|g| g.seq);

    // Changes (latest record per subject) and their merges (latest merge linked to each).
    let mut changes: BTreeMap<Subject, ChangeState<'_>> = BTreeMap::new();
    for g in &by_seq {
        if let Body::Change(c) = &g.record.body {
            let e = changes.entry(c.subject()).or_insert(ChangeState { change: (g.seq.0, c), merge: None });
            e.change = (g.seq.0, c);
        }
    }
    for g in &by_seq {
        if let Body::Merge(m) = &g.record.body {
            for l in g.record.links.iter().filter(|l| l.rel == Rel::Change) {
                if let Some(state) = changes.get_mut(&l.target) {
                    state.merge = Some((g.seq.0, g.record.time, m));
                }
            }
        }
    }
    let repo_ok = |r: &str| repo.is_none_or(|want| want == r);
    // Each change's subject, once; below, changes are their position in `changes` (subject
    // order), commits are borrowed from the records.
    let subjects: Vec<String> = changes.keys().map(|s| s.to_string()).collect();
    // Which changes each commit ships.
    let mut shipped_by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in changes.values().enumerate() {
        let mut commits = vec![s.change.1.head_commit.as_str()];
        if let Some((_, _, m)) = s.merge {
            commits.push(m.merge_commit.as_str());
            commits.push(m.head_commit.as_str());
        }
        for c in commits {
            let v = shipped_by.entry(c).or_default();
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }

    // Deployments: every record of a deployment subject; in the population when one of its
    // `success` records falls in the period.
    struct Dep<'a> {
        first: &'a Gathered,
        success: Option<&'a Gathered>,
        commits: BTreeSet<&'a str>,
        repo: Option<&'a str>,
    }
    let mut deps: HashMap<String, Dep<'_>> = HashMap::new();
    for g in &by_seq {
        let Body::Deployment(d) = &g.record.body else { continue };
        if !d.environment.as_str().eq_ignore_ascii_case(environment) {
            continue;
        }
        let e = deps.entry(d.subject().to_string()).or_insert(Dep {
            first: g,
            success: None,
            commits: BTreeSet::new(),
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
    let mut deployed: HashSet<usize> = HashSet::new();
    for (subject, d) in &deps {
        let Some(ok) = d.success else { continue };
        let shipped: BTreeSet<usize> =
            d.commits.iter().flat_map(|c| shipped_by.get(c).into_iter().flatten().copied()).collect();
        deployed.extend(shipped.iter().copied());
        if !period.contains(ok.record.time) || !d.repo.is_none_or(repo_ok) {
            continue;
        }
        if repo.is_some() && d.repo.is_none() {
            continue;
        }
        let deployer = match &d.first.record.body {
            Body::Deployment(x) => x.deployer.clone(),
            _ => d.first.record.actor.clone(),
        };
        if shipped.is_empty() {
            findings.push(PopulationFinding {
                code: "deployment_without_change".into(),
                subject: subject.clone(),
                seq: ok.seq.0,
            });
        }
        let mut shipped_subjects: Vec<String> = shipped.into_iter().map(|i| subjects[i].clone()).collect();
        shipped_subjects.sort();
        items.push(PopulationItem {
            subject: subject.clone(),
            seq: ok.seq.0,
            time: ok.record.time,
            deployer,
            commits: d.commits.iter().map(|c| c.to_string()).collect(),
            changes: shipped_subjects,
        });
    }
    items.sort_by_key(|i| (i.time, i.seq));

    for (i, s) in changes.values().enumerate() {
        let Some((mseq, mtime, _)) = s.merge else { continue };
        if !period.contains(mtime) || !repo_ok(s.change.1.repo.as_str()) {
            continue;
        }
        if s.change.1.number.is_none() {
            findings.push(PopulationFinding {
                code: "landing_without_pull_request".into(),
                subject: subjects[i].clone(),
                seq: mseq,
            });
        }
        if !deployed.contains(&i) {
            findings.push(PopulationFinding {
                code: "change_not_deployed".into(),
                subject: subjects[i].clone(),
                seq: mseq,
            });
        }
    }
    findings.sort_by(|a, b| (a.code.as_str(), a.seq).cmp(&(b.code.as_str(), b.seq)));
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
