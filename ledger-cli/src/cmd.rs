//! Command implementations.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::entry::{key_id, SignedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::record::{Body, KeyAction, KeyBody, Kind, Link, Record};
use ledger_core::subject::Subject;
use ledger_core::types::{Clock, Identity, PublicKeyBytes, Timestamp, Token};
use ledger_store::ledger::{Ledger, Receipt};
use ledger_store::store::DiskStore;

use crate::backend::{Backend, LogArgs, Remote, RemoteOptions, VerifyOutcome};
use serde_json::json;

use crate::output::{self, json_out, line};
use crate::{AdminArgs, Cli, Command, IngestCommand, KeyCommand, SignerArgs};

use ledger_store::clock::SystemClock;

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Where commands run and where key files live.
pub struct Ctx {
    /// The local ledger directory (and default home of key files).
    pub db: PathBuf,
    /// The server, when `--server` is given.
    pub remote: Option<RemoteOptions>,
}

impl Ctx {
    /// Opens the local ledger or connects to the server.
    pub fn backend(&self) -> Result<Backend> {
        match &self.remote {
            Some(r) => Ok(Backend::Remote(Remote::connect(r)?)),
            None => Ok(Backend::Local(crate::backend::open_local(&self.db)?)),
        }
    }
}

fn admin_key_path(db: &Path, a: &AdminArgs) -> PathBuf {
    a.admin_key.clone().unwrap_or_else(|| db.join("keys").join("admin.key"))
}

/// Reads the signing key for appends.
pub fn signer_key(db: &Path, s: &SignerArgs) -> Result<SigningKey> {
    let path = s.key.clone().unwrap_or_else(|| db.join("keys").join("local.key"));
    keyfile_read(&path)
}

fn keyfile_read(path: &Path) -> Result<SigningKey> {
    Ok(ledger_store::keyfile::read_private(path)?)
}

fn ident(s: &str) -> Result<Identity> {
    Ok(Identity::new(s)?)
}

/// Signs `record` with `key` and appends it.
pub fn sign_and_append(ledger: &mut Backend, record: &Record, key: &SigningKey) -> Result<Receipt> {
    let signed = SignedRecord::sign(record, key)?;
    let mut r = ledger.append(std::slice::from_ref(&signed))?;
    r.pop().ok_or_else(|| anyhow!("the ledger returned no receipt"))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let read_token = match &cli.read_token_file {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?.trim().to_string())
        }
        None => None,
    };
    let ctx = Ctx {
        db: cli.db.clone(),
        remote: cli.server.clone().map(|url| RemoteOptions { url, ca_cert: cli.ca_cert.clone(), read_token }),
    };
    let local_only = |what: &str| -> Result<()> {
        if ctx.remote.is_some() {
            bail!(
                "`ledger {what}` works on a local ledger only; run it without --server, where the ledger directory is"
            );
        }
        Ok(())
    };
    let db = ctx.db.clone();
    match cli.command {
        Command::Init { admin_key, no_local_key, backend, json } => {
            local_only("init")?;
            init(&db, admin_key, no_local_key, backend, json)
        }
        Command::Keygen { out, json } => keygen(&out, json),
        Command::Key(k) => key_cmd(&ctx, k),
        Command::Append { kind, body, signer, json, prove, proof_out, checkpoint_key } => {
            let prove = prove.then_some(ProveArgs { out: proof_out, key: checkpoint_key });
            append(&ctx, &kind, &body, &signer, json, prove)
        }
        Command::Show { entry, raw, json } => show(&ctx, &entry, raw, json),
        Command::Log { kind, subject, since, limit, json } => log(&ctx, kind, subject, since, limit, json),
        Command::Verify { json } => verify(&ctx, json),
        Command::Why { subject, json } => why(&ctx, &subject, json),
        Command::Ingest(IngestCommand::Git { path, repo, rev, signer, quiet, json }) => {
            crate::ingest_git::run(&ctx, &path, repo.as_deref(), &rev, &signer, quiet, json)
        }
        Command::Ingest(IngestCommand::Github { event, files, signer, json }) => {
            crate::ingest_github::run(&ctx, event.as_deref(), &files, &signer, json)
        }
        Command::Ingest(IngestCommand::Gitlab { event, files, signer, json }) => {
            crate::ingest_gitlab::run(&ctx, event.as_deref(), &files, &signer, json)
        }
        Command::Ingest(IngestCommand::Incident { system, files, caused_by, inferred, signer, json }) => {
            crate::ingest_incident::run(&ctx, &system, &files, &caused_by, inferred, &signer, json)
        }
        Command::Ingest(IngestCommand::Attestation { files, key, commit, signer_key, json }) => {
            let signer = SignerArgs { key: signer_key };
            crate::ingest_attestation::run(&ctx, &files, key.as_deref(), commit.as_deref(), &signer, json)
        }
        Command::Ingest(IngestCommand::Provenance { file, change, signer, json }) => {
            provenance(&ctx, &file, &change, &signer, json)
        }
        Command::Bench(b) => crate::bench::run(&ctx, b),
        Command::Checkpoint { origin, key, json } => crate::transparency::checkpoint(&ctx, origin, key, json),
        Command::Prove { entry, size, format, json, key } => {
            let format = if json { crate::transparency::ProofFormat::Json } else { format };
            crate::transparency::prove(&ctx, &entry, size, format, key)
        }
        Command::LogKey { key, json } => crate::transparency::log_key(&ctx, key, json),
        Command::Export { subject, since, until, all, out, key, json } => {
            let sel = crate::bundle::Selection {
                subject,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                all,
            };
            crate::bundle::export(&ctx, sel, &out, key, json)
        }
        Command::VerifyBundle { file, log_key, format, json } => {
            let as_json = json || format == crate::bundle::BundleFormat::Json;
            crate::bundle::verify_bundle(&file, &log_key, as_json)
        }
        Command::Consistency { old, new, json } => crate::transparency::consistency(&ctx, old, new, json),
        Command::Audit { pin, verifier_key, key, json } => {
            crate::transparency::audit(&ctx, &pin, &verifier_key, key, json)
        }
    }
}

