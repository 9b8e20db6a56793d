//! What `why` reads: from the asked subject along the links that matter (change, commits,
//! deployments, causes), a few hops and a bounded number of entries, plus every `model`
//! record. The walk is the same whatever holds the records: the store's indexes
//! (`ledger-store`) or an in-memory [`crate::snapshot::Snapshot`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use ledger_core::subject::Subject;
use ledger_core::types::{EntryHash, Seq};

use super::{follow, EntryRef, Gathered, WalkStep};

/// Hops `why` follows from the asked subject (subject → change → commits → deployments →
/// incidents needs four).
pub const WHY_ROUNDS: usize = 5;

/// Most entries `why` gathers; beyond it the report covers what was gathered.
pub const WHY_MAX_ENTRIES: usize = 20_000;

/// Records by subject and by sequence number: what [`gather`] walks.
pub trait RecordSource {
    /// A read error.
    type Error;
    /// The entries that mention `subject` (for an entry subject: that entry), ascending.
    ///
    /// # Errors
    /// The source cannot be read.
    fn seqs_for(&self, subject: &Subject) -> Result<Vec<Seq>, Self::Error>;
    /// The record at `seq`, with its signer's name filled in.
    ///
    /// # Errors
    /// The entry is missing or does not decode.
    fn record(&self, seq: Seq) -> Result<Cow<'_, Gathered>, Self::Error>;
    /// Every `model` record's sequence number, ascending.
    ///
    /// # Errors
    /// The source cannot be read.
    fn model_seqs(&self) -> Result<Vec<Seq>, Self::Error>;
}

/// The records `why` considers for `subject`, as the source was at `tree_size` (entries at
/// or beyond it are neither read nor followed), with the subjects walked in the order they
/// were reached, each with the entries that mention it.
///
/// # Errors
/// The source's errors.
#[allow(clippy::type_complexity)]
pub fn gather<'s, S: RecordSource>(
    source: &'s S,
    subject: &Subject,
    tree_size: u64,
) -> Result<(Vec<Cow<'s, Gathered>>, Vec<WalkStep>), S::Error> {
    let mut seen: BTreeSet<Seq> = BTreeSet::new();
    let mut gathered: Vec<Cow<'s, Gathered>> = vec![];
    let mut hashes: BTreeMap<Seq, EntryHash> = BTreeMap::new();
    let mut walked: Vec<WalkStep> = vec![];
    // Adds the unseen entries of `seqs`; returns the positions of the fresh ones.
    let mut add = |seqs: &[Seq], out: &mut Vec<Cow<'s, Gathered>>, hashes: &mut BTreeMap<Seq, EntryHash>| {
        let first = out.len();
        for &seq in seqs {
            if seq.0 < tree_size && seen.insert(seq) {
                let g = source.record(seq)?;
                hashes.insert(seq, g.hash);
                out.push(g);
            }
        }
        Ok::<_, S::Error>(first..out.len())
    };
    let mut expanded: BTreeSet<Subject> = BTreeSet::new();
    let mut frontier: Vec<Subject> = vec![subject.clone()];
    for _round in 0..WHY_ROUNDS {
        let mut next: Vec<Subject> = vec![];
        for s in frontier.drain(..) {
            if !expanded.insert(s.clone()) || gathered.len() >= WHY_MAX_ENTRIES {
                continue;
            }
            let seqs = source.seqs_for(&s)?;
            for i in add(&seqs, &mut gathered, &mut hashes)? {
                next.extend(follow(&gathered[i].record).into_iter().filter(|x| !expanded.contains(x)));
            }
            let entries = seqs
                .iter()
                .filter(|q| q.0 < tree_size)
                .filter_map(|q| hashes.get(q).map(|h| EntryRef { seq: q.0, entry: h.to_hex() }))
                .collect();
            walked.push(WalkStep { subject: s.to_string(), entries });
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    let models = source.model_seqs()?;
    add(&models, &mut gathered, &mut hashes)?;
    Ok((gathered, walked))
}
