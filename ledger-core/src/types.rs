//! Small value types that carry their own checks: sequence numbers, hashes, digests,
//! timestamps, commit ids, identities and repository names.
//!
//! Binary encodings (CBOR, `is_human_readable() == false`) use bytes and integers; human
//! encodings (JSON) use lowercase hex and RFC 3339 strings.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};

/// A sequence number: the 0-based position of an entry in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Defines a 32-byte hash newtype: bytes in CBOR, lowercase hex in JSON and `Display`.
macro_rules! hash32 {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lowercase hex of the 32 bytes (64 characters).
            pub fn to_hex(&self) -> String {
                // A table walk into one allocation: `hex::encode` builds the string a char at
                // a time, which showed in every report that names entries.
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(64);
                for b in self.0 {
                    s.push(DIGITS[usize::from(b >> 4)] as char);
                    s.push(DIGITS[usize::from(b & 15)] as char);
                }
                s
            }
            /// Parses 64 hex characters.
            ///
            /// # Errors
            /// [`Error::InvalidField`] if `s` is not exactly 64 hex characters.
            pub fn from_hex(s: &str) -> Result<Self> {
                parse_hex32(s, $what).map($name)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                deserialize_fixed::<D, 32>(d, $what).map($name)
            }
        }
    };
}

hash32!(
    /// BLAKE3 hash of an entry's exact bytes under [`crate::domain::ENTRY_HASH_CONTEXT`]:
    /// the entry id and the chain link.
    EntryHash,
    "entry hash"
);
hash32!(
    /// BLAKE3 hash of a record's exact bytes under [`crate::domain::RECORD_ID_CONTEXT`].
    RecordId,
    "record id"
);
hash32!(
    /// BLAKE3 hash of a signer's 32-byte Ed25519 public key under
    /// [`crate::domain::KEY_ID_CONTEXT`].
    KeyId,
    "key id"
);
hash32!(
    /// A raw 32-byte Ed25519 public key.
    PublicKeyBytes,
    "public key"
);

impl EntryHash {
    /// The `prev` of the first entry: 32 zero bytes.
    pub const ZERO: EntryHash = EntryHash([0; 32]);
}

impl KeyId {
    /// The first 12 hex characters, for display in tables.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

/// A 64-byte Ed25519 signature: bytes in CBOR, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub [u8; 64]);

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBytes({})", hex::encode(self.0))
    }
}
impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}
impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        deserialize_fixed::<D, 64>(d, "signature").map(SignatureBytes)
    }
}

fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| Error::InvalidField {
        field: what.to_string(),
        reason: format!("expected 64 hex characters: {e}"),
    })?;
    Ok(out)
}

/// Deserializes `N` bytes: a byte string in binary formats, hex in human-readable ones.
fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
    what: &'static str,
) -> std::result::Result<[u8; N], D::Error> {
    struct V<const N: usize>(&'static str);
    impl<const N: usize> Visitor<'_> for V<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} ({} bytes, or {} hex characters)", self.0, N, 2 * N)
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<Self::Value, E> {
            v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            let mut out = [0u8; N];
            hex::decode_to_slice(v, &mut out).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))?;
            Ok(out)
        }
    }
    if d.is_human_readable() {
        d.deserialize_str(V::<N>(what))
    } else {
        d.deserialize_bytes(V::<N>(what))
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// CBOR: an integer. JSON: an RFC 3339 string (`2026-05-21T18:14:34Z`); an offset is accepted on
/// input and normalized to UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From whole seconds since the Unix epoch.
    pub fn from_unix_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }
    /// Whole seconds since the Unix epoch (rounded toward negative infinity).
    pub fn unix_secs(&self) -> i64 {
        self.0.div_euclid(1000)
    }
    /// RFC 3339 in UTC, with milliseconds only when they are not zero.
    pub fn to_rfc3339(&self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => {
                if self.0 % 1000 == 0 {
                    format!("{t:.0}")
                } else {
                    format!("{t:.3}")
                }
            }
            Err(_) => format!("@{}ms", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    /// Parses RFC 3339 (`2026-05-21T14:14:34-04:00`) or a bare date (`2026-05-21`, midnight UTC).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |e: String| Error::InvalidField {
            field: "time".into(),
            reason: format!("`{s}` is not an RFC 3339 time or YYYY-MM-DD date: {e}"),
        };
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return Ok(Timestamp(t.as_millisecond()));
        }
        // Only a bare date means midnight UTC: a date-time without an offset is ambiguous and
        // is refused rather than silently truncated to its date.
        if s.len() != 10 {
            return Err(bad("a time needs an offset (`Z` or `+hh:mm`)".into()));
        }
        let d: jiff::civil::Date = s.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
        let t = d.to_zoned(jiff::tz::TimeZone::UTC).map_err(|e| bad(e.to_string()))?.timestamp();
        Ok(Timestamp(t.as_millisecond()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

/// Source of the current time. The core never reads the system clock itself.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// Defines a validated string newtype that (de)serializes as a plain string.
macro_rules! checked_string {
    ($(#[$m:meta])* $name:ident, $check:path) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            ///
            /// # Errors
            /// [`Error::InvalidField`] naming the rule `s` breaks.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                $check(&s).map_err(|reason| Error::InvalidField {
                    field: stringify!($name).to_string(),
                    reason: format!("`{}`: {}", s.escape_debug(), reason),
                })?;
                Ok($name(s))
            }
            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::new(s)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(de::Error::custom)
            }
        }
    };
}

