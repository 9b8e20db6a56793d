//! [`Raw`]: a store's keys without any check, for the tests that tamper with it.

use ledger_core::types::Seq;

use super::index::index_pair;
use super::{IndexKey, Kv};
use crate::error::Result;

/// Direct access to a store's keys, bypassing every check: for tests that tamper with it.
#[doc(hidden)]
pub struct Raw<'a>(pub(super) &'a dyn Kv);

#[doc(hidden)]
#[allow(missing_docs, clippy::missing_errors_doc)]
impl Raw<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.0.get(key.as_ref())
    }
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.0.write(&[(key.as_ref(), value.as_ref())], &[])
    }
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.0.write(&[], &[key.as_ref()])
    }
    pub fn keys_with_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<Vec<u8>>> {
        self.0.prefix(prefix.as_ref()).map(|kv| kv.map(|(k, _)| k)).collect()
    }
    /// Writes the derived index key `key` → `seq` as the writer would.
    pub fn insert_index(&self, key: &IndexKey, seq: Seq) -> Result<()> {
        let s = seq.0.to_be_bytes();
        let (k, v) = index_pair(key, &s);
        self.0.write(&[(&k, v)], &[])
    }
    /// Removes the derived index key `key` → `seq`.
    pub fn remove_index(&self, key: &IndexKey, seq: Seq) -> Result<()> {
        let s = seq.0.to_be_bytes();
        let (k, _) = index_pair(key, &s);
        self.0.write(&[], &[&k])
    }
}
