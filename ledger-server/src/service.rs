//! The `ledger.v1.Ledger` gRPC service: handlers decode, call the ledger, encode.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use ledger_audit::why::Trust;
use ledger_core::bundle::Selection;
use ledger_core::entry::SignedRecord;
use ledger_core::record::{Kind, Stage};
use ledger_core::types::{Seq, Timestamp};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_server::Ledger as LedgerApi;
use subtle::ConstantTimeEq;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::status::to_status;
use ledger_store::ledger::{Ledger, LogFilter};
use ledger_store::sequencer::SequencerHandle;
use ledger_store::store::{Role, Store};
use ledger_store::Error;

/// How many records of one `AppendStream` may be in flight at once.
const STREAM_WINDOW: usize = 1024;

/// The service state shared by all requests.
pub struct LedgerService<S: Store> {
    ledger: Arc<Ledger<S>>,
    sequencer: SequencerHandle,
    read_token: Option<Arc<str>>,
    checkpoints: Option<Arc<CheckpointSigner>>,
    /// Whose attestations count in `Why` when a request names no list.
    trust: Arc<Trust>,
}

/// The key and origin `ledgerd` signs checkpoints with.
pub struct CheckpointSigner {
    /// Origin line and note signer name.
    pub origin: String,
    /// The log's checkpoint key.
    pub key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl<S: Store> Clone for LedgerService<S> {
    fn clone(&self) -> Self {
        LedgerService {
            ledger: self.ledger.clone(),
            sequencer: self.sequencer.clone(),
            read_token: self.read_token.clone(),
            checkpoints: self.checkpoints.clone(),
            trust: self.trust.clone(),
        }
    }
}

/// The status that ends an `AppendStream` whose inbound frame failed: a frame over the size
/// limit is `RESOURCE_EXHAUSTED`; one that does not decode (malformed protobuf, wrong wire type,
/// cut short) is the client's `INVALID_ARGUMENT`, not the server's `INTERNAL`.
fn stream_frame_status(s: Status) -> Status {
    match s.code() {
        Code::OutOfRange | Code::ResourceExhausted => {
            Status::resource_exhausted(format!("AppendStream frame refused: {}", s.message()))
        }
        Code::Internal | Code::InvalidArgument | Code::Unknown => {
            Status::invalid_argument(format!("AppendStream frame is not a valid AppendRequest: {}", s.message()))
        }
        _ => s,
    }
}

fn err(e: Error) -> Status {
    to_status(&e)
}

impl<S: Store + 'static> LedgerService<S> {
    /// A service over `ledger`, appending through `sequencer`. With `read_token`, read calls
    /// require `authorization: Bearer <token>`; appends are authenticated by their signatures.
    pub fn new(
        ledger: Arc<Ledger<S>>,
        sequencer: SequencerHandle,
        read_token: Option<String>,
        checkpoints: Option<CheckpointSigner>,
        trust: Trust,
    ) -> Self {
        LedgerService {
            ledger,
            sequencer,
            trust: Arc::new(trust),
            read_token: read_token.map(Arc::from),
            checkpoints: checkpoints.map(Arc::new),
        }
    }

