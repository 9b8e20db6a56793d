//! C2SP signed notes (`c2sp.org/signed-note`) with Ed25519 keys (type 0x01), and C2SP
//! checkpoints (`c2sp.org/tlog-checkpoint`) carried in them.
//!
//! ```text
//! key id        = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]
//! verifier key  = <name>+<hex key id>+<base64(0x01 ‖ public key)>
//! signed note   = <text, ending in \n> \n — <name> <base64(key id ‖ Ed25519 signature of text)> \n …
//! checkpoint    = <origin>\n<tree size>\n<base64 root hash>\n[<extension line>\n]…
//! ```
//!
//! The ledger's checkpoints carry one extension line, `blake3-head <seq> <entry hash hex>`: the
//! hash chain's head at that tree size, tying the Merkle tree to the chain.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::merkle::Hash;

/// The Ed25519 signature type byte of signed notes.
pub const ED25519_TYPE: u8 = 0x01;

/// Why a note or key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text is not a well-formed note or checkpoint.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A key name or verifier key string is malformed.
    #[error("bad key: {0}")]
    BadKey(&'static str),
    /// No signature by the given key verifies.
    #[error("no valid signature by {0}")]
    NotSigned(String),
}

/// The 4-byte key id of an Ed25519 key named `name`.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, ED25519_TYPE]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NoteError::BadKey("a key name is non-empty, without spaces or `+`"));
    }
    Ok(())
}

/// The verifier key string `<name>+<hex id>+<base64(0x01 ‖ key)>`.
///
/// # Errors
/// [`NoteError::BadKey`] for an invalid name.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> Result<String, NoteError> {
    check_name(name)?;
    let mut material = vec![ED25519_TYPE];
    material.extend_from_slice(key.as_bytes());
    Ok(format!("{name}+{}+{}", hex::encode(key_id(name, key)), B64.encode(material)))
}

/// Parses a verifier key string, checking its key id.
///
/// # Errors
/// [`NoteError::BadKey`] naming what is wrong.
pub fn parse_verifier_key(s: &str) -> Result<(String, VerifyingKey), NoteError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey("expected <name>+<hex id>+<base64 key>"));
    };
    check_name(name)?;
    let raw = B64.decode(material).map_err(|_| NoteError::BadKey("key material is not base64"))?;
    let (Some(&ED25519_TYPE), Ok(pk)) = (raw.first(), <[u8; 32]>::try_from(raw.get(1..).unwrap_or_default())) else {
        return Err(NoteError::BadKey("not an Ed25519 (type 0x01) key"));
    };
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| NoteError::BadKey("not a valid Ed25519 public key"))?;
    if hex::encode(key_id(name, &key)) != id {
        return Err(NoteError::BadKey("key id does not match the name and key"));
    }
    Ok((name.to_string(), key))
}

/// Signs `text` (which must end in a newline) as `name`: the text, a blank line and one
/// signature line.
///
/// # Errors
/// [`NoteError::Malformed`] if the text does not end in `\n`; [`NoteError::BadKey`] for a bad
/// name.
pub fn sign(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_name(name)?;
    if !text.ends_with('\n') || text.is_empty() {
        return Err(NoteError::Malformed("note text must end with a newline"));
    }
    let sig = key.sign(text.as_bytes());
    let mut blob = key_id(name, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    Ok(format!("{text}\n\u{2014} {name} {}\n", B64.encode(blob)))
}

/// Checks that `note` carries a valid signature by (`name`, `key`) and returns its text.
/// Signatures by other keys are ignored.
///
/// # Errors
/// [`NoteError::Malformed`] for a malformed note; [`NoteError::NotSigned`] if no signature by
/// the key verifies.
pub fn open<'a>(note: &'a str, name: &str, key: &VerifyingKey) -> Result<&'a str, NoteError> {
    let split = note.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    // signed-note: no control characters in the text but newline.
    if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(NoteError::Malformed("the note text contains a control character"));
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(NoteError::Malformed("signature block must end with a newline"));
    };
    let want_id = key_id(name, key);
    let mut verified = false;
    // Every signature line must be well formed (`— <name> <base64(key id ‖ signature)>`), and a
    // signature by this key that does not verify makes the whole note invalid, as in the
    // reference implementation: altered or padded signature blocks are refused, not skipped.
    for line in sigs.split('\n') {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(NoteError::Malformed("a signature line starts with an em dash and a space"));
        };
        let Some((who, b64)) = rest.split_once(' ') else { return Err(NoteError::Malformed("signature line")) };
        let blob = B64.decode(b64).map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if who.is_empty() || blob.len() < 5 || who.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(NoteError::Malformed("signature line"));
        }
        if who != name || blob[..4] != want_id {
            continue;
        }
        let sig = <[u8; 64]>::try_from(&blob[4..]).map_err(|_| NoteError::NotSigned(name.to_string()))?;
        if key.verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).is_err() {
            return Err(NoteError::NotSigned(name.to_string()));
        }
        verified = true;
    }
    if verified {
        return Ok(text);
    }
    Err(NoteError::NotSigned(name.to_string()))
}

