//! `ledger gate`: evaluate the risk-tier policy (exit 0 allow, 1 deny, 2 error), record the
//! decision, or re-check a recorded one from the log alone.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use ledger_audit::gate::GateReport;
use ledger_audit::policy::tier_name;
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{Body, Decision, Link, Record, Rel, RuleResult, Stage};
use ledger_core::subject::Subject;
use ledger_core::types::Identity;
use serde::Serialize;

use super::governance::read_document;
use crate::cli::SignerArgs;
use crate::ctx::Ctx;
use crate::output::{json_out, line, ReceiptOut};

/// The actor of recorded gate decisions: the gate itself, vouched for by the signing key.
const GATE_ACTOR: &str = "ledger:gate";

/// `ledger gate SUBJECT --stage S [--policy FILE] [--record]`.
pub fn gate(
    ctx: &Ctx,
    subject: &str,
    stage: &str,
    policy: Option<&Path>,
    record: bool,
    signer: &SignerArgs,
) -> Result<ExitCode> {
    let stage: Stage = stage.parse().map_err(|e| anyhow!("--stage: {e}"))?;
    let document = policy.map(read_document).transpose()?;
    let key = record.then(|| ctx.signer_key(signer)).transpose()?;
    let mut ledger = ctx.backend()?;
    let (mut report, policy_entry) = ledger.gate(subject, stage, document.as_deref())?;
    let mut receipt = None;
    if let Some(key) = key {
        if policy_entry.is_none() {
            bail!(
                "--record needs the policy in the log, so that the decision can be re-checked from it: publish it first \
                 with `ledger policy publish FILE` (no policy record has digest {})",
                report.policy.digest
            );
        }
        let subject: Subject = report.subject.parse()?;
        let digest = report.policy.digest.parse()?;
        let mut links: Vec<Link> = vec![];
        for c in &report.changes {
            links.push(Link { rel: Rel::Change, target: c.parse()? });
        }
        if let Some(d) = &report.deployment {
            links.push(Link { rel: Rel::Deployment, target: d.parse()? });
        }
        let rec = Record {
            v: FORMAT_VERSION,
            time: report.evaluated_at,
            actor: Identity::new(GATE_ACTOR)?,
            links,
            body: Body::Gate(report.to_body(&subject, &digest)),
        };
        let r = ledger.sign_and_append(&rec, &key)?;
        report.recorded_at = Some(r.seq.0);
        receipt = Some(r);
    }
    if ctx.json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a GateReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            receipt: Option<ReceiptOut>,
        }
        json_out(&Out { report: &report, receipt: receipt.as_ref().map(ReceiptOut::new) })?;
    } else {
        print_report(&report)?;
        if let Some(r) = &receipt {
            line(format!("recorded as entry #{} ({})", r.seq.0, r.hash.to_hex()))?;
        }
    }
    Ok(exit(report.decision))
}

fn exit(d: Decision) -> ExitCode {
    match d {
        Decision::Allow => ExitCode::SUCCESS,
        Decision::Deny => ExitCode::from(1),
    }
}

/// The report as text: the decision, the tier and why, the policy, one line per rule.
pub fn print_report(r: &GateReport) -> Result<()> {
    let decision = match r.decision {
        Decision::Allow => "ALLOW",
        Decision::Deny => "DENY",
    };
    line(format!("gate {} at {}: {decision}", r.subject, r.stage.as_str()))?;
    line(format!("tier {} ({})", tier_name(r.tier), r.tier_reason))?;
    line(format!(
        "policy `{}` version {} ({}), tree size {}",
        r.policy.name, r.policy.version, r.policy.digest, r.tree_size
    ))?;
    if let Some(d) = &r.deployment {
        line(format!("deployment {d}"))?;
    }
    for l in &r.rules {
        let mut refs: Vec<String> = l.evidence.iter().map(|s| format!("#{s}")).collect();
        if let Some(x) = l.exception {
            refs.push(format!("exception #{x}"));
        }
        let refs = if refs.is_empty() { String::new() } else { format!(" [{}]", refs.join(", ")) };
        line(format!("  {:<6}  {:<27} {}{refs}", l.result.as_str(), l.rule, l.reason))?;
    }
    for f in &r.findings {
        line(format!("  note    {}: {}", f.code, f.message))?;
    }
    let failed = r.rules.iter().filter(|l| l.result == RuleResult::Fail).count();
    let waived = r.rules.iter().filter(|l| l.result == RuleResult::Waived).count();
    line(format!("{} rule(s): {failed} failed, {waived} waived", r.rules.len()))
}

/// `ledger gate --recheck ENTRY`: exit 0 when the recorded decision is reproduced exactly, 1
/// naming each difference.
pub fn recheck(ctx: &Ctx, entry: &str) -> Result<ExitCode> {
    let r = ctx.backend()?.recheck(entry)?;
    let same = r.differences.is_empty();
    if ctx.json {
        #[derive(Serialize)]
        struct Out<'a> {
            entry: u64,
            reproduced: bool,
            differences: &'a [String],
            report: &'a GateReport,
        }
        json_out(&Out { entry: r.seq, reproduced: same, differences: &r.differences, report: &r.fresh })?;
    } else if same {
        line(format!(
            "entry #{}: reproduced: {} at {} for {}, tier {}, policy `{}` version {}, as of tree size {}",
            r.seq,
            if r.fresh.decision == Decision::Allow { "allow" } else { "deny" },
            r.fresh.stage.as_str(),
            r.fresh.subject,
            tier_name(r.fresh.tier),
            r.fresh.policy.name,
            r.fresh.policy.version,
            r.fresh.tree_size
        ))?;
    } else {
        line(format!("entry #{}: NOT reproduced from the log:", r.seq))?;
        for d in &r.differences {
            line(format!("  {d}"))?;
        }
    }
    Ok(if same { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
