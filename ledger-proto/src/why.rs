//! The `why` report on the wire: [`WhyReport`] ↔ [`pb::WhyReport`], field for field.
//!
//! Values of closed vocabularies (verdicts, results, statuses, methods, signature kinds,
//! tiers) travel as the names the JSON report uses, written and read through the types' own
//! serde names, so the two forms cannot drift apart; times travel as milliseconds.

use ledger_audit::why::{
    ChangeReport, CommitLine, DeploymentLine, EntryRef, EvidenceLine, ExceptionLine, Finding, GateLine, GateRuleLine,
    IncidentLine, MergeLine, ReviewLine, SessionLine, Vouch, WalkStep, WhyReport,
};
use ledger_core::types::{CommitId, Identity, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::convert::ConvertError;
use crate::v1 as pb;

/// The serde name of a unit enum value (`approved`, `T1`, …).
pub(crate) fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        // Every vocabulary here is a unit enum, which serializes as a string.
        other => format!("{other:?}"),
    }
}

/// The value of a unit enum named `s`, or an error naming `field`.
pub(crate) fn parse<T: DeserializeOwned>(field: &str, s: &str) -> Result<T, ConvertError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| ConvertError::new(field, format!("`{s}` is not a known value")))
}

fn identity(field: &str, s: &str) -> Result<Identity, ConvertError> {
    Identity::new(s).map_err(|e| ConvertError::new(field, e))
}

fn commit(field: &str, s: &str) -> Result<CommitId, ConvertError> {
    CommitId::new(s).map_err(|e| ConvertError::new(field, e))
}

fn at(field: &str, e: Option<&pb::EntryRef>) -> Result<EntryRef, ConvertError> {
    let e = e.ok_or_else(|| ConvertError::new(field, "missing"))?;
    Ok(EntryRef { seq: e.seq, entry: e.entry.clone() })
}

fn at_pb(e: &EntryRef) -> Option<pb::EntryRef> {
    Some(entry_pb(e))
}

fn entry_pb(e: &EntryRef) -> pb::EntryRef {
    pb::EntryRef { seq: e.seq, entry: e.entry.clone() }
}

fn entry(e: &pb::EntryRef) -> EntryRef {
    EntryRef { seq: e.seq, entry: e.entry.clone() }
}

fn vouch_pb(v: &Vouch) -> Option<pb::Vouch> {
    Some(pb::Vouch { signer: v.signer.clone(), key_id: v.key_id.clone(), entered: name(&v.entered) })
}

fn vouch(v: Option<&pb::Vouch>) -> Result<Vouch, ConvertError> {
    let v = v.ok_or_else(|| ConvertError::new("vouched", "missing"))?;
    Ok(Vouch {
        signer: v.signer.clone(),
        key_id: v.key_id.clone(),
        entered: parse("entered", &v.entered).map_err(|e| e.within("vouched"))?,
    })
}

pub(crate) fn finding_pb(f: &Finding) -> pb::Finding {
    pb::Finding { code: f.code.clone(), message: f.message.clone() }
}

pub(crate) fn finding(f: &pb::Finding) -> Finding {
    Finding { code: f.code.clone(), message: f.message.clone() }
}

impl From<&WhyReport> for pb::WhyReport {
    fn from(r: &WhyReport) -> Self {
        pb::WhyReport {
            subject: r.subject.clone(),
            walked: r
                .walked
                .iter()
                .map(|w| pb::WalkStep { subject: w.subject.clone(), entries: w.entries.iter().map(entry_pb).collect() })
                .collect(),
            changes: r.changes.iter().map(change_pb).collect(),
            findings: r.findings.iter().map(finding_pb).collect(),
        }
    }
}

impl TryFrom<&pb::WhyReport> for WhyReport {
    type Error = ConvertError;
    /// # Errors
    /// A missing entry reference, or a value that is not valid for its field (an identity,
    /// commit id or vocabulary name), named by its path.
    fn try_from(r: &pb::WhyReport) -> Result<Self, ConvertError> {
        Ok(WhyReport {
            subject: r.subject.clone(),
            walked: r
                .walked
                .iter()
                .map(|w| WalkStep { subject: w.subject.clone(), entries: w.entries.iter().map(entry).collect() })
                .collect(),
            changes: r
                .changes
                .iter()
                .enumerate()
                .map(|(i, c)| change(c).map_err(|e| e.within(&format!("changes[{i}]"))))
                .collect::<Result<_, _>>()?,
            findings: r.findings.iter().map(finding).collect(),
        })
    }
}

