//! Storage: the [`Store`] trait and [`DiskStore`], the embedded store, with two backends.
//!
//! One layout (below) over an ordered key-value store ([`Kv`]), kept by either backend:
//!
//! - **fjall** (an LSM tree; `fjall/` in the ledger directory, plus a `LOCK` file): each
//!   append is one atomic write batch followed by `fdatasync` of its journal, so an
//!   acknowledged append survives a power cut as well as a killed process.
//! - **sled** (the first backend; `db` and `conf` in the ledger directory): one tree, key
//!   prefixes instead of several trees, because a single-tree `apply_batch` is atomic and about
//!   15× faster than a multi-tree transaction. sled 0.34's `flush()` ends in
//!   `sync_file_range`, which a power cut can undo, so each write also `fdatasync`s what the
//!   flush wrote: an acknowledged append survives a power cut as on fjall (see
//!   `docs/ARCHITECTURE.md`, `docs/RELIABILITY.md`).
//!
//! - **postgres** (a PostgreSQL database named by its URL): the pairs as rows of one table,
//!   one transaction per append batch, acknowledged once `COMMIT` returns with
//!   `synchronous_commit = on`; versioned schema migrations (`pg_kv.rs`).
//!
//! [`DiskStore::open`] tells the backend from the directory's files; [`DiskStore::create`]
//! uses [`Backend::default`], chosen by measurement (`docs/BENCHMARKS.md`).
//!
//! | key | value |
//! |---|---|
//! | `meta` | format marker `provenance-ledger/layout/v2` (the layout's name and version, for both backends; v1 ledgers, marked `provenance-ledger/sled/v1`, are upgraded on open) |
//! | `head` | seq (u64 BE) ‖ entry hash (32) |
//! | `tree` | tree size (u64 BE) ‖ peaks (32 each): the RFC 6962 frontier after the head |
//! | `e` ‖ seq (u64 BE) | entry bytes |
//! | `h` ‖ entry hash | seq (u64 BE) |
//! | `r` ‖ record id | seq (u64 BE) |
//! | `s` ‖ subject ‖ 0x00 ‖ seq (u64 BE) | empty (commits indexed in bare `git:<sha>` form only) |
//! | `k` ‖ kind code ‖ seq (u64 BE) | empty |
//! | `t` ‖ tile level (u8) ‖ tile index (u64 BE) | a full tile: 256 hashes of 32 bytes (see `ledger_core::tiles`; partial tiles are rebuilt on open, not stored) |
//! | `Keys` | the seqs of every `key` entry, ascending (u64 BE each): a second record of the key entries, so that opening can check the `k` index it rebuilds the key register from |
//!
//! `h`, `r`, `s` and `k` are the **derived indexes**: [`StoredEntry::index_keys`] says which
//! keys an entry implies, the writer writes exactly those, and `verify` recomputes them from the
//! entries and compares them with a scan of each index ([`Store::scan_index`]).

mod codec;
mod disk;
mod fjall_kv;
mod index;
mod kv;
mod parked;
mod pg_kv;
mod pg_lease;
mod pg_tls;
mod raw;
mod sled_kv;

use ledger_core::merkle::{Frontier, Hash};
use ledger_core::record::Kind;
use ledger_core::tiles::Tile;
use ledger_core::types::{EntryHash, RecordId, Seq};

pub use disk::{close_at_process_exit, Backend, DiskStore};
pub use index::{index_keys, indexed_subjects, visit_index_keys, Index, IndexKey};
pub use kv::{Guard, Kv, KvIter, PairFn};
pub use pg_kv::{is_postgres, redact};
pub use pg_lease::{Claim, LEASE_TTL, RENEW_EVERY};
pub use raw::Raw;

use crate::error::Result;

/// The format marker stored under `meta`: layout v2, which keeps the `Keys` record.
pub const FORMAT_MARKER: &[u8] = b"provenance-ledger/layout/v2";

/// The marker of layout v1 (no `Keys` record; the name predates the fjall backend). Opening
/// such a ledger upgrades it ([`Store::upgrade`]); binaries that only know v1 then refuse it,
/// so none can append a `key` entry without recording it.
pub const FORMAT_MARKER_V1: &[u8] = b"provenance-ledger/sled/v1";

