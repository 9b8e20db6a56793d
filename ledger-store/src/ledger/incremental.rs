//! Incremental verification: only what was appended since a tree head the caller trusts (a
//! signed checkpoint it checked), in time proportional to the new entries.
//!
//! The trusted tree head fixes everything before it: the stored tree at its size must hash to
//! its root, so every stored node used below is the one the checkpoint committed to. From
//! there the new entries are replayed exactly as [`Ledger::verify`] replays every entry.

use std::collections::BTreeMap;

use ledger_core::chain::ChainState;
use ledger_core::entry::{entry_hash, Entry};
use ledger_core::keys::KeyRegister;
use ledger_core::merkle::{self, Frontier, Hash, NodeSource};
use ledger_core::record::Kind;
use ledger_core::tiles;
use ledger_core::types::{EntryHash, Seq};

use super::verify::{Checked, Replay, TileChecker};
use super::{Ledger, VerifySummary};
use crate::error::{Error, Result};
use crate::store::{index_keys, indexed_subjects, IndexKey, Store};

/// A tree head the caller trusts, as a signed C2SP checkpoint states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedHead {
    /// The tree size: entries `0..size` are covered.
    pub size: u64,
    /// The RFC 6962 root hash at that size.
    pub root: Hash,
    /// The hash of entry `size - 1` (the checkpoint's `blake3-head` line), when it has one.
    pub chain_head: Option<EntryHash>,
}

/// What [`Ledger::verify_since`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalSummary {
    /// The trusted tree size the check started from.
    pub from: u64,
    /// The ledger as verified: entries, head hash.
    pub summary: VerifySummary,
    /// The RFC 6962 root at the verified size.
    pub root: Hash,
}

impl<S: Store> Ledger<S> {
    /// Verifies what was appended after `trusted`, as of the head when the call starts:
    ///
    /// 1. the stored tree at `trusted.size` hashes to `trusted.root` (nothing before it was
    ///    rewritten, truncated or forked), and the entry before it is the one the tree and the
    ///    chain head name;
    /// 2. the key register as of `trusted.size` is rebuilt from the `key` entries before it
    ///    that the kind index lists, each proven in the trusted tree by an inclusion proof;
    /// 3. every new entry is replayed as [`Ledger::verify`] replays it (canonical bytes,
    ///    sequence, previous hash, time, signature, signer rights) and its leaf added to the
    ///    trusted tree, and every derived index key it implies is looked up;
    /// 4. the full Merkle tiles the new leaves complete match the stored ones, the resulting
    ///    tree matches the recorded tree, and the consistency proof served from the tiles
    ///    (trusted size → head) verifies against both roots.
    ///
    /// Work is proportional to the new entries (plus O(log n) tile reads and the key
    /// entries). What it leaves to a full [`Ledger::verify`]: stray index keys (a key the
    /// entries do not imply), and a `key` entry before the trusted size removed from both the
    /// kind index and the `Keys` record.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming the first entry that fails (a ledger shorter than
    /// `trusted.size`, or whose tree there differs, fails at the trusted size's last entry);
    /// [`Error::Storage`] on a read error.
    pub fn verify_since(&self, trusted: &TrustedHead, mut progress: impl FnMut(u64)) -> Result<IncrementalSummary> {
        let head = {
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            self.store.head()?
        };
        let (head_seq, head_hash) = head.ok_or_else(|| Error::tampered(Seq(0), "no head recorded"))?;
        let size = head_seq.0 + 1;
        let n = trusted.size;
        if n == 0 {
            let summary = self.verify(progress)?;
            let root = self.root_at(summary.entries)?;
            return Ok(IncrementalSummary { from: 0, summary, root });
        }
        if n > size {
            return Err(Error::tampered(
                head_seq,
                format!("the ledger holds {size} entries, fewer than the {n} of the trusted checkpoint: entries were removed"),
            ));
        }
        let mut nodes = self.nodes();
        let start = self.trusted_start(trusted, &mut nodes)?;
        let keys = self.lock().keys().clone();
        // The new entries' index keys are looked up directly (`check_implied_keys`), not
        // summed: a full scan of each index would not be proportional to the new entries.
        let mut check_keys = |from: Seq, chunk: &[Checked]| self.check_implied_keys(from, chunk);
        let end = self.replay_range(start, size, &keys, None, &mut check_keys, &mut progress)?;
        let Replay { chain, tree, mut tiles, .. } = end;
        if chain.head() != head_hash {
            return Err(Error::tampered(head_seq, "the recorded head hash does not match the chain"));
        }
        tiles.finish(&self.store)?;
        let recorded = self.store.tree()?;
        if recorded.as_ref().is_some_and(|t| t.size() == size && *t != tree) {
            return Err(Error::tampered(head_seq, "the recorded Merkle tree frontier does not match the entries"));
        }
        let root = tree.root();
        let proof = merkle::consistency_proof_from(&mut nodes, n, size)?;
        merkle::verify_consistency(n, size, &proof, &trusted.root, &root).map_err(|e| {
            Error::tampered(
                head_seq,
                format!("the stored tiles give no valid consistency proof from the trusted checkpoint: {e}"),
            )
        })?;
        if merkle::root_from(&mut nodes, size)? != root {
            return Err(Error::tampered(head_seq, "the stored Merkle tiles do not give the entries' root"));
        }
        Ok(IncrementalSummary { from: n, summary: VerifySummary { entries: size, head: chain.head() }, root })
    }

