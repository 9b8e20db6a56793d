//! `ledger-store`: storage and the append path of Provenance Ledger.
//!
//! - [`store`]: the [`store::Store`] trait, the key layout, and [`store::DiskStore`], the
//!   embedded store over a small ordered key-value seam ([`store::Kv`]) with two backends,
//!   fjall (the default) and sled. One append batch is written atomically (entries and every
//!   index key) and made durable before it returns.
//! - [`ledger`]: [`ledger::Ledger`], in one module per phase: `open` (head check, key register
//!   rebuild), `write` (verify → authorize → sequence → write → publish), `read` (entries,
//!   queries, `why`), `proofs` (tree heads, checkpoints, inclusion and consistency proofs from
//!   tiles) and `verify` (the full replay and every derived index).
//! - [`sequencer`]: pipelined group commit: one thread sequences, one writes, one flush per batch.
//! - [`keyfile`]: Ed25519 private keys on disk (PKCS#8 PEM, refusing files others can read).
//! - [`clock`]: the system clock.
//! - `testkit` (feature `testkit`): test keys and record builders for tests and benchmarks.

pub mod clock;
pub mod error;
pub mod keyfile;
pub mod ledger;
pub mod sequencer;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, Result};
