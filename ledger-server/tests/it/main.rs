//! Integration tests of `ledger-server`: the append path and storage in process (`ledger`),
//! and `ledgerd` run as a real child process and driven over gRPC (`daemon`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
mod ledger;
mod support;
mod tamper;