fn change_pb(c: &ChangeReport) -> pb::ChangeReport {
    pb::ChangeReport {
        at: at_pb(&c.at),
        subject: c.subject.clone(),
        repo: c.repo.clone(),
        number: c.number,
        title: c.title.clone(),
        author: c.author.to_string(),
        head_commit: c.head_commit.to_string(),
        final_commit: c.final_commit.to_string(),
        commits: c
            .commits
            .iter()
            .map(|m| pb::CommitLine {
                sha: m.sha.to_string(),
                author: m.author.to_string(),
                committer: m.committer.to_string(),
                title: m.title.clone(),
                signature: name(&m.signature),
                trailers: m.trailers.clone(),
            })
            .collect(),
        commits_total: c.commits_total,
        commit_authors: c.commit_authors.iter().map(|a| a.to_string()).collect(),
        merge: c.merge.as_ref().map(|m| pb::MergeLine {
            at: at_pb(&m.at),
            commit: m.commit.to_string(),
            head_commit: m.head_commit.to_string(),
            merged_by: m.merged_by.as_ref().map(|i| i.to_string()),
            time_ms: m.time.0,
            method: name(&m.method),
            vouched: vouch_pb(&m.vouched),
        }),
        reviews: c
            .reviews
            .iter()
            .map(|r| pb::ReviewLine {
                at: at_pb(&r.at),
                reviewer: r.reviewer.to_string(),
                verdict: name(&r.verdict),
                commit: r.commit.to_string(),
                status: name(&r.status),
                via: r.via.clone(),
                time_ms: r.time.0,
                also: r.also.iter().map(entry_pb).collect(),
                vouched: vouch_pb(&r.vouched),
            })
            .collect(),
        evidence: c
            .evidence
            .iter()
            .map(|e| pb::EvidenceLine {
                at: at_pb(&e.at),
                check: e.check.clone(),
                result: name(&e.result),
                commit: e.commit.to_string(),
                at_final_commit: e.at_final_commit,
                verification: name(&e.verification),
                builder: e.builder.clone(),
                trusted_builder: e.trusted_builder,
                counts: e.counts,
                vouched: vouch_pb(&e.vouched),
            })
            .collect(),
        sessions: c
            .sessions
            .iter()
            .map(|s| pb::SessionLine {
                at: at_pb(&s.at),
                subject: s.subject.clone(),
                tool: s.tool.clone(),
                model: s.model.clone(),
                summary: s.summary.clone(),
                via: s.via.clone(),
                model_approved_tiers: s
                    .model_approved_tiers
                    .as_ref()
                    .map(|t| pb::Tiers { tiers: t.iter().map(name).collect() }),
                also: s.also.iter().map(entry_pb).collect(),
            })
            .collect(),
        exceptions: c
            .exceptions
            .iter()
            .map(|x| pb::ExceptionLine {
                at: at_pb(&x.at),
                approver: x.approver.to_string(),
                reason: x.reason.clone(),
                not_after_ms: x.not_after.0,
                expired: x.expired,
            })
            .collect(),
        deployments: c
            .deployments
            .iter()
            .map(|d| pb::DeploymentLine {
                at: at_pb(&d.at),
                subject: d.subject.clone(),
                environment: d.environment.clone(),
                status: name(&d.status),
                deployer: d.deployer.to_string(),
                commit: d.commit.to_string(),
                time_ms: d.time.0,
                vouched: vouch_pb(&d.vouched),
            })
            .collect(),
        incidents: c
            .incidents
            .iter()
            .map(|i| pb::IncidentLine {
                at: at_pb(&i.at),
                subject: i.subject.clone(),
                title: i.title.clone(),
                severity: i.severity.clone(),
                opened_ms: i.opened.0,
                resolved_ms: i.resolved.map(|t| t.0),
                cause: i.cause.clone(),
                inferred: i.inferred,
                inference: i.inference.clone(),
            })
            .collect(),
        findings: c.findings.iter().map(finding_pb).collect(),
        gates: c
            .gates
            .iter()
            .map(|g| pb::GateLine {
                at: at_pb(&g.at),
                subject: g.subject.clone(),
                stage: g.stage.as_ref().map(name),
                decision: name(&g.decision),
                tier: g.tier.as_ref().map(name),
                policy: g.policy.clone(),
                policy_version: g.policy_version,
                rules: g
                    .rules
                    .iter()
                    .map(|r| pb::GateRuleLine { rule: r.rule.clone(), result: name(&r.result), exception: r.exception })
                    .collect(),
                time_ms: g.time.0,
                vouched: vouch_pb(&g.vouched),
            })
            .collect(),
        labels: c.labels.clone(),
    }
}

/// Converts each item of `items` with `f`, naming the failing one `field[i]`.
pub(crate) fn each<P, T>(
    field: &str,
    items: &[P],
    f: impl Fn(&P) -> Result<T, ConvertError>,
) -> Result<Vec<T>, ConvertError> {
    items.iter().enumerate().map(|(i, p)| f(p).map_err(|e| e.within(&format!("{field}[{i}]")))).collect()
}

