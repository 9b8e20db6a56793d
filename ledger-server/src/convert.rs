//! Conversions between wire types (`ledger-proto`) and core types, in one place.

use ed25519_dalek::VerifyingKey;
use ledger_core::entry::{Bytes, SignedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::types::{KeyId, Seq, SignatureBytes, Timestamp, Token};
use ledger_proto::v1 as pb;
use tonic::Status;

use crate::ledger::Receipt;

fn fixed<const N: usize>(b: &[u8], field: &str) -> Result<[u8; N], Status> {
    b.try_into().map_err(|_| Status::invalid_argument(format!("{field} must be {N} bytes, got {}", b.len())))
}

/// A wire record to a core [`SignedRecord`].
///
/// # Errors
/// `INVALID_ARGUMENT` naming the missing or malformed field.
pub fn signed_record(r: Option<pb::SignedRecord>) -> Result<SignedRecord, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("record is missing"))?;
    Ok(SignedRecord {
        record: Bytes(r.record),
        signer: KeyId(fixed(&r.signer, "record.signer")?),
        sig: SignatureBytes(fixed(&r.signature, "record.signature")?),
    })
}

/// A core signed record to the wire.
pub fn signed_record_pb(r: &SignedRecord) -> pb::SignedRecord {
    pb::SignedRecord { record: r.record.0.clone(), signer: r.signer.0.to_vec(), signature: r.sig.0.to_vec() }
}

/// A receipt to the wire.
pub fn receipt_pb(r: &Receipt) -> pb::Receipt {
    pb::Receipt {
        seq: r.seq.0,
        entry_hash: r.hash.0.to_vec(),
        record_id: r.record_id.0.to_vec(),
        duplicate: r.duplicate,
        tlog_proof: String::new(),
    }
}

/// A wire receipt to a core receipt.
///
/// # Errors
/// `INVALID_ARGUMENT` if a hash has the wrong length.
pub fn receipt(r: &pb::Receipt) -> Result<Receipt, Status> {
    Ok(Receipt {
        seq: Seq(r.seq),
        hash: ledger_core::types::EntryHash(fixed(&r.entry_hash, "entry_hash")?),
        record_id: ledger_core::types::RecordId(fixed(&r.record_id, "record_id")?),
        duplicate: r.duplicate,
    })
}

/// A key to the wire.
pub fn key_pb(k: &KeyInfo) -> pb::KeyInfo {
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
    }
}

/// A wire key to a core [`KeyInfo`].
///
/// # Errors
/// `INVALID_ARGUMENT` naming the malformed field.
pub fn key(k: &pb::KeyInfo) -> Result<KeyInfo, Status> {
    let bad = |f: &str, e: String| Status::invalid_argument(format!("{f}: {e}"));
    Ok(KeyInfo {
        id: KeyId(fixed(&k.key_id, "key_id")?),
        name: Token::new(k.name.clone()).map_err(|e| bad("name", e.to_string()))?,
        public: VerifyingKey::from_bytes(&fixed(&k.public_key, "public_key")?)
            .map_err(|e| bad("public_key", e.to_string()))?,
        kinds: k
            .kinds
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: ledger_core::Error| bad("kinds", e.to_string()))?,
        not_before: Timestamp(k.not_before_ms),
        not_after: k.not_after_ms.map(Timestamp),
        admin: k.admin,
        registered_at: Seq(k.registered_at),
        revoked_at: k.revoked_at.map(Seq),
        rotated_to: k.rotated_to.as_deref().map(|r| fixed(r, "rotated_to").map(KeyId)).transpose()?,
    })
}
