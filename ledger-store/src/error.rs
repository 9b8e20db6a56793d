//! Errors of the storage and append path.

use std::path::PathBuf;

use ledger_core::types::Seq;

/// What can go wrong opening, appending to or reading a ledger. Callers match on the variant,
/// never on the message.
///
/// Exhaustive on purpose: `ledger-server`'s status mapping and webhook replies match every
/// variant, so a new one must be given a code.
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
    /// Another process (or another handle in this one) has the ledger directory open.
    #[error("the ledger at {path} is in use by another process (is ledgerd running? use --server)")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The store is unreadable or inconsistent in a way that is not tampering with an entry.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data fails verification: an entry, an index key or a derived record was altered,
    /// removed or added.
    #[error("tamper detected at seq {seq}: {reason}")]
    Tampered {
        /// The first entry that fails verification (or whose index keys are wrong).
        seq: Seq,
        /// What is wrong, in words.
        reason: String,
        /// The core check the entry failed (decoding, signature, chain link, signer rights),
        /// when it failed one.
        #[source]
        source: Option<ledger_core::Error>,
    },
    /// An earlier flush failed; writes are refused until the process restarts.
    #[error("the ledger is read-only after a failed flush; restart after fixing the disk")]
    Unavailable,
    /// A store several handles share (PostgreSQL) refused a write because this handle does
    /// not hold the writer lease: another handle (`writer`) appends. Nothing was written.
    #[error("this is a standby: appends go to the writer, {writer}")]
    NotWriter {
        /// Who holds the writer lease, as it named itself (`ledgerd` gives its address).
        writer: String,
    },
    /// A lookup found nothing.
    #[error("{0} not found")]
    NotFound(String),
    /// An argument is malformed or out of range (an entry reference, a tree size, a
    /// checkpoint origin): the request cannot be answered as asked.
    #[error("{0}")]
    InvalidArgument(String),
    /// A lookup was ambiguous.
    #[error("{input} is ambiguous: it matches {matches}")]
    Ambiguous {
        /// What was looked up.
        input: String,
        /// Some of the matches.
        matches: String,
    },
}

impl Error {
    /// Tampering at `seq` described by `reason`.
    pub fn tampered(seq: Seq, reason: impl Into<String>) -> Self {
        Error::Tampered { seq, reason: reason.into(), source: None }
    }

    /// The entry at `seq` fails the core check `source`.
    pub fn tampered_entry(seq: Seq, source: ledger_core::Error) -> Self {
        Error::Tampered { seq, reason: "the entry fails its checks".into(), source: Some(source) }
    }

    /// A standby's refusal naming `writer`, the lease's holder, when known.
    pub fn not_writer(writer: Option<String>) -> Self {
        Error::NotWriter { writer: writer.unwrap_or_else(|| "none at the moment; retry shortly".into()) }
    }

    /// For [`Error::Tampered`], the whole explanation: the reason and the failed core check.
    pub fn tamper_detail(&self) -> Option<String> {
        match self {
            Error::Tampered { reason, source: Some(core), .. } => Some(format!("{reason}: {core}")),
            Error::Tampered { reason, source: None, .. } => Some(reason.clone()),
            _ => None,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ledger_core::merkle::ProofError> for Error {
    /// Proof generation fails on a size out of range (an argument that names no tree or leaf)
    /// or on a tile the store should hold but does not (storage damage).
    fn from(e: ledger_core::merkle::ProofError) -> Self {
        match e {
            ledger_core::merkle::ProofError::MissingNode { .. } => {
                Error::Storage(format!("{e} (the stored tiles are incomplete; run `ledger verify`)"))
            }
            other => Error::InvalidArgument(other.to_string()),
        }
    }
}
