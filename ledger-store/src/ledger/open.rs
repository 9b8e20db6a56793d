//! Creating and opening a ledger: the head checked against its entry, the key register rebuilt
//! from the key entries (and checked against the `Keys` record), the tree's partial tiles
//! rebuilt from the last entries and full tiles.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};

use ledger_core::chain::ChainState;
use ledger_core::entry::{Entry, SignedRecord};
use ledger_core::merkle::{self, Hash};
use ledger_core::record::Kind;
use ledger_core::tiles::{self, TileBuilder};
use ledger_core::types::{Clock, Seq};

use super::{Ledger, TreeState};
use crate::error::{Error, Result};
use crate::store::{KeyEntries, Store};

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
            pipeline: Mutex::default(),
            drained: Condvar::new(),
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
        // The head and the tree as of one moment: on a shared store another handle may be
        // appending meanwhile; what it appends later is past this head and left for
        // `refresh`.
        let (head, recorded_tree) = store.head_and_tree()?;
        let (head_seq, head_hash) =
            head.ok_or_else(|| Error::NotALedger { path: ".".into(), reason: "the ledger has no entries".into() })?;
        let head_bytes =
            store.entry(head_seq)?.ok_or_else(|| Error::tampered(head_seq, "the head entry is missing"))?;
        if ledger_core::entry::entry_hash(&head_bytes) != head_hash {
            return Err(Error::tampered(head_seq, "the head entry's hash does not match the recorded head"));
        }
        if !store.is_shared() && store.entry(Seq(head_seq.0 + 1))?.is_some() {
            return Err(Error::tampered(Seq(head_seq.0 + 1), "an entry exists after the recorded head"));
        }
        let head_entry = Entry::decode(&head_bytes).map_err(|e| Error::tampered_entry(head_seq, e))?;
        let keys = Self::key_register(&store, head_seq)?;
        let state = ChainState::resume(Seq(head_seq.0 + 1), head_hash, head_entry.time, keys);
        let size = head_seq.0 + 1;
        let frontier = match recorded_tree {
            Some(t) if t.size() == size => Some(t),
            Some(t) => {
                return Err(Error::tampered(
                    head_seq,
                    format!("the recorded Merkle tree has {} leaves, the chain {size}", t.size()),
                ))
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
                    let bytes = store.entry(Seq(s))?.ok_or_else(|| Error::tampered(Seq(s), "entry is missing"))?;
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
                    return Err(Error::tampered(head_seq, "the recorded Merkle tree does not match the entries"));
                }
                t
            }
        };
        Ok(Ledger {
            store,
            state: Mutex::new(state),
            tree: Mutex::new(tree),
            writer: Mutex::new(()),
            pipeline: Mutex::default(),
            drained: Condvar::new(),
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
        // On a shared store, key entries past `head` were appended after the head was read:
        // not this handle's yet. On a store one handle owns, there are none.
        let mine = |seqs: Vec<Seq>| -> Vec<Seq> {
            if store.is_shared() {
                seqs.into_iter().filter(|s| *s <= head).collect()
            } else {
                seqs
            }
        };
        let indexed = mine(store.kind_seqs(Kind::Key)?);
        for &seq in &indexed {
            let tampered = |reason: String| Error::tampered(seq, reason);
            if seq > head {
                return Err(tampered("the kind index lists a `key` entry beyond the head".into()));
            }
            let bytes = store
                .entry(seq)?
                .ok_or_else(|| tampered("the kind index lists a `key` entry that is missing".into()))?;
            let entry = Entry::decode(&bytes).map_err(|e| Error::tampered_entry(seq, e))?;
            if entry.seq != seq {
                return Err(tampered(format!("the entry stored at this seq says seq {}", entry.seq)));
            }
            let verified =
                keys.verify(&entry.signed_record(), seq, entry.time).map_err(|e| Error::tampered_entry(seq, e))?;
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
                let recorded = mine(recorded);
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
                    return Err(Error::tampered(seq, format!("the key register disagrees with the entries: {why}")));
                }
            }
            KeyEntries::Missing => {
                return Err(Error::tampered(Seq(0), "the record of key entries (`Keys`) is missing"))
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
                    return Err(Error::tampered(seq, "entry is missing"));
                }
                entries.iter().map(|b| merkle::leaf_hash(b)).collect()
            } else {
                let mut out = Vec::with_capacity(count as usize);
                for index in first..first + count {
                    let Some(tile) = store.tile(level - 1, index)? else { return Ok(None) };
                    let root = tiles::full_tile_root(&tile).map_err(|e| {
                        Error::tampered(
                            Seq(index.saturating_mul(width.saturating_pow(u32::from(level)))),
                            format!("stored Merkle tile {}/{index}: {e}", level - 1),
                        )
                    })?;
                    out.push(root);
                }
                out
            };
            partials.insert(level, hashes);
        }
        TileBuilder::resume(size, &partials)
            .map(Some)
            .map_err(|e| Error::tampered(Seq(size.saturating_sub(1)), format!("stored tiles: {e}")))
    }
}