fn check_commit_id(s: &str) -> std::result::Result<(), &'static str> {
    if !(s.len() == 40 || s.len() == 64) {
        return Err("a commit id is 40 (SHA-1) or 64 (SHA-256) lowercase hex characters");
    }
    if !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err("a commit id is lowercase hex");
    }
    Ok(())
}

fn check_identity(s: &str) -> std::result::Result<(), &'static str> {
    if s.trim().is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 512 {
        return Err("longer than 512 bytes");
    }
    if s.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

fn check_repo(s: &str) -> std::result::Result<(), &'static str> {
    let mut parts = s.split('/');
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && p != "."
            && p != ".."
    };
    // GitLab allows nested groups (`group/sub/project`), so two or more segments.
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() || !ok_part(first) || !rest.iter().all(|p| ok_part(p)) {
        return Err("expected `owner/name` of letters, digits, `-`, `_` and `.`");
    }
    Ok(())
}

fn check_token(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 256 {
        return Err("longer than 256 bytes");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace");
    }
    Ok(())
}

checked_string!(
    /// A git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex characters.
    CommitId,
    check_commit_id
);
checked_string!(
    /// A person or bot: `github:octocat`, `gitlab:jdoe`, or a git identity `Name <email>`.
    /// Non-empty, at most 512 bytes, no control characters.
    Identity,
    check_identity
);
checked_string!(
    /// A repository: `owner/name` (GitLab: `group/sub/name`).
    RepoName,
    check_repo
);
checked_string!(
    /// A short identifier without whitespace (service, environment, tool, ids): 1..=256 bytes.
    Token,
    check_token
);

impl Identity {
    /// The e-mail address of a git identity `Name <email>`, lowercased, if there is one.
    pub fn email(&self) -> Option<String> {
        let s = self.0.as_str();
        let start = s.rfind('<')?;
        let end = s[start..].find('>')? + start;
        let email = s[start + 1..end].trim();
        (!email.is_empty()).then(|| email.to_ascii_lowercase())
    }

    /// Whether two identities name the same person: equal e-mail addresses when both have one,
    /// otherwise equal strings ignoring ASCII case.
    pub fn same_person(&self, other: &Identity) -> bool {
        match (self.email(), other.email()) {
            (Some(a), Some(b)) => a == b,
            _ => self.0.eq_ignore_ascii_case(&other.0),
        }
    }

    /// Whether this identity looks like automation: a GitHub App (`name[bot]`), a `bot:`
    /// actor, or a known AI coding tool.
    pub fn is_automation(&self) -> bool {
        let lower = self.0.to_ascii_lowercase();
        lower.contains("[bot]") || lower.starts_with("bot:") || crate::ai::ai_tool_name(&self.0).is_some()
    }
}

/// Digest algorithm of an external artifact or transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlg {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
    /// BLAKE3 (32 bytes).
    Blake3,
}

