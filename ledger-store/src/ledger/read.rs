//! Reading: entries by seq or hash, subject resolution, log queries, and what `why` gathers.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use ledger_audit::why::{self, Gathered, Trust, WalkStep, WhyReport};
use ledger_core::entry::Entry;
use ledger_core::record::Kind;
use ledger_core::subject::Subject;
use ledger_core::types::{EntryHash, KeyId, Seq};

use super::{EntryView, Ledger, LogFilter};
use crate::error::{Error, Result};
use crate::store::Store;

impl<S: Store> Ledger<S> {
    /// The entry at `seq`.
    ///
    /// # Errors
    /// [`Error::Tampered`] if its bytes do not decode; [`Error::Storage`] on read errors.
    pub fn get(&self, seq: Seq) -> Result<Option<EntryView>> {
        if seq.0 >= self.len() {
            return Ok(None);
        }
        let Some(bytes) = self.store.entry(seq)? else { return Ok(None) };
        let tampered = |e: ledger_core::Error| Error::tampered_entry(seq, e);
        let entry = Entry::decode(&bytes).map_err(tampered)?;
        let record = entry.decode_record().map_err(tampered)?;
        let hash = ledger_core::entry::entry_hash(&bytes);
        Ok(Some(EntryView { seq, hash, bytes, entry, record }))
    }

    /// `seqs` without those of entries not yet published. A store lists the entries of a batch
    /// being written (its index keys included) before the batch's flush returns, and a power
    /// cut in between could still take them away: readers see a batch once it is durable and
    /// published ([`Ledger::commit_batch`]).
    pub(super) fn published(&self, mut seqs: Vec<Seq>) -> Vec<Seq> {
        let n = self.len();
        seqs.retain(|s| s.0 < n);
        seqs
    }

    /// The published entries of `kind` (see [`Ledger::published`]).
    pub(super) fn kind_seqs(&self, kind: Kind) -> Result<Vec<Seq>> {
        Ok(self.published(self.store.kind_seqs(kind)?))
    }

    pub(super) fn must_get(&self, seq: Seq) -> Result<EntryView> {
        self.get(seq)?.ok_or_else(|| Error::tampered(seq, "indexed entry is missing"))
    }

