//! Export: a v2 bundle ([`ledger_core::bundle`]) of a selection, written as a stream. Each
//! contiguous run of exported entries is proven by its range proof from the stored tiles, so an
//! export of every entry holds no per-entry proof and memory stays bounded by one chunk of
//! entries whatever the tree size.

use std::collections::BTreeSet;
use std::io::Write;

use ed25519_dalek::SigningKey;
use ledger_audit::why::Trust;
use ledger_core::bundle::{BundleWriter, Selection};
use ledger_core::entry::Entry;
use ledger_core::merkle;
use ledger_core::record::{Body, Kind};
use ledger_core::types::{Seq, Timestamp};

use super::Ledger;
use crate::error::{Error, Result};
use crate::store::Store;

/// Entries read from the store at a time while exporting.
const CHUNK: u64 = 4096;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Tree size of the checkpoint the bundle is proven against.
    pub tree_size: u64,
    /// Entries written (selected and supporting).
    pub entries: u64,
    /// Selected entries.
    pub selected: u64,
    /// Runs (contiguous ranges, each with one range proof).
    pub runs: u64,
}

/// Which entries of a run are selected.
enum Selected {
    All,
    Range(u64, u64),
    Set(BTreeSet<u64>),
}

impl Selected {
    fn contains(&self, seq: u64) -> bool {
        match self {
            Selected::All => true,
            Selected::Range(a, b) => (*a..*b).contains(&seq),
            Selected::Set(s) => s.contains(&seq),
        }
    }
}

