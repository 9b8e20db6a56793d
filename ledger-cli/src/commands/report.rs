//! `ledger report workpaper|metrics|change --html OUT`: the audit reports as self-contained
//! HTML pages (ledger-audit `html`). The data comes through the same functions as `sample`,
//! `controls test`, `metrics` and `why`, so a page and the command's JSON agree.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_audit::controls::outcomes;
use ledger_audit::html::{change_page, metrics_page, workpaper_page, Workpaper, WorkpaperItem};
use serde::Serialize;

use super::audit::{compute_metrics, draw, Drawn, ALGORITHM};
use super::controls::{parse_within, policy_document, run_controls};
use crate::cli::ReportCommand;
use crate::ctx::Ctx;
use crate::output::{line, out};

#[derive(Serialize)]
struct Written<'a> {
    report: &'a str,
    file: String,
    bytes: usize,
    #[serde(flatten)]
    summary: serde_json::Value,
}

/// Writes `html` to `path` (through a temporary file beside it, renamed into place, so a
/// reader never sees half a page) and reports what was written.
fn write_page(ctx: &Ctx, report: &str, path: &Path, html: &str, summary: serde_json::Value) -> Result<ExitCode> {
    let Some(name) = path.file_name() else { bail!("--html {}: not a file name", path.display()) };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, html).with_context(|| format!("--html {}: writing {}", path.display(), tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("--html {}: moving the page into place", path.display()));
    }
    let w = Written { report, file: path.display().to_string(), bytes: html.len(), summary };
    if ctx.json {
        out(&(serde_json::to_string_pretty(&w)? + "\n"))?;
    } else {
        line(format!("{} report written to {} ({} bytes)", report, w.file, w.bytes))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger report …`.
pub fn report(ctx: &Ctx, cmd: ReportCommand) -> Result<ExitCode> {
    match cmd {
        ReportCommand::Workpaper { scope, draw: crate::cli::DrawArgs { n, seed }, policy, within, html } => {
            let within_ms = parse_within(&within)?;
            let document = policy_document(policy.as_deref())?;
            let mut ledger = ctx.backend()?;
            let Drawn { checkpoint, tree_size, population, keys, records } =
                draw(ctx, &mut ledger, &scope, n, &seed, true)?;
            let sampled: std::collections::HashSet<&str> =
                keys.iter().map(|(_, i)| population.deployments[*i].subject.as_str()).collect();
            let tested = run_controls(ctx, &mut ledger, &records, &population, document.as_ref(), within_ms, &|s| {
                sampled.contains(s)
            })?;
            let mut items = vec![];
            for (key, i) in &keys {
                let item = &population.deployments[*i];
                let Some(why) = tested.why.get(&item.subject) else {
                    bail!("internal: no why report for sampled {}", item.subject)
                };
                items.push(WorkpaperItem {
                    key,
                    item,
                    outcomes: outcomes(item, Some(why), document.is_some(), tested.gates.get(&item.subject), within_ms),
                    why,
                });
            }
            let page = workpaper_page(&Workpaper {
                population: &population,
                controls: &tested.report,
                seed: &seed,
                algorithm: ALGORITHM,
                tree_size,
                checkpoint: checkpoint.as_deref(),
                items,
            });
            let summary = serde_json::json!({
                "period": population.period,
                "population": population.deployments.len(),
                "sampled": keys.len(),
                "seed": seed,
                "tree_size": tree_size,
                "controls_failed": tested.report.controls.iter().filter(|c| c.failed > 0).count(),
            });
            write_page(ctx, "workpaper", &html, &page, summary)
        }
        ReportCommand::Metrics { window, html } => {
            let mut ledger = ctx.backend()?;
            let m = compute_metrics(ctx, &mut ledger, &window, Some(window.by.as_deref().unwrap_or("tier")))?;
            let page = metrics_page(&m);
            let summary = serde_json::json!({
                "window": m.window,
                "by": m.by,
                "groups": m.groups.keys().collect::<Vec<_>>(),
                "deployments": m.all.deployments,
                "findings": m.findings.len(),
            });
            write_page(ctx, "metrics", &html, &page, summary)
        }
        ReportCommand::Change { subject, html } => {
            let why = ctx.backend()?.why(&subject, &[])?;
            if why.changes.is_empty() {
                let said: Vec<&str> = why.findings.iter().map(|f| f.message.as_str()).collect();
                bail!("{subject}: no recorded change to report ({}); no page written", said.join("; "));
            }
            let page = change_page(&why);
            let summary = serde_json::json!({
                "subject": why.subject,
                "changes": why.changes.iter().map(|c| c.subject.as_str()).collect::<Vec<_>>(),
            });
            write_page(ctx, "change", &html, &page, summary)
        }
    }
}
