//! The AI tooling spend of a window, from the sessions that record a cost.

use std::collections::{BTreeMap, BTreeSet};

use ledger_core::record::{Body, Rel};
use serde::Serialize;

use super::HOUR;
use crate::population::Period;
use crate::why::Gathered;

/// The AI tooling spend of a window in one currency: the sessions recorded in the window that
/// carry a cost (the latest record of each session).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AiSpend {
    /// ISO 4217 code.
    pub currency: String,
    /// The total, in the currency's units, rounded to 0.01.
    pub total: f64,
    /// Sessions counted.
    pub sessions: usize,
    /// Distinct engineers: the author of each session's change, else the session's actor.
    pub engineers: usize,
    /// The window's length in months (days / 30.44), rounded to 0.01.
    pub months: f64,
    /// `total / engineers / months`, rounded to 0.01.
    pub per_engineer_month: f64,
}

/// The AI tooling spend of `window`, per currency (see [`AiSpend`]).
pub(super) fn ai_spend(window: Period, all: &[&Gathered]) -> Vec<AiSpend> {
    // The latest record of each session, and the author of each change.
    let mut sessions: BTreeMap<String, &Gathered> = BTreeMap::new();
    let mut authors: BTreeMap<String, String> = BTreeMap::new();
    for g in all {
        match &g.record.body {
            Body::Session(s) => {
                sessions.insert(s.subject().to_string(), g);
            }
            Body::Change(c) => {
                authors.insert(c.subject().to_string(), c.author.to_string());
            }
            _ => {}
        }
    }
    let mut by_currency: BTreeMap<String, (u64, usize, BTreeSet<String>)> = BTreeMap::new();
    for g in sessions.values() {
        let Body::Session(s) = &g.record.body else { continue };
        let Some(cost) = &s.cost else { continue };
        if !window.contains(g.record.time) {
            continue;
        }
        let engineer = g
            .record
            .links
            .iter()
            .filter(|l| l.rel == Rel::Change)
            .find_map(|l| authors.get(&l.target.to_string()).cloned())
            .unwrap_or_else(|| g.record.actor.to_string());
        let e = by_currency.entry(cost.currency.to_string()).or_default();
        e.0 = e.0.saturating_add(cost.micros);
        e.1 += 1;
        e.2.insert(engineer);
    }
    let months = (window.until.0 - window.since.0) as f64 / (30.44 * 24.0 * HOUR);
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    by_currency
        .into_iter()
        .map(|(currency, (micros, sessions, engineers))| {
            let total = micros as f64 / 1e6;
            AiSpend {
                currency,
                total: round2(total),
                sessions,
                engineers: engineers.len(),
                months: round2(months),
                per_engineer_month: round2(total / engineers.len().max(1) as f64 / months.max(f64::MIN_POSITIVE)),
            }
        })
        .collect()
}
