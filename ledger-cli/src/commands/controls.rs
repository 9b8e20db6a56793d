//! `ledger controls test`: the change-management control tests over a period's population
//! (docs/AUDIT.md), each deployment's `why` report (and, with a policy, its deploy gate)
//! worked out on every core when the records are a local snapshot.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use ledger_audit::gate::GateReport;
use ledger_audit::population::Population;
use ledger_audit::snapshot::Snapshot;
use ledger_audit::why::WhyReport;
use ledger_core::record::Stage;

use super::audit::{build, Records, POPULATION_KINDS};
use crate::backend::Backend;
use crate::cli::PeriodArgs;
use crate::ctx::Ctx;
use crate::output::{line, out};

/// `48h`, `2d`, `90m`, `3600s` (or an ISO 8601 duration) in milliseconds.
pub fn parse_within(s: &str) -> Result<i64> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().map_err(|_| anyhow!("--within `{s}`: expected a number and a unit, e.g. 48h or 2d"))?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => bail!("--within `{s}`: unknown unit `{unit}`; use d, h, m or s"),
    };
    n.checked_mul(ms)
        .filter(|v| *v > 0)
        .ok_or_else(|| anyhow!("--within `{s}`: must be positive and not absurdly large"))
}

/// Reads and checks a `--policy` file; `None` without one.
pub(super) fn policy_document(policy: Option<&std::path::Path>) -> Result<Option<String>> {
    let document = policy.map(super::governance::read_document).transpose()?;
    if let Some(doc) = &document {
        ledger_audit::policy::Policy::parse(doc).map_err(|errs| {
            let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow!("--policy has {} error(s):\n{}", all.len(), all.join("\n"))
        })?;
    }
    Ok(document)
}

/// What the control tests found, with the `why` report and (with a policy) the deploy gate of
/// the deployments the caller kept.
pub(super) struct Tested {
    pub report: ledger_audit::controls::ControlsReport,
    pub why: BTreeMap<String, WhyReport>,
    pub gates: BTreeMap<String, ledger_audit::gate::GateReport>,
}

/// The reports kept are left to process exit, as the records are (see [`Records`]).
impl Drop for Tested {
    fn drop(&mut self) {
        std::mem::forget(std::mem::take(&mut self.why));
    }
}

