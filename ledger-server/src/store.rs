//! Storage: the [`Store`] trait and [`SledStore`].
//!
//! Layout in sled (one tree; key prefixes instead of several trees, because a single-tree
//! `apply_batch` is atomic and about 15× faster than a multi-tree transaction):
//!
//! | key | value |
//! |---|---|
//! | `meta` | format marker `provenance-ledger/sled/v1` |
//! | `head` | seq (u64 BE) ‖ entry hash (32) |
//! | `tree` | tree size (u64 BE) ‖ peaks (32 each): the RFC 6962 frontier after the head |
//! | `e` ‖ seq (u64 BE) | entry bytes |
//! | `h` ‖ entry hash | seq (u64 BE) |
//! | `r` ‖ record id | seq (u64 BE) |
//! | `s` ‖ subject ‖ 0x00 ‖ seq (u64 BE) | empty (commits indexed in bare `git:<sha>` form only) |
//! | `k` ‖ kind code ‖ seq (u64 BE) | empty |
//! | `t` ‖ tile level (u8) ‖ tile index (u64 BE) | a full tile: 256 hashes of 32 bytes (see `ledger_core::tiles`; partial tiles are rebuilt on open, not stored) |
//!
//! Durability: sled 0.34's `flush()` writes and calls `sync_file_range`, not `fsync`; an
//! acknowledged append survives a killed process, but a power cut may lose it (see
//! `docs/ARCHITECTURE.md`).

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

/// The embedded sled store.
pub struct SledStore {
    db: sled::Db,
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

/// Sled's page cache size: set, not left at sled's 1 GiB default (see the brief's measurements).
/// The store also runs sled in `HighThroughput` mode: it measured ~30% less time per appended
/// entry than the default `LowSpace` (docs/BENCHMARKS.md), at the cost of more disk space.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl SledStore {
    /// Creates a new store in `dir` (which must not hold a ledger yet).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], or [`Error::Storage`] if sled cannot create it.
    pub fn create(dir: &Path) -> Result<Self> {
        if dir.join("db").exists() || dir.join("conf").exists() {
            return Err(Error::AlreadyExists { path: dir.to_path_buf() });
        }
        let store = Self::open_sled(dir)?;
        store.initialize()?;
        Ok(store)
    }

    /// Opens an existing store. Refuses a directory that does not hold a ledger, without
    /// writing anything to it.
    ///
    /// # Errors
    /// [`Error::NotALedger`] for a missing, empty, foreign or corrupt directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let not = |reason: &str| Error::NotALedger { path: dir.to_path_buf(), reason: reason.to_string() };
        if !dir.is_dir() {
            return Err(not("the directory does not exist (run `ledger init`)"));
        }
        if !dir.join("db").is_file() || !dir.join("conf").is_file() {
            return Err(not("no ledger database in this directory (run `ledger init`)"));
        }
        let store = Self::open_sled(dir).map_err(|e| not(&format!("the database cannot be opened: {e}")))?;
        match store.db.get(b"meta")? {
            Some(m) if m.as_ref() == FORMAT_MARKER => Ok(store),
            Some(_) => Err(not("the database has an unknown format marker")),
            None => Err(not("the database has no Provenance Ledger format marker")),
        }
    }

    fn open_sled(dir: &Path) -> Result<Self> {
        // One process owns a ledger directory (sled holds a file lock). A process that just
        // closed it may hold the lock for a moment longer while sled's threads stop, so wait
        // briefly before saying the ledger is in use.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match Self::try_open_sled(dir) {
                Err(Error::Storage(m)) if m.contains("could not acquire lock") => {
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::Storage(format!(
                            "the ledger at {} is in use by another process (is ledgerd running? use --server)",
                            dir.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => return other,
            }
        }
    }

    fn try_open_sled(dir: &Path) -> Result<Self> {
        // sled panics on some corrupt files instead of returning an error; a corrupt
        // directory must be an error, not a crash.
        let cfg = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).mode(sled::Mode::HighThroughput);
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || cfg.open()));
        let db = match opened {
            Ok(r) => r?,
            Err(_) => return Err(Error::Storage("sled could not read the database files (corrupt?)".into())),
        };
        Ok(SledStore { db, path: dir.to_path_buf() })
    }

    /// The directory of this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash index entries whose hash starts with `prefix`, in key order.
    fn hash_index(&self, prefix: &[u8]) -> impl Iterator<Item = Result<(EntryHash, Seq)>> + '_ {
        let mut k = vec![b'h'];
        k.extend_from_slice(prefix);
        self.db
            .scan_prefix(k)
            // `head` shares the `h` prefix; it is no index key.
            .filter(|kv| !matches!(kv, Ok((k, _)) if k.as_ref() == b"head"))
            .map(|kv| {
                let (k, v) = kv?;
                let h: [u8; 32] = k[1..].try_into().map_err(|_| Error::Storage("malformed hash index key".into()))?;
                Ok((EntryHash(h), decode_seq(&v)?))
            })
    }

    /// The underlying sled database, for tests that corrupt stored bytes on purpose.
    #[doc(hidden)]
    pub fn raw(&self) -> &sled::Db {
        &self.db
    }
}

