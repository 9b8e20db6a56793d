//! `ledger checkpoint`, `ledger prove`, `ledger consistency`: the RFC 6962 tree over the
//! entries, signed C2SP checkpoints, and proofs an auditor checks without trusting the ledger.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_core::merkle;
use ledger_core::note::{self, Checkpoint};
use serde_json::json;

use crate::cmd::Ctx;
use crate::output::{json_out, line, out};

/// The default origin line: names the ledger by its genesis entry.
fn default_origin(l: &ledger_server::ledger::Ledger<ledger_server::store::SledStore>) -> Result<String> {
    let genesis =
        l.get(ledger_core::types::Seq(0))?.ok_or_else(|| anyhow::anyhow!("the ledger has no genesis entry"))?;
    Ok(format!("provenance-ledger/{}", &genesis.hash.to_hex()[..16]))
}

/// Prints a signed checkpoint of the current tree head.
pub fn checkpoint(ctx: &Ctx, origin: Option<String>, key: Option<PathBuf>, as_json: bool) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let signer = local_signer(ctx, key);
    let (signed, vkey, size, root) = b.checkpoint(|l| {
        let (default, key) = signer(l)?;
        Ok((origin.unwrap_or(default), key))
    })?;
    // Whoever signed it, check it before handing it out.
    let (name, vk) = note::parse_verifier_key(&vkey)?;
    let body = note::open(&signed, &name, &vk)?;
    let cp = Checkpoint::parse(body)?;
    if (cp.size, cp.root) != (size, root) {
        bail!("the checkpoint does not say what it was reported to say");
    }
    if as_json {
        json_out(&json!({ "checkpoint": signed, "verifier_key": vkey, "tree_size": size, "root": hex::encode(root) }))?;
    } else {
        out(&signed)?;
        eprintln!("verifier key: {vkey}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the inclusion proof of an entry in the tree of `size` (default: now), verified here.
pub fn prove(ctx: &Ctx, entry: &str, size: Option<u64>, format: ProofFormat, key: Option<PathBuf>) -> Result<ExitCode> {
    let as_json = format == ProofFormat::Json;
    let mut b = ctx.backend()?;
    let v = b.find_entry(entry)?;
    if format == ProofFormat::TlogProof {
        if size.is_some() {
            bail!("--format tlog-proof proves against a fresh checkpoint of the current tree; drop --size");
        }
        return tlog_proof(ctx, &mut b, &v, key);
    }
    let (size, root, proof) = b.inclusion_proof(v.seq.0, size)?;
    let leaf = merkle::leaf_hash(&v.bytes);
    merkle::verify_inclusion(&leaf, v.seq.0, size, &proof, &root)
        .map_err(|e| anyhow::anyhow!("the inclusion proof does not verify: {e}"))?;
    if as_json {
        json_out(&json!({
            "seq": v.seq.0, "entry": v.hash.to_hex(), "leaf_hash": hex::encode(leaf), "tree_size": size,
            "root": hex::encode(root), "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        }))?;
    } else {
        // C2SP tlog-proof style body: index, then the proof hashes, base64.
        line(format!("entry #{} {} in tree of size {size}, root {}", v.seq, v.hash, B64.encode(root)))?;
        line(format!("index {}", v.seq))?;
        for p in &proof {
            line(B64.encode(p))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How `prove` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProofFormat {
    /// Readable: index and base64 proof hashes.
    Text,
    /// JSON with hex hashes.
    Json,
    /// C2SP `tlog-proof@v1`: header, index, proof hashes, blank line, signed checkpoint.
    TlogProof,
}

fn local_signer(
    ctx: &Ctx,
    key: Option<PathBuf>,
) -> impl FnOnce(
    &ledger_server::ledger::Ledger<ledger_server::store::SledStore>,
) -> Result<(String, ed25519_dalek::SigningKey)> {
    let key_path = key.unwrap_or_else(|| ctx.db.join("keys").join("admin.key"));
    move |l| Ok((default_origin(l)?, ledger_server::keyfile::read_private(&key_path)?))
}

/// A C2SP tlog-proof: an inclusion proof against a fresh signed checkpoint, verified here.
fn tlog_proof(
    ctx: &Ctx,
    b: &mut crate::backend::Backend,
    v: &ledger_server::ledger::EntryView,
    key: Option<PathBuf>,
) -> Result<ExitCode> {
    let (signed, vkey, size, root) = b.checkpoint(local_signer(ctx, key))?;
    let (psize, proot, proof) = b.inclusion_proof(v.seq.0, Some(size))?;
    if (psize, proot) != (size, root) {
        bail!("the proof is not for the checkpoint's tree");
    }
    let (name, vk) = note::parse_verifier_key(&vkey)?;
    let cp = Checkpoint::parse(note::open(&signed, &name, &vk)?)?;
    merkle::verify_inclusion(&merkle::leaf_hash(&v.bytes), v.seq.0, cp.size, &proof, &cp.root)
        .map_err(|e| anyhow::anyhow!("the inclusion proof does not verify: {e}"))?;
    let mut text = format!("c2sp.org/tlog-proof@v1\nindex {}\n", v.seq);
    for p in &proof {
        text.push_str(&B64.encode(p));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&signed);
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the log's verifier key (the key that signs checkpoints) in signed-note form.
pub fn log_key(ctx: &Ctx, key: Option<PathBuf>) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let (_, vkey, _, _) = b.checkpoint(local_signer(ctx, key))?;
    line(vkey)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the consistency proof between two tree sizes, verified here.
pub fn consistency(ctx: &Ctx, old: u64, new: Option<u64>, as_json: bool) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let (new, r1, r2, proof) = b.consistency_proof(old, new)?;
    merkle::verify_consistency(old, new, &proof, &r1, &r2)
        .map_err(|e| anyhow::anyhow!("the consistency proof does not verify: {e}"))?;
    if as_json {
        json_out(&json!({
            "old_size": old, "new_size": new, "old_root": hex::encode(r1), "new_root": hex::encode(r2),
            "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        }))?;
    } else {
        line(format!("sizes {old} → {new}: roots {} → {}", B64.encode(r1), B64.encode(r2)))?;
        for p in &proof {
            line(B64.encode(p))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks that the ledger today extends a checkpoint the auditor pinned earlier: the pinned
/// note's signature, then a consistency proof from the pinned tree to today's, verified here.
/// Exit 1 when the ledger was truncated behind the pin, or rewritten or forked.
pub fn audit(ctx: &Ctx, pinned: &std::path::Path, verifier_key: &str, as_json: bool) -> Result<ExitCode> {
    let text = std::fs::read_to_string(pinned).map_err(|e| anyhow::anyhow!("reading {}: {e}", pinned.display()))?;
    let (name, key) = note::parse_verifier_key(verifier_key.trim())?;
    let body = note::open(&text, &name, &key).map_err(|e| anyhow::anyhow!("{}: {e}", pinned.display()))?;
    let cp = Checkpoint::parse(body)?;
    if cp.size == 0 {
        bail!("the pinned checkpoint is of an empty tree");
    }
    let mut b = ctx.backend()?;
    let size = b.len()?;
    let finding = |reason: String| -> Result<ExitCode> {
        if as_json {
            json_out(&json!({ "ok": false, "pinned_size": cp.size, "tree_size": size, "reason": reason }))?;
        } else {
            line(format!("TAMPERED: {reason}"))?;
        }
        Ok(ExitCode::from(1))
    };
    if cp.size > size {
        return finding(format!("the ledger has {size} entries but the pinned checkpoint has {}: truncated", cp.size));
    }
    let (new, old_root, new_root, proof) = b.consistency_proof(cp.size, Some(size))?;
    if new != size || merkle::verify_consistency(cp.size, size, &proof, &cp.root, &new_root).is_err() {
        let why = if old_root != cp.root {
            format!("the first {} entries no longer hash to the pinned root: rewritten or forked", cp.size)
        } else {
            "the consistency proof does not verify".to_string()
        };
        return finding(why);
    }
    if as_json {
        json_out(&json!({ "ok": true, "pinned_size": cp.size, "tree_size": size, "root": hex::encode(new_root) }))?;
    } else {
        line(format!("ok: today's tree ({size} entries) extends the pinned checkpoint ({} entries)", cp.size))?;
    }
    Ok(ExitCode::SUCCESS)
}
