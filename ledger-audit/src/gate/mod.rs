//! The gate: "may this change merge / may this deployment go out?" under a risk-tier policy,
//! judged from what the ledger holds. Pure: the caller gathers the records (as of a tree
//! size) and names the policy; [`evaluate`] classifies the tier, evaluates every rule of the
//! tier at the stage, applies exceptions and decides. The report names the entries each
//! result rests on, and converts to a `gate` record ([`GateReport::to_body`]) that
//! [`recheck`] evaluates again from the log alone.
//!
//! A deployment ships one or more changes: its tier is the highest of theirs, and a rule fails
//! when it fails for any of them.

mod facts;
mod rules;

use std::collections::BTreeMap;

use ledger_core::record::{Decision, Gate, RuleOutcome, RuleResult, Stage};
use ledger_core::subject::Subject;
use ledger_core::types::{Digest, Tier, Timestamp, Token};
use serde::{Deserialize, Serialize};

use crate::policy::{tier_name, Policy};
use crate::why::{self, Finding, Gathered, Trust};
use facts::ChangeFacts;

/// The policy a decision used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// SHA-256 of the document, `sha256:<hex>`.
    pub digest: String,
}

/// One rule's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLine {
    /// Rule id (docs/POLICY.md).
    pub rule: String,
    /// `pass`, `fail` or `waived`.
    pub result: RuleResult,
    /// Why, in words. A reason starting `unknown:` means the evidence the rule needs is not
    /// recorded.
    pub reason: String,
    /// Sequence numbers of the entries the result rests on, ascending.
    pub evidence: Vec<u64>,
    /// For `waived`: the exception entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<u64>,
}

/// A gate decision, as `ledger gate --json` prints it (docs/POLICY.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateReport {
    /// What was gated, canonical.
    pub subject: String,
    /// `merge` or `deploy`.
    pub stage: Stage,
    /// `allow` when no rule failed, else `deny`.
    pub decision: Decision,
    /// The tier the change (or the highest of the deployment's changes) is in.
    pub tier: Tier,
    /// Why that tier: the classification rules that matched, or the default.
    pub tier_reason: String,
    /// The policy used.
    pub policy: PolicyRef,
    /// Every rule of the tier at the stage, in docs/POLICY.md order.
    pub rules: Vec<RuleLine>,
    /// The changes judged.
    pub changes: Vec<String>,
    /// The deployment judged, at the deploy stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// What an auditor should know besides the rules: exceptions refused or expired, a tier
    /// that could not use paths.
    pub findings: Vec<Finding>,
    /// The evaluation time (exceptions and model approvals expire against it).
    pub evaluated_at: Timestamp,
    /// The tree size the inputs were read at.
    pub tree_size: u64,
    /// Every entry considered, ascending.
    pub inputs: Vec<u64>,
    /// For a decision read back from a `gate` record: its entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<u64>,
}

/// What to evaluate. `G` is how the records are held: owned, or borrowed from a snapshot.
pub struct GateInput<'a, G = Gathered> {
    /// The subject gated (a change, a commit or a deployment).
    pub subject: &'a Subject,
    /// The stage.
    pub stage: Stage,
    /// The policy.
    pub policy: &'a Policy,
    /// Its document's digest ([`ledger_core::record::document_digest`]).
    pub policy_digest: &'a Digest,
    /// The records: everything related to the subject, `model` and `codeowners` records,
    /// all below `tree_size`.
    pub gathered: &'a [G],
    /// The evaluation time.
    pub now: Timestamp,
    /// Whose attestations count as evidence.
    pub trust: &'a Trust,
    /// The tree size the records were read at.
    pub tree_size: u64,
}

