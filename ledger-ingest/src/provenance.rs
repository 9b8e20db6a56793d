//! Mapping an `.ai/provenance.json` file (the brief's AI provenance format: tool, model,
//! session_id, prompt_summary, reviewer, risk_area, verification; plus an optional `cost`,
//! `{"amount": 1.25, "currency": "USD"}`, for the AI spend metric) to a `session` record
//! linked to the change it belongs to.
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
    /// What the session cost: `{"amount": 1.25, "currency": "USD"}` (amount a number or a
    /// decimal string).
    cost: Option<serde_json::Value>,
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

/// A session's cost from provenance JSON: `{"amount": 1.25 | "1.25", "currency": "USD"}`.
///
/// # Errors
/// [`Error::InvalidField`] (field `cost`) for any other shape, a negative or non-numeric
/// amount, or a currency that is not three letters.
pub(crate) fn cost_of(v: &serde_json::Value) -> Result<ledger_core::record::Cost> {
    let shape = || invalid("cost", "expected {\"amount\": 1.25, \"currency\": \"USD\"}");
    let obj = v.as_object().ok_or_else(shape)?;
    if obj.keys().any(|k| k != "amount" && k != "currency") {
        return Err(shape());
    }
    let amount = match obj.get("amount") {
        Some(serde_json::Value::Number(n)) => n.as_f64().ok_or_else(shape)?,
        Some(serde_json::Value::String(s)) => {
            s.trim().parse::<f64>().map_err(|_| invalid("cost", format!("amount `{s}` is not a number")))?
        }
        _ => return Err(shape()),
    };
    let currency = obj.get("currency").and_then(serde_json::Value::as_str).ok_or_else(shape)?;
    ledger_core::record::Cost::from_decimal(amount, currency)
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
        cost: p.cost.as_ref().map(cost_of).transpose()?,
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
            (br#"{"tool": "t", "session_id": "s", "cost": 3}"#, "cost"),
            (br#"{"tool": "t", "session_id": "s", "cost": {"amount": "lots", "currency": "USD"}}"#, "cost"),
            (br#"{"tool": "t", "session_id": "s", "cost": {"amount": 1, "currency": "dollars"}}"#, "cost"),
            (br#"{"tool": "t", "session_id": "s", "cost": {"amount": 1, "currency": "USD", "per": "h"}}"#, "cost"),
        ] {
            let e = map(file, &change(), Timestamp(0)).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let commit: Subject = "git:0123456789012345678901234567890123456789".parse().unwrap();
        let e = map(br#"{"tool": "t", "session_id": "s"}"#, &commit, Timestamp(0)).unwrap_err();
        assert!(e.to_string().contains("change"), "{e}");
    }

    #[test]
    fn a_cost_is_kept_in_millionths_of_its_currency() {
        for (cost, micros) in [
            (r#"{"amount": 1.25, "currency": "USD"}"#, 1_250_000u64),
            (r#"{"amount": "0.0031", "currency": "usd"}"#, 3_100),
            (r#"{"amount": 0, "currency": "EUR"}"#, 0),
        ] {
            let file = format!(r#"{{"tool": "codex", "session_id": "s", "cost": {cost}}}"#);
            let r = map(file.as_bytes(), &change(), Timestamp(0)).unwrap();
            let Body::Session(s) = &r.body else { panic!("not a session") };
            let c = s.cost.as_ref().expect("a cost");
            assert_eq!(c.micros, micros, "{cost}");
            assert_eq!(c.currency.as_str().len(), 3);
            assert!(c.currency.as_str().bytes().all(|b| b.is_ascii_uppercase()));
        }
        let none = map(br#"{"tool": "codex", "session_id": "s"}"#, &change(), Timestamp(0)).unwrap();
        let Body::Session(s) = &none.body else { panic!("not a session") };
        assert_eq!(s.cost, None);
    }
}
