//! `ledger ingest …`: the sources of records and their arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::SignerArgs;

#[derive(Subcommand, Debug)]
pub enum IngestCommand {
    /// Read a git repository's first-parent history: pull requests (merge and squash
    /// commits), the commits each brought in, trailers, signature kinds, and AI-assistance
    /// trailers. Re-running appends nothing new.
    Git {
        /// Path of the repository (a work tree or a bare repository).
        path: PathBuf,
        /// Repository name `owner/name`. Default: from the `origin` remote, else
        /// `local/<directory name>`.
        #[arg(long)]
        repo: Option<String>,
        /// The branch or revision whose first-parent line is read.
        #[arg(long, default_value = "HEAD")]
        rev: String,
        #[command(flatten)]
        signer: SignerArgs,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Read GitHub webhook deliveries saved as files (pull_request, pull_request_review,
    /// check_run, check_suite, workflow_run, workflow_job, status, deployment,
    /// deployment_status, issues labelled as incidents, direct pushes to the default branch). Other events and actions are
    /// skipped and counted. Re-ingesting a delivery appends nothing.
    Github {
        /// The event name (`X-GitHub-Event`). Default: from `<file stem>-header.txt` beside
        /// each file, as captured deliveries keep their headers.
        #[arg(long)]
        event: Option<String>,
        /// Payload files (JSON bodies).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Backfill from the GitHub REST API: merged pull requests (with their files and the AI
    /// trailers of their commits), their reviews, the check runs and commit statuses at their
    /// head and landed commits, and
    /// deployments with their statuses, mapped as the webhook deliveries are. Facts already in
    /// the ledger (from a webhook or an earlier run) are not recorded again (docs/INGEST.md).
    GithubApi(GithubApiArgs),
    /// Backfill from the GitLab REST API (v4): merged merge requests (files, commits' AI
    /// trailers, approvals bound to the head commit they were given at, pipelines and jobs at
    /// the head and landed commits) and deployments, mapped as the webhook deliveries are.
    /// Facts already in the ledger (from a webhook or an earlier run) are not recorded again
    /// (docs/INGEST.md).
    GitlabApi(GitlabApiArgs),
    /// Read GitLab webhook deliveries saved as files (merge_request, pipeline, build (job)
    /// and deployment events; merge request approvals become reviews). Other events, notes
    /// and unfinished pipelines and jobs are skipped and counted. Re-ingesting a delivery
    /// appends nothing.
    Gitlab {
        /// The event name: GitLab's `object_kind` (`merge_request`, `pipeline`, `build`…) or
        /// the `X-Gitlab-Event` header value (`Merge Request Hook`). Default: each payload's
        /// `object_kind`; when given, it must agree with it.
        #[arg(long)]
        event: Option<String>,
        /// Payload files (JSON bodies).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Read attestations: in-toto Statements, DSSE envelopes, `.intoto.jsonl`, Sigstore
    /// bundles (v0.1–v0.3) with SLSA Provenance v0.2/v1 or SLSA VSA predicates. Each attested
    /// subject digest becomes evidence at the source commit the attestation names.
    Attestation {
        /// Attestation files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Public key (SPKI PEM, ECDSA P-256 or Ed25519) the DSSE signatures must verify with;
        /// a signature that does not is an error. Without it, signatures are recorded as not
        /// verified.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Bind the evidence to this commit when the attestation names none
        /// (`git:owner/repo@<sha>`).
        #[arg(long)]
        commit: Option<String>,
        /// Signer key of the evidence records (here `--key` names the attestation key).
        /// Default: `<db>/keys/local.key`.
        #[arg(long, env = "LEDGER_KEY")]
        signer_key: Option<PathBuf>,
    },
    /// Read incident webhooks (PagerDuty v3 incident events, Opsgenie alerts): triggered or
    /// created incidents open one, resolved or closed ones resolve it; other events are
    /// skipped. Causes: `--caused-by` subjects and explicit references in the payload; without
    /// any, the latest successful deployment of the incident's service within a window before
    /// it opened, recorded as an inferred cause with the reason (docs/AUDIT.md).
    Incident {
        /// `pagerduty` or `opsgenie`.
        #[arg(long)]
        system: String,
        /// Payload files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A deployment (or change) that caused it, e.g. `deploy:api/production/42`. Repeatable.
        #[arg(long)]
        caused_by: Vec<String>,
        /// The causes were inferred from timing alone, not from an explicit reference.
        #[arg(long, requires = "caused_by")]
        inferred: bool,
        /// Do not infer a cause from service and time.
        #[arg(long, conflicts_with_all = ["infer_window", "infer_environment"])]
        no_infer: bool,
        /// How long before the incident a deployment counts as its inferred cause, e.g. `24h`.
        #[arg(long, default_value = "24h")]
        infer_window: String,
        /// The environment of the deployments an inferred cause is chosen from.
        #[arg(long, default_value = "production")]
        infer_environment: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Read an `.ai/provenance.json` file (tool, model, session_id, prompt_summary, reviewer,
    /// risk_area, verification) and append a `session` record linked to a change.
    Provenance {
        /// The provenance file.
        file: PathBuf,
        /// The change it belongs to: `pr:owner/repo#N` or `git:owner/repo@<sha>`.
        #[arg(long)]
        change: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
}

/// What both API backfills take besides the forge, the repository and the token.
#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// Changes merged and deployments created at or after this time (RFC 3339 or a date).
    /// Default: everything the API lists.
    #[arg(long)]
    pub since: Option<String>,
    /// Changes merged and deployments created before this time (RFC 3339 or a date, whose
    /// whole day is included).
    #[arg(long)]
    pub until: Option<String>,
    /// Where responses are kept with their ETags, so that a re-run asks with `If-None-Match`
    /// and an unchanged resource costs no rate limit. Default: `<db>/api-cache` (or
    /// `.ledger-api-cache` with `--server`).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// `ledger ingest github-api`.
#[derive(Args, Debug)]
pub struct GithubApiArgs {
    /// The repository, `OWNER/NAME`.
    #[arg(long)]
    pub repo: String,
    /// The API's base URL (GitHub Enterprise: `https://HOST/api/v3`).
    #[arg(long, default_value = "https://api.github.com")]
    pub api_url: String,
    /// A file holding the API token. Default: the `GITHUB_TOKEN` environment variable; without
    /// either, requests are anonymous (60 an hour, public repositories only).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub backfill: BackfillArgs,
}

/// `ledger ingest gitlab-api`.
#[derive(Args, Debug)]
pub struct GitlabApiArgs {
    /// The project, `GROUP/NAME` (subgroups included: `GROUP/SUB/NAME`).
    #[arg(long)]
    pub project: String,
    /// The API's base URL (self-managed: `https://HOST/api/v4`; `/api/v4` is added when
    /// missing).
    #[arg(long, default_value = "https://gitlab.com/api/v4")]
    pub api_url: String,
    /// A file holding the API token (scope `read_api`). Default: the `GITLAB_TOKEN`
    /// environment variable; without either, requests are anonymous (public projects only).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub backfill: BackfillArgs,
}
