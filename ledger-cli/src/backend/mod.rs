//! Where commands run: on a local store (`--db`) or through a `ledgerd` server (`--server`),
//! with the same results.

mod gate;

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ledger_audit::why::{Trust, WhyReport};
use ledger_core::entry::{entry_hash, Entry, SignedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::merkle;
use ledger_core::record::Kind;
use ledger_core::types::{EntryHash, Timestamp};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_client::LedgerClient;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::{EntryView, Ledger, LogFilter, Receipt};
use ledger_store::store::DiskStore;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// How to reach a server.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// PEM CA certificate to trust for `https`.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Bearer token for read calls.
    pub read_token: Option<String>,
}

/// Query filters, as the user gave them.
#[derive(Clone, Debug, Default)]
pub struct LogArgs {
    /// Record kind.
    pub kind: Option<Kind>,
    /// Subject or abbreviated commit id.
    pub subject: Option<String>,
    /// Integration time lower bound.
    pub since: Option<Timestamp>,
    /// Latest N.
    pub limit: Option<usize>,
}

/// Result of a verification.
pub enum VerifyOutcome {
    /// Every entry verified.
    Intact {
        /// Entries verified.
        entries: u64,
        /// Head hash.
        head: EntryHash,
    },
    /// The first entry that fails.
    Tampered {
        /// Its seq.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// A local ledger or a remote server.
pub enum Backend {
    /// The embedded store.
    Local(Ledger<DiskStore>),
    /// A `ledgerd` server.
    Remote(Remote),
}

/// A connected client.
pub struct Remote {
    rt: tokio::runtime::Runtime,
    client: LedgerClient<Channel>,
    token: Option<String>,
}

/// Opens the local ledger in `store` (at `name`, for messages).
pub fn open_local(store: DiskStore, name: String) -> Result<Ledger<DiskStore>> {
    Ledger::open(store, Arc::new(SystemClock)).with_context(|| format!("opening the ledger at {name}"))
}

fn hash32(b: &[u8]) -> Result<merkle::Hash> {
    b.try_into().map_err(|_| anyhow!("the server sent a hash of {} bytes", b.len()))
}

fn status(s: tonic::Status) -> anyhow::Error {
    let hint = match s.code() {
        // A TLS client talking to a plain server, or the reverse, fails before any call.
        tonic::Code::Unknown | tonic::Code::Unavailable
            if ["transport", "protocol error", "connection"].iter().any(|w| s.message().contains(w)) =>
        {
            " (check the scheme: http:// for a plain server, https:// for one with TLS)"
        }
        _ => "",
    };
    anyhow!("server refused: {:?}: {}{hint}", s.code(), s.message())
}

impl Remote {
    /// Connects to `opts.url`.
    pub fn connect(opts: &RemoteOptions) -> Result<Self> {
        if !opts.url.contains("://") {
            bail!("--server `{0}` has no scheme: give http://{0} (or https://{0} for a server with TLS)", opts.url);
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
        let mut endpoint =
            Channel::from_shared(opts.url.clone()).map_err(|e| anyhow!("bad --server URL `{}`: {e}", opts.url))?;
        if opts.url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &opts.ca_cert {
                let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).context("TLS configuration")?;
        }
        let endpoint = endpoint.connect_timeout(std::time::Duration::from_secs(10));
        let channel = rt.block_on(endpoint.connect()).with_context(|| {
            if opts.url.starts_with("https://") {
                format!(
                    "connecting to {} (if the server does not serve TLS, use http://; if it does, pass --ca-cert \
                     with the CA that signed its certificate)",
                    opts.url
                )
            } else {
                format!("connecting to {} (is ledgerd running there?)", opts.url)
            }
        })?;
        let client = LedgerClient::new(channel)
            .max_decoding_message_size(ledger_proto::MAX_FRAME_BYTES)
            .max_encoding_message_size(ledger_proto::MAX_FRAME_BYTES);
        Ok(Remote { rt, client, token: opts.read_token.clone() })
    }

    fn req<T>(&self, msg: T) -> Result<tonic::Request<T>> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = &self.token {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| anyhow!("the read token has characters not allowed in a header"))?,
            );
        }
        Ok(r)
    }

    fn view(e: pb::Entry) -> Result<EntryView> {
        let hash = entry_hash(&e.entry);
        if hash.0.as_slice() != e.entry_hash.as_slice() {
            bail!("the server sent entry #{} whose bytes do not hash to the entry hash it claims", e.seq);
        }
        let entry = Entry::decode(&e.entry).with_context(|| format!("decoding entry #{} from the server", e.seq))?;
        if entry.seq.0 != e.seq {
            bail!("the server sent entry #{} labelled as #{}", entry.seq, e.seq);
        }
        let record = entry.decode_record().with_context(|| format!("decoding the record of entry #{}", e.seq))?;
        Ok(EntryView { seq: entry.seq, hash, bytes: e.entry, entry, record })
    }
}