/// The `Keys` record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyEntries {
    /// The seqs of every `key` entry, ascending.
    Recorded(Vec<Seq>),
    /// The layout keeps the record, but it is not there.
    Missing,
    /// A layout v1 ledger, written before the record was kept: [`Store::upgrade`] writes it.
    NotKept,
}

/// Whether a handle on a store several handles share may append (see `docs/POSTGRES.md`,
/// one writer, fenced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// This handle holds the writer lease, or claims it when it first writes (an embedded
    /// store's only handle is always the writer).
    Writer,
    /// Another handle holds the writer lease: this one serves reads, and its appends are
    /// refused with [`crate::Error::NotWriter`].
    Standby {
        /// Who holds the lease, as it named itself, when known.
        writer: Option<String>,
    },
}

/// The head (`(seq, entry hash)` of the last entry) and the Merkle tree's frontier as stored,
/// each `None` when not recorded.
pub type HeadAndTree = (Option<(Seq, EntryHash)>, Option<Frontier>);

/// One entry to write, with its index keys.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Exact entry bytes.
    pub bytes: Vec<u8>,
    /// The previous entry's hash (what the head was before this entry).
    pub prev: EntryHash,
    /// Record id (deduplication).
    pub record_id: RecordId,
    /// Record kind.
    pub kind: Kind,
    /// Subject strings the record mentions.
    pub subjects: Vec<String>,
}

impl StoredEntry {
    /// The derived index keys this entry implies: see [`index_keys`].
    pub fn index_keys(&self) -> Vec<IndexKey> {
        index_keys(self.hash, self.record_id, self.kind, &self.subjects)
    }
}

