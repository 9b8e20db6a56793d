//! Full verification: every entry replayed from the first, and everything derived from the
//! entries (the derived indexes, the `Keys` record, tiles, tree frontier, head) recomputed and
//! compared with what is stored.

use std::hash::{BuildHasher, RandomState};

use ledger_core::chain::{ChainState, PreChecked};
use ledger_core::entry::Entry;
use ledger_core::keys::KeyRegister;
use ledger_core::merkle::{self, Frontier, Hash};
use ledger_core::tiles;
use ledger_core::types::{EntryHash, Seq};

pub(super) use super::tile_check::TileChecker;
use super::{Ledger, VerifySummary};
use crate::error::{Error, Result};
use crate::store::{index_keys, indexed_subjects, visit_index_keys, Index, IndexKey, KeyEntries, Store};

/// Entries `verify` reads and pre-checks at a time.
const VERIFY_CHUNK: u64 = 2048;

/// Threads that pre-check chunks (decoding and signatures: most of `verify`'s work).
const PRECHECKERS: usize = 2;

/// Ranges of seqs the index check sums over separately, so that a mismatch is located by
/// re-reading one range, not the ledger.
const BUCKETS: u64 = 4096;

/// Most index keys beyond the verified head that are remembered (they are either appended
/// while `verify` runs or stray; only the first few are needed to name one).
const BEYOND_KEPT: usize = 64;

/// Where a replay stands: the chain, the tree and the tile check after the entries before
/// `seq`.
pub(super) struct Replay {
    pub chain: ChainState,
    pub tree: Frontier,
    pub tiles: TileChecker,
    pub seq: Seq,
}

/// One entry after its position-independent checks: its bytes, the decoded and
/// signature-checked form (or why not), and its leaf hash.
pub(super) struct Checked {
    pub bytes: Vec<u8>,
    pub pre: std::result::Result<PreChecked, ledger_core::Error>,
    pub leaf: Hash,
}

