//! `ledger ingest attestation`: in-toto / DSSE / SLSA / Sigstore bundle files → evidence,
//! through [`ledger_ingest::attestation`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_core::entry::SignedRecord;
use ledger_core::subject::Subject;
use ledger_core::types::Clock;
use ledger_ingest::attestation::{self, AttestationKey};
use ledger_ingest::Mapped;
use ledger_store::clock::SystemClock;
use serde_json::json;

use crate::cmd::{signer_key, Ctx};
use crate::output::{json_out, line};
use crate::SignerArgs;

/// The receipt of evidence already recorded from the same envelope for the same artifact.
fn existing(
    ledger: &mut crate::backend::Backend,
    r: &ledger_core::record::Record,
) -> Result<Option<ledger_core::chain::Receipt>> {
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

/// Runs the ingest.
pub fn run(
    ctx: &Ctx,
    files: &[PathBuf],
    key: Option<&Path>,
    commit: Option<&str>,
    signer: &SignerArgs,
    as_json: bool,
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
    let now = SystemClock.now();
    let mut mapped = vec![];
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let m = attestation::map(&bytes, key.as_ref(), commit.clone(), now).with_context(|| f.display().to_string())?;
        mapped.push((f, m));
    }
    let signing = signer_key(&ctx.db, signer)?;
    let mut ledger = ctx.backend()?;
    let (mut appended, mut present, mut skipped) = (0u64, 0u64, 0u64);
    let mut out = vec![];
    for (f, m) in mapped {
        match m {
            Mapped::Skipped(why) => {
                skipped += 1;
                if !as_json {
                    line(format!("{}: skipped: {why}", f.display()))?;
                }
                out.push(json!({ "file": f, "skipped": why, "records": [] }));
            }
            Mapped::Records(records) => {
                // An attestation may carry no time, so its records are stamped with the time of
                // ingest; re-ingesting is recognised by what the evidence says instead (same
                // commit, artifact and envelope digest) and appends nothing.
                let mut receipts = vec![];
                let mut fresh = vec![];
                for r in &records {
                    match existing(&mut ledger, r)? {
                        Some(rc) => receipts.push(rc),
                        None => fresh.push(SignedRecord::sign(r, &signing)?),
                    }
                }
                if !fresh.is_empty() {
                    receipts.extend(ledger.append(&fresh)?);
                }
                let (a, p) =
                    receipts.iter().fold((0u64, 0u64), |(a, p), r| if r.duplicate { (a, p + 1) } else { (a + 1, p) });
                appended += a;
                present += p;
                if !as_json {
                    line(format!("{}: {a} evidence records appended, {p} already present", f.display()))?;
                }
                let recs: Vec<_> = receipts
                    .iter()
                    .map(|r| json!({ "seq": r.seq.0, "entry": r.hash.to_hex(), "kind": "evidence", "duplicate": r.duplicate }))
                    .collect();
                out.push(json!({ "file": f, "skipped": null, "records": recs }));
            }
        }
    }
    if as_json {
        json_out(&json!({ "files": out, "appended": appended, "already_present": present, "skipped": skipped }))?;
    }
    Ok(ExitCode::SUCCESS)
}