/// A C2SP checkpoint: the log's origin line, its tree size and root hash, and extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (unique name), e.g. `ledger.example.com/prod`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash at that size.
    pub root: Hash,
    /// Extension lines (without newlines).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint body (the note text).
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint body.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] naming the bad line.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed("checkpoint must end with a newline"));
        }
        if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::Malformed("checkpoint contains a control character"));
        }
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(NoteError::Malformed("origin line"))?;
        let size_line = lines.next().ok_or(NoteError::Malformed("size line"))?;
        if size_line.is_empty() || !size_line.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NoteError::Malformed("size line is not a decimal number"));
        }
        if size_line.len() > 1 && size_line.starts_with('0') {
            return Err(NoteError::Malformed("size line has leading zeros"));
        }
        let size = size_line.parse::<u64>().map_err(|_| NoteError::Malformed("size line"))?;
        let root_b64 = lines.next().ok_or(NoteError::Malformed("root hash line"))?;
        let root: Hash = B64
            .decode(root_b64)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Malformed("root hash line is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Malformed("empty extension line"));
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root, extensions })
    }
}

/// The first line of a C2SP `tlog-proof@v1`.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A C2SP `tlog-proof@v1`: an inclusion proof with the signed checkpoint it leads to, in one
/// self-contained text an auditor can check offline with the log's verifier key. `extra`, when
/// given, is carried base64-encoded on the `extra` line (this ledger puts the entry's exact
/// bytes there, so the proof carries its leaf):
///
/// ```text
/// c2sp.org/tlog-proof@v1
/// extra <base64 extra data>           (optional)
/// index <leaf index>
/// <base64 proof hash>…
///
/// <signed checkpoint note>
/// ```
pub fn tlog_proof(index: u64, extra: Option<&[u8]>, proof: &[Hash], signed_checkpoint: &str) -> String {
    let mut text = format!("{TLOG_PROOF_HEADER}\n");
    if let Some(extra) = extra {
        text.push_str(&format!("extra {}\n", B64.encode(extra)));
    }
    text.push_str(&format!("index {index}\n"));
    for p in proof {
        text.push_str(&B64.encode(p));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(signed_checkpoint);
    text
}

/// The parts of a C2SP `tlog-proof@v1`, read but not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof<'a> {
    /// The `extra` line's data, decoded.
    pub extra: Option<Vec<u8>>,
    /// The leaf index.
    pub index: u64,
    /// The inclusion proof hashes.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: &'a str,
}

/// Reads a C2SP `tlog-proof@v1` ([`tlog_proof`]) without checking it.
///
/// # Errors
/// [`NoteError::Malformed`] naming the malformed part.
pub fn parse_tlog_proof(text: &str) -> Result<TlogProof<'_>, NoteError> {
    let bad = NoteError::Malformed;
    let (head, checkpoint) = text.split_once("\n\n").ok_or(bad("tlog-proof: no blank line before the checkpoint"))?;
    let mut lines = head.split('\n');
    if lines.next() != Some(TLOG_PROOF_HEADER) {
        return Err(bad("tlog-proof: the first line must be c2sp.org/tlog-proof@v1"));
    }
    let mut line = lines.next().ok_or(bad("tlog-proof: no index line"))?;
    let mut extra = None;
    if let Some(data) = line.strip_prefix("extra ") {
        extra = Some(B64.decode(data).map_err(|_| bad("tlog-proof: the extra line is not base64"))?);
        line = lines.next().ok_or(bad("tlog-proof: no index line"))?;
    }
    let index = line
        .strip_prefix("index ")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0')))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or(bad("tlog-proof: malformed index line"))?;
    let proof: Vec<Hash> = lines
        .map(|l| B64.decode(l).ok().and_then(|h| Hash::try_from(h).ok()))
        .collect::<Option<_>>()
        .ok_or(bad("tlog-proof: a proof line is not base64 of 32 bytes"))?;
    Ok(TlogProof { extra, index, proof, checkpoint })
}

