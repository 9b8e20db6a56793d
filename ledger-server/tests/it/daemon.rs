//! `ledgerd` as a real child process, driven over gRPC: concurrent appends, deduplication,
//! crash safety under SIGKILL, graceful SIGTERM, the status contract of refusals, health and
//! reflection, and the read token.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::Signer;
use futures::StreamExt;
use ledger_proto::v1 as pb;
use tonic::codec::{Codec, EncodeBuf, Encoder, ProstCodec};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::*;

/// (seq, entry hash) of a receipt, checked to be a fresh append of `sent`.
fn fresh(r: Option<pb::Receipt>, sent: &pb::AppendRequest) -> (u64, Vec<u8>) {
    let r = r.expect("a receipt");
    assert!(!r.duplicate, "a new record came back as a duplicate: seq {}", r.seq);
    assert_eq!(r.record_id, record_id_of(sent), "the receipt is for another record");
    (r.seq, r.entry_hash)
}

/// The receipt of a stream response, failing on an in-band error.
fn stream_receipt(resp: pb::AppendStreamResponse) -> pb::Receipt {
    match resp.result {
        Some(pb::append_stream_response::Result::Receipt(r)) => r,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_contiguous_durable_receipts() {
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 100;
    const STREAMED: usize = 300;
    let fx = Fixture::new();
    let d = Daemon::start(&fx);

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = d.client().await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(PER_CLIENT);
            for i in 0..PER_CLIENT {
                let r = ci_req(&format!("unary-{c}-{i}"));
                let resp = client.append(r.clone()).await.unwrap().into_inner();
                got.push(fresh(resp.receipt, &r));
            }
            got
        }));
    }
    let mut streamer = d.client().await;
    let streamed = tokio::spawn(async move {
        let reqs: Vec<pb::AppendRequest> = (0..STREAMED).map(|i| ci_req(&format!("stream-{i}"))).collect();
        let mut responses = streamer.append_stream(futures::stream::iter(reqs.clone())).await.unwrap().into_inner();
        let mut got = Vec::with_capacity(STREAMED);
        while let Some(resp) = responses.message().await.unwrap() {
            let sent = &reqs[got.len()];
            got.push(fresh(Some(stream_receipt(resp)), sent));
        }
        assert_eq!(got.len(), STREAMED, "one response per streamed request");
        got
    });

    let mut receipts = Vec::new();
    for t in tasks {
        receipts.extend(t.await.unwrap());
    }
    receipts.extend(streamed.await.unwrap());
    let total = (CLIENTS * PER_CLIENT + STREAMED) as u64;
    assert_eq!(receipts.len() as u64, total);

    let mut seqs: Vec<u64> = receipts.iter().map(|(s, _)| *s).collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (SETUP_ENTRIES..SETUP_ENTRIES + total).collect();
    assert_eq!(seqs, expected, "receipts cover exactly the seqs after the setup entries, each once");

    let mut c = d.client().await;
    assert_eq!(verify_ok(&mut c).await, SETUP_ENTRIES + total);
    assert_eq!(entries(&mut c).await, SETUP_ENTRIES + total);
    // Every receipt's hash is the hash of the bytes stored at its seq.
    assert_stored(&mut c, &receipts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_append_returns_original_receipt_and_writes_nothing() {
    let fx = Fixture::new();
    let d = Daemon::start(&fx);
    let mut c = d.client().await;
    let a = ci_req("dup-a");
    let first = c.append(a.clone()).await.unwrap().into_inner().receipt.unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.seq, SETUP_ENTRIES);
    let head = c.head(pb::HeadRequest {}).await.unwrap().into_inner();
    assert_eq!((head.entries, &head.head), (SETUP_ENTRIES + 1, &first.entry_hash));

    // Unary, again: the original receipt, flagged, and nothing written.
    let again = c.append(a.clone()).await.unwrap().into_inner().receipt.unwrap();
    assert_eq!(again, pb::Receipt { duplicate: true, ..first.clone() });
    // Over a stream, twice more.
    let resp: Vec<_> = c
        .append_stream(futures::stream::iter(vec![a.clone(), a.clone()]))
        .await
        .unwrap()
        .into_inner()
        .map(|r| stream_receipt(r.unwrap()))
        .collect()
        .await;
    assert_eq!(resp, vec![pb::Receipt { duplicate: true, ..first.clone() }; 2]);
    assert_eq!(c.head(pb::HeadRequest {}).await.unwrap().into_inner(), head, "duplicates wrote nothing");

    // A new record sent twice in one stream is written once; both answers name the same entry.
    let b = ci_req("dup-b");
    let resp: Vec<_> = c
        .append_stream(futures::stream::iter(vec![b.clone(), b.clone()]))
        .await
        .unwrap()
        .into_inner()
        .map(|r| stream_receipt(r.unwrap()))
        .collect()
        .await;
    assert_eq!(resp.len(), 2);
    assert_eq!((resp[0].seq, &resp[0].entry_hash), (resp[1].seq, &resp[1].entry_hash));
    assert_eq!(resp[0].seq, SETUP_ENTRIES + 1);
    let flags: BTreeSet<bool> = resp.iter().map(|r| r.duplicate).collect();
    assert_eq!(flags, BTreeSet::from([false, true]), "exactly one of the two is the original");
    assert_eq!(verify_ok(&mut c).await, SETUP_ENTRIES + 2);

    // After a restart, the record is still recognized as a duplicate.
    assert_eq!(d.term().code(), Some(0));
    let d = Daemon::start(&fx);
    let mut c = d.client().await;
    let again = c.append(a).await.unwrap().into_inner().receipt.unwrap();
    assert_eq!(again, pb::Receipt { duplicate: true, ..first });
    assert_eq!(entries(&mut c).await, SETUP_ENTRIES + 2);
}

