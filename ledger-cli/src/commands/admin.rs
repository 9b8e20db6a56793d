//! Setting a ledger up and administering its signers: `init`, `keygen`, `key add|rotate|revoke|list`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ed25519_dalek::VerifyingKey;
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::entry::{key_id, SignedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::record::{Body, KeyAction, KeyBody, KeyRole, Kind, Record};
use ledger_core::types::{Identity, KeyId, PublicKeyBytes, SignatureBytes, Timestamp, Token};
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Backend as Engine, DiskStore};
use serde::Serialize;

use crate::backend::Backend;
use crate::cli::KeyCommand;
use crate::ctx::{parse_time, read_private, Ctx};
use crate::output::{self, json_out, line};

/// What a `key` record says, before it is wrapped in a record.
struct KeySpec<'a> {
    action: KeyAction,
    name: &'a str,
    public: &'a VerifyingKey,
    kinds: Vec<Kind>,
    not_before: Timestamp,
    not_after: Option<Timestamp>,
    replaces: Option<KeyId>,
    role: Option<KeyRole>,
    handover: Option<SignatureBytes>,
}

fn key_record(k: KeySpec<'_>, now: Timestamp) -> Result<Record> {
    Ok(Record {
        v: FORMAT_VERSION,
        time: now,
        actor: Identity::new("ledger:admin")?,
        links: vec![],
        body: Body::Key(KeyBody {
            action: k.action,
            name: Token::new(k.name)?,
            public_key: PublicKeyBytes(k.public.to_bytes()),
            kinds: k.kinds,
            not_before: k.not_before,
            not_after: k.not_after,
            replaces: k.replaces,
            role: k.role,
            handover: k.handover,
        }),
    })
}

/// Every kind a signer key may be given (`key` is the admin key's alone).
fn all_signer_kinds() -> Vec<Kind> {
    Kind::ALL.iter().copied().filter(|k| *k != Kind::Key).collect()
}

/// What `init` made.
#[derive(Serialize)]
struct InitOut {
    admin: KeyFileOut,
    backend: &'static str,
    /// Where the ledger is: the directory, or the database's URL without its password.
    db: String,
    entries: u64,
    local: Option<KeyFileOut>,
    log: KeyFileOut,
}

/// A key file `init` wrote (or used).
#[derive(Serialize)]
struct KeyFileOut {
    key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    path: PathBuf,
}

