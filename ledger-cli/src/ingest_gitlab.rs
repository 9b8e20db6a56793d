//! `ledger ingest gitlab`: webhook deliveries saved as files → records, through
//! [`ledger_ingest::gitlab`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_ingest::gitlab;

use crate::cmd::Ctx;
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
            Some(e) => gitlab::event_kind(e),
            None => gitlab::object_kind(&bytes).ok_or_else(|| {
                anyhow!("{}: no event name: the payload has no `object_kind`; pass --event NAME", file.display())
            })?,
        };
        let m = gitlab::map(&ev, &bytes).with_context(|| format!("{} ({ev} event)", file.display()))?;
        mapped.push((file, ev, gitlab::action(&bytes), m));
    }
    crate::ingest_github::append_and_report(ctx, mapped, signer, as_json)
}
