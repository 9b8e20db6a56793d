//! The command line: every command, argument and flag, with its help text (clap derive).
//! Nothing here runs a command; `commands` does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod governance;
mod ingest;

pub use governance::{
    ControlsCommand, DrawArgs, ExceptionCommand, MetricsArgs, ModelCommand, PeriodArgs, PolicyCommand, ReportCommand,
};
pub use ingest::{BackfillArgs, GithubApiArgs, GitlabApiArgs, IngestCommand};

/// Provenance Ledger: an append-only, tamper-evident ledger of software change that answers
/// "who approved this change, and what evidence proved it was safe?".
#[derive(Parser, Debug)]
#[command(name = "ledger", version, max_term_width = 100)]
pub struct Cli {
    /// Ledger directory (the embedded store).
    #[arg(long, global = true, env = "LEDGER_DB", default_value = "ledger-data", help_heading = "Global options")]
    pub db: PathBuf,
    /// The ledger in a PostgreSQL database instead of `--db`'s embedded store
    /// (`postgres://USER@HOST:PORT/DB`); key files stay in `--db`.
    #[arg(long, global = true, env = "LEDGER_STORE", help_heading = "Global options")]
    pub store: Option<String>,
    /// A `ledgerd` server (`http://127.0.0.1:7700`, or `https://…`): run the command through
    /// it instead of on the local `--db`. Key files are still read locally.
    #[arg(long, global = true, env = "LEDGER_SERVER", help_heading = "Global options")]
    pub server: Option<String>,
    /// CA certificate (PEM) to trust for an `https://` server.
    #[arg(long, global = true, env = "LEDGER_CA_CERT", help_heading = "Global options")]
    pub ca_cert: Option<PathBuf>,
    /// File holding the bearer token for a server's read calls.
    #[arg(long, global = true, env = "LEDGER_READ_TOKEN_FILE", help_heading = "Global options")]
    pub read_token_file: Option<PathBuf>,
    /// Log filter for diagnostics on stderr, e.g. `info` or `ledger_store=debug`.
    #[arg(long, global = true, env = "LEDGER_LOG", default_value = "warn", help_heading = "Global options")]
    pub log_filter: String,
    /// Print the result as JSON (stable field names; `log` prints one object per line).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that sign records.
#[derive(Args, Debug, Clone)]
pub struct SignerArgs {
    /// Signer key (PKCS#8 PEM, mode 0600). Default: `<db>/keys/local.key`, created by `init`.
    #[arg(long, env = "LEDGER_KEY")]
    pub key: Option<PathBuf>,
}

/// Options shared by commands that administer keys.
#[derive(Args, Debug, Clone)]
pub struct AdminArgs {
    /// Admin key (PKCS#8 PEM, mode 0600). Default: `<db>/keys/admin.key`, created by `init`.
    #[arg(long, env = "LEDGER_ADMIN_KEY")]
    pub admin_key: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new ledger: an admin key, a genesis entry, a log key that signs checkpoints,
    /// and a local signer key.
    Init {
        /// Use this admin key file instead of generating `<db>/keys/admin.key`.
        #[arg(long)]
        admin_key: Option<PathBuf>,
        /// Do not create and register the local signer key `<db>/keys/local.key`.
        #[arg(long)]
        no_local_key: bool,
        /// Storage engine: `fjall` (one fdatasync per append batch; the default) or `sled`.
        /// Later commands and `ledgerd` detect it from the directory.
        #[arg(long, default_value = "fjall", value_parser = clap::value_parser!(ledger_store::store::Backend))]
        backend: ledger_store::store::Backend,
    },
    /// Generate an Ed25519 key pair: FILE (PKCS#8 PEM, mode 0600) and FILE.pub (SPKI PEM).
    Keygen {
        /// Where to write the private key. It must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register, rotate, revoke and list signer keys and the log key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign and append one record from a JSON file.
    Append {
        /// Record kind: session, model, change, review, evidence, exception, merge,
        /// deployment, incident, policy, gate.
        #[arg(long)]
        kind: String,
        /// JSON file with the body fields plus `actor` and optional `time` and `links`
        /// (`-` reads standard input). See docs/FORMAT.md.
        #[arg(long)]
        body: PathBuf,
        #[command(flatten)]
        signer: SignerArgs,
        /// Also prove the entry: get a C2SP tlog-proof@v1 against a checkpoint signed after the
        /// append, check it, and report it (with `--json`, as `tlog_proof`).
        #[arg(long)]
        prove: bool,
        /// Write the tlog-proof to this file (with `--prove`).
        #[arg(long, requires = "prove")]
        proof_out: Option<PathBuf>,
        /// Log key for `--prove` on a local ledger. Default: `<db>/keys/log.key` (made by `init`).
        #[arg(long, requires = "prove")]
        checkpoint_key: Option<PathBuf>,
    },
    /// Show one entry: `#<seq>`, or an entry hash or unique prefix (≥ 12 hex).
    Show {
        /// The entry.
        entry: String,
        /// Write the exact stored entry bytes (canonical CBOR) to standard output.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// List entries, oldest first.
    Log {
        /// Only this record kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only entries mentioning this subject (e.g. `pr:owner/repo#12`, a commit id).
        #[arg(long)]
        subject: Option<String>,
        /// Only entries integrated at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the latest).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Verify every entry: encoding, chain links, signatures and signer rights.
    /// Exit 0 intact, 1 tampered (naming the first bad seq), 2 error.
    Verify {
        /// Verify only what was appended since this signed checkpoint (`ledger checkpoint`,
        /// an audit pin): the stored tree must still hash to its root, then the new entries
        /// are checked as a full verify checks them, in time proportional to their number.
        /// A local ledger only (`--db` or `--store`).
        #[arg(long, value_name = "FILE")]
        from_checkpoint: Option<PathBuf>,
        /// The verifier key the checkpoint must be signed by (`ledger log-key`). Default: the
        /// ledger's log key or admin key, as registered.
        #[arg(long, env = "LEDGER_VERIFIER_KEY", requires = "from_checkpoint")]
        verifier_key: Option<String>,
    },
    /// Who approved this, and what evidence proved it was safe? SUBJECT is a commit id (full
    /// or ≥ 7 hex), `pr:owner/repo#N`, `git:owner/repo@sha`, `#<seq>` or `entry:<hash>`.
    Why {
        /// The subject.
        subject: String,
        /// A builder whose attestations count as evidence (an id, or a prefix ending in `/`);
        /// repeat for several. Default: the SLSA GitHub generators, GitHub-hosted runners and
        /// Google Cloud Build (through a server: the server's list).
        #[arg(long = "trusted-builder", env = "LEDGER_TRUSTED_BUILDERS", value_delimiter = ',')]
        trusted_builders: Vec<String>,
    },
    /// Append records derived from outside sources.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Print a signed C2SP checkpoint (origin, tree size, RFC 6962 root, BLAKE3 chain head)
    /// of the current tree. Auditors pin it to detect later rewrites and forks.
    Checkpoint {
        /// Origin line (the log's name). Default: `provenance-ledger/<genesis entry prefix>`.
        #[arg(long)]
        origin: Option<String>,
        /// The log key (PKCS#8 PEM, 0600). Default: `<db>/keys/log.key` (made by `init`).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print the RFC 6962 inclusion proof of an entry (`#seq` or hash prefix), checked before
    /// it is printed.
    Prove {
        /// The entry.
        entry: String,
        /// Tree size to prove against. Default: the current size.
        #[arg(long)]
        size: Option<u64>,
        /// `text`, `json`, or `tlog-proof` (C2SP tlog-proof@v1 with a fresh signed checkpoint).
        #[arg(long, value_enum, default_value = "text")]
        format: ProofFormat,
        /// Log key for `tlog-proof` on a local ledger. Default: `<db>/keys/log.key`.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print the log's verifier key (`<name>+<hex key id>+<base64(0x01 ‖ key)>`): what auditors
    /// pin to check checkpoints.
    LogKey {
        /// Log key (signs checkpoints) on a local ledger. Default: `<db>/keys/log.key`.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print the RFC 6962 consistency proof between two tree sizes.
    Consistency {
        /// The older tree size.
        old: u64,
        /// The newer tree size. Default: the current size.
        new: Option<u64>,
    },
    /// The auditor's check: verify the pinned checkpoint, fetch a fresh one, check that the
    /// tree extends the pin (consistency proof), and move the pin forward. The first run pins.
    /// Exit 0 consistent, 1 truncated/rewritten/forked (evidence kept), 2 error.
    Audit {
        /// The pin file (a signed checkpoint); created on first use.
        #[arg(long)]
        pin: PathBuf,
        /// The log's verifier key (`ledger log-key`): checkpoints must be signed by it.
        #[arg(long, env = "LEDGER_VERIFIER_KEY")]
        verifier_key: String,
        /// Log key (signs checkpoints) on a local ledger. Default: `<db>/keys/log.key`.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Write an offline-verifiable bundle (JSON Lines, streamed): the selected entries and every
    /// key entry, in runs each proven against one signed checkpoint, and a manifest signed by
    /// the log key that binds the selection and every line. `--all` and `--since/--until`
    /// bundles prove they hold every entry of their selection.
    Export {
        /// Export what `why SUBJECT` covers (changes, reviews, evidence, sessions, merges,
        /// deployments, incidents), plus gate decisions about them and policies.
        subject: Option<String>,
        /// Entries integrated at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long, conflicts_with_all = ["subject", "all"])]
        since: Option<String>,
        /// Entries integrated before this time.
        #[arg(long, conflicts_with_all = ["subject", "all"])]
        until: Option<String>,
        /// Every entry.
        #[arg(long, conflicts_with = "subject")]
        all: bool,
        /// Output file (written whole or not at all).
        #[arg(long)]
        out: PathBuf,
        /// Log key (signs checkpoints) on a local ledger. Default: `<db>/keys/log.key`.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Verify a bundle offline (no database, no server), as a stream in bounded memory. Exit 0
    /// intact, 1 for any integrity failure (tampered, incomplete, unsigned), 2 for a file that
    /// is no bundle or cannot be read.
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// The verifier key you trust for the log (`ledger log-key`); a bundle signed by a later
        /// log key is accepted through the hand-over it holds.
        #[arg(long)]
        log_key: String,
        /// `text` (a one-line verdict) or `json` (the verdict with every entry decoded: the
        /// readable form of the export).
        #[arg(long, value_enum, default_value = "text")]
        format: BundleFormat,
    },
    /// Verify a C2SP tlog-proof offline (`append --prove --proof-out`, `prove --format
    /// tlog-proof`): the checkpoint's signature and the inclusion proof of the entry it
    /// carries. Exit 0 valid, 1 invalid, 2 unreadable.
    VerifyProof {
        /// The proof file.
        file: PathBuf,
        /// The log's verifier key (`ledger log-key`).
        #[arg(long)]
        log_key: String,
        /// The entry's exact bytes (`ledger show ENTRY --raw`), for a proof without an `extra`
        /// line.
        #[arg(long)]
        entry: Option<PathBuf>,
    },
    /// The risk-tier policy (docs/POLICY.md): check a file, publish it, show the one in
    /// force, import a CODEOWNERS file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Evaluates the risk-tier policy for a change, commit or deployment: each rule of the
    /// change's tier as pass, fail or waived, with the entries of its evidence. Exit 0 allow,
    /// 1 deny, 2 error.
    Gate {
        /// `pr:<owner>/<repo>#<n>`, `git:<sha>` (or an abbreviation), `deploy:<service>/<env>/<id>`.
        #[arg(required_unless_present = "recheck")]
        subject: Option<String>,
        /// The stage gated: `merge` or `deploy`.
        #[arg(long, required_unless_present = "recheck")]
        stage: Option<String>,
        /// A policy file to use instead of the policy in force (with --record it must be
        /// published).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Append the decision as a `gate` record (inputs up to the tree size, every rule's
        /// result), signed with --key, so that `--recheck` can reproduce it.
        #[arg(long)]
        record: bool,
        /// Re-evaluate the decision recorded at ENTRY (`#<seq>` or an entry hash) from the log
        /// alone, as of its tree size; exit 1 naming each rule that comes out differently.
        #[arg(long, value_name = "ENTRY", conflicts_with_all = ["subject", "stage", "policy", "record"])]
        recheck: Option<String>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Policy exceptions: explicit, scoped, time-bounded overrides with a named approver.
    #[command(subcommand)]
    Exception(ExceptionCommand),
    /// AI model approvals: which models may assist changes of which risk tiers.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Emits a DSSE-signed SLSA Source Verification Summary (in-toto Statement,
    /// `https://slsa.dev/verification_summary/v1`) for a change's landed commit: the SLSA
    /// Source level the recorded evidence supports and the policy's result.
    Vsa {
        /// The change, or its landed commit.
        subject: String,
        /// The Ed25519 key (PKCS#8 PEM) that signs the envelope.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the envelope (JSON); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The verifier id named in the summary.
        #[arg(long, default_value = "https://provenance-ledger.dev/ledger")]
        verifier: String,
        /// The forge's base URL, for the commit and repository URIs.
        #[arg(long, default_value = "https://github.com")]
        forge: String,
    },
    /// The auditor's population: every successful deployment to an environment in a period,
    /// each with the change(s) it shipped, and completeness findings (docs/AUDIT.md).
    Population {
        #[command(flatten)]
        scope: PeriodArgs,
        /// CSV (one row per deployment; findings on standard error).
        #[arg(long)]
        csv: bool,
    },
    /// A reproducible random sample of the population (the algorithm depends only on the seed
    /// and the population), each item with its full `why` evidence (docs/AUDIT.md).
    Sample {
        #[command(flatten)]
        scope: PeriodArgs,
        #[command(flatten)]
        draw: DrawArgs,
        /// Also write one offline-verifiable export bundle of every entry the sample relies on
        /// (`ledger verify-bundle FILE --log-key …`).
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Change-management control tests over a period's population (docs/AUDIT.md).
    #[command(subcommand)]
    Controls(ControlsCommand),
    /// DORA and AI-era metrics from the log (docs/METRICS.md): every figure a distribution
    /// (count, median, p90) or a rate with its numerator and denominator.
    Metrics {
        #[command(flatten)]
        window: MetricsArgs,
    },
    /// Self-contained HTML reports (styles and SVG charts inline, no network requests): the
    /// auditor's workpaper, the metrics report, a change's chain (docs/AUDIT.md).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Load generators for a `ledgerd` server, and a generated history for the period
    /// commands' benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Append signed 1 KiB `evidence` records from concurrent clients and report durable
    /// appends/s and latency percentiles. The signer key must be allowed `evidence`.
    Append {
        /// Concurrent clients (one HTTP/2 connection each).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Use `AppendStream` instead of unary `Append`.
        #[arg(long)]
        stream: bool,
        /// Records in flight per streaming client. Deeper windows add queueing latency, not
        /// throughput, once the server is saturated.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Records to pre-sign (default: 40,000 per second of duration).
        #[arg(long)]
        records: Option<usize>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// The common alternative, for comparison (docs/BENCHMARKS.md): a plain PostgreSQL audit
    /// table whose `BEFORE INSERT` trigger takes an advisory lock and chains
    /// `sha256(prev ‖ body)`, fed the same signed 1 KiB records (Ed25519, signed client-side)
    /// by concurrent clients, one row per transaction. Creates (and replaces) the table
    /// `bench_audit` in DATABASE.
    AuditTable {
        /// The database (`postgres://…`).
        #[arg(long)]
        database: String,
        /// Concurrent clients (one connection each).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Records to pre-sign (default: 20,000 per second of duration).
        #[arg(long)]
        records: Option<usize>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Write a realistic change history into the local ledger (changes, AI sessions, reviews,
    /// checks, merges, deployments, incidents, rollbacks; about 7.2 entries per change) for
    /// measuring the audit commands at scale. Deterministic: two runs write the same records.
    History {
        /// Changes to write.
        #[arg(long)]
        changes: u64,
        /// Days the history spans, ending at --until.
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// The end of the history (a date or an RFC 3339 time).
        #[arg(long, default_value = "2026-07-01")]
        until: String,
        /// The number of the first change: a later run with `--first` at the earlier run's
        /// `--changes` continues the history with new pull requests instead of repeating them.
        #[arg(long, default_value_t = 0)]
        first: u64,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Read latency through a `ledgerd` server, one request at a time: `why` of random changes
    /// of a `bench history` ledger, then inclusion proofs of random entries (each checked).
    Query {
        /// The changes the ledger's `bench history` wrote (the subjects asked about).
        #[arg(long)]
        changes: u64,
        /// Requests of each kind.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Register a signer key for some record kinds.
    Add {
        /// Name, e.g. `ci-github`.
        #[arg(long)]
        name: String,
        /// Public key: 64 hex characters, or an SPKI PEM file (as written by `keygen`).
        #[arg(long)]
        public_key: String,
        /// Kinds the key may append, comma-separated, or `all` (every kind but `key`).
        #[arg(long, value_delimiter = ',', required_unless_present = "log", conflicts_with = "log")]
        kinds: Vec<String>,
        /// Register the log key: it signs checkpoints and appends nothing. At most one is
        /// active; `init` registers one (`<db>/keys/log.key`). Replace it with `key rotate`.
        #[arg(long)]
        log: bool,
        /// Start of validity (RFC 3339 or YYYY-MM-DD). Default: now.
        #[arg(long)]
        not_before: Option<String>,
        /// End of validity (exclusive).
        #[arg(long)]
        not_after: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Replace a key with a new one of the same name, kinds and role; entries signed by the
    /// old key keep verifying, and the old key can append (or sign checkpoints) no more.
    /// Rotating the log key records a hand-over signed by the old log key, so auditors pinned
    /// to it trust the new one (see docs/KEYS.md).
    Rotate {
        /// Name or key id (prefix) of the key to replace.
        key: String,
        /// The new public key: 64 hex characters or an SPKI PEM file.
        #[arg(long)]
        public_key: String,
        /// End of validity of the new key.
        #[arg(long)]
        not_after: Option<String>,
        /// For the log key: the old log key's private key file, which signs the hand-over.
        /// Default: `<db>/keys/log.key`.
        #[arg(long)]
        handover_key: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a key: it can append nothing more.
    Revoke {
        /// Name or key id (prefix) of the key.
        key: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List every key ever registered, with its status.
    List,
}

/// How `prove` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProofFormat {
    /// Readable: index and base64 proof hashes.
    Text,
    /// JSON with hex hashes (the same as `--json`).
    Json,
    /// C2SP `tlog-proof@v1`: header, index, proof hashes, blank line, signed checkpoint.
    TlogProof,
}

/// How `verify-bundle` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BundleFormat {
    /// A one-line verdict.
    Text,
    /// The verdict, the selection and every entry decoded, as JSON (the same as `--json`).
    Json,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
