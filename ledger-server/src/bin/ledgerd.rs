//! `ledgerd`: the Provenance Ledger gRPC service, on an embedded store or a PostgreSQL database
//! that several `ledgerd` may share (one writer, the others standbys).
//!
//! Prints `listening on <addr>` once ready (so `--listen 127.0.0.1:0` callers can find the
//! port). SIGTERM or Ctrl-C: stop accepting, finish in-flight appends, flush, exit 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use ledger_audit::why::Trust;
use ledger_server::server::{serve, ServeOptions};
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Claim, DiskStore, Role, Store};

/// How long a `ledgerd` starting on a shared store tries to claim the writer lease before it
/// serves as a standby: long enough for the database to end a killed writer's session.
const CLAIM_AT_START: std::time::Duration = std::time::Duration::from_secs(2);

/// mimalloc instead of the system allocator: under concurrent appends glibc malloc was the
/// largest single item in the server's profile (sled and HTTP/2 allocate per request).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Provenance Ledger service: appends through group commit, queries, `why`, verify.
#[derive(Parser, Debug)]
#[command(name = "ledgerd", version, about)]
struct Args {
    /// Ledger directory (create it with `ledger init`).
    #[arg(long, env = "LEDGER_DB", default_value = "ledger-data")]
    db: PathBuf,
    /// The ledger in a PostgreSQL database instead of the directory's embedded store
    /// (`postgres://USER@HOST:PORT/DB`, or `postgresql:///DB?host=/run/postgresql` for a unix
    /// socket); key files are still read from `--db`.
    #[arg(long, env = "LEDGER_STORE")]
    store: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:7700")]
    listen: String,
    /// With --store: the address other servers' clients should use to reach this one, named
    /// in standbys' refusals while this server is the writer (default: `http://` + the address
    /// it listens on).
    #[arg(long, env = "LEDGER_ADVERTISE")]
    advertise: Option<String>,
    /// Log filter, e.g. `info` or `ledger_server=debug`.
    #[arg(long, env = "LEDGER_LOG", default_value = "info")]
    log_filter: String,
    /// TLS certificate chain (PEM). With --tls-key, serve TLS.
    #[arg(long, env = "LEDGER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "LEDGER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// File holding a bearer token that read calls must present. Appends are authenticated
    /// by their signatures and need no token.
    #[arg(long, env = "LEDGER_READ_TOKEN_FILE")]
    read_token_file: Option<PathBuf>,
    /// Group commit: while appends keep arriving, wait up to this many microseconds (at most
    /// five times) for more before writing a batch. 0 writes as soon as the sequencer is free.
    #[arg(long, env = "LEDGER_LINGER_US", default_value_t = 200)]
    linger_us: u64,
    /// Serve the webhook receiver (plain HTTP: put TLS in front) on this address, e.g.
    /// `127.0.0.1:7701`. Needs --ingest-key and at least one secret.
    #[arg(long, env = "LEDGER_WEBHOOK_LISTEN", requires = "ingest_key")]
    webhook_listen: Option<String>,
    /// Key (PKCS#8 PEM, mode 0600) that signs records made from webhook deliveries; register
    /// it first, e.g. `ledger key add --name ingest --kinds all --public-key ingest.key.pub`.
    #[arg(long, env = "LEDGER_INGEST_KEY")]
    ingest_key: Option<PathBuf>,
    /// File holding the GitHub webhook secret (enables `POST /webhooks/github`).
    #[arg(long, env = "LEDGER_GITHUB_SECRET_FILE")]
    github_secret_file: Option<PathBuf>,
    /// The log key (PKCS#8 PEM, 0600) that signs checkpoints served by `GetCheckpoint`: the
    /// key registered as the log key (`init` writes it to `<db>/keys/log.key`, the default when
    /// that file exists), or the admin key on a ledger with no log key. Any other key is
    /// refused at start.
    #[arg(long, env = "LEDGER_CHECKPOINT_KEY")]
    checkpoint_key: Option<PathBuf>,
    /// Origin line of the checkpoints. Default: `provenance-ledger/<genesis entry prefix>`.
    #[arg(long, env = "LEDGER_ORIGIN")]
    origin: Option<String>,
    /// A builder whose attestations count as evidence in `why` (an id, or a prefix ending in
    /// `/`); repeat for several. Default: the SLSA GitHub generators, GitHub-hosted runners and
    /// Google Cloud Build. A `Why` request may name its own list.
    #[arg(long = "trusted-builder", env = "LEDGER_TRUSTED_BUILDERS", value_delimiter = ',')]
    trusted_builders: Vec<String>,
    /// File holding the GitLab secret token (enables `POST /webhooks/gitlab`).
    #[arg(long, env = "LEDGER_GITLAB_TOKEN_FILE")]
    gitlab_token_file: Option<PathBuf>,
    /// File holding the PagerDuty v3 signing secret (enables `POST /webhooks/pagerduty`).
    #[arg(long, env = "LEDGER_PAGERDUTY_SECRET_FILE")]
    pagerduty_secret_file: Option<PathBuf>,
}

