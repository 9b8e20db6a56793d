//! Scale: builds a ledger of N entries (default 1,000,000; `SCALE_N` to change) and times a
//! full `verify`, inclusion and consistency proof generation and verification, and the
//! proofs of one change's export, at that size.
//!
//! Run: `cargo bench -p ledger-store --bench scale` (results: docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use ledger_core::entry::SignedRecord;
use ledger_core::merkle;
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::DiskStore;

/// The allocator of the `ledger` and `ledgerd` binaries, so the numbers are theirs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ledger_store::testkit::{key, key_rec as key_record, numbered_evidence};

fn evidence(i: u64) -> Record {
    numbered_evidence("bench/scale", i, 200)
}

fn main() {
    let n: u64 = std::env::var("SCALE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    // SCALE_DIR keeps the ledger (with `keys/admin.key`) for timing `ledger` commands on it.
    let tmp = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("SCALE_DIR").map(std::path::PathBuf::from);
    let dir_path = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir_path).unwrap();
    // SCALE_REUSE=1 with SCALE_DIR opens a ledger an earlier run kept, skipping the build.
    let reuse = keep.is_some() && std::env::var_os("SCALE_REUSE").is_some();
    let l = if reuse {
        let l = Ledger::open(DiskStore::open(&dir_path).unwrap(), Arc::new(SystemClock)).unwrap();
        println!("reusing {} entries at {}", l.len(), dir_path.display());
        l
    } else {
        build(n, &dir_path, keep.is_some())
    };
    let du = walk(&dir_path);
    println!("store size: {:.2} GiB", du as f64 / (1u64 << 30) as f64);

    if std::env::var("SCALE_PHASES").is_ok() {
        use ledger_store::store::Store;
        let t = Instant::now();
        let all: Vec<Vec<u8>> = (0..l.len()).map(|s| l.store().entry(Seq(s)).unwrap().unwrap()).collect();
        println!("phase: read every entry: {:.1} µs/entry", t.elapsed().as_secs_f64() * 1e6 / all.len() as f64);
        let reg = {
            let mut chain = ledger_core::chain::ChainState::new();
            for b in &all[..2] {
                chain.replay(b).unwrap();
            }
            chain.keys().clone()
        };
        let t = Instant::now();
        for b in &all[2..] {
            ledger_core::chain::PreChecked::check(&reg, b).unwrap();
        }
        println!(
            "phase: pre-check (decode, signature): {:.1} µs/entry",
            t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
        );
        let t = Instant::now();
        for chunk in all[2..].chunks(1024) {
            for r in ledger_core::chain::PreChecked::check_many(&reg, chunk) {
                r.unwrap();
            }
        }
        println!(
            "phase: pre-check in batches of 1,024: {:.1} µs/entry",
            t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
        );
        let t = Instant::now();
        std::thread::scope(|s| {
            let (a, b) = all[2..].split_at(all.len() / 2);
            let reg = &reg;
            let h = s.spawn(move || {
                a.chunks(1024).for_each(|c| {
                    ledger_core::chain::PreChecked::check_many(reg, c);
                })
            });
            b.chunks(1024).for_each(|c| {
                ledger_core::chain::PreChecked::check_many(reg, c);
            });
            h.join().unwrap();
        });
        println!(
            "phase: pre-check in batches, two threads: {:.1} µs/entry",
            t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
        );
        let t = Instant::now();
        for b in &all[2..] {
            let e = ledger_core::entry::Entry::decode(b).unwrap();
            let k = reg.get(&e.signer).unwrap();
            e.signed_record().verify_with(&k.public).unwrap();
        }
        println!(
            "phase: decode entry + verify_with: {:.1} µs/entry",
            t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
        );
        let t = Instant::now();
        for b in &all {
            let _ = l.store().seq_by_hash(&ledger_core::entry::entry_hash(b)).unwrap();
        }
        println!("phase: hash index lookups: {:.1} µs/entry", t.elapsed().as_secs_f64() * 1e6 / all.len() as f64);
        let t = Instant::now();
        for b in &all {
            let e = ledger_core::entry::Entry::decode(b).unwrap();
            let _ = e.decode_record().unwrap();
        }
        println!("phase: decode entry + record: {:.1} µs/entry", t.elapsed().as_secs_f64() * 1e6 / all.len() as f64);
        let t = Instant::now();
        for b in &all {
            let _ = merkle::leaf_hash(b);
        }
        println!("phase: leaf hash: {:.1} µs/entry", t.elapsed().as_secs_f64() * 1e6 / all.len() as f64);
    }
    let t = Instant::now();
    let cpu = cpu_seconds();
    let s = l.verify(|_| {}).unwrap();
    println!(
        "full verify of {} entries: {:.1} s ({:.1} s CPU)",
        s.entries,
        t.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );

    let size = l.tree_head().0;
    let t = Instant::now();
    let (root, proof) = l.inclusion_proof(Seq(size / 2), size).unwrap();
    println!("inclusion proof generation at {size}: {:.0} µs", t.elapsed().as_secs_f64() * 1e6);
    let leaf = merkle::leaf_hash(&l.get(Seq(size / 2)).unwrap().unwrap().bytes);
    let t = Instant::now();
    for _ in 0..1000 {
        merkle::verify_inclusion(&leaf, size / 2, size, &proof, &root).unwrap();
    }
    println!("inclusion proof verification: {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / 1000.0);
    let t = Instant::now();
    let (r1, r2, cproof) = l.consistency_proof(size / 3, size).unwrap();
    println!("consistency proof generation at {size}: {:.0} µs", t.elapsed().as_secs_f64() * 1e6);
    let t = Instant::now();
    for _ in 0..1000 {
        merkle::verify_consistency(size / 3, size, &cproof, &r1, &r2).unwrap();
    }
    println!("consistency proof verification: {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / 1000.0);
    // Exporting one change: its related entries and their proofs.
    let t = Instant::now();
    // The commit `build` gave five extra records (SCALE_N must match the kept ledger's).
    let target = n / 2;
    let subject: ledger_core::subject::Subject = format!("git:{target:040x}").parse().unwrap();
    let related = l.related(&subject).unwrap();
    let proofs: Vec<_> = related.iter().map(|g| l.inclusion_proof(g.seq, size).unwrap().1).collect();
    println!(
        "export proofs for one subject ({} entries) at {size}: {:.0} ms",
        proofs.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
}

/// This process's user + system CPU time in seconds (Linux `/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        walk(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Builds a ledger of `n` evidence entries (plus genesis and one key) in `dir`.
fn build(n: u64, dir_path: &std::path::Path, keep: bool) -> Ledger<DiskStore> {
    let admin = key("admin");
    let ci = key("ci");
    let l = Ledger::create(
        DiskStore::create(dir_path).unwrap(),
        &SignedRecord::sign(&key_record(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap();
    l.append(&[SignedRecord::sign(&key_record(KeyAction::Register, "ci", &ci, vec![Kind::Evidence]), &admin).unwrap()])
        .unwrap();
    let t = Instant::now();
    let batch = 4096u64;
    let mut i = 0u64;
    while l.len() < n {
        let want = batch.min(n - l.len());
        // Sign and check signatures on both cores; the sequencer writes.
        let verified: Vec<_> = std::thread::scope(|s| {
            let half = want / 2;
            let (l, ci) = (&l, &ci);
            let parts: Vec<_> = [(i, i + half), (i + half, i + want)]
                .into_iter()
                .map(|(a, b)| {
                    s.spawn(move || {
                        (a..b)
                            .map(|j| l.verify_signature(&SignedRecord::sign(&evidence(j), ci).unwrap()).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        i += want;
        for r in l.append_verified(verified) {
            r.unwrap();
        }
        if l.len() % 100_000 < batch {
            eprintln!("{} entries, {:.0} s", l.len(), t.elapsed().as_secs_f64());
        }
    }
    // Five more records about one commit, so exporting it has several entries to prove.
    let target = n / 2;
    let extra: Vec<_> = (0..5)
        .map(|k| {
            let mut r = evidence(target);
            if let Body::Evidence(e) = &mut r.body {
                e.check = format!("extra-check-{k}");
            }
            l.verify_signature(&SignedRecord::sign(&r, &ci).unwrap()).unwrap()
        })
        .collect();
    for r in l.append_verified(extra) {
        r.unwrap();
    }
    println!("built {} entries in {:.1} s", l.len(), t.elapsed().as_secs_f64());
    if keep {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use std::os::unix::fs::PermissionsExt;
        let keys = dir_path.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let path = keys.join("admin.key");
        std::fs::write(&path, admin.to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        println!("kept at {} (test admin key from a fixed seed in keys/admin.key)", dir_path.display());
    }
    l
}
