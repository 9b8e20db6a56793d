//! The bodies of the records that describe what happens after a merge (deployments,
//! incidents) and the ledger's own governance (policies, gate decisions, signer keys).

use serde::{Deserialize, Serialize};

use super::{commit, opt_text, text, BodyParts, Kind, Source};
use crate::subject::Subject;
use crate::types::{
    CommitId, Digest, Identity, KeyId, PublicKeyBytes, RepoName, SignatureBytes, Tier, Timestamp, Token,
};

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
    /// The release strategy, as the deployer declares it: `standard`, `canary`, `flag`,
    /// `staged`, `blue_green`, `supervised`, or another token. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Token>,
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
    /// Why a `caused_by_inferred` link of this record was inferred (service, window, how long
    /// before the incident the deployment went out). Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<String>,
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
        opt_text(out, "inference", &self.inference);
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
    /// SHA-256 of the document's bytes, which gate decisions name. Checked against the
    /// document on append; omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// The digest a policy document is known by: SHA-256 of its UTF-8 bytes (what SLSA VSAs and
/// in-toto resource descriptors speak).
pub fn document_digest(document: &str) -> Digest {
    use sha2::Digest as _;
    let value = sha2::Sha256::digest(document.as_bytes()).to_vec();
    #[allow(clippy::expect_used)]
    Digest::new(crate::types::DigestAlg::Sha256, value).expect("SHA-256 is 32 bytes")
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

/// `gate`: a recorded release-gate decision. The record's time is when it was evaluated.
///
/// A decision recorded by `ledger gate --record` carries everything needed to evaluate it
/// again from the log alone: the policy (by digest, name and version), the stage, the tree
/// size the inputs were read at, the input entries and each rule's outcome. The fields after
/// `reasons` are omitted from the encoding when empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Digest of the policy evaluated ([`document_digest`]).
    pub policy: Digest,
    /// What was gated (a change, a commit or a deployment).
    pub subject: Subject,
    /// The decision.
    pub decision: Decision,
    /// Reasons, one per failed or waived rule.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Name of the policy evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<Token>,
    /// Version of the policy evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// The stage gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The tier the change was classified in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The tree size the inputs were read at: entries `0..tree_size` were the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// Sequence numbers of every entry the evaluation considered, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<u64>,
    /// Each rule's outcome, in evaluation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleOutcome>,
}

/// Where in a change's way to production a gate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Before merging a change.
    Merge,
    /// Before deploying.
    Deploy,
}

impl std::str::FromStr for Stage {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Stage> {
        match s {
            "merge" => Ok(Stage::Merge),
            "deploy" => Ok(Stage::Deploy),
            other => Err(crate::Error::InvalidField {
                field: "stage".into(),
                reason: format!("unknown stage `{other}`; expected merge or deploy"),
            }),
        }
    }
}

impl Stage {
    /// `merge` or `deploy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Merge => "merge",
            Stage::Deploy => "deploy",
        }
    }
}

/// A rule's result in a gate decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleResult {
    /// The evidence satisfies the rule.
    Pass,
    /// It does not (or the evidence needed is unknown).
    Fail,
    /// It does not, but an unexpired exception in scope overrides it.
    Waived,
}

impl RuleResult {
    /// `pass`, `fail` or `waived`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleResult::Pass => "pass",
            RuleResult::Fail => "fail",
            RuleResult::Waived => "waived",
        }
    }
}

/// One rule's outcome in a recorded gate decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOutcome {
    /// Rule id, e.g. `approvals` (docs/POLICY.md).
    pub rule: String,
    /// Result.
    pub result: RuleResult,
    /// Why, in words.
    pub reason: String,
    /// Sequence numbers of the entries the result rests on.
    #[serde(default)]
    pub evidence: Vec<u64>,
    /// The exception entry that waived a failure.
    pub exception: Option<u64>,
}

/// `codeowners`: a repository's CODEOWNERS file, as the `codeowners` policy rule reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codeowners {
    /// Repository the file belongs to.
    pub repo: RepoName,
    /// The file's text.
    pub document: String,
    /// SHA-256 of the text ([`document_digest`]).
    pub digest: Digest,
}

impl BodyParts for Codeowners {
    fn push_subjects(&self, _: &mut Vec<Subject>) {}
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "document", &self.document);
    }
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
