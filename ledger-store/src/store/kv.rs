//! The seam between the layout and a storage engine: an ordered key-value store with atomic,
//! durable batch writes.

use crate::error::Result;

/// An ordered key-value store: what the layout needs from a backend.
pub trait Kv: Send + Sync {
    /// The value under `key`.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The pairs with `from <= key < to`, in key order.
    fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> KvIter<'a>;
    /// The pairs whose key starts with `prefix`, in key order.
    fn prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a>;
    /// Applies `puts` then `removes` atomically and returns once they are durable. Keys and
    /// values are borrowed: the engine copies them once, into its own buffers.
    ///
    /// # Errors
    /// [`Error::Storage`] if the write or the flush fails.
    fn write(&self, puts: &[(&[u8], &[u8])], removes: &[&[u8]]) -> Result<()>;
}

/// Key-value pairs read from a [`Kv`], in key order.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;
