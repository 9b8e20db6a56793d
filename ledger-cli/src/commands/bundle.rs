//! `ledger export`, `ledger verify-bundle` and `ledger verify-proof`: self-contained,
//! offline-verifiable bundles and receipts.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ledger_core::bundle::{self, v1, BundleError, BundleSummary, BundleVerifier, Completeness, Selection};
use ledger_core::entry::{entry_hash, Entry};
use ledger_core::note;
use serde::Serialize;

use crate::cli::BundleFormat;
use crate::ctx::Ctx;
use crate::output::{json_out, line, progress};

/// What `export --json` prints.
#[derive(Serialize)]
struct ExportOut<'a> {
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
    file: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected: Option<u64>,
    selection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree_size: Option<u64>,
}

/// `ledger export`: writes the bundle to `<out>.partial`, then renames it to `out`, so `out` is
/// a whole bundle or nothing.
/// Writes a bundle of `selection` to `out` through `b`, atomically (a `.partial` file renamed
/// into place once synced; removed on failure). Returns the export summary when known (locally).
///
/// # Errors
/// The export fails or the file cannot be written.
pub fn write_bundle(
    ctx: &Ctx,
    b: &mut crate::backend::Backend,
    selection: &Selection,
    out: &Path,
    key: Option<PathBuf>,
) -> Result<Option<ledger_store::ledger::ExportSummary>> {
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let bar = progress(ctx.json, 0, "exporting {bar:40} {pos}/{len} entries ({per_sec}, eta {eta})");
    let written =
        b.export_bundle(selection, &mut w, super::transparency::local_signer(ctx, key), &mut |done, total| {
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(done);
        });
    bar.finish_and_clear();
    let finished = written.and_then(|summary| {
        let file = w.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {}", partial.display(), e.error()))?;
        file.sync_all().with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, out)
            .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
        Ok(summary)
    });
    match finished {
        Ok(s) => Ok(s),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

pub fn export(ctx: &Ctx, selection: &Selection, out: &Path, key: Option<PathBuf>) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let summary = write_bundle(ctx, &mut b, selection, out, key)?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or_default();
    if ctx.json {
        json_out(&ExportOut {
            bytes,
            entries: summary.as_ref().map(|s| s.entries),
            file: out,
            runs: summary.as_ref().map(|s| s.runs),
            selected: summary.as_ref().map(|s| s.selected),
            selection: selection.label(),
            tree_size: summary.as_ref().map(|s| s.tree_size),
        })?;
    } else {
        match summary {
            Some(s) => line(format!(
                "wrote {} ({bytes} bytes): {} selected entries (+{} key and boundary entries) of the checkpoint of {} entries, in {} proven runs, with a signed manifest",
                out.display(),
                s.selected,
                s.entries - s.selected,
                s.tree_size,
                s.runs
            ))?,
            None => line(format!("wrote {} ({bytes} bytes), built and signed by the server", out.display()))?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `verify-bundle --json` prints.
#[derive(Serialize)]
struct VerifiedOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    completeness: Option<Completeness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handed_over_from: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree_size: Option<u64>,
}

impl VerifiedOut {
    fn failed(reason: String) -> Self {
        VerifiedOut {
            completeness: None,
            entries: None,
            format: None,
            handed_over_from: None,
            ok: false,
            reason: Some(reason),
            selected: None,
            selection: None,
            signer: None,
            tree_size: None,
        }
    }

    fn of(s: &BundleSummary) -> Self {
        VerifiedOut {
            completeness: Some(s.completeness),
            entries: Some(s.entries),
            format: Some(bundle::BUNDLE_FORMAT),
            handed_over_from: s.handed_over_from.map(|k| k.to_hex()),
            ok: true,
            reason: None,
            selected: Some(s.selected),
            selection: Some(s.selection.label()),
            signer: Some(s.signer.to_hex()),
            tree_size: Some(s.checkpoint.size),
        }
    }
}

/// One entry of a verified bundle, in its readable form.
#[derive(Serialize)]
struct BundleEntryOut<'a> {
    entry: String,
    record: &'a ledger_core::record::Record,
    selected: bool,
    seq: u64,
}

/// Reports an integrity failure: exit 1.
fn failed(ctx: &Ctx, as_json: bool, e: &BundleError) -> Result<ExitCode> {
    if as_json || ctx.json {
        json_out(&VerifiedOut::failed(e.to_string()))?;
    } else {
        line(format!("TAMPERED: {e}"))?;
    }
    Ok(ExitCode::from(1))
}

/// `ledger verify-bundle FILE --log-key K`: offline (no database, no server). A v2 bundle is
/// checked as a stream; a v1 bundle is read whole. Exit 0 intact, 1 for an integrity failure,
/// 2 for a file that is no bundle.
pub fn verify_bundle(ctx: &Ctx, file: &Path, log_key: &str, format: BundleFormat) -> Result<ExitCode> {
    let readable = format == BundleFormat::Json;
    let (name, key) = note::parse_verifier_key(log_key.trim()).context("--log-key")?;
    let f = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or_default();
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut buf = Vec::with_capacity(4096);
    r.read_until(b'\n', &mut buf).with_context(|| format!("reading {}", file.display()))?;
    let mut verifier = match BundleVerifier::start(&buf, &name, &key) {
        Ok(v) => v,
        Err(BundleError::Malformed(why)) => return verify_v1(ctx, file, &name, &key, readable, &why),
        Err(e) => return failed(ctx, readable, &e),
    };
    let bar =
        progress(ctx.json || readable, size, "verifying {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})");
    let mut read = buf.len() as u64;
    let mut lines = 0u64;
    let outcome = loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).with_context(|| format!("reading {}", file.display()))?;
        if n == 0 {
            break verifier.end();
        }
        read += n as u64;
        lines += 1;
        if lines.is_multiple_of(4096) {
            bar.set_position(read);
        }
        if let Err(e) = verifier.line(&buf) {
            break Err(e);
        }
    };
    bar.finish_and_clear();
    let summary = match outcome {
        Ok(s) => s,
        Err(BundleError::Malformed(m)) => bail!("{}: {m}", file.display()),
        Err(e) => return failed(ctx, readable, &e),
    };
    if readable {
        return print_readable(file, &summary);
    }
    if ctx.json {
        json_out(&VerifiedOut::of(&summary))?;
    } else {
        let complete = match summary.completeness {
            Completeness::Proven => "complete for its selection (proven)",
            Completeness::Attested => {
                "complete as the log's signed manifest attests (a subject cannot be proven complete)"
            }
        };
        let handed = summary
            .handed_over_from
            .map(|from| format!("; signed by log key {}, handed over from {}", summary.signer.short(), from.short()))
            .unwrap_or_default();
        line(format!(
            "ok: {} entries ({} selected, {}) verified against the signed checkpoint of {} entries: runs, chain links, signatures, signer rights, manifest; {complete}{handed}",
            summary.entries,
            summary.selected,
            summary.selection.label(),
            summary.checkpoint.size
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable form of a verified v2 bundle: the verdict and every entry decoded, streamed
/// from a second read of the file (nothing is printed before the whole bundle verified).
fn print_readable(file: &Path, summary: &BundleSummary) -> Result<ExitCode> {
    let f = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let stdout = std::io::stdout();
    let mut o = BufWriter::new(stdout.lock());
    let head = serde_json::to_string(&VerifiedOut::of(summary))?;
    // The verdict's fields, then `entries` as the last field of the same object.
    o.write_all(head.trim_end_matches('}').as_bytes())?;
    o.write_all(b",\"entries\":[")?;
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let Some((seq, bytes, selected)) = bundle::read_entry_line(&buf) else { continue };
        let entry = Entry::decode(&bytes)?;
        let record = entry.decode_record()?;
        if !first {
            o.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(
            &mut o,
            &BundleEntryOut { entry: entry_hash(&bytes).to_hex(), record: &record, selected, seq: seq.0 },
        )?;
    }
    o.write_all(b"]}\n")?;
    o.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A version 1 bundle (one JSON document), read whole.
fn verify_v1(
    ctx: &Ctx,
    file: &Path,
    name: &str,
    key: &ed25519_dalek::VerifyingKey,
    readable: bool,
    not_v2: &str,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let Ok(b) = serde_json::from_str::<v1::Bundle>(&text) else {
        bail!("{} is not a bundle: {not_v2}", file.display());
    };
    match v1::verify(&b, name, key) {
        Ok(s) => {
            if readable || ctx.json {
                /// `verify-bundle --json` of a v1 bundle.
                #[derive(Serialize)]
                struct V1Out<'a> {
                    #[serde(skip_serializing_if = "Option::is_none")]
                    entries: Option<Vec<BundleEntryOut<'a>>>,
                    format: &'static str,
                    ok: bool,
                    selection: &'a str,
                    tree_size: u64,
                }
                let entries = readable.then(|| {
                    s.verified
                        .iter()
                        .map(|e| BundleEntryOut {
                            entry: e.hash.to_hex(),
                            record: &e.record,
                            selected: b.selected.contains(&e.entry.seq.0),
                            seq: e.entry.seq.0,
                        })
                        .collect()
                });
                json_out(&V1Out {
                    entries,
                    format: v1::BUNDLE_FORMAT_V1,
                    ok: true,
                    selection: &b.selection,
                    tree_size: s.tree_size,
                })?;
            } else {
                line(format!(
                    "ok: {} entries ({} selected) of a v1 bundle verified against the signed checkpoint of {} entries: proofs, signatures, signer rights (v1 bundles carry no manifest: they cannot show they are complete)",
                    s.entries, s.selected, s.tree_size
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(BundleError::Malformed(m)) => bail!("{}: {m}", file.display()),
        Err(e) => failed(ctx, readable, &e),
    }
}

/// What `verify-proof --json` prints.
#[derive(Serialize)]
struct ProofOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<ledger_core::record::Record>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree_size: Option<u64>,
}

/// `ledger verify-proof FILE --log-key K [--entry BYTES]`: a C2SP tlog-proof checked offline.
/// Exit 0 valid, 1 invalid, 2 unreadable.
pub fn verify_proof(ctx: &Ctx, file: &Path, log_key: &str, entry: Option<&Path>) -> Result<ExitCode> {
    let (name, key) = note::parse_verifier_key(log_key.trim()).context("--log-key")?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = note::parse_tlog_proof(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let bytes = match (entry, parsed.extra) {
        (Some(path), _) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        (None, Some(extra)) => extra,
        (None, None) => {
            bail!("{} carries no entry (no `extra` line): give the entry's bytes with --entry", file.display())
        }
    };
    let invalid = |reason: String| -> Result<ExitCode> {
        if ctx.json {
            json_out(&ProofOut {
                entry: None,
                kind: None,
                ok: false,
                reason: Some(reason),
                record: None,
                seq: None,
                tree_size: None,
            })?;
        } else {
            line(format!("INVALID: {reason}"))?;
        }
        Ok(ExitCode::from(1))
    };
    let (index, cp) = match note::open_tlog_proof(&text, &ledger_core::merkle::leaf_hash(&bytes), &name, &key) {
        Ok(v) => v,
        Err(e) => return invalid(e.to_string()),
    };
    let decoded = Entry::decode(&bytes).and_then(|e| e.decode_record().map(|r| (e, r)));
    let (e, record) = match decoded {
        Ok(v) => v,
        Err(err) => return invalid(format!("the proven leaf is not an entry: {err}")),
    };
    if e.seq.0 != index {
        return invalid(format!("the entry says seq {}, the proof index {index}", e.seq));
    }
    let hash = entry_hash(&bytes).to_hex();
    if ctx.json {
        json_out(&ProofOut {
            entry: Some(hash),
            kind: Some(record.kind().as_str()),
            ok: true,
            reason: None,
            record: Some(record),
            seq: Some(index),
            tree_size: Some(cp.size),
        })?;
    } else {
        line(format!(
            "ok: entry #{index} ({}, {hash}) is in the tree of {} entries of {}, whose checkpoint is signed by {name}",
            record.kind().as_str(),
            cp.size,
            cp.origin
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
