//! `ledger checkpoint`, `ledger prove`, `ledger consistency`: the RFC 6962 tree over the
//! entries, signed C2SP checkpoints, and proofs an auditor checks without trusting the ledger.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_core::merkle;
use ledger_core::note::{self, Checkpoint};
use ledger_store::ledger::{EntryView, Ledger};
use ledger_store::store::DiskStore;
use serde::Serialize;

use crate::backend::Backend;
use crate::cli::ProofFormat;
use crate::ctx::Ctx;
use crate::output::{json_out, line, out};

/// The default origin line: names the ledger by its genesis entry.
fn default_origin(l: &Ledger<DiskStore>) -> Result<String> {
    let genesis =
        l.get(ledger_core::types::Seq(0))?.ok_or_else(|| anyhow::anyhow!("the ledger has no genesis entry"))?;
    Ok(format!("provenance-ledger/{}", &genesis.hash.to_hex()[..16]))
}

/// Prints a signed checkpoint of the current tree head.
pub fn checkpoint(ctx: &Ctx, origin: Option<String>, key: Option<PathBuf>) -> Result<ExitCode> {
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
    if ctx.json {
        /// What `checkpoint --json` prints.
        #[derive(Serialize)]
        struct CheckpointOut {
            checkpoint: String,
            root: String,
            tree_size: u64,
            verifier_key: String,
        }
        json_out(&CheckpointOut { checkpoint: signed, root: hex::encode(root), tree_size: size, verifier_key: vkey })?;
    } else {
        out(&signed)?;
        eprintln!("verifier key: {vkey}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the inclusion proof of an entry in the tree of `size` (default: now), verified here.
pub fn prove(ctx: &Ctx, entry: &str, size: Option<u64>, format: ProofFormat, key: Option<PathBuf>) -> Result<ExitCode> {
    let format = if ctx.json { ProofFormat::Json } else { format };
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
        /// What `prove --json` prints.
        #[derive(Serialize)]
        struct ProofOut {
            entry: String,
            leaf_hash: String,
            proof: Vec<String>,
            root: String,
            seq: u64,
            tree_size: u64,
        }
        json_out(&ProofOut {
            entry: v.hash.to_hex(),
            leaf_hash: hex::encode(leaf),
            proof: proof.iter().map(hex::encode).collect(),
            root: hex::encode(root),
            seq: v.seq.0,
            tree_size: size,
        })?;
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

/// How a local ledger signs checkpoints: the default origin, and the key file `key` (default
/// `<db>/keys/admin.key`), read only if a local ledger needs it.
pub fn local_signer(
    ctx: &Ctx,
    key: Option<PathBuf>,
) -> impl FnOnce(&Ledger<DiskStore>) -> Result<(String, ed25519_dalek::SigningKey)> {
    let key_path = ctx.checkpoint_key_path(key);
    move |l| Ok((default_origin(l)?, crate::ctx::read_private(&key_path)?))
}

/// A C2SP tlog-proof: an inclusion proof against a fresh signed checkpoint, verified here.
fn tlog_proof(ctx: &Ctx, b: &mut Backend, v: &EntryView, key: Option<PathBuf>) -> Result<ExitCode> {
    let (signed, vkey, size, root) = b.checkpoint(local_signer(ctx, key))?;
    let (psize, proot, proof) = b.inclusion_proof(v.seq.0, Some(size))?;
    if (psize, proot) != (size, root) {
        bail!("the proof is not for the checkpoint's tree");
    }
    let text = note::tlog_proof(v.seq.0, Some(&v.bytes), &proof, &signed);
    let (name, vk) = note::parse_verifier_key(&vkey)?;
    note::open_tlog_proof(&text, &merkle::leaf_hash(&v.bytes), &name, &vk)
        .map_err(|e| anyhow::anyhow!("the inclusion proof does not verify: {e}"))?;
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the log's verifier key (the key that signs checkpoints) in signed-note form.
pub fn log_key(ctx: &Ctx, key: Option<PathBuf>) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let (_, vkey, _, _) = b.checkpoint(local_signer(ctx, key))?;
    if ctx.json {
        /// What `log-key --json` prints.
        #[derive(Serialize)]
        struct LogKeyOut {
            key_id: String,
            name: String,
            verifier_key: String,
        }
        let (name, vk) = note::parse_verifier_key(&vkey)?;
        json_out(&LogKeyOut { key_id: hex::encode(note::key_id(&name, &vk)), name, verifier_key: vkey })?;
    } else {
        line(vkey)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the consistency proof between two tree sizes, verified here.
pub fn consistency(ctx: &Ctx, old: u64, new: Option<u64>) -> Result<ExitCode> {
    let mut b = ctx.backend()?;
    let (new, r1, r2, proof) = b.consistency_proof(old, new)?;
    merkle::verify_consistency(old, new, &proof, &r1, &r2)
        .map_err(|e| anyhow::anyhow!("the consistency proof does not verify: {e}"))?;
    if ctx.json {
        /// What `consistency --json` prints.
        #[derive(Serialize)]
        struct ConsistencyOut {
            new_root: String,
            new_size: u64,
            old_root: String,
            old_size: u64,
            proof: Vec<String>,
        }
        json_out(&ConsistencyOut {
            new_root: hex::encode(r2),
            new_size: new,
            old_root: hex::encode(r1),
            old_size: old,
            proof: proof.iter().map(hex::encode).collect(),
        })?;
    } else {
        line(format!("sizes {old} → {new}: roots {} → {}", B64.encode(r1), B64.encode(r2)))?;
        for p in &proof {
            line(B64.encode(p))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The auditor's check: verifies the pinned checkpoint (saved by an earlier run), fetches a
/// fresh signed checkpoint, checks the consistency proof between them, and moves the pin
/// forward. With no pin yet, the first verified checkpoint becomes the pin (trust on first
/// use). Exit 1 on truncation, rewrite or fork; the conflicting checkpoint is saved beside
/// the pin as evidence (`<pin>.conflict-<size>`).
pub fn audit(ctx: &Ctx, pin: &std::path::Path, verifier_key: &str, key: Option<PathBuf>) -> Result<ExitCode> {
    let (name, vk) = note::parse_verifier_key(verifier_key.trim())?;
    let mut b = ctx.backend()?;
    let (signed, fresh_vkey, _, _) = b.checkpoint(local_signer(ctx, key))?;
    let (fresh_name, fresh_vk) = note::parse_verifier_key(&fresh_vkey)?;
    if fresh_name != name {
        bail!("the ledger signs checkpoints as `{fresh_name}`, but the verifier key given is for `{name}`");
    }
    let current = Checkpoint::parse(note::open(&signed, &fresh_name, &fresh_vk)?)?;
    // The keys whose checkpoints the auditor may trust: the given key and, when the log key
    // was rotated since, every key it handed over to (each hand-over checked, each key entry
    // proven to be in the current tree).
    let (trusted, handed_over) = if fresh_vk == vk {
        (vec![vk], None)
    } else {
        match handover_chain(&mut b, &vk, &fresh_vk, &current) {
            Ok(v) => v,
            Err(why) => {
                let msg = format!("checkpoints are now signed by {fresh_vkey}: {why}");
                if ctx.json {
                    /// What `audit --json` prints on an untrusted key.
                    #[derive(Serialize)]
                    struct Untrusted {
                        message: String,
                        ok: bool,
                        tree_size: u64,
                    }
                    json_out(&Untrusted { message: msg, ok: false, tree_size: current.size })?;
                } else {
                    line(format!("UNTRUSTED: {msg}"))?;
                }
                return Ok(ExitCode::from(1));
            }
        }
    };
    let handed_over = handed_over.map(|h| format!(" ({h})")).unwrap_or_default();
    let report = |ok: bool, msg: String, pinned: u64| -> Result<ExitCode> {
        let msg = format!("{msg}{handed_over}");
        if ctx.json {
            /// What `audit --json` prints.
            #[derive(Serialize)]
            struct AuditOut {
                message: String,
                ok: bool,
                pinned_size: u64,
                tree_size: u64,
            }
            json_out(&AuditOut { message: msg, ok, pinned_size: pinned, tree_size: current.size })?;
        } else if ok {
            line(format!("ok: {msg}"))?;
        } else {
            line(format!("TAMPERED: {msg}"))?;
        }
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
    };
    if !pin.exists() {
        std::fs::write(pin, &signed).map_err(|e| anyhow::anyhow!("writing {}: {e}", pin.display()))?;
        return report(true, format!("pinned the checkpoint of {} entries (first use)", current.size), current.size);
    }
    let text = std::fs::read_to_string(pin).map_err(|e| anyhow::anyhow!("reading {}: {e}", pin.display()))?;
    // The pin was saved signed by the given key or by a later one it handed over to.
    let opened = trusted.iter().find_map(|k| note::open(&text, &name, k).ok());
    let pinned = match opened {
        Some(body) => Checkpoint::parse(body)?,
        None => {
            let e = note::open(&text, &name, &vk).err().map(|e| e.to_string()).unwrap_or_default();
            bail!("{}: {e}", pin.display())
        }
    };
    if pinned.origin != current.origin {
        bail!("the pin is for log `{}`, this ledger is `{}`", pinned.origin, current.origin);
    }
    let keep_evidence = || -> Result<String> {
        let path = PathBuf::from(format!("{}.conflict-{}", pin.display(), current.size));
        std::fs::write(&path, &signed).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        Ok(path.display().to_string())
    };
    if current.size < pinned.size {
        let ev = keep_evidence()?;
        return report(
            false,
            format!(
                "the ledger now has {} entries but {} were pinned: truncated (evidence kept in {ev})",
                current.size, pinned.size
            ),
            pinned.size,
        );
    }
    if current.size == pinned.size && current.root != pinned.root {
        let ev = keep_evidence()?;
        return report(
            false,
            format!(
                "two signed checkpoints of size {} with different roots: a fork (both kept: {} and {ev})",
                current.size,
                pin.display()
            ),
            pinned.size,
        );
    }
    let (_, _, _, proof) = b.consistency_proof(pinned.size, Some(current.size))?;
    if merkle::verify_consistency(pinned.size, current.size, &proof, &pinned.root, &current.root).is_err() {
        let ev = keep_evidence()?;
        return report(
            false,
            format!(
                "the tree of {} entries does not extend the pinned tree of {}: history was rewritten or forked (evidence kept in {ev})",
                current.size, pinned.size
            ),
            pinned.size,
        );
    }
    std::fs::write(pin, &signed).map_err(|e| anyhow::anyhow!("writing {}: {e}", pin.display()))?;
    report(
        true,
        format!("the tree of {} entries extends the pinned {}; pin moved forward", current.size, pinned.size),
        pinned.size,
    )
}

/// When checkpoints are signed by `fresh` but the auditor trusts `pinned`: reads the ledger's
/// key entries, proves each is in the tree of `current`, replays them, and checks that `pinned`
/// handed over to `fresh` (the admin key registered it, or a chain of log-key rotations each
/// signed by the old log key) and that `fresh` is the key that signs checkpoints now. Returns
/// every key the auditor may trust from `pinned` on, and the hand-over in words.
fn handover_chain(
    b: &mut Backend,
    pinned: &ed25519_dalek::VerifyingKey,
    fresh: &ed25519_dalek::VerifyingKey,
    current: &Checkpoint,
) -> Result<(Vec<ed25519_dalek::VerifyingKey>, Option<String>)> {
    use ledger_core::entry::key_id;
    use ledger_core::keys::KeyRegister;
    let entries: Vec<_> = b
        .log(&crate::backend::LogArgs { kind: Some(ledger_core::record::Kind::Key), ..Default::default() })?
        .into_iter()
        .filter(|v| v.seq.0 < current.size)
        .collect();
    let seqs: Vec<u64> = entries.iter().map(|v| v.seq.0).collect();
    let proofs = b.inclusion_proofs(&seqs, current.size)?;
    for (v, proof) in entries.iter().zip(&proofs) {
        merkle::verify_inclusion(&merkle::leaf_hash(&v.bytes), v.seq.0, current.size, proof, &current.root)
            .map_err(|e| anyhow::anyhow!("key entry #{} is not in the signed tree: {e}", v.seq))?;
    }
    let register = KeyRegister::from_key_entries(entries.iter().map(|v| v.bytes.as_slice()))
        .map_err(|(seq, e)| anyhow::anyhow!("key entry #{seq} does not verify: {e}"))?;
    let (from, to) = (key_id(pinned), key_id(fresh));
    let signer = register.checkpoint_key().map(|k| k.id);
    if signer != Some(to) {
        bail!("that key is not the ledger's registered log key");
    }
    if !register.hands_over(&from, &to) {
        bail!("the ledger holds no hand-over to it from the pinned key {}", from.short());
    }
    let trusted = register.keys().filter(|k| register.hands_over(&from, &k.id)).map(|k| k.public).collect();
    let at = register.get(&to).map(|k| k.registered_at.0).unwrap_or_default();
    Ok((trusted, Some(format!("the log key was handed over from {} to {} at entry #{at}", from.short(), to.short()))))
}
