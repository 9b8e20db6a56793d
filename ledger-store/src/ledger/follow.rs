//! Sharing a store with other handles (PostgreSQL): a standby follows the entries the writer
//! appends ([`Ledger::refresh`]) and takes over when the writer lease is free
//! ([`Ledger::take_over`]).

use std::sync::atomic::Ordering;

use ledger_core::merkle::{self, Hash};
use ledger_core::types::Seq;

use super::Ledger;
use crate::error::{Error, Result};
use crate::store::Store;

/// Entries read per round trip while catching up.
const CHUNK: u64 = 1024;

impl<S: Store> Ledger<S> {
    /// Catches up with the entries another handle appended since this one last looked: each
    /// new entry is checked as following the last (sequence number, previous hash, time; `key`
    /// entries verified and applied to the key register, other signatures trusted as on open)
    /// and added to the Merkle tree, which must then match the tree recorded with the stored
    /// head. Returns how many entries were added (0 when nothing changed: one read).
    ///
    /// # Errors
    /// [`Error::Tampered`] if the stored head is behind this handle's, forks from it, or the
    /// new entries do not follow; [`Error::Storage`] on a read error.
    pub fn refresh(&self) -> Result<u64> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.drain_pipeline();
        self.refresh_locked()
    }

    /// [`Ledger::refresh`] for a caller holding the writer's turn.
    fn refresh_locked(&self) -> Result<u64> {
        // The head and tree as of one moment; the writer may append more meanwhile.
        let (head, recorded_tree) = self.store.head_and_tree()?;
        let (head_seq, head_hash) =
            head.ok_or_else(|| Error::NotALedger { path: ".".into(), reason: "the ledger has no entries".into() })?;
        let mut work = self.lock().clone();
        let have = work.next_seq().0;
        let size = head_seq.0 + 1;
        if size < have {
            return Err(Error::tampered(
                head_seq,
                format!("the stored head is at seq {}, behind the {have} entries this handle has seen", head_seq.0),
            ));
        }
        if size == have {
            if head_hash != work.head() {
                return Err(Error::tampered(
                    head_seq,
                    "the stored head's hash differs from the one this handle has seen (a fork)",
                ));
            }
            return Ok(0);
        }
        let mut tree = self.tree.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut from = have;
        while from < size {
            let chunk = self.store.entries(Seq(from), CHUNK.min(size - from))?;
            if chunk.is_empty() {
                return Err(Error::tampered(Seq(from), "entry is missing"));
            }
            let mut leaves: Vec<Hash> = Vec::with_capacity(chunk.len());
            for bytes in &chunk {
                let seq = work.next_seq();
                work.follow(bytes).map_err(|e| Error::tampered_entry(seq, e))?;
                leaves.push(merkle::leaf_hash(bytes));
            }
            for l in &leaves {
                tree.frontier.push(*l);
            }
            // The writer stored the full tiles; only the partial ones live in memory.
            let _ = tree.tiles.extend_full(&leaves);
            from += chunk.len() as u64;
        }
        if work.head() != head_hash {
            return Err(Error::tampered(head_seq, "the entries do not end at the recorded head"));
        }
        if recorded_tree.is_some_and(|t| t != tree.frontier) {
            return Err(Error::tampered(head_seq, "the recorded Merkle tree does not match the entries"));
        }
        self.publish(work, tree);
        Ok(size - have)
    }

    /// Becomes the writer of a shared store: under the writer's turn (so that no batch is
    /// sequenced meanwhile), `claim` tries to take the writer lease; when it does, this handle
    /// catches up with everything the previous writer appended ([`Ledger::refresh`]) and
    /// appends again even after an earlier failed write (its state is now the store's).
    /// Returns whether the lease was taken.
    ///
    /// # Errors
    /// `claim`'s errors; [`Ledger::refresh`]'s (the lease is then given up again by the
    /// caller's next step: this handle does not append from a state it could not check).
    pub fn take_over(&self, claim: impl FnOnce(&S) -> Result<bool>) -> Result<bool> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.drain_pipeline();
        if !claim(&self.store)? {
            return Ok(false);
        }
        self.poisoned.store(true, Ordering::SeqCst);
        self.refresh_locked()?;
        self.poisoned.store(false, Ordering::SeqCst);
        Ok(true)
    }

    /// Whether an earlier write failed, so that appends are refused
    /// ([`Error::Unavailable`]) until the process restarts or [`Ledger::take_over`] succeeds.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }
}
