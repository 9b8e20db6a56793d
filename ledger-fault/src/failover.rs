//! The failover battery: several `ledgerd` share one PostgreSQL database, one the writer, the
//! others standbys. Under load, the writer is cut down, by kill -9 or by SIGSTOP (a stopped
//! process keeps its connections but answers nothing, as behind a cut network; it is resumed
//! once another server has taken over, and must then find itself deposed). After each cut:
//!
//! - another server becomes the writer, and how long that took from the cut is measured;
//! - the new writer proves its tree consistent with the tree head the old writer served just
//!   before the cut (an RFC 9162 consistency proof, verified here);
//! - no two acknowledged appends name the same seq;
//! - every few cuts and at the end: the ledger opens, `verify` passes, and every acknowledged
//!   append is present with the entry hash its receipt named.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_client::LedgerClient;
use ledger_store::store::Backend;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use crate::check::{self, hex, Ack};
use crate::daemon::Daemon;
use crate::load;
use crate::rng::Rng;

/// The takeover target: another server appends within this long of the writer's death.
pub const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);

/// How long a load client waits for an answer: a stopped server answers nothing.
const PATIENCE: Duration = Duration::from_secs(2);

/// How long a resumed, deposed writer may take to report itself a standby.
const STEP_DOWN_LIMIT: Duration = Duration::from_secs(10);

/// What the battery is given.
pub struct Options<'a> {
    pub ledgerd: &'a Path,
    pub work: &'a Path,
    pub kills: u32,
    pub servers: usize,
    pub unary: usize,
    pub stream: usize,
    pub min_ms: u64,
    pub max_ms: u64,
    /// Full checks (`verify` and every acknowledged append) every this many cuts.
    pub check_every: u32,
}

/// The battery's results.
#[derive(Serialize, Debug, Default)]
pub struct Summary {
    pub kind: &'static str,
    pub servers: usize,
    pub cuts: u32,
    pub kill9: u32,
    pub sigstop: u32,
    pub acked: u64,
    pub lost: u64,
    /// Acknowledged appends that named a seq another acknowledged append named.
    pub duplicate_seqs: u64,
    /// Consistency proofs from the tree head before a cut to the new writer's, verified.
    pub consistency_proofs: u32,
    /// Takeover times (cut to a server answering as the writer), in milliseconds.
    pub takeover_ms_max: u64,
    pub takeover_ms_mean: u64,
    pub takeovers_over_limit: u32,
    /// Appends a resumed, deposed writer acknowledged (all checked like the others).
    pub deposed_acks: u64,
    /// Write transactions the database refused because their writer had been deposed (the
    /// servers' logs: "a write was fenced off").
    pub fenced_writes: u64,
    /// Full checks run (`verify` and every acknowledged append).
    pub full_checks: u32,
    pub entries: u64,
    pub seconds: f64,
    pub first_failure: Option<String>,
}

async fn client(url: &str) -> Result<LedgerClient<Channel>> {
    let ch = Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_millis(800))
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(LedgerClient::new(ch).max_decoding_message_size(ledger_proto::MAX_FRAME_BYTES))
}

/// The server's `Head`: `(entries, standby)`, or `None` when it does not answer.
async fn head(url: &str) -> Option<(u64, bool)> {
    let mut c = client(url).await.ok()?;
    let h = c.head(pb::HeadRequest {}).await.ok()?.into_inner();
    Some((h.entries, h.standby))
}

