//! [`Ledger`]: the append path (verify → sequence → write → flush) and the read side
//! (entries, log queries, `why`, full verification) over any [`Store`].

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ledger_core::chain::{ChainState, SequencedEntry};
use ledger_core::entry::{record_id, Entry, SignedRecord, VerifiedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::merkle::{self, Frontier, Hash};
use ledger_core::record::Kind;
use ledger_core::subject::Subject;
use ledger_core::tiles::{self, Tile, TileBuilder};
use ledger_core::types::{Clock, EntryHash, RecordId, Seq, Timestamp};
use ledger_core::why::{self, Gathered, WhyReport};

use crate::error::{Error, Result};
use crate::store::{KeyEntries, Store, StoredEntry};

mod verify;

/// Hops `why` follows from the asked subject (subject → change → commits → deployments →
/// incidents needs four).
const WHY_ROUNDS: usize = 5;

/// Most entries `why` gathers; beyond it the report covers what was gathered.
const WHY_MAX_ENTRIES: usize = 20_000;

/// The answer to an append: where the record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Record id.
    pub record_id: RecordId,
    /// True when the record was already in the ledger and nothing was written.
    pub duplicate: bool,
}

/// A stored entry, decoded.
#[derive(Clone, Debug)]
pub struct EntryView {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Exact stored bytes.
    pub bytes: Vec<u8>,
    /// The entry.
    pub entry: Entry,
    /// The record it carries.
    pub record: ledger_core::record::Record,
}

impl EntryView {
    /// As input for [`why::analyze`].
    pub fn gathered(&self) -> Gathered {
        Gathered { seq: self.seq, hash: self.hash, integrated: self.entry.time, record: self.record.clone() }
    }
}

/// Filters for [`Ledger::log`]; all given filters must match.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only entries mentioning this subject.
    pub subject: Option<Subject>,
    /// Only entries integrated at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries at or after this seq.
    pub from_seq: Option<Seq>,
    /// Only entries at or before this seq.
    pub to_seq: Option<Seq>,
    /// At most this many entries (the latest ones).
    pub limit: Option<usize>,
}

/// Result of a full verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// Entries verified.
    pub entries: u64,
    /// Head hash after the last entry.
    pub head: EntryHash,
}

/// The Merkle tree as the append path keeps it: the frontier (for the root) and the partial
/// tiles (for stored interior nodes).
#[derive(Clone, Debug, Default)]
struct TreeState {
    frontier: Frontier,
    tiles: TileBuilder,
}

/// A ledger over a store: one sequencer, many readers.
pub struct Ledger<S: Store> {
    store: S,
    state: Mutex<ChainState>,
    /// The RFC 6962 tree's right edge and last tiles, updated with the chain under the
    /// `state` lock.
    tree: Mutex<TreeState>,
    /// Held by the one writer for a whole append, write and flush included. `state` and `tree`
    /// are locked only to copy them and to publish the result, so request handlers checking
    /// signatures (which read the key register) never wait for a flush.
    writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    poisoned: AtomicBool,
}

impl<S: Store> Ledger<S> {
    /// Creates a ledger in an initialized, empty store with its genesis record (a
    /// self-signed `key` record with action `genesis`).
    ///
    /// # Errors
    /// [`Error::Rejected`] if the genesis record is invalid; [`Error::Storage`] on write errors.
    pub fn create(store: S, genesis: &SignedRecord, clock: Arc<dyn Clock>) -> Result<Self> {
        if store.head()?.is_some() {
            return Err(Error::Storage("store is not empty".into()));
        }
        let ledger = Ledger {
            store,
            state: Mutex::new(ChainState::new()),
            tree: Mutex::new(TreeState::default()),
            writer: Mutex::new(()),
            clock,
            poisoned: AtomicBool::new(false),
        };
        ledger.append(std::slice::from_ref(genesis))?;
        Ok(ledger)
    }

