//! The tamper battery: a ledger of 1,000+ entries, 1,000 random single-byte flips of stored
//! entries, and each structural attack, each caught and named.
//!
//! The 1,000 flips are checked with the chain replay that `verify` runs (from snapshots of the
//! replay state every 64 entries, so the battery stays fast); a sample of them, and every
//! structural attack, go through `Ledger::verify` on the real store. Truncating the tail and
//! rewriting history re-signed with the log key leave a self-consistent store: they are caught
//! by a pinned checkpoint's consistency proof, as the docs say.

use std::sync::Arc;

use ledger_core::chain::ChainState;
use ledger_core::merkle;
use ledger_core::record::Kind;
use ledger_core::types::{EntryHash, RecordId, Seq};
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{index_keys, indexed_subjects, Backend, DiskStore, Index, IndexKey, Raw};
use ledger_store::Error;

use crate::support::{evidence, key, signed, Fixture};

const ENTRIES: u64 = 1_002;

fn store(fx: &Fixture) -> DiskStore {
    crate::support::open_store(&fx.db())
}

/// A ledger of `ENTRIES` entries and the stored bytes of each.
fn build() -> (Fixture, Vec<Vec<u8>>) {
    build_with(Backend::default())
}

/// [`build`] on the given storage backend.
fn build_with(backend: Backend) -> (Fixture, Vec<Vec<u8>>) {
    let fx = Fixture::with_backend(backend);
    let l = Ledger::open(store(&fx), Arc::new(SystemClock)).unwrap();
    let ci = key("ci");
    let records: Vec<_> = (0..ENTRIES - 2).map(|i| signed(&evidence(&format!("tamper-{i}")), &ci)).collect();
    for chunk in records.chunks(250) {
        l.append(chunk).unwrap();
    }
    assert_eq!(l.len(), ENTRIES);
    let bytes = (0..ENTRIES).map(|s| l.get(ledger_core::types::Seq(s)).unwrap().unwrap().bytes).collect();
    drop(l);
    (fx, bytes)
}

/// A tiny deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn a_thousand_random_byte_flips_are_each_caught_at_their_entry() {
    let (_fx, entries) = build();
    // Replay states before every 64th entry.
    let mut snapshots = vec![];
    let mut c = ChainState::new();
    for (i, e) in entries.iter().enumerate() {
        if i % 64 == 0 {
            snapshots.push(c.clone());
        }
        c.replay(e).unwrap();
    }
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for n in 0..1_000 {
        let seq = (rng.next() % ENTRIES) as usize;
        let pos = (rng.next() as usize) % entries[seq].len();
        let bit = 1u8 << (rng.next() % 8);
        let mut state = snapshots[seq / 64].clone();
        for e in &entries[(seq / 64) * 64..seq] {
            state.replay(e).unwrap();
        }
        let mut bad = entries[seq].clone();
        bad[pos] ^= bit;
        let first = state.replay(&bad).err().map(|e| (seq as u64, e.to_string()));
        // Only the integration time is outside the signature: a flip there is caught by the
        // next entry's link to this one's hash (or, for the last entry, by the recorded head).
        let caught = match first {
            Some(c) => c,
            None => match entries.get(seq + 1) {
                Some(next) => {
                    let e = state.replay(next).expect_err("the next entry must no longer link");
                    assert!(e.to_string().contains("previous hash"), "flip {n}: {e}");
                    (seq as u64, e.to_string())
                }
                None => (seq as u64, "head".into()),
            },
        };
        assert_eq!(caught.0, seq as u64, "flip {n} at entry {seq} byte {pos}");
    }
}

fn open(fx: &Fixture) -> Result<Ledger<DiskStore>, Error> {
    Ledger::open(store(fx), Arc::new(SystemClock))
}

/// Runs `Ledger::verify` (or open, if it already refuses) and returns the seq it names.
fn verify_names(fx: &Fixture) -> u64 {
    verify_failure(fx).0
}