/// A ledger's storage. Implementations write each batch atomically and durably.
pub trait Store: Send + Sync {
    /// Whether this handle may append now: always, but on a store several handles share.
    fn role(&self) -> Role {
        Role::Writer
    }
    /// Whether several handles (processes) may share this store, one writing at a time under
    /// the writer lease (PostgreSQL), rather than one handle owning it (a directory).
    fn is_shared(&self) -> bool {
        false
    }
    /// Tries once to claim the writer lease of a shared store: `Ok(true)` when this handle now
    /// holds it. A store one handle owns: always.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] if the store cannot be reached.
    fn claim_writer(&self) -> Result<bool> {
        Ok(true)
    }
    /// Gives the writer lease of a shared store up, so that another handle may claim it at once.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] if the store cannot be reached.
    fn release_writer(&self) -> Result<()> {
        Ok(())
    }
    /// Writes the format marker of an empty store.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if the store already holds a ledger.
    fn initialize(&self) -> Result<()>;
    /// Appends entries (consecutive seqs, continuing the head), their indexes, the Merkle
    /// tree's frontier after them and the tiles they changed, atomically, then flushes.
    /// Returns only once durable.
    ///
    /// # Errors
    /// [`Error::Storage`] if the write or flush fails; the caller must then stop writing.
    /// `key_entries`, when the batch holds `key` entries, is the new list of every key entry's
    /// seq (the `Keys` record); `None` leaves it as it is.
    fn append(&self, batch: &[StoredEntry], tree: &Frontier, tiles: &[Tile], key_entries: Option<&[Seq]>)
        -> Result<()>;
    /// The seqs of every `key` entry as recorded beside the kind index (the `Keys` record).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error or a malformed record.
    fn key_entries(&self) -> Result<KeyEntries>;
    /// Upgrades a layout v1 store to v2: writes the `Keys` record (`key_entries`, found by the
    /// caller) and the v2 format marker in one atomic, flushed write.
    ///
    /// # Errors
    /// [`Error::Storage`] if the write or flush fails.
    fn upgrade(&self, key_entries: &[Seq]) -> Result<()>;
    /// Calls `f` with every key of `index` and the seq it maps to, in key order. A key the
    /// layout cannot decode comes as [`IndexKey::Malformed`] with the seq it seems to name
    /// (or `u64::MAX`).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error; `f`'s errors.
    fn scan_index(&self, index: Index, f: &mut dyn FnMut(IndexKey, Seq) -> Result<()>) -> Result<()>;
    /// [`Store::scan_index`] without decoding into owned keys: `f` gets each key's
    /// [`IndexKey::id_bytes`] (borrowed) and seq. What `verify` fingerprints, millions of times.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error; `f`'s errors.
    fn scan_index_ids(&self, index: Index, f: &mut dyn FnMut(&[u8], Seq) -> Result<()>) -> Result<()> {
        self.scan_index(index, &mut |key, seq| f(key.id_bytes(), seq))
    }
    /// Every stored tile's `(level, index)`, in key order; a malformed tile key comes as
    /// `(u8::MAX, u64::MAX)`.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn tile_ids(&self) -> Result<Vec<(u8, u64)>>;
    /// Writes tiles on their own (building them for a ledger written before tiles were kept).
    ///
    /// # Errors
    /// [`Error::Storage`] if the write or flush fails.
    fn put_tiles(&self, tiles: &[Tile]) -> Result<()>;
    /// The stored tile `(level, index)`, if any.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error or a malformed tile.
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>>;
    /// The Merkle tree frontier recorded with the head, if any (ledgers written before the
    /// tree existed have none).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error or a malformed record.
    fn tree(&self) -> Result<Option<Frontier>>;
    /// The last entry's seq and hash, if any.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error or a malformed head.
    fn head(&self) -> Result<Option<(Seq, EntryHash)>>;
    /// [`Store::head`] and [`Store::tree`] read together, as of one moment: on a shared store,
    /// another handle's append cannot fall between the two reads.
    ///
    /// # Errors
    /// As [`Store::head`] and [`Store::tree`].
    fn head_and_tree(&self) -> Result<HeadAndTree> {
        Ok((self.head()?, self.tree()?))
    }
    /// Entry bytes at `seq`.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn entry(&self, seq: Seq) -> Result<Option<Vec<u8>>>;
    /// Up to `limit` consecutive entries from `from`, stopping before the first missing one
    /// (one range read instead of one lookup per entry).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn entries(&self, from: Seq, limit: u64) -> Result<Vec<Vec<u8>>> {
        let mut out = vec![];
        for s in from.0..from.0.saturating_add(limit) {
            match self.entry(Seq(s))? {
                Some(b) => out.push(b),
                None => break,
            }
        }
        Ok(out)
    }
    /// The seq of the entry with this hash.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn seq_by_hash(&self, hash: &EntryHash) -> Result<Option<Seq>>;
    /// Entries whose hash starts with `prefix` (at most `limit`).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn seqs_by_hash_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<(EntryHash, Seq)>>;
    /// The seq of the entry carrying this record id.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn seq_by_record(&self, id: &RecordId) -> Result<Option<Seq>>;
    /// The seq of the entry carrying each of `ids`, in order (one round trip on a database).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn seqs_by_records(&self, ids: &[RecordId]) -> Result<Vec<Option<Seq>>> {
        ids.iter().map(|id| self.seq_by_record(id)).collect()
    }
    /// Whether each derived index holds each key pointing at its seq: one answer per pair.
    /// The default asks one look-up per key; stores answer many keys in one read.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn index_holds(&self, keys: &[(IndexKey, Seq)]) -> Result<Vec<bool>> {
        keys.iter()
            .map(|(key, seq)| {
                Ok(match key {
                    IndexKey::Hash(h) => self.seq_by_hash(h)? == Some(*seq),
                    IndexKey::Record(r) => self.seq_by_record(r)? == Some(*seq),
                    IndexKey::Subject(s) => self.subject_seqs(s)?.contains(seq),
                    IndexKey::Kind(code) => {
                        Kind::from_code(*code).map(|k| self.kind_seqs(k)).transpose()?.is_some_and(|v| v.contains(seq))
                    }
                    IndexKey::Malformed(..) => false,
                })
            })
            .collect()
    }
    /// Seqs of entries mentioning `subject`, ascending.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn subject_seqs(&self, subject: &str) -> Result<Vec<Seq>>;
    /// Distinct indexed subjects starting with `prefix` (at most `limit`).
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn subjects_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>>;
    /// Seqs of entries of `kind`, ascending.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn kind_seqs(&self, kind: Kind) -> Result<Vec<Seq>>;
}
