//! `ledger ingest gitlab`: webhook deliveries saved as files → records, through
//! [`ledger_core::ingest_gitlab`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_core::entry::SignedRecord;
use ledger_core::ingest_gitlab::{self, Mapped};
use serde_json::json;

use crate::cmd::{signer_key, Ctx};
use crate::output::{json_out, line};
use crate::SignerArgs;

/// Largest payload read (far above what GitLab sends; records are far smaller).
const MAX_PAYLOAD: u64 = 25 * 1024 * 1024;

/// Runs the ingest.
pub fn run(ctx: &Ctx, event: Option<&str>, files: &[PathBuf], signer: &SignerArgs, as_json: bool) -> Result<ExitCode> {
    // Read and map every file before appending anything, so a bad file changes nothing.
    let mut mapped = Vec::with_capacity(files.len());
    for file in files {
        let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
        if meta.len() > MAX_PAYLOAD {
            bail!("{} is larger than a GitLab delivery can be ({} bytes)", file.display(), meta.len());
        }
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        // GitLab names the event in every payload (`object_kind`); --event may say it too.
        let ev = match event {
            Some(e) => ingest_gitlab::event_kind(e),
            None => ingest_gitlab::object_kind(&bytes).ok_or_else(|| {
                anyhow!("{}: no event name: the payload has no `object_kind`; pass --event NAME", file.display())
            })?,
        };
        let m = ingest_gitlab::map(&ev, &bytes).with_context(|| format!("{} ({ev} event)", file.display()))?;
        mapped.push((file, ev, ingest_gitlab::action(&bytes), m));
    }
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
        line(format!(
            "{} files: {appended} records appended, {present} already present, {skipped} skipped",
            files.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
