//! `ledger export` and `ledger verify-bundle`: self-contained, offline-verifiable bundles.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_core::bundle::{self, Bundle, BundleEntry, BundleError, BUNDLE_FORMAT};
use ledger_core::note;
use ledger_core::record::{Body, Kind};
use ledger_core::types::Timestamp;
use serde::Serialize;

use crate::backend::LogArgs;
use crate::cli::BundleFormat;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// What to export.
pub struct Selection {
    /// A subject: the change(s) it belongs to and everything `why` links to them.
    pub subject: Option<String>,
    /// Entries integrated at or after this time.
    pub since: Option<Timestamp>,
    /// Entries integrated before this time.
    pub until: Option<Timestamp>,
    /// Every entry.
    pub all: bool,
}

/// Writes a bundle to `out`.
pub fn export(ctx: &Ctx, sel: Selection, out: &Path, key: Option<PathBuf>) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let (signed, _vkey, size, _root) = b.checkpoint(super::transparency::local_signer(ctx, key))?;
    let mut selected: BTreeSet<u64> = BTreeSet::new();
    let label;
    if let Some(subject) = &sel.subject {
        label = subject.clone();
        let report = b.why(subject, &[])?;
        let mut changes: Vec<String> = vec![];
        for c in &report.changes {
            changes.push(c.subject.clone());
            selected.insert(c.at.seq);
            selected.extend(c.merge.iter().map(|m| m.at.seq));
            selected.extend(c.reviews.iter().map(|r| r.at.seq));
            selected.extend(c.evidence.iter().map(|e| e.at.seq));
            selected.extend(c.sessions.iter().map(|s| s.at.seq));
            selected.extend(c.exceptions.iter().map(|x| x.at.seq));
            selected.extend(c.deployments.iter().map(|d| d.at.seq));
            selected.extend(c.incidents.iter().map(|i| i.at.seq));
        }
        for v in b.log(&LogArgs { subject: Some(subject.clone()), ..Default::default() })? {
            selected.insert(v.seq.0);
        }
        // The gate decisions about these changes, and every policy they could refer to.
        for v in b.log(&LogArgs { kind: Some(Kind::Gate), ..Default::default() })? {
            if let Body::Gate(g) = &v.record.body {
                if changes.contains(&g.subject.to_string()) {
                    selected.insert(v.seq.0);
                }
            }
        }
        for v in b.log(&LogArgs { kind: Some(Kind::Policy), ..Default::default() })? {
            selected.insert(v.seq.0);
        }
        if selected.is_empty() {
            bail!("nothing recorded mentions {subject}");
        }
    } else if sel.all {
        label = "all".into();
        selected.extend(0..size);
    } else if sel.since.is_some() || sel.until.is_some() {
        label = format!(
            "{}..{}",
            sel.since.map(|t| t.to_string()).unwrap_or_default(),
            sel.until.map(|t| t.to_string()).unwrap_or_default()
        );
        for v in b.log(&LogArgs { since: sel.since, ..Default::default() })? {
            if sel.until.is_none_or(|u| v.entry.time < u) {
                selected.insert(v.seq.0);
            }
        }
    } else {
        bail!("say what to export: a SUBJECT, --since/--until, or --all");
    }
    selected.retain(|s| *s < size);
    // Every key entry below the tree size, so each signer can be checked offline.
    let mut all: BTreeSet<u64> = selected.clone();
    for v in b.log(&LogArgs { kind: Some(Kind::Key), ..Default::default() })? {
        if v.seq.0 < size {
            all.insert(v.seq.0);
        }
    }
    let seqs: Vec<u64> = all.into_iter().collect();
    let proofs = b.inclusion_proofs(&seqs, size)?;
    let mut entries = Vec::with_capacity(seqs.len());
    for (seq, proof) in seqs.iter().zip(proofs) {
        let v = b.find_entry(&format!("#{seq}"))?;
        entries.push(BundleEntry {
            seq: *seq,
            entry: hex::encode(&v.bytes),
            proof: proof.iter().map(hex::encode).collect(),
        });
    }
    let bundle = Bundle {
        format: BUNDLE_FORMAT.into(),
        selection: label,
        checkpoint: signed,
        entries,
        selected: selected.into_iter().collect(),
    };
    let text = serde_json::to_string_pretty(&bundle)?;
    std::fs::write(out, format!("{text}\n")).with_context(|| format!("writing {}", out.display()))?;
    if ctx.json {
        /// What `export --json` prints.
        #[derive(Serialize)]
        struct ExportOut<'a> {
            entries: usize,
            file: &'a Path,
            selected: usize,
            tree_size: u64,
        }
        json_out(&ExportOut {
            entries: bundle.entries.len(),
            file: out,
            selected: bundle.selected.len(),
            tree_size: size,
        })?;
    } else {
        line(format!(
            "wrote {}: {} selected entries (+{} key entries) with inclusion proofs against the checkpoint of {size} entries",
            out.display(),
            bundle.selected.len(),
            bundle.entries.len() - bundle.selected.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `verify-bundle --json` prints: the verdict, and on success the readable form of the
/// bundle (every entry decoded).
#[derive(Serialize)]
struct VerifiedOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<BundleEntryOut<'a>>>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selection: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree_size: Option<u64>,
}

/// One entry of a verified bundle.
#[derive(Serialize)]
struct BundleEntryOut<'a> {
    entry: String,
    record: &'a ledger_core::record::Record,
    selected: bool,
    seq: u64,
}

/// `ledger verify-bundle FILE --log-key K`: offline (no database, no server). Exit 0 intact,
/// 1 tampered, 2 not a bundle.
pub fn verify_bundle(ctx: &Ctx, file: &Path, log_key: &str, format: BundleFormat) -> Result<ExitCode> {
    let as_json = ctx.json || format == BundleFormat::Json;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let b: Bundle =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a bundle: {e}", file.display()))?;
    let (name, key) = note::parse_verifier_key(log_key.trim())?;
    match bundle::verify(&b, &name, &key) {
        Ok(s) => {
            if as_json {
                let entries = s
                    .verified
                    .iter()
                    .map(|e| BundleEntryOut {
                        entry: e.hash.to_hex(),
                        record: &e.record,
                        selected: b.selected.contains(&e.entry.seq.0),
                        seq: e.entry.seq.0,
                    })
                    .collect();
                json_out(&VerifiedOut {
                    entries: Some(entries),
                    ok: true,
                    reason: None,
                    selection: Some(&b.selection),
                    tree_size: Some(s.tree_size),
                })?;
            } else {
                line(format!(
                    "ok: {} entries ({} selected) verified against the signed checkpoint of {} entries: proofs, signatures, signer rights",
                    s.entries, s.selected, s.tree_size
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(BundleError::Malformed(m)) => bail!("{}: {m}", file.display()),
        Err(e) => {
            if as_json {
                json_out(&VerifiedOut {
                    entries: None,
                    ok: false,
                    reason: Some(e.to_string()),
                    selection: None,
                    tree_size: None,
                })?;
            } else {
                line(format!("TAMPERED: {e}"))?;
            }
            Ok(ExitCode::from(1))
        }
    }
}
