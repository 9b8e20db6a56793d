//! `ledger ingest …`: the front ends that read outside data (files, a git repository) and hand
//! it to `ledger_ingest` to map, then sign and append the records. Every file is read and
//! mapped before anything is appended, so a bad file changes nothing.
//!
//! The report of a multi-file ingest has one shape for every source ([`IngestReport`]).

mod api_client;
pub mod attestation;
mod backfill;
pub mod git;
pub mod github;
pub mod github_api;
pub mod gitlab;
pub mod gitlab_api;
pub mod incident;
pub mod provenance;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use ledger_core::chain::Receipt;
use ledger_core::entry::SignedRecord;
use ledger_core::record::Record;
use ledger_ingest::{Mapped, MAX_PAYLOAD_BYTES};
use serde::Serialize;

use crate::backend::Backend;
use crate::cli::SignerArgs;
use crate::ctx::{read_input, Ctx};
use crate::output::{json_out, line, ReceiptOut};

/// Reads a payload file, refusing one larger than any delivery can be.
///
/// # Errors
/// The file cannot be read, or is over [`MAX_PAYLOAD_BYTES`].
pub fn read_payload(file: &Path) -> Result<Vec<u8>> {
    read_input(file, MAX_PAYLOAD_BYTES as u64, "no webhook delivery or attestation is that large")
}

/// What one input file gave.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The delivery's action, when it has one (`opened`, `submitted`…).
    pub action: Option<String>,
    /// Records that were already in the ledger.
    pub already_present: u64,
    /// Records appended.
    pub appended: u64,
    /// The event name, for webhook deliveries.
    pub event: Option<String>,
    /// The file.
    pub file: PathBuf,
    /// One receipt per record, in order.
    pub records: Vec<ReceiptOut>,
    /// Why nothing was recorded, when the file maps to nothing.
    pub skipped: Option<String>,
}

impl FileReport {
    /// A file that maps to nothing.
    pub fn skipped(file: &Path, event: Option<String>, action: Option<String>, why: String) -> Self {
        FileReport {
            action,
            already_present: 0,
            appended: 0,
            event,
            file: file.to_path_buf(),
            records: vec![],
            skipped: Some(why),
        }
    }

    /// A file whose records got `receipts` (one per record, in order).
    pub fn recorded(
        file: &Path,
        event: Option<String>,
        action: Option<String>,
        records: &[Record],
        receipts: &[Receipt],
    ) -> Self {
        let present = receipts.iter().filter(|r| r.duplicate).count() as u64;
        FileReport {
            action,
            already_present: present,
            appended: receipts.len() as u64 - present,
            event,
            file: file.to_path_buf(),
            records: receipts.iter().zip(records).map(|(r, rec)| ReceiptOut::of_kind(r, rec.kind().as_str())).collect(),
            skipped: None,
        }
    }
}

/// What an ingest of several files did: each file, and the totals.
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    /// Records that were already in the ledger.
    pub already_present: u64,
    /// Records appended.
    pub appended: u64,
    /// Per file, in the order given.
    pub files: Vec<FileReport>,
    /// Files that mapped to nothing.
    pub skipped: u64,
}

impl IngestReport {
    /// Adds a file's report to the totals.
    pub fn add(&mut self, f: FileReport) {
        self.appended += f.appended;
        self.already_present += f.already_present;
        self.skipped += u64::from(f.skipped.is_some());
        self.files.push(f);
    }

    /// Prints the report as JSON, or (as text) the totals line.
    pub fn print(&self, ctx: &Ctx) -> Result<ExitCode> {
        if ctx.json {
            json_out(self)?;
        } else {
            line(format!(
                "{} files: {} records appended, {} already present, {} skipped",
                self.files.len(),
                self.appended,
                self.already_present,
                self.skipped
            ))?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Signs `records` with `key` and appends them (one atomic batch locally).
///
/// # Errors
/// A record is refused by the signer's checks or by the ledger.
pub fn sign_and_append(ledger: &mut Backend, records: &[Record], key: &SigningKey) -> Result<Vec<Receipt>> {
    let signed = records
        .iter()
        .map(|r| SignedRecord::sign(r, key).with_context(|| format!("{} record", r.kind())))
        .collect::<Result<Vec<_>>>()?;
    if signed.is_empty() {
        return Ok(vec![]);
    }
    ledger.append(&signed)
}

/// One mapped webhook delivery: its file, event name, action and what it maps to.
pub struct Delivery<'a> {
    /// The file it was read from.
    pub file: &'a Path,
    /// The event name.
    pub event: String,
    /// The delivery's action, if any.
    pub action: Option<String>,
    /// What it maps to.
    pub mapped: Mapped,
}

/// Signs and appends mapped webhook deliveries file by file and reports each (GitHub, GitLab).
///
/// # Errors
/// A record is refused, or the ledger cannot be reached.
pub fn append_deliveries(ctx: &Ctx, deliveries: Vec<Delivery<'_>>, signer: &SignerArgs) -> Result<ExitCode> {
    let key = ctx.signer_key(signer)?;
    let mut ledger = ctx.backend()?;
    let mut report = IngestReport::default();
    for d in deliveries {
        let f = match d.mapped {
            Mapped::Skipped(why) => FileReport::skipped(d.file, Some(d.event), d.action, why),
            Mapped::Records(records) => {
                let receipts = sign_and_append(&mut ledger, &records, &key)
                    .with_context(|| format!("{} ({} event)", d.file.display(), d.event))?;
                FileReport::recorded(d.file, Some(d.event), d.action, &records, &receipts)
            }
        };
        if !ctx.json {
            line(file_line(&f))?;
        }
        report.add(f);
    }
    report.print(ctx)
}

/// A file's report as one line of text.
fn file_line(f: &FileReport) -> String {
    if let Some(why) = &f.skipped {
        return format!("{}: skipped: {why}", f.file.display());
    }
    format!(
        "{}: {}{}: {} appended, {} already present ({})",
        f.file.display(),
        f.event.as_deref().unwrap_or(""),
        f.action.as_deref().map(|x| format!(" ({x})")).unwrap_or_default(),
        f.appended,
        f.already_present,
        f.records.iter().filter_map(|r| r.kind).collect::<Vec<_>>().join(", ")
    )
}
