//! Helpers for the ledger tests: `ledger_store::testkit` (test keys, record builders, a ledger
//! in a temporary directory).

pub use ledger_store::testkit::*;
