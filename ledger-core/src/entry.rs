//! Signed records and chain entries: the exact bytes that are signed, hashed and stored.
//!
//! ```text
//! record bytes = canonical CBOR of Record
//! signature    = Ed25519(signing key, RECORD_SIGNATURE_PREFIX ‖ record bytes)   (checked with verify_strict)
//! entry bytes  = canonical CBOR of Entry { v, seq, time, prev, record: bytes, signer, sig }
//! entry hash   = BLAKE3-derive_key(ENTRY_HASH_CONTEXT, entry bytes)            (the entry id)
//! record id    = BLAKE3-derive_key(RECORD_ID_CONTEXT, record bytes)            (deduplication)
//! key id       = BLAKE3-derive_key(KEY_ID_CONTEXT, 32-byte public key)
//! ```

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{
    ENTRY_HASH_CONTEXT, FORMAT_VERSION, KEY_ID_CONTEXT, MAX_ENTRY_BYTES, MAX_RECORD_BYTES, RECORD_ID_CONTEXT,
    RECORD_SIGNATURE_PREFIX,
};
use crate::encoding::{from_canonical, to_canonical};
use crate::error::{Error, Result};
use crate::record::{Kind, Record};
use crate::types::{EntryHash, KeyId, RecordId, Seq, SignatureBytes, Timestamp};

/// An owned byte string: a CBOR byte string, hex in JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}
impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}
impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Bytes, E> {
                hex::decode(v).map(Bytes).map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_byte_buf(V)
        }
    }
}

/// The key id of an Ed25519 public key.
pub fn key_id(key: &VerifyingKey) -> KeyId {
    KeyId(blake3::derive_key(KEY_ID_CONTEXT, key.as_bytes()))
}

/// The record id of exact record bytes.
pub fn record_id(record_bytes: &[u8]) -> RecordId {
    RecordId(blake3::derive_key(RECORD_ID_CONTEXT, record_bytes))
}

/// The entry hash of exact entry bytes.
pub fn entry_hash(entry_bytes: &[u8]) -> EntryHash {
    EntryHash(blake3::derive_key(ENTRY_HASH_CONTEXT, entry_bytes))
}

fn signing_message(record_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RECORD_SIGNATURE_PREFIX.len() + record_bytes.len());
    m.extend_from_slice(RECORD_SIGNATURE_PREFIX);
    m.extend_from_slice(record_bytes);
    m
}

/// Checks a record's own rules: format version, size, a document digest that matches its
/// document, and no secrets in free text.
///
/// # Errors
/// [`Error::InvalidField`], [`Error::TooLarge`] or [`Error::SecretInField`].
fn check_record(record: &Record, size: usize) -> Result<()> {
    if record.v != FORMAT_VERSION {
        return Err(Error::InvalidField {
            field: "v".into(),
            reason: format!("unsupported record format version {} (this ledger speaks {FORMAT_VERSION})", record.v),
        });
    }
    if size > MAX_RECORD_BYTES {
        return Err(Error::TooLarge { what: "record", size, limit: MAX_RECORD_BYTES });
    }
    check_document_digest(record)?;
    crate::secrets::scan(record)
}

/// A `policy` or `codeowners` record names its document's digest: it must be the document's.
fn check_document_digest(record: &Record) -> Result<()> {
    let (document, digest, field) = match &record.body {
        crate::record::Body::Policy(p) => (&p.document, p.digest.as_ref(), "body.policy.digest"),
        crate::record::Body::Codeowners(c) => (&c.document, Some(&c.digest), "body.codeowners.digest"),
        _ => return Ok(()),
    };
    match digest {
        Some(d) if *d != crate::record::document_digest(document) => Err(Error::InvalidField {
            field: field.into(),
            reason: format!("{d} is not the SHA-256 of the document ({})", crate::record::document_digest(document)),
        }),
        _ => Ok(()),
    }
}

/// A record with its signer's signature, as a client submits it for appending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    /// Canonical CBOR bytes of the [`Record`].
    pub record: Bytes,
    /// Key id of the signer.
    pub signer: KeyId,
    /// Ed25519 signature over `RECORD_SIGNATURE_PREFIX ‖ record`.
    pub sig: SignatureBytes,
}

