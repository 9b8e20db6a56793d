//! `ledger ingest github`: webhook deliveries saved as files → records, through
//! [`ledger_ingest::github`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_ingest::github;

use super::{append_deliveries, read_payload, Delivery};
use crate::cli::SignerArgs;
use crate::ctx::Ctx;

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

/// `ledger ingest github [--event E] FILE…`.
pub fn run(ctx: &Ctx, event: Option<&str>, files: &[PathBuf], signer: &SignerArgs) -> Result<ExitCode> {
    // A name given by hand is checked (a typo would otherwise skip every file quietly); a real
    // GitHub event the ledger does not read is skipped, file by file, with the reason.
    if let Some(e) = event.filter(|e| !github::KNOWN_EVENTS.contains(e)) {
        bail!("--event `{e}` is not a GitHub webhook event; the ledger reads: {}", github::EVENTS.join(", "));
    }
    let mut deliveries = Vec::with_capacity(files.len());
    for file in files {
        let event = match event {
            Some(e) => e.to_string(),
            None => event_from_headers(file)?.ok_or_else(|| {
                anyhow!(
                    "{}: no event name; pass --event NAME (or keep the delivery's headers in <name>-header.txt)",
                    file.display()
                )
            })?,
        };
        let bytes = read_payload(file)?;
        let mapped = github::map(&event, &bytes).with_context(|| format!("{} ({event} event)", file.display()))?;
        deliveries.push(Delivery { file, action: github::action(&bytes), event, mapped });
    }
    append_deliveries(ctx, deliveries, signer)
}