/// Streams up to `records` appends and SIGKILLs the daemon once `kill_after` receipts have
/// arrived; returns every (seq, hash) acknowledged before the kill.
async fn stream_then_kill(d: Daemon, round: usize, records: usize, kill_after: usize) -> Vec<(u64, Vec<u8>)> {
    let mut c = d.client().await;
    let reqs = futures::stream::iter(0..records).map(move |i| ci_req(&format!("kill-{round}-{i}")));
    let mut responses = c.append_stream(reqs).await.unwrap().into_inner();
    let mut acked = Vec::with_capacity(kill_after);
    let mut i = 0;
    while let Some(resp) = responses.message().await.unwrap() {
        let r = stream_receipt(resp);
        assert!(!r.duplicate);
        assert_eq!(r.record_id, record_id_of(&ci_req(&format!("kill-{round}-{i}"))));
        acked.push((r.seq, r.entry_hash));
        i += 1;
        if acked.len() == kill_after {
            break;
        }
    }
    assert_eq!(acked.len(), kill_after, "the stream ended before the kill point");
    d.kill9();
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_append() {
    kill_9_rounds(Fixture::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_append_on_sled() {
    kill_9_rounds(Fixture::with_backend(ledger_store::store::Backend::Sled)).await;
}

/// Three rounds of: stream appends, `kill -9` the daemon mid-stream, restart, check.
async fn kill_9_rounds(fx: Fixture) {
    let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
    for (round, kill_after) in [(0, 300), (1, 2_000), (2, 3_500)] {
        let d = Daemon::start(&fx);
        let before = entries(&mut d.client().await).await;
        let got = stream_then_kill(d, round, 20_000, kill_after).await;
        assert_eq!(got.first().unwrap().0, before, "round {round}: the stream starts at the head");
        acked.extend(got);

        let d = Daemon::start(&fx);
        let mut c = d.client().await;
        // Everything stored verifies: no entry, index or head is half-written.
        let n = verify_ok(&mut c).await;
        let last_acked = acked.last().unwrap().0;
        assert!(n > last_acked, "round {round}: {n} entries but #{last_acked} was acknowledged");
        // Every acknowledged append is there, with the hash it was acknowledged with.
        let seen: BTreeSet<u64> = acked.iter().map(|(s, _)| *s).collect();
        assert_eq!(seen.len(), acked.len(), "no seq acknowledged twice");
        assert_stored(&mut c, &acked).await;
        // The ledger still appends after the crash, right after the last stored entry.
        let r = c.append(ci_req(&format!("after-kill-{round}"))).await.unwrap().into_inner().receipt.unwrap();
        assert_eq!((r.seq, r.duplicate), (n, false));
        drop(c);
        assert_eq!(d.term().code(), Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    const CLIENTS: usize = 4;
    let fx = Fixture::new();
    let d = Daemon::start(&fx);
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = d.client().await;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0.. {
                let r = ci_req(&format!("term-{c}-{i}"));
                match client.append(r.clone()).await {
                    Ok(resp) => {
                        got.push(fresh(resp.into_inner().receipt, &r));
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(s) => return (got, s),
                }
            }
            unreachable!()
        }));
    }
    while done.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.send_term();
    let status = tokio::task::spawn_blocking(move || d.wait_exit()).await.unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0");

    let mut receipts = Vec::new();
    for t in tasks {
        let (got, status) = tokio::time::timeout(Duration::from_secs(20), t).await.unwrap().unwrap();
        assert!(!got.is_empty());
        // The request that failed was refused or cut off by the shutdown, not by a rule.
        // (A request racing the server's GOAWAY surfaces in the client as an h2 error.)
        let cut_off = matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
            || (status.code() == Code::Internal && status.message().contains("h2 protocol error"));
        assert!(cut_off, "unexpected status after shutdown: {status:?}");
        receipts.extend(got);
    }
    assert!(receipts.len() >= 200);

    let d = Daemon::start(&fx);
    let mut c = d.client().await;
    let n = verify_ok(&mut c).await;
    assert_stored(&mut c, &receipts).await;
    assert_eq!(
        n,
        SETUP_ENTRIES + receipts.len() as u64,
        "every stored append was answered before exit (none written unanswered)"
    );
}

/// A codec that sends its bytes verbatim and decodes an `R` (`AppendResponse` for `Append`,
/// `AppendStreamResponse` for `AppendStream`).
pub(crate) struct RawCodec<R>(std::marker::PhantomData<R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        RawCodec(std::marker::PhantomData)
    }
}

/// Writes a `Vec<u8>` as the message.
pub(crate) struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Vec<u8>;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = <ProstCodec<pb::AppendRequest, R> as Codec>::Decoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<pb::AppendRequest, R>::default().decoder()
    }
}

