//! Where an append's time goes, phase by phase, on this machine: signature verification,
//! sequencing (encode, hash), and the store write + flush of a group commit, on each backend.
//!
//! Run: `cargo bench -p ledger-store --bench append` (results: docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use ledger_core::entry::SignedRecord;
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Backend, DiskStore};

use ledger_store::testkit::{key, key_rec as key_record, numbered_evidence};

fn evidence(i: usize) -> Record {
    numbered_evidence("bench/load", i as u64, 880)
}

fn per(label: &str, n: usize, t: Instant) {
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<48} {us:>8.1} µs/record");
}

fn main() {
    let n = 20_480;
    let admin = key("admin");
    let ci = key("ci");
    let dir = tempfile::tempdir().unwrap();
    let genesis = key_record(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]);
    let l = Ledger::create(
        DiskStore::create(dir.path()).unwrap(),
        &SignedRecord::sign(&genesis, &admin).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let reg = key_record(KeyAction::Register, "ci", &ci, vec![Kind::Evidence]);
    l.append(&[SignedRecord::sign(&reg, &admin).unwrap()]).unwrap();

    let t = Instant::now();
    let records: Vec<Record> = (0..n).map(evidence).collect();
    per("build records", n, t);
    let t = Instant::now();
    let encoded: Vec<Vec<u8>> =
        records.iter().map(|r| ledger_core::encoding::to_canonical(r, "record").unwrap()).collect();
    per("canonical encode (record, ~1 KiB)", n, t);
    println!("record size: {} bytes", encoded[0].len());
    let t = Instant::now();
    for b in &encoded {
        let _: Record = ledger_core::encoding::from_canonical(b, "record").unwrap();
    }
    per("canonical decode + check (record)", n, t);
    let t = Instant::now();
    for r in &records {
        ledger_core::secrets::scan(r).unwrap();
    }
    per("secret scan", n, t);
    let t = Instant::now();
    let signed: Vec<SignedRecord> = records.iter().map(|r| SignedRecord::sign(r, &ci).unwrap()).collect();
    per("sign (client side: encode, scan, Ed25519)", n, t);
    let t = Instant::now();
    let verified: Vec<_> = signed.iter().map(|s| l.verify_signature(s).unwrap()).collect();
    per("verify_signature (server handler)", n, t);
    {
        // Sequencing alone (encode entry, hash, derive index keys), without storage.
        let mut chain = ledger_core::chain::ChainState::new();
        let g = SignedRecord::sign(&genesis, &admin).unwrap();
        let gv = chain.verify(&g, Timestamp(1)).unwrap();
        chain.sequence(&gv).unwrap();
        let rv = chain.verify(&SignedRecord::sign(&reg, &admin).unwrap(), Timestamp(1)).unwrap();
        chain.sequence(&rv).unwrap();
        let owned = verified.clone();
        let t = Instant::now();
        let mut subjects = 0usize;
        for v in owned {
            let a = chain.authorize(v, Timestamp(2)).unwrap();
            let e = chain.sequence(&a).unwrap();
            subjects += ledger_store::store::indexed_subjects(&e.record).len();
        }
        per("authorize + sequence + subjects (no storage)", n, t);
        println!("store keys per entry: 4 (e, h, r, k) + {} subject key(s), + 1 head key per batch", subjects / n);
    }
    for (backend, batch) in
        [Backend::Fjall, Backend::Sled].into_iter().flat_map(|b| [1usize, 64, 256, 1024].map(|n| (b, n)))
    {
        let dir = tempfile::tempdir().unwrap();
        let l2 = Ledger::create(
            DiskStore::create_with(dir.path(), backend).unwrap(),
            &SignedRecord::sign(&genesis, &admin).unwrap(),
            Arc::new(SystemClock),
        )
        .unwrap();
        l2.append(&[SignedRecord::sign(&reg, &admin).unwrap()]).unwrap();
        let m = if batch == 1 { 2_000 } else { n };
        let chunks: Vec<Vec<_>> = verified[..m].chunks(batch).map(<[_]>::to_vec).collect();
        let t = Instant::now();
        for chunk in chunks {
            for r in l2.append_verified(chunk) {
                r.unwrap();
            }
        }
        per(&format!("append_verified, {}, group commit of {batch}", backend.name()), m, t);
    }
}
