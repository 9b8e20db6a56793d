//! The chain state machine: sequencing verified records into entries, and replaying stored
//! entries to verify a ledger from its first entry.

use crate::entry::{entry_hash, Entry, SignedRecord, VerifiedRecord};
use crate::error::{Error, Result};
use crate::keys::KeyRegister;
use crate::record::Record;
use crate::types::{EntryHash, RecordId, Seq, Timestamp};

/// The answer to an append: where the record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Record id.
    pub record_id: RecordId,
    /// True when the record was already in the ledger and nothing was written.
    pub duplicate: bool,
}

/// A verified record whose signer may append it as entry `seq` at integration time `at`:
/// what [`KeyRegister::authorize`] hands out and [`ChainState::sequence`] takes. Its fields are
/// private, so nothing else can make one:
///
/// ```compile_fail
/// # use ledger_core::chain::Authorized;
/// # fn f(v: ledger_core::entry::VerifiedRecord) {
/// let forged = Authorized { record: v, seq: ledger_core::types::Seq(1), at: ledger_core::types::Timestamp(0) };
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Authorized {
    record: VerifiedRecord,
    seq: Seq,
    at: Timestamp,
}

impl Authorized {
    /// Only the key register authorizes (see [`KeyRegister::authorize`]).
    pub(crate) fn new(record: VerifiedRecord, seq: Seq, at: Timestamp) -> Self {
        Authorized { record, seq, at }
    }

    /// The record.
    pub fn record(&self) -> &VerifiedRecord {
        &self.record
    }

    /// The seq it may be sequenced at.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Its integration time.
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// An entry with everything derived from it: its bytes, hash and decoded record.
#[derive(Clone, Debug)]
pub struct SequencedEntry {
    /// The entry.
    pub entry: Entry,
    /// Its exact canonical bytes (what is stored, hashed and proven).
    pub bytes: Vec<u8>,
    /// Its entry hash.
    pub hash: EntryHash,
    /// The decoded record it carries.
    pub record: Record,
    /// The record id.
    pub record_id: RecordId,
}

impl SequencedEntry {
    /// The entry's sequence number.
    pub fn seq(&self) -> Seq {
        self.entry.seq
    }
}

/// The state a sequencer or verifier carries from one entry to the next.
#[derive(Clone, Debug)]
pub struct ChainState {
    next: Seq,
    head: EntryHash,
    last_time: Timestamp,
    keys: KeyRegister,
}

impl Default for ChainState {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainState {
    /// The state of an empty ledger.
    pub fn new() -> Self {
        ChainState { next: Seq(0), head: EntryHash::ZERO, last_time: Timestamp(i64::MIN), keys: KeyRegister::new() }
    }

    /// Resumes at a known head (the state of an opened store): `next` entries so far, the last
    /// entry's hash and integration time, and the key register rebuilt from the key entries.
    pub fn resume(next: Seq, head: EntryHash, last_time: Timestamp, keys: KeyRegister) -> Self {
        ChainState { next, head, last_time, keys }
    }

    /// The sequence number the next entry gets (= the number of entries so far).
    pub fn next_seq(&self) -> Seq {
        self.next
    }

    /// The entry hash of the last entry ([`EntryHash::ZERO`] when empty).
    pub fn head(&self) -> EntryHash {
        self.head
    }

    /// The key register as of the head.
    pub fn keys(&self) -> &KeyRegister {
        &self.keys
    }

    /// Integration time for an append at clock time `now`: never earlier than the last
    /// entry's, so integration times are non-decreasing along the chain.
    pub fn integration_time(&self, now: Timestamp) -> Timestamp {
        now.max(self.last_time)
    }

    /// Verifies and authorizes `signed` as the next entry at clock time `now`: the signature
    /// ([`ChainState::verify_signature`]) then the signer's rights ([`ChainState::authorize`]).
    ///
    /// # Errors
    /// As [`KeyRegister::verify`].
    pub fn verify(&self, signed: &SignedRecord, now: Timestamp) -> Result<Authorized> {
        self.authorize(self.verify_signature(signed)?, now)
    }

    /// The expensive half of [`ChainState::verify`] (signature), see
    /// [`KeyRegister::verify_signature`].
    ///
    /// # Errors
    /// As [`KeyRegister::verify_signature`].
    pub fn verify_signature(&self, signed: &SignedRecord) -> Result<VerifiedRecord> {
        self.keys.verify_signature(signed, self.next)
    }