/// Reads a secret file, trimming a trailing newline; refuses an empty one.
fn read_secret(p: &std::path::Path) -> Result<Vec<u8>> {
    let t = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let t = t.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(!t.is_empty(), "{} is empty", p.display());
    Ok(t.as_bytes().to_vec())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight appends");
}

async fn run(args: Args) -> Result<()> {
    // Bound first: on a shared store, this server's address is its name as the writer.
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (store, at) = match &args.store {
        Some(url) if ledger_store::store::is_postgres(url) => {
            let advertise = args.advertise.clone().unwrap_or_else(|| format!("http://{addr}"));
            let holder = format!("{advertise} (ledgerd pid {})", std::process::id());
            let store = DiskStore::open_url_as(url, Claim::Explicit, &holder)?;
            let at = store.path().display().to_string();
            (store, at)
        }
        Some(other) => anyhow::bail!("--store `{other}`: expected a postgres:// URL (an embedded store is --db DIR)"),
        None => (DiskStore::open(&args.db)?, args.db.display().to_string()),
    };
    let ledger =
        Arc::new(Ledger::open(store, Arc::new(SystemClock)).with_context(|| format!("opening the ledger at {at}"))?);
    if ledger.store().is_shared() {
        if ledger_server::lease::claim_at_start(&ledger, CLAIM_AT_START)? {
            tracing::info!("holding the writer lease: appending");
        } else {
            let writer = match ledger.store().role() {
                Role::Standby { writer } => writer.unwrap_or_default(),
                Role::Writer => String::new(),
            };
            tracing::info!(%writer, "another ledgerd holds the writer lease: serving reads as a standby");
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c).with_context(|| format!("reading {}", c.display()))?,
            std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
        )),
        _ => None,
    };
    let read_token = match &args.read_token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?.trim().to_string();
            anyhow::ensure!(!t.is_empty(), "{} is empty", p.display());
            Some(t)
        }
        None => None,
    };
    let webhooks = match &args.webhook_listen {
        Some(addr) => {
            let key_path =
                args.ingest_key.as_ref().ok_or_else(|| anyhow::anyhow!("--webhook-listen needs --ingest-key"))?;
            let ingest_key = ledger_store::keyfile::read_private(key_path)?;
            let github_secret = args.github_secret_file.as_deref().map(read_secret).transpose()?;
            let gitlab_token = args.gitlab_token_file.as_deref().map(read_secret).transpose()?;
            let pagerduty_secret = args.pagerduty_secret_file.as_deref().map(read_secret).transpose()?;
            anyhow::ensure!(
                github_secret.is_some() || gitlab_token.is_some() || pagerduty_secret.is_some(),
                "--webhook-listen needs --github-secret-file, --gitlab-token-file or --pagerduty-secret-file"
            );
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            Some((
                l,
                ledger_server::webhook::WebhookConfig { ingest_key, github_secret, gitlab_token, pagerduty_secret },
            ))
        }
        None => None,
    };
    let default_log_key = args.db.join("keys").join("log.key");
    let checkpoint_key = args.checkpoint_key.clone().or_else(|| default_log_key.exists().then_some(default_log_key));
    let checkpoints = match &checkpoint_key {
        Some(p) => {
            let key = ledger_store::keyfile::read_private(p)?;
            let origin = match &args.origin {
                Some(o) => o.clone(),
                None => {
                    let genesis =
                        ledger.get(ledger_core::types::Seq(0))?.ok_or_else(|| anyhow::anyhow!("no genesis entry"))?;
                    format!("provenance-ledger/{}", &genesis.hash.to_hex()[..16])
                }
            };
            // Refuse a key that does not sign this ledger's checkpoints now, not at the first
            // GetCheckpoint.
            ledger.signed_checkpoint(&origin, &key).with_context(|| format!("--checkpoint-key {}", p.display()))?;
            Some(ledger_server::service::CheckpointSigner { origin, key })
        }
        None => None,
    };
    let (entries, head) = ledger.head();
    tracing::info!(%addr, entries, head = %head, tls = tls.is_some(), "ledgerd serving");
    println!("listening on {addr}");
    if let Some((l, _)) = &webhooks {
        println!("webhooks on {}", l.local_addr()?);
    }
    let linger = Some(std::time::Duration::from_micros(args.linger_us));
    let trust = (!args.trusted_builders.is_empty()).then(|| Trust { builders: args.trusted_builders.clone() });
    let opts = ServeOptions { tls, read_token, linger, checkpoints, webhooks, trust };
    serve(listener, ledger, opts, shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
