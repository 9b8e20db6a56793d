//! The record model: one typed body per record kind, plus event time, actor and links.
//!
//! Records are what signers sign. Their bytes are canonical CBOR ([`crate::encoding`]); the
//! layout is written down in `docs/FORMAT.md`. There are no free-form maps in signed data:
//! every body is a struct with a fixed set of fields.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::subject::Subject;
use crate::types::{CommitId, Identity, RepoName, Timestamp};

mod change;
mod release;

pub use change::*;
pub use release::*;

/// A signed statement about one step of a software change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version, [`crate::domain::FORMAT_VERSION`].
    pub v: u8,
    /// When the event happened, as claimed by the record's author.
    pub time: Timestamp,
    /// The human or bot the record is about (not the signer).
    pub actor: Identity,
    /// Typed links to other records or external subjects.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The kind-specific body.
    pub body: Body,
}

impl Record {
    /// The record kind, from its body.
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// Every subject this record mentions: link targets and subjects named in the body.
    /// Commit subjects appear both repository-qualified and bare (`git:<sha>`), so that a
    /// lookup by sha alone finds them. Sorted, without duplicates.
    pub fn subjects(&self) -> Vec<Subject> {
        let mut out: Vec<Subject> = self.links.iter().map(|l| l.target.clone()).collect();
        self.body.push_subjects(&mut out);
        let bare: Vec<Subject> = out.iter().filter_map(Subject::bare_commit).collect();
        out.extend(bare);
        out.sort();
        out.dedup();
        out
    }

    /// Free-text fields, by name, for the secret scan ([`crate::secrets`]).
    pub fn text_fields(&self) -> Vec<(String, &str)> {
        let mut out = vec![("actor".to_string(), self.actor.as_str())];
        self.body.push_text(&mut out);
        out
    }
}

/// How a link relates the record to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rel {
    /// The change (PR/MR) this record belongs to.
    Change,
    /// A commit this record is about.
    Commit,
    /// The AI session that produced (part of) this change.
    Session,
    /// The deployment this record is about.
    Deployment,
    /// The deployment(s) or change(s) that caused an incident, from an explicit reference.
    CausedBy,
    /// A cause inferred from timing alone, not from an explicit reference.
    CausedByInferred,
    /// A deployment this deployment rolls back.
    RollbackOf,
    /// An earlier record this one replaces.
    Supersedes,
    /// An input considered by a gate decision.
    Input,
}

/// A typed link from a record to a subject.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// How the record relates to the target.
    pub rel: Rel,
    /// What it links to.
    pub target: Subject,
}

macro_rules! kinds {
    ($($variant:ident($body:ident) = $name:literal, code $code:literal),+ $(,)?) => {
        /// The kind of a record.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Kind { $(#[doc = concat!("`", $name, "` record.")] $variant),+ }

        impl Kind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];
            /// The kind's name as used in CBOR, JSON and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name),+ }
            }
            /// The kind's one-byte code in the storage layout (the `k` index key). Part of the
            /// on-disk format: a code, once given, never changes or moves to another kind
            /// (docs/FORMAT.md, "Kind codes"; pinned by a test).
            pub fn code(self) -> u8 {
                match self { $(Kind::$variant => $code),+ }
            }
            /// The kind with this storage code, if any.
            pub fn from_code(code: u8) -> Option<Kind> {
                match code { $($code => Some(Kind::$variant),)+ _ => None }
            }
        }

        impl FromStr for Kind {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($name => Ok(Kind::$variant),)+
                    other => Err(Error::InvalidField {
                        field: "kind".into(),
                        reason: format!("unknown record kind `{other}`; expected one of: {}",
                            Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")),
                    }),
                }
            }
        }

        /// The body of a record: one variant per kind. Encoded as a one-entry map
        /// `{ kind-name: body }`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Body { $(#[doc = concat!("A `", $name, "` body.")] $variant($body)),+ }

        impl Body {
            /// The record kind of this body.
            pub fn kind(&self) -> Kind {
                match self { $(Body::$variant(_) => Kind::$variant),+ }
            }
            fn push_subjects(&self, out: &mut Vec<Subject>) {
                match self { $(Body::$variant(b) => b.push_subjects(out)),+ }
            }
            fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
                match self { $(Body::$variant(b) => b.push_text(out)),+ }
            }
            /// Parses a JSON body of the given kind, rejecting unknown fields.
            ///
            /// # Errors
            /// A message naming the offending field's path (`commits[2].sha: invalid ...`).
            pub fn from_json(kind: Kind, value: serde_json::Value) -> std::result::Result<Body, String> {
                match kind {
                    $(Kind::$variant => json_body::<$body>(value).map(Body::$variant),)+
                }
            }
        }
    };
}

fn json_body<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

// The codes are the storage layout's (docs/FORMAT.md): append new kinds with new codes.
kinds! {
    Session(Session) = "session", code 0,
    Model(Model) = "model", code 1,
    Change(Change) = "change", code 2,
    Review(Review) = "review", code 3,
    Evidence(Evidence) = "evidence", code 4,
    Exception(Exception) = "exception", code 5,
    Merge(Merge) = "merge", code 6,
    Deployment(Deployment) = "deployment", code 7,
    Incident(Incident) = "incident", code 8,
    Policy(Policy) = "policy", code 9,
    Gate(Gate) = "gate", code 10,
    Key(KeyBody) = "key", code 11,
    Codeowners(Codeowners) = "codeowners", code 12,
}

impl Body {
    /// Where the record's content came from, for the kinds that keep it.
    pub fn source(&self) -> Option<&Source> {
        match self {
            Body::Session(b) => b.source.as_ref(),
            Body::Change(b) => b.source.as_ref(),
            Body::Review(b) => b.source.as_ref(),
            Body::Evidence(b) => b.source.as_ref(),
            Body::Merge(b) => b.source.as_ref(),
            Body::Deployment(b) => b.source.as_ref(),
            Body::Incident(b) => b.source.as_ref(),
            Body::Model(_)
            | Body::Exception(_)
            | Body::Policy(_)
            | Body::Gate(_)
            | Body::Key(_)
            | Body::Codeowners(_) => None,
        }
    }

    /// [`Body::source`], to change (a recorder marks how a payload reached it).
    pub fn source_mut(&mut self) -> Option<&mut Source> {
        match self {
            Body::Session(b) => b.source.as_mut(),
            Body::Change(b) => b.source.as_mut(),
            Body::Review(b) => b.source.as_mut(),
            Body::Evidence(b) => b.source.as_mut(),
            Body::Merge(b) => b.source.as_mut(),
            Body::Deployment(b) => b.source.as_mut(),
            Body::Incident(b) => b.source.as_mut(),
            Body::Model(_)
            | Body::Exception(_)
            | Body::Policy(_)
            | Body::Gate(_)
            | Body::Key(_)
            | Body::Codeowners(_) => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a body the ledger needs generically: subjects for the index and free text for
/// the secret scan.
pub(crate) trait BodyParts {
    fn push_subjects(&self, out: &mut Vec<Subject>);
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>);
}

pub(crate) fn text<'a>(out: &mut Vec<(String, &'a str)>, name: &str, v: &'a str) {
    out.push((format!("body.{name}"), v));
}
pub(crate) fn opt_text<'a>(out: &mut Vec<(String, &'a str)>, name: &str, v: &'a Option<String>) {
    if let Some(v) = v {
        text(out, name, v);
    }
}
pub(crate) fn commit(repo: Option<&RepoName>, sha: &CommitId) -> Subject {
    Subject::Commit { repo: repo.cloned(), sha: sha.clone() }
}
