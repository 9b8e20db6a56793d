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

use crate::backend::Backend;
use crate::cmd::Ctx;
use crate::output::{json_out, line, out};

fn local(ctx: &Ctx, what: &str) -> Result<ledger_server::ledger::Ledger<ledger_server::store::SledStore>> {
    if ctx.remote.is_some() {
        bail!("`ledger {what}` works on a local ledger for now (the gRPC API does not serve proofs yet)");
    }
    match ctx.backend()? {
        Backend::Local(l) => Ok(l),
        Backend::Remote(_) => bail!("`ledger {what}` needs a local ledger"),
    }
}

/// The default origin line: names the ledger by its genesis entry.
fn default_origin(l: &ledger_server::ledger::Ledger<ledger_server::store::SledStore>) -> Result<String> {
    let genesis =
        l.get(ledger_core::types::Seq(0))?.ok_or_else(|| anyhow::anyhow!("the ledger has no genesis entry"))?;
    Ok(format!("provenance-ledger/{}", &genesis.hash.to_hex()[..16]))
}

/// Prints a signed checkpoint of the current tree head.
pub fn checkpoint(ctx: &Ctx, origin: Option<String>, key: Option<PathBuf>, as_json: bool) -> Result<ExitCode> {
    let l = local(ctx, "checkpoint")?;
    let origin = match origin {
        Some(o) => o,
        None => default_origin(&l)?,
    };
    let key_path = key.unwrap_or_else(|| ctx.db.join("keys").join("admin.key"));
    let key = ledger_server::keyfile::read_private(&key_path)?;
    let (size, root) = l.tree_head();
    let (_, head) = l.head();
    let cp = Checkpoint {
        origin: origin.clone(),
        size,
        root,
        extensions: vec![format!("blake3-head {} {}", size - 1, head)],
    };
    let name = origin.replace(char::is_whitespace, "-");
    let signed = note::sign(&cp.to_text(), &name, &key)?;
    let vkey = note::verifier_key(&name, &key.verifying_key())?;
    if as_json {
        json_out(&json!({ "checkpoint": signed, "verifier_key": vkey, "tree_size": size, "root": hex::encode(root) }))?;
    } else {
        out(&signed)?;
        eprintln!("verifier key: {vkey}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the inclusion proof of an entry in the tree of `size` (default: now).
pub fn prove(ctx: &Ctx, entry: &str, size: Option<u64>, as_json: bool) -> Result<ExitCode> {
    let l = local(ctx, "prove")?;
    let v = l.find_entry(entry)?;
    let size = size.unwrap_or_else(|| l.tree_head().0);
    let (root, proof) = l.inclusion_proof(v.seq, size)?;
    let leaf = merkle::leaf_hash(&v.bytes);
    // Check before handing it out: a proof the ledger cannot verify itself is a bug.
    merkle::verify_inclusion(&leaf, v.seq.0, size, &proof, &root)?;
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

/// Prints the consistency proof between two tree sizes.
pub fn consistency(ctx: &Ctx, old: u64, new: Option<u64>, as_json: bool) -> Result<ExitCode> {
    let l = local(ctx, "consistency")?;
    let new = new.unwrap_or_else(|| l.tree_head().0);
    let (r1, r2, proof) = l.consistency_proof(old, new)?;
    merkle::verify_consistency(old, new, &proof, &r1, &r2)?;
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
/// note's signature, then a consistency proof from the pinned tree to today's. Exit 1 when
/// the ledger was truncated behind the pin, or rewritten or forked.
pub fn audit(ctx: &Ctx, pinned: &std::path::Path, verifier_key: &str, as_json: bool) -> Result<ExitCode> {
    let l = local(ctx, "audit")?;
    let text = std::fs::read_to_string(pinned).map_err(|e| anyhow::anyhow!("reading {}: {e}", pinned.display()))?;
    let (name, key) = note::parse_verifier_key(verifier_key.trim())?;
    let body = note::open(&text, &name, &key).map_err(|e| anyhow::anyhow!("{}: {e}", pinned.display()))?;
    let cp = Checkpoint::parse(body)?;
    let (size, root) = l.tree_head();
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
    if cp.size == 0 {
        bail!("the pinned checkpoint is of an empty tree");
    }
    let (old_root, new_root, proof) = l.consistency_proof(cp.size, size)?;
    if merkle::verify_consistency(cp.size, size, &proof, &cp.root, &new_root).is_err() || new_root != root {
        let why = if old_root != cp.root {
            format!("the first {} entries no longer hash to the pinned root: rewritten or forked", cp.size)
        } else {
            "the consistency proof does not verify".to_string()
        };
        return finding(why);
    }
    if as_json {
        json_out(&json!({ "ok": true, "pinned_size": cp.size, "tree_size": size, "root": hex::encode(root) }))?;
    } else {
        line(format!("ok: today's tree ({size} entries) extends the pinned checkpoint ({} entries)", cp.size))?;
    }
    Ok(ExitCode::SUCCESS)
}