impl<S: Store> Ledger<S> {
    /// Verifies the ledger as of its head when the call starts: every entry from the first
    /// (canonical bytes, sequence, previous hash, signatures, signer rights); then everything
    /// derived from the entries against the same entries recomputed: each derived index (`h`,
    /// `r`, `s`, `k`: every key an entry implies present, pointing at that entry, and no other
    /// key), the `Keys` record, every stored tile (and no tile beyond the tree), the recorded
    /// tree frontier and the head. `progress` is called with the number of entries verified so
    /// far. Entries appended while it runs are left to the next verification.
    ///
    /// Entries are read on one thread and decoded and signature-checked on two more, chunk by
    /// chunk, while this one replays them in order. Signatures are checked with Ed25519 batch
    /// verification; a chunk whose batch fails is checked one entry at a time with `verify_strict`
    /// (see `ledger_core::entry::verify_batch` for the one difference batch verification
    /// makes: it can accept a signature its own key holder built to be refused by
    /// `verify_strict`; nothing without the private key).
    ///
    /// The index check sums a keyed fingerprint (SipHash-1-3 under a key drawn for this run,
    /// 64 bits) of every (key, seq) pair per index and per range of seqs, once over the
    /// entries and once over a scan of each index, so memory stays constant; a range whose sums
    /// differ is re-read to name the key. A store edited before the run cannot be made to
    /// match: the keys are unknown to whoever edited it.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming the first entry that fails, or the lowest seq whose index
    /// keys are wrong (with the index and the key).
    pub fn verify(&self, mut progress: impl FnMut(u64)) -> Result<VerifySummary> {
        // The head is read while no batch is being written (the writer lock), so every entry up
        // to it, and everything written with them, is in the store whole.
        let head = {
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            self.store.head()?
        };
        let (head_seq, head_hash) = head.ok_or_else(|| Error::tampered(Seq(0), "no head recorded"))?;
        let size = head_seq.0 + 1;
        // Signatures are checked ahead, on the pre-checking threads, against the final key
        // register (a key id names one public key); the chain links, signer rights, tree and
        // tiles are checked in order on this one.
        let keys = self.lock().keys().clone();
        let prints = Fingerprints::new();
        let width = size.div_ceil(BUCKETS).max(1);
        let mut expected = Tally::new(size, width);
        let start =
            Replay { chain: ChainState::new(), tree: Frontier::new(), tiles: TileChecker::default(), seq: Seq(0) };
        let Replay { chain, tree, mut tiles, .. } =
            self.replay_range(start, size, &keys, Some((&prints, &mut expected)), &mut |_, _| Ok(()), &mut progress)?;
        if chain.head() != head_hash {
            return Err(Error::tampered(head_seq, "the recorded head hash does not match the chain"));
        }
        let beyond = self.check_indexes(&prints, &expected, size, width)?;
        self.check_key_entries(chain.keys(), size)?;
        tiles.finish(&self.store)?;
        // What was appended meanwhile is left to the next verification, but nothing may lie
        // beyond the head: checked while no batch is being written here, so the store is
        // whole. On a shared store another handle may still append: the tiles are listed
        // before the head is read (a tile is written with the head that covers it), the head
        // and tree are read as of one moment, and an entry past the head counts only if the
        // head did not move past it.
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tile_ids = self.store.tile_ids()?;
        let (now_head, now_tree) = self.store.head_and_tree()?;
        let now = now_head.map_or(0, |(s, _)| s.0 + 1);
        self.check_beyond_head(beyond, now)?;
        if self.store.entry(Seq(now))?.is_some() && self.store.head()?.map_or(0, |(s, _)| s.0 + 1) <= now {
            return Err(Error::tampered(Seq(now), "an entry exists after the recorded head"));
        }
        check_no_stray_tiles(&tile_ids, now)?;
        match now_tree {
            Some(t) if t.size() == size && t != tree => {
                return Err(Error::tampered(head_seq, "the recorded Merkle tree frontier does not match the entries"))
            }
            Some(t) if t.size() < size || t.size() > now => {
                return Err(Error::tampered(
                    head_seq,
                    format!("the recorded Merkle tree has {} leaves, the chain {size}", t.size()),
                ))
            }
            _ => {}
        }
        Ok(VerifySummary { entries: size, head: chain.head() })
    }