/// What a `key` record says, before it is wrapped in a record.
struct KeySpec<'a> {
    action: KeyAction,
    name: &'a str,
    public: &'a VerifyingKey,
    kinds: Vec<Kind>,
    not_before: Timestamp,
    not_after: Option<Timestamp>,
    replaces: Option<ledger_core::types::KeyId>,
}

fn key_record(k: KeySpec<'_>, now: Timestamp) -> Result<Record> {
    Ok(Record {
        v: FORMAT_VERSION,
        time: now,
        actor: ident("ledger:admin")?,
        links: vec![],
        body: Body::Key(KeyBody {
            action: k.action,
            name: Token::new(k.name)?,
            public_key: PublicKeyBytes(k.public.to_bytes()),
            kinds: k.kinds,
            not_before: k.not_before,
            not_after: k.not_after,
            replaces: k.replaces,
        }),
    })
}

fn all_signer_kinds() -> Vec<Kind> {
    Kind::ALL.iter().copied().filter(|k| *k != Kind::Key).collect()
}

fn init(
    db: &Path,
    admin_key: Option<PathBuf>,
    no_local_key: bool,
    backend: ledger_store::store::Backend,
    as_json: bool,
) -> Result<ExitCode> {
    if db.exists() {
        let foreign = std::fs::read_dir(db)
            .with_context(|| format!("reading {}", db.display()))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name() != "keys");
        if foreign {
            bail!(
                "{} exists and is not empty; `ledger init` only creates a new ledger in a new or empty directory",
                db.display()
            );
        }
    }
    let now = SystemClock.now();
    let mut created: Vec<PathBuf> = vec![];
    let admin_path = admin_key.clone().unwrap_or_else(|| db.join("keys").join("admin.key"));
    let admin = if admin_key.is_some() && admin_path.exists() {
        keyfile_read(&admin_path)?
    } else {
        let k = crate::keyfile::generate()?;
        crate::keyfile::write_private(&admin_path, &k)?;
        created.push(admin_path.clone());
        k
    };
    let local_path = db.join("keys").join("local.key");
    let result = (|| -> Result<serde_json::Value> {
        let genesis = key_record(
            KeySpec {
                action: KeyAction::Genesis,
                name: "admin",
                public: &admin.verifying_key(),
                kinds: vec![Kind::Key],
                not_before: now,
                not_after: None,
                replaces: None,
            },
            now,
        )?;
        let store = DiskStore::create_with(db, backend)?;
        let mut ledger = Backend::Local(Ledger::create(store, &SignedRecord::sign(&genesis, &admin)?, clock())?);
        let mut local = serde_json::Value::Null;
        if !no_local_key {
            let k = crate::keyfile::generate()?;
            crate::keyfile::write_private(&local_path, &k)?;
            created.push(local_path.clone());
            let rec = key_record(
                KeySpec {
                    action: KeyAction::Register,
                    name: "local",
                    public: &k.verifying_key(),
                    kinds: all_signer_kinds(),
                    not_before: now,
                    not_after: None,
                    replaces: None,
                },
                now,
            )?;
            sign_and_append(&mut ledger, &rec, &admin)?;
            local = json!({ "name": "local", "key_id": key_id(&k.verifying_key()).to_hex(), "path": local_path });
        }
        Ok(json!({
            "db": db,
            "backend": backend.name(),
            "admin": { "key_id": key_id(&admin.verifying_key()).to_hex(), "path": admin_path },
            "local": local,
            "entries": ledger.len()?,
        }))
    })();
    let v = match result {
        Ok(v) => v,
        Err(e) => {
            for p in &created {
                let _ = std::fs::remove_file(p);
                let _ = std::fs::remove_file(crate::keyfile::public_path(p));
            }
            return Err(e);
        }
    };
    if as_json {
        json_out(&v)?;
    } else {
        line(format!("created ledger at {} (storage: {})", db.display(), backend.name()))?;
        line(format!("admin key  {}  {}", v["admin"]["key_id"].as_str().unwrap_or(""), admin_path.display()))?;
        if !no_local_key {
            line(format!(
                "local key  {}  {} (signs appends and ingests)",
                v["local"]["key_id"].as_str().unwrap_or(""),
                local_path.display()
            ))?;
        }
        line("keep the admin key offline in production: it is the only key that can register signers")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(out_path: &Path, as_json: bool) -> Result<ExitCode> {
    let k = crate::keyfile::generate()?;
    crate::keyfile::write_private(out_path, &k)?;
    let public = hex::encode(k.verifying_key().to_bytes());
    let id = key_id(&k.verifying_key()).to_hex();
    let pub_path = crate::keyfile::public_path(out_path);
    if as_json {
        json_out(&json!({ "private_key": out_path, "public_key_file": pub_path, "public_key": public, "key_id": id }))?;
    } else {
        line(format!("private key  {} (mode 0600)", out_path.display()))?;
        line(format!("public key   {}  {}", pub_path.display(), public))?;
        line(format!("key id       {id}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_time(s: &str) -> Result<Timestamp> {
    Ok(s.parse::<Timestamp>()?)
}

fn find_key<'a>(keys: &'a [KeyInfo], sel: &str) -> Result<&'a KeyInfo> {
    let by_name: Vec<&KeyInfo> =
        keys.iter().filter(|k| k.name.as_str() == sel && k.revoked_at.is_none() && k.rotated_to.is_none()).collect();
    if let [k] = by_name.as_slice() {
        return Ok(k);
    }
    let lower = sel.to_ascii_lowercase();
    let by_id: Vec<&KeyInfo> =
        if lower.len() >= 8 { keys.iter().filter(|k| k.id.to_hex().starts_with(&lower)).collect() } else { vec![] };
    match by_id.as_slice() {
        [k] => Ok(k),
        [] => bail!("no active key named `{sel}` and no key id starting with it (see `ledger key list`)"),
        _ => bail!("`{sel}` matches several key ids; give more characters"),
    }
}

fn key_cmd(ctx: &Ctx, cmd: KeyCommand) -> Result<ExitCode> {
    let db = ctx.db.as_path();
    let mut ledger = ctx.backend()?;
    let now = SystemClock.now();
    match cmd {
        KeyCommand::Add { name, public_key, kinds, not_before, not_after, admin, json } => {
            let public = crate::keyfile::read_public(&public_key)?;
            let kinds = if kinds.len() == 1 && kinds[0] == "all" {
                all_signer_kinds()
            } else {
                kinds.iter().map(|k| k.trim().parse::<Kind>()).collect::<Result<Vec<_>, _>>()?
            };
            let nb = not_before.as_deref().map(parse_time).transpose()?.unwrap_or(now);
            let na = not_after.as_deref().map(parse_time).transpose()?;
            let rec = key_record(
                KeySpec {
                    action: KeyAction::Register,
                    name: &name,
                    public: &public,
                    kinds,
                    not_before: nb,
                    not_after: na,
                    replaces: None,
                },
                now,
            )?;
            let admin = keyfile_read(&admin_key_path(db, &admin))?;
            output::receipt(&sign_and_append(&mut ledger, &rec, &admin)?, json)?;
        }
        KeyCommand::Rotate { key, public_key, not_after, admin, json } => {
            let keys = ledger.keys()?;
            let old = find_key(&keys, &key)?;
            let public = crate::keyfile::read_public(&public_key)?;
            let na = not_after.as_deref().map(parse_time).transpose()?;
            let rec = key_record(
                KeySpec {
                    action: KeyAction::Rotate,
                    name: old.name.as_str(),
                    public: &public,
                    kinds: old.kinds.clone(),
                    not_before: now,
                    not_after: na,
                    replaces: Some(old.id),
                },
                now,
            )?;
            let admin = keyfile_read(&admin_key_path(db, &admin))?;
            output::receipt(&sign_and_append(&mut ledger, &rec, &admin)?, json)?;
        }
        KeyCommand::Revoke { key, admin, json } => {
            let keys = ledger.keys()?;
            let k = find_key(&keys, &key)?;
            let rec = key_record(
                KeySpec {
                    action: KeyAction::Revoke,
                    name: k.name.as_str(),
                    public: &k.public,
                    kinds: vec![],
                    not_before: now,
                    not_after: None,
                    replaces: None,
                },
                now,
            )?;
            let admin = keyfile_read(&admin_key_path(db, &admin))?;
            output::receipt(&sign_and_append(&mut ledger, &rec, &admin)?, json)?;
        }
        KeyCommand::List { json } => {
            let keys = ledger.keys()?;
            if json {
                let v: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "name": k.name.as_str(), "key_id": k.id.to_hex(), "public_key": hex::encode(k.public.to_bytes()),
                            "kinds": k.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(), "admin": k.admin,
                            "status": k.status(now), "registered_at": k.registered_at.0,
                            "revoked_at": k.revoked_at.map(|s| s.0), "not_before": k.not_before, "not_after": k.not_after,
                            "rotated_to": k.rotated_to.map(|i| i.to_hex()),
                        })
                    })
                    .collect();
                json_out(&v)?;
            } else {
                let mut t = comfy_table::Table::new();
                t.load_preset(comfy_table::presets::NOTHING);
                t.set_header(["name", "key id", "status", "kinds", "registered", "not after"]);
                for k in &keys {
                    let kinds = if k.admin {
                        "key (admin)".to_string()
                    } else {
                        k.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
                    };
                    t.add_row([
                        k.name.to_string(),
                        k.id.short(),
                        k.status(now).to_string(),
                        kinds,
                        format!("#{}", k.registered_at),
                        k.not_after.map_or("-".into(), |t| t.to_string()),
                    ]);
                }
                line(t.to_string())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Largest body file read, in bytes. Records are limited to 64 KiB; this only bounds reading.
const MAX_BODY_FILE: u64 = 1024 * 1024;

fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().take(MAX_BODY_FILE + 1).read_to_end(&mut buf).context("reading standard input")?;
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        f.take(MAX_BODY_FILE + 1).read_to_end(&mut buf).with_context(|| format!("reading {}", path.display()))?;
    }
    if buf.len() as u64 > MAX_BODY_FILE {
        bail!(
            "{} is larger than {} bytes; records are limited to 64 KiB (reference large evidence by digest)",
            path.display(),
            MAX_BODY_FILE
        );
    }
    Ok(buf)
}