/// Checks a C2SP `tlog-proof@v1` for the leaf hash `leaf`: the checkpoint must be signed by
/// `name`'s `key`, and the proof must lead from `leaf` at its index to the checkpoint's root
/// (RFC 9162 §2.1.3.2). Returns the index and the checkpoint. The `extra` line is not
/// interpreted here.
///
/// # Errors
/// [`NoteError::Malformed`] for a malformed text or a proof that does not verify;
/// [`NoteError::NotSigned`] if the checkpoint is not signed by the key.
pub fn open_tlog_proof(
    text: &str,
    leaf: &Hash,
    name: &str,
    key: &VerifyingKey,
) -> Result<(u64, Checkpoint), NoteError> {
    let p = parse_tlog_proof(text)?;
    let checkpoint = Checkpoint::parse(open(p.checkpoint, name, key)?)?;
    crate::merkle::verify_inclusion(leaf, p.index, checkpoint.size, &p.proof, &checkpoint.root)
        .map_err(|_| NoteError::Malformed("tlog-proof: the inclusion proof does not lead to the checkpoint's root"))?;
    Ok((p.index, checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note (the reference implementation of
    // c2sp.org/signed-note): key pair, text and published signature.
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIG: &str = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

    fn signing_key() -> SigningKey {
        // PRIVATE+KEY+<name>+<id>+<base64>: the base64 itself may contain `+`.
        let material = SKEY.splitn(5, '+').nth(4).unwrap();
        let raw = B64.decode(material).unwrap();
        assert_eq!(raw[0], ED25519_TYPE);
        SigningKey::from_bytes(&raw[1..].try_into().unwrap())
    }

    #[test]
    fn reproduces_the_reference_signed_note() {
        let sk = signing_key();
        assert_eq!(verifier_key("PeterNeumann", &sk.verifying_key()).unwrap(), VKEY);
        let note = sign(TEXT, "PeterNeumann", &sk).unwrap();
        assert_eq!(note, format!("{TEXT}\n\u{2014} PeterNeumann {SIG}\n"));
        let (name, vk) = parse_verifier_key(VKEY).unwrap();
        assert_eq!(open(&note, &name, &vk).unwrap(), TEXT);
        assert!(open(&note.replace("cryptography", "cryptographY"), &name, &vk).is_err());
        assert!(parse_verifier_key(&VKEY.replace("c74f20a3", "c74f20a4")).is_err());
    }

    #[test]
    fn checkpoints_round_trip() {
        let c = Checkpoint {
            origin: "ledger.example/test".into(),
            size: 8,
            root: [7; 32],
            extensions: vec!["blake3-head 7 ab".into()],
        };
        assert_eq!(Checkpoint::parse(&c.to_text()).unwrap(), c);
        assert!(Checkpoint::parse("o\n08\nAAAA\n").is_err());
        assert!(Checkpoint::parse(&c.to_text().replace("\n8\n", "\n+8\n")).is_err());
        assert!(Checkpoint::parse(&c.to_text().replace('\n', "\r\n")).is_err());
        assert!(Checkpoint::parse("o\n1\nnot-base64\n").is_err());
    }

    #[test]
    fn tlog_proofs_round_trip_and_refuse_changes() {
        let sk = signing_key();
        let leaves: Vec<Hash> = (0u8..5).map(|i| crate::merkle::leaf_hash(&[i])).collect();
        let c = Checkpoint {
            origin: "ledger.example/t".into(),
            size: 5,
            root: crate::merkle::root(&leaves),
            extensions: vec![],
        };
        let signed = sign(&c.to_text(), "ledger.example/t", &sk).unwrap();
        let proof = crate::merkle::inclusion_proof(&leaves, 3).unwrap();
        let text = tlog_proof(3, None, &proof, &signed);
        let vk = sk.verifying_key();
        assert_eq!(open_tlog_proof(&text, &leaves[3], "ledger.example/t", &vk).unwrap(), (3, c));
        // Another leaf, another index, a changed proof hash, another key: refused.
        assert!(open_tlog_proof(&text, &leaves[2], "ledger.example/t", &vk).is_err());
        assert!(open_tlog_proof(&text.replace("index 3", "index 2"), &leaves[3], "ledger.example/t", &vk).is_err());
        let first = B64.encode(proof[0]);
        let other = B64.encode(proof[1]);
        assert!(open_tlog_proof(&text.replacen(&first, &other, 1), &leaves[3], "ledger.example/t", &vk).is_err());
        let stranger = SigningKey::from_bytes(&[9; 32]).verifying_key();
        assert!(open_tlog_proof(&text, &leaves[3], "ledger.example/t", &stranger).is_err());
        assert!(open_tlog_proof(&text.replace("index 3", "index 03"), &leaves[3], "ledger.example/t", &vk).is_err());
        // With an extra line: read back, and the proof still checks.
        let with_extra = tlog_proof(3, Some(b"entry bytes"), &proof, &signed);
        assert_eq!(parse_tlog_proof(&with_extra).unwrap().extra.as_deref(), Some(&b"entry bytes"[..]));
        assert_eq!(open_tlog_proof(&with_extra, &leaves[3], "ledger.example/t", &vk).unwrap().0, 3);
    }
}
