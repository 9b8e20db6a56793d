//! The append path, one for local appends and the sequencer: verify the signature (in request
//! handlers, concurrently) → [`Ledger::sequence_batch`]: deduplicate → authorize → sequence →
//! integrate (frontier, tiles) → write one atomic, durable batch → publish.

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

    /// [`Ledger::sequence_batch`] with each record on its own: the sequencer's group commit.
    pub fn append_verified(&self, records: Vec<VerifiedRecord>) -> Vec<Result<Receipt>> {
        self.sequence_batch(records, Atomicity::EachOnItsOwn)
    }

    /// The one append path, for local appends and the sequencer alike. Takes the writer's
    /// turn; then each record in order is deduplicated (against the ledger and the batch),
    /// authorized ([`ChainState::authorize`]) and sequenced ([`ChainState::sequence`], which
    /// takes only an authorized record); the tree and tiles are extended; the accepted entries
    /// are written in one atomic batch, made durable once; and the new state is published.
    /// One result per record, in order. With [`Atomicity::AllOrNothing`] the first refused
    /// record ends the batch with nothing written (its error is the last result); with
    /// [`Atomicity::EachOnItsOwn`] a refused record does not affect the others. If the write
    /// fails, every record the batch would have written gets the error and the ledger stops
    /// accepting writes ([`Error::Unavailable`] until restart).
    pub fn sequence_batch(&self, records: Vec<VerifiedRecord>, atomicity: Atomicity) -> Vec<Result<Receipt>> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.poisoned.load(Ordering::SeqCst) {
            return records.iter().map(|_| Err(Error::Unavailable)).collect();
        }
        if let Err(Error::NotWriter { writer }) = self.check_writer() {
            return records.iter().map(|_| Err(Error::NotWriter { writer: writer.clone() })).collect();
        }
        let mut work = self.lock().clone();
        let now = self.clock.now();
        let mut results: Vec<Result<Receipt>> = Vec::with_capacity(records.len());
        let mut batch: Vec<StoredEntry> = Vec::new();
        let mut in_batch: HashMap<RecordId, usize> = HashMap::new();
        // The records the ledger already holds, looked up together (one round trip on a
        // database, where one per record would hold the writer's turn for each).
        let ids: Vec<RecordId> = records.iter().map(VerifiedRecord::id).collect();
        let known: HashMap<RecordId, Seq> = match self.store.seqs_by_records(&ids) {
            Ok(seqs) => ids.iter().zip(seqs).filter_map(|(id, s)| Some((*id, s?))).collect(),
            Err(e) => return records.iter().map(|_| Err(Error::Storage(e.to_string()))).collect(),
        };
        for record in records {
            let result = self.sequence_one(&mut work, record, now, &mut batch, &mut in_batch, &known);
            let refused = result.is_err();
            results.push(result);
            if refused && atomicity == Atomicity::AllOrNothing {
                return results;
            }
        }
        let (tree, changed) = self.extended_tree(&batch);
        let key_entries = batch.iter().any(|e| e.kind == Kind::Key).then(|| work.keys().entry_seqs());
        if let Err(e) = self.store.append(&batch, &tree.frontier, &changed, key_entries.as_deref()) {
            // A standby's refusal wrote nothing: no reason to stop; anything else may have.
            if !matches!(e, Error::NotWriter { .. }) {
                self.poisoned.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, "write failed; refusing further appends until restart");
            }
            let failed = || match &e {
                Error::NotWriter { writer } => Error::NotWriter { writer: writer.clone() },
                other => Error::Storage(other.to_string()),
            };
            return results
                .into_iter()
                .map(|r| match r {
                    Ok(rec) if !rec.duplicate => Err(failed()),
                    other => other,
                })
                .collect();
        }
        self.publish(work, tree);
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
        known: &HashMap<RecordId, Seq>,
    ) -> Result<Receipt> {
        let id = record.id();
        if let Some(seq) = known.get(&id) {
            return self.existing(id, *seq);
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

    /// The tree after appending `batch`, and the tiles it filled (callers hold the writer lock).
    /// Partial tiles are not written: rewriting them on every group commit cost more than the
    /// entries themselves for small batches; they live in memory and are rebuilt on open.
    fn extended_tree(&self, batch: &[StoredEntry]) -> (TreeState, Vec<Tile>) {
        let mut t = self.tree.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let leaves: Vec<Hash> = batch.iter().map(|e| merkle::leaf_hash(&e.bytes)).collect();
        for l in &leaves {
            t.frontier.push(*l);
        }
        let full = t.tiles.extend_full(&leaves);
        (t, full)
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
