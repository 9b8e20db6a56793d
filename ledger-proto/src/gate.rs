//! The gate decision on the wire: [`GateReport`] ↔ [`pb::GateReport`], field for field, with
//! closed vocabularies as their JSON names and times as milliseconds (as in `why`).

use ledger_audit::gate::{GateReport, PolicyRef, RuleLine};
use ledger_core::types::Timestamp;

use crate::convert::ConvertError;
use crate::v1 as pb;
use crate::why::{each, finding, finding_pb, name, parse};

impl From<&GateReport> for pb::GateReport {
    fn from(r: &GateReport) -> Self {
        pb::GateReport {
            subject: r.subject.clone(),
            stage: name(&r.stage),
            decision: name(&r.decision),
            tier: name(&r.tier),
            tier_reason: r.tier_reason.clone(),
            policy: Some(pb::GatePolicyRef {
                name: r.policy.name.clone(),
                version: r.policy.version,
                digest: r.policy.digest.clone(),
            }),
            rules: r
                .rules
                .iter()
                .map(|l| pb::GateRule {
                    rule: l.rule.clone(),
                    result: name(&l.result),
                    reason: l.reason.clone(),
                    evidence: l.evidence.clone(),
                    exception: l.exception,
                })
                .collect(),
            changes: r.changes.clone(),
            deployment: r.deployment.clone(),
            findings: r.findings.iter().map(finding_pb).collect(),
            evaluated_at_ms: r.evaluated_at.0,
            tree_size: r.tree_size,
            inputs: r.inputs.clone(),
            recorded_at: r.recorded_at,
        }
    }
}

impl TryFrom<&pb::GateReport> for GateReport {
    type Error = ConvertError;

    fn try_from(r: &pb::GateReport) -> Result<Self, ConvertError> {
        let policy = r.policy.as_ref().ok_or_else(|| ConvertError::new("policy", "missing"))?;
        Ok(GateReport {
            subject: r.subject.clone(),
            stage: parse("stage", &r.stage)?,
            decision: parse("decision", &r.decision)?,
            tier: parse("tier", &r.tier)?,
            tier_reason: r.tier_reason.clone(),
            policy: PolicyRef { name: policy.name.clone(), version: policy.version, digest: policy.digest.clone() },
            rules: each("rules", &r.rules, |l| {
                Ok(RuleLine {
                    rule: l.rule.clone(),
                    result: parse("result", &l.result)?,
                    reason: l.reason.clone(),
                    evidence: l.evidence.clone(),
                    exception: l.exception,
                })
            })?,
            changes: r.changes.clone(),
            deployment: r.deployment.clone(),
            findings: r.findings.iter().map(finding).collect(),
            evaluated_at: Timestamp(r.evaluated_at_ms),
            tree_size: r.tree_size,
            inputs: r.inputs.clone(),
            recorded_at: r.recorded_at,
        })
    }
}
