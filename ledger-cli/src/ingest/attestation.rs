//! `ledger ingest attestation`: in-toto / DSSE / SLSA / Sigstore bundle files → evidence,
//! through [`ledger_ingest::attestation`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_core::chain::Receipt;
use ledger_core::subject::Subject;
use ledger_ingest::attestation::{self, AttestationKey};
use ledger_ingest::Mapped;

use super::{read_payload, sign_and_append, FileReport, IngestReport};
use crate::backend::Backend;
use crate::cli::SignerArgs;
use crate::ctx::Ctx;
use crate::output::line;

/// The receipt of evidence already recorded from the same envelope for the same artifact.
fn existing(ledger: &mut Backend, r: &ledger_core::record::Record) -> Result<Option<ledger_core::chain::Receipt>> {
    let ledger_core::record::Body::Evidence(e) = &r.body else { return Ok(None) };
    let args = crate::backend::LogArgs {
        kind: Some(ledger_core::record::Kind::Evidence),
        subject: Some(format!("git:{}", e.commit)),
        ..Default::default()
    };
    for v in ledger.log(&args)? {
        if let ledger_core::record::Body::Evidence(x) = &v.record.body {
            if x.source == e.source && x.artifact == e.artifact && x.repo == e.repo && x.signature == e.signature {
                let id = ledger_core::entry::record_id(&v.entry.record.0);
                return Ok(Some(ledger_core::chain::Receipt {
                    seq: v.seq,
                    hash: v.hash,
                    record_id: id,
                    duplicate: true,
                }));
            }
        }
    }
    Ok(None)
}

/// `ledger ingest attestation FILE… [--key PEM] [--commit git:owner/repo@sha]`.
pub fn run(
    ctx: &Ctx,
    files: &[PathBuf],
    key: Option<&Path>,
    commit: Option<&str>,
    signer: &SignerArgs,
) -> Result<ExitCode> {
    let key = match key {
        Some(p) => Some(
            AttestationKey::from_pem(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("--key {}", p.display()))?,
        ),
        None => None,
    };
    let commit = match commit {
        Some(c) => match c.parse::<Subject>().with_context(|| format!("--commit {c}"))? {
            Subject::Commit { repo: Some(repo), sha } => Some((repo, sha)),
            _ => bail!("--commit must be git:owner/repo@<sha>"),
        },
        None => None,
    };
    // Map every file first, so a bad file or signature changes nothing.
    let now = ctx.now();
    let mut mapped = vec![];
    for f in files {
        let bytes = read_payload(f)?;
        let m = attestation::map(&bytes, key.as_ref(), commit.clone(), now).with_context(|| f.display().to_string())?;
        mapped.push((f, m));
    }
    let signing = ctx.signer_key(signer)?;
    let mut ledger = ctx.backend()?;
    let mut report = IngestReport::default();
    for (f, m) in mapped {
        let file = match m {
            Mapped::Skipped(why) => FileReport::skipped(f, None, None, why),
            Mapped::Records(records) => {
                // An attestation may carry no time, so its records are stamped with the time of
                // ingest; re-ingesting is recognised by what the evidence says instead (same
                // commit, artifact and envelope digest) and appends nothing.
                let mut receipts: Vec<Option<Receipt>> = vec![];
                let mut fresh = vec![];
                for r in &records {
                    let known = existing(&mut ledger, r)?;
                    if known.is_none() {
                        fresh.push(r.clone());
                    }
                    receipts.push(known);
                }
                let mut appended = sign_and_append(&mut ledger, &fresh, &signing)?.into_iter();
                let receipts: Vec<Receipt> =
                    receipts.into_iter().filter_map(|r| r.or_else(|| appended.next())).collect();
                FileReport::recorded(f, None, None, &records, &receipts)
            }
        };
        if !ctx.json {
            match &file.skipped {
                Some(why) => line(format!("{}: skipped: {why}", f.display()))?,
                None => line(format!(
                    "{}: {} evidence records appended, {} already present",
                    f.display(),
                    file.appended,
                    file.already_present
                ))?,
            }
        }
        report.add(file);
    }
    report.print(ctx)
}
