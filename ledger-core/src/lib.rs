//! `ledger-core`: the record model and integrity rules of Provenance Ledger.
//!
//! An append-only, tamper-evident ledger of software change: signed records (AI session →
//! change → review → evidence → merge → deployment → incident) in canonical CBOR, chained
//! by BLAKE3 entry hashes, signed with Ed25519 by keys registered in the log itself.
//!
//! This crate does no I/O and depends on no async runtime, RPC framework or database. Outside
//! data becomes records in `ledger-ingest`, questions are asked of them in `ledger-audit`, and
//! `ledger-store` keeps them (`docs/ARCHITECTURE.md`).
//!
//! Sign → sequence → verify, in memory:
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use ledger_core::{chain::ChainState, entry::SignedRecord, record::*, types::*};
//!
//! # fn main() -> Result<(), ledger_core::Error> {
//! let admin = SigningKey::from_bytes(&[7; 32]);
//! let now = Timestamp(1_764_000_000_000);
//! let genesis = Record {
//!     v: 1,
//!     time: now,
//!     actor: Identity::new("ops:admin")?,
//!     links: vec![],
//!     body: Body::Key(KeyBody {
//!         action: KeyAction::Genesis,
//!         name: Token::new("admin")?,
//!         public_key: PublicKeyBytes(admin.verifying_key().to_bytes()),
//!         kinds: vec![Kind::Key],
//!         not_before: now,
//!         not_after: None,
//!         replaces: None,
//!         role: None,
//!         handover: None,
//!     }),
//! };
//! let signed = SignedRecord::sign(&genesis, &admin)?;
//!
//! // The sequencer checks the signature, then the signer's rights (only an `Authorized`
//! // record can be sequenced), then chains the entry.
//! let mut chain = ChainState::new();
//! let verified = chain.verify_signature(&signed)?;
//! let authorized = chain.authorize(verified, now)?;
//! let entry = chain.sequence(&authorized)?;
//!
//! // A verifier replays the stored bytes from scratch and reaches the same head.
//! let mut verifier = ChainState::new();
//! verifier.replay(&entry.bytes)?;
//! assert_eq!(verifier.head(), chain.head());
//! # Ok(())
//! # }
//! ```

pub mod ai;
pub mod bundle;
pub mod chain;
pub mod domain;
pub mod encoding;
pub mod entry;
pub mod error;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod record;
pub mod secrets;
pub mod sigbatch;
pub mod subject;
pub mod tiles;
pub mod types;

pub use error::{Error, Result};
