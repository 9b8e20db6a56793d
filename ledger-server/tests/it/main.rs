//! Integration tests of `ledger-server`: `ledgerd` run as a real child process and driven over
//! gRPC (`daemon`), and the secret scan against a credential corpus (`secrets`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
mod hostile;
mod secrets;
mod standby;
mod support;