/// `ledger init`: an admin key, the genesis entry, the log key (signs checkpoints) and
/// (unless told not to) a registered local signer key. On failure, key files it created are
/// removed again.
pub fn init(ctx: &Ctx, admin_key: Option<PathBuf>, no_local_key: bool, engine: Engine) -> Result<ExitCode> {
    ctx.local_only("init")?;
    let db = ctx.db.as_path();
    if db.exists() {
        let foreign = std::fs::read_dir(db)
            .with_context(|| format!("reading {}", db.display()))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name() != "keys");
        if foreign && ctx.store.is_none() {
            bail!(
                "{} exists and is not empty; `ledger init` only creates a new ledger in a new or empty directory",
                db.display()
            );
        }
    }
    let now = ctx.now();
    let mut created: Vec<PathBuf> = vec![];
    let admin_path = admin_key.clone().unwrap_or_else(|| ctx.keys_dir().join("admin.key"));
    let admin = if admin_key.is_some() && admin_path.exists() {
        read_private(&admin_path)?
    } else {
        let k = crate::keyfile::generate()?;
        crate::keyfile::write_private(&admin_path, &k)?;
        created.push(admin_path.clone());
        k
    };
    let local_path = ctx.keys_dir().join("local.key");
    let log_path = ctx.keys_dir().join("log.key");
    let result = (|| -> Result<InitOut> {
        let genesis = key_record(
            KeySpec {
                action: KeyAction::Genesis,
                name: "admin",
                public: &admin.verifying_key(),
                kinds: vec![Kind::Key],
                not_before: now,
                not_after: None,
                replaces: None,
                role: None,
                handover: None,
            },
            now,
        )?;
        let store = match &ctx.store {
            Some(url) => DiskStore::create_url(url)?,
            None => DiskStore::create_with(db, engine)?,
        };
        let mut ledger =
            Backend::Local(Ledger::create(store, &SignedRecord::sign(&genesis, &admin)?, Arc::new(SystemClock))?);
        // The log key signs checkpoints, so the admin key can stay offline.
        let log_key = crate::keyfile::generate()?;
        crate::keyfile::write_private(&log_path, &log_key)?;
        created.push(log_path.clone());
        let rec = key_record(
            KeySpec {
                action: KeyAction::Register,
                name: "log",
                public: &log_key.verifying_key(),
                kinds: vec![],
                not_before: now,
                not_after: None,
                replaces: None,
                role: Some(KeyRole::Log),
                handover: None,
            },
            now,
        )?;
        ledger.sign_and_append(&rec, &admin)?;
        let log =
            KeyFileOut { key_id: key_id(&log_key.verifying_key()).to_hex(), name: Some("log"), path: log_path.clone() };
        let mut local = None;
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
                    role: None,
                    handover: None,
                },
                now,
            )?;
            ledger.sign_and_append(&rec, &admin)?;
            local = Some(KeyFileOut {
                key_id: key_id(&k.verifying_key()).to_hex(),
                name: Some("local"),
                path: local_path.clone(),
            });
        }
        Ok(InitOut {
            admin: KeyFileOut { key_id: key_id(&admin.verifying_key()).to_hex(), name: None, path: admin_path.clone() },
            backend: if ctx.store.is_some() { "postgres" } else { engine.name() },
            db: ctx.store_name(),
            entries: ledger.len()?,
            local,
            log,
        })
    })();
    let out = match result {
        Ok(v) => v,
        Err(e) => {
            for p in &created {
                let _ = std::fs::remove_file(p);
                let _ = std::fs::remove_file(crate::keyfile::public_path(p));
            }
            return Err(e);
        }
    };
    if ctx.json {
        json_out(&out)?;
    } else {
        line(format!("created ledger at {} (storage: {})", out.db, out.backend))?;
        line(format!("admin key  {}  {}", out.admin.key_id, admin_path.display()))?;
        line(format!(
            "log key    {}  {} (signs checkpoints: give it to ledgerd)",
            out.log.key_id,
            out.log.path.display()
        ))?;
        if let Some(l) = &out.local {
            line(format!("local key  {}  {} (signs appends and ingests)", l.key_id, l.path.display()))?;
        }
        line("keep the admin key offline in production: it is needed only to register, rotate or revoke keys")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `keygen` wrote.
#[derive(Serialize)]
struct KeygenOut {
    key_id: String,
    private_key: PathBuf,
    public_key: String,
    public_key_file: PathBuf,
}

/// `ledger keygen --out FILE`.
pub fn keygen(ctx: &Ctx, out_path: &Path) -> Result<ExitCode> {
    let k = crate::keyfile::generate()?;
    crate::keyfile::write_private(out_path, &k)?;
    let out = KeygenOut {
        key_id: key_id(&k.verifying_key()).to_hex(),
        private_key: out_path.to_path_buf(),
        public_key: hex::encode(k.verifying_key().to_bytes()),
        public_key_file: crate::keyfile::public_path(out_path),
    };
    if ctx.json {
        json_out(&out)?;
    } else {
        line(format!("private key  {} (mode 0600)", out_path.display()))?;
        line(format!("public key   {}  {}", out.public_key_file.display(), out.public_key))?;
        line(format!("key id       {}", out.key_id))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The active key named `sel`, or the key whose id starts with `sel` (≥ 8 hex).
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

/// One key as `key list --json` prints it.
#[derive(Serialize)]
struct KeyOut<'a> {
    admin: bool,
    key_id: String,
    kinds: Vec<&'static str>,
    name: &'a str,
    not_after: Option<Timestamp>,
    not_before: Timestamp,
    public_key: String,
    registered_at: u64,
    revoked_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<KeyRole>,
    rotated_to: Option<String>,
    status: &'static str,
}

/// `ledger key add|rotate|revoke|list`.
pub fn key(ctx: &Ctx, cmd: KeyCommand) -> Result<ExitCode> {
    let mut ledger = ctx.backend()?;
    let now = ctx.now();
    let spec = |action, name, public, kinds, not_before, not_after| KeySpec {
        action,
        name,
        public,
        kinds,
        not_before,
        not_after,
        replaces: None,
        role: None,
        handover: None,
    };
    match cmd {
        KeyCommand::Add { name, public_key, kinds, log, not_before, not_after, admin } => {
            let public = crate::keyfile::read_public(&public_key)?;
            let kinds = if log {
                vec![]
            } else if kinds.len() == 1 && kinds[0] == "all" {
                all_signer_kinds()
            } else {
                kinds.iter().map(|k| k.trim().parse::<Kind>()).collect::<Result<Vec<_>, _>>()?
            };
            let nb = not_before.as_deref().map(parse_time).transpose()?.unwrap_or(now);
            let na = not_after.as_deref().map(parse_time).transpose()?;
            let rec = key_record(
                KeySpec {
                    role: log.then_some(KeyRole::Log),
                    ..spec(KeyAction::Register, &name, &public, kinds, nb, na)
                },
                now,
            )?;
            let admin = ctx.admin_key(&admin)?;
            output::receipt(&ledger.sign_and_append(&rec, &admin)?, ctx.json)?;
        }
        KeyCommand::Rotate { key, public_key, not_after, handover_key, admin } => {
            let keys = ledger.keys()?;
            let old = find_key(&keys, &key)?;
            let public = crate::keyfile::read_public(&public_key)?;
            let na = not_after.as_deref().map(parse_time).transpose()?;
            let handover = match old.role {
                Some(KeyRole::Log) => {
                    let path = handover_key.unwrap_or_else(|| ctx.keys_dir().join("log.key"));
                    let signer = read_private(&path).with_context(|| {
                        "rotating the log key needs the old log key to sign the hand-over (--handover-key)"
                    })?;
                    if key_id(&signer.verifying_key()) != old.id {
                        bail!(
                            "{} is not the log key being rotated ({}): give the old log key's file with --handover-key",
                            path.display(),
                            old.id.short()
                        );
                    }
                    Some(ledger_core::keys::sign_handover(&signer, &public))
                }
                None if handover_key.is_some() => bail!("--handover-key is only for rotating the log key"),
                None => None,
            };
            let rec = key_record(
                KeySpec {
                    replaces: Some(old.id),
                    role: old.role,
                    handover,
                    ..spec(KeyAction::Rotate, old.name.as_str(), &public, old.kinds.clone(), now, na)
                },
                now,
            )?;
            let admin = ctx.admin_key(&admin)?;
            output::receipt(&ledger.sign_and_append(&rec, &admin)?, ctx.json)?;
        }
        KeyCommand::Revoke { key, admin } => {
            let keys = ledger.keys()?;
            let k = find_key(&keys, &key)?;
            let rec = key_record(spec(KeyAction::Revoke, k.name.as_str(), &k.public, vec![], now, None), now)?;
            let admin = ctx.admin_key(&admin)?;
            output::receipt(&ledger.sign_and_append(&rec, &admin)?, ctx.json)?;
        }
        KeyCommand::List => list_keys(ctx, &ledger.keys()?, now)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn list_keys(ctx: &Ctx, keys: &[KeyInfo], now: Timestamp) -> Result<()> {
    if ctx.json {
        let out: Vec<KeyOut<'_>> = keys
            .iter()
            .map(|k| KeyOut {
                admin: k.admin,
                key_id: k.id.to_hex(),
                kinds: k.kinds.iter().map(|k| k.as_str()).collect(),
                name: k.name.as_str(),
                not_after: k.not_after,
                not_before: k.not_before,
                public_key: hex::encode(k.public.to_bytes()),
                registered_at: k.registered_at.0,
                revoked_at: k.revoked_at.map(|s| s.0),
                role: k.role,
                rotated_to: k.rotated_to.map(|i| i.to_hex()),
                status: k.status(now),
            })
            .collect();
        return json_out(&out);
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["name", "key id", "status", "kinds", "registered", "not after"]);
    for k in keys {
        let kinds = if k.admin {
            "key (admin)".to_string()
        } else if k.role == Some(KeyRole::Log) {
            "checkpoints (log key)".to_string()
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
    line(t.to_string())
}
