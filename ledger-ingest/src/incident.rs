//! Mapping incident-management webhooks (PagerDuty v3 incident events, Opsgenie alerts) to
//! `incident` records. Pure, like the other ingest mappings.
//!
//! Incidents link to deployments only through explicit references: a deployment subject or a
//! full commit id written in the payload (see [`explicit_causes`]), or a cause the caller gives
//! (`--caused-by`); a link the caller inferred from timing alone must be given as inferred
//! (`caused_by_inferred`). Nothing is inferred here.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::Mapped;
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{Body, Incident, Link, Record, Source};
use ledger_core::types::{Digest, DigestAlg, Identity, Timestamp, Token};
use ledger_core::{Error, Result};

/// An incident system whose webhooks the ledger reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// PagerDuty webhooks v3 (`event.event_type` = `incident.triggered`, `incident.resolved`…).
    PagerDuty,
    /// Opsgenie alert webhooks (`action` = `Create`, `Close`…).
    Opsgenie,
}

fn missing(field: &str) -> Error {
    Error::InvalidField { field: field.to_string(), reason: "missing or not the expected type in the payload".into() }
}

fn s<'a>(v: &'a Value, ptr: &str) -> Result<&'a str> {
    v.pointer(ptr).and_then(Value::as_str).ok_or_else(|| missing(&ptr[1..].replace('/', ".")))
}

/// Explicit references to what caused an incident, found in the payload's text: deployment
/// subjects (`deploy:<service>/<env>/<id>`) and full commit ids (40 or 64 hex characters).
/// Only whole tokens count; nothing is inferred from timing.
pub fn explicit_causes(v: &Value) -> Vec<Link> {
    let mut texts = vec![];
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut texts);
    let mut out: Vec<Link> = vec![];
    for t in texts {
        for tok in t.split(|c: char| c.is_whitespace() || ",;()[]<>\"'".contains(c)) {
            let tok = tok.trim_end_matches(['.', ':']);
            let target = if tok.starts_with("deploy:") {
                tok.parse::<ledger_core::subject::Subject>().ok()
            } else if (tok.len() == 40 || tok.len() == 64) && tok.bytes().all(|b| b.is_ascii_hexdigit()) {
                ledger_core::types::CommitId::new(tok.to_ascii_lowercase())
                    .ok()
                    .map(|sha| ledger_core::subject::Subject::Commit { repo: None, sha })
            } else {
                None
            };
            if let Some(target) = target {
                let link = Link { rel: ledger_core::record::Rel::CausedBy, target };
                if !out.contains(&link) {
                    out.push(link);
                }
            }
        }
    }
    out
}

