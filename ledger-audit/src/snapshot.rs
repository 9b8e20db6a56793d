//! Every record of a ledger in memory, indexed by subject and entry hash: what the period
//! commands (population, controls, metrics, the workpaper) read, so that one sequential pass
//! over the log replaces a lookup per deployment. `why` over a snapshot walks the same links,
//! through the same [`crate::why::gather`], as `why` over the store's indexes, and gives the
//! same report.
//!
//! The indexes hold no copy of a subject: each subject is reduced to a 128-bit keyed hash
//! ([`SubjectKeys`], drawn per process), and the pairs (key, position) are sorted once.
//! Building them is a sort of a few million integers instead of a map of a million strings,
//! and the decoders compute the keys on every core. Two subjects share a key with a
//! probability of about n²/2¹²⁹ (10⁻²⁷ for a million subjects), and since the key is secret
//! nobody can craft a collision; entry hashes are looked up by their first eight bytes and
//! compared whole.

use std::borrow::Cow;
use std::hash::BuildHasher;

use ledger_core::record::{Kind, Record, Stage};
use ledger_core::subject::Subject;
use ledger_core::types::{Digest, EntryHash, Seq, Timestamp};

use crate::gate::GateReport;
use crate::policy::Policy;
use crate::why::{self, Gathered, RecordSource, Trust, WhyReport};

/// The keyed hash that reduces a subject to a 128-bit index key: two SipHash-1-3 outputs
/// under independent keys drawn per process.
#[derive(Clone, Debug, Default)]
pub struct SubjectKeys(std::hash::RandomState, std::hash::RandomState);

impl SubjectKeys {
    /// A hash under freshly drawn keys.
    pub fn new() -> SubjectKeys {
        SubjectKeys(std::hash::RandomState::new(), std::hash::RandomState::new())
    }

    /// The index key of `subject`.
    pub fn key(&self, subject: &Subject) -> Key {
        (self.0.hash_one(subject), self.1.hash_one(subject))
    }

    /// Appends `(key, position)` for every subject `record` is indexed under
    /// ([`snapshot_subjects`]), each subject once.
    pub fn push_record(&self, record: &Record, position: u32, out: &mut Vec<(Key, u32)>) {
        for s in snapshot_subjects(record) {
            out.push((self.key(&s), position));
        }
    }
}

/// An index key: a subject's two keyed hashes, or an entry hash's first eight bytes (and 0).
pub type Key = (u64, u64);

/// The index key of an entry hash: its first eight bytes (a BLAKE3 output is uniform).
fn hash_key(h: &EntryHash) -> Key {
    let mut k = [0u8; 8];
    k.copy_from_slice(&h.0[..8]);
    (u64::from_le_bytes(k), 0)
}

/// Sorted `(key, position)` pairs, split by the key's top byte into 256 buckets so that the
/// pairs can be dealt out as they arrive and each bucket sorted on its own; a directory by the
/// next 12 bits finds a key's pairs in one or two cache misses (a binary search over a bucket
/// missed the cache at every step).
#[derive(Debug)]
pub struct KeyIndex {
    buckets: Vec<Vec<(Key, u32)>>,
    /// Per bucket, [`DIR`] + 1 offsets: where the pairs with each value of the key's next 12
    /// bits begin.
    dir: Vec<u32>,
}

/// Directory entries per bucket.
const DIR: usize = 1 << 12;

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex { buckets: (0..256).map(|_| Vec::new()).collect(), dir: vec![] }
    }
}

/// A key's bucket and directory slot.
fn slot(k: Key) -> (usize, usize) {
    ((k.0 >> 56) as usize, ((k.0 >> 44) as usize) & (DIR - 1))
}

impl KeyIndex {
    /// Adds pairs whose positions are relative to `offset`.
    pub fn extend(&mut self, offset: u32, pairs: &[(Key, u32)]) {
        for &(k, p) in pairs {
            self.buckets[slot(k).0].push((k, offset + p));
        }
    }

