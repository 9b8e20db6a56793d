//! What the gate needs to know about each change and the deployment, read from the gathered
//! records and the `why` report of the change.

use std::collections::BTreeMap;

use ledger_core::ai::ai_tool_name;
use ledger_core::record::{Body, Change, Codeowners, Exception, Model, Rel, Session};
use ledger_core::subject::Subject;
use ledger_core::types::{Identity, Seq, Token};

use crate::why::{ChangeReport, Gathered, ReviewStatus};

/// One approver whose approval counts: a human other than the change's author, approving the
/// final commit, not dismissed, before the merge.
#[derive(Clone, Debug)]
pub(super) struct Approver {
    pub who: Identity,
    /// The review entries of this person's valid approvals.
    pub seqs: Vec<u64>,
}

/// A change, as the gate sees it.
pub(super) struct ChangeFacts<'a> {
    pub report: &'a ChangeReport,
    pub paths: Option<Vec<String>>,
    /// Entry that gave the paths.
    pub paths_seq: Option<u64>,
    pub lines: Option<u64>,
    pub lines_seq: Option<u64>,
    pub labels: Vec<String>,
    /// Authors and committers of the change's commits; `None` when no change record lists
    /// its commits.
    pub commit_people: Option<Vec<Identity>>,
    pub sessions: Vec<(u64, &'a Session)>,
    /// Whether an AI tool took part: a session, or a commit authored by an AI tool.
    pub ai: bool,
    pub approvers: Vec<Approver>,
    /// Approvals that do not count, and why (self-approval, automation).
    pub discounted: Vec<(u64, String)>,
}

impl ChangeFacts<'_> {
    /// The change's author and its commits' authors: who may not approve its exceptions.
    pub fn authors(&self) -> Vec<&Identity> {
        let mut out = vec![&self.report.author];
        out.extend(self.report.commit_authors.iter());
        out
    }

    /// The change's risk areas, from its AI sessions.
    pub fn risk_areas(&self) -> Vec<String> {
        self.sessions.iter().filter_map(|(_, s)| s.risk_area.clone()).collect()
    }
}

/// The deployment a deploy-stage gate is about.
pub(super) struct DeploymentFacts {
    pub subject: String,
    pub deployer: Identity,
    pub strategy: Option<Token>,
    /// Every record of the deployment.
    pub seqs: Vec<u64>,
}

pub(super) fn by_seq<G: std::borrow::Borrow<Gathered>>(gathered: &[G]) -> BTreeMap<Seq, &Gathered> {
    gathered.iter().map(|g| (g.borrow().seq, g.borrow())).collect()
}

pub(super) fn change_facts<'a>(report: &'a ChangeReport, all: &BTreeMap<Seq, &'a Gathered>) -> Option<ChangeFacts<'a>> {
    let subject: Subject = report.subject.parse().ok()?;
    let records: Vec<(u64, &Change)> = all
        .values()
        .filter_map(|g| match &g.record.body {
            Body::Change(c) if c.subject() == subject => Some((g.seq.0, c)),
            _ => None,
        })
        .collect();
    let latest_with = |f: &dyn Fn(&Change) -> bool| records.iter().rev().find(|(_, c)| f(c)).copied();
    let paths = latest_with(&|c| c.paths.is_some());
    let lines = latest_with(&|c| c.lines_changed().is_some());
    let labels = latest_with(&|c| !c.labels.is_empty()).map(|(_, c)| c.labels.clone()).unwrap_or_default();
    let mut people: Vec<Identity> = vec![];
    let mut listed = false;
    for (_, c) in &records {
        listed |= !c.commits.is_empty();
        for ci in &c.commits {
            for p in [&ci.author, &ci.committer] {
                if !is_forge_committer(p) && !people.iter().any(|x| x.same_person(p)) {
                    people.push(p.clone());
                }
            }
        }
    }
    let sessions: Vec<(u64, &Session)> = all
        .values()
        .filter_map(|g| match &g.record.body {
            Body::Session(s) if linked(g, &subject) => Some((g.seq.0, s)),
            _ => None,
        })
        .collect();
    let ai = !sessions.is_empty()
        || records.iter().any(|(_, c)| c.commits.iter().any(|ci| ai_tool_name(ci.author.as_str()).is_some()));
    let (approvers, discounted) = approvers(report);
    Some(ChangeFacts {
        report,
        paths: paths.and_then(|(_, c)| c.paths.clone()),
        paths_seq: paths.map(|(s, _)| s),
        lines: lines.and_then(|(_, c)| c.lines_changed()),
        lines_seq: lines.map(|(s, _)| s),
        labels,
        commit_people: listed.then_some(people),
        sessions,
        ai,
        approvers,
        discounted,
    })
}

