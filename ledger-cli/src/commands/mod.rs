//! The user-facing commands, one module per group, and [`run`], which dispatches the parsed
//! command line to them. Ingests live in `crate::ingest`, the load generator in `crate::bench`.
//!
//! | module | commands |
//! |---|---|
//! | [`audit`] | `population`, `sample`, `metrics` (and the period's records) |
//! | [`controls`] | `controls test` |
//! | [`admin`] | `init`, `keygen`, `key add|rotate|revoke|list` |
//! | [`records`] | `append`, `show`, `log` |
//! | [`query`] | `verify`, `why` |
//! | [`transparency`] | `checkpoint`, `prove`, `log-key`, `consistency`, `audit` |
//! | [`bundle`] | `export`, `verify-bundle`, `verify-proof` |
//! | [`governance`] | `policy check|publish|show|codeowners`, `exception grant|list`, `model approve|list` |
//! | [`gate`] | `gate` (evaluate, `--record`, `--recheck`) |
//! | [`vsa`] | `vsa` (SLSA Source verification summary) |

pub mod admin;
pub mod audit;
pub mod bundle;
pub mod controls;
pub mod gate;
pub mod governance;
pub mod query;
pub mod records;
pub mod report;
pub mod transparency;
pub mod vsa;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, IngestCommand, SignerArgs};
use crate::ctx::{parse_time, Ctx};
use ledger_core::bundle::Selection;

/// Runs the parsed command line.
///
/// # Errors
/// The command's error (exit 2, or 1 for tampering; see `main`).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx::new(&cli)?;
    match cli.command {
        Command::Init { admin_key, no_local_key, backend } => admin::init(&ctx, admin_key, no_local_key, backend),
        Command::Keygen { out } => admin::keygen(&ctx, &out),
        Command::Key(k) => admin::key(&ctx, k),
        Command::Append { kind, body, signer, prove, proof_out, checkpoint_key } => {
            let prove = prove.then_some(records::ProveArgs { out: proof_out, key: checkpoint_key });
            records::append(&ctx, &kind, &body, &signer, prove)
        }
        Command::Show { entry, raw } => records::show(&ctx, &entry, raw),
        Command::Log { kind, subject, since, limit } => records::log(&ctx, kind, subject, since, limit),
        Command::Verify { from_checkpoint: None, .. } => query::verify(&ctx),
        Command::Verify { from_checkpoint: Some(file), verifier_key } => {
            query::verify_since(&ctx, &file, verifier_key.as_deref())
        }
        Command::Why { subject, trusted_builders } => query::why(&ctx, &subject, &trusted_builders),
        Command::Ingest(i) => ingest(&ctx, i),
        Command::Checkpoint { origin, key } => transparency::checkpoint(&ctx, origin, key),
        Command::Prove { entry, size, format, key } => transparency::prove(&ctx, &entry, size, format, key),
        Command::LogKey { key } => transparency::log_key(&ctx, key),
        Command::Consistency { old, new } => transparency::consistency(&ctx, old, new),
        Command::Audit { pin, verifier_key, key } => transparency::audit(&ctx, &pin, &verifier_key, key),
        Command::Export { subject, since, until, all, out, key } => {
            let since = since.as_deref().map(parse_time).transpose()?;
            let until = until.as_deref().map(parse_time).transpose()?;
            let sel = match (subject, all) {
                (Some(subject), _) => Selection::Subject { subject },
                (None, true) => Selection::All,
                (None, false) if since.is_some() || until.is_some() => Selection::Time { since, until },
                (None, false) => anyhow::bail!("say what to export: a SUBJECT, --since/--until, or --all"),
            };
            bundle::export(&ctx, &sel, &out, key)
        }
        Command::VerifyBundle { file, log_key, format } => bundle::verify_bundle(&ctx, &file, &log_key, format),
        Command::VerifyProof { file, log_key, entry } => bundle::verify_proof(&ctx, &file, &log_key, entry.as_deref()),
        Command::Policy(p) => governance::policy(&ctx, p),
        Command::Exception(x) => governance::exception(&ctx, x),
        Command::Model(m) => governance::model(&ctx, m),
        Command::Gate { recheck: Some(entry), .. } => gate::recheck(&ctx, &entry),
        Command::Gate { subject, stage, policy, record, signer, recheck: None } => {
            let (Some(subject), Some(stage)) = (subject, stage) else {
                anyhow::bail!("give a SUBJECT and --stage merge|deploy, or --recheck ENTRY")
            };
            gate::gate(&ctx, &subject, &stage, policy.as_deref(), record, &signer)
        }
        Command::Vsa { subject, key, out, verifier, forge } => {
            vsa::vsa(&ctx, &subject, &key, out.as_deref(), &verifier, &forge)
        }
        Command::Population { scope, csv } => audit::population_cmd(&ctx, &scope, csv),
        Command::Sample { scope, draw, bundle } => {
            audit::sample_cmd(&ctx, &scope, draw.n, &draw.seed, bundle.as_deref())
        }
        Command::Controls(crate::cli::ControlsCommand::Test { scope, policy, within }) => {
            controls::controls_cmd(&ctx, &scope, policy.as_deref(), &within)
        }
        Command::Metrics { window } => audit::metrics_cmd(&ctx, &window),
        Command::Report(r) => report::report(&ctx, r),
        Command::Bench(b) => crate::bench::run(&ctx, b),
    }
}

/// `ledger ingest …`: each front end reads its input and hands the mapped records to
/// `crate::ingest`.
fn ingest(ctx: &Ctx, cmd: IngestCommand) -> Result<ExitCode> {
    use crate::ingest;
    match cmd {
        IngestCommand::Git { path, repo, rev, signer, quiet } => {
            ingest::git::run(ctx, &path, repo.as_deref(), &rev, &signer, quiet)
        }
        IngestCommand::Github { event, files, signer } => ingest::github::run(ctx, event.as_deref(), &files, &signer),
        IngestCommand::GithubApi(args) => ingest::github_api::run(ctx, &args),
        IngestCommand::GitlabApi(args) => ingest::gitlab_api::run(ctx, &args),
        IngestCommand::Gitlab { event, files, signer } => ingest::gitlab::run(ctx, event.as_deref(), &files, &signer),
        IngestCommand::Incident {
            system,
            files,
            caused_by,
            inferred,
            no_infer,
            infer_window,
            infer_environment,
            signer,
        } => {
            let infer = if no_infer {
                None
            } else {
                Some(ledger_audit::infer::InferRule {
                    environment: infer_environment,
                    window_ms: controls::parse_within(&infer_window)?,
                })
            };
            ingest::incident::run(ctx, &system, &files, &caused_by, inferred, infer.as_ref(), &signer)
        }
        IngestCommand::Attestation { files, key, commit, signer_key } => {
            let signer = SignerArgs { key: signer_key };
            ingest::attestation::run(ctx, &files, key.as_deref(), commit.as_deref(), &signer)
        }
        IngestCommand::Provenance { file, change, signer } => ingest::provenance::run(ctx, &file, &change, &signer),
    }
}