impl DigestAlg {
    fn len(self) -> usize {
        match self {
            DigestAlg::Sha256 | DigestAlg::Blake3 => 32,
            DigestAlg::Sha512 => 64,
        }
    }
    fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha256 => "sha256",
            DigestAlg::Sha512 => "sha512",
            DigestAlg::Blake3 => "blake3",
        }
    }
}

/// A digest of something kept outside the ledger (a log, an SBOM, a prompt transcript).
///
/// Written `alg:hex` (e.g. `sha256:9f86…`) in JSON and in CBOR (the string form keeps the
/// algorithm and value together and is short).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    alg: DigestAlg,
    value: Vec<u8>,
}

impl Digest {
    /// Wraps `value` computed with `alg`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the length does not match the algorithm.
    pub fn new(alg: DigestAlg, value: Vec<u8>) -> Result<Self> {
        if value.len() != alg.len() {
            return Err(Error::InvalidField {
                field: "digest".into(),
                reason: format!("{} digest must be {} bytes, got {}", alg.name(), alg.len(), value.len()),
            });
        }
        Ok(Digest { alg, value })
    }
    /// The BLAKE3 digest of `content` under [`crate::domain::CONTENT_DIGEST_CONTEXT`].
    pub fn blake3_of(content: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(crate::domain::CONTENT_DIGEST_CONTEXT);
        h.update(content);
        Digest { alg: DigestAlg::Blake3, value: h.finalize().as_bytes().to_vec() }
    }
    /// The algorithm.
    pub fn alg(&self) -> DigestAlg {
        self.alg
    }
    /// The raw digest bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg.name(), hex::encode(&self.value))
    }
}
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}
impl FromStr for Digest {
    type Err = Error;
    /// Parses `alg:hex` with `alg` one of `sha256`, `sha512`, `blake3`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidField { field: "digest".into(), reason };
        let (alg, hexpart) = s.split_once(':').ok_or_else(|| bad(format!("`{s}` is not `alg:hex`")))?;
        let alg = match alg {
            "sha256" => DigestAlg::Sha256,
            "sha512" => DigestAlg::Sha512,
            "blake3" => DigestAlg::Blake3,
            other => return Err(bad(format!("unknown digest algorithm `{other}` (sha256, sha512, blake3)"))),
        };
        if hexpart.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("digest hex must be lowercase".into()));
        }
        let value = hex::decode(hexpart).map_err(|e| bad(format!("bad hex: {e}")))?;
        Digest::new(alg, value)
    }
}
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Risk tier of a change, as in the brief's policy table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// T0 low: copy, comments, non-production scripts.
    T0,
    /// T1 product: UI, non-critical endpoints, flags.
    T1,
    /// T2 sensitive: auth, billing, PII, permissions.
    T2,
    /// T3 systemic: migrations, crypto, infrastructure, hotfixes.
    T3,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parses_offsets_and_dates() {
        let t: Timestamp = "2026-05-21T14:14:34-04:00".parse().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-05-21T18:14:34Z");
        let d: Timestamp = "2026-01-02".parse().unwrap();
        assert_eq!(d.to_rfc3339(), "2026-01-02T00:00:00Z");
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!("2013-12-03 17:23:34".parse::<Timestamp>().is_err(), "no offset: refused, not truncated");
        assert!("2013-12-03T17:23:34".parse::<Timestamp>().is_err());
    }

    #[test]
    fn identity_matching_uses_email() {
        let a = Identity::new("arewm <AREWM@users.noreply.github.com>").unwrap();
        let b = Identity::new("Andrew McNamara <arewm@users.noreply.github.com>").unwrap();
        assert!(a.same_person(&b));
        assert!(Identity::new("dependabot[bot] <x@y>").unwrap().is_automation());
        assert!(!a.is_automation());
    }

    #[test]
    fn checked_strings_reject_bad_input() {
        assert!(CommitId::new("abc").is_err());
        assert!(CommitId::new("D98C09F13137FBB6EC27BC5B7AA77C418605431A").is_err());
        assert!(RepoName::new("noslash").is_err());
        assert!(RepoName::new("a/../b").is_err());
        assert!(RepoName::new("group/sub/proj").is_ok());
        assert!(Token::new("has space").is_err());
        assert!("sha256:00".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
    }
}
