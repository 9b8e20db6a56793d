//! The webhook receiver: HTTP endpoints that authenticate deliveries from GitHub
//! (`X-Hub-Signature-256`, HMAC-SHA256 of the body) and PagerDuty (`X-PagerDuty-Signature`,
//! `v1=` HMAC-SHA256), map them with the same code as `ledger ingest`, sign the records with the
//! server's ingest key and append them through the same verify → sequencer path as gRPC.
//!
//! | route | authenticates with | answers |
//! |---|---|---|
//! | `POST /webhooks/github` | `X-Hub-Signature-256: sha256=<hex>` | 200 receipts, 202 skipped |
//! | `POST /webhooks/gitlab` | `X-Gitlab-Token: <token>` (GitLab sends the secret token itself) | 200 receipts, 202 skipped |
//! | `POST /webhooks/pagerduty` | `X-PagerDuty-Signature: v1=<hex>[,v1=…]` | 200 receipts, 202 skipped |
//!
//! Unsigned or badly signed deliveries get 401 and change nothing; bodies over
//! [`MAX_WEBHOOK_BYTES`] get 413; a route whose secret is not configured answers 404.
//! Signatures are compared in constant time (`hmac`'s `verify_slice`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use ledger_core::entry::SignedRecord;
use ledger_core::record::{Channel, Record};
use ledger_ingest::Mapped;
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::status;
use ledger_store::ledger::Ledger;
use ledger_store::sequencer::SequencerHandle;
use ledger_store::store::Store;

/// Largest delivery body accepted: the ingest payload cap (GitHub caps payloads at 25 MB).
pub const MAX_WEBHOOK_BYTES: usize = ledger_ingest::MAX_PAYLOAD_BYTES;

/// How long one delivery may take, from its headers to the answer: a sender that trickles its
/// body (slowloris) is answered 408 and its connection closed instead of holding a task and a
/// buffer for as long as it likes. Appending the delivery's records is well inside it.
pub const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Secrets and the signing key of the receiver.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The key that signs records made from deliveries; it must be registered in the ledger
    /// for the kinds the deliveries produce.
    pub ingest_key: SigningKey,
    /// GitHub webhook secret.
    pub github_secret: Option<Vec<u8>>,
    /// GitLab webhook secret token.
    pub gitlab_token: Option<Vec<u8>>,
    /// PagerDuty v3 webhook signing secret.
    pub pagerduty_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material or secrets.
        f.debug_struct("WebhookConfig")
            .field("github", &self.github_secret.is_some())
            .field("gitlab", &self.gitlab_token.is_some())
            .field("pagerduty", &self.pagerduty_secret.is_some())
            .finish_non_exhaustive()
    }
}

struct AppState<S: Store> {
    ledger: Arc<Ledger<S>>,
    sequencer: SequencerHandle,
    config: WebhookConfig,
}

/// How long a delivery's request line and headers may take to arrive: a sender trickling its
/// headers (slowloris) has its connection closed instead of holding it for as long as it likes.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `app` on `listener` until `stop` completes, then lets each open connection finish
/// its request (HTTP/1.1, one task per connection). hyper directly rather than `axum::serve`,
/// which sets no header read timeout: [`HEADER_TIMEOUT`] applies to every request's headers,
/// [`WEBHOOK_TIMEOUT`] (the router's) to the rest.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, stop: impl std::future::Future<Output = ()>) {
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: pause, then go on accepting.
                    tracing::warn!(error = %e, "webhook receiver: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections as we go.
        while connections.try_join_next().is_some() {}
    }
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// The receiver's routes.
pub fn router<S: Store + 'static>(ledger: Arc<Ledger<S>>, sequencer: SequencerHandle, config: WebhookConfig) -> Router {
    let state = Arc::new(AppState { ledger, sequencer, config });
    Router::new()
        .route("/webhooks/github", post(github::<S>))
        .route("/webhooks/gitlab", post(gitlab::<S>))
        .route("/webhooks/pagerduty", post(pagerduty::<S>))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(|_: tower::BoxError| async {
                    error(StatusCode::REQUEST_TIMEOUT, "the delivery did not arrive and finish within 10 s")
                }))
                .timeout(WEBHOOK_TIMEOUT),
        )
        .with_state(state)
}

/// A reply's JSON body: the receipts, why nothing was recorded, or what went wrong.
#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    /// 200: one receipt per record.
    Records { records: Vec<Recorded> },
    /// 202: the delivery maps to nothing.
    Skipped { skipped: String },
    /// 4xx/5xx.
    Error { error: String },
}

/// One record appended (or found) for a delivery.
#[derive(Serialize)]
struct Recorded {
    duplicate: bool,
    entry: String,
    kind: &'static str,
    seq: u64,
}

fn reply(code: StatusCode, body: Reply) -> Response {
    (code, Json(body)).into_response()
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    reply(code, Reply::Error { error: message.into() })
}

