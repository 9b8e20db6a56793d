//! Conversions between the wire types ([`crate::v1`]) and the core types, in one place: `From`
//! a core type to the wire, `TryFrom` the wire to a core type (a peer may send anything, so
//! every length and name is checked and a bad field is named).

use ed25519_dalek::VerifyingKey;
use ledger_core::chain::Receipt;
use ledger_core::entry::{Bytes, SignedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::record::KeyRole;
use ledger_core::types::{EntryHash, KeyId, RecordId, Seq, SignatureBytes, Timestamp, Token};

use crate::v1 as pb;

/// A wire message that does not convert to its core type: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConvertError {
    /// The field, as a path in the message (`record.signer`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConvertError {
    pub(crate) fn new(field: &str, reason: impl std::fmt::Display) -> Self {
        ConvertError { field: field.to_string(), reason: reason.to_string() }
    }

    /// The same error, for a field inside `outer` (`changes[0]` + `reviews[1].commit`).
    pub(crate) fn within(self, outer: &str) -> Self {
        let field = match self.field.as_str() {
            "" => outer.to_string(),
            f => format!("{outer}.{f}"),
        };
        ConvertError { field, reason: self.reason }
    }
}

pub(crate) fn fixed<const N: usize>(b: &[u8], field: &str) -> Result<[u8; N], ConvertError> {
    b.try_into().map_err(|_| ConvertError::new(field, format!("must be {N} bytes, got {}", b.len())))
}

impl From<&SignedRecord> for pb::SignedRecord {
    fn from(r: &SignedRecord) -> Self {
        pb::SignedRecord { record: r.record.0.clone(), signer: r.signer.0.to_vec(), signature: r.sig.0.to_vec() }
    }
}

impl TryFrom<pb::SignedRecord> for SignedRecord {
    type Error = ConvertError;
    /// # Errors
    /// `record.signer` or `record.signature` of the wrong length.
    fn try_from(r: pb::SignedRecord) -> Result<Self, ConvertError> {
        Ok(SignedRecord {
            signer: KeyId(fixed(&r.signer, "record.signer")?),
            sig: SignatureBytes(fixed(&r.signature, "record.signature")?),
            record: Bytes(r.record),
        })
    }
}

impl From<&Receipt> for pb::Receipt {
    /// Without a tlog-proof (the service adds one when the request asked).
    fn from(r: &Receipt) -> Self {
        pb::Receipt {
            seq: r.seq.0,
            entry_hash: r.hash.0.to_vec(),
            record_id: r.record_id.0.to_vec(),
            duplicate: r.duplicate,
            tlog_proof: String::new(),
        }
    }
}

impl TryFrom<&pb::Receipt> for Receipt {
    type Error = ConvertError;
    /// # Errors
    /// A hash of the wrong length.
    fn try_from(r: &pb::Receipt) -> Result<Self, ConvertError> {
        Ok(Receipt {
            seq: Seq(r.seq),
            hash: EntryHash(fixed(&r.entry_hash, "entry_hash")?),
            record_id: RecordId(fixed(&r.record_id, "record_id")?),
            duplicate: r.duplicate,
        })
    }
}

impl From<&KeyInfo> for pb::KeyInfo {
    fn from(k: &KeyInfo) -> Self {
        pb::KeyInfo {
            name: k.name.to_string(),
            key_id: k.id.0.to_vec(),
            public_key: k.public.to_bytes().to_vec(),
            kinds: k.kinds.iter().map(|k| k.as_str().to_string()).collect(),
            admin: k.admin,
            registered_at: k.registered_at.0,
            revoked_at: k.revoked_at.map(|s| s.0),
            not_before_ms: k.not_before.0,
            not_after_ms: k.not_after.map(|t| t.0),
            rotated_to: k.rotated_to.map(|r| r.0.to_vec()),
            role: k.role.map(|r| match r {
                KeyRole::Log => "log".to_string(),
            }),
        }
    }
}

impl TryFrom<&pb::KeyInfo> for KeyInfo {
    type Error = ConvertError;
    /// # Errors
    /// The malformed field: a wrong length, an invalid name, key or kind.
    fn try_from(k: &pb::KeyInfo) -> Result<Self, ConvertError> {
        Ok(KeyInfo {
            id: KeyId(fixed(&k.key_id, "key_id")?),
            name: Token::new(k.name.clone()).map_err(|e| ConvertError::new("name", e))?,
            public: VerifyingKey::from_bytes(&fixed(&k.public_key, "public_key")?)
                .map_err(|e| ConvertError::new("public_key", e))?,
            kinds: k
                .kinds
                .iter()
                .map(|s| s.parse())
                .collect::<Result<_, ledger_core::Error>>()
                .map_err(|e| ConvertError::new("kinds", e))?,
            not_before: Timestamp(k.not_before_ms),
            not_after: k.not_after_ms.map(Timestamp),
            admin: k.admin,
            registered_at: Seq(k.registered_at),
            revoked_at: k.revoked_at.map(Seq),
            rotated_to: k.rotated_to.as_deref().map(|r| fixed(r, "rotated_to").map(KeyId)).transpose()?,
            role: match k.role.as_deref() {
                None => None,
                Some("log") => Some(KeyRole::Log),
                Some(other) => return Err(ConvertError::new("role", format!("unknown key role `{other}`"))),
            },
        })
    }
}
