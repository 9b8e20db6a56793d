//! `ledger bench audit-table`: the common alternative to the ledger, measured the same way. A
//! plain PostgreSQL table of signed records whose `BEFORE INSERT` trigger takes a transaction
//! advisory lock, reads the last row and chains `sha256(prev ‖ body)`; clients insert the same
//! pre-signed 1 KiB records one row per transaction (each commit durable,
//! `synchronous_commit = on`). What it lacks next to the ledger (no Merkle tree, no
//! checkpoints, no proofs, a chain a superuser can recompute) is in docs/BENCHMARKS.md.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ledger_core::entry::SignedRecord;
use tokio_postgres::NoTls;

use crate::bench::{presign, report, Tally};
use crate::ctx::Ctx;

/// The table, its trigger and the trigger's function, replacing any earlier run's.
const SCHEMA: &str = r"
DROP TABLE IF EXISTS bench_audit;
CREATE TABLE bench_audit (
    seq bigint PRIMARY KEY,
    body bytea NOT NULL,
    signature bytea NOT NULL,
    prev bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE OR REPLACE FUNCTION bench_audit_chain() RETURNS trigger AS $$
DECLARE
    last_seq bigint;
    last_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(7700);
    SELECT seq, hash INTO last_seq, last_hash FROM bench_audit ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev := coalesce(last_hash, '\x'::bytea);
    NEW.hash := sha256(NEW.prev || NEW.body);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER bench_audit_chain BEFORE INSERT ON bench_audit
    FOR EACH ROW EXECUTE FUNCTION bench_audit_chain();
";

async fn client(url: String, pool: Arc<Vec<SignedRecord>>, next: Arc<AtomicUsize>, deadline: Instant) -> Result<Tally> {
    let (db, conn) = tokio_postgres::connect(&url, NoTls).await.context("connecting a client")?;
    tokio::spawn(conn);
    db.batch_execute("SET synchronous_commit TO on").await?;
    let insert = db.prepare("INSERT INTO bench_audit (body, signature, prev, hash) VALUES ($1, $2, '', '')").await?;
    let mut t = Tally::default();
    while Instant::now() < deadline {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(rec) = pool.get(i) else { break };
        let start = Instant::now();
        match db.execute(&insert, &[&rec.record.0.as_slice(), &rec.sig.0.as_slice()]).await {
            Ok(_) => t.latencies_us.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32),
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(t)
}

/// Runs `ledger bench audit-table`.
pub fn run(
    ctx: &Ctx,
    url: &str,
    clients: usize,
    duration: u64,
    records: Option<usize>,
    signer: &crate::cli::SignerArgs,
) -> Result<ExitCode> {
    if !ledger_store::store::is_postgres(url) {
        bail!("--database `{url}`: expected a postgres:// URL");
    }
    if clients == 0 || duration == 0 {
        bail!("--clients and --duration must be at least 1");
    }
    let key = ctx.signer_key(signer)?;
    let n = records.unwrap_or_else(|| (duration as usize).saturating_mul(20_000).min(2_000_000));
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce).map_err(|e| anyhow!("random nonce: {e}"))?;
    if !ctx.json {
        eprintln!("signing {n} records of {} bytes before the clock starts…", crate::bench::RECORD_BYTES);
    }
    let pool = Arc::new(presign(&key, n, u64::from_le_bytes(nonce))?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let (tally, elapsed) = rt.block_on(async {
        let (db, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .with_context(|| format!("connecting to {}", ledger_store::store::redact(url)))?;
        tokio::spawn(conn);
        db.batch_execute(SCHEMA).await.context("creating the audit table")?;
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(duration);
        let tasks: Vec<_> =
            (0..clients).map(|_| tokio::spawn(client(url.to_string(), pool.clone(), next.clone(), deadline))).collect();
        let mut all = Tally::default();
        for t in tasks {
            all.add(t.await.map_err(|e| anyhow!("a client task failed: {e}"))??);
        }
        let elapsed = start.elapsed();
        // The chain is whole: as many rows as acknowledged inserts, seqs 1..=n.
        let row = db.query_one("SELECT count(*), coalesce(max(seq), 0) FROM bench_audit", &[]).await?;
        let (rows, max): (i64, i64) = (row.get(0), row.get(1));
        if rows as usize != all.latencies_us.len() || rows != max {
            bail!(
                "the audit table holds {rows} rows (last seq {max}) for {} acknowledged inserts",
                all.latencies_us.len()
            );
        }
        Ok::<_, anyhow::Error>((all, elapsed))
    })?;
    report(ctx, "audit-table", clients, tally, elapsed, n)
}
