//! The bodies of the records that describe what happens after a merge (deployments,
//! incidents) and the ledger's own governance (policies, gate decisions, signer keys).

use serde::{Deserialize, Serialize};

use super::{commit, opt_text, text, BodyParts, Kind, Source};
use crate::subject::Subject;
use crate::types::{CommitId, Digest, Identity, KeyId, PublicKeyBytes, RepoName, SignatureBytes, Timestamp, Token};

/// State of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeployStatus {
    /// Created, not started.
    Pending,
    /// Rolling out.
    InProgress,
    /// Succeeded.
    Success,
    /// Failed.
    Failure,
    /// Errored.
    Error,
    /// Superseded by a later deployment.
    Inactive,
    /// Rolled back.
    RolledBack,
}

/// `deployment`: commits of a service went to an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Service.
    pub service: Token,
    /// Environment, e.g. `production`.
    pub environment: Token,
    /// Deployment id.
    pub deployment_id: Token,
    /// Repository of the commits, when known.
    pub repo: Option<RepoName>,
    /// Commits deployed.
    #[serde(default)]
    pub commits: Vec<CommitId>,
    /// Version label.
    pub version: Option<String>,
    /// Who deployed.
    pub deployer: Identity,
    /// Status.
    pub status: DeployStatus,
    /// A deployment this one rolls back.
    pub rollback_of: Option<Subject>,
    /// Where this record came from.
    pub source: Option<Source>,
}

impl Deployment {
    /// `deploy:<service>/<environment>/<id>`.
    pub fn subject(&self) -> Subject {
        Subject::Deployment {
            service: self.service.clone(),
            environment: self.environment.clone(),
            id: self.deployment_id.clone(),
        }
    }
}

impl BodyParts for Deployment {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(self.subject());
        out.extend(self.commits.iter().map(|c| commit(self.repo.as_ref(), c)));
        out.extend(self.rollback_of.iter().cloned());
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        opt_text(out, "version", &self.version);
    }
}

/// `incident`: something went wrong in production.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Incident system, e.g. `pagerduty`.
    pub system: Token,
    /// Id in that system.
    pub incident_id: Token,
    /// Title.
    pub title: String,
    /// Affected service.
    pub service: Option<String>,
    /// Severity as the system names it.
    pub severity: Option<String>,
    /// When it was opened.
    pub opened: Timestamp,
    /// When it was resolved.
    pub resolved: Option<Timestamp>,
    /// Where this record came from.
    pub source: Option<Source>,
}

impl Incident {
    /// `incident:<system>/<id>`.
    pub fn subject(&self) -> Subject {
        Subject::Incident { system: self.system.clone(), id: self.incident_id.clone() }
    }
}

impl BodyParts for Incident {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(self.subject());
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "title", &self.title);
        opt_text(out, "service", &self.service);
        opt_text(out, "severity", &self.severity);
    }
}

/// `policy`: a versioned risk-tier policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Policy name.
    pub name: Token,
    /// Version, increasing.
    pub version: u64,
    /// The policy text (TOML).
    pub document: String,
}

impl BodyParts for Policy {
    fn push_subjects(&self, _: &mut Vec<Subject>) {}
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "document", &self.document);
    }
}

/// A gate decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// May proceed.
    Allow,
    /// Must not proceed.
    Deny,
}

/// `gate`: a recorded release-gate decision. Inputs are `input` links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Digest of the policy evaluated.
    pub policy: Digest,
    /// What was gated (a change or deployment).
    pub subject: Subject,
    /// The decision.
    pub decision: Decision,
    /// Reasons, one per failed or waived rule.
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl BodyParts for Gate {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(self.subject.clone());
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        for (i, r) in self.reasons.iter().enumerate() {
            text(out, &format!("reasons[{i}]"), r);
        }
    }
}

/// What a `key` record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    /// The first entry of a ledger: registers the admin key, self-signed.
    Genesis,
    /// Registers a new signer key.
    Register,
    /// Replaces the key `replaces` with a new one of the same name; the old key stops being
    /// valid for new appends, and its historic entries keep verifying.
    Rotate,
    /// Revokes a key: no further appends.
    Revoke,
}

/// What a registered key is for, when it is not a record signer: the `role` of a
/// [`KeyBody`]. Serialized as `log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// The log key: signs checkpoints (and nothing else; it appends no records). At most one
    /// is active at a time; rotating it needs a hand-over signed by the old log key.
    Log,
}

/// `key`: registers, rotates or revokes a signer key or the log key. Signed by the admin key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// What this record does.
    pub action: KeyAction,
    /// The key's name, e.g. `ci-github`.
    pub name: Token,
    /// The Ed25519 public key registered (or revoked).
    pub public_key: PublicKeyBytes,
    /// Record kinds the key may append.
    pub kinds: Vec<Kind>,
    /// Start of the validity window.
    pub not_before: Timestamp,
    /// End of the validity window (exclusive), if any.
    pub not_after: Option<Timestamp>,
    /// For `rotate`: the key replaced.
    pub replaces: Option<KeyId>,
    /// `log` for the log key; absent for a record signer. Omitted from the encoding when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<KeyRole>,
    /// For `rotate` of the log key: the hand-over, the old log key's Ed25519 signature over
    /// [`handover_message`](crate::keys::handover_message)`(old key id, new public key)`, so
    /// that auditors who trust the old key can trust the new one. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<SignatureBytes>,
}

impl BodyParts for KeyBody {
    fn push_subjects(&self, _: &mut Vec<Subject>) {}
    fn push_text<'a>(&'a self, _: &mut Vec<(String, &'a str)>) {}
}