    /// Sorts every bucket and builds its directory (on every core); lookups need this first.
    pub fn finish(mut self) -> KeyIndex {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let per = self.buckets.len().div_ceil(threads);
        let mut dir = vec![0u32; self.buckets.len() * (DIR + 1)];
        std::thread::scope(|s| {
            for (part, dirs) in self.buckets.chunks_mut(per).zip(dir.chunks_mut(per * (DIR + 1))) {
                s.spawn(move || {
                    for (b, d) in part.iter_mut().zip(dirs.chunks_mut(DIR + 1)) {
                        b.sort_unstable();
                        let mut at = 0usize;
                        for (j, offset) in d.iter_mut().enumerate() {
                            while at < b.len() && slot(b[at].0).1 < j {
                                at += 1;
                            }
                            *offset = at as u32;
                        }
                    }
                });
            }
        });
        self.dir = dir;
        self
    }

    /// The positions filed under `key`, ascending.
    fn get(&self, key: Key) -> impl Iterator<Item = u32> + '_ {
        let (b, j) = slot(key);
        let d = &self.dir[b * (DIR + 1)..];
        let run = &self.buckets[b][d[j] as usize..d[j + 1] as usize];
        let from = run.partition_point(|&(k, _)| k < key);
        run[from..].iter().take_while(move |&&(k, _)| k == key).map(|&(_, p)| p)
    }
}

/// The subject and entry-hash indexes of a snapshot, built from `(key, position)` pairs as
/// the decoded records arrive.
#[derive(Debug, Default)]
pub struct SnapshotIndex {
    /// The hash the subject keys were made with.
    pub keys: SubjectKeys,
    subjects: KeyIndex,
    hashes: KeyIndex,
}

impl SnapshotIndex {
    /// An empty index whose subject keys are made with `keys`.
    pub fn new(keys: SubjectKeys) -> SnapshotIndex {
        SnapshotIndex { keys, subjects: KeyIndex::default(), hashes: KeyIndex::default() }
    }

    /// Adds records at positions `offset..`: `subjects` from [`SubjectKeys::push_record`]
    /// (positions relative to `offset`), and each record's entry hash.
    pub fn extend<'a>(&mut self, offset: u32, subjects: &[(Key, u32)], hashes: impl Iterator<Item = &'a EntryHash>) {
        self.subjects.extend(offset, subjects);
        for (i, h) in hashes.enumerate() {
            self.hashes.extend(offset, &[(hash_key(h), i as u32)]);
        }
    }
}

/// The records of a ledger up to a tree size, with their subject and hash indexes.
pub struct Snapshot {
    /// The records, ascending by sequence number.
    records: Vec<Gathered>,
    index: SnapshotIndex,
    /// Whether the subject index was built (the kinds-only snapshots skip it).
    by_subject: bool,
    models: Vec<Seq>,
    codeowners: Vec<Seq>,
    tree_size: u64,
    now: Timestamp,
    complete: bool,
}

impl Snapshot {
    /// Indexes `records` (any order; each with its signer's name filled in): every entry below
    /// `tree_size` when `complete`, else those of some kinds only (then [`Snapshot::why`] is
    /// refused). `now` decides which exceptions have expired in `why`.
    pub fn new(mut records: Vec<Gathered>, tree_size: u64, now: Timestamp, complete: bool) -> Snapshot {
        records.sort_by_key(|g| g.seq);
        records.dedup_by_key(|g| g.seq);
        let mut index = SnapshotIndex::new(SubjectKeys::new());
        let mut pairs = vec![];
        for (i, g) in records.iter().enumerate() {
            index.keys.push_record(&g.record, i as u32, &mut pairs);
        }
        index.extend(0, &pairs, records.iter().map(|g| &g.hash));
        Snapshot::from_parts(records, index, true, tree_size, now, complete)
    }

    /// [`Snapshot::new`] for `records` already ascending by sequence number and distinct, with
    /// `index` built over them ([`SnapshotIndex::extend`]); `by_subject` says whether every
    /// record's subjects were added (else [`RecordSource::seqs_for`] finds entries by hash
    /// only).
    pub fn from_parts(
        records: Vec<Gathered>,
        index: SnapshotIndex,
        by_subject: bool,
        tree_size: u64,
        now: Timestamp,
        complete: bool,
    ) -> Snapshot {
        let of_kind = |k: Kind| records.iter().filter(|g| g.record.kind() == k).map(|g| g.seq).collect();
        let (models, codeowners) = (of_kind(Kind::Model), of_kind(Kind::Codeowners));
        let SnapshotIndex { keys, subjects, hashes } = index;
        let index = SnapshotIndex { keys, subjects: subjects.finish(), hashes: hashes.finish() };
        Snapshot { records, index, by_subject, models, codeowners, tree_size, now, complete }
    }

