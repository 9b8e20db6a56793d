//! `ledger ingest provenance FILE --change SUBJECT`: an `.ai/provenance.json` file → a
//! `session` record, through [`ledger_ingest::provenance`].

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_core::chain::Receipt;
use ledger_core::record::{Body, Kind};
use ledger_core::subject::Subject;

use crate::backend::LogArgs;
use crate::cli::SignerArgs;
use crate::ctx::{read_input, Ctx};
use crate::output;

/// Largest provenance file read, in bytes (the record it makes is at most 64 KiB).
const MAX_FILE: u64 = 1024 * 1024;

/// Runs the ingest. Re-ingesting the same file appends nothing: the same session from the same
/// file (its content digest) linked to the same change is found, and its receipt returned.
pub fn run(ctx: &Ctx, file: &Path, change: &str, signer: &SignerArgs) -> Result<ExitCode> {
    let bytes = read_input(file, MAX_FILE, "a provenance file is a small JSON document")?;
    let change: Subject = change.parse().context("--change")?;
    let record =
        ledger_ingest::provenance::map(&bytes, &change, ctx.now()).with_context(|| file.display().to_string())?;
    let Body::Session(session) = &record.body else { bail!("a provenance file maps to a session record") };
    let mut ledger = ctx.backend()?;
    // The record's time may differ between runs (it defaults to now), so the record id cannot
    // find it: the session subject, source digest and change can.
    let same =
        LogArgs { subject: Some(session.subject().to_string()), kind: Some(Kind::Session), ..Default::default() };
    for v in ledger.log(&same)? {
        if let Body::Session(s) = &v.record.body {
            if s.source == session.source && v.record.links.iter().any(|l| l.target == change) {
                let record_id = ledger_core::entry::record_id(&v.entry.record.0);
                output::receipt(&Receipt { seq: v.seq, hash: v.hash, record_id, duplicate: true }, ctx.json)?;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let key = ctx.signer_key(signer)?;
    output::receipt(&ledger.sign_and_append(&record, &key)?, ctx.json)?;
    Ok(ExitCode::SUCCESS)
}
