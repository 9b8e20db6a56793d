//! Several `ledgerd` on one shared store (PostgreSQL): the one holding the writer lease appends;
//! the others are standbys that serve reads at the store's head and refuse appends
//! (`UNAVAILABLE`, naming the writer). [`follow_lease`] runs each server's part: a standby
//! follows the writer's entries and claims the lease as soon as it is free (the writer
//! stopped renewing it, or its database session ended), so that another server takes over
//! within the lease's length (3 s) of a writer's death plus one [`POLL`]; a writer whose write
//! failed gives the lease up. Each write transaction is fenced by the lease's token and the
//! head it extends (`ledger-store`), so a deposed writer that comes back cannot write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_store::ledger::Ledger;
use ledger_store::store::{Role, Store};

/// How often a server checks its role, and a standby catches up and tries to claim the lease.
pub const POLL: Duration = Duration::from_millis(250);

/// How long a server keeps going while it cannot reach the database at all: after that it
/// exits (non-zero) so that its supervisor restarts it with a new connection.
const UNREACHABLE_LIMIT: Duration = Duration::from_secs(30);

/// At start: claims the lease if it is free, retrying for up to `patience` (a writer killed a
/// moment ago leaves a session the database ends within moments). Returns whether this server
/// is the writer.
///
/// # Errors
/// If the store cannot be read or its entries do not follow.
pub fn claim_at_start<S: Store>(ledger: &Ledger<S>, patience: Duration) -> ledger_store::Result<bool> {
    let deadline = Instant::now() + patience;
    loop {
        if ledger.take_over(|s| s.claim_writer())? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One check: gives the lease up after a failed write, follows the writer as a standby and
/// claims the lease when it is free. Returns whether this server is now the writer.
fn step<S: Store>(ledger: &Ledger<S>, was_writer: bool) -> ledger_store::Result<bool> {
    if ledger.is_poisoned() && ledger.store().role() == Role::Writer {
        tracing::warn!("a write failed: giving up the writer lease; serving reads as a standby");
        ledger.store().release_writer()?;
    }
    match ledger.store().role() {
        Role::Writer => Ok(true),
        Role::Standby { writer } => {
            if was_writer {
                tracing::warn!(
                    writer = writer.as_deref().unwrap_or("unknown"),
                    "lost the writer lease; serving reads as a standby"
                );
            }
            ledger.refresh()?;
            if ledger.take_over(|s| s.claim_writer())? {
                let (entries, head) = ledger.head();
                tracing::warn!(entries, head = %head, "took over as the writer");
                return Ok(true);
            }
            Ok(false)
        }
    }
}

/// The gRPC health service name that is `SERVING` on the server that appends and `NOT_SERVING`
/// on a standby: what a load balancer routing appends checks. (`ledger.v1.Ledger` itself is
/// `SERVING` on every server: all of them answer reads.)
pub const WRITER_HEALTH: &str = "ledger.v1.Ledger/writer";

/// Sets [`WRITER_HEALTH`] to say whether this server appends.
pub async fn report_role(health: &mut tonic_health::server::HealthReporter, writer: bool) {
    let status = if writer { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
    health.set_service_status(WRITER_HEALTH, status).await;
}

/// Keeps this server's role on a shared store, and its [`WRITER_HEALTH`] status, until `stop`
/// says to end (see the module docs).
pub async fn follow_lease<S: Store + 'static>(
    ledger: Arc<Ledger<S>>,
    mut writer: bool,
    mut health: tonic_health::server::HealthReporter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing_since: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let l = ledger.clone();
        let was = writer;
        match tokio::task::spawn_blocking(move || step(&l, writer)).await {
            Ok(Ok(now)) => {
                writer = now;
                failing_since = None;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "checking the writer lease failed");
                writer = ledger.store().role() == Role::Writer && !ledger.is_poisoned();
                let since = *failing_since.get_or_insert_with(Instant::now);
                if matches!(e, ledger_store::Error::Storage(_)) && since.elapsed() >= UNREACHABLE_LIMIT {
                    tracing::error!("the database has been unreachable for 30 s: exiting so that ledgerd is restarted");
                    std::process::exit(3);
                }
            }
            Err(e) => tracing::error!(error = %e, "the lease task failed"),
        }
        if writer != was {
            report_role(&mut health, writer).await;
        }
    }
}