    fn check_read<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(token) = &self.read_token else { return Ok(()) };
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant time (`subtle`): a check does not leak how much of a guess matched.
        if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "this server requires a read token: send `authorization: Bearer <token>` (ledger: --read-token-file FILE)",
            ))
        }
    }

    /// On a standby (a shared store another handle writes), catches up with the writer first,
    /// so that a read answers at the store's current head.
    async fn fresh(&self) -> Result<(), Status> {
        if !matches!(self.ledger.store().role(), Role::Standby { .. }) {
            return Ok(());
        }
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || ledger.refresh())
            .await
            .map_err(|e| Status::internal(format!("refresh task failed: {e}")))?
            .map(|_| ())
            .map_err(err)
    }

    async fn append_one(&self, req: pb::AppendRequest) -> Result<pb::Receipt, Status> {
        // Refused before anything is written: a proof was asked for and cannot be given.
        let prover = if req.prove { Some(self.signer()?.clone()) } else { None };
        let signed = SignedRecord::try_from(req.record.ok_or_else(|| Status::invalid_argument("record is missing"))?)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // The signature check (tens of µs) runs here, concurrently across requests; the
        // sequencer then only checks the signer's rights and writes.
        let verified = self.ledger.verify_signature(&signed).map_err(err)?;
        let receipt = self.sequencer.append(verified).await.map_err(err)?;
        let mut out = pb::Receipt::from(&receipt);
        if let Some(signer) = prover {
            // A checkpoint signed now covers the entry (the append is durable), and the proof
            // is against that checkpoint's tree size.
            let ledger = self.ledger.clone();
            out.tlog_proof = tokio::task::spawn_blocking(move || -> ledger_store::Result<String> {
                let (note, _, size, _) = ledger.signed_checkpoint(&signer.origin, &signer.key)?;
                let (_, proof) = ledger.inclusion_proof(receipt.seq, size)?;
                // The entry's bytes ride on the `extra` line: the proof carries its own leaf.
                let entry = ledger.get(receipt.seq)?.map(|v| v.bytes);
                Ok(ledger_core::note::tlog_proof(receipt.seq.0, entry.as_deref(), &proof, &note))
            })
            .await
            .map_err(|e| Status::internal(format!("proof task failed: {e}")))?
            .map_err(err)?;
        }
        Ok(out)
    }

    fn signer(&self) -> Result<&Arc<CheckpointSigner>, Status> {
        self.checkpoints.as_ref().ok_or_else(|| {
            Status::failed_precondition("this server signs no checkpoints (start ledgerd with --checkpoint-key)")
        })
    }
}

/// The seq a tampering error names.
fn tamper_seq(e: &Error) -> u64 {
    match e {
        Error::Tampered { seq, .. } => seq.0,
        _ => 0,
    }
}

fn entry_pb(v: &ledger_store::ledger::EntryView) -> pb::Entry {
    pb::Entry { seq: v.seq.0, entry_hash: v.hash.0.to_vec(), entry: v.bytes.clone() }
}

/// Entries a `Query` reads ahead of what its client has taken.
const QUERY_BUFFER: usize = 64;

/// Bytes per `BundleChunk` of an export, and chunks buffered ahead of the client.
const EXPORT_CHUNK: usize = 256 * 1024;
const EXPORT_BUFFER: usize = 8;