    /// The cheap half of [`ChainState::verify`]: authorizes `record` as the next entry, at
    /// the integration time for clock time `now` ([`ChainState::integration_time`]). The
    /// [`Authorized`] it returns is the only thing [`ChainState::sequence`] takes.
    ///
    /// # Errors
    /// As [`KeyRegister::authorize`].
    pub fn authorize(&self, record: VerifiedRecord, now: Timestamp) -> Result<Authorized> {
        self.keys.authorize(record, self.next, self.integration_time(now))
    }

    /// Sequences an authorized record as the next entry and advances the state. Only
    /// [`KeyRegister::authorize`] makes an [`Authorized`], so a record whose signer may not
    /// append it cannot be sequenced; and an authorization holds for one position only.
    ///
    /// # Errors
    /// [`Error::StaleAuthorization`] if `record` was authorized for another seq (or an earlier
    /// time than the last entry's); [`Error::TooLarge`] if the entry exceeds 64 KiB.
    pub fn sequence(&mut self, record: &Authorized) -> Result<SequencedEntry> {
        if record.seq != self.next || record.at < self.last_time {
            return Err(Error::StaleAuthorization { authorized: record.seq, next: self.next });
        }
        let (at, verified) = (record.at, &record.record);
        let entry = Entry::new(self.next, at, self.head, verified);
        let bytes = entry.encode()?;
        let hash = entry_hash(&bytes);
        self.keys.apply(verified, self.next, at);
        self.advance(hash, at);
        Ok(SequencedEntry { entry, bytes, hash, record: verified.record().clone(), record_id: verified.id() })
    }

    fn advance(&mut self, hash: EntryHash, at: Timestamp) {
        self.head = hash;
        self.last_time = at;
        self.next = Seq(self.next.0 + 1);
    }

    /// Verifies stored entry bytes as the next entry: canonical encoding, sequence number,
    /// previous hash, non-decreasing time, signer authorization and signature; then advances.
    ///
    /// # Errors
    /// [`Error::ChainBroken`] naming the seq and what is wrong.
    pub fn replay(&mut self, bytes: &[u8]) -> Result<SequencedEntry> {
        let seq = self.next;
        let broken = |reason: String| Error::ChainBroken { seq, reason };
        let entry = Entry::decode(bytes).map_err(|e| broken(e.to_string()))?;
        self.check_link(&entry)?;
        let verified = self.keys.verify(&entry.signed_record(), seq, entry.time).map_err(|e| broken(e.to_string()))?;
        let hash = entry_hash(bytes);
        self.keys.apply(&verified, seq, entry.time);
        self.advance(hash, entry.time);
        Ok(SequencedEntry {
            record: verified.record().clone(),
            record_id: verified.id(),
            entry,
            bytes: bytes.to_vec(),
            hash,
        })
    }

    /// Follows an entry another handle wrote (a standby catching up with the writer): checks
    /// the link as [`ChainState::replay`] does (encoding, sequence number, previous hash,
    /// non-decreasing time) and verifies and applies `key` records, which the key register
    /// depends on, but trusts the signatures of the other records, as opening a store does:
    /// a full `verify` checks those. Returns the entry hash.
    ///
    /// # Errors
    /// [`Error::ChainBroken`] naming the seq and what is wrong.
    pub fn follow(&mut self, bytes: &[u8]) -> Result<EntryHash> {
        let seq = self.next;
        let broken = |reason: String| Error::ChainBroken { seq, reason };
        let entry = Entry::decode(bytes).map_err(|e| broken(e.to_string()))?;
        self.check_link(&entry)?;
        let record = entry.decode_record().map_err(|e| broken(e.to_string()))?;
        if record.kind() == crate::record::Kind::Key {
            let verified =
                self.keys.verify(&entry.signed_record(), seq, entry.time).map_err(|e| broken(e.to_string()))?;
            self.keys.apply(&verified, seq, entry.time);
        }
        let hash = entry_hash(bytes);
        self.advance(hash, entry.time);
        Ok(hash)
    }

    /// [`ChainState::replay`] for an entry whose decoding and signature were already checked
    /// by [`PreChecked::check`] (which can run ahead, on other threads): checks the sequence
    /// number, previous hash, time and signer authorization, then advances. Returns the entry
    /// hash. Accepts exactly what `replay` accepts.
    ///
    /// # Errors
    /// [`Error::ChainBroken`] naming the seq and what is wrong.
    pub fn replay_prechecked(&mut self, pre: &PreChecked) -> Result<EntryHash> {
        let seq = self.next;
        let broken = |reason: String| Error::ChainBroken { seq, reason };
        self.check_link(&pre.entry)?;
        // check_link made the entry's own seq (the one its signature was checked under, which
        // decides the genesis rules) equal to its position.
        self.keys.check_rights(&pre.verified, seq, pre.entry.time).map_err(|e| broken(e.to_string()))?;
        self.keys.apply(&pre.verified, seq, pre.entry.time);
        self.advance(pre.hash, pre.entry.time);
        Ok(pre.hash)
    }

