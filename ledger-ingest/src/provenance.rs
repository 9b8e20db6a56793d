//! Mapping an `.ai/provenance.json` file (the brief's AI provenance format: tool, model,
//! session_id, prompt_summary, reviewer, risk_area, verification) to a `session` record linked
//! to the change it belongs to.
//!
//! The record keeps the file's BLAKE3 content digest (`source.payload.digest`, format
//! `ai-provenance-json`), which is also how a re-ingest of the same file is recognised.

use serde::Deserialize;

use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{Body, Link, Record, Rel, Session, Source};
use ledger_core::subject::Subject;
use ledger_core::types::{Digest, Identity, Timestamp, Token};
use ledger_core::{Error, Result};

/// The `source.payload.format` of records made from provenance files.
pub const FORMAT: &str = "ai-provenance-json";

/// The file's shape. Unknown fields are refused.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ProvenanceFile {
    tool: String,
    model: Option<String>,
    session_id: String,
    prompt_summary: Option<String>,
    reviewer: Option<String>,
    risk_area: Option<String>,
    #[serde(default)]
    verification: Option<StringOrList>,
    /// Digest of the prompt transcript, `alg:hex`.
    prompt_digest: Option<String>,
    /// When the session happened (RFC 3339); default: the caller's `now`.
    time: Option<String>,
}

/// `verification` is one string or a list of them.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

fn invalid(field: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidField { field: field.to_string(), reason: e.to_string() }
}

/// Maps the provenance file `payload` to a `session` record linked to `change` (a pull
/// request, or a repository-qualified commit for a change without one), at the file's `time`
/// or else `now`. The actor is `ai:<tool>`; the tool name is normalised
/// ([`ledger_core::ai::ai_tool_name`] for known tools, else lower case with `-` for spaces).
///
/// # Errors
/// [`Error::InvalidField`] naming the field (as a path into the file, e.g. `verification`) that
/// is malformed, unknown, missing or invalid, or `change` if it is neither a pull request nor a
/// repository-qualified commit.
pub fn map(payload: &[u8], change: &Subject, now: Timestamp) -> Result<Record> {
    let p: ProvenanceFile = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(payload))
        .map_err(|e| invalid(&e.path().to_string(), e.inner()))?;
    if !matches!(change, Subject::Change { .. } | Subject::Commit { repo: Some(_), .. }) {
        return Err(invalid("change", "must be pr:owner/repo#N or git:owner/repo@<sha>"));
    }
    let tool_raw = p.tool.trim();
    let tool = ledger_core::ai::ai_tool_name(tool_raw)
        .map(str::to_string)
        .unwrap_or_else(|| tool_raw.to_ascii_lowercase().replace([' ', '/'], "-"));
    let time = match &p.time {
        Some(t) => t.parse::<Timestamp>().map_err(|e| invalid("time", e))?,
        None => now,
    };
    let session = Session {
        tool: Token::new(tool).map_err(|e| invalid("tool", e))?,
        model: p.model,
        session_id: Token::new(p.session_id).map_err(|e| invalid("session_id", e))?,
        prompt_digest: p
            .prompt_digest
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| invalid("prompt_digest", e))?,
        summary: p.prompt_summary,
        context: vec![],
        declared_reviewer: p.reviewer.map(Identity::new).transpose().map_err(|e| invalid("reviewer", e))?,
        risk_area: p.risk_area,
        verification: match p.verification {
            Some(StringOrList::One(s)) => vec![s],
            Some(StringOrList::Many(v)) => v,
            None => vec![],
        },
        source: Some(Source::payload(FORMAT, Digest::blake3_of(payload))),
    };
    let actor = Identity::new(format!("ai:{}", session.tool)).map_err(|e| invalid("tool", e))?;
    Ok(Record {
        v: FORMAT_VERSION,
        time,
        actor,
        links: vec![Link { rel: Rel::Change, target: change.clone() }],
        body: Body::Session(session),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> Subject {
        "pr:o/r#5".parse().unwrap()
    }

    #[test]
    fn a_file_maps_to_a_session_linked_to_its_change() {
        let file = br#"{"tool": "Claude Code", "model": "claude-x", "session_id": "s-1",
            "verification": "unit tests", "time": "2026-11-01T10:00:00Z"}"#;
        let r = map(file, &change(), Timestamp(0)).unwrap();
        let Body::Session(s) = &r.body else { panic!("not a session: {r:?}") };
        assert_eq!(s.verification, vec!["unit tests".to_string()]);
        assert_eq!(r.links, vec![Link { rel: Rel::Change, target: change() }]);
        assert_eq!(r.actor.as_str(), format!("ai:{}", s.tool));
        assert_eq!(r.time, "2026-11-01T10:00:00Z".parse().unwrap());
        // The same bytes give the same record: a re-ingest is recognised.
        assert_eq!(map(file, &change(), Timestamp(0)).unwrap(), r);
    }

    #[test]
    fn bad_files_name_the_field() {
        for (file, field) in [
            (&br#"{"tool": 3, "session_id": "s"}"#[..], "tool"),
            (br#"{"tool": "t", "session_id": "s", "extra": 1}"#, "extra"),
            (br#"{"tool": "t", "session_id": "s", "time": "yesterday"}"#, "time"),
        ] {
            let e = map(file, &change(), Timestamp(0)).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let commit: Subject = "git:0123456789012345678901234567890123456789".parse().unwrap();
        let e = map(br#"{"tool": "t", "session_id": "s"}"#, &commit, Timestamp(0)).unwrap_err();
        assert!(e.to_string().contains("change"), "{e}");
    }
}
