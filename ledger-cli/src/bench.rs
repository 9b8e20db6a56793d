//! `ledger bench append`: a load generator for `ledgerd`, kept apart from the user-facing
//! commands (it is for measuring a deployment, docs/BENCHMARKS.md). Appends signed 1 KiB records from
//! N concurrent clients for a fixed time and reports durable appends per second and latency
//! percentiles. Records are signed before the clock starts, as CI systems sign on their own
//! machines; the server's signature check, sequencing and flush are what is measured.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::SigningKey;
use ledger_core::entry::SignedRecord;
use ledger_core::record::{Body, CheckKind, CheckResult, Evidence, Record};
use ledger_core::types::{CommitId, Identity, RepoName, Timestamp};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_client::LedgerClient;
use serde::Serialize;
use tonic::transport::Channel;

use crate::cli::BenchCommand;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Target size of each record's bytes.
pub(crate) const RECORD_BYTES: usize = 1024;

fn make_record(run: u64, i: usize) -> Result<Record> {
    let sha = format!("{:016x}{:024x}", run, i);
    let mut r = Record {
        v: 1,
        time: Timestamp(1_764_000_000_000),
        actor: Identity::new("bench:load-generator")?,
        links: vec![],
        body: Body::Evidence(Evidence {
            repo: RepoName::new("bench/load")?,
            commit: CommitId::new(sha)?,
            check: String::new(),
            check_kind: CheckKind::Unit,
            result: CheckResult::Pass,
            artifact: None,
            predicate_type: None,
            url: None,
            signature: None,
            source: None,
            builder: None,
        }),
    };
    // Pad the check name so that the encoded record is RECORD_BYTES long.
    let base = ledger_core::encoding::to_canonical(&r, "record")?.len();
    if let Body::Evidence(e) = &mut r.body {
        e.check = format!("bench-{run:x}-{i}-")
            .chars()
            .chain(std::iter::repeat('x'))
            .take(RECORD_BYTES.saturating_sub(base + 3))
            .collect();
    }
    Ok(r)
}

/// Signs `n` distinct records on all cores.
pub(crate) fn presign(key: &SigningKey, n: usize, run: u64) -> Result<Vec<SignedRecord>> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunk = n.div_ceil(threads);
    let parts: Vec<Result<Vec<SignedRecord>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(|i| Ok(SignedRecord::sign(&make_record(run, i)?, key)?))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a signing thread panicked")))).collect()
    });
    let mut out = Vec::with_capacity(n);
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// What the clients saw: each durable append's latency, and the errors.
#[derive(Default)]
pub(crate) struct Tally {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Tally {
    /// Adds another client's tally.
    pub fn add(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The `p` quantile (0..=1) of sorted microseconds, in milliseconds.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

async fn unary_client(
    mut client: LedgerClient<Channel>,
    pool: Arc<Vec<pb::SignedRecord>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(rec) = pool.get(i) else { break };
        let start = Instant::now();
        match client.append(pb::AppendRequest { record: Some(rec.clone()), prove: false }).await {
            Ok(_) => t.latencies_us.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Err(s) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| format!("{:?}: {}", s.code(), s.message()));
            }
        }
    }
    t
}

async fn stream_client(
    mut client: LedgerClient<Channel>,
    pool: Arc<Vec<pb::SignedRecord>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
    window: usize,
) -> Tally {
    let mut t = Tally::default();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendRequest>(window);
    let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::new(Mutex::new(VecDeque::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(window));
    let producer = {
        let (sent, permits) = (sent.clone(), permits.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(p) = permits.clone().acquire_owned().await else { break };
                p.forget();
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(rec) = pool.get(i) else { break };
                if let Ok(mut q) = sent.lock() {
                    q.push_back(Instant::now());
                }
                if tx.send(pb::AppendRequest { record: Some(rec.clone()), prove: false }).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut inbound = match client.append_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            t.errors += 1;
            t.first_error = Some(format!("{:?}: {}", s.code(), s.message()));
            producer.abort();
            return t;
        }
    };
    loop {
        match inbound.message().await {
            Ok(Some(msg)) => {
                let started = sent.lock().ok().and_then(|mut q| q.pop_front());
                permits.add_permits(1);
                match msg.result {
                    Some(pb::append_stream_response::Result::Receipt(_)) => {
                        if let Some(s) = started {
                            t.latencies_us.push(s.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        }
                    }
                    Some(pb::append_stream_response::Result::Error(e)) => {
                        t.errors += 1;
                        t.first_error.get_or_insert(e.message);
                    }
                    None => t.errors += 1,
                }
            }
            Ok(None) => break,
            Err(s) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| format!("{:?}: {}", s.code(), s.message()));
                break;
            }
        }
    }
    let _ = producer.await;
    t
}

