//! [`DiskStore`]: the layout kept by a [`Backend`]: an embedded engine in one directory, or a
//! PostgreSQL database.

use std::path::{Path, PathBuf};

use ledger_core::merkle::{Frontier, Hash};
use ledger_core::record::Kind;
use ledger_core::tiles::Tile;
use ledger_core::types::{EntryHash, RecordId, Seq};

use super::codec::{
    decode_head, decode_seq, decode_tree, encode_seqs, seq_key, seq_suffix, tile_key, tile_pairs, KEYS_RECORD,
};
use super::index::{decode_index_id, decode_index_key, index_pair};
use super::{fjall_kv, parked, sled_kv, Claim, Raw};
use super::{
    Guard, HeadAndTree, Index, IndexKey, KeyEntries, Kv, Role, Store, StoredEntry, FORMAT_MARKER, FORMAT_MARKER_V1,
};
use crate::error::{Error, Result};

/// Which embedded engine keeps a [`DiskStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// fjall: one `fdatasync` per append batch. The default: power-loss durable, about a third
    /// of sled's write cost per entry, and 1.2–1.4× its append throughput through `ledgerd`
    /// (docs/BENCHMARKS.md).
    #[default]
    Fjall,
    /// sled 0.34: `flush` then `fdatasync` of its files per append batch (power-loss durable,
    /// shown by the power-cut battery).
    Sled,
    /// A PostgreSQL database (`postgres://…`), not a directory: one transaction per append
    /// batch, acknowledged once `COMMIT` returns with `synchronous_commit = on`. Opened with
    /// [`DiskStore::open_url`] and created with [`DiskStore::create_url`].
    Postgres,
}

impl Backend {
    /// The backend's name as the CLI spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fjall => "fjall",
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fjall" => Ok(Backend::Fjall),
            "sled" => Ok(Backend::Sled),
            "postgres" | "postgresql" => {
                Err("a PostgreSQL store is named by its URL: --store postgres://USER@HOST/DB".into())
            }
            other => Err(format!("unknown storage backend {other:?} (expected fjall or sled)")),
        }
    }
}

/// The store: the layout above, kept by a [`Backend`]: an embedded engine in one directory,
/// or a PostgreSQL database.
pub struct DiskStore {
    // Declared before the lock: the engine closes before the directory is released.
    kv: Box<dyn Kv>,
    backend: Backend,
    /// The directory, or the database's URL without its password.
    path: PathBuf,
    /// The `LOCK` file of an embedded store, locked for as long as the store is open (a
    /// PostgreSQL store holds an advisory lock instead).
    _lock: Option<std::fs::File>,
}

/// Locks `dir`'s `LOCK` file: one process (one handle) owns a ledger directory. Neither engine
/// is relied on for this (fjall locks nothing; sled reports contention only as text). A handle
/// dropped a moment ago may hold the lock a little longer while the engine's threads stop, so
/// this waits briefly before saying the ledger is in use.
///
/// # Errors
/// [`Error::Locked`] if another handle keeps it; [`Error::Storage`] if the file cannot be
/// opened or locked.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("LOCK");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Storage(format!("opening {}: {e}", path.display())))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: dir.to_path_buf() }),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Storage(format!("locking {}: {e}", path.display())))
            }
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        self.kv.settle();
        if self.backend == Backend::Fjall && parked::enabled() {
            // Keep the engine and a handle on the lock (a duplicate shares the lock) until the
            // process exits; the field left behind refuses every call.
            if let Some(Ok(lock)) = self._lock.as_ref().map(std::fs::File::try_clone) {
                let kv = std::mem::replace(&mut self.kv, Box::new(parked::Closed));
                parked::park(&self.path, self.backend, kv, lock);
            }
        }
    }
}

/// Makes every fjall store this process drops stay open, engine running and directory locked,
/// until the process exits; opening the same directory again reuses it. For short-lived
/// processes such as the CLI: closing a fjall keyspace waits for its background threads, up to
/// 250 ms for its monitor's sleep. Nothing durable depends on that close: every write is
/// `fdatasync`ed before it returns, and exiting with the engine open is, to the files, the
/// same as a killed process, which recovery handles. A long-running process (`ledgerd`)
/// should not call this. sled stores are closed as before (their close is cheap).
pub fn close_at_process_exit() {
    parked::enable();
}

