//! Storage: the [`Store`] trait and [`DiskStore`], the embedded store, with two backends.
//!
//! One layout (below) over an ordered key-value store ([`Kv`]), kept by either backend:
//!
//! - **fjall** (an LSM tree; `fjall/` in the ledger directory, plus a `LOCK` file): each
//!   append is one atomic write batch followed by `fdatasync` of its journal, so an
//!   acknowledged append survives a power cut as well as a killed process.
//! - **sled** (the first backend; `db` and `conf` in the ledger directory): one tree, key
//!   prefixes instead of several trees, because a single-tree `apply_batch` is atomic and about
//!   15× faster than a multi-tree transaction. sled 0.34's `flush()` writes and calls
//!   `sync_file_range`, not `fsync`: an acknowledged append survives a killed process, but a
//!   power cut may lose it (see `docs/ARCHITECTURE.md`).
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

mod fjall_kv;
mod sled_kv;

use std::path::{Path, PathBuf};

use ledger_core::merkle::{Frontier, Hash};
use ledger_core::record::Kind;
use ledger_core::tiles::Tile;
use ledger_core::types::{EntryHash, RecordId, Seq};

use crate::error::{Error, Result};

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

/// One entry to write, with its index keys.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Exact entry bytes.
    pub bytes: Vec<u8>,
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

/// The derived index keys of an entry (the layout above): one in each of the hash, record and
/// kind indexes, and one per indexed subject ([`indexed_subjects`]). The writer writes exactly
/// these, and `verify` recomputes them from each entry.
pub fn index_keys(hash: EntryHash, record_id: RecordId, kind: Kind, subjects: &[String]) -> Vec<IndexKey> {
    let mut out = Vec::with_capacity(3 + subjects.len());
    out.push(IndexKey::Hash(hash));
    out.push(IndexKey::Record(record_id));
    out.push(IndexKey::Kind(kind.code()));
    out.extend(subjects.iter().cloned().map(IndexKey::Subject));
    out
}

/// The subject strings the subject index holds for `record`: every subject it mentions
/// (sorted, distinct), except repository-qualified commits. Every record that names one also
/// names its bare form `git:<sha>`, which is indexed; a repository-qualified lookup filters
/// the bare hits (one index key per commit instead of two).
pub fn indexed_subjects(record: &ledger_core::record::Record) -> Vec<String> {
    let mut out: Vec<String> = record
        .subjects()
        .iter()
        .filter(|s| !matches!(s, ledger_core::subject::Subject::Commit { repo: Some(_), .. }))
        .map(|s| s.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A derived index of the layout: keys written with each entry, recomputable from the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Index {
    /// `h ‖ entry hash → seq`.
    Hash,
    /// `r ‖ record id → seq` (deduplication).
    Record,
    /// `s ‖ subject ‖ 0x00 ‖ seq` (queries by subject, `why`).
    Subject,
    /// `k ‖ kind code ‖ seq` (queries by kind, the key register on open).
    Kind,
}

impl Index {
    /// Every derived index.
    pub const ALL: [Index; 4] = [Index::Hash, Index::Record, Index::Subject, Index::Kind];

    /// The index's name in messages: `hash`, `record`, `subject`, `kind`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Index::Hash => "hash",
            Index::Record => "record",
            Index::Subject => "subject",
            Index::Kind => "kind",
        }
    }

    /// The first byte of its keys.
    fn prefix(self) -> u8 {
        match self {
            Index::Hash => b'h',
            Index::Record => b'r',
            Index::Subject => b's',
            Index::Kind => b'k',
        }
    }
}

