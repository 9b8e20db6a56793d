//! Export bundles: selected entries with inclusion proofs against one signed checkpoint, plus
//! every `key` entry up to that checkpoint so each signer can be checked, verifiable offline
//! with nothing but the log's verifier key. The JSON layout is specified in `docs/FORMAT.md`.

use serde::{Deserialize, Serialize};

use crate::chain::SequencedEntry;
use crate::entry::{entry_hash, Entry};
use crate::keys::KeyRegister;
use crate::merkle::{self, Hash};
use crate::note::{self, Checkpoint};
use crate::record::Kind;
use crate::types::Seq;

/// The format marker of version 1 bundles.
pub const BUNDLE_FORMAT: &str = "provenance-ledger-bundle/v1";

/// One entry in a bundle: its exact bytes and its inclusion proof in the checkpoint's tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    /// Sequence number (the leaf index).
    pub seq: u64,
    /// The exact stored entry bytes, lowercase hex.
    pub entry: String,
    /// RFC 6962 inclusion proof, lowercase hex hashes.
    pub proof: Vec<String>,
}

/// An export bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// What was exported, in words (`pr:o/r#5`, `all`, `2026-01-01..2026-02-01`).
    pub selection: String,
    /// The signed C2SP checkpoint every proof is against.
    pub checkpoint: String,
    /// Entries, ascending by seq: the selected ones and every `key` entry below the tree size.
    pub entries: Vec<BundleEntry>,
    /// Seqs of the selected entries (the others are there to check signers).
    pub selected: Vec<u64>,
}

/// What a verified bundle holds.
#[derive(Clone, Debug)]
pub struct BundleSummary {
    /// Tree size of the checkpoint.
    pub tree_size: u64,
    /// Entries verified (selected and key entries).
    pub entries: usize,
    /// Selected entries.
    pub selected: usize,
    /// The verified entries, ascending.
    pub verified: Vec<SequencedEntry>,
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The file is not a bundle of this format (an error, not a finding).
    #[error("not a valid bundle: {0}")]
    Malformed(String),
    /// The checkpoint is not signed by the given log key.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An entry fails: proof, decoding, signature or signer rights.
    #[error("entry #{seq}: {reason}")]
    Tampered {
        /// The first failing entry.
        seq: u64,
        /// What fails.
        reason: String,
    },
}

fn hash_of(hex_str: &str, seq: u64) -> Result<Hash, BundleError> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut h)
        .map_err(|_| BundleError::Tampered { seq, reason: "a proof hash is not 32 bytes of hex".into() })?;
    Ok(h)
}

/// Verifies a bundle offline: the checkpoint's signature by (`log_name`, `log_key`), every
/// entry's inclusion proof against it, and every entry's signature and signer rights, replaying
/// the key records in order (the genesis entry must be present).
///
/// # Errors
/// [`BundleError`]: `Malformed` for a file that is not a bundle, otherwise the first failure.
pub fn verify(b: &Bundle, log_name: &str, log_key: &ed25519_dalek::VerifyingKey) -> Result<BundleSummary, BundleError> {
    if b.format != BUNDLE_FORMAT {
        return Err(BundleError::Malformed(format!("format `{}`, expected `{BUNDLE_FORMAT}`", b.format)));
    }
    let text = note::open(&b.checkpoint, log_name, log_key).map_err(|e| BundleError::Checkpoint(e.to_string()))?;
    let cp = Checkpoint::parse(text).map_err(|e| BundleError::Checkpoint(e.to_string()))?;
    let mut register = KeyRegister::new();
    let mut verified = vec![];
    let mut last: Option<u64> = None;
    for be in &b.entries {
        let seq = be.seq;
        let bad = |reason: String| BundleError::Tampered { seq, reason };
        if last.is_some_and(|l| seq <= l) {
            return Err(bad("entries are not in ascending order".into()));
        }
        last = Some(seq);
        let bytes = hex::decode(&be.entry).map_err(|_| bad("entry bytes are not hex".into()))?;
        let proof: Vec<Hash> = be.proof.iter().map(|h| hash_of(h, seq)).collect::<Result<_, _>>()?;
        merkle::verify_inclusion(&merkle::leaf_hash(&bytes), seq, cp.size, &proof, &cp.root)
            .map_err(|e| bad(format!("inclusion proof: {e}")))?;
        let entry = Entry::decode(&bytes).map_err(|e| bad(e.to_string()))?;
        if entry.seq.0 != seq {
            return Err(bad(format!("the entry says seq {}", entry.seq)));
        }
        let v = register.verify(&entry.signed_record(), Seq(seq), entry.time).map_err(|e| bad(e.to_string()))?;
        register.apply(&v, Seq(seq), entry.time);
        let record = v.record().clone();
        if seq == 0 && record.kind() != Kind::Key {
            return Err(bad("entry 0 is not the genesis key record".into()));
        }
        verified.push(SequencedEntry { hash: entry_hash(&bytes), record_id: v.id(), record, entry, bytes });
    }
    if b.entries.first().map(|e| e.seq) != Some(0) {
        return Err(BundleError::Malformed("the genesis entry (seq 0) is missing".into()));
    }
    for s in &b.selected {
        if !b.entries.iter().any(|e| e.seq == *s) {
            return Err(BundleError::Malformed(format!("selected entry #{s} is not in the bundle")));
        }
    }
    Ok(BundleSummary { tree_size: cp.size, entries: verified.len(), selected: b.selected.len(), verified })
}
