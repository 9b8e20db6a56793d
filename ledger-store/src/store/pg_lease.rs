//! The writer lease of a PostgreSQL store: one row, `ledger_lease`, naming the handle that may
//! append (`holder`, its server session `holder_pid`), until when (`expires_at`, the server's
//! clock), and a **fencing token** raised by every claim. Every write transaction checks the
//! token it was given under a row lock ([`WRITE`]); a claim's `UPDATE` waits for a write in
//! progress, so once a claim commits, a write with an older token changes nothing, even from a
//! process that was stopped mid-write and resumes later.
//!
//! A lease can be claimed when it has expired (its holder stopped renewing: a stopped process,
//! a cut network), when its holder's session is gone (a killed process: no waiting for the
//! expiry), or by the handle that holds it. The holder renews it every [`RENEW_EVERY`] from
//! the driver's thread, whatever the handle is busy with.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::pg_kv::pg_error;
use crate::error::{Error, Result};

/// How long a lease lasts unless renewed: a writer that stops (SIGSTOP, a cut network) is
/// replaced this long after its last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(3);

/// How often the holder renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_millis(1000);

/// The lease table, created by schema migration 2; one row, id 1.
pub(super) const MIGRATION: &str = "CREATE TABLE ledger_lease (id integer PRIMARY KEY CHECK (id = 1), \
     token bigint NOT NULL, holder text NOT NULL, holder_pid integer, expires_at timestamptz NOT NULL); \
     INSERT INTO ledger_lease VALUES (1, 0, '', NULL, '-infinity')";

/// Takes the lease when it is free (expired, released, or its holder's session gone) or
/// already this session's, raising the token. `$1` holder name, `$2` lease length in ms. A
/// holder's session counts as gone only where `pg_stat_activity` lists sessions at all (it
/// lists this one): a database whose view is empty waits for the expiry.
const CLAIM: &str = "UPDATE ledger_lease SET token = token + 1, holder = $1, holder_pid = pg_backend_pid(), \
     expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond' \
     WHERE id = 1 AND (expires_at < clock_timestamp() OR holder_pid IS NULL OR holder_pid = pg_backend_pid() \
     OR (EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = pg_backend_pid()) \
         AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = ledger_lease.holder_pid))) RETURNING token";

/// Extends the lease of token `$1` by `$2` ms; no row when the token is no longer current.
const RENEW: &str = "UPDATE ledger_lease SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond' \
     WHERE id = 1 AND token = $1";

/// Gives the lease of token `$1` up: another handle may claim it at once.
const RELEASE: &str = "UPDATE ledger_lease SET expires_at = '-infinity', holder_pid = NULL WHERE id = 1 AND token = $1";

/// The holder's name and whether its lease is live.
const HOLDER: &str =
    "SELECT holder, holder_pid IS NOT NULL AND expires_at > clock_timestamp() FROM ledger_lease WHERE id = 1";

/// One write transaction, fenced: the new pairs (`$7` keys, `$8` values: plain inserts, which
/// fail if a key exists), the puts (`$1`, `$2`: upserts) and removes (`$3`) apply only if `$4`
/// is the current token (the lease row read `FOR SHARE`, so a claim waits for this write, and
/// this write for a claim in progress) and, when `$5` is not null, key `$5` holds `$6` (null:
/// absent), read `FOR UPDATE`. Answers whether each held: `(leased, current)`.
pub(super) const WRITE: &str = "WITH lease AS (SELECT 1 FROM ledger_lease WHERE id = 1 AND token = $4 FOR SHARE), \
     ok AS (SELECT EXISTS (SELECT 1 FROM lease) AS leased, \
       ($5::bytea IS NULL OR (SELECT v FROM ledger_kv WHERE k = $5 FOR UPDATE) IS NOT DISTINCT FROM $6::bytea) AS current), \
     ins AS (INSERT INTO ledger_kv (k, v) SELECT u.k, u.v FROM unnest($7::bytea[], $8::bytea[]) AS u(k, v), ok \
       WHERE ok.leased AND ok.current), \
     put AS (INSERT INTO ledger_kv (k, v) SELECT u.k, u.v FROM unnest($1::bytea[], $2::bytea[]) AS u(k, v), ok \
       WHERE ok.leased AND ok.current ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v), \
     gone AS (DELETE FROM ledger_kv USING ok WHERE ok.leased AND ok.current AND ledger_kv.k = ANY($3::bytea[])) \
     SELECT leased, current FROM ok";