/// Parses an append body: the body fields plus `actor`, optional `time` and `links`.
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
            anyhow!(
                "links{}: {}",
                if e.path().to_string() == "." { String::new() } else { format!("{}", e.path()) },
                e.inner()
            )
        })?,
        None => vec![],
    };
    let body = Body::from_json(kind, serde_json::Value::Object(map)).map_err(|e| anyhow!("{kind} body: {e}"))?;
    Ok(Record { v: FORMAT_VERSION, time, actor, links, body })
}

/// `append --prove`: where to write the proof and which key signs a local checkpoint.
struct ProveArgs {
    out: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn append(
    ctx: &Ctx,
    kind: &str,
    body: &Path,
    signer: &SignerArgs,
    as_json: bool,
    prove: Option<ProveArgs>,
) -> Result<ExitCode> {
    let kind: Kind = kind.parse()?;
    let text = read_input(body)?;
    let record = parse_body(kind, &text, SystemClock.now()).with_context(|| format!("in {}", body.display()))?;
    let key = signer_key(&ctx.db, signer)?;
    let mut ledger = ctx.backend()?;
    let Some(prove) = prove else {
        output::receipt(&sign_and_append(&mut ledger, &record, &key)?, as_json)?;
        return Ok(ExitCode::SUCCESS);
    };
    let signed = SignedRecord::sign(&record, &key)?;
    let local_signer = crate::transparency::local_signer(ctx, prove.key.clone());
    let (receipt, proof, vkey) = ledger.append_proved(&signed, local_signer)?;
    // Check the proof before reporting it: the stored entry's leaf, under the log's key.
    let entry = ledger.find_entry(&format!("#{}", receipt.seq))?;
    let (name, vk) = ledger_core::note::parse_verifier_key(&vkey)?;
    let (_, cp) = ledger_core::note::open_tlog_proof(&proof, &ledger_core::merkle::leaf_hash(&entry.bytes), &name, &vk)
        .map_err(|e| anyhow!("the server's inclusion proof does not verify: {e}"))?;
    if let Some(path) = &prove.out {
        std::fs::write(path, &proof).with_context(|| format!("writing {}", path.display()))?;
    }
    if as_json {
        let mut v = output::receipt_json(&receipt);
        v["tree_size"] = json!(cp.size);
        v["verifier_key"] = json!(vkey);
        v["tlog_proof"] = json!(proof);
        json_out(&v)?;
    } else {
        output::receipt(&receipt, false)?;
        line(format!("inclusion proof checked against the checkpoint of tree size {} ({vkey})", cp.size))?;
        if let Some(path) = &prove.out {
            line(format!("tlog-proof written to {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn signer_name(ledger: &mut Backend, id: &ledger_core::types::KeyId) -> Result<Option<String>> {
    Ok(ledger.keys()?.into_iter().find(|k| &k.id == id).map(|k| k.name.to_string()))
}

fn show(ctx: &Ctx, entry: &str, raw: bool, as_json: bool) -> Result<ExitCode> {
    let mut ledger = ctx.backend()?;
    let v = ledger.find_entry(entry)?;
    if raw {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        o.write_all(&v.bytes)?;
        o.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = signer_name(&mut ledger, &v.entry.signer)?;
    if as_json {
        json_out(&output::entry_json(&v, name.as_deref()))?;
    } else {
        line(format!("entry     #{} {}", v.seq, v.hash))?;
        line(format!("kind      {}", v.record.kind()))?;
        line(format!("integrated {}", v.entry.time))?;
        line(format!("event     {}", v.record.time))?;
        line(format!("actor     {}", v.record.actor))?;
        line(format!("signer    {} ({})", v.entry.signer, name.as_deref().unwrap_or("unknown")))?;
        line(format!("prev      {}", v.entry.prev))?;
        line(format!("size      {} bytes", v.bytes.len()))?;
        line(serde_json::to_string_pretty(&json!({ "links": v.record.links, "body": v.record.body }))?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn log(
    ctx: &Ctx,
    kind: Option<String>,
    subject: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    as_json: bool,
) -> Result<ExitCode> {
    let kind = kind.as_deref().map(str::parse::<Kind>).transpose()?;
    let since = since.as_deref().map(parse_time).transpose()?;
    let mut ledger = ctx.backend()?;
    let names: std::collections::BTreeMap<_, _> =
        ledger.keys()?.into_iter().map(|k| (k.id, k.name.to_string())).collect();
    // Printed as they arrive: one line per entry, so the whole answer is never held.
    ledger.log_each(&LogArgs { kind, subject, since, limit }, |v| {
        if as_json {
            line(serde_json::to_string(&output::entry_json(&v, names.get(&v.entry.signer).map(String::as_str)))?)
        } else {
            line(output::log_line(&v))
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn verify(ctx: &Ctx, as_json: bool) -> Result<ExitCode> {
    let mut ledger = match &ctx.remote {
        Some(_) => ctx.backend()?,
        None => {
            let store = DiskStore::open(&ctx.db)?;
            // Open without trusting the head: a tampered head is reported like any other entry.
            match Ledger::open(store, clock()) {
                Ok(l) => Backend::Local(l),
                Err(ledger_store::Error::Tampered { seq, reason }) => return tampered(seq.0, &reason, as_json),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let total = ledger.len()?;
    let bar = if as_json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("verifying {bar:40} {pos}/{len} entries ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let res = ledger.verify(|n| bar.set_position(n));
    bar.finish_and_clear();
    match res? {
        VerifyOutcome::Intact { entries, head } => {
            if as_json {
                json_out(&json!({ "ok": true, "entries": entries, "head": head.to_hex() }))?;
            } else {
                line(format!("ok: {entries} entries verified (signatures, chain links, signer rights); head {head}"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        VerifyOutcome::Tampered { seq, reason } => tampered(seq, &reason, as_json),
    }
}

fn tampered(seq: u64, reason: &str, as_json: bool) -> Result<ExitCode> {
    if as_json {
        json_out(&json!({ "ok": false, "seq": seq, "reason": reason }))?;
    } else {
        line(format!("TAMPERED: entry #{seq} fails verification: {reason}"))?;
    }
    Ok(ExitCode::from(1))
}

fn why(ctx: &Ctx, subject: &str, as_json: bool) -> Result<ExitCode> {
    let report = ctx.backend()?.why(subject)?;
    if as_json {
        json_out(&report)?;
    } else {
        output::why_human(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn provenance(ctx: &Ctx, file: &Path, change: &str, signer: &SignerArgs, as_json: bool) -> Result<ExitCode> {
    let bytes = read_input(file)?;
    let change: Subject = change.parse().context("--change")?;
    let record = ledger_ingest::provenance::map(&bytes, &change, SystemClock.now())
        .with_context(|| format!("{}", file.display()))?;
    let Body::Session(session) = &record.body else { bail!("a provenance file maps to a session record") };
    let mut ledger = ctx.backend()?;
    // Re-ingesting the same file is a no-op: the same session from the same payload is found
    // by its subject and source digest (the record's time may differ between runs).
    let same =
        LogArgs { subject: Some(session.subject().to_string()), kind: Some(Kind::Session), ..Default::default() };
    for v in ledger.log(&same)? {
        if let Body::Session(s) = &v.record.body {
            if s.source == session.source && v.record.links.iter().any(|l| l.target == change) {
                output::receipt(
                    &Receipt {
                        seq: v.seq,
                        hash: v.hash,
                        record_id: ledger_core::entry::record_id(&v.entry.record.0),
                        duplicate: true,
                    },
                    as_json,
                )?;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let key = signer_key(&ctx.db, signer)?;
    output::receipt(&sign_and_append(&mut ledger, &record, &key)?, as_json)?;
    Ok(ExitCode::SUCCESS)
}