    /// Replays the entries from `start.seq` up to `size` onto `start`. A pipeline: one thread
    /// reads chunks, two pre-check them (decoding, signatures against `keys`, and with
    /// `expected` the fingerprints of the index keys each implies summed into its tally), and
    /// this one hands each chunk, in order, to `on_chunk` and replays it (chain links, signer
    /// rights, tree, tiles). Returns the state after the last entry.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming the first entry that fails, or a missing entry.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn replay_range(
        &self,
        start: Replay,
        size: u64,
        keys: &KeyRegister,
        mut expected: Option<(&Fingerprints, &mut Tally)>,
        on_chunk: &mut dyn FnMut(Seq, &[Checked]) -> Result<()>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Replay> {
        let Replay { mut chain, mut tree, mut tiles, mut seq } = start;
        let prints = expected.as_ref().map(|(p, _)| *p);
        let width = expected.as_ref().map(|(_, t)| t.width);
        // Four threads on two cores: whichever stage is behind always has work queued, so
        // neither core waits on another stage. The queues are short, so a few chunks at most
        // are in memory. A stage whose consumer has gone stops at its next send, and one whose
        // producer has gone stops at its next receive, so an early return here ends them all.
        let (tallies, panicked) = std::thread::scope(|scope| -> Result<_> {
            let (chunks, to_check) = std::sync::mpsc::sync_channel::<(u64, Result<Vec<Vec<u8>>>)>(2);
            let to_check = std::sync::Arc::new(std::sync::Mutex::new(to_check));
            let (checked, in_order) = std::sync::mpsc::sync_channel::<(u64, Result<Vec<Checked>>)>(4);
            let first = seq.0;
            scope.spawn(move || {
                let mut from = first;
                while from < size {
                    let chunk = self.store.entries(Seq(from), VERIFY_CHUNK.min(size - from));
                    let n = chunk.as_ref().map_or(0, |c| c.len() as u64);
                    if chunks.send((from, chunk)).is_err() || n == 0 {
                        return;
                    }
                    from += n;
                }
            });
            let workers: Vec<_> = (0..PRECHECKERS)
                .map(|_| {
                    let (to_check, checked) = (to_check.clone(), checked.clone());
                    scope.spawn(move || {
                        let mut tally = width.map(|w| Tally::new(size, w));
                        loop {
                            let next = to_check.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok((from, chunk)) = next else { break };
                            let out = chunk.map(|c| precheck(keys, Seq(from), c, prints.zip(tally.as_mut())));
                            if checked.send((from, out)).is_err() {
                                break;
                            }
                        }
                        tally
                    })
                })
                .collect();
            drop((to_check, checked));
            // Chunks come back in any order; each is replayed once those before it are.
            let mut waiting: std::collections::BTreeMap<u64, Result<Vec<Checked>>> = Default::default();
            while seq.0 < size {
                let Some(out) = waiting.remove(&seq.0) else {
                    match in_order.recv() {
                        Ok((from, out)) => {
                            waiting.insert(from, out);
                            continue;
                        }
                        Err(_) => break,
                    }
                };
                let out = out?;
                if out.is_empty() {
                    break;
                }
                on_chunk(seq, &out)?;
                for c in &out {
                    self.replay_checked(&mut chain, &mut tree, &mut tiles, seq, c)?;
                    seq = Seq(seq.0 + 1);
                }
                progress(seq.0);
            }
            drop(in_order);
            let mut tallies = vec![];
            let mut panicked = false;
            for w in workers {
                match w.join() {
                    Ok(t) => tallies.push(t),
                    Err(_) => panicked = true,
                }
            }
            Ok((tallies, panicked))
        })?;
        if panicked {
            return Err(Error::Storage("a verify thread panicked".into()));
        }
        if let Some((_, expected)) = expected.as_mut() {
            for t in tallies.iter().flatten() {
                expected.add(t);
            }
        }
        progress(seq.0);
        if seq.0 != size {
            return Err(Error::tampered(
                seq,
                format!(
                    "the entry is missing: the recorded head is seq {} but entries end at {}",
                    size - 1,
                    seq.0 as i64 - 1
                ),
            ));
        }
        Ok(Replay { chain, tree, tiles, seq })
    }

    /// The in-order half of `verify` for the entry at `seq`.
    fn replay_checked(
        &self,
        chain: &mut ChainState,
        tree: &mut Frontier,
        tiles: &mut TileChecker,
        seq: Seq,
        c: &Checked,
    ) -> Result<EntryHash> {
        let tampered = |e: ledger_core::Error| match e {
            ledger_core::Error::ChainBroken { seq: at, .. } => Error::tampered_entry(at, e),
            other => Error::tampered_entry(seq, other),
        };
        tree.push(c.leaf);
        tiles.push(c.leaf, &self.store)?;
        let replayed = match &c.pre {
            Ok(pre) => chain.replay_prechecked(pre).map_err(tampered),
            // The full replay names the error at this seq exactly as a one-thread replay would.
            Err(_) => chain.replay(&c.bytes).map(|e| e.hash).map_err(tampered),
        };
        self.blame(replayed)
    }

    /// A failure at an entry may be caused by the one before it: an entry whose bytes changed
    /// (say, its integration time) still replays, but its hash no longer matches the next
    /// entry's `prev`. The hash index still holds the original hash, so an entry before the
    /// failing one whose stored bytes' hash the index does not know is named instead.
    fn blame(&self, result: Result<EntryHash>) -> Result<EntryHash> {
        let seq = match &result {
            Err(Error::Tampered { seq, .. }) if seq.0 > 0 => *seq,
            _ => return result,
        };
        let before = Seq(seq.0 - 1);
        let changed = match self.store.entry(before)? {
            Some(bytes) => self.store.seq_by_hash(&ledger_core::entry::entry_hash(&bytes))? != Some(before),
            None => false,
        };
        if changed {
            return Err(Error::tampered(
                before,
                "the entry's bytes changed: its hash is not the one the hash index and the next entry record",
            ));
        }
        result
    }

