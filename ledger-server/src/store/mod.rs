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
//! | `meta` | format marker `provenance-ledger/sled/v1` (the layout's name, for both backends) |
//! | `head` | seq (u64 BE) ‖ entry hash (32) |
//! | `tree` | tree size (u64 BE) ‖ peaks (32 each): the RFC 6962 frontier after the head |
//! | `e` ‖ seq (u64 BE) | entry bytes |
//! | `h` ‖ entry hash | seq (u64 BE) |
//! | `r` ‖ record id | seq (u64 BE) |
//! | `s` ‖ subject ‖ 0x00 ‖ seq (u64 BE) | empty (commits indexed in bare `git:<sha>` form only) |
//! | `k` ‖ kind code ‖ seq (u64 BE) | empty |
//! | `t` ‖ tile level (u8) ‖ tile index (u64 BE) | a full tile: 256 hashes of 32 bytes (see `ledger_core::tiles`; partial tiles are rebuilt on open, not stored) |

mod fjall_kv;
mod sled_kv;

use std::path::{Path, PathBuf};

use ledger_core::merkle::{Frontier, Hash};
use ledger_core::record::Kind;
use ledger_core::tiles::Tile;
use ledger_core::types::{EntryHash, RecordId, Seq};

use crate::error::{Error, Result};

/// The format marker stored under `meta`.
pub const FORMAT_MARKER: &[u8] = b"provenance-ledger/sled/v1";

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
    fn append(&self, batch: &[StoredEntry], tree: &Frontier, tiles: &[Tile]) -> Result<()>;
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
    /// Calls `f` with every (entry hash, seq) pair of the hash index, in index order.
    ///
    /// # Errors
    /// [`Error::Storage`] on a read error or a malformed key; `f`'s errors.
    fn scan_hash_index(&self, f: &mut dyn FnMut(EntryHash, Seq) -> Result<()>) -> Result<()> {
        for (hash, seq) in self.seqs_by_hash_prefix(&[], usize::MAX)? {
            f(hash, seq)?;
        }
        Ok(())
    }
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
            Some(m) if m == FORMAT_MARKER => Ok(store),
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
}

impl Store for DiskStore {
    fn initialize(&self) -> Result<()> {
        if self.kv.get(b"meta")?.is_some() {
            return Err(Error::AlreadyExists { path: self.path.clone() });
        }
        self.kv.write(&[(b"meta", FORMAT_MARKER)], &[])
    }

    fn append(&self, batch: &[StoredEntry], tree: &Frontier, tiles: &[Tile]) -> Result<()> {
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
            puts.push(([&[b'h'][..], &e.hash.0].concat(), seq));
            puts.push(([&[b'r'][..], &e.record_id.0].concat(), seq));
            for s in &e.subjects {
                puts.push(([&[b's'][..], s.as_bytes(), &[0], seq].concat(), &[]));
            }
            puts.push(([&[b'k', e.kind.code()][..], seq].concat(), &[]));
        }
        puts.push((b"head".to_vec(), &head));
        puts.push((b"tree".to_vec(), &t));
        let mut refs: Vec<(&[u8], &[u8])> = puts.iter().map(|(k, v)| (k.as_slice(), *v)).collect();
        refs.extend(tiles.iter().map(|(k, v)| (&k[..], v.as_slice())));
        self.kv.write(&refs, &[])
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

    fn scan_hash_index(&self, f: &mut dyn FnMut(EntryHash, Seq) -> Result<()>) -> Result<()> {
        for pair in self.hash_index(&[]) {
            let (hash, seq) = pair?;
            f(hash, seq)?;
        }
        Ok(())
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