/// Evaluates the policy for `input.subject` at `input.stage`.
pub fn evaluate<G: std::borrow::Borrow<Gathered>>(input: &GateInput<'_, G>) -> GateReport {
    let all = facts::by_seq(input.gathered);
    let why = why::analyze(input.subject, input.gathered, input.now, input.trust);
    let changes: Vec<ChangeFacts<'_>> = why.changes.iter().filter_map(|r| facts::change_facts(r, &all)).collect();
    let deployment = match input.stage {
        Stage::Deploy => facts::deployment_facts(input.subject, &changes, &all),
        Stage::Merge => None,
    };
    let mut findings = vec![];

    // The tier: the highest of the changes'.
    let mut tier = input.policy.default_tier;
    let mut tier_reasons = vec![];
    for c in &changes {
        let risk_areas = c.risk_areas();
        let cls = input.policy.classify(&crate::policy::ClassifyInput {
            repo: &c.report.repo,
            paths: c.paths.as_deref(),
            labels: &c.labels,
            risk_areas: &risk_areas,
        });
        tier = if tier_reasons.is_empty() { cls.tier } else { tier.max(cls.tier) };
        let why_tier = if cls.matched.is_empty() {
            format!("{}: no classification rule matched, default tier", c.report.subject)
        } else {
            let rules: Vec<String> = cls.matched.iter().map(|i| format!("#{}", i + 1)).collect();
            format!("{}: {} by [[classify]] {}", c.report.subject, tier_name(cls.tier), rules.join(", "))
        };
        tier_reasons.push(why_tier);
        if !cls.undecided.is_empty() {
            let rules: Vec<String> = cls.undecided.iter().map(|i| format!("#{}", i + 1)).collect();
            findings.push(finding(
                "tier_paths_unknown",
                format!(
                    "{}: the touched paths are not recorded, so [[classify]] {} (by path) could not be applied",
                    c.report.subject,
                    rules.join(", ")
                ),
            ));
        }
    }
    if changes.is_empty() {
        tier_reasons.push(format!("no change record covers {}: default tier", input.subject));
    }
    let tier_rules = input.policy.tier(tier);
    let models = facts::models(&all);
    let ctx = rules::Ctx {
        policy: input.policy,
        tier,
        rules: &tier_rules,
        deployment: deployment.as_ref(),
        models: &models,
        all: &all,
        now: input.now,
    };

    let exceptions = usable_exceptions(input, &changes, deployment.as_ref(), &all, &mut findings);
    let mut lines = vec![];
    for rule in tier_rules.rules(input.stage) {
        let mut line = judge(rule, &changes, &ctx, input.subject);
        if line.result == RuleResult::Fail {
            if let Some((seq, x)) = exceptions.iter().find(|(_, x)| x.rule.as_deref().is_none_or(|r| r == rule)) {
                line.result = RuleResult::Waived;
                line.exception = Some(*seq);
                line.reason = format!(
                    "{} — waived by {} until {}: {}",
                    line.reason,
                    x.approver,
                    x.not_after.to_rfc3339(),
                    x.reason
                );
            }
        }
        lines.push(line);
    }
    let decision = if lines.iter().any(|l| l.result == RuleResult::Fail) { Decision::Deny } else { Decision::Allow };
    GateReport {
        subject: input.subject.to_string(),
        stage: input.stage,
        decision,
        tier,
        tier_reason: tier_reasons.join("; "),
        policy: PolicyRef {
            name: input.policy.name.clone(),
            version: input.policy.version,
            digest: input.policy_digest.to_string(),
        },
        rules: lines,
        changes: changes.iter().map(|c| c.report.subject.clone()).collect(),
        deployment: deployment.map(|d| d.subject),
        findings,
        evaluated_at: input.now,
        tree_size: input.tree_size,
        inputs: all.keys().map(|s| s.0).collect(),
        recorded_at: None,
    }
}

pub(crate) fn finding(code: &str, message: String) -> Finding {
    Finding { code: code.into(), message }
}