/// How a handle comes to hold the writer lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// When it first writes, waiting a few seconds for another holder to let go (the CLI and
    /// tools: one command, one writer).
    OnWrite,
    /// Only when asked ([`super::DiskStore::claim_writer`]); until then its writes are refused
    /// with [`Error::NotWriter`] (`ledgerd`, which serves reads as a standby meanwhile).
    Explicit,
}

/// This handle's side of the lease, shared by the driver's tasks and the callers.
pub(super) struct Lease {
    /// This handle's name as a holder.
    pub me: String,
    pub claim: Claim,
    /// The fencing token held, 0 when none.
    pub token: AtomicI64,
    /// The holder last seen, when another.
    pub holder: Mutex<Option<String>>,
}

impl Lease {
    pub fn new(me: String, claim: Claim) -> Arc<Self> {
        Arc::new(Lease { me, claim, token: AtomicI64::new(0), holder: Mutex::new(None) })
    }

    pub fn token(&self) -> i64 {
        self.token.load(Ordering::SeqCst)
    }

    /// Forgets token `t` (lost or given up), unless a newer one replaced it meanwhile.
    pub fn drop_token(&self, t: i64) {
        let _ = self.token.compare_exchange(t, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn holder(&self) -> Option<String> {
        self.holder.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_holder(&self, h: Option<String>) {
        *self.holder.lock().unwrap_or_else(|p| p.into_inner()) = h;
    }

    /// The refusal of a write this handle may not make.
    pub fn not_writer(&self) -> Error {
        Error::not_writer(self.holder())
    }
}

fn ttl_ms() -> i64 {
    LEASE_TTL.as_millis() as i64
}

/// Tries once to claim the lease. `Ok(true)`: this handle now holds it (a new token).
pub(super) async fn claim(client: &Client, lease: &Lease) -> Result<bool> {
    let row = client.query_opt(CLAIM, &[&lease.me, &ttl_ms()]).await.map_err(|e| pg_error(&e))?;
    match row {
        Some(r) => {
            let token: i64 = r.get(0);
            lease.token.store(token, Ordering::SeqCst);
            lease.set_holder(Some(lease.me.clone()));
            tracing::info!(token, "holding the writer lease");
            Ok(true)
        }
        None => {
            claim_info(client, lease).await?;
            Ok(false)
        }
    }
}

/// Reads who holds the lease now (for messages).
pub(super) async fn claim_info(client: &Client, lease: &Lease) -> Result<()> {
    let r = client.query_one(HOLDER, &[]).await.map_err(|e| pg_error(&e))?;
    let (name, live): (String, bool) = (r.get(0), r.get(1));
    lease.set_holder(live.then_some(name));
    Ok(())
}

/// Claims the lease, waiting up to `patience` for its holder to let go.
pub(super) async fn claim_waiting(client: &Client, lease: &Lease, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        if claim(client, lease).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(lease.not_writer());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Gives the lease up, if held.
pub(super) async fn release(client: &Client, lease: &Lease) -> Result<()> {
    let t = lease.token();
    if t == 0 {
        return Ok(());
    }
    lease.drop_token(t);
    client.execute(RELEASE, &[&t]).await.map_err(|e| pg_error(&e))?;
    Ok(())
}

/// Renews the lease while the handle holds it, every [`RENEW_EVERY`], until the client goes.
/// A renewal that finds another token current means the lease was lost: the token is
/// forgotten (writes with it would be refused anyway). A server that does not answer for a
/// whole lease means the same: another handle may have claimed it.
pub(super) async fn renew_loop(client: Arc<Client>, lease: Arc<Lease>) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let t = lease.token();
        if t == 0 {
            renewed = Instant::now();
            continue;
        }
        match client.execute(RENEW, &[&t, &ttl_ms()]).await {
            Ok(1) => renewed = Instant::now(),
            Ok(_) => {
                tracing::warn!(token = t, "the writer lease was taken over; this handle no longer appends");
                lease.drop_token(t);
            }
            Err(e) if client.is_closed() => {
                tracing::error!(error = %e, "the database connection is closed; the writer lease is lost");
                lease.drop_token(t);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing the writer lease failed");
                if renewed.elapsed() >= LEASE_TTL {
                    lease.drop_token(t);
                }
            }
        }
    }
}