/// Waits until one of `servers` (but `except`) answers as the writer; its index.
async fn writer(servers: &[Option<Daemon>], except: Option<usize>, within: Duration) -> Result<usize> {
    let deadline = Instant::now() + within;
    loop {
        for (i, d) in servers.iter().enumerate() {
            let Some(d) = d else { continue };
            if Some(i) == except {
                continue;
            }
            if let Some((_, false)) = head(&d.url()).await {
                return Ok(i);
            }
        }
        if Instant::now() >= deadline {
            bail!("no server became the writer within {} s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tree head `url` serves now: `(size, root)`.
async fn tree_head(url: &str) -> Result<(u64, [u8; 32])> {
    let mut c = client(url).await?;
    let r = c
        .get_inclusion_proof(pb::GetInclusionProofRequest { seq: 0, tree_size: 0 })
        .await
        .map_err(|s| anyhow!("GetInclusionProof: {}", s.message()))?
        .into_inner();
    let root = r.root.as_slice().try_into().map_err(|_| anyhow!("a root of {} bytes", r.root.len()))?;
    Ok((r.tree_size, root))
}

/// Asks `url` for a consistency proof from `(size, root)` to its current tree and verifies it.
async fn prove_consistent(url: &str, size: u64, root: &[u8; 32]) -> Result<u64> {
    let mut c = client(url).await?;
    let r = c
        .get_consistency_proof(pb::GetConsistencyProofRequest { old_size: size, new_size: 0 })
        .await
        .map_err(|s| anyhow!("GetConsistencyProof from {size}: {}", s.message()))?
        .into_inner();
    let hash = |b: &[u8]| -> Result<[u8; 32]> { b.try_into().map_err(|_| anyhow!("a hash of {} bytes", b.len())) };
    let proof = r.proof.iter().map(|p| hash(p)).collect::<Result<Vec<_>>>()?;
    let new_root = hash(&r.new_root)?;
    ledger_core::merkle::verify_consistency(size, r.new_size, &proof, root, &new_root).map_err(|e| {
        anyhow!(
            "the tree after the takeover ({} leaves) is not consistent with the one before ({size}): {e}",
            r.new_size
        )
    })?;
    Ok(r.new_size)
}

/// Records `round`'s acknowledgements, counting seqs acknowledged twice.
fn record(
    acks: &mut Vec<Ack>,
    seen: &mut HashMap<u64, [u8; 32]>,
    round: Vec<Ack>,
    dup: &mut u64,
    first: &mut Option<String>,
) {
    for a in round {
        if let Some(h) = seen.insert(a.seq, a.hash) {
            *dup += 1;
            first.get_or_insert_with(|| format!("seq {} acknowledged twice ({} and {})", a.seq, hex(&h), hex(&a.hash)));
        }
        acks.push(a);
    }
}

/// Runs the battery. Returns the summary and whether every check held.
///
/// # Errors
/// If the harness itself fails: no PostgreSQL server (`LEDGER_TEST_PG`), a server that does not
/// start, a load client that cannot connect.
pub fn run(o: &Options<'_>, rng: &mut Rng) -> Result<(Summary, bool)> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let url = check::create_ledger(&o.work.join("failover"), Backend::Postgres)?;
    let log = |i: usize| o.work.join(format!("ledgerd-failover-{i}.log"));
    let mut servers: Vec<Option<Daemon>> = Vec::new();
    for i in 0..o.servers {
        servers.push(Some(Daemon::start(o.ledgerd, &url, &log(i))?));
    }
    let mut s = Summary { kind: "failover", servers: o.servers, ..Summary::default() };
    let mut acks: Vec<Ack> = Vec::new();
    let mut seen: HashMap<u64, [u8; 32]> = HashMap::new();
    let mut takeover_total = 0u64;
    let mut failure: Option<String> = None;
    for cut in 1..=o.kills {
        let w = rt.block_on(writer(&servers, None, TAKEOVER_LIMIT * 2))?;
        let old = servers[w].as_ref().ok_or_else(|| anyhow!("no writer"))?;
        let (size0, root0) = rt.block_on(tree_head(&old.url()))?;
        let stop = cut % 2 == 0;
        let load_ms = rng.range(o.min_ms, o.max_ms);
        let cut_at: Cell<Option<Instant>> = Cell::new(None);
        let round = rt.block_on(load::run(
            old.url(),
            &format!("failover-{cut}-{}", rng.next()),
            o.unary,
            o.stream,
            Duration::from_millis(load_ms),
            PATIENCE,
            || {
                let r = if stop { old.signal("STOP") } else { old.kill9() };
                cut_at.set(Some(Instant::now()));
                r
            },
        ))?;
        let cut_at = cut_at.get().unwrap_or_else(Instant::now);
        if stop {
            s.sigstop += 1;
        } else {
            s.kill9 += 1;
        }
        s.acked += round.len() as u64;
        record(&mut acks, &mut seen, round, &mut s.duplicate_seqs, &mut failure);
        // Another server takes over.
        let nw = rt
            .block_on(writer(&servers, Some(w), TAKEOVER_LIMIT * 2))
            .with_context(|| format!("cut {cut}: after the writer's {}", if stop { "SIGSTOP" } else { "kill -9" }))?;
        let took = cut_at.elapsed().as_millis() as u64;
        takeover_total += took;
        s.takeover_ms_max = s.takeover_ms_max.max(took);
        if took > TAKEOVER_LIMIT.as_millis() as u64 {
            s.takeovers_over_limit += 1;
            failure.get_or_insert_with(|| format!("cut {cut}: the takeover took {took} ms"));
        }
        let new_url = servers[nw].as_ref().map(Daemon::url).unwrap_or_default();
        match rt.block_on(prove_consistent(&new_url, size0, &root0)) {
            Ok(_) => s.consistency_proofs += 1,
            Err(e) => {
                failure.get_or_insert_with(|| format!("cut {cut}: {e:#}"));
            }
        }
        if stop {
            // The stopped writer resumes: deposed, it must refuse appends (or, were it still
            // the writer, acknowledge only what the ledger keeps), and report itself a standby.
            old.signal("CONT")?;
            let late = rt.block_on(load::run(
                old.url(),
                &format!("deposed-{cut}-{}", rng.next()),
                1,
                1,
                Duration::from_millis(300),
                PATIENCE,
                || Ok(()),
            ))?;
            s.deposed_acks += late.len() as u64;
            s.acked += late.len() as u64;
            record(&mut acks, &mut seen, late, &mut s.duplicate_seqs, &mut failure);
            let deadline = Instant::now() + STEP_DOWN_LIMIT;
            let url = old.url();
            while rt.block_on(head(&url)).map(|(_, standby)| standby) != Some(true) {
                if Instant::now() >= deadline {
                    failure.get_or_insert_with(|| format!("cut {cut}: the resumed writer did not step down"));
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            if let Some(d) = servers[w].take() {
                d.reap();
            }
            servers[w] = Some(Daemon::start(o.ledgerd, &url, &log(w))?);
        }
        s.cuts += 1;
        if cut % o.check_every.max(1) == 0 || cut == o.kills {
            match check::check(&url, &acks) {
                Ok(c) => {
                    s.full_checks += 1;
                    s.entries = c.entries;
                    s.lost = c.lost;
                    if c.lost > 0 {
                        failure.get_or_insert_with(|| {
                            format!("cut {cut}: {} acknowledged appends lost; first: {}", c.lost, c.first_lost)
                        });
                    }
                }
                Err(e) => {
                    failure.get_or_insert_with(|| format!("cut {cut}: {e:#}"));
                }
            }
            eprintln!(
                "failover cut {cut}/{}: {} acknowledged, {} lost, {} entries, takeover max {} ms ({:.0} s in all)",
                o.kills,
                s.acked,
                s.lost,
                s.entries,
                s.takeover_ms_max,
                started.elapsed().as_secs_f64()
            );
        }
        if let Some(f) = &failure {
            if s.first_failure.is_none() {
                eprintln!("failover: FAILED: {f}");
            }
            s.first_failure = Some(f.clone());
        }
    }
    for d in servers.into_iter().flatten() {
        let _ = d.signal("CONT");
        d.reap();
    }
    s.fenced_writes = (0..o.servers)
        .map(|i| std::fs::read_to_string(log(i)).unwrap_or_default().matches("a write was fenced off").count() as u64)
        .sum();
    s.takeover_ms_mean = takeover_total / u64::from(s.cuts.max(1));
    s.seconds = started.elapsed().as_secs_f64();
    let ok = s.first_failure.is_none() && s.lost == 0 && s.duplicate_seqs == 0;
    Ok((s, ok))
}
