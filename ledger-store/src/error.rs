//! Errors of the storage and append path.

use std::path::PathBuf;

use ledger_core::types::Seq;

/// What can go wrong opening, appending to or reading a ledger.
///
/// Exhaustive on purpose: `status::to_status` maps every variant to a gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record was refused (bad signature, unknown key, not allowed, too large...). Nothing
    /// was written.
    #[error(transparent)]
    Rejected(#[from] ledger_core::Error),
    /// The directory holds no ledger.
    #[error("no ledger at {path}: {reason}")]
    NotALedger {
        /// The directory.
        path: PathBuf,
        /// Why it is not a ledger.
        reason: String,
    },
    /// `init` on a directory that already holds a ledger.
    #[error("a ledger already exists at {path}")]
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// The store is unreadable or inconsistent in a way that is not tampering with an entry.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data fails verification: an entry was altered, removed or reordered.
    #[error("tamper detected at seq {seq}: {reason}")]
    Tampered {
        /// The first entry that fails verification.
        seq: Seq,
        /// What is wrong.
        reason: String,
    },
    /// An earlier flush failed; writes are refused until the process restarts.
    #[error("the ledger is read-only after a failed flush; restart after fixing the disk")]
    Unavailable,
    /// A lookup found nothing.
    #[error("{0} not found")]
    NotFound(String),
    /// A lookup was ambiguous.
    #[error("{input} is ambiguous: it matches {matches}")]
    Ambiguous {
        /// What was looked up.
        input: String,
        /// Some of the matches.
        matches: String,
    },
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ledger_core::merkle::ProofError> for Error {
    /// Proof generation fails on a size out of range (a lookup of something that does not
    /// exist) or on a tile the store should hold but does not (storage damage).
    fn from(e: ledger_core::merkle::ProofError) -> Self {
        match e {
            ledger_core::merkle::ProofError::MissingNode { .. } => {
                Error::Storage(format!("{e} (the stored tiles are incomplete; run `ledger verify`)"))
            }
            other => Error::NotFound(other.to_string()),
        }
    }
}