fn change(c: &pb::ChangeReport) -> Result<ChangeReport, ConvertError> {
    Ok(ChangeReport {
        at: at("at", c.at.as_ref())?,
        subject: c.subject.clone(),
        repo: c.repo.clone(),
        number: c.number,
        title: c.title.clone(),
        author: identity("author", &c.author)?,
        head_commit: commit("head_commit", &c.head_commit)?,
        final_commit: commit("final_commit", &c.final_commit)?,
        commits: each("commits", &c.commits, |m| {
            Ok(CommitLine {
                sha: commit("sha", &m.sha)?,
                author: identity("author", &m.author)?,
                committer: identity("committer", &m.committer)?,
                title: m.title.clone(),
                signature: parse("signature", &m.signature)?,
                trailers: m.trailers.clone(),
            })
        })?,
        commits_total: c.commits_total,
        commit_authors: each("commit_authors", &c.commit_authors, |a| identity("", a))?,
        merge: c
            .merge
            .as_ref()
            .map(|m| {
                Ok::<_, ConvertError>(MergeLine {
                    at: at("at", m.at.as_ref())?,
                    commit: commit("commit", &m.commit)?,
                    head_commit: commit("head_commit", &m.head_commit)?,
                    merged_by: m.merged_by.as_deref().map(|i| identity("merged_by", i)).transpose()?,
                    time: Timestamp(m.time_ms),
                    method: parse("method", &m.method)?,
                    vouched: vouch(m.vouched.as_ref())?,
                })
            })
            .transpose()
            .map_err(|e| e.within("merge"))?,
        reviews: each("reviews", &c.reviews, |r| {
            Ok(ReviewLine {
                at: at("at", r.at.as_ref())?,
                reviewer: identity("reviewer", &r.reviewer)?,
                verdict: parse("verdict", &r.verdict)?,
                commit: commit("commit", &r.commit)?,
                status: parse("status", &r.status)?,
                via: r.via.clone(),
                time: Timestamp(r.time_ms),
                also: r.also.iter().map(entry).collect(),
                vouched: vouch(r.vouched.as_ref())?,
            })
        })?,
        evidence: each("evidence", &c.evidence, |e| {
            Ok(EvidenceLine {
                at: at("at", e.at.as_ref())?,
                check: e.check.clone(),
                result: parse("result", &e.result)?,
                commit: commit("commit", &e.commit)?,
                at_final_commit: e.at_final_commit,
                verification: parse("verification", &e.verification)?,
                builder: e.builder.clone(),
                trusted_builder: e.trusted_builder,
                counts: e.counts,
                vouched: vouch(e.vouched.as_ref())?,
            })
        })?,
        sessions: each("sessions", &c.sessions, |s| {
            Ok(SessionLine {
                at: at("at", s.at.as_ref())?,
                subject: s.subject.clone(),
                tool: s.tool.clone(),
                model: s.model.clone(),
                summary: s.summary.clone(),
                via: s.via.clone(),
                model_approved_tiers: s
                    .model_approved_tiers
                    .as_ref()
                    .map(|t| each("model_approved_tiers", &t.tiers, |n| parse("", n)))
                    .transpose()?,
                also: s.also.iter().map(entry).collect(),
            })
        })?,
        exceptions: each("exceptions", &c.exceptions, |x| {
            Ok(ExceptionLine {
                at: at("at", x.at.as_ref())?,
                approver: identity("approver", &x.approver)?,
                reason: x.reason.clone(),
                not_after: Timestamp(x.not_after_ms),
                expired: x.expired,
            })
        })?,
        deployments: each("deployments", &c.deployments, |d| {
            Ok(DeploymentLine {
                at: at("at", d.at.as_ref())?,
                subject: d.subject.clone(),
                environment: d.environment.clone(),
                status: parse("status", &d.status)?,
                deployer: identity("deployer", &d.deployer)?,
                commit: commit("commit", &d.commit)?,
                time: Timestamp(d.time_ms),
                vouched: vouch(d.vouched.as_ref())?,
            })
        })?,
        incidents: each("incidents", &c.incidents, |i| {
            Ok(IncidentLine {
                at: at("at", i.at.as_ref())?,
                subject: i.subject.clone(),
                title: i.title.clone(),
                severity: i.severity.clone(),
                opened: Timestamp(i.opened_ms),
                resolved: i.resolved_ms.map(Timestamp),
                cause: i.cause.clone(),
                inferred: i.inferred,
                inference: i.inference.clone(),
            })
        })?,
        findings: c.findings.iter().map(finding).collect(),
        gates: each("gates", &c.gates, |g| {
            Ok(GateLine {
                at: at("at", g.at.as_ref())?,
                subject: g.subject.clone(),
                stage: g.stage.as_deref().map(|s| parse("stage", s)).transpose()?,
                decision: parse("decision", &g.decision)?,
                tier: g.tier.as_deref().map(|s| parse("tier", s)).transpose()?,
                policy: g.policy.clone(),
                policy_version: g.policy_version,
                rules: each("rules", &g.rules, |r| {
                    Ok(GateRuleLine {
                        rule: r.rule.clone(),
                        result: parse("result", &r.result)?,
                        exception: r.exception,
                    })
                })?,
                time: Timestamp(g.time_ms),
                vouched: vouch(g.vouched.as_ref())?,
            })
        })?,
        labels: c.labels.clone(),
    })
}
