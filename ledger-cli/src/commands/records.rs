//! Writing and reading single records: `append`, `show`, `log`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::entry::SignedRecord;
use ledger_core::record::{Body, Kind, Link, Record};
use ledger_core::types::{Identity, Timestamp};
use serde::Serialize;

use crate::backend::LogArgs;
use crate::cli::SignerArgs;
use crate::ctx::{parse_time, read_input, Ctx};
use crate::output::{self, json_out, line, EntryOut, ProofOut, ReceiptOut};

/// Largest body file read, in bytes. Records are limited to 64 KiB; this only bounds reading.
const MAX_BODY_FILE: u64 = 1024 * 1024;

/// Parses an append body: the body fields plus `actor`, optional `time` and `links`.
///
/// # Errors
/// Malformed JSON, or a missing, unknown or invalid field, named by its path.
pub fn parse_body(kind: Kind, text: &[u8], now: Timestamp) -> Result<Record> {
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| anyhow!("malformed JSON: {e}"))?;
    let serde_json::Value::Object(mut map) = v else { bail!("the body must be a JSON object") };
    let actor = match map.remove("actor") {
        Some(serde_json::Value::String(s)) => Identity::new(s).map_err(|e| anyhow!("actor: {e}"))?,
        Some(_) => bail!("actor: expected a string such as \"github:octocat\""),
        None => bail!("missing field `actor` (the human or bot the record is about, e.g. \"github:octocat\")"),
    };
    let time = match map.remove("time") {
        Some(serde_json::Value::String(s)) => s.parse::<Timestamp>().map_err(|e| anyhow!("time: {e}"))?,
        Some(_) => bail!("time: expected an RFC 3339 string"),
        None => now,
    };
    let links: Vec<Link> = match map.remove("links") {
        Some(l) => serde_path_to_error::deserialize(l).map_err(|e| {
            let path = e.path().to_string();
            anyhow!("links{}: {}", if path == "." { String::new() } else { path }, e.inner())
        })?,
        None => vec![],
    };
    let body = Body::from_json(kind, serde_json::Value::Object(map)).map_err(|e| anyhow!("{kind} body: {e}"))?;
    Ok(Record { v: FORMAT_VERSION, time, actor, links, body })
}

/// `append --prove`: where to write the proof and which key signs a local checkpoint.
pub struct ProveArgs {
    /// `--proof-out`.
    pub out: Option<PathBuf>,
    /// `--checkpoint-key`.
    pub key: Option<PathBuf>,
}

/// `ledger append --kind K --body FILE [--prove]`.
pub fn append(ctx: &Ctx, kind: &str, body: &Path, signer: &SignerArgs, prove: Option<ProveArgs>) -> Result<ExitCode> {
    let kind: Kind = kind.parse()?;
    let text = read_input(body, MAX_BODY_FILE, "records are limited to 64 KiB (reference large evidence by digest)")?;
    let record = parse_body(kind, &text, ctx.now()).with_context(|| format!("in {}", body.display()))?;
    let key = ctx.signer_key(signer)?;
    let mut ledger = ctx.backend()?;
    let Some(prove) = prove else {
        output::receipt(&ledger.sign_and_append(&record, &key)?, ctx.json)?;
        return Ok(ExitCode::SUCCESS);
    };
    let signed = SignedRecord::sign(&record, &key)?;
    let local_signer = super::transparency::local_signer(ctx, prove.key.clone());
    let (receipt, proof, vkey) = ledger.append_proved(&signed, local_signer)?;
    // Check the proof before reporting it: the stored entry's leaf, under the log's key.
    let entry = ledger.find_entry(&format!("#{}", receipt.seq))?;
    let (name, vk) = ledger_core::note::parse_verifier_key(&vkey)?;
    let (_, cp) = ledger_core::note::open_tlog_proof(&proof, &ledger_core::merkle::leaf_hash(&entry.bytes), &name, &vk)
        .map_err(|e| anyhow!("the server's inclusion proof does not verify: {e}"))?;
    if let Some(path) = &prove.out {
        std::fs::write(path, &proof).with_context(|| format!("writing {}", path.display()))?;
    }
    if ctx.json {
        let proof = ProofOut { tlog_proof: proof, tree_size: cp.size, verifier_key: vkey };
        json_out(&ReceiptOut { proof: Some(proof), ..ReceiptOut::new(&receipt) })?;
    } else {
        output::receipt(&receipt, false)?;
        line(format!("inclusion proof checked against the checkpoint of tree size {} ({vkey})", cp.size))?;
        if let Some(path) = &prove.out {
            line(format!("tlog-proof written to {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger show ENTRY [--raw]`.
pub fn show(ctx: &Ctx, entry: &str, raw: bool) -> Result<ExitCode> {
    if raw && ctx.json {
        bail!("--raw writes the stored bytes; it cannot be combined with --json");
    }
    let mut ledger = ctx.backend()?;
    let v = ledger.find_entry(entry)?;
    if raw {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        o.write_all(&v.bytes)?;
        o.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = ledger.keys()?.into_iter().find(|k| k.id == v.entry.signer).map(|k| k.name.to_string());
    if ctx.json {
        json_out(&EntryOut::new(&v, name.as_deref()))?;
    } else {
        /// The readable part of `show`: links and body, as JSON.
        #[derive(Serialize)]
        struct Content<'a> {
            body: &'a Body,
            links: &'a [Link],
        }
        line(format!("entry     #{} {}", v.seq, v.hash))?;
        line(format!("kind      {}", v.record.kind()))?;
        line(format!("integrated {}", v.entry.time))?;
        line(format!("event     {}", v.record.time))?;
        line(format!("actor     {}", v.record.actor))?;
        line(format!("signer    {} ({})", v.entry.signer, name.as_deref().unwrap_or("unknown")))?;
        line(format!("prev      {}", v.entry.prev))?;
        line(format!("size      {} bytes", v.bytes.len()))?;
        line(serde_json::to_string_pretty(&Content { body: &v.record.body, links: &v.record.links })?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger log [--kind K] [--subject S] [--since T] [--limit N]`: entries are printed as
/// they arrive, one line (or one JSON object) each, so a long answer is never held whole.
pub fn log(
    ctx: &Ctx,
    kind: Option<String>,
    subject: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
) -> Result<ExitCode> {
    let kind = kind.as_deref().map(str::parse::<Kind>).transpose()?;
    let since = since.as_deref().map(parse_time).transpose()?;
    let mut ledger = ctx.backend()?;
    let names: BTreeMap<_, _> = ledger.keys()?.into_iter().map(|k| (k.id, k.name.to_string())).collect();
    ledger.log_each(&LogArgs { kind, subject, since, limit }, |v| {
        if ctx.json {
            let name = names.get(&v.entry.signer).map(String::as_str);
            line(serde_json::to_string(&EntryOut::new(&v, name))?)
        } else {
            line(output::log_line(&v))
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