impl std::fmt::Display for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One key of a derived index, decoded (the seq it maps to travels beside it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKey {
    /// An entry hash.
    Hash(EntryHash),
    /// A record id.
    Record(RecordId),
    /// A subject string.
    Subject(String),
    /// A kind code (see [`Kind::code`]; an unknown code is kept as it was found).
    Kind(u8),
    /// A key under an index's prefix that the layout cannot decode (wrong length, no
    /// separator): the raw key bytes. Never written; only found.
    Malformed(Index, Vec<u8>),
}

impl IndexKey {
    /// The index this key belongs to.
    #[must_use]
    pub fn index(&self) -> Index {
        match self {
            IndexKey::Hash(_) => Index::Hash,
            IndexKey::Record(_) => Index::Record,
            IndexKey::Subject(_) => Index::Subject,
            IndexKey::Kind(_) => Index::Kind,
            IndexKey::Malformed(i, _) => *i,
        }
    }

    /// The bytes that identify the key within its index (what a fingerprint covers).
    #[must_use]
    pub fn id_bytes(&self) -> &[u8] {
        match self {
            IndexKey::Hash(h) => &h.0,
            IndexKey::Record(r) => &r.0,
            IndexKey::Subject(s) => s.as_bytes(),
            IndexKey::Kind(k) => std::slice::from_ref(k),
            IndexKey::Malformed(_, raw) => raw,
        }
    }
}

impl std::fmt::Display for IndexKey {
    /// `hash:<hex>`, `record:<hex>`, `subject:<subject>`, `kind:<name>`; malformed keys in hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexKey::Hash(h) => write!(f, "hash:{h}"),
            IndexKey::Record(r) => write!(f, "record:{}", r.to_hex()),
            IndexKey::Subject(s) => write!(f, "subject:{s}"),
            IndexKey::Kind(c) => match Kind::from_code(*c) {
                Some(k) => write!(f, "kind:{k}"),
                None => write!(f, "kind:<unknown code {c}>"),
            },
            IndexKey::Malformed(i, raw) => write!(f, "{i}:<malformed key {}>", hex::encode(raw)),
        }
    }
}

/// A ledger's storage. Implementations write each batch atomically and durably.
pub trait Store: Send + Sync {
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

/// An ordered key-value store: what the layout needs from a backend.
pub trait Kv: Send + Sync {
    /// The value under `key`.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The pairs with `from <= key < to`, in key order.
    fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> KvIter<'a>;
    /// The pairs whose key starts with `prefix`, in key order.
    fn prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a>;
    /// Applies `puts` then `removes` atomically and returns once they are durable. Keys and
    /// values are borrowed: the engine copies them once, into its own buffers.
    ///
    /// # Errors
    /// [`Error::Storage`] if the write or the flush fails.
    fn write(&self, puts: &[(&[u8], &[u8])], removes: &[&[u8]]) -> Result<()>;
}

/// Key-value pairs read from a [`Kv`], in key order.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// Which embedded engine keeps a [`DiskStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// fjall: one `fdatasync` per append batch. The default: power-loss durable, about a third
    /// of sled's write cost per entry, and 1.2–1.4× its append throughput through `ledgerd`
    /// (docs/BENCHMARKS.md).
    #[default]
    Fjall,
    /// sled 0.34: `sync_file_range` per append batch (survives a killed process, not
    /// necessarily a power cut).
    Sled,
}

impl Backend {
    /// The backend's name as the CLI spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fjall => "fjall",
            Backend::Sled => "sled",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fjall" => Ok(Backend::Fjall),
            "sled" => Ok(Backend::Sled),
            other => Err(format!("unknown storage backend {other:?} (expected fjall or sled)")),
        }
    }
}

/// The embedded store: the layout above, kept by a [`Backend`] in one directory.
pub struct DiskStore {
    kv: Box<dyn Kv>,
    backend: Backend,
    path: PathBuf,
}

fn seq_key(prefix: u8, seq: Seq) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

fn tile_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b't';
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Each tile's key and stored bytes.
fn tile_pairs(tiles: &[Tile]) -> Vec<([u8; 10], Vec<u8>)> {
    tiles.iter().map(|t| (tile_key(t.level, t.index), t.to_bytes())).collect()
}

fn decode_seq(v: &[u8]) -> Result<Seq> {
    let b: [u8; 8] = v.try_into().map_err(|_| Error::Storage(format!("malformed seq value ({} bytes)", v.len())))?;
    Ok(Seq(u64::from_be_bytes(b)))
}

fn seq_suffix(k: &[u8]) -> Result<Seq> {
    if k.len() < 8 {
        return Err(Error::Storage("malformed index key".into()));
    }
    decode_seq(&k[k.len() - 8..])
}

