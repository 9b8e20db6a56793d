//! `ledger ingest github`: webhook deliveries saved as files → records, through
//! [`ledger_ingest::github`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_core::entry::SignedRecord;
use ledger_ingest::{github, Mapped};
use serde_json::json;

use crate::cmd::{signer_key, Ctx};
use crate::output::{json_out, line};
use crate::SignerArgs;

/// Largest payload read (GitHub caps deliveries at 25 MB; records are far smaller).
const MAX_PAYLOAD: u64 = 25 * 1024 * 1024;

/// The event name from a captured delivery's header file `<stem>-header.txt`
/// (`x-github-event <TAB> pull_request`), if there is one.
fn event_from_headers(file: &Path) -> Result<Option<String>> {
    let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else { return Ok(None) };
    let headers = file.with_file_name(format!("{stem}-header.txt"));
    if !headers.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&headers).with_context(|| format!("reading {}", headers.display()))?;
    Ok(text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        let key = parts.next()?;
        key.eq_ignore_ascii_case("x-github-event").then(|| parts.next().map(str::to_string)).flatten()
    }))
}

/// Runs the ingest.
pub fn run(ctx: &Ctx, event: Option<&str>, files: &[PathBuf], signer: &SignerArgs, as_json: bool) -> Result<ExitCode> {
    // Read and map every file before appending anything, so a bad file changes nothing.
    let mut mapped = Vec::with_capacity(files.len());
    for file in files {
        let ev = match event {
            Some(e) => e.to_string(),
            None => event_from_headers(file)?.ok_or_else(|| {
                anyhow!(
                    "{}: no event name; pass --event NAME (or keep the delivery's headers in <name>-header.txt)",
                    file.display()
                )
            })?,
        };
        let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
        if meta.len() > MAX_PAYLOAD {
            bail!("{} is larger than a GitHub delivery can be ({} bytes)", file.display(), meta.len());
        }
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let m = github::map(&ev, &bytes).with_context(|| format!("{} ({ev} event)", file.display()))?;
        mapped.push((file, ev, github::action(&bytes), m));
    }
    append_and_report(ctx, mapped, signer, as_json)
}

/// One mapped delivery: its file, event name, action and what it maps to.
pub type MappedFile<'a> = (&'a PathBuf, String, Option<String>, Mapped);

/// Signs and appends mapped deliveries file by file and reports per file, in the shape
/// `{files: [{file, event, action, appended, already_present, skipped, records}], appended,
/// already_present, skipped}` with `--json`. Shared by the GitHub and GitLab ingests.
pub fn append_and_report(
    ctx: &Ctx,
    mapped: Vec<MappedFile<'_>>,
    signer: &SignerArgs,
    as_json: bool,
) -> Result<ExitCode> {
    let files = mapped.len();
    let key = signer_key(&ctx.db, signer)?;
    let mut ledger = ctx.backend()?;
    let (mut appended, mut present, mut skipped) = (0u64, 0u64, 0u64);
    let mut out = vec![];
    for (file, ev, action, m) in mapped {
        let (records, skip) = match m {
            Mapped::Records(r) => (r, None),
            Mapped::Skipped(why) => (vec![], Some(why)),
        };
        let signed = records
            .iter()
            .map(|r| SignedRecord::sign(r, &key).with_context(|| format!("{}: {} record", file.display(), r.kind())))
            .collect::<Result<Vec<_>>>()?;
        let receipts = if signed.is_empty() { vec![] } else { ledger.append(&signed)? };
        let (mut a, mut p) = (0u64, 0u64);
        let recs: Vec<serde_json::Value> = receipts
            .iter()
            .zip(&records)
            .map(|(r, rec)| {
                if r.duplicate {
                    p += 1;
                } else {
                    a += 1;
                }
                json!({ "seq": r.seq.0, "entry": r.hash.to_hex(), "kind": rec.kind().as_str(), "duplicate": r.duplicate })
            })
            .collect();
        appended += a;
        present += p;
        if skip.is_some() {
            skipped += 1;
        }
        if !as_json {
            match &skip {
                Some(why) => line(format!("{}: skipped: {why}", file.display()))?,
                None => line(format!(
                    "{}: {ev}{}: {a} appended, {p} already present ({})",
                    file.display(),
                    action.as_deref().map(|x| format!(" ({x})")).unwrap_or_default(),
                    records.iter().map(|r| r.kind().as_str()).collect::<Vec<_>>().join(", ")
                ))?,
            }
        }
        out.push(json!({
            "file": file, "event": ev, "action": action, "appended": a, "already_present": p,
            "skipped": skip, "records": recs,
        }));
    }
    if as_json {
        json_out(&json!({ "files": out, "appended": appended, "already_present": present, "skipped": skipped }))?;
    } else {
        line(format!("{files} files: {appended} records appended, {present} already present, {skipped} skipped"))?;
    }
    Ok(ExitCode::SUCCESS)
}