fn hmac_ok(secret: &[u8], body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn append_mapped<S: Store + 'static>(st: &AppState<S>, mapped: Mapped) -> Response {
    let records: Vec<Record> = match mapped {
        Mapped::Skipped(why) => return reply(StatusCode::ACCEPTED, Reply::Skipped { skipped: why }),
        Mapped::Records(r) => r,
    };
    let mut receipts = vec![];
    for r in &records {
        let signed = match SignedRecord::sign(r, &st.config.ingest_key) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let verified = match st.ledger.verify_signature(&signed) {
            Ok(v) => v,
            Err(e) => return error_reply(&e),
        };
        match st.sequencer.append(verified).await {
            Ok(rc) => receipts.push(Recorded {
                duplicate: rc.duplicate,
                entry: rc.hash.to_hex(),
                kind: r.kind().as_str(),
                seq: rc.seq.0,
            }),
            Err(e) => return error_reply(&e),
        }
    }
    reply(StatusCode::OK, Reply::Records { records: receipts })
}

fn error_reply(e: &ledger_store::Error) -> Response {
    // Logged at its level, with the same short, path-free message a gRPC client gets.
    let message = status::to_status(e).message().to_string();
    error(status::http(e), message)
}

async fn github<S: Store + 'static>(State(st): State<Arc<AppState<S>>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &st.config.github_secret else {
        return error(StatusCode::NOT_FOUND, "GitHub deliveries are not configured on this server");
    };
    let sig = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("sha256="));
    if !sig.is_some_and(|s| hmac_ok(secret, &body, s)) {
        tracing::warn!("GitHub delivery refused: missing or bad X-Hub-Signature-256");
        return error(StatusCode::UNAUTHORIZED, "missing or bad X-Hub-Signature-256");
    }
    let Some(event) = headers.get("x-github-event").and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::BAD_REQUEST, "missing X-GitHub-Event");
    };
    match ledger_ingest::github::map(event, &body) {
        Ok(m) => append_mapped(&st, m.received_by(Channel::WebhookHmac)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Constant-time comparison of a presented token with the configured one (`subtle`; the
/// lengths are compared first, and the length of a configured secret is not a secret).
fn token_ok(expected: &[u8], given: &[u8]) -> bool {
    bool::from(expected.ct_eq(given))
}

async fn gitlab<S: Store + 'static>(State(st): State<Arc<AppState<S>>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = &st.config.gitlab_token else {
        return error(StatusCode::NOT_FOUND, "GitLab deliveries are not configured on this server");
    };
    let given = headers.get("x-gitlab-token").map(|v| v.as_bytes()).unwrap_or_default();
    if given.is_empty() || !token_ok(token, given) {
        tracing::warn!("GitLab delivery refused: missing or wrong X-Gitlab-Token");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong X-Gitlab-Token");
    }
    // GitLab names the event in `X-Gitlab-Event`; every payload also carries `object_kind`.
    let event = headers.get("x-gitlab-event").and_then(|v| v.to_str().ok()).map(str::to_string).or_else(|| {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("object_kind").and_then(|k| k.as_str()).map(str::to_string))
    });
    let Some(event) = event else {
        return error(StatusCode::BAD_REQUEST, "missing X-Gitlab-Event and object_kind");
    };
    match ledger_ingest::gitlab::map(&event, &body) {
        Ok(m) => append_mapped(&st, m.received_by(Channel::WebhookToken)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn pagerduty<S: Store + 'static>(
    State(st): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = &st.config.pagerduty_secret else {
        return error(StatusCode::NOT_FOUND, "PagerDuty deliveries are not configured on this server");
    };
    // PagerDuty sends one or more comma-separated `v1=<hex>` signatures (during secret rotation).
    let ok = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').filter_map(|p| p.trim().strip_prefix("v1=")).any(|s| hmac_ok(secret, &body, s)));
    if !ok {
        tracing::warn!("PagerDuty delivery refused: missing or bad X-PagerDuty-Signature");
        return error(StatusCode::UNAUTHORIZED, "missing or bad X-PagerDuty-Signature");
    }
    match ledger_ingest::incident::map(ledger_ingest::incident::System::PagerDuty, &body, None, vec![]) {
        Ok(Mapped::Records(mut records)) => {
            // No explicit cause in the payload: infer one from service and time (docs/AUDIT.md).
            match st.ledger.gathered_of_kind(ledger_core::record::Kind::Deployment) {
                Ok(deployments) => {
                    let rule = ledger_audit::infer::InferRule::default();
                    for r in &mut records {
                        ledger_audit::infer::infer_into(r, &deployments, &rule);
                    }
                }
                // The incident is still recorded, without an inferred cause: say why.
                Err(e) => tracing::warn!(error = %e, "reading deployments to infer an incident's cause failed"),
            }
            append_mapped(&st, Mapped::Records(records).received_by(Channel::WebhookHmac)).await
        }
        Ok(m) => append_mapped(&st, m.received_by(Channel::WebhookHmac)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
