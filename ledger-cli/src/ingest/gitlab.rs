//! `ledger ingest gitlab`: webhook deliveries saved as files → records, through
//! [`ledger_ingest::gitlab`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_ingest::gitlab;

use super::{append_deliveries, read_payload, Delivery};
use crate::cli::SignerArgs;
use crate::ctx::Ctx;

/// `ledger ingest gitlab [--event E] FILE…`.
pub fn run(ctx: &Ctx, event: Option<&str>, files: &[PathBuf], signer: &SignerArgs) -> Result<ExitCode> {
    // A name given by hand is checked (a typo would otherwise skip every file).
    if let Some(e) = event.filter(|e| !gitlab::KNOWN_EVENTS.contains(&gitlab::event_kind(e).as_str())) {
        bail!(
            "--event `{e}` is not a GitLab webhook event; the ledger reads: {} (or their `X-Gitlab-Event` names)",
            gitlab::EVENTS.join(", ")
        );
    }
    let mut deliveries = Vec::with_capacity(files.len());
    for file in files {
        let bytes = read_payload(file)?;
        // GitLab names the event in every payload (`object_kind`); --event may say it too.
        let event = match event {
            Some(e) => gitlab::event_kind(e),
            None => gitlab::object_kind(&bytes).ok_or_else(|| {
                anyhow!("{}: no event name: the payload has no `object_kind`; pass --event NAME", file.display())
            })?,
        };
        let mapped = gitlab::map(&event, &bytes).with_context(|| format!("{} ({event} event)", file.display()))?;
        deliveries.push(Delivery { file, action: gitlab::action(&bytes), event, mapped });
    }
    append_deliveries(ctx, deliveries, signer)
}
