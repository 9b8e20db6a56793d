//! The whole log in memory for the period commands: one sequential read of the entries,
//! decoded on every core, indexed by subject ([`ledger_audit::snapshot::Snapshot`]). The
//! entries are decoded without re-checking their canonical form (the ledger wrote them, and
//! `verify` checks every entry's form, hash, chain and signature); the hash each report names
//! is computed from the stored bytes.

use std::collections::BTreeMap;

use ledger_audit::snapshot::Snapshot;
use ledger_audit::why::Gathered;
use ledger_core::entry::Entry;
use ledger_core::record::Kind;
use ledger_core::types::{KeyId, Seq};

use super::Ledger;
use crate::error::{Error, Result};
use crate::store::Store;

/// Entries read per storage range scan.
const CHUNK: u64 = 8192;

impl<S: Store> Ledger<S> {
    /// Every entry below `tree_size` (the whole log when `None`) of the `kinds` given (every
    /// kind when `None`; the kind index says which entries to decode), decoded and indexed in
    /// memory. `progress` is called with the number of entries read so far.
    ///
    /// # Errors
    /// [`Error::Tampered`] if an entry is missing or does not decode; [`Error::Storage`].
    pub fn snapshot(
        &self,
        tree_size: Option<u64>,
        kinds: Option<&[Kind]>,
        mut progress: impl FnMut(u64),
    ) -> Result<Snapshot> {
        let size = tree_size.map_or(self.len(), |t| t.min(self.len()));
        let wanted: Option<Vec<bool>> = match kinds {
            None => None,
            Some(kinds) => {
                let mut w = vec![false; size as usize];
                for k in kinds {
                    for seq in self.store.kind_seqs(*k)? {
                        if let Some(slot) = w.get_mut(seq.0 as usize) {
                            *slot = true;
                        }
                    }
                }
                Some(w)
            }
        };
        let wanted = wanted.as_deref();
        let names: BTreeMap<KeyId, String> = self.keys().into_iter().map(|k| (k.id, k.name.to_string())).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let mut records: Vec<Gathered> = Vec::with_capacity(size as usize);
        let began = std::time::Instant::now();
        let mut from = 0u64;
        while from < size {
            let want = CHUNK.min(size - from);
            let chunk = self.store.entries(Seq(from), want)?;
            if (chunk.len() as u64) < want {
                return Err(Error::tampered(Seq(from + chunk.len() as u64), "entry is missing"));
            }
            let per = chunk.len().div_ceil(threads);
            let decoded: Vec<Result<Vec<Gathered>>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .chunks(per.max(1))
                    .enumerate()
                    .map(|(k, part)| {
                        let first = from + (k * per) as u64;
                        let names = &names;
                        s.spawn(move || {
                            part.iter()
                                .enumerate()
                                .filter(|(j, _)| wanted.is_none_or(|w| w[(first + *j as u64) as usize]))
                                .map(|(j, bytes)| {
                                    let seq = Seq(first + j as u64);
                                    let tampered = |e: ledger_core::Error| Error::tampered_entry(seq, e);
                                    let entry = Entry::decode_unchecked_form(bytes).map_err(tampered)?;
                                    let record = entry.decode_record_unchecked_form().map_err(tampered)?;
                                    let hash = ledger_core::entry::entry_hash(bytes);
                                    let signer = entry.signer;
                                    Ok(Gathered {
                                        seq,
                                        hash,
                                        integrated: entry.time,
                                        record,
                                        signer,
                                        signer_name: names.get(&signer).cloned(),
                                    })
                                })
                                .collect::<Result<Vec<Gathered>>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(Error::Storage("a decoding thread panicked".into()))))
                    .collect()
            });
            for part in decoded {
                records.extend(part?);
            }
            from += want;
            progress(from);
        }
        let decoded_ms = began.elapsed().as_millis();
        let snapshot = Snapshot::new(records, size, self.clock.now(), kinds.is_none());
        tracing::debug!(decoded_ms, indexed_ms = began.elapsed().as_millis() - decoded_ms, "snapshot");
        Ok(snapshot)
    }
}
