//! [`Ledger`]: one sequencer, many readers, over any [`Store`]. The work is split by phase:
//!
//! | module | phase |
//! |---|---|
//! | `open` | create a ledger; open one (head check, key register rebuilt from the key entries, tiles) |
//! | `write` | append: verify signature → authorize → sequence → integrate (tree, tiles) → write (one atomic, durable batch) → publish |
//! | `read` | entries, lookups, log queries, what `why` gathers |
//! | `proofs` | tree heads, signed checkpoints, inclusion and consistency proofs from the tiles |
//! | `verify` | the full replay, and every derived index, tile and record checked against it |
//! | `incremental` | verification of what was appended since a trusted checkpoint |
//! | `bundle` | export: a streamed v2 bundle of a selection, each run with its range proof |
//! | `follow` | a standby on a shared store: catching up with the writer, taking over |
//! | `governance` | published policies, exceptions, model approvals; the gate and its re-check |

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ledger_audit::why::Gathered;
use ledger_core::chain::ChainState;
use ledger_core::entry::Entry;
use ledger_core::keys::KeyInfo;
use ledger_core::merkle::Frontier;
use ledger_core::record::Kind;
use ledger_core::subject::Subject;
use ledger_core::tiles::TileBuilder;
use ledger_core::types::{Clock, EntryHash, RecordId, Seq, Timestamp};

pub use ledger_core::chain::Receipt;

use crate::error::Error;
use crate::store::Store;

mod bundle;
mod follow;
mod governance;
mod incremental;
mod open;
mod proofs;
mod read;
mod snapshot;
mod tile_check;
mod verify;
mod write;

pub use bundle::ExportSummary;
pub use governance::{GatePolicy, PublishedPolicy, Recheck};
pub use incremental::{IncrementalSummary, TrustedHead};
pub use write::{Atomicity, Prepared};

/// A stored entry, decoded.
#[derive(Clone, Debug)]
pub struct EntryView {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Exact stored bytes.
    pub bytes: Vec<u8>,
    /// The entry.
    pub entry: Entry,
    /// The record it carries.
    pub record: ledger_core::record::Record,
}

impl EntryView {
    /// As input for [`ledger_audit::why::analyze`].
    /// The signer's name is left for the caller, which knows the key register.
    pub fn gathered(&self) -> Gathered {
        Gathered {
            seq: self.seq,
            hash: self.hash,
            integrated: self.entry.time,
            record: self.record.clone(),
            signer: self.entry.signer,
            signer_name: None,
        }
    }
}

/// Filters for [`Ledger::log`]; all given filters must match.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only entries mentioning this subject.
    pub subject: Option<Subject>,
    /// Only entries integrated at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries at or after this seq.
    pub from_seq: Option<Seq>,
    /// Only entries at or before this seq.
    pub to_seq: Option<Seq>,
    /// At most this many entries (the latest ones).
    pub limit: Option<usize>,
}

/// Result of a full verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// Entries verified.
    pub entries: u64,
    /// Head hash after the last entry.
    pub head: EntryHash,
}

/// The Merkle tree as the append path keeps it: the frontier (for the root) and the partial
/// tiles (for stored interior nodes).
#[derive(Clone, Debug, Default)]
struct TreeState {
    frontier: Frontier,
    tiles: TileBuilder,
}

/// The batches sequenced but not yet durable: the next batch extends the state after the
/// last of them, not the published state (so that one batch is sequenced while the one before
/// it is written and flushed), and a record in one of them is a duplicate for the next.
#[derive(Default)]
struct Pipeline {
    /// The chain and tree after the last batch sequenced, while a batch is in flight; `None`:
    /// the published state is the one to extend.
    next: Option<Box<(ChainState, TreeState)>>,
    /// Batches sequenced and not yet committed (written and published, or failed).
    in_flight: usize,
    /// The receipts of the records the batches in flight append.
    records: HashMap<RecordId, Receipt>,
    /// Raised when a batch fails: batches sequenced onto it fail too, and the next one is
    /// sequenced onto the published state again.
    generation: u64,
    /// Why the last failed batch failed, for the batches that extended it.
    failure: Option<Error>,
}

/// A ledger over a store: one sequencer, many readers.
pub struct Ledger<S: Store> {
    store: S,
    state: Mutex<ChainState>,
    /// The RFC 6962 tree's right edge and last tiles, updated with the chain under the
    /// `state` lock.
    tree: Mutex<TreeState>,
    /// Held by the one writer while it sequences a batch (and, on the local append path,
    /// while it writes and flushes it). `state` and `tree` are locked only to copy them and
    /// to publish the result, so request handlers checking signatures (which read the key
    /// register) never wait for a flush.
    writer: Mutex<()>,
    /// Batches sequenced but not yet durable (see [`Prepared`]).
    pipeline: Mutex<Pipeline>,
    /// Signalled whenever a batch in flight is done.
    drained: Condvar,
    clock: Arc<dyn Clock>,
    poisoned: AtomicBool,
}

impl<S: Store> Ledger<S> {
    fn lock(&self) -> MutexGuard<'_, ChainState> {
        // A panic while holding the lock cannot leave the state half-updated (it is swapped
        // in whole after a successful write), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.lock().next_seq().0
    }

    /// True when the ledger has no entries (never, once created).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The head: (number of entries, last entry hash).
    pub fn head(&self) -> (u64, EntryHash) {
        let s = self.lock();
        (s.next_seq().0, s.head())
    }

    /// All signer keys ever registered.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.lock().keys().keys().cloned().collect()
    }
}
