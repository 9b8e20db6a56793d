//! The fjall backend of [`super::Kv`]: one partition; each write is one atomic batch whose
//! journal is `fdatasync`ed before it returns. fjall takes no lock on its directory: the
//! store's `LOCK` file (see `disk.rs`) keeps a second process out.

use std::path::Path;

use fjall::{AbstractTree, Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::kv::{Kv, KvIter, PairFn};
use crate::error::{Error, Result};

/// The keyspace's directory inside the ledger directory.
pub(super) const SUBDIR: &str = "fjall";
/// The one partition holding the layout.
const PARTITION: &str = "ledger";
/// At close, a memtable larger than this is written out to a segment: opening replays the
/// journal behind the memtable, about 7 ms per MiB, so a ledger closed this way opens in a few
/// milliseconds however large it is.
const SETTLE_BYTES: u32 = 1 << 20;
/// How long closing waits for that write before leaving it to the next open's replay.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("fjall: {e}"))
}

/// A fjall keyspace and partition as a [`Kv`].
pub(super) struct FjallKv {
    keyspace: Keyspace,
    partition: PartitionHandle,
}

impl FjallKv {
    /// Opens (or creates) the keyspace under `dir`.
    ///
    /// # Errors
    /// [`Error::Storage`] if the engine cannot open or read its files.
    pub(super) fn open(dir: &Path, cache_bytes: u64) -> Result<Self> {
        // Durability comes from persisting each batch; no timer-driven fsync is needed.
        let path = dir.join(SUBDIR);
        // A corrupt directory must be an error, not a crash, whatever the engine does with it.
        let opened = std::panic::catch_unwind(move || {
            let keyspace = Config::new(path).cache_size(cache_bytes).fsync_ms(None).open()?;
            let partition = keyspace.open_partition(PARTITION, PartitionCreateOptions::default())?;
            Ok::<_, fjall::Error>((keyspace, partition))
        });
        let (keyspace, partition) = match opened {
            Ok(r) => r.map_err(storage)?,
            Err(_) => return Err(Error::Storage("fjall could not read the database files (corrupt?)".into())),
        };
        Ok(FjallKv { keyspace, partition })
    }
}

fn pairs<'a>(it: impl Iterator<Item = fjall::Result<(fjall::Slice, fjall::Slice)>> + 'a) -> KvIter<'a> {
    Box::new(it.map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(storage)))
}

impl Kv for FjallKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.partition.get(key).map_err(storage)?.map(|v| v.to_vec()))
    }

    fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> KvIter<'a> {
        pairs(self.partition.range(from.to_vec()..to.to_vec()))
    }

    fn prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
        pairs(self.partition.prefix(prefix))
    }

    fn for_each_prefix(&self, prefix: &[u8], f: &mut PairFn<'_>) -> Result<()> {
        for kv in self.partition.prefix(prefix) {
            let (k, v) = kv.map_err(storage)?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn write(&self, puts: &[(&[u8], &[u8])], removes: &[&[u8]]) -> Result<()> {
        let mut b = self.keyspace.batch().durability(Some(PersistMode::SyncData));
        for (k, v) in puts {
            b.insert(&self.partition, *k, *v);
        }
        for k in removes {
            b.remove(&self.partition, *k);
        }
        b.commit().map_err(storage)
    }

    fn settle(&self) {
        let tree = &self.partition.tree;
        if tree.active_memtable_size() <= SETTLE_BYTES {
            return;
        }
        // The memtable becomes a segment and its journal is retired: the next open has
        // almost nothing to replay. Waited for with a deadline: a failing flush must not
        // hang the close (the journal still holds everything).
        if !matches!(self.partition.rotate_memtable(), Ok(true)) {
            return;
        }
        let deadline = std::time::Instant::now() + SETTLE_WAIT;
        while tree.sealed_memtable_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}
