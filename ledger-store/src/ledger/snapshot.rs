//! The whole log in memory for the period commands: one sequential read of the entries,
//! decoded on every core, indexed by subject ([`ledger_audit::snapshot::Snapshot`]). The
//! entries are decoded without re-checking their canonical form (the ledger wrote them, and
//! `verify` checks every entry's form, hash, chain and signature); the hash each report names
//! is computed from the stored bytes.

use std::collections::BTreeMap;

use ledger_audit::snapshot::{Key, Snapshot, SnapshotIndex, SubjectKeys};
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
        progress: impl FnMut(u64),
    ) -> Result<Snapshot> {
        self.snapshot_in_chunks(tree_size, kinds, CHUNK, progress)
    }

    /// [`Ledger::snapshot`], reading `chunk` entries per range scan.
    fn snapshot_in_chunks(
        &self,
        tree_size: Option<u64>,
        kinds: Option<&[Kind]>,
        chunk: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<Snapshot> {
        let chunk_len = chunk.max(1);
        let size = tree_size.map_or(self.len(), |t| t.min(self.len()));
        let wanted: Option<Vec<bool>> = match kinds {
            None => None,
            Some(kinds) => {
                let mut w = vec![false; size as usize];
                for k in kinds {
                    for seq in self.kind_seqs(*k)? {
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
        let began = std::time::Instant::now();
        // A reader thread streams ordered range reads; the decoders take chunks as they come;
        // this thread puts the decoded chunks back in order. Every channel is drained, so an
        // error anywhere ends the pipeline without leaving a thread blocked.
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Vec<u8>>)>(threads);
        let chunk_rx = std::sync::Mutex::new(chunk_rx);
        let (out_tx, out_rx) = std::sync::mpsc::channel::<Result<(u64, Decoded)>>();
        // Subjects are indexed only for a complete snapshot (`why` walks them); the kinds-only
        // snapshots of `population` and `metrics` skip that work.
        let with_subjects = kinds.is_none();
        let mut parts: BTreeMap<u64, Decoded> = BTreeMap::new();
        let mut next = 0u64;
        let expected = wanted.map_or(size as usize, |w| w.iter().filter(|x| **x).count());
        let mut records: Vec<Gathered> = Vec::with_capacity(expected);
        let keys = SubjectKeys::new();
        let mut index = SnapshotIndex::new(keys.clone());
        let mut failed: Option<Error> = None;
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (out_tx, chunk_rx, names, keys) = (out_tx.clone(), &chunk_rx, &names, &keys);
                s.spawn(move || loop {
                    let next = match chunk_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok((first, chunk)) = next else { break };
                    let decoded = decode_chunk(first, &chunk, wanted, names, with_subjects.then_some(keys));
                    if out_tx.send(decoded.map(|d| (first, d))).is_err() {
                        break;
                    }
                });
            }
            let out_tx_reader = out_tx.clone();
            drop(out_tx);
            s.spawn(move || {
                let mut from = 0u64;
                while from < size {
                    let want = chunk_len.min(size - from);
                    let read = self.store.entries(Seq(from), want).and_then(|chunk| {
                        if (chunk.len() as u64) < want {
                            Err(Error::tampered(Seq(from + chunk.len() as u64), "entry is missing"))
                        } else {
                            Ok(chunk)
                        }
                    });
                    match read {
                        Ok(chunk) => {
                            if chunk_tx.send((from, chunk)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = out_tx_reader.send(Err(e));
                            break;
                        }
                    }
                    from += want;
                }
            });
            let mut done = 0u64;
            for result in out_rx {
                match result {
                    Ok((first, decoded)) => {
                        done += chunk_len.min(size - first);
                        progress(done);
                        parts.insert(first, decoded);
                        // Chunks in order as soon as they are contiguous: only the chunks
                        // decoded ahead of a slower one wait.
                        while let Some((ready, pairs)) = parts.remove(&next) {
                            let offset = records.len() as u32;
                            index.extend(offset, &pairs, ready.iter().map(|g| &g.hash));
                            records.extend(ready);
                            next += chunk_len;
                        }
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if !parts.is_empty() {
            return Err(Error::Storage("a chunk of the snapshot was not decoded".into()));
        }
        let decoded_ms = began.elapsed().as_millis();
        let snapshot = Snapshot::from_parts(records, index, with_subjects, size, self.clock.now(), kinds.is_none());
        tracing::debug!(decoded_ms, indexed_ms = began.elapsed().as_millis() - decoded_ms, "snapshot");
        Ok(snapshot)
    }
}

/// A chunk's decoded entries and the `(subject key, position in the chunk)` pairs of the
/// subjects they name (none when the snapshot has no subject index).
type Decoded = (Vec<Gathered>, Vec<(Key, u32)>);

/// Decodes the entries of one chunk starting at `first` (those `wanted` says, or all), with
/// their subject keys when `keys` is given.
fn decode_chunk(
    first: u64,
    chunk: &[Vec<u8>],
    wanted: Option<&[bool]>,
    names: &BTreeMap<KeyId, String>,
    keys: Option<&SubjectKeys>,
) -> Result<Decoded> {
    let mut records = Vec::with_capacity(chunk.len());
    let mut pairs = Vec::new();
    for (j, bytes) in chunk.iter().enumerate() {
        let seq = Seq(first + j as u64);
        if !wanted.is_none_or(|w| w.get(seq.0 as usize).copied().unwrap_or(false)) {
            continue;
        }
        let tampered = |e: ledger_core::Error| Error::tampered_entry(seq, e);
        let entry = Entry::decode_unchecked_form(bytes).map_err(tampered)?;
        let record = entry.decode_record_unchecked_form().map_err(tampered)?;
        if let Some(keys) = keys {
            keys.push_record(&record, records.len() as u32, &mut pairs);
        }
        let signer = entry.signer;
        records.push(Gathered {
            seq,
            hash: ledger_core::entry::entry_hash(bytes),
            integrated: entry.time,
            record,
            signer,
            signer_name: names.get(&signer).cloned(),
        });
    }
    Ok((records, pairs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ledger_core::record::{KeyAction, Kind};

    use crate::clock::SystemClock;
    use crate::ledger::Ledger;
    use crate::store::DiskStore;
    use crate::testkit::{evidence, key, key_rec, signed};

    /// Small chunks, so that decoded chunks come back out of order and are put back in order.
    #[test]
    fn a_snapshot_read_in_small_chunks_holds_every_entry_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let admin = key("admin");
        let genesis = signed(&key_rec(KeyAction::Genesis, "admin", &admin, Kind::ALL.to_vec()), &admin);
        let ledger = Ledger::create(DiskStore::create(dir.path()).unwrap(), &genesis, Arc::new(SystemClock)).unwrap();
        let batch: Vec<_> = (0..500).map(|i| signed(&evidence(&format!("e{i}")), &admin)).collect();
        ledger.append(&batch).unwrap();
        let mut seen = vec![];
        let snap = ledger.snapshot_in_chunks(None, None, 7, |n| seen.push(n)).unwrap();
        assert_eq!(snap.records().len() as u64, ledger.len());
        for (i, g) in snap.records().iter().enumerate() {
            let v = ledger.get(ledger_core::types::Seq(i as u64)).unwrap().unwrap();
            assert_eq!((g.seq, g.hash, &g.record), (v.seq, v.hash, &v.record), "entry {i}");
        }
        assert_eq!(seen.last().copied(), Some(ledger.len()), "progress reaches the end");
        let some = ledger.snapshot_in_chunks(Some(300), Some(&[Kind::Evidence]), 7, |_| {}).unwrap();
        assert_eq!(some.records().len(), 299, "evidence below tree size 300 (the genesis is a key)");
        assert!(some.records().windows(2).all(|w| w[0].seq < w[1].seq));
    }
}