    /// Compares each derived index with the keys the entries imply (summed in `expected`):
    /// one scan per index. Names the lowest seq whose keys differ, with the index and the key.
    /// Returns the keys that name seqs beyond `size`, for [`Ledger::check_beyond_head`].
    fn check_indexes(
        &self,
        prints: &Fingerprints,
        expected: &Tally,
        size: u64,
        width: u64,
    ) -> Result<Vec<(Index, Seq)>> {
        // The indexes are scanned on two threads, two each (the subject index, the largest,
        // paired with the smallest).
        let scan = |indexes: [Index; 2]| -> Result<(Tally, Vec<(Index, Seq)>)> {
            let mut tally = Tally::new(size, width);
            let mut beyond: Vec<(Index, Seq)> = vec![];
            for index in indexes {
                self.store.scan_index_ids(index, &mut |id, seq| {
                    if seq.0 < size {
                        tally.push(index, prints.of_bytes(index, id, seq), seq);
                    } else if beyond.len() < BEYOND_KEPT {
                        beyond.push((index, seq));
                    }
                    Ok(())
                })?;
            }
            Ok((tally, beyond))
        };
        let (mine, theirs) = std::thread::scope(|scope| {
            let other = scope.spawn(|| scan([Index::Hash, Index::Record]));
            let mine = scan([Index::Subject, Index::Kind]);
            (mine, other.join())
        });
        let (mut stored, mut beyond) = mine?;
        let (tally, more) = theirs.map_err(|_| Error::Storage("a verify thread panicked".into()))??;
        stored.add(&tally);
        beyond.extend(more);
        let mut defects: Vec<Defect> = vec![];
        for (index, bucket) in expected.differences(&stored) {
            // Buckets come in ascending order: the first that holds a defect names the lowest.
            if defects.first().is_some_and(|d| d.seq.0 < bucket * width) {
                break;
            }
            defects.extend(self.locate(index, bucket * width, ((bucket + 1) * width).min(size))?);
        }
        if let Some(d) = defects.into_iter().min_by_key(|d| d.seq) {
            return Err(d.into_error());
        }
        Ok(beyond)
    }

    /// Index keys that named seqs beyond the verified head (up to [`BEYOND_KEPT`] of them,
    /// `(index, seq)`) belong to entries appended since (below `now`), or to nobody.
    fn check_beyond_head(&self, beyond: Vec<(Index, Seq)>, now: u64) -> Result<()> {
        let Some((index, seq)) = beyond.into_iter().filter(|(_, s)| s.0 >= now).min_by_key(|(_, s)| *s) else {
            return Ok(());
        };
        // Found again to be named (only on this failure path are keys decoded whole).
        let mut key = None;
        self.store.scan_index(index, &mut |k, s| {
            if s == seq && key.is_none() {
                key = Some(k);
            }
            Ok(())
        })?;
        let key = key.unwrap_or_else(|| IndexKey::Malformed(index, vec![]));
        Err(Defect { seq, key, problem: Problem::Stray { beyond_head: true } }.into_error())
    }