    /// Checks the stored state at the trusted size against `trusted` and returns the replay's
    /// starting point there: the chain (last hash, time, key register), the tree and the tiles.
    fn trusted_start<N: NodeSource<Error = Error>>(&self, trusted: &TrustedHead, nodes: &mut N) -> Result<Replay> {
        let n = trusted.size;
        let last = Seq(n - 1);
        // The peaks of the stored tree at `n`: once they hash to the trusted root, every node
        // they are built from is the one the checkpoint committed to.
        let mut peaks = vec![];
        let mut lo = 0u64;
        for bit in (0..64).rev() {
            if n >> bit & 1 == 1 {
                let hi = lo + (1u64 << bit);
                peaks.push(merkle::subtree_root(nodes, lo, hi)?);
                lo = hi;
            }
        }
        let tree = Frontier::from_parts(n, peaks)?;
        if tree.root() != trusted.root {
            return Err(Error::tampered(
                last,
                format!("the stored Merkle tree at size {n} does not hash to the trusted checkpoint's root: the log was rewritten"),
            ));
        }
        let bytes = self.proven_entry(last, trusted, nodes)?;
        let hash = entry_hash(&bytes);
        if trusted.chain_head.is_some_and(|h| h != hash) {
            return Err(Error::tampered(last, "the entry's hash is not the chain head the trusted checkpoint records"));
        }
        let entry = Entry::decode(&bytes).map_err(|e| Error::tampered_entry(last, e))?;
        let keys = self.key_register_before(trusted, nodes)?;
        // The partial tiles at `n`, from the same (now trusted) nodes.
        let mut partials: BTreeMap<u8, Vec<Hash>> = BTreeMap::new();
        for (level, first, count) in tiles::partial_sources(n) {
            let tree_level = u32::from(level) * tiles::TILE_HEIGHT;
            let hashes = (first..first + count).map(|i| nodes.node(tree_level, i)).collect::<Result<Vec<_>>>()?;
            partials.insert(level, hashes);
        }
        Ok(Replay {
            chain: ChainState::resume(Seq(n), hash, entry.time, keys),
            tree,
            tiles: TileChecker::resume(n, &partials)?,
            seq: Seq(n),
        })
    }

    /// The stored bytes of entry `seq`, proven to be the `seq`-th leaf of the trusted tree.
    fn proven_entry<N: NodeSource<Error = Error>>(
        &self,
        seq: Seq,
        trusted: &TrustedHead,
        nodes: &mut N,
    ) -> Result<Vec<u8>> {
        let bytes = self.store.entry(seq)?.ok_or_else(|| Error::tampered(seq, "entry is missing"))?;
        let proof = merkle::inclusion_proof_from(nodes, trusted.size, seq.0)?;
        merkle::verify_inclusion(&merkle::leaf_hash(&bytes), seq.0, trusted.size, &proof, &trusted.root).map_err(
            |_| {
                Error::tampered(
                    seq,
                    "the stored entry is not the one the trusted checkpoint's tree holds: its bytes changed",
                )
            },
        )?;
        Ok(bytes)
    }

    /// The key register after the entries before the trusted size: the `key` entries the kind
    /// index lists there, each proven in the trusted tree and replayed in order.
    fn key_register_before<N: NodeSource<Error = Error>>(
        &self,
        trusted: &TrustedHead,
        nodes: &mut N,
    ) -> Result<KeyRegister> {
        let mut keys = KeyRegister::new();
        for seq in self.store.kind_seqs(Kind::Key)?.into_iter().filter(|s| s.0 < trusted.size) {
            let bytes = self.proven_entry(seq, trusted, nodes)?;
            let entry = Entry::decode(&bytes).map_err(|e| Error::tampered_entry(seq, e))?;
            if entry.seq != seq {
                return Err(Error::tampered(seq, format!("the entry stored at this seq says seq {}", entry.seq)));
            }
            let verified =
                keys.verify(&entry.signed_record(), seq, entry.time).map_err(|e| Error::tampered_entry(seq, e))?;
            if verified.kind() != Kind::Key {
                return Err(Error::tampered(
                    seq,
                    "the kind index lists this entry as a `key` entry, but it is not one",
                ));
            }
            keys.apply(&verified, seq, entry.time);
        }
        Ok(keys)
    }

    /// Every derived index key the well-formed entries of `chunk` (from `from`) imply is
    /// stored, pointing at its entry (one batched look-up per chunk).
    fn check_implied_keys(&self, from: Seq, chunk: &[Checked]) -> Result<()> {
        let mut wanted: Vec<(IndexKey, Seq)> = vec![];
        for (i, c) in chunk.iter().enumerate() {
            let Ok(p) = &c.pre else { continue };
            let v = p.verified();
            let seq = Seq(from.0 + i as u64);
            wanted.extend(
                index_keys(p.hash(), v.id(), v.kind(), &indexed_subjects(v.record())).into_iter().map(|k| (k, seq)),
            );
        }
        let held = self.store.index_holds(&wanted)?;
        match wanted.iter().zip(held).find(|(_, ok)| !ok) {
            Some(((key, seq), _)) => Err(Error::tampered(
                *seq,
                format!(
                    "the {} index lacks the key {key} this entry implies (or maps it to another entry)",
                    key.index()
                ),
            )),
            None => Ok(()),
        }
    }
}