/// The name a handle gives as the writer lease's holder when it claims on write: the program,
/// its process id and the host.
fn default_holder() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "ledger".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{program} (pid {} on {})", std::process::id(), host.trim())
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
    /// [`Error::NotALedger`] for a missing, empty or foreign directory; [`Error::Storage`] for a
    /// ledger whose files its engine cannot read (damaged); [`Error::Locked`] if another handle
    /// has it open.
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
            Err(e @ Error::Locked { .. }) => return Err(e),
            // The directory holds a ledger's files that its engine cannot read: damage, not
            // an absent ledger.
            Err(e) => {
                return Err(Error::Storage(format!(
                    "the ledger at {} is damaged: its {} files cannot be read ({e}); restore it from a backup",
                    dir.display(),
                    backend.name()
                )))
            }
            Ok(s) => s,
        };
        match store.kv.get(b"meta")? {
            Some(m) if m == FORMAT_MARKER || m == FORMAT_MARKER_V1 => Ok(store),
            Some(_) => Err(not("the database has an unknown format marker")),
            None => Err(not("the database has no Provenance Ledger format marker")),
        }
    }

    fn open_backend(dir: &Path, backend: Backend) -> Result<Self> {
        if let Some((kv, lock)) = parked::take(dir, backend) {
            return Ok(DiskStore { kv, backend, path: dir.to_path_buf(), _lock: Some(lock) });
        }
        if backend == Backend::Postgres {
            return Err(Error::Storage(
                "a PostgreSQL store is named by its URL (--store postgres://…), not a directory".into(),
            ));
        }
        let lock = lock_dir(dir)?;
        let kv: Box<dyn Kv> = match backend {
            Backend::Sled => Box::new(sled_kv::SledKv::open(dir, CACHE_BYTES)?),
            _ => Box::new(fjall_kv::FjallKv::open(dir, CACHE_BYTES)?),
        };
        Ok(DiskStore { kv, backend, path: dir.to_path_buf(), _lock: Some(lock) })
    }

    /// Creates a new store in the PostgreSQL database at `url` (`postgres://USER@HOST/DB`),
    /// which must not hold a ledger yet: its schema is created by the migrations.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if the database holds a ledger; [`Error::Storage`] if it
    /// cannot be reached; [`Error::NotWriter`] if another handle holds the writer lease.
    pub fn create_url(url: &str) -> Result<Self> {
        let store = Self::connect(url)?;
        if store.kv.get(b"meta")?.is_some() {
            return Err(Error::AlreadyExists { path: store.path.clone() });
        }
        store.initialize()?;
        Ok(store)
    }

    /// Opens the store in the PostgreSQL database at `url`, refusing a database that holds
    /// no ledger, without writing anything but the schema's migrations. The handle reads at
    /// once and claims the writer lease when it first writes, waiting up to 5 s for another
    /// holder (a stopped one's lease expires in [`super::LEASE_TTL`]; a killed one's at once).
    ///
    /// # Errors
    /// [`Error::NotALedger`] for a database without a ledger; [`Error::Storage`] if it cannot
    /// be reached. A write while another handle keeps the lease fails with
    /// [`Error::NotWriter`].
    pub fn open_url(url: &str) -> Result<Self> {
        let store = Self::connect(url)?;
        store.check_marker()?;
        Ok(store)
    }

    /// Refuses a database that holds no ledger.
    fn check_marker(&self) -> Result<()> {
        let not = |reason: &str| Error::NotALedger { path: self.path.clone(), reason: reason.to_string() };
        match self.kv.get(b"meta")? {
            Some(m) if m == FORMAT_MARKER || m == FORMAT_MARKER_V1 => Ok(()),
            Some(_) => Err(not("the database has an unknown format marker")),
            None => Err(not("the database holds no ledger (run `ledger init --store URL`)")),
        }
    }

    /// Opens the store in the PostgreSQL database at `url` as [`DiskStore::open_url`] does,
    /// coming to hold the writer lease as `claim` says ([`Store::claim_writer`]), under the name `holder` (what a
    /// standby's refusals name as the writer: `ledgerd` gives its address). Any number of
    /// handles may read one database; one at a time writes.
    ///
    /// # Errors
    /// As [`DiskStore::open_url`].
    pub fn open_url_as(url: &str, claim: Claim, holder: &str) -> Result<Self> {
        let store = Self::connect_as(url, claim, holder.to_string())?;
        store.check_marker()?;
        Ok(store)
    }

    fn connect(url: &str) -> Result<Self> {
        Self::connect_as(url, Claim::OnWrite, default_holder())
    }

    fn connect_as(url: &str, claim: Claim, holder: String) -> Result<Self> {
        let kv = Box::new(super::pg_kv::PgKv::open(url, claim, holder)?);
        Ok(DiskStore { kv, backend: Backend::Postgres, path: super::pg_kv::redact(url).into(), _lock: None })
    }

    /// Opens the store at `location`: a PostgreSQL URL or a directory.
    ///
    /// # Errors
    /// As [`DiskStore::open_url`] or [`DiskStore::open`].
    pub fn open_location(location: &Path) -> Result<Self> {
        match location.to_str().filter(|l| super::pg_kv::is_postgres(l)) {
            Some(url) => Self::open_url(url),
            None => Self::open(location),
        }
    }

    /// The directory of this store (a PostgreSQL store: its URL without the password).
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
        let mut puts: Vec<(Vec<u8>, &[u8])> = Vec::with_capacity(batch.len() * 6);
        for (e, seq) in batch.iter().zip(&seqs) {
            puts.push((seq_key(b'e', e.seq).to_vec(), &e.bytes));
            for k in e.index_keys() {
                puts.push(index_pair(&k, seq));
            }
        }
        // Entries, their index keys and the tiles just filled are new keys; the head, the tree
        // and the `Keys` record are replaced.
        let mut new: Vec<(&[u8], &[u8])> = puts.iter().map(|(k, v)| (k.as_slice(), *v)).collect();
        new.extend(tiles.iter().map(|(k, v)| (&k[..], v.as_slice())));
        let keys_record = key_entries.map(encode_seqs);
        let mut replace: Vec<(&[u8], &[u8])> = vec![(b"head", &head), (b"tree", &t)];
        if let Some(k) = &keys_record {
            replace.push((KEYS_RECORD, k));
        }
        // The head this batch extends: a handle whose view is stale writes nothing.
        let first = &batch[0];
        let before = first.seq.0.checked_sub(1).map(|s| [&s.to_be_bytes()[..], &first.prev.0].concat());
        self.kv.append(&new, &replace, Guard { key: b"head", expect: before.as_deref() })
    }

    fn role(&self) -> Role {
        self.kv.role()
    }

    fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    fn claim_writer(&self) -> Result<bool> {
        self.kv.claim_writer()
    }

    fn release_writer(&self) -> Result<()> {
        self.kv.release_writer()
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

    fn scan_index_ids(&self, index: Index, f: &mut dyn FnMut(&[u8], Seq) -> Result<()>) -> Result<()> {
        self.kv.for_each_prefix(&[index.prefix()], &mut |k, v| {
            // `head` shares the hash index's prefix; it is no index key.
            if index == Index::Hash && k == b"head" {
                return Ok(());
            }
            let (_, id, seq) = decode_index_id(index, k, v);
            f(id, seq)
        })
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
        self.kv.get(b"head")?.map(|v| decode_head(&v)).transpose()
    }

    fn tree(&self) -> Result<Option<Frontier>> {
        self.kv.get(b"tree")?.map(|v| decode_tree(&v)).transpose()
    }

    fn head_and_tree(&self) -> Result<HeadAndTree> {
        // One `get_many`: one statement, so one snapshot, on PostgreSQL.
        let mut both = self.kv.get_many(&[b"head", b"tree"])?.into_iter();
        let head = both.next().flatten().map(|v| decode_head(&v)).transpose()?;
        let tree = both.next().flatten().map(|v| decode_tree(&v)).transpose()?;
        Ok((head, tree))
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

    fn seqs_by_records(&self, ids: &[RecordId]) -> Result<Vec<Option<Seq>>> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| [&[b'r'][..], &id.0].concat()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        self.kv.get_many(&refs)?.into_iter().map(|v| v.map(|v| decode_seq(&v)).transpose()).collect()
    }

    fn index_holds(&self, keys: &[(IndexKey, Seq)]) -> Result<Vec<bool>> {
        let seqs: Vec<[u8; 8]> = keys.iter().map(|(_, s)| s.0.to_be_bytes()).collect();
        let pairs: Vec<(Vec<u8>, &[u8])> = keys.iter().zip(&seqs).map(|((k, _), s)| index_pair(k, s)).collect();
        let refs: Vec<&[u8]> = pairs.iter().map(|(k, _)| k.as_slice()).collect();
        let found = self.kv.get_many(&refs)?;
        Ok(pairs.iter().zip(found).map(|((_, want), got)| got.as_deref() == Some(*want)).collect())
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