/// The key of the `Keys` record (every key entry's seq). Upper case: no index prefix is.
const KEYS_RECORD: &[u8] = b"Keys";

fn encode_seqs(seqs: &[Seq]) -> Vec<u8> {
    seqs.iter().flat_map(|s| s.0.to_be_bytes()).collect()
}

/// The stored key and value of an index key pointing at `seq` (8 bytes, big-endian).
fn index_pair<'a>(key: &IndexKey, seq: &'a [u8; 8]) -> (Vec<u8>, &'a [u8]) {
    let prefix = key.index().prefix();
    match key {
        IndexKey::Hash(_) | IndexKey::Record(_) => ([&[prefix][..], key.id_bytes()].concat(), seq),
        IndexKey::Subject(s) => ([&[prefix][..], s.as_bytes(), &[0], seq].concat(), &[]),
        IndexKey::Kind(code) => ([&[prefix, *code][..], seq].concat(), &[]),
        IndexKey::Malformed(_, raw) => ([&[prefix][..], raw].concat(), &[]),
    }
}

/// Decodes a stored index key (with its value) as [`index_pair`] wrote it.
fn decode_index_key(index: Index, k: &[u8], v: &[u8]) -> (IndexKey, Seq) {
    let seq_of = |b: &[u8]| -> Option<Seq> { b.try_into().ok().map(|b: [u8; 8]| Seq(u64::from_be_bytes(b))) };
    let body = &k[1..];
    let decoded = match index {
        Index::Hash => <[u8; 32]>::try_from(body).ok().zip(seq_of(v)).map(|(h, s)| (IndexKey::Hash(EntryHash(h)), s)),
        Index::Record => {
            <[u8; 32]>::try_from(body).ok().zip(seq_of(v)).map(|(r, s)| (IndexKey::Record(RecordId(r)), s))
        }
        Index::Kind => {
            (body.len() == 9).then(|| (IndexKey::Kind(body[0]), seq_of(&body[1..]))).and_then(|(k, s)| Some((k, s?)))
        }
        Index::Subject => match body.len().checked_sub(9) {
            Some(n) if n > 0 && body[n] == 0 => std::str::from_utf8(&body[..n])
                .ok()
                .zip(seq_of(&body[n + 1..]))
                .map(|(s, seq)| (IndexKey::Subject(s.to_string()), seq)),
            _ => None,
        },
    };
    decoded.unwrap_or_else(|| {
        // Name what it seems to point at: a seq value, or the last 8 bytes of the key.
        let seq = seq_of(v).or_else(|| body.len().checked_sub(8).and_then(|n| seq_of(&body[n..])));
        (IndexKey::Malformed(index, body.to_vec()), seq.unwrap_or(Seq(u64::MAX)))
    })
}

