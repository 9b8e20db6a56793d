//! The append path and storage (in process): atomic batches, deduplication, reopen checks,
//! and a write failure that stops further appends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ledger_core::entry::SignedRecord;
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_store::ledger::{Ledger, LogFilter};
use ledger_store::store::{Backend, DiskStore, Store, StoredEntry};
use ledger_store::Error;

use crate::support::{key, key_rec, rec, signed};

/// The clock of these tests: the time `support::rec` gives records.
struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(1_764_000_000_000)
    }
}

fn review(c: char) -> Record {
    rec(Body::Review(Review {
        repo: RepoName::new("o/r").unwrap(),
        reviewer: Identity::new("Bo <bo@example.com>").unwrap(),
        verdict: Verdict::Approved,
        commit: CommitId::new(c.to_string().repeat(40)).unwrap(),
        source: None,
    }))
}

fn new_ledger<S: Store>(store: S) -> Ledger<S> {
    let admin = key("admin");
    let l = Ledger::create(
        store,
        &signed(&key_rec(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin),
        Arc::new(FixedClock),
    )
    .unwrap();
    l.append(&[signed(&key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Review]), &admin)]).unwrap();
    l
}

#[test]
fn entries_survive_reopen_and_indexes_answer() {
    let dir = tempfile::tempdir().unwrap();
    let head = {
        let l = new_ledger(DiskStore::create(dir.path()).unwrap());
        let r = l.append(&[signed(&review('a'), &key("ci")), signed(&review('b'), &key("ci"))]).unwrap();
        assert_eq!(r.iter().map(|r| r.seq.0).collect::<Vec<_>>(), [2, 3]);
        l.head()
    };
    let l = Ledger::open(crate::support::open_store(dir.path()), Arc::new(FixedClock)).unwrap();
    assert_eq!(l.head(), head);
    assert_eq!(l.keys().len(), 2, "key register rebuilt from key entries");
    let commit: ledger_core::subject::Subject = format!("git:{}", "a".repeat(40)).parse().unwrap();
    let hits = l.log(&LogFilter { subject: Some(commit), ..Default::default() }).unwrap();
    assert_eq!(hits.iter().map(|v| v.seq.0).collect::<Vec<_>>(), [2]);
    assert_eq!(l.log(&LogFilter { kind: Some(Kind::Key), ..Default::default() }).unwrap().len(), 2);
    assert_eq!(
        l.resolve("bbbbbbb").unwrap().to_string(),
        format!("git:{}", "b".repeat(40)),
        "abbreviations resolve to the bare commit"
    );
    // The ledger appends after reopening, continuing the chain.
    let r = l.append(&[signed(&review('c'), &key("ci"))]).unwrap();
    assert_eq!(r[0].seq.0, 4);
    assert_eq!(l.verify(|_| {}).unwrap().entries, 5);
}

#[test]
fn a_layout_v1_ledger_is_upgraded_on_open_and_old_binaries_then_refuse_it() {
    use ledger_store::store::{KeyEntries, FORMAT_MARKER, FORMAT_MARKER_V1};
    let dir = tempfile::tempdir().unwrap();
    {
        let l = new_ledger(DiskStore::create(dir.path()).unwrap());
        l.append(&[signed(&review('a'), &key("ci"))]).unwrap();
    }
    // As a layout v1 ledger was written: its marker, and no record of key entries.
    {
        let s = crate::support::open_store(dir.path());
        s.raw().insert("meta", FORMAT_MARKER_V1).unwrap();
        s.raw().remove("Keys").unwrap();
        assert_eq!(s.key_entries().unwrap(), KeyEntries::NotKept);
    }
    let l = Ledger::open(crate::support::open_store(dir.path()), Arc::new(FixedClock)).unwrap();
    assert_eq!(l.store().key_entries().unwrap(), KeyEntries::Recorded(vec![Seq(0), Seq(1)]));
    assert_eq!(l.store().raw().get("meta").unwrap().as_deref(), Some(FORMAT_MARKER));
    l.verify(|_| {}).unwrap();
    // Later key entries keep the record current.
    l.append(&[signed(&key_rec(KeyAction::Register, "cd", &key("cd"), vec![Kind::Review]), &key("admin"))]).unwrap();
    assert_eq!(l.store().key_entries().unwrap(), KeyEntries::Recorded(vec![Seq(0), Seq(1), Seq(3)]));
    l.verify(|_| {}).unwrap();
}

