//! Governance as records: `policy check|publish|show|codeowners`, `exception grant|list`,
//! `model approve|list`. The gate itself is in `gate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_audit::policy::{tier_from_str, tier_name, CodeownersFile, Policy, RULE_IDS};
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{self, document_digest, Body, Exception, Kind, Model, Record};
use ledger_core::types::{Identity, RepoName, Timestamp, Token};
use serde::Serialize;

use crate::backend::LogArgs;
use crate::cli::{ExceptionCommand, ModelCommand, PolicyCommand, SignerArgs};
use crate::ctx::{parse_time, read_input, Ctx};
use crate::output::{self, json_out, line};

/// Largest policy or CODEOWNERS file read: records are limited to 64 KiB.
const MAX_DOCUMENT: u64 = 60 * 1024;

/// `ledger policy …`.
pub fn policy(ctx: &Ctx, cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { file } => check(ctx, &file),
        PolicyCommand::Publish { file, actor, signer } => publish(ctx, &file, &actor, &signer),
        PolicyCommand::Show => show(ctx),
        PolicyCommand::Codeowners { file, repo, actor, signer } => codeowners(ctx, &file, &repo, &actor, &signer),
    }
}

/// Reads a UTF-8 document of at most [`MAX_DOCUMENT`] bytes.
pub fn read_document(file: &Path) -> Result<String> {
    let bytes = read_input(file, MAX_DOCUMENT, "policy and CODEOWNERS documents are kept in one record (64 KiB)")?;
    String::from_utf8(bytes).map_err(|_| anyhow!("{} is not UTF-8 text", file.display()))
}

#[derive(Serialize)]
struct CheckOut<'a> {
    file: String,
    ok: bool,
    errors: &'a [ledger_audit::policy::PolicyError],
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Policy>,
}