/// How long opening waits for another handle to release the directory's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Cache size of either engine: set, not left at sled's 1 GiB default (see the brief).
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl DiskStore {
    /// Creates a new store in `dir` (which must not hold a ledger yet) with the default backend.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], or [`Error::Storage`] if the engine cannot create it.
    pub fn create(dir: &Path) -> Result<Self> {
        Self::create_with(dir, Backend::default())
    }

    /// Creates a new store in `dir` (which must not hold a ledger yet) kept by `backend`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], or [`Error::Storage`] if the engine cannot create it.
    pub fn create_with(dir: &Path, backend: Backend) -> Result<Self> {
        if Self::detect(dir).is_some() {
            return Err(Error::AlreadyExists { path: dir.to_path_buf() });
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::Storage(format!("creating {}: {e}", dir.display())))?;
        let store = Self::open_backend(dir, backend)?;
        store.initialize()?;
        Ok(store)
    }

    /// The backend whose files `dir` holds, if any.
    fn detect(dir: &Path) -> Option<Backend> {
        if dir.join(fjall_kv::SUBDIR).is_dir() {
            Some(Backend::Fjall)
        } else if dir.join("db").exists() || dir.join("conf").exists() {
            Some(Backend::Sled)
        } else {
            None
        }
    }

    /// Opens an existing store, with whichever backend wrote it. Refuses a directory that
    /// does not hold a ledger, without writing anything to it.
    ///
    /// # Errors
    /// [`Error::NotALedger`] for a missing, empty, foreign or corrupt directory;
    /// [`Error::Storage`] if another process has it open.
    pub fn open(dir: &Path) -> Result<Self> {
        let not = |reason: &str| Error::NotALedger { path: dir.to_path_buf(), reason: reason.to_string() };
        if !dir.is_dir() {
            return Err(not("the directory does not exist (run `ledger init`)"));
        }
        let backend = match Self::detect(dir) {
            Some(Backend::Sled) if !dir.join("db").is_file() || !dir.join("conf").is_file() => {
                return Err(not("no ledger database in this directory (run `ledger init`)"))
            }
            Some(b) => b,
            None => return Err(not("no ledger database in this directory (run `ledger init`)")),
        };
        let store = match Self::open_backend(dir, backend) {
            Err(e @ Error::Storage(_)) if e.to_string().contains("in use") => return Err(e),
            Err(e) => return Err(not(&format!("the database cannot be opened: {e}"))),
            Ok(s) => s,
        };
        match store.kv.get(b"meta")? {
            Some(m) if m == FORMAT_MARKER || m == FORMAT_MARKER_V1 => Ok(store),
            Some(_) => Err(not("the database has an unknown format marker")),
            None => Err(not("the database has no Provenance Ledger format marker")),
        }
    }

    fn open_backend(dir: &Path, backend: Backend) -> Result<Self> {
        // One process owns a ledger directory. A process that just closed it may hold the
        // lock for a moment longer while the engine's threads stop, so wait briefly before
        // saying the ledger is in use.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            let opened: Result<Box<dyn Kv>> = match backend {
                Backend::Sled => sled_kv::SledKv::open(dir, CACHE_BYTES).map(|k| Box::new(k) as Box<dyn Kv>),
                Backend::Fjall => fjall_kv::FjallKv::open(dir, CACHE_BYTES).map(|k| Box::new(k) as Box<dyn Kv>),
            };
            match opened {
                Err(Error::Storage(m)) if m.contains("could not acquire lock") => {
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::Storage(format!(
                            "the ledger at {} is in use by another process (is ledgerd running? use --server)",
                            dir.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => return Err(e),
                Ok(kv) => return Ok(DiskStore { kv, backend, path: dir.to_path_buf() }),
            }
        }
    }

    /// The directory of this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The engine that keeps this store.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The hash index entries whose hash starts with `prefix`, in key order.
    fn hash_index(&self, prefix: &[u8]) -> impl Iterator<Item = Result<(EntryHash, Seq)>> + '_ {
        let mut k = vec![b'h'];
        k.extend_from_slice(prefix);
        self.kv
            .prefix(&k)
            // `head` shares the `h` prefix; it is no index key.
            .filter(|kv| !matches!(kv, Ok((k, _)) if k.as_slice() == b"head"))
            .map(|kv| {
                let (k, v) = kv?;
                let h: [u8; 32] = k[1..].try_into().map_err(|_| Error::Storage("malformed hash index key".into()))?;
                Ok((EntryHash(h), decode_seq(&v)?))
            })
    }

    /// The raw key-value store under the layout, for tests that corrupt stored bytes on purpose.
    #[doc(hidden)]
    pub fn raw(&self) -> Raw<'_> {
        Raw(self.kv.as_ref())
    }
}

/// Direct access to a store's keys, bypassing every check: for tests that tamper with it.
#[doc(hidden)]
pub struct Raw<'a>(&'a dyn Kv);

