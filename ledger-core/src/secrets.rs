//! The secret scan run on every record before it is signed or appended.
//!
//! Records are public to every auditor and can never be deleted, so a leaked token would be
//! permanent. Free-text fields are matched against well-known credential shapes; a match
//! refuses the record with an error naming the field and the pattern, never the secret.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexSet};

use crate::error::{Error, Result};
use crate::record::Record;

/// Credential shapes, by the rule classes of gitleaks' default configuration: cloud keys,
/// tokens of code hosts, chat, payment and package services, private keys, JSON web tokens and
/// connection strings with a password. Each is specific enough that prose does not match.
const PATTERNS: &[(&str, &str)] = &[
    // Cloud keys.
    ("AWS access key id", r"\b(AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    (
        "AWS secret access key",
        r"(?i)aws.{0,20}(secret|private).{0,20}['\x22\s:=]+[A-Za-z0-9/+=]{40}([^A-Za-z0-9/+=]|$)",
    ),
    ("Google API key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("Google OAuth client secret", r"\bGOCSPX-[0-9A-Za-z_\-]{28}"),
    ("Azure storage account key", r"(?i)AccountKey=[A-Za-z0-9+/]{40,}={0,2}"),
    ("Azure shared access signature", r"(?i)\bsig=[A-Za-z0-9%+/]{40,}={0,2}"),
    ("Azure AD client secret", r"\b[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"),
    ("DigitalOcean token", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    ("HashiCorp Vault token", r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}"),
    ("Databricks token", r"\bdapi[a-f0-9]{32}(-\d)?\b"),
    // Code hosts, package registries, containers.
    ("GitHub token", r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b"),
    ("GitHub fine-grained token", r"\bgithub_pat_[A-Za-z0-9_]{60,}"),
    ("GitLab token", r"\bgl(pat|ptt|dt|rt|cbt|oas|soat|ft|imt|agent)-[A-Za-z0-9_\-]{20,}"),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("PyPI token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("Docker Hub token", r"\bdckr_pat_[A-Za-z0-9_\-]{27,}"),
    ("Hugging Face token", r"\bhf_[A-Za-z]{34}\b"),
    // Chat, mail, payment and AI services.
    ("Slack token", r"\bxox[abeprs]-[A-Za-z0-9-]{10,}"),
    ("Slack webhook", r"hooks\.slack\.com/(services|workflows)/[A-Za-z0-9+/]{20,}"),
    ("Discord bot token", r"\b[MN][A-Za-z\d]{23,25}\.[\w-]{6}\.[\w-]{27,38}"),
    ("Telegram bot token", r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}"),
    ("SendGrid key", r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"),
    ("Twilio key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("Mailgun key", r"\bkey-[0-9a-f]{32}\b"),
    ("Stripe key", r"\b(sk|rk)_(live|test)_[0-9A-Za-z]{24,}"),
    ("Shopify token", r"\bshp(at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    ("OpenAI or Anthropic API key", r"\bsk-(proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{32,}"),
    // Keys, tokens, connection strings.
    ("private key", r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY( BLOCK)?-----"),
    ("JSON web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ("connection string with a password", r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^/\s:@]{0,64}:[^/\s:@]{3,128}@[^\s/@]+"),
    ("connection string with a password", r"(?i)\b(password|pwd)=[^;\s]{6,};"),
];

/// A key = value pair whose name says "secret" (gitleaks' generic-api-key rule); counted as a
/// secret only when the value looks random (see [`looks_random`]), so that "token: none" or a
/// variable name passes.
const ASSIGNMENT: &str = r#"(?i)\b(api[_-]?key|apikey|secret|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|token|passw(or)?d|private[_-]?key)\b["']?\s*[:=]\s*["']?([A-Za-z0-9_\-+/=.~]{16,})"#;

/// High entropy (≥ 3.5 bits per character) and both letters and digits: what a generated
/// credential looks like.
fn looks_random(v: &[u8]) -> bool {
    let mut counts = [0u32; 256];
    for &b in v {
        counts[usize::from(b)] += 1;
    }
    let n = v.len() as f64;
    let entropy: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum();
    let digit = v.iter().any(u8::is_ascii_digit);
    let alpha = v.iter().any(u8::is_ascii_alphabetic);
    entropy >= 3.5 && digit && alpha
}

fn assignment() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // A constant tested below; failing to compile it is a build bug.
        #[allow(clippy::expect_used)]
        Regex::new(&format!("(?-u){ASSIGNMENT}")).expect("assignment pattern compiles")
    })
}

fn set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        // ASCII semantics (`(?-u)`, matching bytes): credentials are ASCII, and Unicode classes
        // and word boundaries would make the automaton of ~30 patterns too large for the lazy
        // DFA, which then falls back to a slower engine (hundreds of µs per record instead of
        // a few). The patterns are constants tested below; failing to compile them is a build
        // bug.
        #[allow(clippy::expect_used)]
        RegexSet::new(PATTERNS.iter().map(|(_, p)| format!("(?-u){p}"))).expect("secret patterns compile")
    })
}

/// Checks `text` for a secret; returns the pattern name of the first match.
pub fn find_secret(text: &str) -> Option<&'static str> {
    let text = text.as_bytes();
    if let Some(i) = set().matches(text).iter().next() {
        return Some(PATTERNS[i].0);
    }
    assignment()
        .captures_iter(text)
        .any(|c| c.get(3).is_some_and(|v| looks_random(v.as_bytes())))
        .then_some("secret assigned to a key")
}

/// Scans every free-text field of `record`.
///
/// # Errors
/// [`Error::SecretInField`] naming the first field that looks like it holds a secret.
pub fn scan(record: &Record) -> Result<()> {
    for (field, text) in record.text_fields() {
        if let Some(pattern) = find_secret(text) {
            return Err(Error::SecretInField { field, pattern });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_common_credentials_and_not_prose() {
        // Test values are built at run time so that no credential-shaped string sits in the
        // source (secret scanners would flag the repository).
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(find_secret(&format!("token {gh} here")), Some("GitHub token"));
        let aws = format!("AKIA{}", "ABCDEFGH23456789");
        assert_eq!(find_secret(&aws), Some("AWS access key id"));
        let pem = format!("-----BEGIN {}PRIVATE KEY-----", "OPENSSH ");
        assert_eq!(find_secret(&pem), Some("private key"));
        assert_eq!(find_secret("Merge pull request #555 from arewm/main"), None);
        assert_eq!(find_secret("sk-short"), None);
    }

    #[test]
    fn prose_urls_and_hashes_are_not_secrets() {
        for text in [
            "token: none",
            "password reset flow: require the old password",
            "api_key=YOUR_API_KEY_HERE",
            "secret = aaaaaaaaaaaaaaaaaaaaaaaa",
            "https://github.com/in-toto/attestation/pull/555",
            "https://user@example.com/repo.git",
            "git@github.com:org/repo.git",
            "postgres://localhost:5432/app",
            "http://127.0.0.1:8080/health",
            "d98c09f13137fbb6ec27bc5b7aa77c418605431a",
            "sha256:4d3c1e1e3f0c2f4b8b9a6f3b1d2c0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
            "https://slsa.dev/provenance/v1",
            "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.2.1",
        ] {
            assert_eq!(find_secret(text), None, "{text}");
        }
    }

    #[test]
    fn a_key_assigned_a_random_value_is_a_secret() {
        let v = format!("{}{}", "q8Zr2LmXv4Tn", "9Kp3Wd7Hs1Yb");
        assert_eq!(find_secret(&format!("client_secret: {v}")), Some("secret assigned to a key"));
        let url = format!("postgres://app:{}@db.internal/app", "hunter2x");
        assert_eq!(find_secret(&url), Some("connection string with a password"));
    }
}
