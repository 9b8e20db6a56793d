//! `ledger-server`: `ledgerd`, the Provenance Ledger service, as a library with a thin binary.
//!
//! - [`server::serve`]: the `ledger.v1` gRPC service ([`service`]) with health and reflection,
//!   and optionally the webhook receiver ([`webhook`]), served until a shutdown signal; on
//!   shutdown, in-flight appends finish and the sequencer drains and flushes.
//! - [`lease`]: several `ledgerd` on one shared store (PostgreSQL): the writer lease, standbys
//!   following the writer, takeover.
//! - [`status`]: the one mapping from errors to gRPC status codes and log levels.
//!
//! Storage, the append path and the sequencer live in `ledger-store`; mapping outside data to
//! records in `ledger-ingest`; wire ↔ core conversions in `ledger-proto`.

pub mod lease;
pub mod server;
pub mod service;
pub mod status;
pub mod webhook;
