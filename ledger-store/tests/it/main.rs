//! Integration tests of `ledger-store`: export bundles (`bundle`), the append path and storage
//! in process (`ledger`), incremental verification (`incremental`), and the tamper battery on every backend (`tamper`), and what is particular to PostgreSQL (`postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle;
mod incremental;
mod ledger;
mod postgres;
mod snapshot;
mod support;
mod tamper;
