//! The load: concurrent unary `Append` and `AppendStream` clients, each appending distinct
//! ~1 KiB `evidence` records signed by the test `ci` key and keeping every receipt it gets.
//! A receipt is an acknowledgement: the server says the entry is durable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_client::LedgerClient;
use ledger_store::testkit::{evidence_with_check, key, signed};
use tonic::transport::{Channel, Endpoint};

use crate::check::Ack;

/// How long the clients may take to notice the server is gone after a cut.
const WIND_DOWN: Duration = Duration::from_secs(60);

/// How long a client waits for one answer by default (a killed server's clients notice at
/// once: its connections close).
pub const PATIENCE: Duration = Duration::from_secs(30);

fn request(ci: &SigningKey, label: &str) -> pb::AppendRequest {
    let record = evidence_with_check(label, format!("fault-battery-{}", "x".repeat(900)));
    pb::AppendRequest { record: Some(pb::SignedRecord::from(&signed(&record, ci))), prove: false }
}

fn ack(r: Option<pb::Receipt>) -> Result<Ack> {
    let r = r.ok_or_else(|| anyhow!("a response without a receipt"))?;
    let hash: [u8; 32] =
        r.entry_hash.as_slice().try_into().map_err(|_| anyhow!("a receipt hash of {} bytes", r.entry_hash.len()))?;
    Ok(Ack { seq: r.seq, hash })
}

/// What every client of one run shares.
#[derive(Clone)]
struct Client {
    ci: Arc<SigningKey>,
    patience: Duration,
    /// Set once the run is over: clients send nothing more (a stream ends its requests, so
    /// that no request of this run reaches a server later).
    over: Arc<AtomicBool>,
}

async fn unary(mut c: LedgerClient<Channel>, me: Client, tag: String) -> Result<Vec<Ack>> {
    let (ci, patience) = (me.ci, me.patience);
    let mut acks = Vec::new();
    for i in 0u64.. {
        if me.over.load(Ordering::SeqCst) {
            break;
        }
        match tokio::time::timeout(patience, c.append(request(&ci, &format!("{tag}-{i}")))).await {
            Ok(Ok(resp)) => acks.push(ack(resp.into_inner().receipt)?),
            // The server is gone (the cut), stopped (no answer), or no longer the writer.
            _ => break,
        }
    }
    Ok(acks)
}

async fn stream(mut c: LedgerClient<Channel>, me: Client, tag: String) -> Result<Vec<Ack>> {
    let (ci, patience, over) = (me.ci, me.patience, me.over);
    let mut acks = Vec::new();
    // Dropping the answers does not end the requests: when this client stops, so do they.
    let ended = Arc::new(AtomicBool::new(false));
    let _end = EndOnDrop(ended.clone());
    let out = futures::stream::iter(0u64..)
        .take_while(move |_| futures::future::ready(!over.load(Ordering::SeqCst) && !ended.load(Ordering::SeqCst)))
        .map(move |i| request(&ci, &format!("{tag}-{i}")));
    let Ok(Ok(resp)) = tokio::time::timeout(patience, c.append_stream(out)).await else { return Ok(acks) };
    let mut inbound = resp.into_inner();
    while let Ok(Some(msg)) = tokio::time::timeout(patience, inbound.next()).await {
        let Ok(msg) = msg else { break };
        match msg.result {
            Some(pb::append_stream_response::Result::Receipt(r)) => acks.push(ack(Some(r))?),
            // A server that is no longer the writer (a shared store's standby) refuses: the
            // end of this client's run, as a cut is.
            Some(pb::append_stream_response::Result::Error(e)) if e.code == tonic::Code::Unavailable as i32 => break,
            Some(pb::append_stream_response::Result::Error(e)) => {
                // Every record is valid and distinct: a refusal is not a cut. Report it.
                return Err(anyhow!("the server refused a valid record on AppendStream: {} {}", e.code, e.message));
            }
            None => return Err(anyhow!("an AppendStream response without a result")),
        }
    }
    Ok(acks)
}

/// Runs `unary` + `streams` clients against `url` for `load`, then calls `cut` (which brings
/// the server down) and collects every receipt the clients got. A client stops at its first
/// error, or when an answer takes longer than `patience` (a stopped server answers nothing).
///
/// # Errors
/// If a client cannot connect, a valid record is refused, or the clients do not stop within a
/// minute of the cut.
pub async fn run(
    url: String,
    tag: &str,
    unaries: usize,
    streams: usize,
    load: Duration,
    patience: Duration,
    cut: impl FnOnce() -> Result<()>,
) -> Result<Vec<Ack>> {
    let me = Client { ci: Arc::new(key("ci")), patience, over: Arc::new(AtomicBool::new(false)) };
    let mut tasks = Vec::new();
    for i in 0..unaries + streams {
        let ch = Endpoint::from_shared(url.clone())?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let c = LedgerClient::new(ch).max_decoding_message_size(ledger_proto::MAX_FRAME_BYTES);
        let tag = format!("{tag}-c{i}");
        tasks.push(if i < unaries {
            tokio::spawn(unary(c, me.clone(), tag))
        } else {
            tokio::spawn(stream(c, me.clone(), tag))
        });
    }
    tokio::time::sleep(load).await;
    let cut = tokio::task::block_in_place(cut);
    me.over.store(true, Ordering::SeqCst);
    cut?;
    let mut acks = Vec::new();
    for t in tasks {
        let got = tokio::time::timeout(WIND_DOWN, t)
            .await
            .map_err(|_| anyhow!("a client still ran a minute after the cut"))?
            .map_err(|e| anyhow!("a client task failed: {e}"))??;
        acks.extend(got);
    }
    Ok(acks)
}

/// Ends a stream's requests when its client stops, whatever the reason.
struct EndOnDrop(Arc<AtomicBool>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
