//! Domain-separation constants: every hash and signature in the ledger is bound to one purpose.
//!
//! Changing any of these strings changes every golden vector; they are part of the format
//! (see `docs/FORMAT.md`).

/// BLAKE3 `derive_key` context for entry hashes (the chain link and the entry id).
pub const ENTRY_HASH_CONTEXT: &str = "provenance-ledger v1 entry hash";

/// BLAKE3 `derive_key` context for record ids (deduplication of re-appended records).
pub const RECORD_ID_CONTEXT: &str = "provenance-ledger v1 record id";

/// BLAKE3 `derive_key` context for signer key ids (hash of the 32-byte Ed25519 public key).
pub const KEY_ID_CONTEXT: &str = "provenance-ledger v1 key id";

/// BLAKE3 `derive_key` context for digests of source payloads and prompt transcripts
/// computed by the ledger itself.
pub const CONTENT_DIGEST_CONTEXT: &str = "provenance-ledger v1 content digest";

/// Prefix of the message an Ed25519 signer signs: `RECORD_SIGNATURE_PREFIX ‖ record bytes`.
///
/// The trailing NUL keeps the prefix from being a prefix of any other message format.
pub const RECORD_SIGNATURE_PREFIX: &[u8] = b"provenance-ledger/v1/record-signature\0";

/// Format version carried in every record and entry.
pub const FORMAT_VERSION: u8 = 1;

/// Largest entry, in bytes, the ledger accepts (64 KiB), per the brief.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// Largest record, in bytes: the entry limit less the fixed entry framing (seq, time,
/// previous hash, signer id, signature and CBOR headers, at most 200 bytes).
pub const MAX_RECORD_BYTES: usize = MAX_ENTRY_BYTES - 200;

/// BLAKE3 `derive_key` context of a bundle's digest: the hash of every line before its
/// manifest, which the manifest signs (docs/FORMAT.md, *Export bundles*).
pub const BUNDLE_DIGEST_CONTEXT: &str = "provenance-ledger v2 bundle digest";