    /// The records, ascending by sequence number.
    pub fn records(&self) -> &[Gathered] {
        &self.records
    }

    /// Whether the snapshot holds every entry below its tree size (not only some kinds).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// When the snapshot was taken: the time its `why` reports and gates are evaluated at.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The tree size the snapshot was taken at.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// The `why` report of `subject`, as `ledger why` gives it.
    ///
    /// # Errors
    /// [`Missing`] if the snapshot holds only some kinds, or lacks an entry its own indexes
    /// name (records given to [`Snapshot::new`] with gaps).
    pub fn why(&self, subject: &Subject, trust: &Trust) -> Result<WhyReport, Missing> {
        self.walk(subject, trust).map(|(_, report)| report)
    }

    /// What `why` gathers for `subject`, and its report.
    fn walk(&self, subject: &Subject, trust: &Trust) -> Result<(Vec<Cow<'_, Gathered>>, WhyReport), Missing> {
        if !self.complete {
            return Err(Missing(Seq(0)));
        }
        let (gathered, walked) = why::gather(self, subject, self.tree_size)?;
        let mut report = why::analyze(subject, &gathered, self.now, trust);
        report.walked = walked;
        Ok((gathered, report))
    }

    /// The `why` report of `subject` and its `stage` gate under `policy` (its document's
    /// `digest`), from one walk: the gate reads what `why` gathers plus every `codeowners`
    /// record, at the snapshot's tree size and time, as `ledger gate` does over the store.
    ///
    /// # Errors
    /// As [`Snapshot::why`].
    pub fn why_and_gate(
        &self,
        subject: &Subject,
        trust: &Trust,
        stage: Stage,
        policy: &Policy,
        digest: &Digest,
    ) -> Result<(WhyReport, GateReport), Missing> {
        let (mut gathered, report) = self.walk(subject, trust)?;
        for seq in &self.codeowners {
            if !gathered.iter().any(|g| g.seq == *seq) {
                gathered.push(self.record(*seq)?);
            }
        }
        let gate = crate::gate::evaluate(&crate::gate::GateInput {
            subject,
            stage,
            policy,
            policy_digest: digest,
            gathered: &gathered,
            now: self.now,
            trust: &Trust::default(),
            tree_size: self.tree_size,
        });
        Ok((report, gate))
    }

    fn at(&self, i: u32) -> &Gathered {
        &self.records[i as usize]
    }
}

/// The subjects a snapshot indexes a record under: every subject it names, sorted and
/// distinct, repository-qualified commits included (the store indexes their bare form and
/// filters on lookup: the same entries either way).
pub fn snapshot_subjects(record: &ledger_core::record::Record) -> Vec<Subject> {
    let mut subjects = record.subjects();
    subjects.sort();
    subjects.dedup();
    subjects
}

/// An entry a snapshot was asked for and does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing(pub Seq);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry #{} is not in the snapshot", self.0 .0)
    }
}

impl std::error::Error for Missing {}

impl RecordSource for Snapshot {
    type Error = Missing;

    fn seqs_for(&self, subject: &Subject) -> Result<Vec<Seq>, Missing> {
        Ok(match subject {
            Subject::Entry(h) => {
                self.index.hashes.get(hash_key(h)).map(|i| self.at(i)).filter(|g| g.hash == *h).map(|g| g.seq).collect()
            }
            _ if !self.by_subject => vec![],
            other => self.index.subjects.get(self.index.keys.key(other)).map(|i| self.at(i).seq).collect(),
        })
    }

    fn record(&self, seq: Seq) -> Result<Cow<'_, Gathered>, Missing> {
        let i = self.records.binary_search_by_key(&seq, |g| g.seq).map_err(|_| Missing(seq))?;
        Ok(Cow::Borrowed(&self.records[i]))
    }

    fn model_seqs(&self) -> Result<Vec<Seq>, Missing> {
        Ok(self.models.clone())
    }
}