#[test]
fn a_batch_with_one_bad_record_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = new_ledger(DiskStore::create(dir.path()).unwrap());
    let before = l.head();
    let err = l.append(&[signed(&review('a'), &key("ci")), signed(&review('b'), &key("stranger"))]).unwrap_err();
    assert!(matches!(err, Error::Rejected(ledger_core::Error::UnknownKey { .. })), "{err}");
    assert_eq!(l.head(), before);
    assert!(l.get(Seq(2)).unwrap().is_none());
}

#[test]
fn duplicates_in_and_across_batches_return_the_original_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let l = new_ledger(DiskStore::create(dir.path()).unwrap());
    let s = signed(&review('a'), &key("ci"));
    let r = l.append(&[s.clone(), s.clone()]).unwrap();
    assert_eq!((r[0].duplicate, r[1].duplicate), (false, true));
    assert_eq!(r[0].seq, r[1].seq);
    let again = l.append(std::slice::from_ref(&s)).unwrap();
    assert_eq!((again[0].seq, again[0].hash, again[0].duplicate), (r[0].seq, r[0].hash, true));
    assert_eq!(l.len(), 3);
}

#[test]
fn opening_a_store_whose_head_was_altered_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    {
        let l = new_ledger(DiskStore::create(dir.path()).unwrap());
        l.append(&[signed(&review('a'), &key("ci"))]).unwrap();
    }
    let store = crate::support::open_store(dir.path());
    let mut k = vec![b'e'];
    k.extend_from_slice(&2u64.to_be_bytes());
    let mut v = store.raw().get(&k).unwrap().unwrap();
    let n = v.len() - 5;
    v[n] ^= 0x40;
    store.raw().insert(k, v).unwrap();
    match Ledger::open(store, Arc::new(FixedClock)) {
        Err(Error::Tampered { seq, .. }) => assert_eq!(seq, Seq(2)),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a tampered head must not open"),
    }
}

/// A store that fails its `n`-th append, as a disk error would.
struct FailingStore {
    inner: DiskStore,
    appends: AtomicUsize,
    fail_at: usize,
    gate: Option<Gate>,
}

/// Holds the `at`-th store append once its batch is in the store: says so, then waits to be
/// released.
struct Gate {
    at: usize,
    entered: std::sync::mpsc::SyncSender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Store for FailingStore {
    fn initialize(&self) -> ledger_store::Result<()> {
        self.inner.initialize()
    }
    fn append(
        &self,
        batch: &[StoredEntry],
        tree: &ledger_core::merkle::Frontier,
        tiles: &[ledger_core::tiles::Tile],
        key_entries: Option<&[Seq]>,
    ) -> ledger_store::Result<()> {
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            return Err(Error::Storage("injected flush failure".into()));
        }
        self.inner.append(batch, tree, tiles, key_entries)?;
        // Held with the batch in the store, as a flush in progress leaves it: readable by a
        // store scan, not yet acknowledged.
        if let Some(g) = self.gate.as_ref().filter(|g| g.at == n) {
            g.entered.send(()).unwrap();
            g.release.lock().unwrap().recv().unwrap();
        }
        Ok(())
    }
    fn key_entries(&self) -> ledger_store::Result<ledger_store::store::KeyEntries> {
        self.inner.key_entries()
    }
    fn upgrade(&self, seqs: &[Seq]) -> ledger_store::Result<()> {
        self.inner.upgrade(seqs)
    }
    fn scan_index(
        &self,
        index: ledger_store::store::Index,
        f: &mut dyn FnMut(ledger_store::store::IndexKey, Seq) -> ledger_store::Result<()>,
    ) -> ledger_store::Result<()> {
        self.inner.scan_index(index, f)
    }
    fn tile_ids(&self) -> ledger_store::Result<Vec<(u8, u64)>> {
        self.inner.tile_ids()
    }
    fn put_tiles(&self, tiles: &[ledger_core::tiles::Tile]) -> ledger_store::Result<()> {
        self.inner.put_tiles(tiles)
    }
    fn tile(&self, level: u8, index: u64) -> ledger_store::Result<Option<Vec<ledger_core::merkle::Hash>>> {
        self.inner.tile(level, index)
    }
    fn tree(&self) -> ledger_store::Result<Option<ledger_core::merkle::Frontier>> {
        self.inner.tree()
    }
    fn head(&self) -> ledger_store::Result<Option<(Seq, EntryHash)>> {
        self.inner.head()
    }
    fn entry(&self, seq: Seq) -> ledger_store::Result<Option<Vec<u8>>> {
        self.inner.entry(seq)
    }
    fn seq_by_hash(&self, hash: &EntryHash) -> ledger_store::Result<Option<Seq>> {
        self.inner.seq_by_hash(hash)
    }
    fn seqs_by_hash_prefix(&self, prefix: &[u8], limit: usize) -> ledger_store::Result<Vec<(EntryHash, Seq)>> {
        self.inner.seqs_by_hash_prefix(prefix, limit)
    }
    fn seq_by_record(&self, id: &RecordId) -> ledger_store::Result<Option<Seq>> {
        self.inner.seq_by_record(id)
    }
    fn subject_seqs(&self, subject: &str) -> ledger_store::Result<Vec<Seq>> {
        self.inner.subject_seqs(subject)
    }
    fn subjects_with_prefix(&self, prefix: &str, limit: usize) -> ledger_store::Result<Vec<String>> {
        self.inner.subjects_with_prefix(prefix, limit)
    }
    fn kind_seqs(&self, kind: Kind) -> ledger_store::Result<Vec<Seq>> {
        self.inner.kind_seqs(kind)
    }
}

