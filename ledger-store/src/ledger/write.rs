//! The append path, one for local appends and the sequencer: verify the signature (in request
//! handlers, concurrently) → [`Ledger::prepare_batch`]: deduplicate → authorize → sequence →
//! integrate (frontier, tiles) → [`Ledger::commit_batch`]: write one atomic, durable batch →
//! publish. The sequencer prepares batch N+1 while batch N is written; local appends
//! ([`Ledger::sequence_batch`]) do both halves in turn.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use ledger_core::chain::{ChainState, SequencedEntry};
use ledger_core::entry::{SignedRecord, VerifiedRecord};
use ledger_core::keys::KeyRegister;
use ledger_core::merkle::{self, Hash};
use ledger_core::record::Kind;
use ledger_core::tiles::Tile;
use ledger_core::types::{RecordId, Seq, Timestamp};

use super::{Ledger, Receipt, TreeState};
use crate::error::{Error, Result};
use crate::store::{indexed_subjects, Store, StoredEntry};

impl<S: Store> Ledger<S> {
    /// Appends signed records, in order, as one atomic, durable batch (the local append path:
    /// signatures checked here, then [`Ledger::sequence_batch`], all or nothing). A record
    /// already in the ledger (same record bytes) is not written again: its original receipt
    /// is returned with `duplicate: true`. Signatures are checked against the key register as
    /// of the batch's start, as through `ledgerd`: a key registered in the batch signs
    /// nothing in the same batch.
    ///
    /// # Errors
    /// [`Error::Rejected`] if any record is refused (nothing is written);
    /// [`Error::Storage`] if the write fails (and the ledger stops accepting writes);
    /// [`Error::Unavailable`] after an earlier write failure.
    pub fn append(&self, records: &[SignedRecord]) -> Result<Vec<Receipt>> {
        let verified = records.iter().map(|s| self.verify_signature(s)).collect::<Result<Vec<_>>>()?;
        self.sequence_batch(verified, Atomicity::AllOrNothing).into_iter().collect()
    }

    /// Checks a record's signature against the signer's registered key (revoked keys
    /// included; the genesis rules when the ledger is empty), without taking the writer's turn:
    /// the expensive half of an append, run concurrently by request handlers.
    /// [`Ledger::sequence_batch`] then checks the signer's rights at sequencing time.
    ///
    /// # Errors
    /// [`Error::Rejected`] with `UnknownKey`, `BadSignature`, `KeyRecord` (genesis) or a record
    /// error; [`Error::NotWriter`] on a standby of a shared store.
    pub fn verify_signature(&self, signed: &SignedRecord) -> Result<VerifiedRecord> {
        // A standby refuses before spending a signature check on a record it cannot append.
        self.check_writer()?;
        // The key is copied out so that the check (tens of µs) runs without the state lock.
        let (public, next) = {
            let s = self.lock();
            (s.keys().get(&signed.signer).map(|k| k.public), s.next_seq())
        };
        if next == Seq(0) {
            return Ok(KeyRegister::new().verify_signature(signed, next)?);
        }
        let public = public.ok_or(ledger_core::Error::UnknownKey { key: signed.signer })?;
        Ok(signed.verify_with(&public)?)
    }

    /// Whether this handle may append: [`Error::NotWriter`], naming the writer, on a standby of
    /// a shared store (another handle holds the writer lease).
    ///
    /// # Errors
    /// [`Error::NotWriter`].
    pub fn check_writer(&self) -> Result<()> {
        match self.store.role() {
            crate::store::Role::Writer => Ok(()),
            crate::store::Role::Standby { writer } => Err(Error::not_writer(writer)),
        }
    }

    /// [`Ledger::sequence_batch`] with each record on its own: one group commit, unpipelined.
    pub fn append_verified(&self, records: Vec<VerifiedRecord>) -> Vec<Result<Receipt>> {
        self.sequence_batch(records, Atomicity::EachOnItsOwn)
    }