impl<S: Store> Ledger<S> {
    /// Writes a v2 bundle of `selection` to `out`: a fresh checkpoint signed with `key` (the
    /// log key, as for [`Ledger::signed_checkpoint`]) under `origin`, the selected entries and
    /// every `key` entry below its tree size in ascending runs, each with its range proof, and
    /// the manifest signed with `key`. A time selection includes the entry just before and
    /// just after the range (when there are such entries), which prove it complete.
    /// `progress(done, total)` is called as entries are written.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key that does not sign checkpoints or a subject that
    /// names nothing; [`Error::NotFound`] if nothing recorded mentions the subject;
    /// [`Error::Storage`] for store or write failures.
    pub fn export_bundle(
        &self,
        selection: &Selection,
        origin: &str,
        key: &SigningKey,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportSummary> {
        let (signed, vkey, size, _root) = self.signed_checkpoint(origin, key)?;
        let mut key_seqs: Vec<u64> =
            self.kind_seqs(Kind::Key)?.into_iter().map(|s| s.0).filter(|s| *s < size).collect();
        key_seqs.sort_unstable();
        let (mut intervals, selected): (Vec<(u64, u64)>, Selected) = match selection {
            Selection::All => (vec![(0, size)], Selected::All),
            Selection::Time { since, until } => {
                let a = match since {
                    Some(t) => self.first_at_or_after(*t, size)?,
                    None => 0,
                };
                let b = match until {
                    Some(t) => self.first_at_or_after(*t, size)?.max(a),
                    None => size,
                };
                // The range with its neighbours: they show where it starts and ends.
                (vec![(a.saturating_sub(1), (b + 1).min(size))], Selected::Range(a, b))
            }
            Selection::Subject { subject } => {
                let set = self.subject_selection(subject, size)?;
                (set.iter().map(|s| (*s, s + 1)).collect(), Selected::Set(set))
            }
            Selection::Subjects { subjects } => {
                if subjects.is_empty() {
                    return Err(Error::InvalidArgument("a `subjects` selection names no subject".into()));
                }
                let mut set = BTreeSet::new();
                for subject in subjects {
                    set.extend(self.subject_selection(subject, size)?);
                }
                (set.iter().map(|s| (*s, s + 1)).collect(), Selected::Set(set))
            }
        };
        intervals.extend(key_seqs.iter().map(|s| (*s, s + 1)));
        let runs = merge_intervals(intervals);
        let total: u64 = runs.iter().map(|(a, b)| b - a).sum();
        let io = |e: std::io::Error| Error::Storage(format!("writing the bundle: {e}"));
        let (mut w, header) =
            BundleWriter::new(selection.clone(), &signed, &vkey).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        out.write_all(header.as_bytes()).map_err(io)?;
        let mut done = 0;
        for (start, end) in &runs {
            let (left, right) = merkle::range_proof_from(&mut self.nodes(), *start, *end, size)?;
            out.write_all(w.run(*start, *end, &left, &right).as_bytes()).map_err(io)?;
            let mut seq = *start;
            while seq < *end {
                let chunk = self.store.entries(Seq(seq), CHUNK.min(end - seq))?;
                if chunk.is_empty() {
                    return Err(Error::tampered(Seq(seq), "entry missing from the store"));
                }
                for bytes in chunk {
                    out.write_all(w.entry(seq, &bytes, selected.contains(seq)).as_bytes()).map_err(io)?;
                    seq += 1;
                    done += 1;
                }
                progress(done, total);
            }
        }
        let name = origin.replace(char::is_whitespace, "-");
        let manifest = ledger_core::note::sign(&w.manifest_text(), &name, key)
            .map_err(|e| Error::InvalidArgument(format!("signing the manifest: {e}")))?;
        out.write_all(BundleWriter::manifest_line(&manifest).as_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
        let (entries, selected) = w.counts();
        Ok(ExportSummary { tree_size: size, entries, selected, runs: runs.len() as u64 })
    }

    /// The first seq below `size` whose integration time is at or after `t` (`size` if none):
    /// a binary search, as integration times never decrease along the log.
    fn first_at_or_after(&self, t: Timestamp, size: u64) -> Result<u64> {
        let (mut lo, mut hi) = (0u64, size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let bytes = self.store.entry(Seq(mid))?.ok_or_else(|| Error::tampered(Seq(mid), "entry missing"))?;
            let entry = Entry::decode(&bytes).map_err(|e| Error::tampered(Seq(mid), e.to_string()))?;
            if entry.time >= t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// The entries a subject bundle selects, below `size`: every entry `why` reports for the
    /// change(s) the subject belongs to (duplicates included), every entry that mentions the
    /// subject, the gate decisions about those changes, and every policy.
    fn subject_selection(&self, input: &str, size: u64) -> Result<BTreeSet<u64>> {
        let report = self.why_input(input, &Trust::default())?;
        let mut selected = BTreeSet::new();
        let mut changes: Vec<String> = vec![];
        for c in &report.changes {
            changes.push(c.subject.clone());
            selected.insert(c.at.seq);
            selected.extend(c.merge.iter().map(|m| m.at.seq));
            for r in &c.reviews {
                selected.insert(r.at.seq);
                selected.extend(r.also.iter().map(|a| a.seq));
            }
            selected.extend(c.evidence.iter().map(|e| e.at.seq));
            for s in &c.sessions {
                selected.insert(s.at.seq);
                selected.extend(s.also.iter().map(|a| a.seq));
            }
            selected.extend(c.exceptions.iter().map(|x| x.at.seq));
            selected.extend(c.deployments.iter().map(|d| d.at.seq));
            selected.extend(c.incidents.iter().map(|i| i.at.seq));
        }
        let subject = self.resolve(input)?;
        selected.extend(self.seqs_for(&subject)?.into_iter().map(|s| s.0));
        for seq in self.kind_seqs(Kind::Gate)? {
            if let Body::Gate(g) = &self.must_get(seq)?.record.body {
                if changes.contains(&g.subject.to_string()) {
                    selected.insert(seq.0);
                }
            }
        }
        selected.extend(self.kind_seqs(Kind::Policy)?.into_iter().map(|s| s.0));
        selected.retain(|s| *s < size);
        if selected.is_empty() {
            return Err(Error::NotFound(format!("anything recorded about {input}")));
        }
        Ok(selected)
    }
}

/// Sorted, merged half-open intervals: overlapping or adjacent ones become one run.
fn merge_intervals(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.retain(|(a, b)| a < b);
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge_intervals;

    #[test]
    fn intervals_merge_when_they_touch_or_overlap() {
        assert_eq!(merge_intervals(vec![(5, 6), (0, 1), (1, 2), (3, 5), (9, 9), (4, 8)]), vec![(0, 2), (3, 8)]);
        assert_eq!(merge_intervals(vec![]), vec![]);
    }
}
