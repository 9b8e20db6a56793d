//! Integration tests of `ledger-store`: export bundles (`bundle`), the append path and storage
//! in process (`ledger`), and the tamper battery on both backends (`tamper`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle;
mod ledger;
mod snapshot;
mod support;
mod tamper;