    /// Opens a ledger: checks the stored head entry against the head record, and rebuilds the
    /// key register by verifying every `key` entry. Does not verify every entry (see
    /// [`Ledger::verify`]).
    ///
    /// # Errors
    /// [`Error::Tampered`] if the head or a key entry fails verification;
    /// [`Error::NotALedger`] if the store holds no entries.
    pub fn open(store: S, clock: Arc<dyn Clock>) -> Result<Self> {
        let (head_seq, head_hash) = store
            .head()?
            .ok_or_else(|| Error::NotALedger { path: ".".into(), reason: "the ledger has no entries".into() })?;
        let head_bytes = store
            .entry(head_seq)?
            .ok_or_else(|| Error::Tampered { seq: head_seq, reason: "the head entry is missing".into() })?;
        if ledger_core::entry::entry_hash(&head_bytes) != head_hash {
            return Err(Error::Tampered {
                seq: head_seq,
                reason: "the head entry's hash does not match the recorded head".into(),
            });
        }
        if store.entry(Seq(head_seq.0 + 1))?.is_some() {
            return Err(Error::Tampered {
                seq: Seq(head_seq.0 + 1),
                reason: "an entry exists after the recorded head".into(),
            });
        }
        let head_entry =
            Entry::decode(&head_bytes).map_err(|e| Error::Tampered { seq: head_seq, reason: e.to_string() })?;
        let keys = Self::key_register(&store, head_seq)?;
        let state = ChainState::resume(Seq(head_seq.0 + 1), head_hash, head_entry.time, keys);
        let size = head_seq.0 + 1;
        let frontier = match store.tree()? {
            Some(t) if t.size() == size => Some(t),
            Some(t) => {
                return Err(Error::Tampered {
                    seq: head_seq,
                    reason: format!("the recorded Merkle tree has {} leaves, the chain {size}", t.size()),
                })
            }
            None => None,
        };
        let tree = match (frontier, Self::stored_tiles(&store, size)?) {
            (Some(frontier), Some(tiles)) => TreeState { frontier, tiles },
            // A ledger written before the frontier or the tiles were kept: build them once
            // from the entries and store the tiles.
            (frontier, _) => {
                tracing::info!(entries = size, "building the Merkle tree's tiles from the entries (once)");
                let mut t = TreeState::default();
                let mut leaves = Vec::with_capacity(4096);
                for s in 0..size {
                    let bytes = store
                        .entry(Seq(s))?
                        .ok_or_else(|| Error::Tampered { seq: Seq(s), reason: "entry is missing".into() })?;
                    leaves.push(merkle::leaf_hash(&bytes));
                    if leaves.len() == 4096 || s + 1 == size {
                        for l in &leaves {
                            t.frontier.push(*l);
                        }
                        store.put_tiles(&t.tiles.extend_full(&leaves))?;
                        leaves.clear();
                    }
                }
                if frontier.is_some_and(|f| f != t.frontier) {
                    return Err(Error::Tampered {
                        seq: head_seq,
                        reason: "the recorded Merkle tree does not match the entries".into(),
                    });
                }
                t
            }
        };
        Ok(Ledger {
            store,
            state: Mutex::new(state),
            tree: Mutex::new(tree),
            writer: Mutex::new(()),
            clock,
            poisoned: AtomicBool::new(false),
        })
    }

