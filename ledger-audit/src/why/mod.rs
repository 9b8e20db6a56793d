//! "Who approved this, and what evidence proved it was safe?": the analysis behind
//! `ledger why`. Pure: the caller gathers the related entries (see `ledger-store`), this
//! module links them into a report with findings.
//!
//! Approvals are judged against the change's **final commit**: the head commit at merge
//! (for a squash or direct landing, the landed commit also counts). An approval of any other
//! commit is reported as stale. Missing links are findings, not errors.
//!
//! The JSON form of [`WhyReport`] is stable and documented in `docs/WHY.md`.
//!
//! Code map: [`analyze`] (here) picks the changes; `change` builds one [`ChangeReport`] from
//! the records, step by step; `findings` judges a built report; `report` holds the types.

mod change;
mod findings;
mod gather;
mod report;

use std::collections::BTreeMap;

use ledger_core::record::{Body, Change, Model, Record, Rel};
use ledger_core::subject::Subject;
use ledger_core::types::{Seq, Timestamp};

pub use gather::{gather, RecordSource, WHY_MAX_ENTRIES, WHY_ROUNDS};
pub use report::{
    ChangeReport, CommitLine, DeploymentLine, Entered, EntryRef, EvidenceLine, ExceptionLine, Finding, GateLine,
    GateRuleLine, Gathered, IncidentLine, MergeLine, ReviewLine, ReviewStatus, SessionLine, Verification, Vouch,
    WalkStep, WhyReport,
};

/// Which builders' attestations count as evidence: the trusted-builder list (policy will reuse
/// it). An entry ending in `/` trusts every builder id it starts; any other entry trusts that
/// id exactly, or with an `@ref` after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    /// The trusted builder ids and prefixes.
    pub builders: Vec<String>,
}

/// The builders trusted by default: the SLSA GitHub generators, GitHub-hosted runners (GitHub
/// artifact attestations, npm provenance) and Google Cloud Build.
pub const DEFAULT_TRUSTED_BUILDERS: &[&str] = &[
    "https://github.com/slsa-framework/slsa-github-generator/",
    "https://github.com/actions/runner/github-hosted",
    "https://cloudbuild.googleapis.com/GoogleHostedWorker",
];

impl Default for Trust {
    fn default() -> Self {
        Trust { builders: DEFAULT_TRUSTED_BUILDERS.iter().map(|s| s.to_string()).collect() }
    }
}

impl Trust {
    /// Whether `builder` is trusted.
    pub fn trusts(&self, builder: &str) -> bool {
        self.builders.iter().any(|b| {
            if b.ends_with('/') {
                builder.starts_with(b.as_str())
            } else {
                builder == b || builder.strip_prefix(b.as_str()).is_some_and(|rest| rest.starts_with('@'))
            }
        })
    }
}

/// The clock skew tolerated between records from different systems, in milliseconds (5
/// minutes): a review is `late` only when given more than this after the merge, and a
/// deployment or incident is out of order only by more than this.
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

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
/// belongs to, a change's commits, a merge's head and merge commits, a deployment and its
/// commits, an incident and its causes.
pub fn follow(record: &Record) -> Vec<Subject> {
    let mut out = change_subjects_of(record);
    for l in &record.links {
        if matches!(l.rel, Rel::Deployment | Rel::CausedBy | Rel::CausedByInferred | Rel::RollbackOf) {
            out.push(l.target.clone());
        }
    }
    match &record.body {
        // Every commit of a change: a review or check may name one without naming the change.
        Body::Change(c) => {
            out.push(Subject::Commit { repo: Some(c.repo.clone()), sha: c.head_commit.clone() });
            out.extend(c.commits.iter().map(|m| Subject::Commit { repo: Some(c.repo.clone()), sha: m.sha.clone() }));
        }
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

/// The report for a subject nothing recorded mentions (one that could not even be resolved
/// to a canonical subject, such as a commit abbreviation no recorded commit starts with): the
/// `no_change` finding, as for any subject nothing covers.
pub fn analyze_nothing(subject: &str) -> WhyReport {
    WhyReport {
        subject: subject.to_string(),
        walked: vec![],
        changes: vec![],
        findings: vec![findings::finding("no_change", format!("nothing recorded mentions {subject}"))],
    }
}

/// Builds the report for `subject` from the gathered records (any order, duplicates allowed).
/// `now` decides which exceptions have expired; `trust` which builders' attestations count.
pub fn analyze<G: std::borrow::Borrow<Gathered>>(
    subject: &Subject,
    gathered: &[G],
    now: Timestamp,
    trust: &Trust,
) -> WhyReport {
    let mut by_seq: BTreeMap<Seq, &Gathered> = BTreeMap::new();
    for g in gathered {
        let g = g.borrow();
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
    let models: Vec<&Model> = all
        .iter()
        .filter_map(|g| match &g.record.body {
            Body::Model(m) => Some(m),
            _ => None,
        })
        .collect();

    let mut report = WhyReport { subject: subject.to_string(), walked: vec![], changes: vec![], findings: vec![] };
    if changes.is_empty() {
        let msg = if all.is_empty() {
            format!("nothing recorded mentions {subject}")
        } else {
            format!("no change record covers {subject} ({} other record(s) mention it)", all.len())
        };
        report.findings.push(findings::finding("no_change", msg));
    }
    for (csub, (cg, change)) in changes {
        report.changes.push(change::change_report(&csub, cg, change, &all, &models, now, trust));
    }
    report
}