impl Store for SledStore {
    fn initialize(&self) -> Result<()> {
        if self.db.get(b"meta")?.is_some() {
            return Err(Error::AlreadyExists { path: self.path.clone() });
        }
        self.db.insert(b"meta", FORMAT_MARKER)?;
        self.db.flush()?;
        Ok(())
    }

    fn append(&self, batch: &[StoredEntry], tree: &Frontier, tiles: &[Tile]) -> Result<()> {
        let Some(last) = batch.last() else { return Ok(()) };
        let mut b = sled::Batch::default();
        for e in batch {
            b.insert(&seq_key(b'e', e.seq)[..], e.bytes.as_slice());
            let seq = e.seq.0.to_be_bytes();
            let mut hk = vec![b'h'];
            hk.extend_from_slice(&e.hash.0);
            b.insert(hk, &seq[..]);
            let mut rk = vec![b'r'];
            rk.extend_from_slice(&e.record_id.0);
            b.insert(rk, &seq[..]);
            for s in &e.subjects {
                let mut sk = Vec::with_capacity(s.len() + 10);
                sk.push(b's');
                sk.extend_from_slice(s.as_bytes());
                sk.push(0);
                sk.extend_from_slice(&seq);
                b.insert(sk, &[][..]);
            }
            let mut kk = vec![b'k', e.kind.code()];
            kk.extend_from_slice(&seq);
            b.insert(kk, &[][..]);
        }
        let mut head = last.seq.0.to_be_bytes().to_vec();
        head.extend_from_slice(&last.hash.0);
        b.insert(&b"head"[..], head);
        let mut t = tree.size().to_be_bytes().to_vec();
        for p in tree.peaks() {
            t.extend_from_slice(p);
        }
        b.insert(&b"tree"[..], t);
        for tile in tiles {
            b.insert(&tile_key(tile.level, tile.index)[..], tile.to_bytes());
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn put_tiles(&self, tiles: &[Tile]) -> Result<()> {
        let mut b = sled::Batch::default();
        for tile in tiles {
            b.insert(&tile_key(tile.level, tile.index)[..], tile.to_bytes());
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        let Some(v) = self.db.get(tile_key(level, index))? else { return Ok(None) };
        Tile::hashes_from_bytes(level, index, &v)
            .map(Some)
            .map_err(|e| Error::Storage(format!("malformed tile {level}/{index}: {e}")))
    }

    fn head(&self) -> Result<Option<(Seq, EntryHash)>> {
        let Some(v) = self.db.get(b"head")? else { return Ok(None) };
        if v.len() != 40 {
            return Err(Error::Storage("malformed head record".into()));
        }
        let seq = decode_seq(&v[..8])?;
        let mut h = [0u8; 32];
        h.copy_from_slice(&v[8..]);
        Ok(Some((seq, EntryHash(h))))
    }

    fn tree(&self) -> Result<Option<Frontier>> {
        let Some(v) = self.db.get(b"tree")? else { return Ok(None) };
        if v.len() < 8 || (v.len() - 8) % 32 != 0 {
            return Err(Error::Storage("malformed tree record".into()));
        }
        let size = decode_seq(&v[..8])?.0;
        let peaks = v[8..].chunks(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        Ok(Some(Frontier::from_parts(size, peaks).map_err(|e| Error::Storage(format!("malformed tree record: {e}")))?))
    }

    fn entry(&self, seq: Seq) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(seq_key(b'e', seq))?.map(|v| v.to_vec()))
    }

    fn entries(&self, from: Seq, limit: u64) -> Result<Vec<Vec<u8>>> {
        let end = seq_key(b'e', Seq(from.0.saturating_add(limit)));
        let mut out = vec![];
        for (i, kv) in self.db.range(seq_key(b'e', from)..end).enumerate() {
            let (k, v) = kv?;
            // A gap ends the run, as a missing entry does for `entry`.
            if seq_suffix(&k)? != Seq(from.0 + i as u64) {
                break;
            }
            out.push(v.to_vec());
        }
        Ok(out)
    }

    fn seq_by_hash(&self, hash: &EntryHash) -> Result<Option<Seq>> {
        let mut k = vec![b'h'];
        k.extend_from_slice(&hash.0);
        self.db.get(k)?.map(|v| decode_seq(&v)).transpose()
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
        self.db.get(k)?.map(|v| decode_seq(&v)).transpose()
    }

    fn subject_seqs(&self, subject: &str) -> Result<Vec<Seq>> {
        let mut k = vec![b's'];
        k.extend_from_slice(subject.as_bytes());
        k.push(0);
        self.db.scan_prefix(k).map(|kv| seq_suffix(&kv?.0)).collect()
    }

    fn subjects_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut k = vec![b's'];
        k.extend_from_slice(prefix.as_bytes());
        let mut out: Vec<String> = vec![];
        for kv in self.db.scan_prefix(k) {
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
        self.db.scan_prefix([b'k', kind.code()]).map(|kv| seq_suffix(&kv?.0)).collect()
    }
}
