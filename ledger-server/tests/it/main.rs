//! Integration tests of `ledger-server`: `ledgerd` run as a real child process and driven over
//! gRPC (`daemon`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
mod support;