    /// The exact differences between `index` and the keys implied by the entries `lo..hi`.
    fn locate(&self, index: Index, lo: u64, hi: u64) -> Result<Vec<Defect>> {
        let mut want: std::collections::BTreeSet<(IndexKey, Seq)> = Default::default();
        for (i, bytes) in self.store.entries(Seq(lo), hi - lo)?.iter().enumerate() {
            let seq = Seq(lo + i as u64);
            for k in implied(bytes).map_err(|e| Error::tampered_entry(seq, e))? {
                if k.index() == index {
                    want.insert((k, seq));
                }
            }
        }
        let mut have: std::collections::BTreeSet<(IndexKey, Seq)> = Default::default();
        self.store.scan_index(index, &mut |key, seq| {
            if (lo..hi).contains(&seq.0) {
                have.insert((key, seq));
            }
            Ok(())
        })?;
        let mut out = vec![];
        for (key, seq) in want.difference(&have) {
            // For a key→seq index (hash, record), the key may exist pointing elsewhere.
            let elsewhere = match key {
                IndexKey::Hash(h) => self.store.seq_by_hash(h)?,
                IndexKey::Record(r) => self.store.seq_by_record(r)?,
                _ => None,
            };
            let problem = match elsewhere {
                Some(other) => Problem::WrongSeq { points_at: other },
                None => Problem::Missing,
            };
            out.push(Defect { seq: *seq, key: key.clone(), problem });
        }
        for (key, seq) in have.difference(&want) {
            // A hash or record key names one entry: if an entry here implies it, the key was
            // reported above as pointing at the wrong seq. Subject and kind keys carry their
            // seq, so each unexpected one is stray.
            let reported = matches!(key, IndexKey::Hash(_) | IndexKey::Record(_)) && want.iter().any(|(k, _)| k == key);
            if !reported {
                out.push(Defect { seq: *seq, key: key.clone(), problem: Problem::Stray { beyond_head: false } });
            }
        }
        if out.is_empty() {
            // The sums differ, so some key does; a concurrent edit of the store can hide it.
            return Err(Error::tampered(
                Seq(lo),
                format!("the {index} index disagrees with entries #{lo}..#{} (it changed during the check)", hi - 1),
            ));
        }
        Ok(out)
    }

    /// The `Keys` record lists exactly the key entries the replay found (below `size`).
    fn check_key_entries(&self, keys: &KeyRegister, size: u64) -> Result<()> {
        let KeyEntries::Recorded(recorded) = self.store.key_entries()? else {
            return Err(Error::tampered(Seq(0), "the record of key entries (`Keys`) is missing"));
        };
        let recorded: Vec<Seq> = recorded.into_iter().filter(|s| s.0 < size).collect();
        let actual = keys.entry_seqs();
        if let Some(seq) = first_difference(&recorded, &actual) {
            let reason = if actual.contains(&seq) {
                "this `key` entry is missing from the record of key entries (`Keys`)"
            } else {
                "the record of key entries (`Keys`) lists this entry, which is no `key` entry"
            };
            return Err(Error::tampered(seq, reason));
        }
        Ok(())
    }
}

/// Every stored tile (`tile_ids`) is a full tile of the tree of `size` leaves.
fn check_no_stray_tiles(tile_ids: &[(u8, u64)], size: u64) -> Result<()> {
    for &(level, index) in tile_ids {
        let span = (tiles::TILE_WIDTH as u64).checked_pow(u32::from(level) + 1);
        let end = span.and_then(|s| index.checked_add(1)?.checked_mul(s));
        if end.is_none_or(|e| e > size) {
            let first = span.and_then(|s| index.checked_mul(s)).unwrap_or(u64::MAX);
            return Err(Error::tampered(
                Seq(first.min(size)),
                format!("a stored Merkle tile {level}/{index} lies beyond the tree of {size} leaves"),
            ));
        }
    }
    Ok(())
}

/// The lowest seq in one sorted list and not the other.
fn first_difference(a: &[Seq], b: &[Seq]) -> Option<Seq> {
    let sa: std::collections::BTreeSet<Seq> = a.iter().copied().collect();
    let sb: std::collections::BTreeSet<Seq> = b.iter().copied().collect();
    sa.symmetric_difference(&sb).min().copied()
}

/// The derived index keys the entry bytes imply.
fn implied(bytes: &[u8]) -> std::result::Result<Vec<IndexKey>, ledger_core::Error> {
    let entry = Entry::decode(bytes)?;
    let record = entry.decode_record()?;
    let id = ledger_core::entry::record_id(&entry.record.0);
    Ok(index_keys(ledger_core::entry::entry_hash(bytes), id, record.kind(), &indexed_subjects(&record)))
}

