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
}