    /// Rebuilds the key register that authorizes appends from the `key` entries, found through
    /// the kind index, each decoded and checked as a replay would (signature, admin rights,
    /// consistency with the earlier key entries). Key records depend only on earlier key
    /// records, so this replay is exact. The index is then checked against the `Keys` record,
    /// the second record of the key entries: a key entry missing from either (say, a deleted
    /// revocation) makes the ledger refuse to open rather than authorize a revoked key.
    /// A ledger written before `Keys` was kept gets it written once, from the index.
    fn key_register(store: &S, head: Seq) -> Result<ledger_core::keys::KeyRegister> {
        let mut keys = ledger_core::keys::KeyRegister::new();
        let indexed = store.kind_seqs(Kind::Key)?;
        for &seq in &indexed {
            let tampered = |reason: String| Error::Tampered { seq, reason };
            if seq > head {
                return Err(tampered("the kind index lists a `key` entry beyond the head".into()));
            }
            let bytes = store
                .entry(seq)?
                .ok_or_else(|| tampered("the kind index lists a `key` entry that is missing".into()))?;
            let entry = Entry::decode(&bytes).map_err(|e| tampered(e.to_string()))?;
            if entry.seq != seq {
                return Err(tampered(format!("the entry stored at this seq says seq {}", entry.seq)));
            }
            let verified = keys.verify(&entry.signed_record(), seq, entry.time).map_err(|e| tampered(e.to_string()))?;
            if verified.kind() != Kind::Key {
                return Err(tampered(format!(
                    "the kind index lists this entry as a `key` entry, but its kind is `{}`",
                    verified.kind()
                )));
            }
            keys.apply(&verified, seq, entry.time);
        }
        match store.key_entries()? {
            KeyEntries::Recorded(recorded) => {
                let unindexed = recorded.iter().find(|s| !indexed.contains(s));
                let unrecorded = indexed.iter().find(|s| !recorded.contains(s));
                let reason = match (unindexed, unrecorded) {
                    (Some(a), Some(b)) if b < a => Some((
                        *b,
                        "the kind index lists this entry as a `key` entry; the record of key entries does not",
                    )),
                    (Some(a), _) => Some((*a, "the record of key entries lists this entry; the kind index does not")),
                    (None, Some(b)) => Some((
                        *b,
                        "the kind index lists this entry as a `key` entry; the record of key entries does not",
                    )),
                    (None, None) => None,
                };
                if let Some((seq, why)) = reason {
                    return Err(Error::Tampered {
                        seq,
                        reason: format!("the key register disagrees with the entries: {why}"),
                    });
                }
            }
            KeyEntries::Missing => {
                return Err(Error::Tampered {
                    seq: Seq(0),
                    reason: "the record of key entries (`Keys`) is missing".into(),
                })
            }
            KeyEntries::NotKept => {
                tracing::info!(
                    key_entries = indexed.len(),
                    "upgrading the store layout: recording the key entries (once)"
                );
                store.upgrade(&indexed)?;
            }
        }
        Ok(keys)
    }

    /// The tile builder continuing the stored tiles of a tree of `size` leaves, or `None` if
    /// a full tile it needs is missing (tiles were not kept when the ledger was written). Only
    /// full tiles are stored: the partial last tile of each level is rebuilt here, level 0 from
    /// the last entries' leaf hashes, level k from the roots of full level-(k−1) tiles (at most
    /// 255 reads per level).
    fn stored_tiles(store: &S, size: u64) -> Result<Option<TileBuilder>> {
        let width = tiles::TILE_WIDTH as u64;
        if size >= width && store.tile(0, size / width - 1)?.is_none() {
            return Ok(None);
        }
        let mut partials = std::collections::BTreeMap::new();
        for (level, first, count) in tiles::partial_sources(size) {
            let hashes: Vec<Hash> = if level == 0 {
                let entries = store.entries(Seq(first), count)?;
                if entries.len() as u64 != count {
                    let seq = Seq(first + entries.len() as u64);
                    return Err(Error::Tampered { seq, reason: "entry is missing".into() });
                }
                entries.iter().map(|b| merkle::leaf_hash(b)).collect()
            } else {
                let mut out = Vec::with_capacity(count as usize);
                for index in first..first + count {
                    let Some(tile) = store.tile(level - 1, index)? else { return Ok(None) };
                    let root = tiles::full_tile_root(&tile).map_err(|e| Error::Tampered {
                        seq: Seq(index.saturating_mul(width.saturating_pow(u32::from(level)))),
                        reason: format!("stored Merkle tile {}/{index}: {e}", level - 1),
                    })?;
                    out.push(root);
                }
                out
            };
            partials.insert(level, hashes);
        }
        TileBuilder::resume(size, &partials)
            .map(Some)
            .map_err(|e| Error::Tampered { seq: Seq(size.saturating_sub(1)), reason: format!("stored tiles: {e}") })
    }

