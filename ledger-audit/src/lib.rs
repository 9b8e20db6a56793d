//! `ledger-audit`: the questions asked of Provenance Ledger records.
//!
//! Pure functions of records (gathered by the caller, e.g. `ledger-store`) to reports an
//! auditor can rely on: [`why`], "who approved this change, and what evidence proved it was
//! safe?"; [`policy`], the risk-tier policy; [`gate`], "was that enough for this change's
//! risk?"; [`vsa`], the SLSA Source verification summary of a landed change; [`population`],
//! the auditor's population of a period and its seeded sample; [`controls`], the control
//! tests over it; [`infer`], incident causes inferred from service and time; [`metrics`], DORA
//! and AI-era figures; [`html`], the self-contained HTML pages of these reports. Every item of
//! a report names the entry it comes from.

pub mod controls;
pub mod gate;
pub mod html;
pub mod infer;
pub mod metrics;
pub mod policy;
pub mod population;
pub mod snapshot;
pub mod vsa;
pub mod why;
