//! Hostile clients against a live `ledgerd`: ≥ 10,000 hostile gRPC requests (truncated
//! frames, wrong wire types, huge length prefixes, deep nesting, compression bombs, bad
//! signatures, replays, unknown and revoked keys, oversized fields and frames) and ≥ 10,000
//! hostile webhook deliveries (bad or missing HMAC and tokens, wrong content types, truncated
//! and deeply nested JSON, 10 MiB bodies, slowloris trickles of headers and of bodies).
//! Afterwards: the process is alive, nothing was written, the checkpoint is the one from
//! before, every request got its documented answer within 1 s (a trickle: cut off within the
//! receiver's header or delivery timeout, while every other request is answered within 1 s),
//! and the server's resident memory grew by less than 50 MiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::Signer;
use futures::StreamExt;
use ledger_core::record::{KeyAction, Kind};
use ledger_proto::v1 as pb;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::testkit::{key_rec, open_store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::daemon::{append_raw, append_stream_raw};
use crate::support::*;

/// The answer a hostile request must get within this long.
const PROMPT: Duration = Duration::from_secs(1);
const SECRET: &str = "hostile-test-webhook-secret-not-real";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Signs any bytes as a record with `k`, bypassing the library's checks.
fn signed_raw(record: Vec<u8>, k: &ed25519_dalek::SigningKey) -> pb::AppendRequest {
    let mut msg = ledger_core::domain::RECORD_SIGNATURE_PREFIX.to_vec();
    msg.extend_from_slice(&record);
    pb::AppendRequest {
        record: Some(pb::SignedRecord {
            signature: k.sign(&msg).to_bytes().to_vec(),
            signer: ledger_core::entry::key_id(&k.verifying_key()).0.to_vec(),
            record,
        }),
        prove: false,
    }
}

/// The hostile gRPC request bodies (raw `AppendRequest` bytes), each with the code it must get.
fn hostile_grpc(rng: &mut Rng, replay: &pb::AppendRequest) -> Vec<(&'static str, Vec<u8>, Code)> {
    let enc = |r: &pb::AppendRequest| prost::Message::encode_to_vec(r);
    let mut out: Vec<(&'static str, Vec<u8>, Code)> = Vec::new();
    let valid = |i: usize| ci_req(&format!("hostile-never-sent-{i}"));
    for i in 0..2_000 {
        // A valid request cut short inside its record.
        let full = enc(&valid(i));
        let cut = 3 + rng.below(full.len() - 40);
        out.push(("truncated", full[..cut].to_vec(), Code::InvalidArgument));
    }
    for i in 0..1_500 {
        // Field 1 (the record, a message) sent with another wire type; or a valid request's
        // first tag byte rewritten.
        let mut b = enc(&valid(i));
        let wire = [0u8, 1, 5][i % 3];
        b[0] = (1 << 3) | wire;
        out.push(("wrong wire type", b, Code::InvalidArgument));
    }
    for _ in 0..1_500 {
        // A length prefix far beyond the frame (up to 2^63).
        let mut b = vec![0x0a];
        b.extend(varint((1u64 << (20 + rng.below(43))) | rng.next() >> 40));
        b.extend([1, 2, 3]);
        out.push(("huge length prefix", b, Code::InvalidArgument));
    }
    for i in 0..500 {
        // Unknown groups nested far past the decoder's recursion limit.
        let depth = 120 + i % 400;
        let mut b = Vec::new();
        for _ in 0..depth {
            b.extend(varint((15 << 3) | 3));
        }
        for _ in 0..depth {
            b.extend(varint((15 << 3) | 4));
        }
        out.push(("deep nesting", b, Code::InvalidArgument));
    }
    for i in 0..1_500 {
        // A bad signature: one bit of a valid request's signature flipped.
        let mut r = valid(i);
        let s = &mut r.record.as_mut().unwrap().signature;
        let at = rng.below(s.len());
        s[at] ^= 1 << rng.below(8);
        out.push(("bad signature", enc(&r), Code::InvalidArgument));
    }
    for i in 0..1_000 {
        let record = ledger_core::encoding::to_canonical(&evidence(&format!("hostile-unknown-{i}")), "record").unwrap();
        out.push((
            "unknown key",
            enc(&signed_raw(record, &key(&format!("stranger-{}", i % 7)))),
            Code::Unauthenticated,
        ));
    }
    for i in 0..1_000 {
        let record = ledger_core::encoding::to_canonical(&evidence(&format!("hostile-revoked-{i}")), "record").unwrap();
        out.push(("revoked key", enc(&signed_raw(record, &key("revoked"))), Code::Unauthenticated));
    }
    for _ in 0..500 {
        // A correctly signed record over the 64 KiB record limit.
        let big = evidence_with_check(&format!("hostile-big-{}", rng.next()), "x".repeat(65 * 1024 + rng.below(4096)));
        let record = ledger_core::encoding::to_canonical(&big, "record").unwrap();
        out.push(("oversized field", enc(&signed_raw(record, &key("ci"))), Code::ResourceExhausted));
    }
    for _ in 0..20 {
        out.push((
            "oversized frame",
            vec![0u8; ledger_server::server::MAX_FRAME_BYTES + 1 + rng.below(1 << 20)],
            Code::ResourceExhausted,
        ));
    }
    for _ in 0..500 {
        // A replay of an appended record: answered with the original receipt, nothing written.
        out.push(("replay", enc(replay), Code::Ok));
    }
    out
}

/// One raw HTTP/1.1 exchange on a fresh connection; returns the status code (0: closed
/// without an answer) and how long it took.
async fn http(addr: std::net::SocketAddr, head: String, body: &[u8]) -> (u16, Duration) {
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    let code = String::from_utf8_lossy(&buf).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, start.elapsed())
}

fn head(path: &str, headers: &[(&str, String)], len: usize) -> String {
    let mut h = format!("POST {path} HTTP/1.1\r\nHost: ledger.test\r\nConnection: close\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

fn hmac_hex(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A hostile delivery: what it is, its path, headers and body, and the status it must get.
type Delivery = (&'static str, &'static str, Vec<(&'static str, String)>, Vec<u8>, u16);

/// The hostile deliveries.
fn hostile_webhooks(rng: &mut Rng) -> Vec<Delivery> {
    let json =
        br#"{"action":"opened","number":1,"pull_request":{"number":1,"title":"t"},"repository":{"full_name":"o/r"}}"#;
    let mut out = Vec::new();
    let event = || ("X-GitHub-Event", "pull_request".to_string());
    let ct = || ("Content-Type", "application/json".to_string());
    for i in 0..2_500 {
        // A signature for other bytes, a malformed one, or none.
        let sig = match i % 3 {
            0 => Some(format!("sha256={}", hmac_hex(format!("other-{i}").as_bytes()))),
            1 => Some(format!("sha256={:064x}", rng.next())),
            _ => None,
        };
        let mut h = vec![event(), ct()];
        if let Some(s) = sig {
            h.push(("X-Hub-Signature-256", s));
        }
        out.push(("bad or missing HMAC", "/webhooks/github", h, json.to_vec(), 401));
    }
    for i in 0..1_500 {
        let mut h = vec![ct()];
        if i % 2 == 0 {
            h.push(("X-Gitlab-Token", format!("wrong-{i}")));
        }
        h.push(("X-Gitlab-Event", "Merge Request Hook".into()));
        out.push(("bad or missing GitLab token", "/webhooks/gitlab", h, json.to_vec(), 401));
    }
    for i in 0..1_000 {
        let h = vec![
            ("Content-Type", "application/json".to_string()),
            ("X-PagerDuty-Signature", format!("v1={:064x}", rng.next() ^ i)),
        ];
        out.push(("bad PagerDuty signature", "/webhooks/pagerduty", h, json.to_vec(), 401));
    }
    for i in 0..1_500 {
        // Correctly signed, but not JSON as declared: another content type, or cut short.
        let body: Vec<u8> =
            if i % 2 == 0 { b"<xml>not json</xml>".to_vec() } else { json[..1 + rng.below(json.len() - 2)].to_vec() };
        let ctype = ["text/plain", "application/xml", "application/x-www-form-urlencoded", "application/json"][i % 4];
        let h = vec![
            event(),
            ("Content-Type", ctype.to_string()),
            ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(&body))),
        ];
        out.push(("wrong content or truncated JSON", "/webhooks/github", h, body, 400));
    }
    for i in 0..1_500 {
        // Correctly signed JSON nested far deeper than any payload.
        let depth = 200 + i % 5_000;
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
        let h = vec![event(), ct(), ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(&body)))];
        out.push(("deep nesting", "/webhooks/github", h, body, 400));
    }
    for i in 0..1_000 {
        // Unknown routes and a delivery to a receiver that is not configured.
        let path = ["/webhooks/unknown", "/webhooks/opsgenie", "/"][i % 3];
        out.push(("unknown route", path, vec![ct()], json.to_vec(), 404));
    }
    for _ in 0..1_000 {
        let h = vec![ct(), ("X-Hub-Signature-256", "sha256=00".to_string())];
        out.push(("no event header", "/webhooks/github", h, json.to_vec(), 401));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_promptly_and_change_nothing() {
    let fx = Fixture::new();
    {
        let l = Ledger::open(open_store(&fx.db()), Arc::new(SystemClock)).unwrap();
        let admin = key("admin");
        let all: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| *k != Kind::Key).collect();
        l.append(&[signed(&key_rec(KeyAction::Register, "ingest", &key("ingest"), all), &admin)]).unwrap();
        l.append(&[signed(&key_rec(KeyAction::Register, "revoked", &key("revoked"), vec![Kind::Evidence]), &admin)])
            .unwrap();
        l.append(&[signed(&key_rec(KeyAction::Revoke, "revoked", &key("revoked"), vec![]), &admin)]).unwrap();
    }
    let write = |name: &str, bytes: &[u8]| {
        use std::os::unix::fs::PermissionsExt;
        let p = fx.root().join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.to_str().unwrap().to_string()
    };
    let ingest = write("ingest.key", key("ingest").to_pkcs8_pem(Default::default()).unwrap().as_bytes());
    let cp = write("checkpoint.key", key("admin").to_pkcs8_pem(Default::default()).unwrap().as_bytes());
    let secret = write("webhook.secret", SECRET.as_bytes());
    let d = Daemon::start_with(
        &fx,
        &[
            "--checkpoint-key",
            &cp,
            "--origin",
            "ledger.example/hostile",
            "--webhook-listen",
            "127.0.0.1:0",
            "--ingest-key",
            &ingest,
            "--github-secret-file",
            &secret,
            "--gitlab-token-file",
            &secret,
            "--pagerduty-secret-file",
            &secret,
        ],
    );
    let hooks = d.hooks.expect("the webhook receiver's address");
    let mut c = d.client().await;
    // One record appended before, so that replays have something to replay.
    let replay = ci_req("hostile-replayed");
    c.append(replay.clone()).await.unwrap();
    let before_entries = entries(&mut c).await;
    let checkpoint = c.get_checkpoint(pb::GetCheckpointRequest {}).await.unwrap().into_inner().signed_note;
    let rss_before = rss_kib(d.pid());

    let mut rng = Rng(0x4057_11e0);
    let grpc = hostile_grpc(&mut rng, &replay);
    let hooks_cases = hostile_webhooks(&mut rng);
    assert!(grpc.len() >= 10_000 && hooks_cases.len() >= 10_000);

    // Slowloris: 32 deliveries whose bodies trickle in a byte every 200 ms, open while the
    // rest runs. Each is cut off by the receiver's timeout with 408 (or its connection closed).
    let trickles: Vec<_> = (0..32)
        .map(|_| {
            tokio::spawn(async move {
                let start = Instant::now();
                let mut s = tokio::net::TcpStream::connect(hooks).await.unwrap();
                let h = head("/webhooks/github", &[("X-GitHub-Event", "push".into())], 1 << 20);
                s.write_all(h.as_bytes()).await.unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    tokio::select! {
                        n = s.read(&mut buf) => {
                            let n = n.unwrap_or(0);
                            let code = String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0u16);
                            return (code, start.elapsed());
                        }
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if s.write_all(b"{").await.is_err() {
                                return (0, start.elapsed());
                            }
                        }
                    }
                }
            })
        })
        .collect();

    // Header trickles: a request line, then a header byte every 200 ms. The connection is
    // closed once the headers have taken the receiver's header timeout.
    let header_trickles: Vec<_> = (0..32)
        .map(|_| {
            tokio::spawn(async move {
                let start = Instant::now();
                let mut s = tokio::net::TcpStream::connect(hooks).await.unwrap();
                s.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: ledger.test\r\n").await.unwrap();
                let mut buf = [0u8; 256];
                loop {
                    tokio::select! {
                        n = s.read(&mut buf) => return (n.unwrap_or(0), start.elapsed()),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if s.write_all(b"X").await.is_err() {
                                return (0, start.elapsed());
                            }
                        }
                    }
                }
            })
        })
        .collect();

    // gRPC: each request on its own call, several in flight at once.
    let channel = d.channel().await;
    let grpc_results: Vec<(&str, Code, Code, Duration)> = futures::stream::iter(grpc)
        .map(|(what, bytes, want)| {
            let channel = channel.clone();
            async move {
                let start = Instant::now();
                let got = match append_raw(channel, bytes).await {
                    Ok(_) => Code::Ok,
                    Err(s) => s.code(),
                };
                (what, want, got, start.elapsed())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (what, want, got, took) in &grpc_results {
        assert_eq!(got, want, "gRPC {what}");
        assert!(*took < PROMPT, "gRPC {what} took {took:?}");
    }
    // A compression bomb: a gzip-compressed request (a 64 MiB run of zeros, 64 KiB on the
    // wire) is refused before anything is inflated.
    for _ in 0..10 {
        let mut grpc = tonic::client::Grpc::new(d.channel().await)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_encoding_message_size(128 << 20);
        grpc.ready().await.unwrap();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/ledger.v1.Ledger/Append");
        let start = Instant::now();
        let r = grpc
            .unary(
                tonic::Request::new(vec![0u8; 64 << 20]),
                path,
                crate::daemon::RawCodec::<pb::AppendResponse>::default(),
            )
            .await;
        let code = r.map(|_| Code::Ok).unwrap_or_else(|s| s.code());
        assert_eq!(code, Code::Unimplemented, "compression bomb");
        assert!(start.elapsed() < Duration::from_secs(5), "compression bomb took {:?}", start.elapsed());
    }
    // Hostile frames on streams: each ends its stream with the code, receipts before it stand.
    for (what, bad, want) in [
        ("truncated", vec![0x0a, 0x7f, 1], Code::InvalidArgument),
        ("oversized frame", vec![0u8; ledger_server::server::MAX_FRAME_BYTES + 1], Code::ResourceExhausted),
    ] {
        let (got, end) = tokio::time::timeout(PROMPT * 5, append_stream_raw(d.channel().await, vec![bad]))
            .await
            .unwrap_or_else(|_| panic!("stream {what} was not ended"));
        assert!(got.is_empty());
        assert_eq!(end.unwrap_err().code(), want, "stream {what}");
    }

    // Webhooks: each delivery on its own connection.
    let hook_results: Vec<(&str, u16, u16, Duration)> = futures::stream::iter(hooks_cases)
        .map(|(what, path, headers, body, want)| async move {
            let (got, took) = http(hooks, head(path, &headers, body.len()), &body).await;
            (what, want, got, took)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (what, want, got, took) in &hook_results {
        assert_eq!(got, want, "webhook {what}");
        assert!(*took < PROMPT, "webhook {what} took {took:?}");
    }
    // Ten 10 MiB bodies, correctly signed: over the receiver's limit (413) or refused
    // unread; never buffered whole.
    for _ in 0..10 {
        let body = vec![b' '; 10 << 20];
        let h = vec![
            ("X-GitHub-Event", "push".to_string()),
            ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(&body))),
        ];
        let (got, took) = http(hooks, head("/webhooks/github", &h, body.len()), &body).await;
        assert!(got == 413 || got == 400, "10 MiB body: {got}");
        assert!(took < PROMPT * 3, "10 MiB body took {took:?}");
    }
    for t in trickles {
        let (code, took) = t.await.unwrap();
        assert!(code == 408 || code == 0, "a trickled delivery got {code}");
        let limit = ledger_server::webhook::WEBHOOK_TIMEOUT + PROMPT;
        assert!(took < limit, "a trickled delivery was held {took:?}");
    }

    for t in header_trickles {
        let (_, took) = t.await.unwrap();
        let limit = ledger_server::webhook::HEADER_TIMEOUT + PROMPT;
        assert!(took < limit, "a header trickle was held {took:?}");
    }

    // Alive, unchanged, and not bloated.
    let rss_after = rss_kib(d.pid());
    assert_eq!(entries(&mut c).await, before_entries, "nothing was written");
    let now = c.get_checkpoint(pb::GetCheckpointRequest {}).await.unwrap().into_inner().signed_note;
    assert_eq!(checkpoint.lines().nth(1), now.lines().nth(1), "the checkpoint's tree size is unchanged");
    assert_eq!(checkpoint.lines().nth(2), now.lines().nth(2), "the checkpoint's root is unchanged");
    assert!(
        rss_after.saturating_sub(rss_before) < 50 * 1024,
        "server RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let log = d.log_text();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    let slowest = |v: &mut dyn Iterator<Item = Duration>| v.max().unwrap_or_default();
    eprintln!(
        "hostile: {} gRPC requests (slowest {:?}), {} webhook deliveries (slowest {:?}); RSS {} → {} KiB",
        grpc_results.len(),
        slowest(&mut grpc_results.iter().map(|r| r.3)),
        hook_results.len(),
        slowest(&mut hook_results.iter().map(|r| r.3)),
        rss_before,
        rss_after
    );
}