#[doc(hidden)]
#[allow(missing_docs, clippy::missing_errors_doc)]
impl Raw<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.0.get(key.as_ref())
    }
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.0.write(&[(key.as_ref(), value.as_ref())], &[])
    }
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.0.write(&[], &[key.as_ref()])
    }
    pub fn keys_with_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<Vec<u8>>> {
        self.0.prefix(prefix.as_ref()).map(|kv| kv.map(|(k, _)| k)).collect()
    }
    /// Writes the derived index key `key` → `seq` as the writer would.
    pub fn insert_index(&self, key: &IndexKey, seq: Seq) -> Result<()> {
        let s = seq.0.to_be_bytes();
        let (k, v) = index_pair(key, &s);
        self.0.write(&[(&k, v)], &[])
    }
    /// Removes the derived index key `key` → `seq`.
    pub fn remove_index(&self, key: &IndexKey, seq: Seq) -> Result<()> {
        let s = seq.0.to_be_bytes();
        let (k, _) = index_pair(key, &s);
        self.0.write(&[], &[&k])
    }
}

impl Store for DiskStore {
    fn initialize(&self) -> Result<()> {
        if self.kv.get(b"meta")?.is_some() {
            return Err(Error::AlreadyExists { path: self.path.clone() });
        }
        self.kv.write(&[(b"meta", FORMAT_MARKER)], &[])
    }

    fn append(
        &self,
        batch: &[StoredEntry],
        tree: &Frontier,
        tiles: &[Tile],
        key_entries: Option<&[Seq]>,
    ) -> Result<()> {
        let Some(last) = batch.last() else { return Ok(()) };
        // Keys are built here; values (entry bytes above all) are borrowed, not copied.
        let seqs: Vec<[u8; 8]> = batch.iter().map(|e| e.seq.0.to_be_bytes()).collect();
        let head = [&last.seq.0.to_be_bytes()[..], &last.hash.0].concat();
        let mut t = tree.size().to_be_bytes().to_vec();
        for p in tree.peaks() {
            t.extend_from_slice(p);
        }
        let tiles = tile_pairs(tiles);
        let mut puts: Vec<(Vec<u8>, &[u8])> = Vec::with_capacity(batch.len() * 6 + 2);
        for (e, seq) in batch.iter().zip(&seqs) {
            puts.push((seq_key(b'e', e.seq).to_vec(), &e.bytes));
            for k in e.index_keys() {
                puts.push(index_pair(&k, seq));
            }
        }
        puts.push((b"head".to_vec(), &head));
        puts.push((b"tree".to_vec(), &t));
        let keys_record = key_entries.map(encode_seqs);
        if let Some(k) = &keys_record {
            puts.push((KEYS_RECORD.to_vec(), k));
        }
        let mut refs: Vec<(&[u8], &[u8])> = puts.iter().map(|(k, v)| (k.as_slice(), *v)).collect();
        refs.extend(tiles.iter().map(|(k, v)| (&k[..], v.as_slice())));
        self.kv.write(&refs, &[])
    }

    fn key_entries(&self) -> Result<KeyEntries> {
        let Some(v) = self.kv.get(KEYS_RECORD)? else {
            let v1 = self.kv.get(b"meta")?.is_some_and(|m| m == FORMAT_MARKER_V1);
            return Ok(if v1 { KeyEntries::NotKept } else { KeyEntries::Missing });
        };
        if v.len() % 8 != 0 {
            return Err(Error::Storage(format!("malformed key entries record ({} bytes)", v.len())));
        }
        v.chunks(8).map(decode_seq).collect::<Result<Vec<_>>>().map(KeyEntries::Recorded)
    }

    fn upgrade(&self, key_entries: &[Seq]) -> Result<()> {
        self.kv.write(&[(KEYS_RECORD, &encode_seqs(key_entries)), (b"meta", FORMAT_MARKER)], &[])
    }

    fn scan_index(&self, index: Index, f: &mut dyn FnMut(IndexKey, Seq) -> Result<()>) -> Result<()> {
        for kv in self.kv.prefix(&[index.prefix()]) {
            let (k, v) = kv?;
            // `head` shares the hash index's prefix; it is no index key.
            if index == Index::Hash && k.as_slice() == b"head" {
                continue;
            }
            let (key, seq) = decode_index_key(index, &k, &v);
            f(key, seq)?;
        }
        Ok(())
    }

