//! Deployments and their statuses, and the rollback a deployment's payload may name.

use serde_json::Value;

use super::P;
use crate::payload::missing;
use crate::Mapped;
use ledger_core::record::{Body, DeployStatus, Deployment};
use ledger_core::types::Token;
use ledger_core::{Error, Result};

pub(super) fn deployment(p: &P<'_>) -> Result<Mapped> {
    let id = p.get("/deployment/id").ok_or_else(|| missing("deployment.id"))?;
    let id = match id {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(missing("deployment.id")),
    };
    let (deployer, status, time) = if p.event == "deployment_status" {
        let status = match p.str("/deployment_status/state")? {
            "success" => DeployStatus::Success,
            "failure" => DeployStatus::Failure,
            "error" => DeployStatus::Error,
            "inactive" => DeployStatus::Inactive,
            "in_progress" => DeployStatus::InProgress,
            _ => DeployStatus::Pending,
        };
        (p.login("/deployment_status/creator/login")?, status, p.time("/deployment_status/created_at")?)
    } else {
        (p.login("/deployment/creator/login")?, DeployStatus::Pending, p.time("/deployment/created_at")?)
    };
    let body = Body::Deployment(Deployment {
        service: Token::new(p.str("/repository/name")?)?,
        environment: Token::new(p.str("/deployment/environment")?.replace(char::is_whitespace, "-"))?,
        deployment_id: Token::new(id)?,
        repo: Some(p.repo()?),
        commits: vec![p.sha("/deployment/sha")?],
        version: None,
        deployer: deployer.clone(),
        status,
        rollback_of: rollback_of(p)?,
        source: Some(p.source.clone()),
        // A deployment's free-form payload may name its strategy (`{"strategy": "canary"}`).
        strategy: p.get("/deployment/payload/strategy").and_then(Value::as_str).and_then(|s| Token::new(s).ok()),
    });
    Ok(Mapped::Records(vec![p.record(time, deployer, vec![], body)]))
}

/// The deployment a rollback undoes, from the deployment's free-form payload:
/// `{"rollback_of": "deploy:<service>/<environment>/<id>"}`, or a bare deployment id (string
/// or number) of the same service and environment. GitHub has no rollback of its own; this is
/// the convention a deploy workflow follows to record one.
///
/// # Errors
/// A `rollback_of` that is neither a deployment subject nor a valid deployment id.
fn rollback_of(p: &P<'_>) -> Result<Option<ledger_core::subject::Subject>> {
    let id = match p.get("/deployment/payload/rollback_of") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.starts_with("deploy:") => {
            return s.parse().map(Some).map_err(|e| bad_rollback(&format!("`{s}`: {e}")));
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(bad_rollback(&format!("a deployment subject or id, not {other}"))),
    };
    let subject = format!(
        "deploy:{}/{}/{id}",
        p.str("/repository/name")?,
        p.str("/deployment/environment")?.replace(char::is_whitespace, "-")
    );
    subject.parse().map(Some).map_err(|e| bad_rollback(&format!("`{id}`: {e}")))
}

fn bad_rollback(reason: &str) -> Error {
    Error::InvalidField { field: "deployment.payload.rollback_of".into(), reason: reason.to_string() }
}