/// Runs the control tests over `pop` (a progress bar on standard error for long runs),
/// keeping the `why` report (and gate) of the deployments `keep` names: the others are
/// reduced to their outcomes as soon as they are known.
pub(super) fn run_controls(
    ctx: &Ctx,
    ledger: &mut Backend,
    records: &Records,
    pop: &Population,
    document: Option<&String>,
    within_ms: i64,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Tested> {
    let began = std::time::Instant::now();
    let bar =
        crate::output::progress(ctx.json, pop.deployments.len() as u64, "controls {bar:40} {pos}/{len} deployments");
    let mut why = BTreeMap::new();
    let mut gates = BTreeMap::new();
    let each = match &records.snapshot {
        Some(snapshot) if snapshot.is_complete() => {
            let policy = match document {
                None => None,
                Some(doc) => Some((
                    ledger_audit::policy::Policy::parse(doc)
                        .map_err(|errs| anyhow!("--policy has {} error(s)", errs.len()))?,
                    ledger_core::record::document_digest(doc),
                )),
            };
            let policy = policy.as_ref().map(|(p, d)| (p, d));
            outcomes_in_parallel(snapshot, pop, within_ms, policy, keep, (&mut why, &mut gates), &bar)?
        }
        _ => {
            let mut each = Vec::with_capacity(pop.deployments.len());
            for d in &pop.deployments {
                let report = records.why(ledger, &d.subject)?;
                let gate = match document {
                    Some(doc) => Some(ledger.gate(&d.subject, ledger_core::record::Stage::Deploy, Some(doc))?.0),
                    None => None,
                };
                each.push(ledger_audit::controls::outcomes(
                    d,
                    Some(&report),
                    document.is_some(),
                    gate.as_ref(),
                    within_ms,
                ));
                if keep(&d.subject) {
                    why.insert(d.subject.clone(), report);
                    if let Some(g) = gate {
                        gates.insert(d.subject.clone(), g);
                    }
                }
                bar.inc(1);
            }
            each
        }
    };
    bar.finish_and_clear();
    let why_ms = began.elapsed().as_millis();
    let report = ledger_audit::controls::tally(pop, each, document.is_some());
    tracing::debug!(why_ms, tested_ms = began.elapsed().as_millis() - why_ms, "controls");
    Ok(Tested { report, why, gates })
}

/// Every deployment's control outcomes, from a complete snapshot on every core, with the
/// deploy gate under `policy` (parsed, with its document's digest) when one is given; the
/// `why` reports and gates of the deployments `keep` names go into `kept`.
fn outcomes_in_parallel(
    snapshot: &Snapshot,
    pop: &Population,
    within_ms: i64,
    policy: Option<(&ledger_audit::policy::Policy, &ledger_core::types::Digest)>,
    keep: &(dyn Fn(&str) -> bool + Sync),
    kept: (&mut BTreeMap<String, WhyReport>, &mut BTreeMap<String, GateReport>),
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Vec<(&'static str, ledger_audit::controls::Outcome)>>> {
    type Kept = (String, WhyReport, Option<GateReport>);
    type Part = (Vec<Vec<(&'static str, ledger_audit::controls::Outcome)>>, Vec<Kept>);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let per = pop.deployments.len().div_ceil(threads).max(1);
    let trust = ledger_audit::why::Trust::default();
    let parts: Vec<Result<Part>> = std::thread::scope(|s| {
        let handles: Vec<_> = pop
            .deployments
            .chunks(per)
            .map(|part| {
                let trust = &trust;
                s.spawn(move || {
                    let mut out: Part = (Vec::with_capacity(part.len()), vec![]);
                    for d in part {
                        let subject: ledger_core::subject::Subject = d.subject.parse()?;
                        let (report, gate) = match policy {
                            None => (snapshot.why(&subject, trust)?, None),
                            Some((p, digest)) => {
                                let (w, g) = snapshot.why_and_gate(&subject, trust, Stage::Deploy, p, digest)?;
                                (w, Some(g))
                            }
                        };
                        out.0.push(ledger_audit::controls::outcomes(
                            d,
                            Some(&report),
                            policy.is_some(),
                            gate.as_ref(),
                            within_ms,
                        ));
                        // A report not kept is freed here, on this thread, and its memory
                        // serves the next one.
                        if keep(&d.subject) {
                            out.1.push((d.subject.clone(), report, gate));
                        }
                        bar.inc(1);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a why thread panicked")))).collect()
    });
    let mut each = Vec::with_capacity(pop.deployments.len());
    for part in parts {
        let (outcomes, reports) = part?;
        each.extend(outcomes);
        for (subject, report, gate) in reports {
            if let Some(g) = gate {
                kept.1.insert(subject.clone(), g);
            }
            kept.0.insert(subject, report);
        }
    }
    Ok(each)
}

/// `ledger controls test --period P [--policy F] [--within 48h]`: exit 0 when every control
/// passes, 1 when any fails.
pub fn controls_cmd(ctx: &Ctx, scope: &PeriodArgs, policy: Option<&std::path::Path>, within: &str) -> Result<ExitCode> {
    let environment = scope.environment.as_str();
    let within_ms = parse_within(within)?;
    let document = policy_document(policy)?;
    let mut ledger = ctx.backend()?;
    let began = std::time::Instant::now();
    let records = Records::read(ctx, &mut ledger, POPULATION_KINDS, None, true)?;
    let read_ms = began.elapsed().as_millis();
    let pop = build(&records, scope)?;
    tracing::debug!(read_ms, population_ms = began.elapsed().as_millis() - read_ms, "controls input");
    let tested = run_controls(ctx, &mut ledger, &records, &pop, document.as_ref(), within_ms, &|_| false)?;
    let report = &tested.report;
    if ctx.json {
        out(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        line(format!("controls over {} deployment(s) to {environment} in {}", report.population, report.period))?;
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(["control", "passed", "failed", "n/a"]);
        for c in &report.controls {
            t.add_row([c.control.clone(), c.passed.to_string(), c.failed.to_string(), c.not_applicable.to_string()]);
        }
        line(t.to_string())?;
        for c in report.controls.iter().filter(|c| c.failed > 0) {
            line(format!("{} failing:", c.control))?;
            for f in &c.failing {
                line(format!("  {} (#{}): {}", f.subject, f.seq, f.reason))?;
            }
        }
    }
    Ok(if report.all_pass() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
