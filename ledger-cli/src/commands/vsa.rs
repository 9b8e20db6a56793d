//! `ledger vsa`: a DSSE-signed SLSA Source verification summary of a change's landed commit
//! (docs/POLICY.md). The statement is built by `ledger_audit::vsa`; this signs and writes it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ledger_audit::vsa::{statement, VsaContext, PAYLOAD_TYPE};
use ledger_core::record::Stage;
use serde_json::json;

use crate::ctx::{read_private, Ctx};
use crate::output::{line, out};

/// `ledger vsa SUBJECT --key K [--out F]`.
pub fn vsa(
    ctx: &Ctx,
    subject: &str,
    key: &Path,
    out_path: Option<&Path>,
    verifier: &str,
    forge: &str,
) -> Result<ExitCode> {
    let signing = read_private(key)?;
    let mut ledger = ctx.backend()?;
    let why = ledger.why(subject, &[])?;
    let change = match why.changes.as_slice() {
        [one] => one,
        [] => bail!("no change record covers {subject}"),
        many => {
            let names: Vec<&str> = many.iter().map(|c| c.subject.as_str()).collect();
            bail!("{subject} belongs to {} changes ({}); name one", many.len(), names.join(", "))
        }
    };
    let (gate, _) = ledger.gate(&change.subject, Stage::Merge, None)?;
    // The entries the summary rests on: the change, its merge, and every rule's evidence.
    let mut seqs: Vec<u64> = gate.rules.iter().flat_map(|r| r.evidence.iter().copied()).collect();
    seqs.push(change.at.seq);
    seqs.extend(change.merge.as_ref().map(|m| m.at.seq));
    seqs.sort_unstable();
    seqs.dedup();
    let mut inputs = Vec::with_capacity(seqs.len());
    for seq in seqs {
        inputs.push((seq, ledger.find_entry(&format!("#{seq}"))?.hash.to_hex()));
    }
    let st = statement(change, &gate, &VsaContext { verifier, forge, inputs: &inputs }).map_err(|e| anyhow!(e))?;
    let payload = serde_json::to_vec(&st)?;
    let sig = signing.sign(&ledger_ingest::attestation::pae(PAYLOAD_TYPE, &payload));
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": b64.encode(&payload),
        "signatures": [{ "keyid": hex::encode(signing.verifying_key().to_bytes()), "sig": b64.encode(sig.to_bytes()) }],
    });
    let text = serde_json::to_string(&envelope)? + "\n";
    match out_path {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
            if ctx.json {
                out(&(serde_json::to_string(&json!({ "out": p.display().to_string(), "statement": st }))? + "\n"))?;
            } else {
                let levels = st.pointer("/predicate/verifiedLevels").cloned().unwrap_or_default();
                let result = st.pointer("/predicate/verificationResult").cloned().unwrap_or_default();
                line(format!("{}: {result} {levels} for {}", p.display(), change.subject))?;
            }
        }
        None => out(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}
