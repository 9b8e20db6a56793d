//! `ledger ingest incident`: PagerDuty and Opsgenie webhook payloads → `incident` records.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_audit::infer::InferRule;
use ledger_core::record::{Body, Kind, Link, Rel};
use ledger_core::subject::Subject;
use ledger_core::types::Timestamp;
use ledger_ingest::incident::{self, System};
use ledger_ingest::Mapped;

use super::{read_payload, sign_and_append, FileReport, IngestReport};
use crate::backend::{Backend, LogArgs};
use crate::cli::SignerArgs;
use crate::ctx::Ctx;
use crate::output::line;

/// `ledger ingest incident --system S FILE… [--caused-by SUBJECT…] [--inferred]`.
pub fn run(
    ctx: &Ctx,
    system: &str,
    files: &[PathBuf],
    caused_by: &[String],
    inferred: bool,
    infer: Option<&InferRule>,
    signer: &SignerArgs,
) -> Result<ExitCode> {
    let system = match system {
        "pagerduty" => System::PagerDuty,
        "opsgenie" => System::Opsgenie,
        other => bail!("unknown incident system `{other}` (pagerduty, opsgenie)"),
    };
    let rel = if inferred { Rel::CausedByInferred } else { Rel::CausedBy };
    let links: Vec<Link> = caused_by
        .iter()
        .map(|s| s.parse::<Subject>().map(|target| Link { rel, target }).with_context(|| format!("--caused-by {s}")))
        .collect::<Result<_>>()?;
    // `--caused-by A B FILE` reads B as a file: say how to give several causes.
    if let Some(f) = files.iter().find(|f| !f.exists() && f.to_str().is_some_and(|s| s.parse::<Subject>().is_ok())) {
        bail!(
            "`{}` is a subject, not a payload file: give each cause with its own --caused-by (--caused-by A --caused-by B)",
            f.display()
        );
    }
    let key = ctx.signer_key(signer)?;
    let mut ledger = ctx.backend()?;
    let mut report = IngestReport::default();
    let mut deployments: Option<Vec<ledger_audit::why::Gathered>> = None;
    for file in files {
        let bytes = read_payload(file)?;
        let first = incident::map(system, &bytes, None, links.clone()).with_context(|| file.display().to_string())?;
        let f = match opened_earlier(&mut ledger, &first)? {
            // A later event of a known incident keeps the opening time recorded first.
            Some(opened) => incident::map(system, &bytes, Some(opened), links.clone())?,
            None => first,
        };
        let f = match f {
            Mapped::Skipped(why) => FileReport::skipped(file, None, None, why),
            Mapped::Records(mut records) => {
                // No cause given or referenced: infer one from service and time.
                if let Some(rule) = infer.filter(|_| links.is_empty()) {
                    if deployments.is_none() {
                        let all = ledger.log(&LogArgs { kind: Some(Kind::Deployment), ..Default::default() })?;
                        deployments = Some(all.iter().map(|v| v.gathered()).collect());
                    }
                    let known = deployments.as_deref().unwrap_or_default();
                    for r in &mut records {
                        if !r.links.iter().any(|l| l.rel == Rel::CausedByInferred) {
                            ledger_audit::infer::infer_into(r, known, rule);
                        }
                    }
                }
                let receipts = sign_and_append(&mut ledger, &records, &key)?;
                FileReport::recorded(file, None, None, &records, &receipts)
            }
        };
        if !ctx.json {
            match &f.skipped {
                Some(why) => line(format!("{}: skipped: {why}", file.display()))?,
                None => {
                    for r in &f.records {
                        let what = if r.duplicate { "already recorded as" } else { "appended" };
                        line(format!("{}: {what} #{} entry {}", file.display(), r.seq, r.entry))?;
                    }
                }
            }
        }
        report.add(f);
    }
    report.print(ctx)
}

/// When the incident `mapped` opens was recorded as opened before, that time.
fn opened_earlier(ledger: &mut Backend, mapped: &Mapped) -> Result<Option<Timestamp>> {
    let Mapped::Records(r) = mapped else { return Ok(None) };
    let Some(Body::Incident(i)) = r.first().map(|r| &r.body) else { return Ok(None) };
    let earlier = ledger.log(&LogArgs {
        kind: Some(Kind::Incident),
        subject: Some(i.subject().to_string()),
        ..Default::default()
    })?;
    Ok(earlier.iter().find_map(|v| match &v.record.body {
        Body::Incident(x) => Some(x.opened),
        _ => None,
    }))
}