fn with_store(fx: &Fixture, f: impl FnOnce(&Raw<'_>)) {
    let s = store(fx);
    f(&s.raw());
}

fn ekey(seq: u64) -> Vec<u8> {
    let mut k = vec![b'e'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

#[test]
fn structural_attacks_on_the_store_are_named_by_verify() {
    // Each attack on a fresh copy of the same ledger.
    type Attack = (&'static str, u64, fn(&Raw<'_>, &[Vec<u8>]));
    let attacks: Vec<Attack> = vec![
        ("flip a byte", 500, |db, e| {
            let mut b = e[500].clone();
            let n = b.len() / 3;
            b[n] ^= 0x10;
            db.insert(ekey(500), b).unwrap();
        }),
        ("drop an entry", 700, |db, _| {
            db.remove(ekey(700)).unwrap();
        }),
        ("reorder two entries", 300, |db, e| {
            db.insert(ekey(300), e[301].clone()).unwrap();
            db.insert(ekey(301), e[300].clone()).unwrap();
        }),
        ("duplicate an entry", 401, |db, e| {
            db.insert(ekey(401), e[400].clone()).unwrap();
        }),
        ("swap a signature", 600, |db, e| {
            // Re-encode entry 600 with entry 601's signature (same signer).
            let mut a = ledger_core::entry::Entry::decode(&e[600]).unwrap();
            let b = ledger_core::entry::Entry::decode(&e[601]).unwrap();
            a.sig = b.sig;
            db.insert(ekey(600), a.encode().unwrap()).unwrap();
        }),
    ];
    // On each backend: the layout is the same, the engines differ.
    for backend in crate::support::backends() {
        for (name, want, attack) in &attacks {
            let (fx, entries) = build_with(backend);
            with_store(&fx, |db| attack(db, &entries));
            assert_eq!(verify_names(&fx), *want, "{name} ({backend:?})");
        }
    }
}

/// The derived index keys of the stored entry `bytes`, as the writer wrote them.
fn keys_of(bytes: &[u8]) -> Vec<IndexKey> {
    let entry = ledger_core::entry::Entry::decode(bytes).unwrap();
    let record = entry.decode_record().unwrap();
    index_keys(
        ledger_core::entry::entry_hash(bytes),
        ledger_core::entry::record_id(&entry.record.0),
        record.kind(),
        &indexed_subjects(&record),
    )
}

/// The key of `index` that entry `bytes` implies.
fn key_in(index: Index, bytes: &[u8]) -> IndexKey {
    keys_of(bytes).into_iter().find(|k| k.index() == index).unwrap()
}

#[test]
fn attacks_on_each_derived_index_are_named_by_verify() {
    let ev = Kind::Evidence.code();
    let some_hash = EntryHash([7; 32]);
    // (attack, seq verify must name, the attack). Entries 0 and 1 are the genesis and the
    // `ci` key registration; the rest are `evidence`, each indexed under one bare commit.
    type Attack = (&'static str, u64, Box<dyn Fn(&Raw<'_>, &[Vec<u8>])>);
    let mut attacks: Vec<Attack> = vec![];
    for index in Index::ALL {
        attacks.push((
            "delete the key of an entry",
            500,
            Box::new(move |db, e| db.remove_index(&key_in(index, &e[500]), Seq(500)).unwrap()),
        ));
        attacks.push((
            "point the key of an entry at the next entry",
            500,
            Box::new(move |db, e| {
                let k = key_in(index, &e[500]);
                db.remove_index(&k, Seq(500)).unwrap();
                db.insert_index(&k, Seq(501)).unwrap();
            }),
        ));
        attacks.push((
            "point the key of an entry at an earlier entry (the ci key registration)",
            1,
            Box::new(move |db, e| {
                let k = key_in(index, &e[700]);
                db.remove_index(&k, Seq(700)).unwrap();
                db.insert_index(&k, Seq(1)).unwrap();
            }),
        ));
        // Another entry of another kind: a copied kind key must differ from the entry's own.
        let from = if index == Index::Kind { 1 } else { 301 };
        attacks.push((
            "copy another entry's key to an entry",
            300,
            Box::new(move |db, e| db.insert_index(&key_in(index, &e[from]), Seq(300)).unwrap()),
        ));
        attacks.push((
            "add a key for an entry beyond the head",
            5_000,
            Box::new(move |db, e| {
                // A hash or record key maps to one seq: a fresh one, or the entry's own would move.
                let k = match index {
                    Index::Hash => IndexKey::Hash(EntryHash([8; 32])),
                    Index::Record => IndexKey::Record(RecordId([8; 32])),
                    _ => key_in(index, &e[900]),
                };
                db.insert_index(&k, Seq(5_000)).unwrap()
            }),
        ));
    }
    // Keys no entry implies.
    attacks.push((
        "a stray hash key",
        600,
        Box::new(move |db, _| db.insert_index(&IndexKey::Hash(some_hash), Seq(600)).unwrap()),
    ));
    attacks.push((
        "a stray record key",
        601,
        Box::new(|db, _| db.insert_index(&IndexKey::Record(RecordId([9; 32])), Seq(601)).unwrap()),
    ));
    attacks.push((
        "a stray subject key",
        602,
        Box::new(|db, _| db.insert_index(&IndexKey::Subject("pr:o/r#9".into()), Seq(602)).unwrap()),
    ));
    attacks.push((
        "a second kind for an entry",
        603,
        Box::new(|db, _| db.insert_index(&IndexKey::Kind(Kind::Review.code()), Seq(603)).unwrap()),
    ));
    attacks.push((
        "an unknown kind code",
        604,
        Box::new(|db, _| db.insert_index(&IndexKey::Kind(200), Seq(604)).unwrap()),
    ));
    attacks.push((
        "a malformed subject key",
        605,
        Box::new(|db, _| {
            // No 0x00 separator before the seq.
            let mut k = b"sgit:x".to_vec();
            k.extend_from_slice(&605u64.to_be_bytes());
            db.insert(k, b"").unwrap();
        }),
    ));
    // The kind index feeds the key register: moving a `key` entry's kind key is caught on open.
    attacks.push((
        "move the ci key registration's kind key to an evidence entry",
        1,
        Box::new(move |db, _| {
            db.remove_index(&IndexKey::Kind(Kind::Key.code()), Seq(1)).unwrap();
            db.insert_index(&IndexKey::Kind(ev), Seq(1)).unwrap();
        }),
    ));
    attacks.push((
        "list an evidence entry as a key entry",
        700,
        Box::new(|db, _| {
            db.insert_index(&IndexKey::Kind(Kind::Key.code()), Seq(700)).unwrap();
        }),
    ));
    // The record of key entries beside the kind index.
    attacks.push(("delete the record of key entries", 0, Box::new(|db, _| db.remove("Keys").unwrap())));
    attacks.push((
        "add a seq to the record of key entries",
        800,
        Box::new(|db, _| {
            db.insert("Keys", [0u64, 1, 800].iter().flat_map(|s| s.to_be_bytes()).collect::<Vec<u8>>()).unwrap();
        }),
    ));
    attacks.push((
        "move a seq of the record of key entries",
        1,
        Box::new(|db, _| {
            db.insert("Keys", [0u64, 2].iter().flat_map(|s| s.to_be_bytes()).collect::<Vec<u8>>()).unwrap();
        }),
    ));
    for backend in crate::support::backends() {
        for (i, (name, want, attack)) in attacks.iter().enumerate() {
            let (fx, entries) = build_with(backend);
            with_store(&fx, |db| attack(db, &entries));
            let (seq, reason) = verify_failure(&fx);
            eprintln!("{backend:?} {name}: #{seq}: {reason}");
            assert_eq!(seq, *want, "attack {i}: {name} ({backend:?}): {reason}");
        }
    }
}

fn tamper_seq(e: &Error) -> u64 {
    match e {
        Error::Tampered { seq, .. } => seq.0,
        _ => unreachable!("not a tampering error: {e}"),
    }
}

/// Runs `Ledger::verify` (or open, if it already refuses) and returns the seq and reason.
fn verify_failure(fx: &Fixture) -> (u64, String) {
    let failure = match open(fx) {
        Err(e) => Err(e),
        Ok(l) => l.verify(|_| {}).map(|s| s.entries),
    };
    match failure {
        Err(e @ Error::Tampered { .. }) => (tamper_seq(&e), e.tamper_detail().unwrap_or_default()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(n) => panic!("tampering not detected ({n} entries verified)"),
    }
}

#[test]
fn truncation_and_re_signed_rewrites_are_caught_by_a_pinned_checkpoint() {
    for backend in crate::support::backends() {
        truncation_and_re_signed_rewrites_are_caught_by_a_pinned_checkpoint_on(backend);
    }
}

fn truncation_and_re_signed_rewrites_are_caught_by_a_pinned_checkpoint_on(backend: Backend) {
    let (fx, entries) = build_with(backend);
    let leaves: Vec<merkle::Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let pinned = (ENTRIES, merkle::root(&leaves));
    // Truncation that also rewrites the head and tree records: the store is self-consistent
    // and `verify` passes, but the pinned size is larger than the tree.
    let cut = 900u64;
    with_store(&fx, |db| {
        // The entries and their index keys (any left behind is named by `verify`).
        for s in cut..ENTRIES {
            db.remove(ekey(s)).unwrap();
            for k in keys_of(&entries[s as usize]) {
                db.remove_index(&k, Seq(s)).unwrap();
            }
        }
        let mut head = (cut - 1).to_be_bytes().to_vec();
        head.extend_from_slice(&ledger_core::entry::entry_hash(&entries[cut as usize - 1]).0);
        db.insert("head", head).unwrap();
        let mut t = merkle::Frontier::new();
        for l in &leaves[..cut as usize] {
            t.push(*l);
        }
        let mut tv = t.size().to_be_bytes().to_vec();
        for p in t.peaks() {
            tv.extend_from_slice(p);
        }
        db.insert("tree", tv).unwrap();
        // And the stored (full) tiles, rebuilt for the shorter tree.
        for tile in ledger_core::tiles::TileBuilder::new().extend_full(&leaves[..cut as usize]) {
            let mut k = vec![b't', tile.level];
            k.extend_from_slice(&tile.index.to_be_bytes());
            db.insert(k, tile.to_bytes()).unwrap();
        }
    });
    let l = open(&fx).unwrap();
    assert_eq!(l.verify(|_| {}).unwrap().entries, cut, "a clean truncation passes verify alone");
    assert!(l.tree_head().0 < pinned.0, "the pin shows the truncation");
    drop(l);

    // A rewrite re-signed with the keys (the log operator holds them): a different history of
    // the same size. It verifies on its own; the consistency proof from the pin does not.
    let other = Fixture::new();
    let l = open(&other).unwrap();
    let ci = key("ci");
    let records: Vec<_> = (0..ENTRIES - 2).map(|i| signed(&evidence(&format!("rewritten-{i}")), &ci)).collect();
    for chunk in records.chunks(250) {
        l.append(chunk).unwrap();
    }
    l.verify(|_| {}).unwrap();
    let (_, new_root, proof) = l.consistency_proof(500, ENTRIES).unwrap();
    let pinned_500 = merkle::root(&leaves[..500]);
    assert!(merkle::verify_consistency(500, ENTRIES, &proof, &pinned_500, &new_root).is_err());
    assert_ne!(new_root, pinned.1);
}

#[test]
fn a_corrupt_tile_is_named_by_verify_and_missing_tiles_are_rebuilt() {
    let tkey = |level: u8, index: u64| {
        let mut k = vec![b't', level];
        k.extend_from_slice(&index.to_be_bytes());
        k
    };
    // One flipped bit in the full level-0 tile 1 (leaves 256..512): named at its first leaf.
    let (fx, _) = build();
    with_store(&fx, |db| {
        let mut v = db.get(tkey(0, 1)).unwrap().unwrap().to_vec();
        v[32 * 10] ^= 1;
        db.insert(tkey(0, 1), v).unwrap();
    });
    assert_eq!(verify_names(&fx), 256);

    // Every tile removed, as in a ledger written before tiles were kept: opening rebuilds
    // them once, and proofs equal the ones computed from the leaves.
    let (fx, entries) = build();
    with_store(&fx, |db| {
        let keys: Vec<_> = db.keys_with_prefix(b"t").unwrap().into_iter().filter(|k| k.len() == 10).collect();
        assert_eq!(keys.len(), 3, "the three full level-0 tiles (partial tiles are not stored)");
        for k in keys {
            db.remove(k).unwrap();
        }
    });
    let leaves: Vec<merkle::Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let l = open(&fx).unwrap();
    let (root, proof) = l.inclusion_proof(ledger_core::types::Seq(700), ENTRIES).unwrap();
    assert_eq!(proof, merkle::inclusion_proof(&leaves, 700).unwrap());
    assert_eq!(root, merkle::root(&leaves));
    let (r1, r2, cproof) = l.consistency_proof(333, ENTRIES).unwrap();
    assert_eq!(cproof, merkle::consistency_proof(&leaves, 333).unwrap());
    assert_eq!((r1, r2), (merkle::root(&leaves[..333]), merkle::root(&leaves)));
    l.verify(|_| {}).unwrap();
}
