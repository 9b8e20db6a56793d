//! Mapping software attestations to `evidence` records: in-toto Statements (v0.1, v1), DSSE
//! envelopes, `.intoto.jsonl` files (one envelope per line), Sigstore bundles (v0.1–v0.3)
//! carrying a DSSE envelope, and npm attestation sets (`{"attestations": [{bundle}…]}`). SLSA Provenance (v0.2, v1) and SLSA Verification Summaries (VSA
//! v1) are understood; other predicate types are recorded by type.
//!
//! Evidence is bound to a commit: the source commit the attestation names (SLSA v1
//! `resolvedDependencies[].digest.gitCommit`, v0.2 `materials[].digest.sha1`, with a
//! `git+https://host/owner/repo` URI), or one the caller gives. One evidence record is made per
//! attested subject digest (`artifact`). Each keeps the predicate type and the SHA-256 of the
//! envelope bytes. DSSE signatures are checked when the caller gives a public key (ECDSA P-256
//! or Ed25519, SPKI PEM); a signature that does not verify is an error; without a key the
//! evidence says the signature was not verified.

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::Mapped;
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{Body, CheckKind, CheckResult, Evidence, Record, SignatureCheck, Source};
use ledger_core::types::{CommitId, Digest, DigestAlg, Identity, RepoName, Timestamp};
use ledger_core::{Error, Result};

/// A public key that may have signed DSSE envelopes.
#[derive(Clone, Debug)]
pub enum AttestationKey {
    /// ECDSA P-256 with SHA-256 (Sigstore, slsa-github-generator, most KMS keys).
    P256(p256::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl AttestationKey {
    /// Parses an SPKI PEM public key (P-256 or Ed25519).
    ///
    /// # Errors
    /// [`Error::InvalidField`] if it is neither.
    pub fn from_pem(pem: &str) -> Result<Self> {
        use p256::pkcs8::DecodePublicKey as _;
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(AttestationKey::P256(k));
        }
        if let Ok(k) = <ed25519_dalek::VerifyingKey as ed25519_dalek::pkcs8::DecodePublicKey>::from_public_key_pem(pem)
        {
            return Ok(AttestationKey::Ed25519(k));
        }
        Err(Error::InvalidField {
            field: "key".into(),
            reason: "not an ECDSA P-256 or Ed25519 SPKI PEM public key".into(),
        })
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            AttestationKey::P256(k) => {
                use p256::ecdsa::signature::Verifier as _;
                let Ok(s) = p256::ecdsa::Signature::from_der(sig).or_else(|_| p256::ecdsa::Signature::from_slice(sig))
                else {
                    return false;
                };
                k.verify(message, &s).is_ok()
            }
            AttestationKey::Ed25519(k) => {
                let Ok(b) = <[u8; 64]>::try_from(sig) else { return false };
                k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&b)).is_ok()
            }
        }
    }
}

/// The DSSE pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    m.extend_from_slice(payload);
    m
}

fn bad(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidField { field: field.to_string(), reason: reason.into() }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .ok()
}

/// `owner/repo` from `git+https://github.com/owner/repo@refs/...` (or without `git+`/ref/`.git`).
fn repo_from_uri(uri: &str) -> Option<RepoName> {
    let u = uri.strip_prefix("git+").unwrap_or(uri);
    let rest = u.split_once("://").map(|(_, r)| r)?;
    let path = rest.split_once('/')?.1;
    let path = path.split('@').next()?.trim_end_matches(".git").trim_end_matches('/');
    RepoName::new(path).ok()
}