impl Backend {
    /// Signs `record` with `key` and appends it.
    ///
    /// # Errors
    /// The record is refused by the signer's checks or the ledger, or the server is unreachable.
    pub fn sign_and_append(
        &mut self,
        record: &ledger_core::record::Record,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<Receipt> {
        let signed = SignedRecord::sign(record, key)?;
        let mut r = self.append(std::slice::from_ref(&signed))?;
        r.pop().ok_or_else(|| anyhow!("the ledger returned no receipt"))
    }

    /// Appends records. Locally the batch is all-or-nothing; through a server each record is
    /// acknowledged on its own, and the first refusal is returned as the error.
    pub fn append(&mut self, records: &[SignedRecord]) -> Result<Vec<Receipt>> {
        match self {
            Backend::Local(l) => Ok(l.append(records)?),
            Backend::Remote(r) => {
                if let [one] = records {
                    let mut client = r.client.clone();
                    let resp =
                        r.rt.block_on(
                            client
                                .append(pb::AppendRequest { record: Some(pb::SignedRecord::from(one)), prove: false }),
                        )
                        .map_err(status)?;
                    let receipt = resp.into_inner().receipt.ok_or_else(|| anyhow!("the server sent no receipt"))?;
                    return Ok(vec![
                        Receipt::try_from(&receipt).map_err(|e| anyhow!("the server sent a malformed receipt: {e}"))?
                    ]);
                }
                let reqs: Vec<pb::AppendRequest> = records
                    .iter()
                    .map(|s| pb::AppendRequest { record: Some(pb::SignedRecord::from(s)), prove: false })
                    .collect();
                let mut client = r.client.clone();
                r.rt.block_on(async move {
                    let mut out = Vec::with_capacity(reqs.len());
                    let mut stream =
                        client.append_stream(futures::stream::iter(reqs)).await.map_err(status)?.into_inner();
                    while let Some(msg) = stream.message().await.map_err(status)? {
                        match msg.result {
                            Some(pb::append_stream_response::Result::Receipt(rc)) => out.push(
                                Receipt::try_from(&rc)
                                    .map_err(|e| anyhow!("the server sent a malformed receipt: {e}"))?,
                            ),
                            Some(pb::append_stream_response::Result::Error(e)) => {
                                bail!("server refused record {}: {}", out.len() + 1, e.message)
                            }
                            None => bail!("the server sent an empty response"),
                        }
                    }
                    Ok(out)
                })
            }
        }
    }

    /// One entry by `#seq`, `entry:<hex>` or a hash prefix.
    pub fn find_entry(&mut self, input: &str) -> Result<EntryView> {
        match self {
            Backend::Local(l) => Ok(l.find_entry(input)?),
            Backend::Remote(r) => {
                let by = match input.strip_prefix('#') {
                    Some(n) => {
                        pb::get_entry_request::By::Seq(n.parse().map_err(|_| anyhow!("`{input}` is not #<seq>"))?)
                    }
                    None => pb::get_entry_request::By::Hash(input.strip_prefix("entry:").unwrap_or(input).to_string()),
                };
                let mut client = r.client.clone();
                let req = r.req(pb::GetEntryRequest { by: Some(by) })?;
                let e = r.rt.block_on(client.get_entry(req)).map_err(status)?.into_inner();
                Remote::view(e)
            }
        }
    }

    /// Entries matching the filters, oldest first.
    pub fn log(&mut self, args: &LogArgs) -> Result<Vec<EntryView>> {
        let mut out = vec![];
        self.log_each(args, |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Backend::log`], one entry at a time as it is read (locally) or received (from the
    /// server), so a long answer is never held whole.
    ///
    /// # Errors
    /// A failed read, a gRPC error, or `f`'s first error (which stops the walk).
    pub fn log_each(&mut self, args: &LogArgs, mut f: impl FnMut(EntryView) -> Result<()>) -> Result<()> {
        match self {
            Backend::Local(l) => {
                let subject = args.subject.as_deref().map(|s| l.resolve(s)).transpose()?;
                let filter =
                    LogFilter { kind: args.kind, subject, since: args.since, limit: args.limit, ..Default::default() };
                let mut failed = None;
                l.log_each(&filter, |v| match f(v) {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        failed = Some(e);
                        Ok(false)
                    }
                })?;
                failed.map_or(Ok(()), Err)
            }
            Backend::Remote(r) => {
                let q = pb::QueryRequest {
                    kind: args.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
                    subject: args.subject.clone().unwrap_or_default(),
                    since_ms: args.since.map(|t| t.0),
                    from_seq: None,
                    to_seq: None,
                    limit: args.limit.map_or(0, |l| l.min(u32::MAX as usize) as u32),
                };
                let mut client = r.client.clone();
                let req = r.req(q)?;
                r.rt.block_on(async move {
                    let mut s = client.query(req).await.map_err(status)?.into_inner();
                    while let Some(e) = s.message().await.map_err(status)? {
                        f(Remote::view(e)?)?;
                    }
                    Ok::<_, anyhow::Error>(())
                })
            }
        }
    }

    /// The log in memory (below `tree_size`; only `kinds` when given) for the period commands,
    /// with a progress bar; `None` through a server, whose commands ask for what they need.
    pub fn snapshot(
        &mut self,
        tree_size: Option<u64>,
        kinds: Option<&[Kind]>,
        quiet: bool,
    ) -> Result<Option<ledger_audit::snapshot::Snapshot>> {
        match self {
            Backend::Local(l) => {
                let total = tree_size.unwrap_or(l.len()).min(l.len());
                let bar = crate::output::progress(quiet, total, "reading {bar:40} {pos}/{len} entries");
                let snap = l.snapshot(tree_size, kinds, |n| bar.set_position(n))?;
                bar.finish_and_clear();
                Ok(Some(snap))
            }
            Backend::Remote(_) => Ok(None),
        }
    }

    /// The `why` report for a subject as typed by the user.
    /// `trusted_builders` (empty: the default list, or a server's own) says whose attestations
    /// count as evidence.
    pub fn why(&mut self, subject: &str, trusted_builders: &[String]) -> Result<WhyReport> {
        match self {
            Backend::Local(l) => {
                let trust = match trusted_builders {
                    [] => Trust::default(),
                    list => Trust { builders: list.to_vec() },
                };
                Ok(l.why_input(subject, &trust)?)
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::WhyRequest {
                    subject: subject.to_string(),
                    trusted_builders: trusted_builders.to_vec(),
                })?;
                let resp = r.rt.block_on(client.why(req)).map_err(status)?.into_inner();
                let report = resp.report.ok_or_else(|| anyhow!("the server sent no why report"))?;
                WhyReport::try_from(&report).map_err(|e| anyhow!("the server sent a malformed why report: {e}"))
            }
        }
    }

    /// Verifies every entry.
    pub fn verify(&mut self, progress: impl FnMut(u64)) -> Result<VerifyOutcome> {
        match self {
            Backend::Local(l) => match l.verify(progress) {
                Ok(s) => Ok(VerifyOutcome::Intact { entries: s.entries, head: s.head }),
                Err(e @ ledger_store::Error::Tampered { seq, .. }) => {
                    Ok(VerifyOutcome::Tampered { seq: seq.0, reason: e.tamper_detail().unwrap_or_default() })
                }
                Err(e) => Err(e.into()),
            },
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::VerifyRequest {})?;
                let v = r.rt.block_on(client.verify(req)).map_err(status)?.into_inner();
                if v.ok {
                    let head: [u8; 32] =
                        v.head.as_slice().try_into().map_err(|_| anyhow!("the server sent a malformed head"))?;
                    Ok(VerifyOutcome::Intact { entries: v.entries, head: EntryHash(head) })
                } else {
                    Ok(VerifyOutcome::Tampered { seq: v.bad_seq, reason: v.reason })
                }
            }
        }
    }

    /// Every key ever registered.
    pub fn keys(&mut self) -> Result<Vec<KeyInfo>> {
        match self {
            Backend::Local(l) => Ok(l.keys()),
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::ListKeysRequest {})?;
                let resp = r.rt.block_on(client.list_keys(req)).map_err(status)?.into_inner();
                resp.keys
                    .iter()
                    .map(|k| KeyInfo::try_from(k).map_err(|e| anyhow!("the server sent a malformed key: {e}")))
                    .collect()
            }
        }
    }

    /// (tree size, root, inclusion proof) of entry `seq` in the tree of `size` (default: now).
    /// The caller verifies it: a server's proof is not trusted.
    pub fn inclusion_proof(&mut self, seq: u64, size: Option<u64>) -> Result<(u64, merkle::Hash, Vec<merkle::Hash>)> {
        match self {
            Backend::Local(l) => {
                let size = size.unwrap_or_else(|| l.tree_head().0);
                let (root, proof) = l.inclusion_proof(ledger_core::types::Seq(seq), size)?;
                Ok((size, root, proof))
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::GetInclusionProofRequest { seq, tree_size: size.unwrap_or(0) })?;
                let p = r.rt.block_on(client.get_inclusion_proof(req)).map_err(status)?.into_inner();
                Ok((p.tree_size, hash32(&p.root)?, p.proof.iter().map(|h| hash32(h)).collect::<Result<_>>()?))
            }
        }
    }

    /// Inclusion proofs of several entries in the tree of `size` (each O(log size) reads).
    pub fn inclusion_proofs(&mut self, seqs: &[u64], size: u64) -> Result<Vec<Vec<merkle::Hash>>> {
        match self {
            Backend::Local(l) => seqs
                .iter()
                .map(|s| {
                    Ok(l.inclusion_proof(ledger_core::types::Seq(*s), size).map_err(|e| anyhow!("entry #{s}: {e}"))?.1)
                })
                .collect(),
            Backend::Remote(_) => seqs.iter().map(|s| Ok(self.inclusion_proof(*s, Some(size))?.2)).collect(),
        }
    }

    /// (new size, old root, new root, consistency proof) between `old` and `new` (default: now).
    pub fn consistency_proof(
        &mut self,
        old: u64,
        new: Option<u64>,
    ) -> Result<(u64, merkle::Hash, merkle::Hash, Vec<merkle::Hash>)> {
        match self {
            Backend::Local(l) => {
                let new = new.unwrap_or_else(|| l.tree_head().0);
                let (r1, r2, proof) = l.consistency_proof(old, new)?;
                Ok((new, r1, r2, proof))
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::GetConsistencyProofRequest { old_size: old, new_size: new.unwrap_or(0) })?;
                let p = r.rt.block_on(client.get_consistency_proof(req)).map_err(status)?.into_inner();
                Ok((
                    p.new_size,
                    hash32(&p.old_root)?,
                    hash32(&p.new_root)?,
                    p.proof.iter().map(|h| hash32(h)).collect::<Result<_>>()?,
                ))
            }
        }
    }

    /// A signed checkpoint: (signed note, verifier key, tree size, root). Locally it is signed
    /// with `local_signer` (origin, key); a server signs with its own checkpoint key.
    pub fn checkpoint(
        &mut self,
        local_signer: impl FnOnce(&Ledger<DiskStore>) -> Result<(String, ed25519_dalek::SigningKey)>,
    ) -> Result<(String, String, u64, merkle::Hash)> {
        match self {
            Backend::Local(l) => {
                let (origin, key) = local_signer(l)?;
                Ok(l.signed_checkpoint(&origin, &key)?)
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::GetCheckpointRequest {})?;
                let c = r.rt.block_on(client.get_checkpoint(req)).map_err(status)?.into_inner();
                Ok((c.signed_note, c.verifier_key, c.tree_size, hash32(&c.root)?))
            }
        }
    }

    /// Writes a v2 bundle of `selection` to `out` ([`Ledger::export_bundle`]): locally, signed
    /// with `local_signer`'s key; through a server, built and signed by it (`ExportBundle`).
    /// `progress(done, total)` counts entries locally and bytes (total 0: unknown) remotely.
    /// Returns (entries, selected, tree size) when known (locally).
    pub fn export_bundle(
        &mut self,
        selection: &ledger_core::bundle::Selection,
        out: &mut dyn std::io::Write,
        local_signer: impl FnOnce(&Ledger<DiskStore>) -> Result<(String, ed25519_dalek::SigningKey)>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Option<ledger_store::ledger::ExportSummary>> {
        use ledger_core::bundle::Selection;
        match self {
            Backend::Local(l) => {
                let (origin, key) = local_signer(l)?;
                Ok(Some(l.export_bundle(selection, &origin, &key, out, progress)?))
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let sel = match selection {
                    Selection::All => pb::export_bundle_request::Selection::All(true),
                    Selection::Time { since, until } => pb::export_bundle_request::Selection::Time(pb::TimeRange {
                        since_ms: since.map(|t| t.0),
                        until_ms: until.map(|t| t.0),
                    }),
                    Selection::Subject { subject } => pb::export_bundle_request::Selection::Subject(subject.clone()),
                    Selection::Subjects { subjects } => {
                        pb::export_bundle_request::Selection::Subjects(pb::SubjectList { subjects: subjects.clone() })
                    }
                };
                let req = r.req(pb::ExportBundleRequest { selection: Some(sel) })?;
                r.rt.block_on(async {
                    let mut stream = client.export_bundle(req).await.map_err(status)?.into_inner();
                    let mut bytes = 0u64;
                    while let Some(chunk) = stream.message().await.map_err(status)? {
                        out.write_all(&chunk.data)?;
                        bytes += chunk.data.len() as u64;
                        progress(bytes, 0);
                    }
                    Ok::<_, anyhow::Error>(())
                })?;
                Ok(None)
            }
        }
    }

    /// Appends one record and proves it: the receipt, a C2SP tlog-proof@v1 against a
    /// checkpoint signed after the append (locally with `local_signer`'s key), and the log's
    /// verifier key (through a server: the one it reports).
    pub fn append_proved(
        &mut self,
        signed: &SignedRecord,
        local_signer: impl FnOnce(&Ledger<DiskStore>) -> Result<(String, ed25519_dalek::SigningKey)>,
    ) -> Result<(Receipt, String, String)> {
        match self {
            Backend::Local(l) => {
                let receipt = l
                    .append(std::slice::from_ref(signed))?
                    .pop()
                    .ok_or_else(|| anyhow!("the ledger returned no receipt"))?;
                let (origin, key) = local_signer(l)?;
                let (note, vkey, size, _) = l.signed_checkpoint(&origin, &key)?;
                let (_, proof) = l.inclusion_proof(receipt.seq, size)?;
                let entry = l.get(receipt.seq)?.map(|v| v.bytes);
                Ok((receipt, ledger_core::note::tlog_proof(receipt.seq.0, entry.as_deref(), &proof, &note), vkey))
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = pb::AppendRequest { record: Some(pb::SignedRecord::from(signed)), prove: true };
                let rc = r.rt.block_on(client.append(req)).map_err(status)?.into_inner().receipt;
                let rc = rc.ok_or_else(|| anyhow!("the server sent no receipt"))?;
                if rc.tlog_proof.is_empty() {
                    bail!("the server sent no inclusion proof with the receipt");
                }
                let req = r.req(pb::GetCheckpointRequest {})?;
                let vkey = r.rt.block_on(client.get_checkpoint(req)).map_err(status)?.into_inner().verifier_key;
                Ok((
                    Receipt::try_from(&rc).map_err(|e| anyhow!("the server sent a malformed receipt: {e}"))?,
                    rc.tlog_proof,
                    vkey,
                ))
            }
        }
    }

    /// Number of entries.
    pub fn len(&mut self) -> Result<u64> {
        match self {
            Backend::Local(l) => Ok(l.len()),
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::HeadRequest {})?;
                Ok(r.rt.block_on(client.head(req)).map_err(status)?.into_inner().entries)
            }
        }
    }
}
