//! The error type of `ledger-core`.

use crate::record::Kind;
use crate::types::{KeyId, Seq};

/// Everything that can go wrong in the pure core: decoding, signatures, authorization and
/// chain checks. Each variant names the thing that is wrong.
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): the server's mapping to gRPC status
/// codes matches every variant without a wildcard, so a new variant must be mapped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes are not valid CBOR for the expected type.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded ("record", "entry").
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// Bytes decode, but are not the canonical encoding of what they decode to.
    #[error("{what} is not canonical CBOR (re-encoding gives different bytes)")]
    NonCanonical {
        /// What was being decoded.
        what: &'static str,
    },
    /// A record or entry exceeds its size limit.
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A field value is invalid (empty, bad subject syntax, wrong length...).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name, e.g. `links[0].target`.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A free-text field looks like it holds a secret; the record is refused.
    #[error("field `{field}` appears to contain a secret ({pattern}); remove it and retry")]
    SecretInField {
        /// The field holding the secret.
        field: String,
        /// The name of the pattern that matched (never the secret itself).
        pattern: &'static str,
    },
    /// The Ed25519 signature does not verify (strict verification).
    #[error("signature by key {key} does not verify")]
    BadSignature {
        /// The claimed signer.
        key: KeyId,
    },
    /// The signer is not a registered key.
    #[error("unknown signer key {key}")]
    UnknownKey {
        /// The claimed signer.
        key: KeyId,
    },
    /// The signer was revoked before this append.
    #[error("signer key {key} ({name}) was revoked at {revoked_at}")]
    RevokedKey {
        /// The signer.
        key: KeyId,
        /// Its registered name.
        name: String,
        /// The sequence number of the revoking entry.
        revoked_at: Seq,
    },
    /// The signer's validity window does not include the integration time.
    #[error("signer key {key} ({name}) is not valid at {at}: {reason}")]
    KeyNotValid {
        /// The signer.
        key: KeyId,
        /// Its registered name.
        name: String,
        /// The integration time checked.
        at: crate::types::Timestamp,
        /// "not yet valid" or "expired".
        reason: &'static str,
    },
    /// The signer may not append this kind of record.
    #[error("signer key {key} ({name}) may not append `{kind}` records")]
    KindNotAllowed {
        /// The signer.
        key: KeyId,
        /// Its registered name.
        name: String,
        /// The refused kind.
        kind: Kind,
    },
    /// A `key` record is invalid in the current key register.
    #[error("key record refused: {reason}")]
    KeyRecord {
        /// Why.
        reason: String,
    },
    /// An [`Authorized`](crate::chain::Authorized) record was sequenced at another position
    /// than the one it was authorized for (a caller's mistake, never the record's).
    #[error("a record authorized as entry #{authorized} cannot be sequenced as entry #{next}")]
    StaleAuthorization {
        /// The seq it was authorized for.
        authorized: Seq,
        /// The seq the chain is at.
        next: Seq,
    },
    /// A stored entry does not continue the chain.
    #[error("chain broken at seq {seq}: {reason}")]
    ChainBroken {
        /// The first entry that does not verify.
        seq: Seq,
        /// What is wrong with it.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
