//! Subjects: strings that name things outside the ledger, as the brief fixes them.
//!
//! | subject | form |
//! |---|---|
//! | commit | `git:<owner/repo>@<sha>` or bare `git:<sha>` |
//! | change | `pr:<owner/repo>#<number>` |
//! | deployment | `deploy:<service>/<environment>/<id>` |
//! | incident | `incident:<system>/<id>` |
//! | session | `session:<tool>/<session id>` |
//! | entry | `entry:<64 hex>` |

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::types::{CommitId, EntryHash, RepoName, Token};

/// A thing a record is about, addressed by its canonical subject string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// A git commit, optionally qualified by repository.
    Commit {
        /// The repository, when known.
        repo: Option<RepoName>,
        /// The commit id.
        sha: CommitId,
    },
    /// A change (pull request / merge request).
    Change {
        /// The repository.
        repo: RepoName,
        /// The PR/MR number.
        number: u64,
    },
    /// A deployment.
    Deployment {
        /// Service name (no `/`).
        service: Token,
        /// Environment name (no `/`).
        environment: Token,
        /// Deployment id (may contain `/`).
        id: Token,
    },
    /// An incident.
    Incident {
        /// Incident system (no `/`), e.g. `pagerduty`.
        system: Token,
        /// Incident id in that system.
        id: Token,
    },
    /// An AI prompt session.
    Session {
        /// Tool name (no `/`), e.g. `codex`.
        tool: Token,
        /// Session id in that tool.
        id: Token,
    },
    /// An entry of this ledger.
    Entry(EntryHash),
}

impl Subject {
    /// The bare `git:<sha>` form of a commit subject (matches the commit in any repository).
    pub fn bare_commit(&self) -> Option<Subject> {
        match self {
            Subject::Commit { sha, .. } => Some(Subject::Commit { repo: None, sha: sha.clone() }),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Commit { repo: Some(r), sha } => write!(f, "git:{r}@{sha}"),
            Subject::Commit { repo: None, sha } => write!(f, "git:{sha}"),
            Subject::Change { repo, number } => write!(f, "pr:{repo}#{number}"),
            Subject::Deployment { service, environment, id } => {
                write!(f, "deploy:{service}/{environment}/{id}")
            }
            Subject::Incident { system, id } => write!(f, "incident:{system}/{id}"),
            Subject::Session { tool, id } => write!(f, "session:{tool}/{id}"),
            Subject::Entry(h) => write!(f, "entry:{h}"),
        }
    }
}

fn no_slash(s: &str, what: &str) -> Result<Token> {
    if s.contains('/') {
        return Err(bad(format!("{what} `{s}` must not contain `/`")));
    }
    Token::new(s).map_err(|e| bad(format!("{what}: {e}")))
}

fn bad(reason: String) -> Error {
    Error::InvalidField { field: "subject".into(), reason }
}

impl FromStr for Subject {
    type Err = Error;
    /// Parses the canonical subject strings listed in the module docs.
    fn from_str(s: &str) -> Result<Self> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| bad(format!("`{s}` has no scheme (git:, pr:, deploy:, incident:, session:, entry:)")))?;
        match scheme {
            "git" => match rest.rsplit_once('@') {
                Some((repo, sha)) => Ok(Subject::Commit { repo: Some(RepoName::new(repo)?), sha: CommitId::new(sha)? }),
                None => Ok(Subject::Commit { repo: None, sha: CommitId::new(rest)? }),
            },
            "pr" => {
                let (repo, num) =
                    rest.rsplit_once('#').ok_or_else(|| bad(format!("`{s}`: expected pr:<owner/repo>#<number>")))?;
                let number = num.parse::<u64>().map_err(|_| bad(format!("`{s}`: `{num}` is not a PR number")))?;
                Ok(Subject::Change { repo: RepoName::new(repo)?, number })
            }
            "deploy" => {
                let mut it = rest.splitn(3, '/');
                match (it.next(), it.next(), it.next()) {
                    (Some(svc), Some(env), Some(id)) => Ok(Subject::Deployment {
                        service: no_slash(svc, "service")?,
                        environment: no_slash(env, "environment")?,
                        id: Token::new(id)?,
                    }),
                    _ => Err(bad(format!("`{s}`: expected deploy:<service>/<environment>/<id>"))),
                }
            }
            "incident" | "session" => {
                let (a, b) =
                    rest.split_once('/').ok_or_else(|| bad(format!("`{s}`: expected {scheme}:<system>/<id>")))?;
                let (a, b) = (no_slash(a, "system or tool")?, Token::new(b)?);
                Ok(if scheme == "incident" {
                    Subject::Incident { system: a, id: b }
                } else {
                    Subject::Session { tool: a, id: b }
                })
            }
            "entry" => Ok(Subject::Entry(EntryHash::from_hex(rest)?)),
            other => Err(bad(format!("unknown subject scheme `{other}:`"))),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, ok: bool) {
        let parsed = input.parse::<Subject>();
        assert_eq!(parsed.is_ok(), ok, "{input}: {parsed:?}");
        if let Ok(s) = parsed {
            assert_eq!(s.to_string(), input, "round trip");
        }
    }

    #[test]
    fn subjects_round_trip_and_reject_bad_forms() {
        check("git:in-toto/attestation@d98c09f13137fbb6ec27bc5b7aa77c418605431a", true);
        check("git:d98c09f13137fbb6ec27bc5b7aa77c418605431a", true);
        check("git:d98c09f", false);
        check("pr:in-toto/attestation#555", true);
        check("pr:in-toto/attestation#x", false);
        check("pr:attestation#5", false);
        check("deploy:api/prod/2026-11-25.1", true);
        check("deploy:api/prod", false);
        check("incident:pagerduty/PT4KHLK", true);
        check("session:codex/abc-123", true);
        check("session:co dex/abc", false);
        check(&format!("entry:{}", "ab".repeat(32)), true);
        check("http://example.com", false);
        check("nothing", false);
    }
}
