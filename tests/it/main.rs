//! End-to-end tests of the `ledger` binary: they drive the built command-line tool as a user
//! would, on git histories rebuilt from recorded real-world data and on this repository
//! itself, and check the ledger's answers against values computed from the input data.
//!
//! The binary is `target/debug/ledger`; `cargo test --workspace` builds it, or run
//! `cargo build -p ledger-cli` before `cargo test -p ledger-e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod attestations;
mod audit;
mod git_history;
mod github;
mod gitlab;
mod governance;
mod period;
mod reports;
mod self_repo;
mod server_parity;
mod support;
mod webhooks;