/// `ledger policy check FILE`: exit 0 when valid, 2 with every error otherwise.
fn check(ctx: &Ctx, file: &Path) -> Result<ExitCode> {
    let text = read_document(file)?;
    let (errors, policy) = match Policy::parse(&text) {
        Ok(p) => (vec![], Some(p)),
        Err(e) => (e, None),
    };
    if ctx.json {
        json_out(&CheckOut {
            file: file.display().to_string(),
            ok: errors.is_empty(),
            errors: &errors,
            policy: policy.as_ref(),
        })?;
    } else if let Some(p) = &policy {
        line(format!(
            "{}: policy `{}` version {} is valid ({} tiers, {} classification rules, digest {})",
            file.display(),
            p.name,
            p.version,
            p.tiers.len(),
            p.classify.len(),
            document_digest(&text)
        ))?;
    } else {
        for e in &errors {
            eprintln!("{}:{}:{}: {}", file.display(), e.line, e.column, e.message);
        }
        eprintln!("{}: {} error(s)", file.display(), errors.len());
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn record(ctx: &Ctx, actor: &str, body: Body) -> Result<Record> {
    let actor = Identity::new(actor).map_err(|e| anyhow!("--actor: {e}"))?;
    Ok(Record { v: FORMAT_VERSION, time: ctx.now(), actor, links: vec![], body })
}

/// `ledger policy publish FILE`.
fn publish(ctx: &Ctx, file: &Path, actor: &str, signer: &SignerArgs) -> Result<ExitCode> {
    let text = read_document(file)?;
    let policy = Policy::parse(&text).map_err(|errs| {
        let all: Vec<String> = errs.iter().map(|e| format!("{}:{e}", file.display())).collect();
        anyhow!("{} has {} error(s) (nothing published):\n{}", file.display(), errs.len(), all.join("\n"))
    })?;
    let body = Body::Policy(record::Policy {
        name: Token::new(policy.name.clone())?,
        version: policy.version,
        digest: Some(document_digest(&text)),
        document: text,
    });
    let key = ctx.signer_key(signer)?;
    let receipt = ctx.backend()?.sign_and_append(&record(ctx, actor, body)?, &key)?;
    output::receipt(&receipt, ctx.json)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct ShowOut {
    published: bool,
    entry: Option<u64>,
    name: String,
    version: u64,
    digest: String,
    time: Option<Timestamp>,
    document: String,
}

/// `ledger policy show`.
fn show(ctx: &Ctx) -> Result<ExitCode> {
    let mut ledger = ctx.backend()?;
    let latest = ledger.log(&LogArgs { kind: Some(Kind::Policy), limit: Some(1), ..Default::default() })?.pop();
    let out = match latest {
        Some(v) => {
            let Body::Policy(p) = v.record.body else { bail!("entry #{} is not a policy record", v.seq.0) };
            ShowOut {
                published: true,
                entry: Some(v.seq.0),
                name: p.name.to_string(),
                version: p.version,
                digest: document_digest(&p.document).to_string(),
                time: Some(v.record.time),
                document: p.document,
            }
        }
        None => {
            let p = Policy::default_policy();
            ShowOut {
                published: false,
                entry: None,
                name: p.name,
                version: p.version,
                digest: document_digest(ledger_audit::policy::DEFAULT_POLICY).to_string(),
                time: None,
                document: ledger_audit::policy::DEFAULT_POLICY.to_string(),
            }
        }
    };
    if ctx.json {
        json_out(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    match out.entry {
        // Comment lines, so that the output is itself a policy file.
        Some(seq) => line(format!(
            "# policy `{}` version {} ({}), published at entry #{seq}, {}",
            out.name,
            out.version,
            out.digest,
            out.time.map(|t| t.to_rfc3339()).unwrap_or_default()
        ))?,
        None => line(format!(
            "# no policy published: gates use the built-in default policy `{}` version {} ({})",
            out.name, out.version, out.digest
        ))?,
    }
    line("#")?;
    output::out(&out.document)?;
    Ok(ExitCode::SUCCESS)
}

/// `ledger policy codeowners FILE --repo R`.
fn codeowners(ctx: &Ctx, file: &Path, repo: &str, actor: &str, signer: &SignerArgs) -> Result<ExitCode> {
    let text = read_document(file)?;
    if let Err(errs) = CodeownersFile::parse(&text) {
        let all: Vec<String> = errs.iter().map(|(l, m)| format!("{}:{l}: {m}", file.display())).collect();
        bail!("{} has {} error(s) (nothing imported):\n{}", file.display(), errs.len(), all.join("\n"));
    }
    let repo = RepoName::new(repo).map_err(|e| anyhow!("--repo: {e}"))?;
    let body = Body::Codeowners(record::Codeowners { repo, digest: document_digest(&text), document: text });
    let key = ctx.signer_key(signer)?;
    let receipt = ctx.backend()?.sign_and_append(&record(ctx, actor, body)?, &key)?;
    output::receipt(&receipt, ctx.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `ledger exception …`.
pub fn exception(ctx: &Ctx, cmd: ExceptionCommand) -> Result<ExitCode> {
    match cmd {
        ExceptionCommand::Grant { rule, scope, reason, approver, not_after, signer } => {
            let rule = match rule.as_str() {
                "all" | "*" => None,
                r if RULE_IDS.contains(&r) => Some(r.to_string()),
                other => bail!("--rule: unknown rule `{other}`; expected `all` or one of: {}", RULE_IDS.join(", ")),
            };
            let not_after = parse_time(&not_after).context("--not-after")?;
            if not_after <= ctx.now() {
                bail!("--not-after {} is already past: the exception would never apply", not_after.to_rfc3339());
            }
            if reason.trim().is_empty() {
                bail!("--reason must say why the exception is granted");
            }
            let approver_id = Identity::new(&approver).map_err(|e| anyhow!("--approver: {e}"))?;
            let body = Body::Exception(Exception {
                approver: approver_id,
                reason,
                scope: scope.parse().with_context(|| format!("--scope `{scope}`"))?,
                rule,
                not_after,
            });
            let key = ctx.signer_key(&signer)?;
            let receipt = ctx.backend()?.sign_and_append(&record(ctx, &approver, body)?, &key)?;
            output::receipt(&receipt, ctx.json)?;
            Ok(ExitCode::SUCCESS)
        }
        ExceptionCommand::List { expired } => list_exceptions(ctx, expired),
    }
}

#[derive(Serialize)]
struct ExceptionOut {
    entry: u64,
    rule: String,
    scope: String,
    approver: String,
    reason: String,
    not_after: Timestamp,
    expired: bool,
    status: &'static str,
}

fn list_exceptions(ctx: &Ctx, only_expired: bool) -> Result<ExitCode> {
    let now = ctx.now();
    let mut rows = vec![];
    for v in ctx.backend()?.log(&LogArgs { kind: Some(Kind::Exception), ..Default::default() })? {
        let Body::Exception(x) = v.record.body else { continue };
        let expired = x.not_after <= now;
        if only_expired && !expired {
            continue;
        }
        rows.push(ExceptionOut {
            entry: v.seq.0,
            rule: x.rule.unwrap_or_else(|| "all".into()),
            scope: x.scope.to_string(),
            approver: x.approver.to_string(),
            reason: x.reason,
            not_after: x.not_after,
            expired,
            status: if expired { "expired, review due" } else { "active" },
        });
    }
    if ctx.json {
        json_out(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        line(if only_expired { "no expired exceptions" } else { "no exceptions" })?;
    }
    for r in &rows {
        line(format!(
            "#{:<6} {:<20} {:<28} {:<26} until {}  {}\n        {}",
            r.entry,
            r.status,
            output::truncate(&r.scope, 28),
            output::truncate(&r.approver, 26),
            r.not_after.to_rfc3339(),
            r.rule,
            r.reason
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger model …`.
pub fn model(ctx: &Ctx, cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::Approve { tool, model, tiers, not_after, actor, signer } => {
            let tiers = tiers
                .iter()
                .map(|t| {
                    tier_from_str(t.trim())
                        .ok_or_else(|| anyhow!("--tiers: unknown tier `{t}`; expected T0, T1, T2 or T3"))
                })
                .collect::<Result<Vec<_>>>()?;
            if model.trim().is_empty() {
                bail!("--model must name the model");
            }
            let body = Body::Model(Model {
                tool: Token::new(&tool).map_err(|e| anyhow!("--tool: {e}"))?,
                model,
                approved_tiers: tiers,
                not_after: not_after.as_deref().map(parse_time).transpose().context("--not-after")?,
            });
            let key = ctx.signer_key(&signer)?;
            let receipt = ctx.backend()?.sign_and_append(&record(ctx, &actor, body)?, &key)?;
            output::receipt(&receipt, ctx.json)?;
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::List => list_models(ctx),
    }
}

#[derive(Serialize)]
struct ModelOut {
    entry: u64,
    tool: String,
    model: String,
    tiers: Vec<&'static str>,
    not_after: Option<Timestamp>,
    expired: bool,
}

fn list_models(ctx: &Ctx) -> Result<ExitCode> {
    let now = ctx.now();
    let mut latest: std::collections::BTreeMap<(String, String), ModelOut> = Default::default();
    for v in ctx.backend()?.log(&LogArgs { kind: Some(Kind::Model), ..Default::default() })? {
        let Body::Model(m) = v.record.body else { continue };
        let out = ModelOut {
            entry: v.seq.0,
            tool: m.tool.to_string(),
            tiers: m.approved_tiers.iter().map(|t| tier_name(*t)).collect(),
            expired: m.not_after.is_some_and(|t| t <= now),
            not_after: m.not_after,
            model: m.model.clone(),
        };
        latest.insert((m.tool.to_string(), m.model.to_ascii_lowercase()), out);
    }
    let rows: Vec<ModelOut> = latest.into_values().collect();
    if ctx.json {
        json_out(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        line("no model approvals recorded")?;
    }
    for r in &rows {
        let until = match (r.not_after, r.expired) {
            (Some(t), true) => format!("expired {}", t.to_rfc3339()),
            (Some(t), false) => format!("until {}", t.to_rfc3339()),
            (None, _) => "no end".into(),
        };
        line(format!("#{:<6} {:<10} {:<28} {:<12} {until}", r.entry, r.tool, r.model, r.tiers.join(",")))?;
    }
    Ok(ExitCode::SUCCESS)
}
