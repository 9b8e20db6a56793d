//! The secret scan run on every record before it is signed or appended.
//!
//! Records are public to every auditor and can never be deleted, so a leaked token would be
//! permanent. Free-text fields are matched against well-known credential shapes; a match
//! refuses the record with an error naming the field and the pattern, never the secret.

use std::sync::OnceLock;

use regex::RegexSet;

use crate::error::{Error, Result};
use crate::record::Record;

const PATTERNS: &[(&str, &str)] = &[
    ("GitHub token", r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b"),
    ("GitHub fine-grained token", r"\bgithub_pat_[A-Za-z0-9_]{60,}"),
    ("GitLab token", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("AWS access key id", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("private key", r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----"),
    ("Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("OpenAI or Anthropic API key", r"\bsk-(proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{32,}"),
    ("Google API key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("Stripe live key", r"\b[rs]k_live_[0-9A-Za-z]{24,}"),
    ("JSON web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
];

fn set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        // The patterns are constants tested below; failing to compile them is a build bug.
        #[allow(clippy::expect_used)]
        RegexSet::new(PATTERNS.iter().map(|(_, p)| *p)).expect("secret patterns compile")
    })
}

/// Checks `text` for a secret; returns the pattern name of the first match.
pub fn find_secret(text: &str) -> Option<&'static str> {
    set().matches(text).iter().next().map(|i| PATTERNS[i].0)
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
}
