//! `ledger-audit`: the questions asked of Provenance Ledger records.
//!
//! Pure functions of records (gathered by the caller, e.g. `ledger-store`) to reports an
//! auditor can rely on. Today: [`why`], "who approved this change, and what evidence proved it
//! was safe?". Every item of a report names the entry it comes from.

pub mod why;