    /// Finds an entry by `#<seq>`, `entry:<hex>` or bare hex: a full hash or a unique prefix of
    /// at least 12 hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `input` is no entry reference; [`Error::NotFound`];
    /// [`Error::Ambiguous`] for a prefix several entries share.
    pub fn find_entry(&self, input: &str) -> Result<EntryView> {
        if let Some(n) = input.strip_prefix('#') {
            let seq = n.parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!("`{input}` is not an entry: `#` must be followed by a sequence number"))
            })?;
            return self.get(Seq(seq))?.ok_or_else(|| Error::NotFound(format!("entry #{seq}")));
        }
        let hexpart = input.strip_prefix("entry:").unwrap_or(input);
        if hexpart.len() < 12 || hexpart.len() > 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "`{input}` is not an entry: give #<seq>, or an entry hash or a unique prefix of at least 12 hex characters"
            )));
        }
        let lower = hexpart.to_ascii_lowercase();
        // Compare whole bytes in the index, then the odd nibble if any.
        let bytes = hex::decode(&lower[..lower.len() / 2 * 2]).unwrap_or_default();
        let published = self.len();
        let hits: Vec<(EntryHash, Seq)> = self
            .store
            .seqs_by_hash_prefix(&bytes, 1000)?
            .into_iter()
            .filter(|(h, s)| h.to_hex().starts_with(&lower) && s.0 < published)
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

    /// The published entries indexed under `subject` (see [`Ledger::published`]).
    pub(super) fn seqs_for(&self, subject: &Subject) -> Result<Vec<Seq>> {
        Ok(self.published(self.indexed_seqs_for(subject)?))
    }

    fn indexed_seqs_for(&self, subject: &Subject) -> Result<Vec<Seq>> {
        match subject {
            Subject::Entry(h) => Ok(self.store.seq_by_hash(h)?.into_iter().collect()),
            // Commits are indexed under their bare form only (one index key instead of two
            // per commit; see `stored`); a repository-qualified lookup filters the bare hits.
            Subject::Commit { repo: Some(_), .. } => {
                let bare = subject.bare_commit().map(|b| b.to_string()).unwrap_or_default();
                let mut out = vec![];
                for seq in self.published(self.store.subject_seqs(&bare)?) {
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
            narrow(self.kind_seqs(k)?);
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
    /// and every record linked to them (each with its signer's name), and analyses them
    /// ([`why::analyze`]; `trust` says which builders' attestations count). The report shows
    /// the subjects walked, even when the walk ends without a change.
    ///
    /// # Errors
    /// [`Error::Tampered`] if a gathered entry does not decode; [`Error::Storage`].
    pub fn why(&self, subject: &Subject, trust: &Trust) -> Result<WhyReport> {
        let (gathered, walked) = self.gather(subject)?;
        let mut report = why::analyze(subject, &gathered, self.clock.now(), trust);
        report.walked = walked;
        Ok(report)
    }

    /// `why` for what a user typed ([`Ledger::resolve`]). A commit abbreviation that no
    /// recorded commit starts with is answered like any subject nothing covers: a report with
    /// the `no_change` finding, not an error.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] or a parse error for input that names no subject;
    /// [`Error::Ambiguous`] for an abbreviation several commits share; as [`Ledger::why`].
    pub fn why_input(&self, input: &str, trust: &Trust) -> Result<WhyReport> {
        match self.resolve(input) {
            Ok(subject) => self.why(&subject, trust),
            Err(Error::NotFound(_)) if is_commit_abbreviation(input) => {
                let abbrev = input.trim().trim_start_matches("git:").to_ascii_lowercase();
                let mut report = why::analyze_nothing(&format!("git:{abbrev}"));
                report.walked = vec![WalkStep { subject: format!("git:{abbrev}"), entries: vec![] }];
                Ok(report)
            }
            Err(e) => Err(e),
        }
    }

    /// Every record `why` considers for `subject`: the records mentioning it, the change(s) it
    /// belongs to and their records, the head and merge commits, deployments, incidents, and
    /// `model` records. Used by `why` and by exports of a subject.
    ///
    /// # Errors
    /// [`Error::Tampered`] if a gathered entry does not decode; [`Error::Storage`].
    pub fn related(&self, subject: &Subject) -> Result<Vec<Gathered>> {
        Ok(self.gather(subject)?.0)
    }

    /// [`Ledger::related`], with the subjects walked from `subject` in the order they were
    /// reached, each with the entries that mention it.
    fn gather(&self, subject: &Subject) -> Result<(Vec<Gathered>, Vec<WalkStep>)> {
        self.gather_at(subject, u64::MAX)
    }

    /// [`Ledger::gather`] as the ledger was at `tree_size`: entries at or beyond it are not
    /// read, nor followed ([`why::gather`] over the store's indexes).
    pub(super) fn gather_at(&self, subject: &Subject, tree_size: u64) -> Result<(Vec<Gathered>, Vec<WalkStep>)> {
        let source =
            StoreSource { ledger: self, names: self.keys().into_iter().map(|k| (k.id, k.name.to_string())).collect() };
        let (gathered, walked) = why::gather(&source, subject, tree_size)?;
        Ok((gathered.into_iter().map(Cow::into_owned).collect(), walked))
    }
}

/// The store's indexes as what `why` walks.
struct StoreSource<'l, S: Store> {
    ledger: &'l Ledger<S>,
    names: BTreeMap<KeyId, String>,
}

impl<S: Store> why::RecordSource for StoreSource<'_, S> {
    type Error = Error;

    fn seqs_for(&self, subject: &Subject) -> Result<Vec<Seq>> {
        self.ledger.seqs_for(subject)
    }

    fn record(&self, seq: Seq) -> Result<Cow<'_, Gathered>> {
        let mut g = self.ledger.must_get(seq)?.gathered();
        g.signer_name = self.names.get(&g.signer).cloned();
        Ok(Cow::Owned(g))
    }

    fn model_seqs(&self) -> Result<Vec<Seq>> {
        self.ledger.kind_seqs(Kind::Model)
    }
}

/// Whether `input` is a commit abbreviation (7 to 39 hex characters, `git:` optional).
fn is_commit_abbreviation(input: &str) -> bool {
    let hex = input.trim().trim_start_matches("git:");
    (7..40).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