    fn tile_ids(&self) -> Result<Vec<(u8, u64)>> {
        let mut out = vec![];
        for kv in self.kv.prefix(b"t") {
            let (k, _) = kv?;
            // `tree` shares the tiles' prefix; it is no tile.
            if k.as_slice() == b"tree" {
                continue;
            }
            out.push(match k.len() {
                10 => (k[1], decode_seq(&k[2..])?.0),
                _ => (u8::MAX, u64::MAX),
            });
        }
        Ok(out)
    }

    fn put_tiles(&self, tiles: &[Tile]) -> Result<()> {
        let tiles = tile_pairs(tiles);
        let refs: Vec<(&[u8], &[u8])> = tiles.iter().map(|(k, v)| (&k[..], v.as_slice())).collect();
        self.kv.write(&refs, &[])
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        let Some(v) = self.kv.get(&tile_key(level, index))? else { return Ok(None) };
        Tile::hashes_from_bytes(level, index, &v)
            .map(Some)
            .map_err(|e| Error::Storage(format!("malformed tile {level}/{index}: {e}")))
    }

    fn head(&self) -> Result<Option<(Seq, EntryHash)>> {
        let Some(v) = self.kv.get(b"head")? else { return Ok(None) };
        if v.len() != 40 {
            return Err(Error::Storage("malformed head record".into()));
        }
        let seq = decode_seq(&v[..8])?;
        let mut h = [0u8; 32];
        h.copy_from_slice(&v[8..]);
        Ok(Some((seq, EntryHash(h))))
    }

    fn tree(&self) -> Result<Option<Frontier>> {
        let Some(v) = self.kv.get(b"tree")? else { return Ok(None) };
        if v.len() < 8 || (v.len() - 8) % 32 != 0 {
            return Err(Error::Storage("malformed tree record".into()));
        }
        let size = decode_seq(&v[..8])?.0;
        let peaks = v[8..].chunks(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        Ok(Some(Frontier::from_parts(size, peaks).map_err(|e| Error::Storage(format!("malformed tree record: {e}")))?))
    }

    fn entry(&self, seq: Seq) -> Result<Option<Vec<u8>>> {
        self.kv.get(&seq_key(b'e', seq))
    }

    fn entries(&self, from: Seq, limit: u64) -> Result<Vec<Vec<u8>>> {
        let end = seq_key(b'e', Seq(from.0.saturating_add(limit)));
        let mut out = vec![];
        for (i, kv) in self.kv.range(&seq_key(b'e', from), &end).enumerate() {
            let (k, v) = kv?;
            // A gap ends the run, as a missing entry does for `entry`.
            if seq_suffix(&k)? != Seq(from.0 + i as u64) {
                break;
            }
            out.push(v);
        }
        Ok(out)
    }

    fn seq_by_hash(&self, hash: &EntryHash) -> Result<Option<Seq>> {
        let mut k = vec![b'h'];
        k.extend_from_slice(&hash.0);
        self.kv.get(&k)?.map(|v| decode_seq(&v)).transpose()
    }

    fn seqs_by_hash_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<(EntryHash, Seq)>> {
        self.hash_index(prefix).take(limit).collect()
    }

    fn seq_by_record(&self, id: &RecordId) -> Result<Option<Seq>> {
        let mut k = vec![b'r'];
        k.extend_from_slice(&id.0);
        self.kv.get(&k)?.map(|v| decode_seq(&v)).transpose()
    }

    fn subject_seqs(&self, subject: &str) -> Result<Vec<Seq>> {
        let mut k = vec![b's'];
        k.extend_from_slice(subject.as_bytes());
        k.push(0);
        self.kv.prefix(&k).map(|kv| seq_suffix(&kv?.0)).collect()
    }

    fn subjects_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut k = vec![b's'];
        k.extend_from_slice(prefix.as_bytes());
        let mut out: Vec<String> = vec![];
        for kv in self.kv.prefix(&k) {
            let (k, _) = kv?;
            let body = &k[1..k.len().saturating_sub(9)];
            let s = String::from_utf8_lossy(body).into_owned();
            if out.last() != Some(&s) {
                out.push(s);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn kind_seqs(&self, kind: Kind) -> Result<Vec<Seq>> {
        self.kv.prefix(&[b'k', kind.code()]).map(|kv| seq_suffix(&kv?.0)).collect()
    }
}