    /// The checks of an entry against the one before it (everything but the record itself).
    fn check_link(&self, entry: &Entry) -> Result<()> {
        let seq = self.next;
        let broken = |reason: String| Error::ChainBroken { seq, reason };
        if entry.seq != seq {
            return Err(broken(format!("entry says seq {}", entry.seq)));
        }
        if entry.v != crate::domain::FORMAT_VERSION {
            return Err(broken(format!("unsupported entry version {}", entry.v)));
        }
        if entry.prev != self.head {
            return Err(broken(format!(
                "previous hash {} does not match the entry before ({})",
                entry.prev, self.head
            )));
        }
        if entry.time < self.last_time {
            return Err(broken("integration time goes backwards".into()));
        }
        Ok(())
    }
}

/// Stored entry bytes whose decoding and signature are checked, position-independently: the
/// expensive half of [`ChainState::replay`], which a verifier runs ahead on several threads.
/// A key id is the hash of one public key, so any register that knows the signer (such as
/// the final one) checks the signature exactly as the register at the entry's position would;
/// what depends on the position (registered yet? revoked? allowed this kind?) is left to
/// [`ChainState::replay_prechecked`].
#[derive(Clone, Debug)]
pub struct PreChecked {
    entry: Entry,
    verified: VerifiedRecord,
    hash: EntryHash,
}

impl PreChecked {
    /// Decodes `bytes` and checks the record's encoding, content rules and signature with the
    /// signer's key from `keys` (the genesis rules for an entry that says seq 0).
    ///
    /// # Errors
    /// Any decoding, record or signature error ([`ChainState::replay`] on the same bytes gives
    /// the error with the seq it is found at).
    pub fn check(keys: &KeyRegister, bytes: &[u8]) -> Result<Self> {
        let entry = Entry::decode(bytes)?;
        let verified = keys.verify_signature(&entry.signed_record(), entry.seq)?;
        Ok(PreChecked { hash: entry_hash(bytes), entry, verified })
    }

    /// [`PreChecked::check`] for many entries, with their signatures checked in one batch
    /// (see [`crate::entry::verify_batch`] for what batch verification accepts). The genesis
    /// entry and any entry whose signer `keys` does not know are checked one by one. Results
    /// are in input order, each what `check` gives for those bytes when the batch holds.
    pub fn check_many(keys: &KeyRegister, entries: &[Vec<u8>]) -> Vec<Result<Self>> {
        let decoded: Vec<Result<(Entry, EntryHash)>> =
            entries.iter().map(|bytes| Entry::decode(bytes).map(|e| (e, entry_hash(bytes)))).collect();
        Self::check_decoded(keys, decoded)
    }

    /// [`PreChecked::check_many`] for entries already decoded, each with the hash of its
    /// bytes (or the error decoding them gave).
    pub fn check_decoded(keys: &KeyRegister, entries: Vec<Result<(Entry, EntryHash)>>) -> Vec<Result<Self>> {
        // The key each entry's signature goes into the batch with: a known signer's, for any
        // entry but the genesis one (whose signer registers itself).
        let batched: Vec<Option<&ed25519_dalek::VerifyingKey>> = entries
            .iter()
            .map(|decoded| match decoded {
                Ok((entry, _)) if entry.seq != Seq(0) => keys.get(&entry.signer).map(|info| &info.public),
                _ => None,
            })
            .collect();
        let parts: Vec<crate::entry::SignedParts<'_>> = entries
            .iter()
            .zip(&batched)
            .filter_map(|(decoded, key)| {
                let (entry, _) = decoded.as_ref().ok()?;
                Some((&entry.record.0[..], entry.signer, &entry.sig.0, (*key)?))
            })
            .collect();
        let holds = crate::entry::batch_holds(&parts);
        // Each result is built once, in place: a `PreChecked` is large (792 bytes), and
        // moving every one through buffers showed in `verify`'s profile.
        entries
            .into_iter()
            .zip(batched)
            .map(|(decoded, key)| {
                let (entry, hash) = decoded?;
                let signed = entry.signed_record();
                let verified = match key {
                    Some(_) if holds => signed.into_checked(),
                    _ => keys.verify_signature(&signed, entry.seq),
                }?;
                Ok(PreChecked { hash, entry, verified })
            })
            .collect()
    }

    /// The decoded entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The entry hash of the checked bytes.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The record, signature-checked and decoded.
    pub fn verified(&self) -> &VerifiedRecord {
        &self.verified
    }
}
