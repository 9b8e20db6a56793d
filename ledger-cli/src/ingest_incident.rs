//! `ledger ingest incident`: PagerDuty and Opsgenie webhook payloads → `incident` records.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ledger_core::entry::SignedRecord;
use ledger_core::record::{Body, Kind, Link, Rel};
use ledger_core::subject::Subject;
use ledger_ingest::incident::{self, System};
use ledger_ingest::Mapped;
use serde_json::json;

use crate::backend::LogArgs;
use crate::cmd::{signer_key, Ctx};
use crate::output::{json_out, line};
use crate::SignerArgs;

/// Runs the ingest.
pub fn run(
    ctx: &Ctx,
    system: &str,
    files: &[PathBuf],
    caused_by: &[String],
    inferred: bool,
    signer: &SignerArgs,
    as_json: bool,
) -> Result<ExitCode> {
    let system = match system {
        "pagerduty" => System::PagerDuty,
        "opsgenie" => System::Opsgenie,
        other => anyhow::bail!("unknown incident system `{other}` (pagerduty, opsgenie)"),
    };
    let rel = if inferred { Rel::CausedByInferred } else { Rel::CausedBy };
    let links: Vec<Link> = caused_by
        .iter()
        .map(|s| s.parse::<Subject>().map(|target| Link { rel, target }).with_context(|| format!("--caused-by {s}")))
        .collect::<Result<_>>()?;
    let key = signer_key(&ctx.db, signer)?;
    let mut ledger = ctx.backend()?;
    let mut out = vec![];
    let (mut appended, mut present, mut skipped) = (0u64, 0u64, 0u64);
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let first = incident::map(system, &bytes, None, links.clone()).with_context(|| file.display().to_string())?;
        let mapped = match &first {
            Mapped::Records(r) => match r.first().map(|r| &r.body) {
                // A later event of a known incident keeps the opening time recorded first.
                Some(Body::Incident(i)) => {
                    let earlier = ledger.log(&LogArgs {
                        kind: Some(Kind::Incident),
                        subject: Some(i.subject().to_string()),
                        ..Default::default()
                    })?;
                    let opened = earlier.iter().find_map(|v| match &v.record.body {
                        Body::Incident(x) => Some(x.opened),
                        _ => None,
                    });
                    match opened {
                        Some(o) => incident::map(system, &bytes, Some(o), links.clone())?,
                        None => first,
                    }
                }
                _ => first,
            },
            Mapped::Skipped(_) => first,
        };
        match mapped {
            Mapped::Skipped(why) => {
                skipped += 1;
                if !as_json {
                    line(format!("{}: skipped: {why}", file.display()))?;
                }
                out.push(json!({ "file": file, "skipped": why, "records": [] }));
            }
            Mapped::Records(records) => {
                let signed = records.iter().map(|r| SignedRecord::sign(r, &key)).collect::<Result<Vec<_>, _>>()?;
                let receipts = ledger.append(&signed)?;
                let recs: Vec<_> = receipts
                    .iter()
                    .map(|r| {
                        if r.duplicate {
                            present += 1;
                        } else {
                            appended += 1;
                        }
                        json!({ "seq": r.seq.0, "entry": r.hash.to_hex(), "kind": "incident", "duplicate": r.duplicate })
                    })
                    .collect();
                if !as_json {
                    for r in &receipts {
                        let what = if r.duplicate { "already recorded as" } else { "appended" };
                        line(format!("{}: {what} #{} entry {}", file.display(), r.seq, r.hash))?;
                    }
                }
                out.push(json!({ "file": file, "skipped": null, "records": recs }));
            }
        }
    }
    if as_json {
        json_out(&json!({ "files": out, "appended": appended, "already_present": present, "skipped": skipped }))?;
    }
    Ok(ExitCode::SUCCESS)
}