/// Maps one delivery. `opened_before` is the opening time already recorded for this incident,
/// if any: a resolution event does not repeat it. `links` (causes) are attached as given.
///
/// # Errors
/// [`Error::Malformed`] if the payload is not JSON; [`Error::InvalidField`] naming a missing
/// field.
pub fn map(system: System, payload: &[u8], opened_before: Option<Timestamp>, links: Vec<Link>) -> Result<Mapped> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::Malformed { what: "incident webhook payload", detail: e.to_string() })?;
    let digest = Digest::new(DigestAlg::Sha256, Sha256::digest(payload).to_vec())?;
    let (name, format) = match system {
        System::PagerDuty => ("pagerduty", "pagerduty-webhook-v3"),
        System::Opsgenie => ("opsgenie", "opsgenie-webhook"),
    };
    let source = Some(Source::payload(format, digest));
    let mut links = links;
    for l in explicit_causes(&v) {
        if !links.contains(&l) {
            links.push(l);
        }
    }
    let (id, title, service, severity, at, resolved_now, actor) = match system {
        System::PagerDuty => {
            let kind = s(&v, "/event/event_type")?;
            let resolved_now = match kind {
                "incident.triggered" => false,
                "incident.resolved" => true,
                other => {
                    return Ok(Mapped::Skipped(format!("PagerDuty `{other}` does not open or resolve an incident")))
                }
            };
            let severity = v
                .pointer("/event/data/priority/summary")
                .and_then(Value::as_str)
                .or_else(|| v.pointer("/event/data/urgency").and_then(Value::as_str))
                .map(str::to_string);
            let actor = v.pointer("/event/agent/id").and_then(Value::as_str).unwrap_or("unknown");
            (
                s(&v, "/event/data/id")?.to_string(),
                s(&v, "/event/data/title")?.to_string(),
                v.pointer("/event/data/service/summary").and_then(Value::as_str).map(str::to_string),
                severity,
                s(&v, "/event/occurred_at")?.parse::<Timestamp>()?,
                resolved_now,
                format!("pagerduty:{actor}"),
            )
        }
        System::Opsgenie => {
            let action = s(&v, "/action")?;
            let resolved_now = match action {
                "Create" => false,
                "Close" => true,
                other => return Ok(Mapped::Skipped(format!("Opsgenie `{other}` does not open or close an alert"))),
            };
            let created =
                v.pointer("/alert/createdAt").and_then(Value::as_i64).ok_or_else(|| missing("alert.createdAt"))?;
            // `updatedAt` is in nanoseconds and exceeds 2^53: read it as an integer, never a float.
            let updated_ns = v.pointer("/alert/updatedAt").and_then(Value::as_u64);
            let at = match (resolved_now, updated_ns) {
                (true, Some(ns)) => Timestamp((ns / 1_000_000) as i64),
                _ => Timestamp(created),
            };
            let severity = v.pointer("/alert/priority").and_then(Value::as_u64).map(|p| format!("P{p}"));
            let actor =
                v.pointer("/alert/username").and_then(Value::as_str).filter(|u| !u.is_empty()).unwrap_or("unknown");
            let entity =
                v.pointer("/alert/entity").and_then(Value::as_str).filter(|e| !e.is_empty()).map(str::to_string);
            let opened = Timestamp(created);
            let id = s(&v, "/alert/alertId")?.to_string();
            let title = s(&v, "/alert/message")?.to_string();
            let record_opened = opened_before.unwrap_or(opened);
            return Ok(Mapped::Records(vec![Record {
                v: FORMAT_VERSION,
                time: at,
                actor: Identity::new(format!("opsgenie:{actor}"))?,
                links,
                body: Body::Incident(Incident {
                    system: Token::new(name)?,
                    incident_id: Token::new(id)?,
                    title,
                    service: entity,
                    severity,
                    opened: record_opened,
                    resolved: resolved_now.then_some(at),
                    source,
                    inference: None,
                }),
            }]));
        }
    };
    Ok(Mapped::Records(vec![Record {
        v: FORMAT_VERSION,
        time: at,
        actor: Identity::new(actor)?,
        links,
        body: Body::Incident(Incident {
            system: Token::new(name)?,
            incident_id: Token::new(id)?,
            title,
            service,
            severity,
            // A resolution event does not carry the opening time; the earlier record does.
            opened: if resolved_now { opened_before.unwrap_or(at) } else { at },
            resolved: resolved_now.then_some(at),
            source,
            inference: None,
        }),
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_references_in_the_payload_become_causes() {
        let sha = "ab".repeat(20);
        let v: Value = serde_json::json!({"alert": {"message": format!("errors after deploy:api/prod/42 (commit {sha})"), "ids": ["PT1"]}});
        let targets: Vec<String> = explicit_causes(&v).iter().map(|l| l.target.to_string()).collect();
        assert_eq!(targets, vec!["deploy:api/prod/42".to_string(), format!("git:{sha}")]);
        assert!(explicit_causes(&serde_json::json!({"m": "deadbeef and 2021-06-04"})).is_empty());
    }

    #[test]
    fn opsgenie_nanosecond_times_keep_their_precision() {
        let close = br#"{"action":"Close","alert":{"alertId":"a-1","message":"m","createdAt":1420452191104,"updatedAt":1420452374669001603,"username":"u@x"}}"#;
        let Mapped::Records(r) = map(System::Opsgenie, close, None, vec![]).unwrap() else { panic!() };
        let Body::Incident(i) = &r[0].body else { panic!() };
        assert_eq!(i.opened, Timestamp(1420452191104));
        assert_eq!(i.resolved, Some(Timestamp(1420452374669)));
    }

    #[test]
    fn pagerduty_resolution_keeps_the_recorded_opening() {
        let resolved = br#"{"event":{"event_type":"incident.resolved","occurred_at":"2021-06-04T13:16:53.816Z","data":{"id":"P1","title":"t"}}}"#;
        let opened = Timestamp(1_622_800_000_000);
        let Mapped::Records(r) = map(System::PagerDuty, resolved, Some(opened), vec![]).unwrap() else { panic!() };
        let Body::Incident(i) = &r[0].body else { panic!() };
        assert_eq!((i.opened, i.resolved.map(|t| t.to_rfc3339())), (opened, Some("2021-06-04T13:16:53.816Z".into())));
        let ack = br#"{"event":{"event_type":"incident.acknowledged"}}"#;
        assert!(matches!(map(System::PagerDuty, ack, None, vec![]).unwrap(), Mapped::Skipped(_)));
    }
}
