//! `ledger-server`: storage and the append path of Provenance Ledger.
//!
//! - [`store`]: the [`store::Store`] trait and its sled implementation. One append batch is
//!   written atomically (entries and all index updates) and flushed before it returns.
//! - [`ledger`]: [`ledger::Ledger`], which sequences signed records (verify → sequence →
//!   write → flush), deduplicates re-appended records, answers queries and `why`, and
//!   verifies the whole chain.
//!
//! - [`group`]: group commit: one sequencer thread, one flush per batch.
//! - [`service`] and [`server::serve`]: the `ledger.v1` gRPC service (plus health and
//!   reflection), served until a shutdown signal; the `ledgerd` binary is a thin wrapper.
//! - [`status`]: the one mapping from errors to gRPC status codes; [`convert`]: wire ↔ core.

pub mod clock;
pub mod convert;
pub mod error;
pub mod group;
pub mod keyfile;
pub mod ledger;
pub mod server;
pub mod service;
pub mod status;
pub mod store;
pub mod webhook;

pub use error::{Error, Result};