#[test]
fn a_failed_write_stops_all_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = FailingStore {
        inner: DiskStore::create(dir.path()).unwrap(),
        appends: AtomicUsize::new(0),
        fail_at: 3,
        gate: None,
    };
    let l = new_ledger(store);
    let before = l.head();
    let err = l.append(&[signed(&review('a'), &key("ci"))]).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    assert_eq!(l.head(), before, "the in-memory head did not advance");
    let err = l.append(&[signed(&review('b'), &key("ci"))]).unwrap_err();
    assert!(matches!(err, Error::Unavailable), "{err}");
}

#[test]
fn signature_checks_and_reads_do_not_wait_for_a_write_in_progress() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered_rx) = mpsc::sync_channel(1);
    let (release_tx, release_rx) = mpsc::sync_channel(1);
    let store = FailingStore {
        inner: DiskStore::create(dir.path()).unwrap(),
        appends: AtomicUsize::new(0),
        fail_at: usize::MAX,
        // Appends 1 and 2 are the genesis and the `ci` key of `new_ledger`.
        gate: Some(Gate { at: 3, entered: entered_tx, release: std::sync::Mutex::new(release_rx) }),
    };
    let l = Arc::new(new_ledger(store));
    let before = l.len();
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || l.append(&[signed(&review('a'), &key("ci"))]))
    };
    entered_rx.recv_timeout(Duration::from_secs(10)).expect("the write reached the store");
    // The write is held inside the store (as during a flush). A request handler's signature
    // check and the readers answer meanwhile, and see the ledger as it was.
    let (tx, rx) = mpsc::channel();
    let reader = l.clone();
    std::thread::spawn(move || {
        let ok = reader.verify_signature(&signed(&review('b'), &key("ci"))).is_ok();
        tx.send((ok, reader.len(), reader.tree_head().0)).unwrap();
    });
    let (ok, len, size) = rx.recv_timeout(Duration::from_secs(10)).expect("a signature check waited for the write");
    assert!(ok);
    assert_eq!((len, size), (before, before));
    release_tx.send(()).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!((l.len(), l.tree_head().0), (before + 1, before + 1));
}