/// Pre-checks `chunk` (entries from `from`) and, given `sums`, sums the fingerprints of the
/// index keys each well-formed entry implies into its tally.
fn precheck(
    keys: &KeyRegister,
    from: Seq,
    chunk: Vec<Vec<u8>>,
    mut sums: Option<(&Fingerprints, &mut Tally)>,
) -> Vec<Checked> {
    let pre = PreChecked::check_many(keys, &chunk);
    chunk
        .into_iter()
        .zip(pre)
        .enumerate()
        .map(|(i, (bytes, pre))| {
            let seq = Seq(from.0 + i as u64);
            if let (Ok(p), Some((prints, tally))) = (&pre, sums.as_mut()) {
                let v = p.verified();
                visit_index_keys(p.hash(), v.id(), v.kind(), &indexed_subjects(v.record()), |index, id| {
                    tally.push(index, prints.of_bytes(index, id, seq), seq);
                });
            }
            Checked { leaf: merkle::leaf_hash(&bytes), bytes, pre }
        })
        .collect()
}

/// A keyed 64-bit fingerprint of (index key, seq): SipHash-1-3 under a 128-bit key drawn
/// when `verify` starts. Whoever edited the store did so before the key existed, so an edit
/// leaves a range's sums equal with probability 2^-64.
pub(super) struct Fingerprints {
    key: RandomState,
}

impl Fingerprints {
    pub(super) fn new() -> Self {
        Fingerprints { key: RandomState::new() }
    }

    fn of_bytes(&self, index: Index, id: &[u8], seq: Seq) -> u64 {
        self.key.hash_one((index as u8, id, seq.0))
    }
}

/// Fingerprint sums per index and per bucket of `width` seqs (wrapping addition, so the order
/// of the keys does not matter and partial tallies add up).
pub(super) struct Tally {
    width: u64,
    sums: Vec<[u64; 4]>,
}

impl Tally {
    pub(super) fn new(size: u64, width: u64) -> Self {
        Tally { width, sums: vec![[0; 4]; size.div_ceil(width).max(1) as usize] }
    }

    fn push(&mut self, index: Index, print: u64, seq: Seq) {
        let slot = &mut self.sums[(seq.0 / self.width) as usize][index as usize];
        *slot = slot.wrapping_add(print);
    }

    fn add(&mut self, other: &Tally) {
        for (mine, theirs) in self.sums.iter_mut().zip(&other.sums) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m = m.wrapping_add(*t);
            }
        }
    }

    /// (index, bucket) pairs whose sums differ, buckets ascending.
    fn differences(&self, other: &Tally) -> Vec<(Index, u64)> {
        let mut out = vec![];
        for (bucket, (a, b)) in self.sums.iter().zip(&other.sums).enumerate() {
            for index in Index::ALL {
                if a[index as usize] != b[index as usize] {
                    out.push((index, bucket as u64));
                }
            }
        }
        out
    }
}

/// What is wrong with one index key.
#[derive(Debug)]
enum Problem {
    /// The entry implies the key; the index lacks it.
    Missing,
    /// The entry implies the key; the index maps it to another entry.
    WrongSeq { points_at: Seq },
    /// The index holds a key that the entry it names does not imply.
    Stray { beyond_head: bool },
}

/// A difference between a derived index and the entries.
#[derive(Debug)]
struct Defect {
    seq: Seq,
    key: IndexKey,
    problem: Problem,
}

impl Defect {
    fn into_error(self) -> Error {
        let (index, key) = (self.key.index(), &self.key);
        let reason = match self.problem {
            Problem::Missing => format!("the {index} index lacks the key {key} this entry implies"),
            Problem::WrongSeq { points_at } => {
                format!("the {index} index maps {key}, which this entry implies, to #{points_at}")
            }
            Problem::Stray { beyond_head: false } => {
                format!("the {index} index holds the key {key} for this entry, which does not imply it")
            }
            Problem::Stray { beyond_head: true } => {
                format!("the {index} index holds the key {key} for an entry beyond the head")
            }
        };
        Error::tampered(self.seq, reason)
    }
}