    /// The one append path, for local appends: deduplicate, authorize and sequence each
    /// record ([`Ledger::prepare_batch`]), then write the accepted entries in one atomic batch,
    /// made durable once, and publish the new state ([`Ledger::commit_batch`]), all under the
    /// writer's turn and after any batch the sequencer has in flight. One result per record,
    /// in order. With [`Atomicity::AllOrNothing`] the first refused record ends the batch with
    /// nothing written (its error is the last result); with [`Atomicity::EachOnItsOwn`] a
    /// refused record does not affect the others. If the write fails, every record the batch
    /// would have written gets the error and the ledger stops accepting writes
    /// ([`Error::Unavailable`] until restart).
    pub fn sequence_batch(&self, records: Vec<VerifiedRecord>, atomicity: Atomicity) -> Vec<Result<Receipt>> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.drain_pipeline();
        let prepared = self.prepare_locked(records, atomicity);
        self.commit_batch(prepared)
    }

    /// The first half of the sequencer's group commit: under the writer's turn, each record in
    /// order is deduplicated (against the ledger, the batches in flight and the batch),
    /// authorized ([`ChainState::authorize`]) and sequenced ([`ChainState::sequence`], which
    /// takes only an authorized record) onto the state after the last batch prepared, and the
    /// tree and tiles are extended. Nothing is written or published: hand the result to
    /// [`Ledger::commit_batch`], in the order prepared. So that batch N+1 is prepared while
    /// batch N is written and flushed; readers see neither until each is durable.
    pub fn prepare_batch(&self, records: Vec<VerifiedRecord>, atomicity: Atomicity) -> Prepared {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.prepare_locked(records, atomicity)
    }

    /// Waits until no prepared batch is waiting for its commit (callers hold the writer's
    /// turn, so none is added meanwhile).
    pub(super) fn drain_pipeline(&self) {
        let mut p = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        while p.in_flight > 0 {
            p = self.drained.wait(p).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// [`Ledger::prepare_batch`] for a caller holding the writer's turn.
    fn prepare_locked(&self, records: Vec<VerifiedRecord>, atomicity: Atomicity) -> Prepared {
        // A policy's version is checked against the stored policies: those in flight first land.
        // An all-or-nothing batch may refuse after sequencing some records onto the state: it
        // starts from the published one, with nothing in flight to extend.
        if atomicity == Atomicity::AllOrNothing || records.iter().any(|r| r.record().kind() == Kind::Policy) {
            self.drain_pipeline();
        }
        let ids: Vec<RecordId> = records.iter().map(VerifiedRecord::id).collect();
        // Counted in flight from here: every path ends in a `Prepared` that `commit_batch` uncounts.
        let (generation, in_flight) = {
            let mut p = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
            p.in_flight += 1;
            // Looked up before the store is: a batch committed in between is then in the store.
            let in_flight: HashMap<RecordId, Receipt> = ids
                .iter()
                .filter_map(|id| p.records.get(id).map(|r| (*id, Receipt { duplicate: true, ..*r })))
                .collect();
            (p.generation, in_flight)
        };
        let refused = |e: &dyn Fn() -> Error| Prepared {
            results: ids.iter().map(|_| Err(e())).collect(),
            write: None,
            generation,
        };
        if self.poisoned.load(Ordering::SeqCst) {
            return refused(&|| Error::Unavailable);
        }
        if let Err(Error::NotWriter { writer }) = self.check_writer() {
            return refused(&|| Error::NotWriter { writer: writer.clone() });
        }
        // The records the ledger already holds, looked up together (one round trip on a
        // database, where one per record would hold the writer's turn for each).
        let unknown: Vec<RecordId> = ids.iter().filter(|id| !in_flight.contains_key(id)).copied().collect();
        let mut known: HashMap<RecordId, Known> = match self.store.seqs_by_records(&unknown) {
            Ok(seqs) => unknown.iter().zip(seqs).filter_map(|(id, s)| Some((*id, Known::Stored(s?)))).collect(),
            Err(e) => return refused(&|| Error::Storage(e.to_string())),
        };
        known.extend(in_flight.into_iter().map(|(id, r)| (id, Known::InFlight(r))));
        // The state to extend: after the last batch prepared while one is in flight, else the
        // published one. Taken with its generation, so that a failure meanwhile is seen.
        let (generation, base) = {
            let mut p = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
            (p.generation, p.next.take())
        };
        let (mut work, tree) = match base {
            Some(b) => *b,
            None => (self.lock().clone(), self.tree.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        };
        let base = (work.next_seq(), work.head());
        let now = self.clock.now();
        let mut results: Vec<Result<Receipt>> = Vec::with_capacity(records.len());
        let mut batch: Vec<StoredEntry> = Vec::new();
        let mut in_batch: HashMap<RecordId, usize> = HashMap::new();
        for record in records {
            let result = self.sequence_one(&mut work, record, now, &mut batch, &mut in_batch, &known);
            let refused = result.is_err();
            results.push(result);
            if refused && atomicity == Atomicity::AllOrNothing {
                return Prepared { results, write: None, generation };
            }
        }
        if batch.is_empty() {
            // Nothing sequenced: the state is as taken, and the next batch extends it.
            let mut p = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
            if p.generation == generation && p.in_flight > 1 {
                p.next = Some(Box::new((work, tree)));
            }
            return Prepared { results, write: None, generation };
        }
        let (tree, changed) = extended_tree(tree, &batch);
        let key_entries = batch.iter().any(|e| e.kind == Kind::Key).then(|| work.keys().entry_seqs());
        let added: Vec<Receipt> =
            results.iter().filter_map(|r| r.as_ref().ok().filter(|r| !r.duplicate).copied()).collect();
        let mut p = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        if p.generation == generation {
            p.next = Some(Box::new((work.clone(), tree.clone())));
            p.records.extend(added.iter().map(|r| (r.record_id, *r)));
        }
        Prepared { results, write: Some(Pending { batch, work, tree, changed, key_entries, base, added }), generation }
    }

    /// The second half of the group commit: writes a prepared batch in one atomic batch, made
    /// durable once, publishes the new state and returns one result per record, in order. A
    /// batch that extends one that failed is not written and gets that failure. If the write
    /// fails, every record the batch would have written gets the error and the ledger stops
    /// accepting writes ([`Error::Unavailable`] until restart), except for a standby's refusal
    /// ([`Error::NotWriter`]), which wrote nothing.
    pub fn commit_batch(&self, prepared: Prepared) -> Vec<Result<Receipt>> {
        let Prepared { mut results, write, generation } = prepared;
        let mut added: Vec<Receipt> = Vec::new();
        let outcome = match write {
            None => Ok(()),
            Some(w) => {
                added = w.added;
                let extends_published = {
                    let s = self.lock();
                    (s.next_seq(), s.head()) == w.base
                };
                if !extends_published {
                    Err(self
                        .pipeline
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .failure
                        .as_ref()
                        .map_or(Error::Unavailable, copy_failure))
                } else if self.poisoned.load(Ordering::SeqCst) {
                    Err(Error::Unavailable)
                } else {
                    match self.store.append(&w.batch, &w.tree.frontier, &w.changed, w.key_entries.as_deref()) {
                        Ok(()) => {
                            self.publish(w.work, w.tree);
                            Ok(())
                        }
                        Err(e) => {
                            // A standby's refusal wrote nothing: no reason to stop; anything else may have.
                            if !matches!(e, Error::NotWriter { .. }) {
                                self.poisoned.store(true, Ordering::SeqCst);
                                tracing::error!(error = %e, "write failed; refusing further appends until restart");
                            }
                            Err(e)
                        }
                    }
                }
            }
        };
        let published = self.len();
        let mut p = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = &outcome {
            if p.generation == generation {
                p.generation += 1;
                p.next = None;
            }
            p.failure = Some(copy_failure(e));
        }
        for r in &mut results {
            // A new record of a batch that failed, or a duplicate of one in a batch that did
            // not land (an earlier one that failed, or this one).
            let lost = match r {
                Ok(rec) => (!rec.duplicate && outcome.is_err()) || (rec.duplicate && rec.seq.0 >= published),
                Err(_) => false,
            };
            if lost {
                *r = Err(match &outcome {
                    Err(e) => copy_failure(e),
                    Ok(()) => p.failure.as_ref().map_or(Error::Unavailable, copy_failure),
                });
            }
        }
        for r in &added {
            p.records.remove(&r.record_id);
        }
        p.in_flight -= 1;
        if p.in_flight == 0 {
            p.next = None;
            self.drained.notify_all();
        }
        results
    }

    /// Deduplicates, authorizes and sequences one record onto `work` and `batch`.
    fn sequence_one(
        &self,
        work: &mut ChainState,
        record: VerifiedRecord,
        now: Timestamp,
        batch: &mut Vec<StoredEntry>,
        in_batch: &mut HashMap<RecordId, usize>,
        known: &HashMap<RecordId, Known>,
    ) -> Result<Receipt> {
        let id = record.id();
        match known.get(&id) {
            Some(Known::InFlight(r)) => return Ok(*r),
            Some(Known::Stored(seq)) => return self.existing(id, *seq),
            None => {}
        }
        if let Some(prev) = in_batch.get(&id).map(|&i| &batch[i]) {
            return Ok(Receipt { seq: prev.seq, hash: prev.hash, record_id: id, duplicate: true });
        }
        self.check_policy_version(record.record(), batch)?;
        let authorized = work.authorize(record, now)?;
        let entry = work.sequence(&authorized)?;
        in_batch.insert(id, batch.len());
        batch.push(stored(&entry));
        Ok(Receipt { seq: entry.seq(), hash: entry.hash, record_id: id, duplicate: false })
    }

    /// A `policy` record must raise the version of its policy: above every version of the same
    /// name already in the ledger or earlier in `batch` (so that "the policy in force" is never
    /// replaced by an older text).
    fn check_policy_version(&self, record: &ledger_core::record::Record, batch: &[StoredEntry]) -> Result<()> {
        let ledger_core::record::Body::Policy(new) = &record.body else { return Ok(()) };
        let mut highest: Option<u64> = None;
        let stored = self.store.kind_seqs(Kind::Policy)?;
        let older = stored.into_iter().map(|seq| self.must_get(seq).map(|v| v.record));
        let in_batch = batch.iter().filter(|e| e.kind == Kind::Policy).map(|e| {
            ledger_core::entry::Entry::decode(&e.bytes)
                .and_then(|x| x.decode_record())
                .map_err(|err| Error::tampered_entry(e.seq, err))
        });
        for r in older.chain(in_batch) {
            if let ledger_core::record::Body::Policy(p) = r?.body {
                if p.name == new.name {
                    highest = highest.max(Some(p.version));
                }
            }
        }
        match highest {
            Some(h) if new.version <= h => Err(Error::Rejected(ledger_core::Error::InvalidField {
                field: "body.policy.version".into(),
                reason: format!(
                    "policy `{}` version {} is not above the published version {h}: a published policy's version must increase",
                    new.name, new.version
                ),
            })),
            _ => Ok(()),
        }
    }

    /// Makes a written batch visible: the chain state and the tree change together, under the
    /// `state` lock (readers take `state` before `tree`). Called by the writer only.
    pub(super) fn publish(&self, work: ChainState, tree: TreeState) {
        let mut state = self.lock();
        *state = work;
        *self.tree.lock().unwrap_or_else(|p| p.into_inner()) = tree;
    }

    /// The receipt of record `id`, already in the ledger at `seq`.
    fn existing(&self, id: RecordId, seq: Seq) -> Result<Receipt> {
        let bytes = self.store.entry(seq)?.ok_or_else(|| Error::tampered(seq, "indexed entry is missing"))?;
        Ok(Receipt { seq, hash: ledger_core::entry::entry_hash(&bytes), record_id: id, duplicate: true })
    }
}

/// Whether one refused record of a batch stops the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Atomicity {
    /// The first refused record ends the batch; nothing is written (`ledger append`, ingest).
    AllOrNothing,
    /// Each record is accepted or refused on its own (the sequencer: records from many
    /// requests share one group commit).
    EachOnItsOwn,
}

/// An entry with its index keys, as the store writes it.
fn stored(e: &SequencedEntry) -> StoredEntry {
    StoredEntry {
        seq: e.seq(),
        hash: e.hash,
        prev: e.entry.prev,
        bytes: e.bytes.clone(),
        record_id: e.record_id,
        kind: e.record.kind(),
        subjects: indexed_subjects(&e.record),
    }
}

/// `tree` after appending `batch`, and the tiles it filled. Partial tiles are not written:
/// rewriting them on every group commit cost more than the entries themselves for small
/// batches; they live in memory and are rebuilt on open.
fn extended_tree(mut t: TreeState, batch: &[StoredEntry]) -> (TreeState, Vec<Tile>) {
    let leaves: Vec<Hash> = batch.iter().map(|e| merkle::leaf_hash(&e.bytes)).collect();
    for l in &leaves {
        t.frontier.push(*l);
    }
    let full = t.tiles.extend_full(&leaves);
    (t, full)
}

/// Where a record of a batch already is.
enum Known {
    /// In the ledger, at this seq.
    Stored(Seq),
    /// In a batch in flight: its receipt, `duplicate` set.
    InFlight(Receipt),
}

/// The same failure, for each record it refuses.
fn copy_failure(e: &Error) -> Error {
    match e {
        Error::NotWriter { writer } => Error::NotWriter { writer: writer.clone() },
        Error::Unavailable => Error::Unavailable,
        other => Error::Storage(other.to_string()),
    }
}

/// A batch sequenced by [`Ledger::prepare_batch`], not yet written: hand it to
/// [`Ledger::commit_batch`], in the order prepared.
#[must_use = "a prepared batch holds its records' results and must be committed"]
pub struct Prepared {
    /// One per record, in order; the new ones hold once the batch is durable.
    results: Vec<Result<Receipt>>,
    /// What to write and publish; `None` when nothing is.
    write: Option<Pending>,
    /// The pipeline's generation when it was prepared.
    generation: u64,
}

/// The entries of a prepared batch and the state after them.
struct Pending {
    batch: Vec<StoredEntry>,
    work: ChainState,
    tree: TreeState,
    changed: Vec<Tile>,
    key_entries: Option<Vec<Seq>>,
    /// The head it extends: (number of entries, last entry hash).
    base: (Seq, ledger_core::types::EntryHash),
    /// Receipts of the records it appends.
    added: Vec<Receipt>,
}
