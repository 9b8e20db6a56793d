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
        let mut by_subject: HashMap<Subject, Vec<u32>> = HashMap::new();
        let mut by_hash = HashMap::with_capacity(records.len());
        let mut models = vec![];
        for (i, g) in records.iter().enumerate() {
            let i = i as u32;
            by_hash.insert(g.hash, i);
            if g.record.kind() == Kind::Model {
                models.push(g.seq);
            }
            // Every subject the record names, repository-qualified commits included (the
            // store indexes their bare form and filters: the same entries either way).
            let mut subjects = g.record.subjects();
            subjects.sort();
            subjects.dedup();
            for s in subjects {
                by_subject.entry(s).or_default().push(i);
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
