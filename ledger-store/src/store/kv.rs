//! The seam between the layout and a storage engine: an ordered key-value store with atomic,
//! durable batch writes.

#[allow(unused_imports)] // for the doc links
use crate::error::{Error, Result};

/// An ordered key-value store: what the layout needs from a backend.
pub trait Kv: Send + Sync {
    /// The value under `key`.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The values under each of `keys`, in order: one round trip where the engine has them
    /// (a database), one look-up each otherwise.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// The pairs with `from <= key < to`, in key order.
    fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> KvIter<'a>;
    /// The pairs whose key starts with `prefix`, in key order.
    fn prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a>;
    /// Calls `f` with each pair whose key starts with `prefix`, in key order, borrowed (no copy
    /// per pair: for scans over millions of keys); stops at `f`'s first error.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error; `f`'s errors.
    fn for_each_prefix(&self, prefix: &[u8], f: &mut PairFn<'_>) -> Result<()> {
        for kv in self.prefix(prefix) {
            let (k, v) = kv?;
            f(&k, &v)?;
        }
        Ok(())
    }
    /// Applies `puts` then `removes` atomically and returns once they are durable. Keys and
    /// values are borrowed: the engine copies them once, into its own buffers.
    ///
    /// # Errors
    /// [`Error::Storage`] if the write or the flush fails.
    fn write(&self, puts: &[(&[u8], &[u8])], removes: &[&[u8]]) -> Result<()>;
    /// An append: writes `new` (keys that must not exist yet: entries, their index keys,
    /// tiles just filled) and `replace` (keys whose value is replaced: the head, the tree)
    /// atomically and durably, only if `guard.key` still holds `guard.expect` when the write
    /// commits, checked in the same transaction. Stores several handles share (PostgreSQL)
    /// check the guard: the writer passes the head it extends, so a handle whose view is
    /// stale cannot overwrite entries another appended (no fork, whatever the leases did);
    /// they also insert `new` without an upsert's cost, and fail if one of its keys exists.
    /// An embedded store has one handle (its directory lock), so the default only writes.
    ///
    /// # Errors
    /// As [`Kv::write`]; [`Error::NotWriter`] if the handle holds no writer lease (nothing
    /// was written); [`Error::Storage`] if the guard failed (nothing was written).
    fn append(&self, new: &[(&[u8], &[u8])], replace: &[(&[u8], &[u8])], guard: Guard<'_>) -> Result<()> {
        let _ = guard;
        if replace.is_empty() {
            return self.write(new, &[]);
        }
        self.write(&[new, replace].concat(), &[])
    }
    /// Whether this handle may write now, for stores several handles share.
    fn role(&self) -> super::Role {
        super::Role::Writer
    }
    /// Tries once to claim the writer lease of a store several handles share: `Ok(true)` when
    /// this handle holds it (an embedded store's only handle always does).
    ///
    /// # Errors
    /// [`Error::Storage`] if the store cannot be reached.
    fn claim_writer(&self) -> Result<bool> {
        Ok(true)
    }
    /// Gives the writer lease up, so that another handle may claim it at once.
    ///
    /// # Errors
    /// [`Error::Storage`] if the store cannot be reached.
    fn release_writer(&self) -> Result<()> {
        Ok(())
    }
    /// Readies the engine for closing so that the next open is quick; called when the store
    /// is dropped. Nothing durable depends on it: every write already is.
    fn settle(&self) {}
}

/// A callback given each key-value pair of a scan, borrowed.
pub type PairFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Key-value pairs read from a [`Kv`], in key order.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// The condition of [`Kv::append`]: `key` holds `expect` (`None`: `key` is absent).
#[derive(Clone, Copy, Debug)]
pub struct Guard<'a> {
    /// The key checked.
    pub key: &'a [u8],
    /// The value it must hold.
    pub expect: Option<&'a [u8]>,
}