#[test]
fn each_backend_is_detected_on_open_locked_while_open_and_refuses_a_second_create() {
    for backend in [Backend::Fjall, Backend::Sled] {
        let dir = tempfile::tempdir().unwrap();
        {
            let l = new_ledger(DiskStore::create_with(dir.path(), backend).unwrap());
            l.append(&[signed(&review('a'), &key("ci"))]).unwrap();
            // One process owns a ledger: a second handle is refused while the first is open.
            let err = DiskStore::open(dir.path()).err().expect("a second handle must be refused");
            assert!(matches!(err, Error::Locked { .. }), "{backend:?}: {err}");
        }
        let store = crate::support::open_store(dir.path());
        assert_eq!(store.backend(), backend);
        let l = Ledger::open(store, Arc::new(FixedClock)).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.verify(|_| {}).unwrap().entries, 3);
        drop(l);
        for other in [Backend::Fjall, Backend::Sled] {
            assert!(
                matches!(DiskStore::create_with(dir.path(), other), Err(Error::AlreadyExists { .. })),
                "{backend:?} then {other:?}"
            );
        }
    }
    assert_eq!("sled".parse::<Backend>(), Ok(Backend::Sled));
    assert!("rocks".parse::<Backend>().unwrap_err().contains("fjall or sled"));
}