/// Calls `Append` with raw request bytes.
pub(crate) async fn append_raw(channel: Channel, bytes: Vec<u8>) -> Result<pb::AppendResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/ledger.v1.Ledger/Append");
    grpc.unary(tonic::Request::new(bytes), path, RawCodec::default()).await.map(tonic::Response::into_inner)
}

/// Opens `AppendStream`, sends raw frames, and keeps the request side open (as a client waiting
/// for its answers would); returns the responses, then the status that ended the stream.
pub(crate) async fn append_stream_raw(
    channel: Channel,
    frames: Vec<Vec<u8>>,
) -> (Vec<pb::AppendStreamResponse>, Result<(), Status>) {
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/ledger.v1.Ledger/AppendStream");
    let outbound = futures::stream::iter(frames).chain(futures::stream::pending());
    let mut inbound = match grpc.streaming(tonic::Request::new(outbound), path, RawCodec::default()).await {
        Ok(r) => r.into_inner(),
        Err(s) => return (Vec::new(), Err(s)),
    };
    let mut got = Vec::new();
    loop {
        match inbound.message().await {
            Ok(Some(m)) => got.push(m),
            Ok(None) => return (got, Ok(())),
            Err(s) => return (got, Err(s)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_ends_append_stream_at_once_and_earlier_receipts_stand() {
    let fx = Fixture::new();
    let d = Daemon::start(&fx);
    let mut c = d.client().await;
    let n = entries(&mut c).await;
    let req = |label: &str| prost::Message::encode_to_vec(&ci_req(label));
    let hostile: Vec<(&str, Vec<u8>, Code)> = vec![
        ("field 1 claims 5 bytes, 1 follows", vec![0x0a, 0x05, 0x01], Code::InvalidArgument),
        ("wrong wire type for field 1", vec![0x0d, 1, 2, 3, 4], Code::InvalidArgument),
        ("a varint that never ends", vec![0x10; 11], Code::InvalidArgument),
        (
            "a length prefix of 2^62",
            vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f],
            Code::InvalidArgument,
        ),
        ("a frame over the size limit", vec![0u8; ledger_server::server::MAX_FRAME_BYTES + 1], Code::ResourceExhausted),
    ];
    let mut written = n;
    for (i, (what, bad, code)) in hostile.into_iter().enumerate() {
        let frames = vec![
            req(&format!("before-bad-{i}-a")),
            req(&format!("before-bad-{i}-b")),
            bad,
            req(&format!("after-bad-{i}")),
        ];
        let (got, end) = tokio::time::timeout(Duration::from_secs(5), append_stream_raw(d.channel().await, frames))
            .await
            .unwrap_or_else(|_| panic!("{what}: the stream was not ended within 5 s"));
        let s = end.expect_err(what);
        assert_eq!(s.code(), code, "{what}: {s:?}");
        assert!(got.len() <= 2, "{what}: nothing after the bad frame is answered: {got:?}");
        assert!(got.iter().all(|r| matches!(r.result, Some(pb::append_stream_response::Result::Receipt(_)))), "{what}");
        written += got.len() as u64;
        // Receipts already sent stand; the frame after the bad one was never appended.
        assert_eq!(verify_ok(&mut c).await, written, "{what}");
    }
    assert!(written >= n, "some receipts were issued before the bad frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_the_right_code_and_write_nothing() {
    let fx = Fixture::new();
    let d = Daemon::start(&fx);
    let mut c = d.client().await;
    let ci = key("ci");
    // One good append first, so the count is not just the setup.
    c.append(ci_req("refusals-ok")).await.unwrap();
    let n = SETUP_ENTRIES + 1;
    assert_eq!(entries(&mut c).await, n);

    let mut cases: Vec<(&str, pb::AppendRequest, Code)> = Vec::new();
    // Wrong signature.
    let mut bad_sig = ci_req("refusal-sig");
    bad_sig.record.as_mut().unwrap().signature[7] ^= 1;
    cases.push(("bad signature", bad_sig, Code::InvalidArgument));
    // A signer the ledger does not know.
    cases.push(("unknown key", req(&signed(&evidence("refusal-stranger"), &key("stranger"))), Code::Unauthenticated));
    // A kind the signer may not append.
    cases.push(("kind not allowed", req(&signed(&policy("release"), &ci)), Code::PermissionDenied));
    // A record over 64 KiB, signed properly (the library refuses to sign it, so by hand).
    let big = evidence_with_check("refusal-big", "x".repeat(70_000));
    assert!(ledger_core::entry::SignedRecord::sign(&big, &ci).is_err(), "the library refuses to sign it");
    let bytes = ledger_core::encoding::to_canonical(&big, "record").unwrap();
    assert!(bytes.len() > 64 * 1024);
    // Signs any bytes as a record, bypassing the library's checks.
    let signed_raw = |record: Vec<u8>| {
        let mut msg = ledger_core::domain::RECORD_SIGNATURE_PREFIX.to_vec();
        msg.extend_from_slice(&record);
        let signature = ci.sign(&msg).to_bytes().to_vec();
        let signer = ledger_core::entry::key_id(&ci.verifying_key()).0.to_vec();
        pb::AppendRequest { record: Some(pb::SignedRecord { record, signer, signature }), prove: false }
    };
    cases.push(("record too large", signed_raw(bytes), Code::ResourceExhausted));
    // A signer id of the wrong length.
    let mut short_signer = ci_req("refusal-signer");
    short_signer.record.as_mut().unwrap().signer.pop();
    cases.push(("31-byte signer", short_signer, Code::InvalidArgument));
    // No record at all.
    cases.push(("missing record", pb::AppendRequest { record: None, prove: false }, Code::InvalidArgument));
    // Record bytes that are not CBOR of a record, correctly signed.
    cases.push(("record bytes not CBOR", signed_raw(b"not a record".to_vec()), Code::InvalidArgument));

    for (what, r, code) in &cases {
        let s = c.append(r.clone()).await.expect_err(what);
        assert_eq!(s.code(), *code, "{what}: {s:?}");
        assert_eq!(entries(&mut c).await, n, "{what}: nothing written");
    }

    // Malformed protobuf: field 1 claims 5 bytes, 1 follows.
    let s = append_raw(d.channel().await, vec![0x0a, 0x05, 0x01]).await.expect_err("malformed protobuf");
    assert!(matches!(s.code(), Code::InvalidArgument | Code::Internal), "malformed protobuf: {s:?}");
    assert_eq!(entries(&mut c).await, n, "malformed protobuf: nothing written");
    // The raw path itself works: valid bytes append.
    let ok = ci_req("refusals-raw-ok");
    let resp = append_raw(d.channel().await, prost::Message::encode_to_vec(&ok)).await.unwrap();
    assert_eq!(fresh(resp.receipt, &ok).0, n);
    let n = n + 1;

    // Over a stream, each refusal is answered in band with the same code, and the stream goes on.
    let mut reqs = vec![ci_req("stream-before")];
    reqs.extend(cases.iter().map(|(_, r, _)| r.clone()));
    reqs.push(ci_req("stream-after"));
    let resp: Vec<pb::AppendStreamResponse> = c
        .append_stream(futures::stream::iter(reqs.clone()))
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(resp.len(), reqs.len());
    for (i, (what, _, code)) in cases.iter().enumerate() {
        match &resp[i + 1].result {
            Some(pb::append_stream_response::Result::Error(e)) => {
                assert_eq!(e.code, *code as i32, "stream, {what}: {e:?}");
                assert!(!e.message.is_empty());
            }
            other => panic!("stream, {what}: expected an error, got {other:?}"),
        }
    }
    let first = fresh(Some(stream_receipt(resp[0].clone())), &reqs[0]);
    let last = fresh(Some(stream_receipt(resp[resp.len() - 1].clone())), &reqs[reqs.len() - 1]);
    assert_eq!((first.0, last.0), (n, n + 1));
    assert_eq!(verify_ok(&mut c).await, n + 2, "only the two good streamed records were written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let fx = Fixture::new();
    let d = Daemon::start(&fx);
    let mut health = HealthClient::new(d.channel().await);
    let r = health.check(HealthCheckRequest { service: "ledger.v1.Ledger".into() }).await.unwrap().into_inner();
    assert_eq!(r.status(), ServingStatus::Serving);
    let s = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(d.channel().await);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(futures::stream::iter(vec![list])).await.unwrap().into_inner();
    let resp = responses.message().await.unwrap().expect("a reflection response");
    let names: BTreeSet<String> = match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
        other => panic!("expected a service list, got {other:?}"),
    };
    assert!(names.contains("ledger.v1.Ledger"), "{names:?}");
    assert!(names.contains("grpc.health.v1.Health"), "{names:?}");

    // The symbol resolves to a file descriptor.
    let sym = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("ledger.v1.Ledger".into())),
    };
    let mut responses = reflection.server_reflection_info(futures::stream::iter(vec![sym])).await.unwrap().into_inner();
    match responses.message().await.unwrap().and_then(|r| r.message_response) {
        Some(MessageResponse::FileDescriptorResponse(f)) => assert!(!f.file_descriptor_proto.is_empty()),
        other => panic!("expected a file descriptor, got {other:?}"),
    }

    // The same through `grpc.reflection.v1alpha`, which older clients speak.
    {
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        let mut alpha = ServerReflectionClient::new(d.channel().await);
        let list = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = alpha.server_reflection_info(futures::stream::iter(vec![list])).await.unwrap().into_inner();
        let names: BTreeSet<String> = match responses.message().await.unwrap().and_then(|r| r.message_response) {
            Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
            other => panic!("v1alpha: expected a service list, got {other:?}"),
        };
        assert!(names.contains("ledger.v1.Ledger"), "v1alpha: {names:?}");
        let sym = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("ledger.v1.Ledger".into())),
        };
        let mut responses = alpha.server_reflection_info(futures::stream::iter(vec![sym])).await.unwrap().into_inner();
        match responses.message().await.unwrap().and_then(|r| r.message_response) {
            Some(MessageResponse::FileDescriptorResponse(f)) => assert!(!f.file_descriptor_proto.is_empty()),
            other => panic!("v1alpha: expected a file descriptor, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_token_guards_reads_not_appends() {
    let fx = Fixture::new();
    let token_file = fx.root().join("read-token");
    std::fs::write(&token_file, "s3cret-read-token\n").unwrap();
    let d = Daemon::start_with(&fx, &["--read-token-file", token_file.to_str().unwrap()]);
    let mut c = d.client().await;
    let with = |value: &str, mut r: tonic::Request<pb::HeadRequest>| {
        r.metadata_mut().insert("authorization", value.parse().unwrap());
        r
    };

    let s = c.head(pb::HeadRequest {}).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    for wrong in ["Bearer wrong", "Bearer s3cret-read-toke", "s3cret-read-token", "Bearer s3cret-read-token\n"] {
        let Ok(v) = wrong.parse::<tonic::metadata::MetadataValue<_>>() else { continue };
        let mut r = tonic::Request::new(pb::HeadRequest {});
        r.metadata_mut().insert("authorization", v);
        let s = c.head(r).await.unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated, "{wrong:?}: {s:?}");
    }
    let s = c.verify(pb::VerifyRequest {}).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let s = c.get_entry(pb::GetEntryRequest { by: Some(pb::get_entry_request::By::Seq(0)) }).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let s = c.query(pb::QueryRequest::default()).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let s = c.list_keys(pb::ListKeysRequest {}).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let s = c
        .why(pb::WhyRequest { subject: "git:o/r@".to_string() + &"a".repeat(40), trusted_builders: vec![] })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);

    let head = c.head(with("Bearer s3cret-read-token", tonic::Request::new(pb::HeadRequest {}))).await.unwrap();
    assert_eq!(head.into_inner().entries, SETUP_ENTRIES);

    // Appends need no token: their signatures authenticate them.
    let r = ci_req("token-append");
    let receipt = c.append(r.clone()).await.unwrap().into_inner().receipt;
    assert_eq!(fresh(receipt, &r).0, SETUP_ENTRIES);
    let head = c.head(with("Bearer s3cret-read-token", tonic::Request::new(pb::HeadRequest {}))).await.unwrap();
    assert_eq!(head.into_inner().entries, SETUP_ENTRIES + 1);

    // Health stays open for probes.
    let mut health = tonic_health::pb::health_client::HealthClient::new(d.channel().await);
    let h = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await;
    assert!(h.is_ok(), "{h:?}");
}

/// Sequential reads on one connection should take about a millisecond each. Fails today:
/// `ledgerd` serves its accepted sockets without `TCP_NODELAY`, so each `GetEntry` answer
/// waits ~40 ms for the client's delayed ACK (Nagle). Fix in `server::serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn sequential_get_entry_calls_are_not_delayed() {
    let fx = Fixture::new();
    let d = Daemon::start(&fx);
    let mut c = d.client().await;
    let started = std::time::Instant::now();
    for i in 0..50 {
        let by = Some(pb::get_entry_request::By::Seq(i % SETUP_ENTRIES));
        c.get_entry(pb::GetEntryRequest { by }).await.unwrap();
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "50 sequential GetEntry calls took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_with_prove_returns_a_tlog_proof_and_needs_a_checkpoint_key() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ledger_core::{merkle, note};
    use std::os::unix::fs::PermissionsExt;
    // Without a checkpoint key, asking for a proof is refused before anything is written.
    let fx = Fixture::new();
    {
        let d = Daemon::start(&fx);
        let mut c = d.client().await;
        let mut r = ci_req("prove-refused");
        r.prove = true;
        assert_eq!(c.append(r).await.unwrap_err().code(), Code::FailedPrecondition);
        assert_eq!(entries(&mut c).await, SETUP_ENTRIES, "nothing written");
    }
    // A key that does not sign this ledger's checkpoints is refused at start: the fixture
    // registers no log key, so that is any key but the admin key.
    let write_key = |name: &str, k: &ed25519_dalek::SigningKey| {
        let path = fx.root().join(name);
        std::fs::write(&path, k.to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let stranger = write_key("stranger.key", &key("checkpoints"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerd"))
        .args(["--db", fx.db().to_str().unwrap(), "--listen", "127.0.0.1:0", "--checkpoint-key"])
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not sign this ledger's checkpoints"), "{err}");
    // With the checkpoint key (a test key from a fixed seed), unary and streamed receipts
    // carry a tlog-proof that verifies with the log key for the stored entry's bytes.
    let cp_key = key("admin");
    let path = write_key("checkpoint.key", &cp_key);
    let d = Daemon::start_with(&fx, &["--checkpoint-key", path.to_str().unwrap(), "--origin", "ledger.example/test"]);
    let mut c = d.client().await;
    let vkey = note::verifier_key("ledger.example/test", &cp_key.verifying_key()).unwrap();
    let (name, vk) = note::parse_verifier_key(&vkey).unwrap();
    let mut r = ci_req("prove-unary");
    r.prove = true;
    let mut reqs = vec![r];
    for i in 0..3 {
        let mut r = ci_req(&format!("prove-stream-{i}"));
        r.prove = true;
        reqs.push(r);
    }
    let mut receipts = vec![c.append(reqs[0].clone()).await.unwrap().into_inner().receipt.unwrap()];
    let mut stream = c.append_stream(futures::stream::iter(reqs[1..].to_vec())).await.unwrap().into_inner();
    while let Some(m) = stream.next().await {
        match m.unwrap().result.unwrap() {
            pb::append_stream_response::Result::Receipt(rc) => receipts.push(rc),
            pb::append_stream_response::Result::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(receipts.len(), 4);
    for rc in &receipts {
        let by = Some(pb::get_entry_request::By::Seq(rc.seq));
        let entry = c.get_entry(pb::GetEntryRequest { by }).await.unwrap().into_inner();
        let leaf = merkle::leaf_hash(&entry.entry);
        let (index, cp) = note::open_tlog_proof(&rc.tlog_proof, &leaf, &name, &vk).unwrap();
        assert_eq!(index, rc.seq);
        assert!(cp.size > rc.seq);
    }
    // A receipt without `prove` carries no proof.
    let plain = c.append(ci_req("no-proof")).await.unwrap().into_inner().receipt.unwrap();
    assert!(plain.tlog_proof.is_empty());
}

/// A real write error in the storage path: `ledgerd` runs under a file-size limit (`ulimit -f`,
/// SIGXFSZ ignored), so once the journal reaches it the kernel refuses the write with EFBIG.
/// Every append from then on fails with UNAVAILABLE and none is acknowledged, until a restart
/// without the limit: the ledger then opens, verifies, and holds exactly the acknowledged
/// appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_makes_every_later_append_unavailable_until_restart() {
    for backend in [ledger_store::store::Backend::Fjall, ledger_store::store::Backend::Sled] {
        let fx = Fixture::with_backend(backend);
        let log = fx.root().join("limited.log");
        let mut child = std::process::Command::new("bash")
            .args(["-c", r#"trap "" XFSZ; ulimit -f 2048; exec "$0" "$@""#])
            .arg(env!("CARGO_BIN_EXE_ledgerd"))
            .arg("--db")
            .arg(fx.db())
            .args(["--listen", "127.0.0.1:0", "--log-filter", "warn"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let addr =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{backend:?}: {line}")).to_string();
        let mut c = ledger_proto::v1::ledger_client::LedgerClient::new(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap(),
        );
        let mut acked = Vec::new();
        let mut failed_at = None;
        let mut after = Vec::new();
        for i in 0..20_000 {
            let r = ci_req(&format!("limited-{backend:?}-{i}"));
            match (c.append(r.clone()).await, failed_at) {
                (Ok(resp), None) => acked.push(fresh(resp.into_inner().receipt, &r)),
                (Ok(resp), Some(_)) => panic!("{backend:?}: append {i} acknowledged after a failed write: {resp:?}"),
                (Err(s), None) => {
                    assert_eq!(s.code(), Code::Unavailable, "{backend:?}: the failed write: {s:?}");
                    failed_at = Some(i);
                }
                (Err(s), Some(_)) => {
                    after.push(s.code());
                    if after.len() == 50 {
                        break;
                    }
                }
            }
        }
        let failed_at = failed_at.unwrap_or_else(|| panic!("{backend:?}: the file-size limit was never reached"));
        assert!(after.iter().all(|c| *c == Code::Unavailable), "{backend:?}: later appends: {after:?}");
        assert_eq!(after.len(), 50, "{backend:?}");
        // Reads still answer, and say nothing new was written.
        assert_eq!(entries(&mut c).await, SETUP_ENTRIES + acked.len() as u64, "{backend:?}");
        drop(c);
        let _ = child.kill();
        let _ = child.wait();
        assert!(!std::fs::read_to_string(&log).unwrap().contains("panicked"), "{backend:?}: ledgerd panicked");

        // Restarted without the limit: every acknowledged append is there, nothing else.
        let d = Daemon::start(&fx);
        let mut c = d.client().await;
        assert_eq!(verify_ok(&mut c).await, SETUP_ENTRIES + acked.len() as u64, "{backend:?} after restart");
        assert_stored(&mut c, &acked).await;
        assert!(failed_at > 10, "{backend:?}: the limit leaves room for some appends ({failed_at})");
    }
}
