//! Integration tests of `ledger-core`: property tests of the encoding, golden vectors, and
//! the key and chain rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain;
mod golden;
mod interop;
mod kinds;
mod merkle;
mod props;
mod sigbatch;
mod strategies;
