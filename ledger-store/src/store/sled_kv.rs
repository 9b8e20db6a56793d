//! The sled backend of [`super::Kv`]: one tree; per write, `apply_batch`, `flush`, then
//! `fdatasync` of what the flush wrote.
//!
//! sled 0.34's `flush` ends in `sync_file_range`, which pushes the pages to the device but not
//! the file's metadata nor the device's cache: a power cut can lose acknowledged writes (the
//! power-cut battery lost hundreds per cut). So each write also `fdatasync`s the `db` file and
//! any blob file (values sled keeps outside its log) written since the last write, and the
//! `blobs` directory when it gained entries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::kv::{Kv, KvIter, PairFn};
use crate::error::{Error, Result};

/// A sled database as a [`Kv`].
pub(super) struct SledKv {
    db: sled::Db,
    /// The `db` file, for `fdatasync` (any descriptor of the file syncs its pages).
    file: std::fs::File,
    /// sled's blob directory.
    blobs: PathBuf,
    /// Blob files already made durable.
    synced_blobs: Mutex<BTreeSet<std::ffi::OsString>>,
}

impl SledKv {
    /// Opens (or creates) the sled database in `dir`.
    ///
    /// # Errors
    /// [`Error::Storage`] if sled cannot open or read its files (the store's `LOCK` file keeps
    /// a second handle out before sled is asked).
    pub(super) fn open(dir: &Path, cache_bytes: u64) -> Result<Self> {
        // HighThroughput measured ~30% less time per appended entry than the default
        // LowSpace (docs/BENCHMARKS.md), at the cost of more disk space.
        let cfg = sled::Config::new().path(dir).cache_capacity(cache_bytes).mode(sled::Mode::HighThroughput);
        // sled panics on some corrupt files instead of returning an error; a corrupt
        // directory must be an error, not a crash.
        // A handle on the same directory dropped a moment ago in this process keeps sled's
        // own file lock until its threads stop: wait for it briefly, as for the `LOCK` file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let db = loop {
            let cfg = cfg.clone();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || cfg.open())) {
                Ok(Ok(db)) => break db,
                // sled reports lock contention only as text.
                Ok(Err(sled::Error::Io(e)))
                    if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(Error::Storage("sled could not read the database files (corrupt?)".into())),
            }
        };
        let io = |what: &Path, e: std::io::Error| Error::Storage(format!("sled: {}: {e}", what.display()));
        let db_path = dir.join("db");
        let file = std::fs::File::open(&db_path).map_err(|e| io(&db_path, e))?;
        // sled writes its `conf` once, without a sync: an empty one after a power cut makes
        // sled start over on the log ("empty/corrupt configuration file found").
        let conf = dir.join("conf");
        std::fs::File::open(&conf).and_then(|f| f.sync_all()).map_err(|e| io(&conf, e))?;
        // The files sled created must be reachable after a power cut: sync their directories.
        let blobs = dir.join("blobs");
        sync_dir(dir).map_err(|e| io(dir, e))?;
        if blobs.is_dir() {
            sync_dir(&blobs).map_err(|e| io(&blobs, e))?;
        }
        let kv = SledKv { db, file, blobs, synced_blobs: Mutex::new(BTreeSet::new()) };
        kv.sync().map_err(|e| io(dir, e))?;
        Ok(kv)
    }

    /// Makes what sled has flushed durable: `fdatasync` of the `db` file, and of each blob
    /// file not yet synced, then of the `blobs` directory if it gained any.
    fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut synced = self.synced_blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut present = BTreeSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry?.file_name();
            if !synced.contains(&name) {
                match std::fs::File::open(self.blobs.join(&name)) {
                    Ok(f) => f.sync_data()?,
                    // Removed by sled's blob collection since the listing.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            sync_dir(&self.blobs)?;
        }
        *synced = present;
        Ok(())
    }
}

/// `fsync` of a directory: makes the names of files created in it durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn pairs<'a>(it: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a) -> KvIter<'a> {
    Box::new(it.map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Error::from)))
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> KvIter<'a> {
        pairs(self.db.range(from.to_vec()..to.to_vec()))
    }

    fn prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
        pairs(self.db.scan_prefix(prefix))
    }

    fn for_each_prefix(&self, prefix: &[u8], f: &mut PairFn<'_>) -> Result<()> {
        for kv in self.db.scan_prefix(prefix) {
            let (k, v) = kv.map_err(Error::from)?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn write(&self, puts: &[(&[u8], &[u8])], removes: &[&[u8]]) -> Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in puts {
            b.insert(*k, *v);
        }
        for k in removes {
            b.remove(*k);
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        self.sync().map_err(|e| Error::Storage(format!("sled: making the write durable: {e}")))
    }
}