/// What `bench append --json` prints.
#[derive(Serialize)]
struct BenchOut {
    appended: u64,
    appends_per_sec: f64,
    clients: usize,
    duration_s: f64,
    errors: u64,
    first_error: Option<String>,
    mode: &'static str,
    p50_ms: f64,
    p99_ms: f64,
    record_bytes: usize,
}

/// Runs `ledger bench append`.
pub fn run(ctx: &Ctx, b: BenchCommand) -> Result<ExitCode> {
    let (clients, duration, stream, window, records, signer) = match b {
        BenchCommand::Append { clients, duration, stream, window, records, signer } => {
            (clients, duration, stream, window, records, signer)
        }
        BenchCommand::History { changes, days, until, first, signer } => {
            return crate::bench_history::history(ctx, first..first.saturating_add(changes), days, &until, &signer)
        }
        BenchCommand::AuditTable { database, clients, duration, records, signer } => {
            return crate::bench_audit::run(ctx, &database, clients, duration, records, &signer)
        }
        BenchCommand::Query { changes, requests } => return crate::bench_query::run(ctx, changes, requests),
    };
    let as_json = ctx.json;
    let Some(remote) = &ctx.remote else { bail!("`ledger bench append` needs --server URL (or LEDGER_SERVER)") };
    if clients == 0 || duration == 0 {
        bail!("--clients and --duration must be at least 1");
    }
    let key = ctx.signer_key(&signer)?;
    let n = records.unwrap_or_else(|| (duration as usize).saturating_mul(40_000).min(3_000_000));
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce).map_err(|e| anyhow!("random nonce: {e}"))?;
    let run_id = u64::from_le_bytes(nonce);
    if !as_json {
        eprintln!("signing {n} records of {RECORD_BYTES} bytes before the clock starts…");
    }
    let pool: Arc<Vec<pb::SignedRecord>> =
        Arc::new(presign(&key, n, run_id)?.iter().map(pb::SignedRecord::from).collect());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let (tally, elapsed) = rt.block_on(async {
        let mut channels = Vec::with_capacity(clients);
        for _ in 0..clients {
            let ch = Channel::from_shared(remote.url.clone())
                .map_err(|e| anyhow!("bad --server URL: {e}"))?
                .connect()
                .await
                .with_context(|| format!("connecting to {}", remote.url))?;
            channels.push(ch);
        }
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(duration);
        let tasks: Vec<_> = channels
            .into_iter()
            .map(|ch| {
                let client = LedgerClient::new(ch);
                let (pool, next) = (pool.clone(), next.clone());
                if stream {
                    tokio::spawn(stream_client(client, pool, next, deadline, window.max(1)))
                } else {
                    tokio::spawn(unary_client(client, pool, next, deadline))
                }
            })
            .collect();
        let mut all = Tally::default();
        for t in tasks {
            all.add(t.await.map_err(|e| anyhow!("a client task failed: {e}"))?);
        }
        let elapsed = start.elapsed();
        Ok::<_, anyhow::Error>((all, elapsed))
    })?;
    let mode = if stream { "stream" } else { "unary" };
    report(ctx, mode, clients, tally, elapsed, n)
}

/// Prints a run's result: durable appends per second and latency percentiles.
pub(crate) fn report(
    ctx: &Ctx,
    mode: &'static str,
    clients: usize,
    tally: Tally,
    elapsed: Duration,
    pool: usize,
) -> Result<ExitCode> {
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let secs = elapsed.as_secs_f64();
    let rate = ok as f64 / secs;
    let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
    if ok as usize >= pool {
        eprintln!("warning: the pre-signed pool ({pool} records) ran out before the duration; pass a larger --records");
    }
    if ctx.json {
        json_out(&BenchOut {
            appended: ok,
            appends_per_sec: rate,
            clients,
            duration_s: secs,
            errors: tally.errors,
            first_error: tally.first_error,
            mode,
            p50_ms: p50,
            p99_ms: p99,
            record_bytes: RECORD_BYTES,
        })?;
    } else {
        line(format!(
            "{mode}, {clients} clients, {secs:.1} s: {ok} durable appends ({rate:.0}/s), p50 {p50:.2} ms, p99 {p99:.2} ms, {} errors",
            tally.errors
        ))?;
        if let Some(e) = &tally.first_error {
            line(format!("first error: {e}"))?;
        }
    }
    Ok(if tally.errors > 0 && ok == 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