/// One rule over every change: it fails when it fails for any (each failure named by its
/// change when there are several).
fn judge(rule: &str, changes: &[ChangeFacts<'_>], ctx: &rules::Ctx<'_>, subject: &Subject) -> RuleLine {
    let mut evidence = vec![];
    let mut failed = vec![];
    let mut passed = vec![];
    if rule == "release" {
        // A property of the deployment, not of each change.
        let o = rules::release(ctx);
        return line(rule, o.pass, o.reason, o.evidence);
    }
    if changes.is_empty() {
        return line(rule, false, format!("unknown: no change record covers {subject}"), vec![]);
    }
    for c in changes {
        let o = rules::evaluate(rule, c, ctx);
        evidence.extend(o.evidence);
        let reason = if changes.len() > 1 { format!("{}: {}", c.report.subject, o.reason) } else { o.reason };
        if o.pass {
            passed.push(reason);
        } else {
            failed.push(reason);
        }
    }
    let ok = failed.is_empty();
    line(rule, ok, if ok { passed } else { failed }.join("; "), evidence)
}

fn line(rule: &str, pass: bool, reason: String, mut evidence: Vec<u64>) -> RuleLine {
    evidence.sort_unstable();
    evidence.dedup();
    RuleLine {
        rule: rule.into(),
        result: if pass { RuleResult::Pass } else { RuleResult::Fail },
        reason,
        evidence,
        exception: None,
    }
}

/// The unexpired exceptions in scope whose approver is not an author of a gated change.
/// Expired ones and ones approved by an author become findings.
fn usable_exceptions<'a, G>(
    input: &GateInput<'_, G>,
    changes: &[ChangeFacts<'_>],
    deployment: Option<&facts::DeploymentFacts>,
    all: &BTreeMap<ledger_core::types::Seq, &'a Gathered>,
    findings: &mut Vec<Finding>,
) -> Vec<(u64, &'a ledger_core::record::Exception)> {
    let mut scopes: Vec<String> = vec![input.subject.to_string()];
    for c in changes {
        scopes.push(c.report.subject.clone());
        scopes.push(format!("git:{}@{}", c.report.repo, c.report.final_commit));
        scopes.push(format!("git:{}", c.report.final_commit));
    }
    scopes.extend(deployment.map(|d| d.subject.clone()));
    let mut out = vec![];
    for (seq, x) in facts::exceptions(all) {
        if !scopes.contains(&x.scope.to_string()) {
            continue;
        }
        let rule = x.rule.as_deref().unwrap_or("every rule");
        if x.not_after <= input.now {
            findings.push(finding(
                "exception_expired",
                format!(
                    "exception entry {seq} ({rule}, approved by {}) expired at {}: ignored; review due",
                    x.approver,
                    x.not_after.to_rfc3339()
                ),
            ));
            continue;
        }
        if let Some(c) = changes.iter().find(|c| c.authors().iter().any(|a| a.same_person(&x.approver))) {
            findings.push(finding(
                "exception_by_author",
                format!(
                    "exception entry {seq} ({rule}) is approved by {}, an author of {}: refused",
                    x.approver, c.report.subject
                ),
            ));
            continue;
        }
        out.push((seq, x));
    }
    out
}

impl GateReport {
    /// The `gate` record body of this decision.
    pub fn to_body(&self, subject: &Subject, policy_digest: &Digest) -> Gate {
        Gate {
            policy: policy_digest.clone(),
            subject: subject.clone(),
            decision: self.decision,
            reasons: self
                .rules
                .iter()
                .filter(|r| r.result != RuleResult::Pass)
                .map(|r| format!("{} {}: {}", r.rule, r.result.as_str(), r.reason))
                .collect(),
            policy_name: Token::new(self.policy.name.clone()).ok(),
            policy_version: Some(self.policy.version),
            stage: Some(self.stage),
            tier: Some(self.tier),
            tree_size: Some(self.tree_size),
            inputs: self.inputs.clone(),
            rules: self
                .rules
                .iter()
                .map(|r| RuleOutcome {
                    rule: r.rule.clone(),
                    result: r.result,
                    reason: r.reason.clone(),
                    evidence: r.evidence.clone(),
                    exception: r.exception,
                })
                .collect(),
        }
    }
}

/// How a recorded decision compares with a fresh evaluation of the same inputs: empty when
/// they agree exactly, else one line per difference (naming the rule where one differs).
pub fn recheck(recorded: &Gate, fresh: &GateReport) -> Vec<String> {
    let mut out = vec![];
    if recorded.decision != fresh.decision {
        out.push(
            format!("decision: recorded {:?}, re-evaluated {:?}", recorded.decision, fresh.decision).to_lowercase(),
        );
    }
    if recorded.tier != Some(fresh.tier) {
        out.push(format!("tier: recorded {:?}, re-evaluated {}", recorded.tier, tier_name(fresh.tier)));
    }
    if recorded.inputs != fresh.inputs {
        out.push(format!(
            "inputs: recorded {} entries, the log as of tree size {} gives {}",
            recorded.inputs.len(),
            fresh.tree_size,
            fresh.inputs.len()
        ));
    }
    let fresh_rules: BTreeMap<&str, &RuleLine> = fresh.rules.iter().map(|r| (r.rule.as_str(), r)).collect();
    for r in &recorded.rules {
        match fresh_rules.get(r.rule.as_str()) {
            None => out.push(format!("rule {}: recorded, but not evaluated now", r.rule)),
            Some(f) if f.result != r.result => out.push(format!(
                "rule {}: recorded {}, re-evaluated {} ({})",
                r.rule,
                r.result.as_str(),
                f.result.as_str(),
                f.reason
            )),
            Some(f) if f.evidence != r.evidence || f.exception != r.exception || f.reason != r.reason => {
                out.push(format!("rule {}: same result, different evidence or reason", r.rule))
            }
            Some(_) => {}
        }
    }
    for f in &fresh.rules {
        if !recorded.rules.iter().any(|r| r.rule == f.rule) {
            out.push(format!("rule {}: evaluated now, not in the recorded decision", f.rule));
        }
    }
    out
}
