//! `ledger bench query`: read latency at scale through a `ledgerd` server, one request at a
//! time (so each latency is the server's answer, not queueing): `why` of random changes of a
//! `bench history` ledger, then inclusion proofs of random entries in the current tree, each
//! proof checked against the root the server sent with it.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use ledger_core::merkle;
use serde::Serialize;

use crate::bench::percentile;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Latencies of one kind of request.
#[derive(Serialize)]
struct Latency {
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(mut micros: Vec<u32>) -> Self {
        micros.sort_unstable();
        Latency {
            requests: micros.len(),
            p50_ms: percentile(&micros, 0.50),
            p99_ms: percentile(&micros, 0.99),
            max_ms: percentile(&micros, 1.0),
        }
    }
}

/// What `bench query --json` prints.
#[derive(Serialize)]
struct QueryOut {
    tree_size: u64,
    why: Latency,
    inclusion_proof: Latency,
}

/// A tiny deterministic generator (xorshift), so two runs ask the same questions.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn micros(t: Instant) -> u32 {
    t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// Runs `ledger bench query --changes N [--requests R]`.
pub fn run(ctx: &Ctx, changes: u64, requests: usize) -> Result<ExitCode> {
    if ctx.remote.is_none() {
        bail!("`ledger bench query` measures a server: give --server URL (or LEDGER_SERVER)");
    }
    if changes == 0 || requests == 0 {
        bail!("--changes and --requests must be at least 1");
    }
    let mut b = ctx.backend()?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bar = crate::output::progress(ctx.json, 2 * requests as u64, "querying {bar:40} {pos}/{len}");
    let mut why = Vec::with_capacity(requests);
    for _ in 0..requests {
        // The subjects `bench history` writes: change i is `pr:acme/svc{i % 12}#{10000 + i}`.
        let c = rng.below(changes);
        let subject = format!("pr:acme/svc{}#{}", c % 12, 10_000 + c);
        let t = Instant::now();
        let report = b.why(&subject, &[])?;
        why.push(micros(t));
        if report.changes.is_empty() {
            bail!("`why {subject}` found no change: is this a `bench history` ledger of at least {changes} changes?");
        }
        bar.inc(1);
    }
    let size = b.len()?;
    let mut proofs = Vec::with_capacity(requests);
    for _ in 0..requests {
        let seq = rng.below(size);
        let t = Instant::now();
        let (at, root, proof) = b.inclusion_proof(seq, Some(size))?;
        proofs.push(micros(t));
        // Checked against the entry's exact bytes, outside the timing.
        let leaf = merkle::leaf_hash(&b.find_entry(&format!("#{seq}"))?.bytes);
        merkle::verify_inclusion(&leaf, seq, at, &proof, &root)
            .map_err(|e| anyhow!("the inclusion proof of #{seq} does not verify: {e}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let out = QueryOut { tree_size: size, why: Latency::of(why), inclusion_proof: Latency::of(proofs) };
    if ctx.json {
        json_out(&out)?;
    } else {
        for (what, l) in [("why", &out.why), ("inclusion proof", &out.inclusion_proof)] {
            line(format!(
                "{what}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (tree size {size})",
                l.requests, l.p50_ms, l.p99_ms, l.max_ms
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
