//! Inferring what caused an incident when nothing says so explicitly: the latest successful
//! deployment of the incident's service to an environment (default `production`) within a
//! window (default 24 h) before the incident opened. The result is recorded as a
//! `caused_by_inferred` link with the reason in the incident record, and always shown as
//! inferred; an explicit cause (`caused_by`) is never replaced by an inferred one.

use ledger_core::record::{Body, DeployStatus, Incident, Link, Rel};
use ledger_core::subject::Subject;

use crate::why::Gathered;

/// How causes are inferred.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InferRule {
    /// The environment of the deployments considered (compared without case).
    pub environment: String,
    /// How long before the incident opened a deployment may have gone out, in milliseconds.
    pub window_ms: i64,
}

impl Default for InferRule {
    fn default() -> Self {
        InferRule { environment: "production".into(), window_ms: 24 * 3_600_000 }
    }
}

/// A service name compared loosely: lowercase, runs of other characters as one `-`.
fn normal(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The deployment the rule points at for `incident`, with the reason in words; `None` when the
/// incident names no service or no deployment fits. `deployments` are `deployment` records
/// (others are ignored).
pub fn inferred_cause(incident: &Incident, deployments: &[Gathered], rule: &InferRule) -> Option<(Subject, String)> {
    let service = normal(incident.service.as_deref()?);
    if service.is_empty() {
        return None;
    }
    let from = incident.opened.0.saturating_sub(rule.window_ms);
    let best = deployments
        .iter()
        .filter_map(|g| match &g.record.body {
            Body::Deployment(d)
                if d.status == DeployStatus::Success
                    && d.environment.as_str().eq_ignore_ascii_case(&rule.environment)
                    && normal(d.service.as_str()) == service
                    && g.record.time.0 >= from
                    && g.record.time.0 <= incident.opened.0 =>
            {
                Some((g.record.time, g.seq, d.subject()))
            }
            _ => None,
        })
        .max_by_key(|(t, seq, _)| (*t, *seq))?;
    let (time, seq, subject) = best;
    let minutes = (incident.opened.0 - time.0) / 60_000;
    let reason = format!(
        "inferred from timing: {subject} (entry {}) is the latest successful {} deployment of service `{}`, {}h{:02}m before the incident opened (window {} h)",
        seq.0,
        rule.environment,
        incident.service.as_deref().unwrap_or_default(),
        minutes / 60,
        minutes % 60,
        rule.window_ms / 3_600_000
    );
    Some((subject, reason))
}

/// Adds an inferred cause to an incident record that has no explicit one (no `caused_by`
/// link): the link, and the reason in its body. Returns whether it added one.
pub fn infer_into(record: &mut ledger_core::record::Record, deployments: &[Gathered], rule: &InferRule) -> bool {
    if record.links.iter().any(|l| l.rel == Rel::CausedBy) {
        return false;
    }
    let Body::Incident(i) = &mut record.body else { return false };
    let Some((subject, reason)) = inferred_cause(i, deployments, rule) else { return false };
    i.inference = Some(reason);
    record.links.push(Link { rel: Rel::CausedByInferred, target: subject });
    true
}
