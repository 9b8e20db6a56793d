//! Group commit, pipelined: one sequencer thread owns the write path. Request handlers verify
//! signatures concurrently, then hand verified records to the sequencer, which takes every
//! record waiting (up to a batch limit) and sequences them ([`Ledger::prepare_batch`]); a
//! committer thread writes each sequenced batch in one atomic batch with one flush, publishes
//! it and only then answers each request ([`Ledger::commit_batch`]). Batch N+1 is sequenced
//! while batch N is written and flushed; under load, records that arrive meanwhile form the
//! next batch, so the number of flushes per record falls as concurrency rises.

use std::sync::Arc;
use std::thread::JoinHandle;

use ledger_core::entry::VerifiedRecord;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::ledger::{Atomicity, Ledger, Prepared, Receipt};
use crate::store::Store;

/// Most records in one group commit.
pub const MAX_BATCH: usize = 1024;

/// Default time the sequencer waits for more records before writing a batch that is still
/// filling (see [`Sequencer::start`]).
pub const DEFAULT_LINGER: std::time::Duration = std::time::Duration::from_micros(200);

/// At most this many lingers per batch (bounds the added latency to 1 ms).
const LINGER_ROUNDS: usize = 5;

type Reply = oneshot::Sender<Result<Receipt>>;

struct Job {
    record: VerifiedRecord,
    reply: Reply,
}

/// The sequencer thread. Dropping every [`SequencerHandle`] and calling
/// [`Sequencer::shutdown`] drains what is queued, flushes it, and stops the thread.
pub struct Sequencer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    committer: Option<JoinHandle<()>>,
}

/// A cheap handle that submits records to the sequencer.
#[derive(Clone)]
pub struct SequencerHandle {
    tx: mpsc::Sender<Job>,
}

impl Sequencer {
    /// Starts the sequencer thread for `ledger`. While records keep arriving, a batch waits up
    /// to `linger` (at most 5 times) before it is written; zero disables lingering.
    ///
    /// # Errors
    /// [`Error::Storage`] if the thread cannot be spawned.
    pub fn start<S: Store + 'static>(ledger: Arc<Ledger<S>>, linger: std::time::Duration) -> Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        // A rendezvous: the sequencer hands batch N+1 over once the committer is done with N,
        // and meanwhile gathers the records that arrive for N+2.
        let (to_commit, prepared) = std::sync::mpsc::sync_channel::<(Prepared, Vec<Reply>)>(0);
        let committing = ledger.clone();
        let committer = std::thread::Builder::new()
            .name("ledger-committer".into())
            .spawn(move || {
                for (batch, replies) in prepared {
                    let started = std::time::Instant::now();
                    let n = replies.len();
                    let results = committing.commit_batch(batch);
                    tracing::debug!(batch = n, micros = started.elapsed().as_micros() as u64, "group commit");
                    for (reply, result) in replies.into_iter().zip(results) {
                        // The requester may have gone away; its record is stored regardless.
                        let _ = reply.send(result);
                    }
                }
            })
            .map_err(|e| Error::Storage(format!("cannot start the committer thread: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || {
                let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
                let drain = |jobs: &mut Vec<Job>, rx: &mut mpsc::Receiver<Job>| {
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                };
                while let Some(first) = rx.blocking_recv() {
                    jobs.push(first);
                    drain(&mut jobs, &mut rx);
                    // Linger while records keep arriving: a flush costs hundreds of µs whatever
                    // its size, so under load a slightly later, larger batch is far cheaper per
                    // record. A lone request waits one linger at most.
                    let rounds = if linger.is_zero() { 0 } else { LINGER_ROUNDS };
                    for _ in 0..rounds {
                        if jobs.len() >= MAX_BATCH {
                            break;
                        }
                        let before = jobs.len();
                        std::thread::sleep(linger);
                        drain(&mut jobs, &mut rx);
                        if jobs.len() == before {
                            break;
                        }
                    }
                    // Moved out of the jobs, not cloned: a record is about 1 KiB plus its decoded form.
                    let (records, replies): (Vec<VerifiedRecord>, Vec<_>) =
                        jobs.drain(..).map(|j| (j.record, j.reply)).unzip();
                    let batch = ledger.prepare_batch(records, Atomicity::EachOnItsOwn);
                    if let Err(std::sync::mpsc::SendError((batch, replies))) = to_commit.send((batch, replies)) {
                        // The committer is gone (it panicked): answer here rather than drop the replies.
                        for (reply, result) in replies.into_iter().zip(ledger.commit_batch(batch)) {
                            let _ = reply.send(result);
                        }
                    }
                }
            })
            .map_err(|e| Error::Storage(format!("cannot start the sequencer thread: {e}")))?;
        Ok(Sequencer { tx: Some(tx), thread: Some(thread), committer: Some(committer) })
    }

    /// A handle for request handlers.
    pub fn handle(&self) -> Option<SequencerHandle> {
        self.tx.clone().map(|tx| SequencerHandle { tx })
    }

    /// Stops accepting work, lets the thread drain and flush everything queued, and waits for
    /// it. Outstanding handles must have been dropped, or this waits until they are.
    pub fn shutdown(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The sequencer's end closed the committer's queue: it commits what it holds and stops.
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

impl SequencerHandle {
    /// Submits a verified record and waits until it is durably stored (or refused).
    ///
    /// # Errors
    /// The record's own error, or [`Error::Unavailable`] if the sequencer has stopped.
    pub async fn append(&self, record: VerifiedRecord) -> Result<Receipt> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { record, reply }).await.map_err(|_| Error::Unavailable)?;
        rx.await.map_err(|_| Error::Unavailable)?
    }
}