/// GitHub's web-flow committer (`GitHub <noreply@github.com>`) commits on behalf of a person
/// (squash merges, web edits): it is not a person who could approve.
fn is_forge_committer(p: &Identity) -> bool {
    p.email().is_some_and(|e| e == "noreply@github.com" || e == "noreply@gitlab.com")
}

fn linked(g: &Gathered, change: &Subject) -> bool {
    g.record.links.iter().any(|l| l.rel == Rel::Change && &l.target == change)
}

/// The approvals that count, one per person, and those that do not.
fn approvers(report: &ChangeReport) -> (Vec<Approver>, Vec<(u64, String)>) {
    let mut out: Vec<Approver> = vec![];
    let mut discounted = vec![];
    for r in report.reviews.iter().filter(|r| r.verdict == ledger_core::record::Verdict::Approved) {
        let seqs = std::iter::once(r.at.seq).chain(r.also.iter().map(|a| a.seq));
        if r.status != ReviewStatus::Valid {
            discounted.push((r.at.seq, format!("{} approved, but the approval is {}", r.reviewer, r.status)));
            continue;
        }
        if r.reviewer.same_person(&report.author) {
            discounted.push((r.at.seq, format!("{} approved their own change", r.reviewer)));
            continue;
        }
        if r.reviewer.is_automation() {
            discounted.push((r.at.seq, format!("{} is automation, not a person", r.reviewer)));
            continue;
        }
        match out.iter_mut().find(|a| a.who.same_person(&r.reviewer)) {
            Some(a) => a.seqs.extend(seqs),
            None => out.push(Approver { who: r.reviewer.clone(), seqs: seqs.collect() }),
        }
    }
    (out, discounted)
}

/// The deployment gated: `subject` itself when it names one, else the latest deployment of
/// the changes' shipped commits.
pub(super) fn deployment_facts(
    subject: &Subject,
    changes: &[ChangeFacts<'_>],
    all: &BTreeMap<Seq, &Gathered>,
) -> Option<DeploymentFacts> {
    let target = match subject {
        Subject::Deployment { .. } => subject.to_string(),
        _ => changes
            .iter()
            .flat_map(|c| c.report.deployments.iter())
            .max_by_key(|d| d.at.seq)
            .map(|d| d.subject.clone())?,
    };
    let mut facts: Option<DeploymentFacts> = None;
    for g in all.values() {
        let Body::Deployment(d) = &g.record.body else { continue };
        if d.subject().to_string() != target {
            continue;
        }
        let f = facts.get_or_insert_with(|| DeploymentFacts {
            subject: target.clone(),
            deployer: d.deployer.clone(),
            strategy: None,
            seqs: vec![],
        });
        f.seqs.push(g.seq.0);
        if d.strategy.is_some() {
            f.strategy = d.strategy.clone();
        }
    }
    facts
}

/// The exception records among the gathered ones.
pub(super) fn exceptions<'a>(all: &BTreeMap<Seq, &'a Gathered>) -> Vec<(u64, &'a Exception)> {
    all.values()
        .filter_map(|g| match &g.record.body {
            Body::Exception(x) => Some((g.seq.0, x)),
            _ => None,
        })
        .collect()
}

/// The latest `model` record per tool and model name.
pub(super) fn models<'a>(all: &BTreeMap<Seq, &'a Gathered>) -> Vec<(u64, &'a Model)> {
    let mut latest: BTreeMap<(String, String), (u64, &Model)> = BTreeMap::new();
    for g in all.values() {
        if let Body::Model(m) = &g.record.body {
            latest.insert((m.tool.to_string(), m.model.to_ascii_lowercase()), (g.seq.0, m));
        }
    }
    latest.into_values().collect()
}

/// The latest CODEOWNERS file recorded for `repo`.
pub(super) fn codeowners<'a>(all: &BTreeMap<Seq, &'a Gathered>, repo: &str) -> Option<(u64, &'a Codeowners)> {
    all.values().rev().find_map(|g| match &g.record.body {
        Body::Codeowners(c) if c.repo.as_str() == repo => Some((g.seq.0, c)),
        _ => None,
    })
}