/// An export's output: full chunks go to the client as they fill; `flush` sends the rest.
struct ChunkSink {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<pb::BundleChunk, Status>>,
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= EXPORT_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(EXPORT_CHUNK));
        self.tx
            .blocking_send(Ok(pb::BundleChunk { data }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<S: Store + 'static> LedgerApi for LedgerService<S> {
    #[tracing::instrument(skip_all)]
    async fn append(&self, request: Request<pb::AppendRequest>) -> Result<Response<pb::AppendResponse>, Status> {
        let receipt = self.append_one(request.into_inner()).await?;
        Ok(Response::new(pb::AppendResponse { receipt: Some(receipt) }))
    }

    type AppendStreamStream = BoxStream<pb::AppendStreamResponse>;

    #[tracing::instrument(skip_all)]
    async fn append_stream(
        &self,
        request: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let this = self.clone();
        // The inbound side ends after its first error. A frame tonic cannot decode (malformed
        // protobuf, over the size limit, cut short) is answered by ending the stream with a
        // status at once; the receipts already sent stand. Polling on would wait for a frame the
        // client, waiting for an answer, never sends.
        let inbound = futures::stream::unfold(Some(request.into_inner()), |s| async move {
            let mut s = s?;
            match s.next().await? {
                Ok(req) => Some((Ok(req), Some(s))),
                Err(status) => Some((Err(status), None)),
            }
        });
        let out = inbound
            .map(move |msg| {
                let this = this.clone();
                async move {
                    let req = msg.map_err(stream_frame_status)?;
                    let r = match this.append_one(req).await {
                        Ok(receipt) => pb::append_stream_response::Result::Receipt(receipt),
                        Err(s) => pb::append_stream_response::Result::Error(pb::Error {
                            code: s.code() as i32,
                            message: s.message().to_string(),
                        }),
                    };
                    Ok(pb::AppendStreamResponse { result: Some(r) })
                }
            })
            .buffered(STREAM_WINDOW);
        Ok(Response::new(Box::pin(out)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_entry(&self, request: Request<pb::GetEntryRequest>) -> Result<Response<pb::Entry>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let view = match request.into_inner().by {
            Some(pb::get_entry_request::By::Seq(s)) => {
                self.ledger.get(Seq(s)).map_err(err)?.ok_or_else(|| err(Error::NotFound(format!("entry #{s}"))))?
            }
            Some(pb::get_entry_request::By::Hash(h)) => self.ledger.find_entry(&h).map_err(err)?,
            None => return Err(Status::invalid_argument("give `seq` or `hash`")),
        };
        Ok(Response::new(entry_pb(&view)))
    }

    type QueryStream = BoxStream<pb::Entry>;

    #[tracing::instrument(skip_all)]
    async fn query(&self, request: Request<pb::QueryRequest>) -> Result<Response<Self::QueryStream>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let q = request.into_inner();
        let kind = (!q.kind.is_empty())
            .then(|| q.kind.parse::<Kind>())
            .transpose()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let subject = (!q.subject.is_empty()).then(|| self.ledger.resolve(&q.subject)).transpose().map_err(err)?;
        let filter = LogFilter {
            kind,
            subject,
            since: q.since_ms.map(Timestamp),
            from_seq: q.from_seq.map(Seq),
            to_seq: q.to_seq.map(Seq),
            limit: (q.limit > 0).then_some(q.limit as usize),
        };
        // Entries are read and sent one by one as the client takes them (a bounded channel), so
        // a query over the whole ledger holds a few entries in memory, not all of them.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::Entry, Status>>(QUERY_BUFFER);
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            // A stream that just stopped would look complete: a failure, even a panic, ends it
            // with an error status after what was sent so far.
            let run = std::panic::AssertUnwindSafe(|| {
                ledger.log_each(&filter, |v| Ok(tx.blocking_send(Ok(entry_pb(&v))).is_ok()))
            });
            let failed = match std::panic::catch_unwind(run) {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(err(e)),
                Err(_) => Some(Status::internal("query task failed")),
            };
            if let Some(status) = failed {
                let _ = tx.blocking_send(Err(status));
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    type ExportBundleStream = BoxStream<pb::BundleChunk>;

    #[tracing::instrument(skip_all)]
    async fn export_bundle(
        &self,
        request: Request<pb::ExportBundleRequest>,
    ) -> Result<Response<Self::ExportBundleStream>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let signer = self.signer()?.clone();
        let selection = match request.into_inner().selection {
            Some(pb::export_bundle_request::Selection::All(_)) => Selection::All,
            Some(pb::export_bundle_request::Selection::Time(t)) => {
                Selection::Time { since: t.since_ms.map(Timestamp), until: t.until_ms.map(Timestamp) }
            }
            Some(pb::export_bundle_request::Selection::Subject(s)) => Selection::Subject { subject: s },
            Some(pb::export_bundle_request::Selection::Subjects(l)) => Selection::Subjects { subjects: l.subjects },
            None => return Err(Status::invalid_argument("say what to export: all, time or subject")),
        };
        // The bundle is written into a bounded channel as the client reads it: memory stays at a
        // few chunks whatever the bundle's size.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::BundleChunk, Status>>(EXPORT_BUFFER);
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = ChunkSink { buf: Vec::with_capacity(EXPORT_CHUNK), tx: tx.clone() };
            let run = std::panic::AssertUnwindSafe(|| {
                ledger.export_bundle(&selection, &signer.origin, &signer.key, &mut sink, &mut |_, _| {})
            });
            let failed = match std::panic::catch_unwind(run) {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(err(e)),
                Err(_) => Some(Status::internal("export task failed")),
            };
            match failed {
                Some(status) => {
                    let _ = tx.blocking_send(Err(status));
                }
                None => {
                    let _ = std::io::Write::flush(&mut sink);
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all)]
    async fn why(&self, request: Request<pb::WhyRequest>) -> Result<Response<pb::WhyResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let req = request.into_inner();
        let trust = if req.trusted_builders.is_empty() {
            (*self.trust).clone()
        } else {
            Trust { builders: req.trusted_builders }
        };
        let ledger = self.ledger.clone();
        let report = tokio::task::spawn_blocking(move || ledger.why_input(&req.subject, &trust))
            .await
            .map_err(|_| Status::internal("why task failed"))?
            .map_err(err)?;
        Ok(Response::new(pb::WhyResponse { report: Some(pb::WhyReport::from(&report)) }))
    }

    #[tracing::instrument(skip_all)]
    async fn gate(&self, request: Request<pb::GateRequest>) -> Result<Response<pb::GateResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let req = request.into_inner();
        let ledger = self.ledger.clone();
        let resp = tokio::task::spawn_blocking(move || -> Result<pb::GateResponse, Error> {
            if let Some(seq) = req.recheck_seq {
                let r = ledger.recheck_gate(&format!("#{seq}"))?;
                let mut report = r.fresh;
                report.recorded_at = Some(r.seq.0);
                return Ok(pb::GateResponse {
                    report: Some(pb::GateReport::from(&report)),
                    differences: r.differences,
                    policy_entry: None,
                });
            }
            let stage: Stage =
                req.stage.parse().map_err(|e: ledger_core::Error| Error::InvalidArgument(e.to_string()))?;
            let (report, policy) = ledger.gate_input(&req.subject, stage, req.policy_document.as_deref())?;
            Ok(pb::GateResponse {
                report: Some(pb::GateReport::from(&report)),
                differences: vec![],
                policy_entry: policy.published.map(|s| s.0),
            })
        })
        .await
        .map_err(|_| Status::internal("gate task failed"))?
        .map_err(err)?;
        Ok(Response::new(resp))
    }

    #[tracing::instrument(skip_all)]
    async fn verify(&self, request: Request<pb::VerifyRequest>) -> Result<Response<pb::VerifyResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let ledger = self.ledger.clone();
        let res = tokio::task::spawn_blocking(move || ledger.verify(|_| {}))
            .await
            .map_err(|_| Status::internal("verify task failed"))?;
        let resp = match res {
            Ok(s) => pb::VerifyResponse { ok: true, entries: s.entries, head: s.head.0.to_vec(), ..Default::default() },
            Err(e @ Error::Tampered { .. }) => {
                let (seq, reason) = (tamper_seq(&e), e.tamper_detail().unwrap_or_default());
                tracing::error!(seq, %reason, "verify found tampering");
                pb::VerifyResponse { ok: false, bad_seq: seq, reason, ..Default::default() }
            }
            Err(e) => return Err(err(e)),
        };
        Ok(Response::new(resp))
    }

    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Result<Response<pb::ListKeysResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        Ok(Response::new(pb::ListKeysResponse { keys: self.ledger.keys().iter().map(pb::KeyInfo::from).collect() }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let signer = self.signer()?;
        // The tree head and chain head are read under one view of the ledger.
        let (signed, vkey, size, root) = self.ledger.signed_checkpoint(&signer.origin, &signer.key).map_err(err)?;
        Ok(Response::new(pb::GetCheckpointResponse {
            signed_note: signed,
            verifier_key: vkey,
            tree_size: size,
            root: root.to_vec(),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::GetInclusionProofResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let r = request.into_inner();
        let size = if r.tree_size == 0 { self.ledger.tree_head().0 } else { r.tree_size };
        let ledger = self.ledger.clone();
        let (root, proof) = tokio::task::spawn_blocking(move || ledger.inclusion_proof(Seq(r.seq), size))
            .await
            .map_err(|_| Status::internal("proof task failed"))?
            .map_err(err)?;
        Ok(Response::new(pb::GetInclusionProofResponse {
            tree_size: size,
            root: root.to_vec(),
            proof: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::GetConsistencyProofResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let r = request.into_inner();
        let new = if r.new_size == 0 { self.ledger.tree_head().0 } else { r.new_size };
        let ledger = self.ledger.clone();
        let (old_root, new_root, proof) =
            tokio::task::spawn_blocking(move || ledger.consistency_proof(r.old_size, new))
                .await
                .map_err(|_| Status::internal("proof task failed"))?
                .map_err(err)?;
        Ok(Response::new(pb::GetConsistencyProofResponse {
            new_size: new,
            old_root: old_root.to_vec(),
            new_root: new_root.to_vec(),
            proof: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn head(&self, request: Request<pb::HeadRequest>) -> Result<Response<pb::HeadResponse>, Status> {
        self.check_read(&request)?;
        self.fresh().await?;
        let (entries, head) = self.ledger.head();
        let (standby, writer) = match self.ledger.store().role() {
            Role::Writer => (false, String::new()),
            Role::Standby { writer } => (true, writer.unwrap_or_default()),
        };
        Ok(Response::new(pb::HeadResponse { entries, head: head.0.to_vec(), standby, writer }))
    }
}
