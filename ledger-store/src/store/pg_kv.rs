//! The PostgreSQL backend of [`super::Kv`]: the layout's pairs as rows of one table,
//! `ledger_kv (k bytea PRIMARY KEY, v bytea NOT NULL)`, read in key order (`bytea` compares
//! byte by byte, as the layout's keys must) and written one transaction per batch (a single
//! statement, one round trip), committed with `synchronous_commit = on`: a write returns once
//! PostgreSQL says the commit is durable (flushed to its WAL, and to a synchronous standby
//! where the server is configured with one).
//!
//! The driver is tokio-postgres, run on a thread of its own with its own runtime: the
//! [`super::Kv`] seam is synchronous and is called from any thread, `ledgerd`'s runtime
//! included, where blocking on a future would panic. Each call sends a job to that thread and
//! waits for its answer. A handle holds two sessions: writes (and the lease) on one, in order;
//! reads on the other, so that a read never waits behind a commit's flush.
//!
//! Schema changes are versioned: `ledger_schema (version, applied_at)` records each migration
//! applied, and opening applies the missing ones in one transaction. Any number of handles may
//! read a store; one at a time writes, the holder of the writer lease, and each write
//! transaction is fenced by the lease's token and by the head it extends (`pg_lease.rs`).

use std::sync::{mpsc, Arc};

use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::kv::{Guard, Kv, KvIter, PairFn};
use super::pg_lease::{self, Claim, Lease};
use super::pg_tls;
use super::Role;
use crate::error::{Error, Result};

/// Rows fetched per round trip of a scan.
const PAGE: i64 = 2048;

/// How long a handle claiming the writer lease on its first write waits for the holder to let
/// go: longer than a lease lasts, so that a stopped holder's lease expires meanwhile.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Each migration, in order: `MIGRATIONS[i]` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE ledger_kv (k bytea PRIMARY KEY, v bytea NOT NULL)", pg_lease::MIGRATION];

/// Session settings, whatever the server's defaults: a commit returns once durable; a session
/// that stops inside a transaction (only migrations span several statements) is ended rather
/// than holding its locks.
const SESSION: &str = "SET synchronous_commit TO on; SET idle_in_transaction_session_timeout TO '10s'";

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("postgres: {e}"))
}

