//! Version 1 bundles, still read: one JSON document holding selected entries with an inclusion
//! proof each against one signed checkpoint, plus every `key` entry up to that checkpoint. They
//! carry no manifest, so they cannot show they are complete (see the v2 format in the parent
//! module). The layout is in `docs/FORMAT.md` (*Version 1 bundles*).

use serde::{Deserialize, Serialize};

use crate::chain::SequencedEntry;
use crate::entry::{entry_hash, Entry};
use crate::keys::KeyRegister;
use crate::merkle::{self, Hash};
use crate::note::{self, Checkpoint};
use crate::record::Kind;
use crate::types::Seq;

pub use super::BundleError;

/// The format marker of version 1 bundles.
pub const BUNDLE_FORMAT_V1: &str = "provenance-ledger-bundle/v1";

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
    /// [`BUNDLE_FORMAT_V1`].
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
pub struct V1Summary {
    /// Tree size of the checkpoint.
    pub tree_size: u64,
    /// Entries verified (selected and key entries).
    pub entries: usize,
    /// Selected entries.
    pub selected: usize,
    /// The verified entries, ascending.
    pub verified: Vec<SequencedEntry>,
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
pub fn verify(b: &Bundle, log_name: &str, log_key: &ed25519_dalek::VerifyingKey) -> Result<V1Summary, BundleError> {
    if b.format != BUNDLE_FORMAT_V1 {
        return Err(BundleError::Malformed(format!("format `{}`, expected `{BUNDLE_FORMAT_V1}`", b.format)));
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
        if let Some(prev) = verified.last().filter(|p: &&SequencedEntry| p.entry.seq.0 + 1 == seq) {
            if entry.prev != prev.hash {
                return Err(bad(format!("prev {} is not the hash of entry #{}", entry.prev, prev.entry.seq)));
            }
        }
        let head = cp.extensions.iter().find_map(|e| e.strip_prefix("blake3-head "));
        if let Some((head_seq, head_hash)) = head.and_then(|h| h.split_once(' ')) {
            if seq + 1 == cp.size && (head_seq != seq.to_string() || head_hash != entry_hash(&bytes).to_hex()) {
                return Err(bad("the last entry's hash is not the checkpoint's blake3-head".into()));
            }
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
    Ok(V1Summary { tree_size: cp.size, entries: verified.len(), selected: b.selected.len(), verified })
}
