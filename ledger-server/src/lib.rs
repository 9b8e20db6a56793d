//! `ledger-server`: storage and the append path of Provenance Ledger.
//!
//! - [`store`]: the [`store::Store`] trait and its sled implementation. One append batch is
//!   written atomically (entries and all index updates) and flushed before it returns.
//! - [`ledger`]: [`ledger::Ledger`], which sequences signed records (verify → sequence →
//!   write → flush), deduplicates re-appended records, answers queries and `why`, and
//!   verifies the whole chain.
//!
//! The gRPC service `ledgerd` is built on this crate in a later step.

pub mod error;
pub mod ledger;
pub mod store;

pub use error::{Error, Result};