impl SignedRecord {
    /// Encodes and signs `record`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] over [`MAX_RECORD_BYTES`]; [`Error::SecretInField`] if a free-text
    /// field looks like a credential; [`Error::Malformed`] if it cannot be encoded.
    pub fn sign(record: &Record, key: &SigningKey) -> Result<Self> {
        let bytes = to_canonical(record, "record")?;
        check_record(record, bytes.len())?;
        let sig = key.sign(&signing_message(&bytes));
        Ok(SignedRecord {
            record: Bytes(bytes),
            signer: key_id(&key.verifying_key()),
            sig: SignatureBytes(sig.to_bytes()),
        })
    }

    /// Checks the signature with `key` (strict Ed25519), decodes the record canonically and
    /// checks its rules. Authorization (is this key allowed this kind, now?) is the key
    /// register's job: see [`crate::keys::KeyRegister::verify`].
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::BadSignature`], [`Error::Malformed`],
    /// [`Error::NonCanonical`], [`Error::InvalidField`] or [`Error::SecretInField`].
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<VerifiedRecord> {
        self.check_envelope(key)?;
        // `verify_strict`'s rules, one field inversion cheaper (see `sigbatch::verify_one`).
        let item = crate::sigbatch::Item {
            signature: &self.sig.0,
            key,
            prefix: RECORD_SIGNATURE_PREFIX,
            body: &self.record.0,
        };
        if !crate::sigbatch::verify_one(&item) {
            return Err(Error::BadSignature { key: self.signer });
        }
        self.decode_checked()
    }

    /// Size and signer checks that come before the signature.
    fn check_envelope(&self, key: &VerifyingKey) -> Result<()> {
        check_envelope(&self.record.0, self.signer, key)
    }

    /// The checks after the signature: canonical decoding and the record's rules.
    fn decode_checked(&self) -> Result<VerifiedRecord> {
        self.clone().into_checked()
    }

    /// [`SignedRecord::decode_checked`], keeping `self` instead of a copy.
    pub(crate) fn into_checked(self) -> Result<VerifiedRecord> {
        let bytes = &self.record.0;
        let record: Record = from_canonical(bytes, "record")?;
        check_record(&record, bytes.len())?;
        Ok(VerifiedRecord { id: record_id(bytes), signed: self, record })
    }
}

/// Size and signer checks that come before the signature of `record` by `signer`.
fn check_envelope(record: &[u8], signer: KeyId, key: &VerifyingKey) -> Result<()> {
    check_envelope_id(record, signer, key_id(key))
}

/// [`check_envelope`] given the key's id (`key_id`), for callers that derive it once per key.
fn check_envelope_id(record: &[u8], signer: KeyId, id: KeyId) -> Result<()> {
    if record.len() > MAX_RECORD_BYTES {
        return Err(Error::TooLarge { what: "record", size: record.len(), limit: MAX_RECORD_BYTES });
    }
    if id != signer {
        return Err(Error::BadSignature { key: signer });
    }
    Ok(())
}

/// One signature for [`batch_holds`], borrowed from wherever it is stored: the record bytes,
/// the signer's key id, the signature and the key it is checked with.
pub(crate) type SignedParts<'a> = (&'a [u8], KeyId, &'a [u8; 64], &'a VerifyingKey);

/// Whether `items` is not empty and every one passes the envelope checks and, as one batch,
/// the signature check of [`verify_batch`]. `false` says only that at least one fails.
pub(crate) fn batch_holds(items: &[SignedParts<'_>]) -> bool {
    if items.is_empty() {
        return false;
    }
    // `check_envelope` for each, with each key's id derived once: a batch names few keys.
    let mut ids: Vec<(&VerifyingKey, KeyId)> = vec![];
    for (record, signer, _, key) in items {
        let id = match ids.iter().find(|(k, _)| k.as_bytes() == key.as_bytes()) {
            Some((_, id)) => *id,
            None => {
                let id = key_id(key);
                ids.push((key, id));
                id
            }
        };
        if check_envelope_id(record, *signer, id).is_err() {
            return false;
        }
    }
    let batch: Vec<crate::sigbatch::Item<'_>> = items
        .iter()
        .map(|(record, _, sig, key)| crate::sigbatch::Item {
            signature: sig,
            key,
            prefix: RECORD_SIGNATURE_PREFIX,
            body: record,
        })
        .collect();
    crate::sigbatch::verify(&batch)
}

/// [`SignedRecord::verify_with`] for many records at once, with Ed25519 batch verification
/// ([`crate::sigbatch::verify`], about 4× cheaper per signature than one `verify_strict` when
/// the batch has few signers).
/// If the batch fails, each record is checked on its own with `verify_with`, so every result
/// (and error) is what `verify_with` gives.
///
/// Batch verification accepts every signature `verify_strict` accepts, and every signature it
/// accepts needs the signer's private key. It can also accept a signature that the key's own
/// holder deliberately built with a small-order component, which `verify_strict` refuses: so
/// it is for re-checking stored entries (`verify`), never for admitting new records.
pub fn verify_batch(items: &[(&SignedRecord, &VerifyingKey)]) -> Vec<Result<VerifiedRecord>> {
    let parts: Vec<SignedParts<'_>> = items.iter().map(|(s, k)| (&s.record.0[..], s.signer, &s.sig.0, *k)).collect();
    if batch_holds(&parts) {
        return items.iter().map(|(s, _)| s.decode_checked()).collect();
    }
    items.iter().map(|(s, k)| s.verify_with(k)).collect()
}

/// A record whose signature, encoding and content rules have been checked. Only the key
/// register ([`crate::keys::KeyRegister::verify`]) hands these out, so an append path that
/// takes a `VerifiedRecord` cannot skip the checks.
#[derive(Clone, Debug)]
pub struct VerifiedRecord {
    signed: SignedRecord,
    record: Record,
    id: RecordId,
}

impl VerifiedRecord {
    /// The decoded record.
    pub fn record(&self) -> &Record {
        &self.record
    }
    /// The signed form (exact bytes, signer, signature).
    pub fn signed(&self) -> &SignedRecord {
        &self.signed
    }
    /// The record id.
    pub fn id(&self) -> RecordId {
        self.id
    }
    /// The record kind.
    pub fn kind(&self) -> Kind {
        self.record.kind()
    }
}

/// One link of the hash chain, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version, [`FORMAT_VERSION`].
    pub v: u8,
    /// Position in the ledger, from 0.
    pub seq: Seq,
    /// Integration time: when the ledger accepted the record (its clock, not the author's).
    pub time: Timestamp,
    /// Entry hash of the previous entry ([`EntryHash::ZERO`] for seq 0).
    pub prev: EntryHash,
    /// The exact record bytes the signer signed.
    pub record: Bytes,
    /// Key id of the signer.
    pub signer: KeyId,
    /// The signer's signature over the record.
    pub sig: SignatureBytes,
}

impl Entry {
    /// Builds the entry that sequences `record` at `seq`.
    pub fn new(seq: Seq, time: Timestamp, prev: EntryHash, record: &VerifiedRecord) -> Entry {
        Entry {
            v: FORMAT_VERSION,
            seq,
            time,
            prev,
            record: record.signed.record.clone(),
            signer: record.signed.signer,
            sig: record.signed.sig,
        }
    }

    /// Canonical CBOR bytes of this entry.
    ///
    /// # Errors
    /// [`Error::TooLarge`] over [`MAX_ENTRY_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        let bytes = to_canonical(self, "entry")?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(Error::TooLarge { what: "entry", size: bytes.len(), limit: MAX_ENTRY_BYTES });
        }
        Ok(bytes)
    }

    /// Decodes canonical entry bytes.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Malformed`] or [`Error::NonCanonical`].
    pub fn decode(bytes: &[u8]) -> Result<Entry> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(Error::TooLarge { what: "entry", size: bytes.len(), limit: MAX_ENTRY_BYTES });
        }
        from_canonical(bytes, "entry")
    }

    /// [`Entry::decode`] without re-checking the canonical form (see
    /// [`crate::encoding::from_cbor_unchecked_form`]): for bulk reads of stored entries.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Malformed`].
    pub fn decode_unchecked_form(bytes: &[u8]) -> Result<Entry> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(Error::TooLarge { what: "entry", size: bytes.len(), limit: MAX_ENTRY_BYTES });
        }
        crate::encoding::from_cbor_unchecked_form(bytes, "entry")
    }

    /// [`Entry::decode_record`] without re-checking the canonical form.
    ///
    /// # Errors
    /// [`Error::Malformed`].
    pub fn decode_record_unchecked_form(&self) -> Result<Record> {
        crate::encoding::from_cbor_unchecked_form(&self.record.0, "record")
    }

    /// The signed record this entry carries.
    pub fn signed_record(&self) -> SignedRecord {
        SignedRecord { record: self.record.clone(), signer: self.signer, sig: self.sig }
    }

    /// Decodes the record this entry carries (without checking the signature).
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::NonCanonical`].
    pub fn decode_record(&self) -> Result<Record> {
        from_canonical(&self.record.0, "record")
    }
}
