//! Reading webhook payloads: typed accessors over a JSON document, shared by the GitHub and
//! GitLab mappings. A [`Platform`] says what differs: the identity prefix, where the
//! repository name is, and how times are written.

use std::marker::PhantomData;

use serde_json::Value;

use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{Body, Link, Record, Rel, Source};
use ledger_core::subject::Subject;
use ledger_core::types::{CommitId, Identity, RepoName, Timestamp};
use ledger_core::{Error, Result};

/// What differs between webhook platforms.
pub(crate) trait Platform {
    /// Identity prefix, e.g. `github`.
    const PREFIX: &'static str;
    /// JSON pointer to the repository's `owner/name`.
    const REPO: &'static str;
    /// Parses a time as the platform writes it.
    fn parse_time(s: &str) -> Result<Timestamp>;
}

/// The error for a field a mapping needs and the payload lacks.
pub(crate) fn missing(field: &str) -> Error {
    Error::InvalidField { field: field.to_string(), reason: "missing or not the expected type in the payload".into() }
}

fn field_name(ptr: &str) -> String {
    ptr.trim_start_matches('/').replace('/', ".")
}

/// A payload being mapped: the document, its event name and the `source` its records keep.
pub(crate) struct Payload<'a, K> {
    pub(crate) v: &'a Value,
    pub(crate) event: &'a str,
    pub(crate) source: Source,
    platform: PhantomData<K>,
}

impl<'a, K: Platform> Payload<'a, K> {
    pub(crate) fn new(v: &'a Value, event: &'a str, source: Source) -> Self {
        Payload { v, event, source, platform: PhantomData }
    }
    pub(crate) fn get(&self, ptr: &str) -> Option<&'a Value> {
        self.v.pointer(ptr).filter(|x| !x.is_null())
    }
    pub(crate) fn str(&self, ptr: &str) -> Result<&'a str> {
        self.get(ptr).and_then(Value::as_str).ok_or_else(|| missing(&field_name(ptr)))
    }
    pub(crate) fn opt_str(&self, ptr: &str) -> Option<&'a str> {
        self.get(ptr).and_then(Value::as_str)
    }
    pub(crate) fn u64(&self, ptr: &str) -> Result<u64> {
        self.get(ptr).and_then(Value::as_u64).ok_or_else(|| missing(&field_name(ptr)))
    }
    pub(crate) fn time(&self, ptr: &str) -> Result<Timestamp> {
        K::parse_time(self.str(ptr)?)
    }
    pub(crate) fn login(&self, ptr: &str) -> Result<Identity> {
        Identity::new(format!("{}:{}", K::PREFIX, self.str(ptr)?))
    }
    pub(crate) fn sha(&self, ptr: &str) -> Result<CommitId> {
        CommitId::new(self.str(ptr)?.trim().to_ascii_lowercase())
    }
    pub(crate) fn repo(&self) -> Result<RepoName> {
        RepoName::new(self.str(K::REPO)?)
    }
    pub(crate) fn record(&self, time: Timestamp, actor: Identity, links: Vec<Link>, body: Body) -> Record {
        Record { v: FORMAT_VERSION, time, actor, links, body }
    }
    pub(crate) fn change_link(&self, number: u64) -> Result<Link> {
        Ok(Link { rel: Rel::Change, target: Subject::Change { repo: self.repo()?, number } })
    }
}