/// A driver error with its server message, code and detail when there is one.
pub(super) fn pg_error(e: &tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Storage(format!(
            "postgres: {} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        None => storage(e),
    }
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Whether `location` names a PostgreSQL database (`postgres://…` or `postgresql://…`).
pub fn is_postgres(location: &str) -> bool {
    let l = location.trim_start();
    l.starts_with("postgres://") || l.starts_with("postgresql://")
}

/// The first key after every key starting with `prefix`, if there is one.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xff {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
type Reply<T> = mpsc::SyncSender<Result<T>>;

/// What the driver thread is asked to do.
enum Job {
    Get(Vec<u8>, Reply<Option<Vec<u8>>>),
    GetMany(Vec<Vec<u8>>, Reply<Vec<Option<Vec<u8>>>>),
    /// Up to [`PAGE`] pairs with key `>= from` (or `> from` when `after`), `< to` when given.
    Page {
        from: Vec<u8>,
        after: bool,
        to: Option<Vec<u8>>,
        reply: Reply<Pairs>,
    },
    Write {
        /// Keys that must not exist yet (inserted without an upsert's cost).
        new: Pairs,
        puts: Pairs,
        removes: Vec<Vec<u8>>,
        /// The key checked and the value it must hold (`None`: absent).
        guard: Option<(Vec<u8>, Option<Vec<u8>>)>,
        reply: Reply<()>,
    },
    /// Try once to claim the writer lease.
    Claim(Reply<bool>),
    /// Give the writer lease up.
    Release(Reply<()>),
}

/// A PostgreSQL database as a [`Kv`].
pub(super) struct PgKv {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
    lease: Arc<Lease>,
}

impl PgKv {
    /// Connects to `url` and applies the schema migrations missing. The handle comes to hold
    /// the writer lease as `claim` says, under the name `me`.
    ///
    /// # Errors
    /// [`Error::Storage`] if the database cannot be reached or its schema is newer than this
    /// binary knows.
    pub(super) fn open(url: &str, claim: Claim, me: String) -> Result<Self> {
        let (plain, root_cert) = pg_tls::split_root_cert(url);
        let config: tokio_postgres::Config =
            plain.parse().map_err(|e| Error::Storage(format!("postgres: the URL {}: {e}", redact(url))))?;
        let tls = pg_tls::connector(&config, root_cert.as_deref())?;
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<()>>(1);
        let shown = redact(url);
        let lease = Lease::new(me, claim);
        let shared = lease.clone();
        let thread = std::thread::Builder::new()
            .name("ledger-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(storage(format!("starting the driver's runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(async move {
                    let client = match connect(&config, tls.clone(), &shown, true).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    // Reads on a connection of their own: PostgreSQL runs one statement at a
                    // time per session, and the sequencer reads for batch N+1 while batch N's
                    // commit is being flushed on the writing one.
                    let reader = match connect(&config, tls, &shown, false).await {
                        Ok(c) => Arc::new(c),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    // Who writes, for a standby's first refusal.
                    if let Err(e) = pg_lease::claim_info(&client, &shared).await {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                    let _ = ready_tx.send(Ok(()));
                    let client = Arc::new(client);
                    let renewal = tokio::spawn(pg_lease::renew_loop(client.clone(), shared.clone()));
                    // Writes and lease calls in order, one at a time, on the writing session;
                    // reads each as a task of its own on the reading one (pipelined).
                    let (writes, mut write_queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
                    let (writing, lease) = (client.clone(), shared.clone());
                    let writer = tokio::spawn(async move {
                        while let Some(job) = write_queue.recv().await {
                            serve(&writing, &lease, job).await;
                        }
                    });
                    while let Some(job) = queue.recv().await {
                        match job {
                            Job::Write { .. } | Job::Claim(_) | Job::Release(_) => {
                                let _ = writes.send(job);
                            }
                            read => {
                                let (reader, lease) = (reader.clone(), shared.clone());
                                tokio::spawn(async move { serve(&reader, &lease, read).await });
                            }
                        }
                    }
                    drop(writes);
                    let _ = writer.await;
                    renewal.abort();
                });
            })
            .map_err(|e| storage(format!("starting the driver's thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PgKv { jobs, thread: Some(thread), lease }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(storage("the driver's thread ended before connecting")),
        }
    }

    fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs.send(job(tx)).map_err(|_| storage("the connection is closed"))?;
        rx.recv().map_err(|_| storage("the connection ended during the call"))?
    }

    fn scan(&self, from: &[u8], to: Option<Vec<u8>>) -> KvIter<'_> {
        Box::new(Scan { kv: self, next: Some((from.to_vec(), false)), to, page: Vec::new().into_iter() })
    }
}

impl Drop for PgKv {
    fn drop(&mut self) {
        // A handle closed cleanly lets another claim the lease at once.
        if self.lease.token() != 0 {
            let _ = self.release_writer();
        }
        // Closing the queue ends the thread's loop; the connection goes with it.
        let (closed, _) = tokio::sync::mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects (over TLS when `tls` is given), sets the session up and, with `migrations`,
/// applies the schema migrations missing.
async fn connect(
    config: &tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    shown: &str,
    migrations: bool,
) -> Result<Client> {
    let connected = match tls {
        Some(tls) => config.connect(tls).await.map(|(client, connection)| {
            // Ends when the client is dropped or the server goes away; calls then fail.
            tokio::spawn(connection);
            client
        }),
        None => config.connect(NoTls).await.map(|(client, connection)| {
            tokio::spawn(connection);
            client
        }),
    };
    let client = connected.map_err(|e| {
        let why = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        };
        let hint = if why.contains("certificate") || why.contains("UnknownIssuer") {
            " (the server's certificate is not trusted: give sslrootcert=FILE, the CA certificate that signed it, in PEM)"
        } else if why.contains("TLS") || why.contains("SSL") {
            " (sslmode=require encrypts: the server must have ssl = on; a unix socket carries no TLS)"
        } else {
            ""
        };
        Error::Storage(format!("postgres: cannot connect to {shown}: {why}{hint}"))
    })?;
    client.batch_execute(SESSION).await.map_err(|e| pg_error(&e))?;
    if migrations {
        migrate(&client).await?;
    }
    Ok(client)
}

/// Applies the migrations the database lacks, in one transaction that holds the schema
/// table's lock, so that two handles migrating at once apply each migration once.
async fn migrate(client: &Client) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS ledger_schema (version integer PRIMARY KEY, \
             applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| pg_error(&e))?;
    client.batch_execute("BEGIN; LOCK TABLE ledger_schema IN EXCLUSIVE MODE").await.map_err(|e| pg_error(&e))?;
    let result = async {
        let version: i32 = client
            .query_one("SELECT coalesce(max(version), 0) FROM ledger_schema", &[])
            .await
            .map_err(|e| pg_error(&e))?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if version > known {
            return Err(Error::Storage(format!(
                "postgres: the database's schema is version {version}, newer than this binary's {known}: upgrade the binary"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            client.batch_execute(sql).await.map_err(|e| pg_error(&e))?;
            let v = i as i32 + 1;
            client.execute("INSERT INTO ledger_schema (version) VALUES ($1)", &[&v]).await.map_err(|e| pg_error(&e))?;
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await.map_err(|e| pg_error(&e))?;
    result
}

async fn serve(client: &Client, lease: &Lease, job: Job) {
    match job {
        Job::Get(k, reply) => {
            let r = client
                .query_opt("SELECT v FROM ledger_kv WHERE k = $1", &[&k])
                .await
                .map(|row| row.map(|r| r.get::<_, Vec<u8>>(0)))
                .map_err(|e| pg_error(&e));
            let _ = reply.send(r);
        }
        Job::GetMany(keys, reply) => {
            let r = client
                .query("SELECT k, v FROM ledger_kv WHERE k = ANY($1)", &[&keys])
                .await
                .map(|rows| {
                    let found: std::collections::HashMap<Vec<u8>, Vec<u8>> =
                        rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
                    keys.iter().map(|k| found.get(k).cloned()).collect()
                })
                .map_err(|e| pg_error(&e));
            let _ = reply.send(r);
        }
        Job::Page { from, after, to, reply } => {
            let sql = match (after, to.is_some()) {
                (false, true) => "SELECT k, v FROM ledger_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
                (true, true) => "SELECT k, v FROM ledger_kv WHERE k > $1 AND k < $2 ORDER BY k LIMIT $3",
                (false, false) => "SELECT k, v FROM ledger_kv WHERE k >= $1 ORDER BY k LIMIT $2",
                (true, false) => "SELECT k, v FROM ledger_kv WHERE k > $1 ORDER BY k LIMIT $2",
            };
            let rows = match &to {
                Some(to) => client.query(sql, &[&from, to, &PAGE]).await,
                None => client.query(sql, &[&from, &PAGE]).await,
            };
            let r = rows
                .map(|rows| rows.into_iter().map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))).collect())
                .map_err(|e| pg_error(&e));
            let _ = reply.send(r);
        }
        Job::Write { new, puts, removes, guard, reply } => {
            let _ = reply.send(write(client, lease, new, puts, removes, guard).await);
        }
        Job::Claim(reply) => {
            let _ = reply.send(pg_lease::claim(client, lease).await);
        }
        Job::Release(reply) => {
            let _ = reply.send(pg_lease::release(client, lease).await);
        }
    }
}

/// One statement, so one transaction (PostgreSQL runs a statement outside `BEGIN` as its own):
/// the puts (the last value of a key put twice) and the removes (a key both put and removed is
/// removed, as puts come first), sent in one round trip and answered once the commit is
/// durable (the session's `synchronous_commit` is `on`, set at connect whatever the server's
/// default). The statement writes only under this handle's writer lease token and `guard`
/// ([`pg_lease::WRITE`]); a handle without the lease claims it first when it claims on write.
/// An error, a lost connection included, leaves the write's outcome to the caller, who stops
/// writing.
async fn write(
    client: &Client,
    lease: &Lease,
    new: Pairs,
    puts: Pairs,
    removes: Vec<Vec<u8>>,
    guard: Option<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<()> {
    if lease.token() == 0 {
        match lease.claim {
            Claim::OnWrite => pg_lease::claim_waiting(client, lease, CLAIM_WAIT).await?,
            Claim::Explicit => return Err(lease.not_writer()),
        }
    }
    let token = lease.token();
    let removed: std::collections::HashSet<&Vec<u8>> = removes.iter().collect();
    let mut last: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = std::collections::BTreeMap::new();
    last.extend(puts.into_iter().filter(|(k, _)| !removed.contains(k)));
    let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = last.into_iter().unzip();
    let (new_keys, new_values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = new.into_iter().unzip();
    let (guard_key, expect) = match guard {
        Some((k, v)) => (Some(k), v),
        None => (None, None),
    };
    let row = client
        .query_one(pg_lease::WRITE, &[&keys, &values, &removes, &token, &guard_key, &expect, &new_keys, &new_values])
        .await
        .map_err(|e| pg_error(&e))?;
    let (leased, current): (bool, bool) = (row.get(0), row.get(1));
    if !leased {
        lease.drop_token(token);
        tracing::warn!(token, "a write was fenced off: another handle holds the writer lease");
        // Who holds it now, for the refusal's message.
        let _ = pg_lease::claim_info(client, lease).await;
        return Err(lease.not_writer());
    }
    if !current {
        return Err(Error::Storage(
            "postgres: the ledger's head moved under this handle (another writer appended since it read the head); nothing was written".into(),
        ));
    }
    Ok(())
}

fn owned(pairs: &[(&[u8], &[u8])]) -> Pairs {
    pairs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

/// A scan, a page at a time.
struct Scan<'a> {
    kv: &'a PgKv,
    /// Where the next page starts (`true`: after that key), or `None` when done.
    next: Option<(Vec<u8>, bool)>,
    to: Option<Vec<u8>>,
    page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(pair) = self.page.next() {
                return Some(Ok(pair));
            }
            let (from, after) = self.next.take()?;
            let to = self.to.clone();
            match self.kv.ask(|reply| Job::Page { from, after, to, reply }) {
                Ok(rows) => {
                    if rows.len() as i64 == PAGE {
                        self.next = rows.last().map(|(k, _)| (k.clone(), true));
                    }
                    self.page = rows.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Kv for PgKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.ask(|reply| Job::Get(key, reply))
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let keys = keys.iter().map(|k| k.to_vec()).collect();
        self.ask(|reply| Job::GetMany(keys, reply))
    }

    fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> KvIter<'a> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        self.scan(from, Some(to.to_vec()))
    }

    fn prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
        self.scan(prefix, successor(prefix))
    }

    fn for_each_prefix(&self, prefix: &[u8], f: &mut PairFn<'_>) -> Result<()> {
        for kv in self.prefix(prefix) {
            let (k, v) = kv?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn write(&self, puts: &[(&[u8], &[u8])], removes: &[&[u8]]) -> Result<()> {
        let puts = owned(puts);
        let removes = removes.iter().map(|k| k.to_vec()).collect();
        self.ask(|reply| Job::Write { new: vec![], puts, removes, guard: None, reply })
    }

    fn append(&self, new: &[(&[u8], &[u8])], replace: &[(&[u8], &[u8])], guard: Guard<'_>) -> Result<()> {
        let (new, puts) = (owned(new), owned(replace));
        let guard = Some((guard.key.to_vec(), guard.expect.map(<[u8]>::to_vec)));
        self.ask(|reply| Job::Write { new, puts, removes: vec![], guard, reply })
    }

    fn claim_writer(&self) -> Result<bool> {
        self.ask(Job::Claim)
    }

    fn release_writer(&self) -> Result<()> {
        self.ask(Job::Release)
    }

    fn role(&self) -> Role {
        if self.lease.token() != 0 || self.lease.claim == Claim::OnWrite {
            Role::Writer
        } else {
            Role::Standby { writer: self.lease.holder() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_where_the_next_prefix_starts() {
        assert_eq!(successor(b"e"), Some(b"f".to_vec()));
        assert_eq!(successor(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(successor(&[0xff, 0xff]), None);
        assert_eq!(successor(b""), None);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgresql:///db?host=/tmp"), "postgresql:///db?host=/tmp");
        assert!(is_postgres("postgresql://x") && is_postgres("postgres://x") && !is_postgres("./data"));
    }
}
