//! Every record of a ledger in memory, indexed by subject and entry hash: what the period
//! commands (population, controls, metrics, the workpaper) read, so that one sequential pass
//! over the log replaces a lookup per deployment. `why` over a snapshot walks the same links,
//! through the same [`crate::why::gather`], as `why` over the store's indexes, and gives the
//! same report.

use std::borrow::Cow;
use std::collections::HashMap;

use ledger_core::record::Kind;
use ledger_core::subject::Subject;
use ledger_core::types::{EntryHash, Seq, Timestamp};

use crate::why::{self, Gathered, RecordSource, Trust, WhyReport};

/// The records of a ledger up to a tree size, with their subject and hash indexes.
pub struct Snapshot {
    /// The records, ascending by sequence number.
    records: Vec<Gathered>,
    /// Positions in `records` of the entries mentioning each subject, ascending.
    by_subject: HashMap<Subject, Vec<u32>>,
    by_hash: HashMap<EntryHash, u32>,
    models: Vec<Seq>,
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
        let subjects = records.iter().map(|g| snapshot_subjects(&g.record)).collect();
        Snapshot::from_parts(records, subjects, tree_size, now, complete)
    }

    /// [`Snapshot::new`] for `records` already ascending by sequence number and distinct, with
    /// each one's [`snapshot_subjects`] computed (by the decoding threads). A record without
    /// its subjects (`subjects` shorter than `records`) is not indexed by subject.
    pub fn from_parts(
        records: Vec<Gathered>,
        subjects: Vec<Vec<Subject>>,
        tree_size: u64,
        now: Timestamp,
        complete: bool,
    ) -> Snapshot {
        let mut by_subject: HashMap<Subject, Vec<u32>> = HashMap::new();
        let mut by_hash = HashMap::with_capacity(records.len());
        let mut models = vec![];
        for (i, g) in records.iter().enumerate() {
            by_hash.insert(g.hash, i as u32);
            if g.record.kind() == Kind::Model {
                models.push(g.seq);
            }
        }
        for (i, subjects) in subjects.into_iter().enumerate() {
            for s in subjects {
                by_subject.entry(s).or_default().push(i as u32);
            }
        }
        Snapshot { records, by_subject, by_hash, models, tree_size, now, complete }
    }

    /// The records, ascending by sequence number.
    pub fn records(&self) -> &[Gathered] {
        &self.records
    }

    /// Whether the snapshot holds every entry below its tree size (not only some kinds).
    pub fn is_complete(&self) -> bool {
        self.complete
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
        if !self.complete {
            return Err(Missing(Seq(0)));
        }
        let (gathered, walked) = why::gather(self, subject, self.tree_size)?;
        let mut report = why::analyze(subject, &gathered, self.now, trust);
        report.walked = walked;
        Ok(report)
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
            Subject::Entry(h) => self.by_hash.get(h).map(|i| vec![self.at(*i).seq]).unwrap_or_default(),
            other => {
                self.by_subject.get(other).map(|v| v.iter().map(|i| self.at(*i).seq).collect()).unwrap_or_default()
            }
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