/// The source (repo, commit) an in-toto statement's SLSA predicate names, if any.
fn source_commit(statement: &Value) -> Option<(RepoName, CommitId)> {
    let p = statement.get("predicate")?;
    let candidates: Vec<&Value> = p
        .pointer("/buildDefinition/resolvedDependencies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(p.get("materials").and_then(Value::as_array).into_iter().flatten())
        .collect();
    let from_material = candidates.into_iter().find_map(|d| {
        let repo = repo_from_uri(d.get("uri")?.as_str()?)?;
        let digest = d.get("digest")?;
        let sha = digest.get("gitCommit").or_else(|| digest.get("sha1")).and_then(Value::as_str)?;
        Some((repo, CommitId::new(sha.to_ascii_lowercase()).ok()?))
    });
    from_material.or_else(|| source_revision(statement))
}

/// A source attestation (a SLSA Source VSA) is about a revision itself: its subject carries
/// the commit (`digest.gitCommit`), and `resourceUri` (or the subject's own URI) the
/// repository.
fn source_revision(statement: &Value) -> Option<(RepoName, CommitId)> {
    statement.get("subject")?.as_array()?.iter().find_map(|s| {
        let sha = s.pointer("/digest/gitCommit").and_then(Value::as_str)?;
        let repo =
            statement.pointer("/predicate/resourceUri").and_then(Value::as_str).and_then(repo_from_uri).or_else(
                || {
                    let uri = s.get("uri")?.as_str()?;
                    repo_from_uri(uri.split("/commit/").next()?)
                },
            )?;
        Some((repo, CommitId::new(sha.to_ascii_lowercase()).ok()?))
    })
}

/// One parsed attestation: the statement and what is known of its envelope.
struct Parsed {
    statement: Value,
    format: &'static str,
    envelope: Vec<u8>,
    signature: Option<SignatureCheck>,
}

fn parse_envelope(env: &Value, raw: &[u8], format: &'static str, key: Option<&AttestationKey>) -> Result<Parsed> {
    let payload_type = env.get("payloadType").and_then(Value::as_str).ok_or_else(|| bad("payloadType", "missing"))?;
    let payload = env
        .get("payload")
        .and_then(Value::as_str)
        .and_then(b64)
        .ok_or_else(|| bad("payload", "missing or not base64"))?;
    let sigs: Vec<Vec<u8>> = env
        .get("signatures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("sig").and_then(Value::as_str).and_then(b64)).collect())
        .unwrap_or_default();
    let signature = match key {
        Some(k) => {
            let msg = pae(payload_type, &payload);
            if !sigs.iter().any(|s| k.verify(&msg, s)) {
                return Err(bad("signatures", "no DSSE signature verifies with the given key"));
            }
            Some(SignatureCheck::Verified)
        }
        None if sigs.is_empty() => None,
        None => Some(SignatureCheck::NotVerified),
    };
    let statement: Value =
        serde_json::from_slice(&payload).map_err(|e| bad("payload", format!("not an in-toto statement: {e}")))?;
    Ok(Parsed { statement, format, envelope: raw.to_vec(), signature })
}

fn parse_one(v: &Value, raw: &[u8], key: Option<&AttestationKey>) -> Result<Option<Parsed>> {
    if let Some(mt) = v.get("mediaType").and_then(Value::as_str) {
        if !mt.contains("sigstore.bundle") {
            return Ok(None); // e.g. a trusted root: not an attestation
        }
        return match v.get("dsseEnvelope") {
            Some(env) => parse_envelope(env, raw, "sigstore-bundle", key).map(Some),
            None => Ok(None), // a bundle over a plain artifact signature carries no statement
        };
    }
    if v.get("payloadType").is_some() {
        return parse_envelope(v, raw, "dsse", key).map(Some);
    }
    if v.get("_type").and_then(Value::as_str).is_some_and(|t| t.starts_with("https://in-toto.io/Statement")) {
        return Ok(Some(Parsed {
            statement: v.clone(),
            format: "in-toto-statement",
            envelope: raw.to_vec(),
            signature: None,
        }));
    }
    Ok(None)
}

fn short_predicate(pt: &str) -> String {
    if pt.starts_with("https://slsa.dev/provenance/") {
        format!("slsa-provenance {}", pt.trim_start_matches("https://slsa.dev/provenance/"))
    } else if pt.starts_with("https://slsa.dev/verification_summary/") {
        format!("slsa-vsa {}", pt.trim_start_matches("https://slsa.dev/verification_summary/"))
    } else {
        pt.to_string()
    }
}

/// Maps an attestation file. `commit` binds evidence to a commit when the attestation names
/// none; `now` is used when the attestation carries no time.
///
/// # Errors
/// [`Error::Malformed`] for text that is neither JSON nor JSON lines; [`Error::InvalidField`]
/// for a malformed envelope or a signature that does not verify with `key`.
pub fn map(
    bytes: &[u8],
    key: Option<&AttestationKey>,
    commit: Option<(RepoName, CommitId)>,
    now: Timestamp,
) -> Result<Mapped> {
    // Envelope digests cover a document's bytes without surrounding whitespace (a one-line
    // `.intoto.jsonl` file digests the same as that line).
    let trim = |b: &[u8]| -> Vec<u8> {
        let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
        let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
        b[start..end].to_vec()
    };
    let docs: Vec<(Value, Vec<u8>)> = match serde_json::from_slice::<Value>(bytes) {
        // An npm attestation set: `{"attestations": [{"predicateType", "bundle"}, …]}`. Each
        // bundle keeps the digest of the whole file (its exact bytes are not separate).
        Ok(v) if v.get("attestations").is_some_and(Value::is_array) => v["attestations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("bundle").cloned())
            .map(|b| (b, trim(bytes)))
            .collect(),
        Ok(v) => vec![(v, trim(bytes))],
        Err(_) => {
            let mut out = vec![];
            for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v = serde_json::from_slice(line)
                    .map_err(|e| Error::Malformed { what: "attestation", detail: format!("line {}: {e}", i + 1) })?;
                out.push((v, trim(line)));
            }
            out
        }
    };
    let mut records = vec![];
    let mut why_not = vec![];
    for (v, raw) in &docs {
        let Some(p) = parse_one(v, raw, key)? else {
            why_not.push(if v.get("provenance_summary").is_some() {
                "a Google Cloud Build provenance summary (gcloud's own format) is not supported yet".to_string()
            } else if v.get("mediaType").and_then(Value::as_str).is_some_and(|m| m.contains("trustedroot")) {
                "a Sigstore trusted root, not an attestation".to_string()
            } else if v.get("messageSignature").is_some() {
                "a Sigstore bundle over a plain artifact signature carries no in-toto statement".to_string()
            } else {
                "not an attestation (no in-toto statement)".to_string()
            });
            continue;
        };
        let st = &p.statement;
        let pt = st.get("predicateType").and_then(Value::as_str).unwrap_or("unknown");
        let Some((repo, sha)) = source_commit(st).or_else(|| commit.clone()) else {
            why_not.push(format!("{} names no source commit (pass --commit git:owner/repo@sha)", short_predicate(pt)));
            continue;
        };
        let result = match st.pointer("/predicate/verificationResult").and_then(Value::as_str) {
            Some("FAILED") => CheckResult::Fail,
            _ => CheckResult::Pass,
        };
        // The builder (SLSA provenance) or, for a verification summary, the verifier: whose word
        // the attestation is, and what `why` checks against the trusted builders.
        let who = st
            .pointer("/predicate/runDetails/builder/id")
            .or_else(|| st.pointer("/predicate/builder/id"))
            .or_else(|| st.pointer("/predicate/verifier/id"))
            .and_then(Value::as_str);
        let check = match who {
            Some(w) => format!("{} by {w}", short_predicate(pt)),
            None => short_predicate(pt),
        };
        let time = st
            .pointer("/predicate/runDetails/metadata/finishedOn")
            .or_else(|| st.pointer("/predicate/metadata/buildFinishedOn"))
            .or_else(|| st.pointer("/predicate/timeVerified"))
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(now);
        let envelope_digest = Digest::new(DigestAlg::Sha256, Sha256::digest(&p.envelope).to_vec())?;
        let subjects = st.get("subject").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut artifacts: Vec<Option<Digest>> = subjects
            .iter()
            .filter_map(|s| {
                let d = s.get("digest")?;
                let (alg, hexv) =
                    match (d.get("sha256").and_then(Value::as_str), d.get("sha512").and_then(Value::as_str)) {
                        (Some(h), _) => (DigestAlg::Sha256, h),
                        (None, Some(h)) => (DigestAlg::Sha512, h),
                        _ => return None,
                    };
                Digest::new(alg, hex::decode(hexv.to_ascii_lowercase()).ok()?).ok().map(Some)
            })
            .collect();
        if artifacts.is_empty() {
            artifacts.push(None);
        }
        for artifact in artifacts {
            records.push(Record {
                v: FORMAT_VERSION,
                time,
                actor: Identity::new(
                    format!("attestation:{}", who.unwrap_or("unknown")).chars().take(500).collect::<String>(),
                )?,
                links: vec![],
                body: Body::Evidence(Evidence {
                    repo: repo.clone(),
                    commit: sha.clone(),
                    check: check.chars().take(500).collect(),
                    check_kind: CheckKind::Provenance,
                    result,
                    artifact,
                    predicate_type: Some(pt.to_string()),
                    url: None,
                    signature: p.signature,
                    source: Some(Source::payload(p.format, envelope_digest.clone())),
                    builder: who.map(|w| w.chars().take(500).collect()),
                }),
            });
        }
    }
    if records.is_empty() {
        return Ok(Mapped::Skipped(why_not.join("; ")));
    }
    Ok(Mapped::Records(records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn repos_from_source_uris() {
        let r = |u: &str| repo_from_uri(u).map(|r| r.to_string());
        assert_eq!(
            r("git+https://github.com/sigstore/sigstore-js@refs/heads/main").as_deref(),
            Some("sigstore/sigstore-js")
        );
        assert_eq!(r("git+https://github.com/github/slsa-provenance").as_deref(), Some("github/slsa-provenance"));
        assert_eq!(r("https://gitlab.com/g/s/p.git").as_deref(), Some("g/s/p"));
    }
}
