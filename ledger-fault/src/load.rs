//! The load: concurrent unary `Append` and `AppendStream` clients, each appending distinct
//! ~1 KiB `evidence` records signed by the test `ci` key and keeping every receipt it gets.
//! A receipt is an acknowledgement: the server says the entry is durable.

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

async fn unary(mut c: LedgerClient<Channel>, ci: Arc<SigningKey>, tag: String) -> Result<Vec<Ack>> {
    let mut acks = Vec::new();
    for i in 0u64.. {
        match c.append(request(&ci, &format!("{tag}-{i}"))).await {
            Ok(resp) => acks.push(ack(resp.into_inner().receipt)?),
            // The server is gone: the cut.
            Err(_) => break,
        }
    }
    Ok(acks)
}

async fn stream(mut c: LedgerClient<Channel>, ci: Arc<SigningKey>, tag: String) -> Result<Vec<Ack>> {
    let mut acks = Vec::new();
    let out = futures::stream::iter(0u64..).map(move |i| request(&ci, &format!("{tag}-{i}")));
    let Ok(resp) = c.append_stream(out).await else { return Ok(acks) };
    let mut inbound = resp.into_inner();
    while let Some(msg) = inbound.next().await {
        let Ok(msg) = msg else { break };
        match msg.result {
            Some(pb::append_stream_response::Result::Receipt(r)) => acks.push(ack(Some(r))?),
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
/// the server down) and collects every receipt the clients got.
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
    cut: impl FnOnce() -> Result<()>,
) -> Result<Vec<Ack>> {
    let ci = Arc::new(key("ci"));
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
            tokio::spawn(unary(c, ci.clone(), tag))
        } else {
            tokio::spawn(stream(c, ci.clone(), tag))
        });
    }
    tokio::time::sleep(load).await;
    tokio::task::block_in_place(cut)?;
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