#[test]
fn a_foreign_directory_is_not_a_ledger_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file.txt"), b"x").unwrap();
    assert!(matches!(DiskStore::open(dir.path()), Err(Error::NotALedger { .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn proofs_hold_across_tile_boundaries_and_reopens() {
    use ledger_core::merkle;
    let dir = tempfile::tempdir().unwrap();
    let (admin, ev) = (key("admin"), key("ev"));
    {
        let l = new_ledger(DiskStore::create(dir.path()).unwrap());
        l.append(&[signed(&key_rec(KeyAction::Register, "ev", &ev, vec![Kind::Evidence]), &admin)]).unwrap();
    }
    let mut next = 0;
    // Reopen between rounds (partial tiles are rebuilt on open); batches of uneven sizes cross
    // the 256-leaf tile boundaries at different offsets.
    for _round in 0..4 {
        let l = Ledger::open(crate::support::open_store(dir.path()), Arc::new(FixedClock)).unwrap();
        for batch in [1usize, 7, 250, 3] {
            let records: Vec<SignedRecord> =
                (next..next + batch).map(|i| signed(&crate::support::evidence(&format!("tile-{i}")), &ev)).collect();
            l.append(&records).unwrap();
            next += batch;
        }
        let n = l.len();
        let leaves: Vec<merkle::Hash> =
            (0..n).map(|s| merkle::leaf_hash(&l.get(Seq(s)).unwrap().unwrap().bytes)).collect();
        for size in [1, 255, 256, 257, n / 2, n - 1, n] {
            let all = &leaves[..size as usize];
            assert_eq!(l.root_at(size).unwrap(), merkle::root(all), "root at {size} of {n}");
            for seq in [0, size / 3, size - 1] {
                let (root, proof) = l.inclusion_proof(Seq(seq), size).unwrap();
                assert_eq!(proof, merkle::inclusion_proof(all, seq as usize).unwrap(), "{seq} in {size} of {n}");
                assert_eq!(root, merkle::root(all));
            }
            let old = (size / 2).max(1);
            let (_, _, proof) = l.consistency_proof(old, size).unwrap();
            assert_eq!(proof, merkle::consistency_proof(all, old as usize).unwrap(), "{old} → {size} of {n}");
        }
        assert_eq!(l.verify(|_| {}).unwrap().entries, n);
    }
    assert_eq!(next, 4 * 261);
}

#[test]
fn log_each_answers_in_seq_order_stops_when_asked_and_limits_to_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let l = new_ledger(DiskStore::create(dir.path()).unwrap());
    let reviews: Vec<_> = "0123456789".chars().map(|c| signed(&review(c), &key("ci"))).collect();
    l.append(&reviews).unwrap();
    let seqs = |filter: &LogFilter, stop_after: usize| {
        let mut seen = vec![];
        l.log_each(filter, |v| {
            seen.push(v.seq.0);
            Ok(seen.len() < stop_after)
        })
        .unwrap();
        seen
    };
    let all = LogFilter::default();
    assert_eq!(seqs(&all, usize::MAX), (0..12).collect::<Vec<_>>());
    assert_eq!(seqs(&all, 3), vec![0, 1, 2], "stops when the callback says so");
    let reviews_only = LogFilter { kind: Some(Kind::Review), ..Default::default() };
    assert_eq!(seqs(&reviews_only, usize::MAX), (2..12).collect::<Vec<_>>());
    let latest = LogFilter { kind: Some(Kind::Review), limit: Some(4), ..Default::default() };
    assert_eq!(seqs(&latest, usize::MAX), vec![8, 9, 10, 11], "the latest four, in seq order");
    assert_eq!(seqs(&latest, 2), vec![8, 9]);
    let window = LogFilter { from_seq: Some(Seq(3)), to_seq: Some(Seq(6)), limit: Some(2), ..Default::default() };
    assert_eq!(seqs(&window, usize::MAX), vec![5, 6]);
    // `log` is `log_each` gathered.
    let gathered: Vec<u64> = l.log(&latest).unwrap().iter().map(|v| v.seq.0).collect();
    assert_eq!(gathered, vec![8, 9, 10, 11]);
}

#[test]
fn verify_while_appends_continue_checks_the_ledger_as_of_its_start() {
    // `ledgerd` answers Verify while the sequencer keeps appending: entries, index keys, tiles
    // and the tree written during a verification belong to the next one, not to tampering.
    for backend in crate::support::backends() {
        let fx = crate::support::Fixture::with_backend(backend);
        let l = Arc::new(Ledger::open(crate::support::open_store(&fx.db()), Arc::new(FixedClock)).unwrap());
        let writer = {
            let l = l.clone();
            std::thread::spawn(move || {
                for i in 0..60 {
                    let batch: Vec<_> = (0..40)
                        .map(|j| signed(&crate::support::evidence(&format!("live-{i}-{j}")), &key("ci")))
                        .collect();
                    l.append(&batch).unwrap();
                }
            })
        };
        let mut verified = vec![];
        while !writer.is_finished() {
            verified.push(l.verify(|_| {}).unwrap_or_else(|e| panic!("{backend:?}: {e}")).entries);
        }
        writer.join().unwrap();
        assert_eq!(l.verify(|_| {}).unwrap().entries, 2 + 60 * 40, "{backend:?}");
        assert!(verified.len() >= 2, "{backend:?}: verify ran during the appends ({verified:?})");
    }
}

/// `review(c)` signed by `ci`, its signature checked by `l`.
fn verified(l: &Ledger<FailingStore>, c: char) -> ledger_core::entry::VerifiedRecord {
    l.verify_signature(&signed(&review(c), &key("ci"))).unwrap()
}

/// A ledger over a [`FailingStore`] whose third append (the first after `new_ledger`'s two)
/// fails when `fail` is set, and is otherwise held until released.
fn gated_ledger(
    dir: &std::path::Path,
    fail: bool,
) -> (Arc<Ledger<FailingStore>>, std::sync::mpsc::Receiver<()>, std::sync::mpsc::SyncSender<()>) {
    let (entered_tx, entered_rx) = std::sync::mpsc::sync_channel(1);
    let (release_tx, release_rx) = std::sync::mpsc::sync_channel(1);
    let store = FailingStore {
        inner: DiskStore::create(dir).unwrap(),
        appends: AtomicUsize::new(0),
        fail_at: if fail { 3 } else { usize::MAX },
        gate: (!fail).then(|| Gate { at: 3, entered: entered_tx, release: std::sync::Mutex::new(release_rx) }),
    };
    (Arc::new(new_ledger(store)), entered_rx, release_tx)
}

#[test]
fn the_next_batch_is_sequenced_while_one_is_written_and_published_only_once_durable() {
    use ledger_store::ledger::Atomicity::EachOnItsOwn;
    let dir = tempfile::tempdir().unwrap();
    let (l, entered, release) = gated_ledger(dir.path(), false);
    let verified = |c: char| verified(&l, c);
    let before = l.len();
    let first = l.prepare_batch(vec![verified('a')], EachOnItsOwn);
    let committer = {
        let l = l.clone();
        std::thread::spawn(move || l.commit_batch(first))
    };
    entered.recv_timeout(std::time::Duration::from_secs(10)).expect("the first batch reached the store");
    // The first batch is being written: the next one is sequenced onto it (its `a` is a
    // duplicate of the record in flight), and neither is visible yet.
    let second = l.prepare_batch(vec![verified('b'), verified('a')], EachOnItsOwn);
    // The batch is in the store but its write has not returned: nothing a power cut could
    // still take is readable, by seq, by hash, through an index, or as a tree head or proof.
    let stored = l.store().entry(Seq(before)).unwrap().expect("the batch is in the store");
    assert_eq!(l.len(), before, "a batch in flight is not published");
    assert!(l.get(Seq(before)).unwrap().is_none());
    let hash = ledger_core::entry::entry_hash(&stored).to_hex();
    assert!(matches!(l.find_entry(&hash), Err(Error::NotFound(_))));
    let reviews = l.log(&LogFilter { kind: Some(Kind::Review), ..LogFilter::default() }).unwrap();
    assert!(reviews.iter().all(|v| v.seq.0 < before), "the kind index's new key is not followed");
    assert_eq!(l.tree_head().0, before);
    assert!(l.inclusion_proof(Seq(before), before + 1).is_err());
    release.send(()).unwrap();
    let a = committer.join().unwrap().pop().unwrap().unwrap();
    assert_eq!((a.seq, a.duplicate), (Seq(before), false));
    assert_eq!(l.len(), before + 1);
    let r: Vec<_> = l.commit_batch(second).into_iter().map(Result::unwrap).collect();
    assert_eq!((r[0].seq, r[0].duplicate), (Seq(before + 1), false));
    assert_eq!(r[1], ledger_store::ledger::Receipt { duplicate: true, ..a }, "the in-flight record's receipt");
    assert_eq!(l.len(), before + 2);
    assert_eq!(l.verify(|_| {}).unwrap().entries, before + 2);
}

#[test]
fn a_batch_sequenced_onto_one_that_fails_fails_too_and_nothing_of_either_is_published() {
    use ledger_store::ledger::Atomicity::EachOnItsOwn;
    let dir = tempfile::tempdir().unwrap();
    let (l, _entered, _release) = gated_ledger(dir.path(), true);
    let verified = |c: char| verified(&l, c);
    let before = l.head();
    let first = l.prepare_batch(vec![verified('a')], EachOnItsOwn);
    let second = l.prepare_batch(vec![verified('b'), verified('a')], EachOnItsOwn);
    let r = l.commit_batch(first);
    assert!(matches!(r[0], Err(Error::Storage(_))), "{:?}", r[0]);
    let r = l.commit_batch(second);
    // The new record and the duplicate of the lost one both fail: neither was stored.
    assert!(r.iter().all(|r| matches!(r, Err(Error::Storage(_)))), "{r:?}");
    assert_eq!(l.head(), before);
    let err = l.append(&[signed(&review('c'), &key("ci"))]).unwrap_err();
    assert!(matches!(err, Error::Unavailable), "{err}");
}

#[test]
fn a_batch_of_only_duplicates_in_flight_does_not_break_the_next_one() {
    use ledger_store::ledger::Atomicity::EachOnItsOwn;
    let dir = tempfile::tempdir().unwrap();
    let (l, entered, release) = gated_ledger(dir.path(), false);
    let verified = |c: char| verified(&l, c);
    let before = l.len();
    // Three batches sequenced before any is written: the second appends nothing (its record
    // is in the first), the third extends the first.
    let first = l.prepare_batch(vec![verified('a')], EachOnItsOwn);
    let second = l.prepare_batch(vec![verified('a')], EachOnItsOwn);
    let third = l.prepare_batch(vec![verified('c')], EachOnItsOwn);
    let committer = {
        let l = l.clone();
        std::thread::spawn(move || l.commit_batch(first))
    };
    entered.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    release.send(()).unwrap();
    let a = committer.join().unwrap().pop().unwrap().unwrap();
    let dup = l.commit_batch(second).pop().unwrap().unwrap();
    let c = l.commit_batch(third).pop().unwrap().unwrap();
    assert_eq!((a.seq, dup.seq, dup.duplicate), (Seq(before), Seq(before), true));
    assert_eq!((c.seq, c.duplicate), (Seq(before + 1), false));
    assert_eq!(l.verify(|_| {}).unwrap().entries, before + 2);
}
