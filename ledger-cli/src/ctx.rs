//! Where a command runs and what it may read: the ledger (local `--db` or a remote
//! `--server`), the key files (always local), the output mode, and the clock.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use ledger_core::types::{Clock, Timestamp};
use ledger_store::clock::SystemClock;

use crate::backend::{Backend, Remote, RemoteOptions};
use crate::cli::{AdminArgs, Cli, SignerArgs};

/// Where commands run, where key files live, and how results are printed.
pub struct Ctx {
    /// The local ledger directory (and the default home of key files).
    pub db: PathBuf,
    /// `--store`: the ledger in a PostgreSQL database instead of `db`'s embedded store.
    pub store: Option<String>,
    /// The server, when `--server` is given.
    pub remote: Option<RemoteOptions>,
    /// `--json`: print results as JSON.
    pub json: bool,
}

impl Ctx {
    /// The context the global flags describe (reads the read token file, if given).
    ///
    /// # Errors
    /// The read token file cannot be read.
    pub fn new(cli: &Cli) -> Result<Self> {
        let read_token = match &cli.read_token_file {
            Some(p) => {
                Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?.trim().to_string())
            }
            None => None,
        };
        if let Some(s) = cli.store.as_deref().filter(|s| !ledger_store::store::is_postgres(s)) {
            bail!("--store `{s}`: expected a postgres:// URL (an embedded store is --db DIR)");
        }
        Ok(Ctx {
            db: cli.db.clone(),
            store: cli.store.clone(),
            remote: cli.server.clone().map(|url| RemoteOptions { url, ca_cert: cli.ca_cert.clone(), read_token }),
            json: cli.json,
        })
    }

    /// Opens the local ledger or connects to the server.
    ///
    /// # Errors
    /// No ledger at `--db`, it is in use, or the server cannot be reached.
    pub fn backend(&self) -> Result<Backend> {
        match &self.remote {
            Some(r) => Ok(Backend::Remote(Remote::connect(r)?)),
            None => Ok(Backend::Local(crate::backend::open_local(self.open_store()?, self.store_name())?)),
        }
    }

    /// Opens the local store: `--store`'s database, else `--db`'s directory.
    ///
    /// # Errors
    /// No ledger there, it is in use, or the database cannot be reached.
    pub fn open_store(&self) -> Result<ledger_store::store::DiskStore> {
        Ok(match &self.store {
            Some(url) => ledger_store::store::DiskStore::open_url(url)?,
            None => ledger_store::store::DiskStore::open(&self.db)?,
        })
    }

    /// Where the local ledger is, for messages (a database URL without its password).
    pub fn store_name(&self) -> String {
        match &self.store {
            Some(url) => ledger_store::store::redact(url),
            None => self.db.display().to_string(),
        }
    }

    /// Refuses to run `ledger <what>` through a server.
    ///
    /// # Errors
    /// `--server` was given.
    pub fn local_only(&self, what: &str) -> Result<()> {
        if self.remote.is_some() {
            bail!(
                "`ledger {what}` works on a local ledger only; run it without --server, where the ledger directory is"
            );
        }
        Ok(())
    }

    /// The signing key for appends: `--key`, else `<db>/keys/local.key`.
    ///
    /// # Errors
    /// The key file is missing, readable by others, or not an Ed25519 PKCS#8 key.
    pub fn signer_key(&self, s: &SignerArgs) -> Result<SigningKey> {
        read_private(&s.key.clone().unwrap_or_else(|| self.keys_dir().join("local.key")))
    }

    /// The admin key: `--admin-key`, else `<db>/keys/admin.key`.
    ///
    /// # Errors
    /// As [`Ctx::signer_key`].
    pub fn admin_key(&self, a: &AdminArgs) -> Result<SigningKey> {
        read_private(&a.admin_key.clone().unwrap_or_else(|| self.keys_dir().join("admin.key")))
    }

    /// Where a local checkpoint key is: `key`, else `<db>/keys/log.key` (made by `init`),
    /// else `<db>/keys/admin.key` (a ledger with no log key).
    pub fn checkpoint_key_path(&self, key: Option<PathBuf>) -> PathBuf {
        key.unwrap_or_else(|| {
            let log = self.keys_dir().join("log.key");
            if log.exists() {
                log
            } else {
                self.keys_dir().join("admin.key")
            }
        })
    }

    /// `<db>/keys`.
    pub fn keys_dir(&self) -> PathBuf {
        self.db.join("keys")
    }

    /// The time now, from the system clock.
    pub fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}

/// Reads a PKCS#8 PEM Ed25519 private key, refusing a file readable by others.
///
/// # Errors
/// The file is missing, too open, or not a key.
pub fn read_private(path: &Path) -> Result<SigningKey> {
    Ok(ledger_store::keyfile::read_private(path)?)
}

/// Parses a time given on the command line (RFC 3339 or `YYYY-MM-DD`).
///
/// # Errors
/// Neither form.
pub fn parse_time(s: &str) -> Result<Timestamp> {
    Ok(s.parse::<Timestamp>()?)
}

/// Reads a whole input file (`-` for standard input), refusing one over `limit` bytes:
/// `what` says what the limit is for, in the error.
///
/// # Errors
/// The file cannot be read, or is larger than `limit`.
pub fn read_input(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut buf).context("reading standard input")?;
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        f.take(limit + 1).read_to_end(&mut buf).with_context(|| format!("reading {}", path.display()))?;
    }
    if buf.len() as u64 > limit {
        bail!("{} is larger than {limit} bytes; {what}", path.display());
    }
    Ok(buf)
}
