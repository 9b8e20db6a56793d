//! Integration tests of `ledger-audit`, through its public API only: the `why` report of
//! hand-built records, pinned by a golden JSON file and a table with one row per finding code
//! (`why`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod gate;
mod why;