    fn lock(&self) -> MutexGuard<'_, ChainState> {
        // A panic while holding the lock cannot leave the state half-updated (it is swapped
        // in whole after a successful write), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.lock().next_seq().0
    }

    /// True when the ledger has no entries (never, once created).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The head: (number of entries, last entry hash).
    pub fn head(&self) -> (u64, EntryHash) {
        let s = self.lock();
        (s.next_seq().0, s.head())
    }

    /// All signer keys ever registered.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.lock().keys().keys().cloned().collect()
    }

    /// Appends signed records, in order, as one atomic, flushed batch. A record already in the
    /// ledger (same record bytes) is not written again: its original receipt is returned with
    /// `duplicate: true`.
    ///
    /// # Errors
    /// [`Error::Rejected`] if any record is refused (nothing is written);
    /// [`Error::Storage`] if the write fails (and the ledger stops accepting writes);
    /// [`Error::Unavailable`] after an earlier write failure.
    pub fn append(&self, records: &[SignedRecord]) -> Result<Vec<Receipt>> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(Error::Unavailable);
        }
        let mut work = self.lock().clone();
        let now = self.clock.now();
        let mut receipts = Vec::with_capacity(records.len());
        let mut batch: Vec<StoredEntry> = Vec::new();
        let mut in_batch: HashMap<RecordId, usize> = HashMap::new();
        for signed in records {
            let id = record_id(&signed.record.0);
            if let Some(r) = self.existing(&id)? {
                receipts.push(r);
                continue;
            }
            if let Some(prev) = in_batch.get(&id).map(|&i| &batch[i]) {
                receipts.push(Receipt { seq: prev.seq, hash: prev.hash, record_id: id, duplicate: true });
                continue;
            }
            let at = work.integration_time(now);
            let verified = work.verify(signed, at)?;
            let seqd = work.sequence(&verified, at)?;
            receipts.push(Receipt { seq: seqd.seq(), hash: seqd.hash, record_id: id, duplicate: false });
            in_batch.insert(id, batch.len());
            batch.push(stored(&seqd));
        }
        let (tree, changed) = self.extended_tree(&batch);
        let key_entries = batch.iter().any(|e| e.kind == Kind::Key).then(|| work.keys().entry_seqs());
        if let Err(e) = self.store.append(&batch, &tree.frontier, &changed, key_entries.as_deref()) {
            self.poisoned.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "write failed; refusing further appends until restart");
            return Err(e);
        }
        self.publish(work, tree);
        Ok(receipts)
    }

    /// Checks a record's signature against the signer's registered key (revoked keys
    /// included), without taking the sequencer's turn: the expensive half of an append, run
    /// concurrently by request handlers. [`Ledger::append_verified`] then checks the signer's
    /// rights at sequencing time.
    ///
    /// # Errors
    /// [`Error::Rejected`] with `UnknownKey`, `BadSignature` or a record error.
    pub fn verify_signature(&self, signed: &SignedRecord) -> Result<VerifiedRecord> {
        let public = {
            let s = self.lock();
            s.keys().get(&signed.signer).map(|k| k.public)
        };
        let public = public.ok_or(ledger_core::Error::UnknownKey { key: signed.signer })?;
        Ok(signed.verify_with(&public)?)
    }

    /// Appends already signature-checked records as one group commit: each is deduplicated,
    /// authorized and sequenced in order; the accepted ones are written in one atomic batch and
    /// flushed once. Each record gets its own result; a refused record does not affect the
    /// others. If the write fails, every record of the batch gets the error and the ledger
    /// stops accepting writes.
    pub fn append_verified(&self, records: &[VerifiedRecord]) -> Vec<Result<Receipt>> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.poisoned.load(Ordering::SeqCst) {
            return records.iter().map(|_| Err(Error::Unavailable)).collect();
        }
        let mut work = self.lock().clone();
        let now = self.clock.now();
        let mut results: Vec<Result<Receipt>> = Vec::with_capacity(records.len());
        let mut batch: Vec<StoredEntry> = Vec::new();
        let mut in_batch: HashMap<RecordId, usize> = HashMap::new();
        for v in records {
            let id = v.id();
            results.push((|| {
                if let Some(r) = self.existing(&id)? {
                    return Ok(r);
                }
                if let Some(prev) = in_batch.get(&id).map(|&i| &batch[i]) {
                    return Ok(Receipt { seq: prev.seq, hash: prev.hash, record_id: id, duplicate: true });
                }
                let at = work.integration_time(now);
                work.authorize(v, at)?;
                let seqd = work.sequence(v, at)?;
                in_batch.insert(id, batch.len());
                batch.push(stored(&seqd));
                Ok(Receipt { seq: seqd.seq(), hash: seqd.hash, record_id: id, duplicate: false })
            })());
        }
        let (tree, changed) = self.extended_tree(&batch);
        let key_entries = batch.iter().any(|e| e.kind == Kind::Key).then(|| work.keys().entry_seqs());
        if let Err(e) = self.store.append(&batch, &tree.frontier, &changed, key_entries.as_deref()) {
            self.poisoned.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "write failed; refusing further appends until restart");
            let msg = e.to_string();
            return results
                .into_iter()
                .map(|r| match r {
                    Ok(rec) if !rec.duplicate => Err(Error::Storage(msg.clone())),
                    other => other,
                })
                .collect();
        }
        self.publish(work, tree);
        results
    }

    /// Makes a written batch visible: the chain state and the tree change together, under the
    /// `state` lock (readers take `state` before `tree`). Called by the writer only.
    fn publish(&self, work: ChainState, tree: TreeState) {
        let mut state = self.lock();
        *state = work;
        *self.tree.lock().unwrap_or_else(|p| p.into_inner()) = tree;
    }

    /// The tree after appending `batch`, and the tiles it filled (callers hold the writer lock).
    /// Partial tiles are not written: rewriting them on every group commit cost more than the
    /// entries themselves for small batches; they live in memory and are rebuilt on open.
    fn extended_tree(&self, batch: &[StoredEntry]) -> (TreeState, Vec<Tile>) {
        let mut t = self.tree.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let leaves: Vec<Hash> = batch.iter().map(|e| merkle::leaf_hash(&e.bytes)).collect();
        for l in &leaves {
            t.frontier.push(*l);
        }
        let full = t.tiles.extend_full(&leaves);
        (t, full)
    }

    /// The tree size and RFC 6962 root hash now (equal to the number of entries).
    pub fn tree_head(&self) -> (u64, Hash) {
        let t = self.tree.lock().unwrap_or_else(|p| p.into_inner());
        (t.frontier.size(), t.frontier.root())
    }

    /// A signed C2SP checkpoint of the current tree head, with the chain head as the
    /// `blake3-head <seq> <hash>` extension line. Returns (signed note, verifier key, size, root).
    ///
    /// # Errors
    /// [`Error::NotFound`] if `origin` is not a valid note signer name.
    pub fn signed_checkpoint(
        &self,
        origin: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<(String, String, u64, Hash)> {
        // Read the chain head and the tree head under the state lock, so they describe the
        // same entries.
        let state = self.lock();
        let (size, root) = self.tree_head();
        let head = state.head();
        drop(state);
        let cp = ledger_core::note::Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: vec![format!("blake3-head {} {}", size.saturating_sub(1), head)],
        };
        let name = origin.replace(char::is_whitespace, "-");
        let bad = |e: ledger_core::note::NoteError| Error::NotFound(format!("checkpoint origin `{origin}`: {e}"));
        let signed = ledger_core::note::sign(&cp.to_text(), &name, key).map_err(bad)?;
        let vkey = ledger_core::note::verifier_key(&name, &key.verifying_key()).map_err(bad)?;
        Ok((signed, vkey, size, root))
    }

    /// A proof node source over the stored tiles.
    fn nodes(&self) -> tiles::TileReader<impl FnMut(u8, u64) -> Result<Option<Vec<Hash>>> + '_, Error> {
        // The partial tiles (in memory) as of now: they hold every node of any size up to
        // now that is not in a full, stored tile.
        let partials = self.tree.lock().unwrap_or_else(|p| p.into_inner()).tiles.partials();
        tiles::TileReader::new(move |level, index| match partials.iter().find(|(l, i, _)| (*l, *i) == (level, index)) {
            Some((_, _, hashes)) => Ok(Some(hashes.clone())),
            None => self.store.tile(level, index),
        })
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.len() {
            return Err(Error::NotFound(format!("tree size {size} (the tree has {} leaves)", self.len())));
        }
        Ok(())
    }

    /// The RFC 6962 root hash at tree size `size` (≤ the number of entries), from the stored
    /// tiles: O(log size) reads.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `size` exceeds the tree; [`Error::Tampered`] if a tile is missing.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        merkle::root_from(&mut self.nodes(), size)
    }

    /// The root hash at `size` and the inclusion proof of entry `seq` in it, from the stored
    /// tiles: O(log size) reads.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `seq >= size` or `size` exceeds the tree; [`Error::Tampered`] if a
    /// tile is missing.
    pub fn inclusion_proof(&self, seq: Seq, size: u64) -> Result<(Hash, Vec<Hash>)> {
        if seq.0 >= size {
            return Err(Error::NotFound(format!("entry #{seq} in a tree of size {size}")));
        }
        self.check_size(size)?;
        let mut nodes = self.nodes();
        let proof = merkle::inclusion_proof_from(&mut nodes, size, seq.0)?;
        Ok((merkle::root_from(&mut nodes, size)?, proof))
    }

    /// The consistency proof between tree sizes `old <= new` and both roots, from the stored
    /// tiles: O(log new) reads.
    ///
    /// # Errors
    /// [`Error::NotFound`] for sizes out of range; [`Error::Tampered`] if a tile is missing.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<(Hash, Hash, Vec<Hash>)> {
        if old == 0 || old > new {
            return Err(Error::NotFound(format!("consistency between sizes {old} and {new} (need 0 < old ≤ new)")));
        }
        self.check_size(new)?;
        let mut nodes = self.nodes();
        let proof = merkle::consistency_proof_from(&mut nodes, old, new)?;
        Ok((merkle::root_from(&mut nodes, old)?, merkle::root_from(&mut nodes, new)?, proof))
    }

    fn existing(&self, id: &RecordId) -> Result<Option<Receipt>> {
        let Some(seq) = self.store.seq_by_record(id)? else { return Ok(None) };
        let bytes =
            self.store.entry(seq)?.ok_or_else(|| Error::Tampered { seq, reason: "indexed entry is missing".into() })?;
        Ok(Some(Receipt { seq, hash: ledger_core::entry::entry_hash(&bytes), record_id: *id, duplicate: true }))
    }

    /// The entry at `seq`.
    ///
    /// # Errors
    /// [`Error::Tampered`] if its bytes do not decode; [`Error::Storage`] on read errors.
    pub fn get(&self, seq: Seq) -> Result<Option<EntryView>> {
        let Some(bytes) = self.store.entry(seq)? else { return Ok(None) };
        let tampered = |e: ledger_core::Error| Error::Tampered { seq, reason: e.to_string() };
        let entry = Entry::decode(&bytes).map_err(tampered)?;
        let record = entry.decode_record().map_err(tampered)?;
        let hash = ledger_core::entry::entry_hash(&bytes);
        Ok(Some(EntryView { seq, hash, bytes, entry, record }))
    }

    fn must_get(&self, seq: Seq) -> Result<EntryView> {
        self.get(seq)?.ok_or_else(|| Error::Tampered { seq, reason: "indexed entry is missing".into() })
    }

    /// Finds an entry by `#<seq>`, `entry:<hex>` or bare hex: a full hash or a unique prefix of
    /// at least 12 hex characters.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Ambiguous`], or a parse error as [`Error::Rejected`].
    pub fn find_entry(&self, input: &str) -> Result<EntryView> {
        if let Some(n) = input.strip_prefix('#') {
            let seq =
                n.parse::<u64>().map_err(|_| Error::NotFound(format!("entry `{input}` (not a sequence number)")))?;
            return self.get(Seq(seq))?.ok_or_else(|| Error::NotFound(format!("entry #{seq}")));
        }
        let hexpart = input.strip_prefix("entry:").unwrap_or(input);
        if hexpart.len() < 12 || hexpart.len() > 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NotFound(format!(
                "entry `{input}` (give #<seq>, or an entry hash or unique prefix of at least 12 hex characters)"
            )));
        }
        let lower = hexpart.to_ascii_lowercase();
        // Compare whole bytes in the index, then the odd nibble if any.
        let bytes = hex::decode(&lower[..lower.len() / 2 * 2]).unwrap_or_default();
        let hits: Vec<(EntryHash, Seq)> = self
            .store
            .seqs_by_hash_prefix(&bytes, 1000)?
            .into_iter()
            .filter(|(h, _)| h.to_hex().starts_with(&lower))
            .take(5)
            .collect();
        match hits.as_slice() {
            [] => Err(Error::NotFound(format!("entry {lower}"))),
            [(_, seq)] => self.must_get(*seq),
            many => Err(Error::Ambiguous {
                input: lower,
                matches: many.iter().map(|(h, s)| format!("#{s} {}", &h.to_hex()[..16])).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Resolves what a user typed into a subject: a canonical subject (`pr:o/r#1`,
    /// `git:o/r@<sha>`…), `#<seq>`, `entry:<hex prefix>`, or a full or abbreviated (≥ 7 hex)
    /// commit id, looked up in the subject index.
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::Ambiguous`] for abbreviations; a parse error otherwise.
    pub fn resolve(&self, input: &str) -> Result<Subject> {
        let input = input.trim();
        if input.starts_with('#') || input.starts_with("entry:") {
            return Ok(Subject::Entry(self.find_entry(input)?.hash));
        }
        let abbrev = input.strip_prefix("git:").unwrap_or(input);
        let is_hex = abbrev.len() >= 7 && abbrev.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex && abbrev.len() == 64 && !input.starts_with("git:") {
            if let Ok(e) = self.find_entry(abbrev) {
                return Ok(Subject::Entry(e.hash));
            }
        }
        if is_hex && abbrev.len() != 40 && abbrev.len() != 64 {
            let lower = abbrev.to_ascii_lowercase();
            let hits = self.store.subjects_with_prefix(&format!("git:{lower}"), 5)?;
            return match hits.as_slice() {
                [] => Err(Error::NotFound(format!("commit {lower} (no recorded commit id starts with it)"))),
                [one] => Ok(one.parse()?),
                many => Err(Error::Ambiguous { input: lower, matches: many.join(", ") }),
            };
        }
        if is_hex {
            return Ok(format!("git:{}", abbrev.to_ascii_lowercase()).parse()?);
        }
        Ok(input.parse()?)
    }

    fn seqs_for(&self, subject: &Subject) -> Result<Vec<Seq>> {
        match subject {
            Subject::Entry(h) => Ok(self.store.seq_by_hash(h)?.into_iter().collect()),
            // Commits are indexed under their bare form only (one index key instead of two
            // per commit; see `stored`); a repository-qualified lookup filters the bare hits.
            Subject::Commit { repo: Some(_), .. } => {
                let bare = subject.bare_commit().map(|b| b.to_string()).unwrap_or_default();
                let mut out = vec![];
                for seq in self.store.subject_seqs(&bare)? {
                    if self.must_get(seq)?.record.subjects().contains(subject) {
                        out.push(seq);
                    }
                }
                Ok(out)
            }
            other => self.store.subject_seqs(&other.to_string()),
        }
    }

    /// Entries matching `filter`, ascending by seq.
    ///
    /// # Errors
    /// [`Error::Tampered`] if a matching entry does not decode; [`Error::Storage`].
    pub fn log(&self, filter: &LogFilter) -> Result<Vec<EntryView>> {
        let mut out = Vec::new();
        self.log_each(filter, |v| {
            out.push(v);
            Ok(true)
        })?;
        Ok(out)
    }

    /// [`Ledger::log`], one entry at a time: calls `f` with each match, ascending by seq, and
    /// stops early when `f` returns `false`. Memory stays bounded by `filter.limit` (the last
    /// `limit` matches are gathered before the first call) or, without a limit, by one entry
    /// plus the seqs of the kind and subject indexes it intersects (8 bytes each).
    ///
    /// # Errors
    /// [`Error::Tampered`] if a matching entry does not decode; [`Error::Storage`]; `f`'s errors.
    pub fn log_each(&self, filter: &LogFilter, mut f: impl FnMut(EntryView) -> Result<bool>) -> Result<()> {
        let mut seqs: Option<BTreeSet<Seq>> = None;
        let mut narrow = |s: Vec<Seq>| {
            let set: BTreeSet<Seq> = s.into_iter().collect();
            seqs = Some(match seqs.take() {
                Some(prev) => prev.intersection(&set).copied().collect(),
                None => set,
            });
        };
        if let Some(k) = filter.kind {
            narrow(self.store.kind_seqs(k)?);
        }
        if let Some(s) = &filter.subject {
            narrow(self.seqs_for(s)?);
        }
        let in_range = |s: &Seq| filter.from_seq.is_none_or(|f| *s >= f) && filter.to_seq.is_none_or(|t| *s <= t);
        let candidates: Box<dyn DoubleEndedIterator<Item = Seq>> = match seqs {
            Some(s) => Box::new(s.into_iter().filter(in_range)),
            None => {
                let from = filter.from_seq.map_or(0, |s| s.0);
                let to = filter.to_seq.map_or(self.len(), |s| s.0.saturating_add(1).min(self.len()));
                Box::new((from..to).map(Seq))
            }
        };
        let mut matching = candidates.map(|seq| self.must_get(seq)).filter(|v| match v {
            Ok(v) => filter.since.is_none_or(|t| v.entry.time >= t),
            Err(_) => true,
        });
        if let Some(limit) = filter.limit {
            // The last `limit` matches: walk back from the end, then answer in seq order.
            let mut last = Vec::with_capacity(limit.min(4096));
            for v in matching.by_ref().rev().take(limit) {
                last.push(v?);
            }
            for v in last.into_iter().rev() {
                if !f(v)? {
                    break;
                }
            }
            return Ok(());
        }
        for v in matching {
            if !f(v?)? {
                break;
            }
        }
        Ok(())
    }

    /// Answers "who approved this?" for `subject`: gathers the change(s) the subject belongs to
    /// and every record linked to them, and analyses them ([`why::analyze`]).
    ///
    /// # Errors
    /// [`Error::Tampered`] if a gathered entry does not decode; [`Error::Storage`].
    pub fn why(&self, subject: &Subject) -> Result<WhyReport> {
        let gathered = self.related(subject)?;
        Ok(why::analyze(subject, &gathered, self.clock.now()))
    }

    /// Every record `why` considers for `subject`: the records mentioning it, the change(s) it
    /// belongs to and their records, the head and merge commits, deployments, incidents, and
    /// `model` records. Used by `why` and by exports of a subject.
    ///
    /// # Errors
    /// [`Error::Tampered`] if a gathered entry does not decode; [`Error::Storage`].
    pub fn related(&self, subject: &Subject) -> Result<Vec<Gathered>> {
        let mut seen: BTreeSet<Seq> = BTreeSet::new();
        let mut gathered: Vec<Gathered> = vec![];
        let mut add = |seqs: Vec<Seq>, out: &mut Vec<Gathered>| -> Result<Vec<Gathered>> {
            let mut fresh = vec![];
            for seq in seqs {
                if seen.insert(seq) {
                    let g = self.must_get(seq)?.gathered();
                    out.push(g.clone());
                    fresh.push(g);
                }
            }
            Ok(fresh)
        };
        // Expand from the subject along the links that matter (change, head and merge
        // commits, deployments, causes), a few hops and a bounded number of entries.
        let mut expanded: BTreeSet<Subject> = BTreeSet::new();
        let mut frontier: Vec<Subject> = vec![subject.clone()];
        for _round in 0..WHY_ROUNDS {
            let mut next: Vec<Subject> = vec![];
            for s in frontier.drain(..) {
                if !expanded.insert(s.clone()) || gathered.len() >= WHY_MAX_ENTRIES {
                    continue;
                }
                for g in add(self.seqs_for(&s)?, &mut gathered)? {
                    next.extend(why::follow(&g.record).into_iter().filter(|x| !expanded.contains(x)));
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        add(self.store.kind_seqs(Kind::Model)?, &mut gathered)?;
        Ok(gathered)
    }
}

fn stored(e: &SequencedEntry) -> StoredEntry {
    StoredEntry {
        seq: e.seq(),
        hash: e.hash,
        bytes: e.bytes.clone(),
        record_id: e.record_id,
        kind: e.record.kind(),
        subjects: crate::store::indexed_subjects(&e.record),
    }
}
