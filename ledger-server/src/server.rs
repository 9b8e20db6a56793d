//! Serving: [`serve`] runs the gRPC service (with health and reflection) on a listener until
//! a shutdown signal, then drains in-flight appends and flushes before returning.

use std::future::Future;
use std::sync::Arc;

use ledger_proto::v1::ledger_server::LedgerServer;
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::service::LedgerService;
use ledger_store::ledger::Ledger;
use ledger_store::sequencer::Sequencer;
use ledger_store::store::Store;

pub use ledger_proto::MAX_FRAME_BYTES;

/// tonic answers a frame over the decoding limit with OUT_OF_RANGE, and a frame that is not
/// valid protobuf with INTERNAL, before any handler runs; the ledger's contract is
/// RESOURCE_EXHAUSTED (gRPC's convention for size limits) and INVALID_ARGUMENT. The service
/// itself never returns OUT_OF_RANGE, so that rewrite cannot hide another error. It applies to
/// trailers-only responses (unary calls, and a stream's opening frame); `AppendStream` maps
/// its own inbound errors.
fn oversize_as_resource_exhausted(
    mut resp: tonic::codegen::http::Response<tonic::body::BoxBody>,
) -> tonic::codegen::http::Response<tonic::body::BoxBody> {
    let status = |c: tonic::Code| (c as i32).to_string();
    let is = |resp: &tonic::codegen::http::Response<tonic::body::BoxBody>, c: tonic::Code| {
        resp.headers().get("grpc-status").is_some_and(|v| v.as_bytes() == status(c).as_bytes())
    };
    // A request frame tonic could not decode is the client's malformed request, which the API
    // answers INVALID_ARGUMENT; tonic says INTERNAL. Only tonic's decode failures (prost's
    // message, "failed to decode …") are relabelled, not the service's own INTERNAL answers.
    let undecodable = is(&resp, tonic::Code::Internal)
        && resp.headers().get("grpc-message").is_some_and(|m| m.as_bytes().starts_with(b"failed%20to%20decode"));
    let code = if is(&resp, tonic::Code::OutOfRange) {
        Some(tonic::Code::ResourceExhausted)
    } else if undecodable {
        Some(tonic::Code::InvalidArgument)
    } else {
        None
    };
    if let Some(v) = code.and_then(|c| tonic::codegen::http::HeaderValue::from_str(&status(c)).ok()) {
        resp.headers_mut().insert("grpc-status", v);
    }
    resp
}

/// How to serve.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// PEM certificate chain and private key: serve TLS (rustls) instead of plaintext.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// When set, read calls require `authorization: Bearer <token>`.
    pub read_token: Option<String>,
    /// Group-commit linger (see [`ledger_store::sequencer::Sequencer::start`]); `None` = the default.
    pub linger: Option<std::time::Duration>,
    /// The key and origin to sign checkpoints with (enables `GetCheckpoint`).
    pub checkpoints: Option<crate::service::CheckpointSigner>,
    /// The webhook receiver: a second listener (plain HTTP) and its configuration.
    pub webhooks: Option<(TcpListener, crate::webhook::WebhookConfig)>,
    /// Whose attestations count as evidence in `Why` when a request names no list; `None` =
    /// the default trusted builders.
    pub trust: Option<ledger_audit::why::Trust>,
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed (bind, TLS configuration, I/O).
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The sequencer could not start.
    #[error(transparent)]
    Ledger(#[from] ledger_store::Error),
}

/// Serves `ledger` on `listener` until `shutdown` completes. In-flight requests are then
/// finished, every queued append is written and flushed, and the function returns.
///
/// # Errors
/// [`ServeError`] if the server cannot start or its transport fails.
pub async fn serve<S: Store + 'static>(
    listener: TcpListener,
    ledger: Arc<Ledger<S>>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let sequencer = Sequencer::start(ledger.clone(), opts.linger.unwrap_or(ledger_store::sequencer::DEFAULT_LINGER))?;
    let handle = sequencer.handle().ok_or(ledger_store::Error::Unavailable)?;
    // One shutdown signal, fanned out to the gRPC server and the webhook receiver.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    let webhook_task = match opts.webhooks {
        Some((listener, config)) => {
            let app = crate::webhook::router(ledger.clone(), handle.clone(), config);
            let stop = stopped(stop_rx.clone());
            Some(tokio::spawn(crate::webhook::serve(listener, app, stop)))
        }
        None => None,
    };
    let (mut health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LedgerServer<LedgerService<S>>>().await;
    // Whether this server appends, for load balancers routing appends (`WRITER_HEALTH`); on a
    // shared store the role is kept until shutdown (writer or standby).
    let writer = ledger.store().role() == ledger_store::store::Role::Writer;
    crate::lease::report_role(&mut health, writer).await;
    let lease_task = ledger
        .store()
        .is_shared()
        .then(|| tokio::spawn(crate::lease::follow_lease(ledger.clone(), writer, health.clone(), stop_rx.clone())));
    let service = LedgerServer::new(LedgerService::new(
        ledger,
        handle,
        opts.read_token,
        opts.checkpoints,
        opts.trust.unwrap_or_default(),
    ))
    .max_decoding_message_size(MAX_FRAME_BYTES)
    .max_encoding_message_size(MAX_FRAME_BYTES);
    // Compressed requests are not accepted: tonic inflates a gzip frame whole before any size
    // check, so a 4 MiB frame of zeros would cost the server ~4 GiB (a compression bomb).
    // Such a call is answered UNIMPLEMENTED, before anything is decoded.
    // Reflection as both `grpc.reflection.v1` and `v1alpha`: clients built on the older name
    // (grpcio's reflection client, older grpcurl and grpc_cli) still discover the service.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ledger_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_err = |e: tonic_reflection::server::Error| ledger_store::Error::Storage(format!("reflection: {e}"));
    let reflection = reflection_builder().build_v1().map_err(reflection_err)?;
    let reflection_v1alpha = reflection_builder().build_v1alpha().map_err(reflection_err)?;
    let mut builder = Server::builder()
        .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()))
        .layer(tower::util::MapResponseLayer::new(oversize_as_resource_exhausted));
    if let Some((cert, key)) = opts.tls {
        builder = builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))?;
    }
    // TCP_NODELAY: without it, Nagle's algorithm and delayed ACKs hold small responses for
    // ~40 ms. tonic sets it only on listeners it binds itself.
    let incoming = tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
        .map_err(|e| ledger_store::Error::Storage(format!("listener: {e}")))?;
    let result = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    if let Some(t) = webhook_task {
        let _ = t.await;
    }
    if let Some(t) = lease_task {
        let _ = t.await;
    }
    // The router (and with it every sequencer handle) is gone: drain and flush.
    tokio::task::spawn_blocking(move || sequencer.shutdown()).await.ok();
    result?;
    Ok(())
}
