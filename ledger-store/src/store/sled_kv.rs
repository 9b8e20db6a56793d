//! The sled backend of [`super::Kv`]: one tree, `apply_batch` then `flush` per write.

use std::path::Path;

use super::kv::{Kv, KvIter, PairFn};
use crate::error::{Error, Result};

/// A sled database as a [`Kv`].
pub(super) struct SledKv {
    db: sled::Db,
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
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || cfg.open()));
        match opened {
            Ok(r) => Ok(SledKv { db: r? }),
            Err(_) => Err(Error::Storage("sled could not read the database files (corrupt?)".into())),
        }
    }
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
        Ok(())
    }
}
