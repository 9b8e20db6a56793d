//! The record model: one typed body per record kind, plus event time, actor and links.
//!
//! Records are what signers sign. Their bytes are canonical CBOR ([`crate::encoding`]); the
//! layout is written down in `docs/FORMAT.md`. There are no free-form maps in signed data:
//! every body is a struct with a fixed set of fields.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::subject::Subject;
use crate::types::{CommitId, Digest, Identity, KeyId, PublicKeyBytes, RepoName, Tier, Timestamp, Token};

/// A signed statement about one step of a software change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version, [`crate::domain::FORMAT_VERSION`].
    pub v: u8,
    /// When the event happened, as claimed by the record's author.
    pub time: Timestamp,
    /// The human or bot the record is about (not the signer).
    pub actor: Identity,
    /// Typed links to other records or external subjects.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The kind-specific body.
    pub body: Body,
}

impl Record {
    /// The record kind, from its body.
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// Every subject this record mentions: link targets and subjects named in the body.
    /// Commit subjects appear both repository-qualified and bare (`git:<sha>`), so that a
    /// lookup by sha alone finds them. Sorted, without duplicates.
    pub fn subjects(&self) -> Vec<Subject> {
        let mut out: Vec<Subject> = self.links.iter().map(|l| l.target.clone()).collect();
        self.body.push_subjects(&mut out);
        let bare: Vec<Subject> = out.iter().filter_map(Subject::bare_commit).collect();
        out.extend(bare);
        out.sort();
        out.dedup();
        out
    }

    /// Free-text fields, by name, for the secret scan ([`crate::secrets`]).
    pub fn text_fields(&self) -> Vec<(String, &str)> {
        let mut out = vec![("actor".to_string(), self.actor.as_str())];
        self.body.push_text(&mut out);
        out
    }
}

/// How a link relates the record to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rel {
    /// The change (PR/MR) this record belongs to.
    Change,
    /// A commit this record is about.
    Commit,
    /// The AI session that produced (part of) this change.
    Session,
    /// The deployment this record is about.
    Deployment,
    /// The deployment(s) or change(s) that caused an incident, from an explicit reference.
    CausedBy,
    /// A cause inferred from timing alone, not from an explicit reference.
    CausedByInferred,
    /// A deployment this deployment rolls back.
    RollbackOf,
    /// An earlier record this one replaces.
    Supersedes,
    /// An input considered by a gate decision.
    Input,
}

/// A typed link from a record to a subject.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// How the record relates to the target.
    pub rel: Rel,
    /// What it links to.
    pub target: Subject,
}

macro_rules! kinds {
    ($($variant:ident($body:ident) = $name:literal, code $code:literal),+ $(,)?) => {
        /// The kind of a record.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Kind { $(#[doc = concat!("`", $name, "` record.")] $variant),+ }

        impl Kind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];
            /// The kind's name as used in CBOR, JSON and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name),+ }
            }
            /// The kind's one-byte code in the storage layout (the `k` index key). Part of the
            /// on-disk format: a code, once given, never changes or moves to another kind
            /// (docs/FORMAT.md, "Kind codes"; pinned by a test).
            pub fn code(self) -> u8 {
                match self { $(Kind::$variant => $code),+ }
            }
            /// The kind with this storage code, if any.
            pub fn from_code(code: u8) -> Option<Kind> {
                match code { $($code => Some(Kind::$variant),)+ _ => None }
            }
        }

        impl FromStr for Kind {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($name => Ok(Kind::$variant),)+
                    other => Err(Error::InvalidField {
                        field: "kind".into(),
                        reason: format!("unknown record kind `{other}`; expected one of: {}",
                            Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")),
                    }),
                }
            }
        }

        /// The body of a record: one variant per kind. Encoded as a one-entry map
        /// `{ kind-name: body }`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Body { $(#[doc = concat!("A `", $name, "` body.")] $variant($body)),+ }

        impl Body {
            /// The record kind of this body.
            pub fn kind(&self) -> Kind {
                match self { $(Body::$variant(_) => Kind::$variant),+ }
            }
            fn push_subjects(&self, out: &mut Vec<Subject>) {
                match self { $(Body::$variant(b) => b.push_subjects(out)),+ }
            }
            fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
                match self { $(Body::$variant(b) => b.push_text(out)),+ }
            }
            /// Parses a JSON body of the given kind, rejecting unknown fields.
            ///
            /// # Errors
            /// A message naming the offending field's path (`commits[2].sha: invalid ...`).
            pub fn from_json(kind: Kind, value: serde_json::Value) -> std::result::Result<Body, String> {
                match kind {
                    $(Kind::$variant => json_body::<$body>(value).map(Body::$variant),)+
                }
            }
        }
    };
}

fn json_body<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

// The codes are the storage layout's (docs/FORMAT.md): append new kinds with new codes.
kinds! {
    Session(Session) = "session", code 0,
    Model(Model) = "model", code 1,
    Change(Change) = "change", code 2,
    Review(Review) = "review", code 3,
    Evidence(Evidence) = "evidence", code 4,
    Exception(Exception) = "exception", code 5,
    Merge(Merge) = "merge", code 6,
    Deployment(Deployment) = "deployment", code 7,
    Incident(Incident) = "incident", code 8,
    Policy(Policy) = "policy", code 9,
    Gate(Gate) = "gate", code 10,
    Key(KeyBody) = "key", code 11,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a body the ledger needs generically: subjects for the index and free text for
/// the secret scan.
trait BodyParts {
    fn push_subjects(&self, out: &mut Vec<Subject>);
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>);
}

fn text<'a>(out: &mut Vec<(String, &'a str)>, name: &str, v: &'a str) {
    out.push((format!("body.{name}"), v));
}
fn opt_text<'a>(out: &mut Vec<(String, &'a str)>, name: &str, v: &'a Option<String>) {
    if let Some(v) = v {
        text(out, name, v);
    }
}
fn commit(repo: Option<&RepoName>, sha: &CommitId) -> Subject {
    Subject::Commit { repo: repo.cloned(), sha: sha.clone() }
}

/// Where a record's content came from, so an auditor can trace it to its input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Source {
    /// Derived from a git commit (its message, trailers or parents).
    GitCommit {
        /// The commit read.
        commit: CommitId,
        /// The trailer the record came from (`Reviewed-by`, `Assisted-by`, ...), if any.
        trailer: Option<String>,
    },
    /// Read from a file or payload, identified by its digest.
    Payload {
        /// The format, e.g. `ai-provenance-json`.
        format: String,
        /// Digest of the exact input bytes.
        digest: Digest,
    },
}

/// Kind of signature header a git commit carries (the ledger records it; it does not verify it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitSignature {
    /// Not signed.
    None,
    /// OpenPGP signature.
    Pgp,
    /// SSH signature.
    Ssh,
    /// X.509 (S/MIME, gitsign) signature.
    X509,
    /// A signature header of an unrecognised kind.
    Unknown,
    /// The source did not say (a push webhook carries no signature information).
    NotReported,
}

/// A `Key: value` trailer from a commit message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// The trailer key as written, e.g. `Signed-off-by`.
    pub key: String,
    /// The value, e.g. `Jane Doe <jane@example.com>`.
    pub value: String,
}

/// One commit a change brought in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitInfo {
    /// Commit id.
    pub sha: CommitId,
    /// Author identity (`Name <email>`).
    pub author: Identity,
    /// Author time.
    pub authored_at: Timestamp,
    /// Committer identity.
    pub committer: Identity,
    /// Commit time.
    pub committed_at: Timestamp,
    /// First line of the message (at most 200 bytes).
    pub title: String,
    /// Kind of signature header.
    pub signature: CommitSignature,
    /// Trailers the ledger understands (sign-offs, reviews, co-authors, AI assistance).
    #[serde(default)]
    pub trailers: Vec<Trailer>,
}

/// `session`: an AI prompt session that contributed to a change. Holds a digest of the prompt
/// transcript and a short summary, never the raw prompt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Tool, e.g. `codex`, `claude-code`, `copilot`.
    pub tool: Token,
    /// Model name and version as the tool reports it, e.g. `Codex 5.3`.
    pub model: Option<String>,
    /// The tool's session id.
    pub session_id: Token,
    /// Digest of the prompt transcript (kept outside the ledger).
    pub prompt_digest: Option<Digest>,
    /// Short human summary of what was asked.
    pub summary: Option<String>,
    /// Context the session used (files, documents), as short names.
    #[serde(default)]
    pub context: Vec<String>,
    /// Human the provenance file names as reviewer of the AI output. A declaration, not an
    /// approval: approvals are `review` records.
    pub declared_reviewer: Option<Identity>,
    /// Risk area the author declared, e.g. `auth`.
    pub risk_area: Option<String>,
    /// Verification the author declared, e.g. `unit tests`.
    #[serde(default)]
    pub verification: Vec<String>,
    /// Where this record came from.
    pub source: Option<Source>,
}

impl Session {
    /// The session's subject, `session:<tool>/<id>`.
    pub fn subject(&self) -> Subject {
        Subject::Session { tool: self.tool.clone(), id: self.session_id.clone() }
    }
}

impl BodyParts for Session {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(self.subject());
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        opt_text(out, "model", &self.model);
        opt_text(out, "summary", &self.summary);
        opt_text(out, "risk_area", &self.risk_area);
        for (i, c) in self.context.iter().enumerate() {
            text(out, &format!("context[{i}]"), c);
        }
        for (i, c) in self.verification.iter().enumerate() {
            text(out, &format!("verification[{i}]"), c);
        }
    }
}

/// `model`: an AI tool/model version and the risk tiers it is approved for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Tool, e.g. `codex`.
    pub tool: Token,
    /// Model name, e.g. `Codex 5.3`.
    pub model: String,
    /// Tiers changes made with this model may have.
    pub approved_tiers: Vec<Tier>,
}

impl BodyParts for Model {
    fn push_subjects(&self, _: &mut Vec<Subject>) {}
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "model", &self.model);
    }
}

/// `change`: a pull/merge request (or a commit that landed without one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Repository.
    pub repo: RepoName,
    /// PR/MR number; `None` for a commit that landed without a pull request.
    pub number: Option<u64>,
    /// Title.
    pub title: String,
    /// Description (at most 4 KiB).
    pub description: Option<String>,
    /// Author of the change.
    pub author: Identity,
    /// Head commit: the last commit of the change.
    pub head_commit: CommitId,
    /// Base commit the change was made against, if known.
    pub base_commit: Option<CommitId>,
    /// Commits the change brought in, oldest first (possibly truncated, see `commits_total`).
    #[serde(default)]
    pub commits: Vec<CommitInfo>,
    /// How many commits the change brought in (may exceed `commits.len()` when the list was
    /// truncated to respect the entry size limit).
    pub commits_total: u64,
    /// Risk tier, if assigned.
    pub risk_tier: Option<Tier>,
    /// Declared intent.
    pub intent: Option<String>,
    /// Where this record came from.
    pub source: Option<Source>,
}

impl Change {
    /// The change's subject: `pr:<repo>#<n>`, or the head commit when there is no PR number.
    pub fn subject(&self) -> Subject {
        match self.number {
            Some(number) => Subject::Change { repo: self.repo.clone(), number },
            None => commit(Some(&self.repo), &self.head_commit),
        }
    }
}

impl BodyParts for Change {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(self.subject());
        out.push(commit(Some(&self.repo), &self.head_commit));
        out.extend(self.commits.iter().map(|c| commit(Some(&self.repo), &c.sha)));
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "title", &self.title);
        opt_text(out, "description", &self.description);
        opt_text(out, "intent", &self.intent);
        for (i, c) in self.commits.iter().enumerate() {
            text(out, &format!("commits[{i}].title"), &c.title);
            for (j, t) in c.trailers.iter().enumerate() {
                text(out, &format!("commits[{i}].trailers[{j}].value"), &t.value);
            }
        }
    }
}

/// A review verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Approved.
    Approved,
    /// Changes requested.
    ChangesRequested,
    /// Commented without a verdict.
    Commented,
    /// An earlier review was dismissed.
    Dismissed,
}

/// `review`: a reviewer's verdict on a change at one exact commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// Repository.
    pub repo: RepoName,
    /// Reviewer.
    pub reviewer: Identity,
    /// Verdict.
    pub verdict: Verdict,
    /// The exact commit reviewed.
    pub commit: CommitId,
    /// Where this record came from (a platform review, a `Reviewed-by` trailer...).
    pub source: Option<Source>,
}

impl BodyParts for Review {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(commit(Some(&self.repo), &self.commit));
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "reviewer", self.reviewer.as_str());
    }
}

/// What a check checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckKind {
    /// Build.
    Build,
    /// Lint or format check.
    Lint,
    /// Unit tests.
    Unit,
    /// Integration tests.
    Integration,
    /// Static application security testing.
    Sast,
    /// Secret scanning.
    SecretScan,
    /// Canary or progressive delivery analysis.
    Canary,
    /// A provenance or attestation check (SLSA, in-toto).
    Provenance,
    /// Anything else.
    Other,
}

/// Outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckResult {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Neither passed nor failed (neutral, skipped, cancelled).
    Neutral,
    /// The check itself errored.
    Error,
}

/// `evidence`: the result of a check at one exact commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Repository.
    pub repo: RepoName,
    /// The commit checked.
    pub commit: CommitId,
    /// Check name, e.g. `unit-tests`.
    pub check: String,
    /// What the check checks.
    pub check_kind: CheckKind,
    /// Outcome.
    pub result: CheckResult,
    /// Digest of the artifact (log, report, attestation), kept outside the ledger.
    pub artifact: Option<Digest>,
    /// in-toto predicate type, when the evidence is an attestation.
    pub predicate_type: Option<String>,
    /// Where a human can see the check.
    pub url: Option<String>,
    /// For a signed attestation: whether its signature was checked against a known key.
    #[serde(default)]
    pub signature: Option<SignatureCheck>,
    /// Where this record came from.
    pub source: Option<Source>,
}

/// Whether the signature of signed evidence (a DSSE envelope) was checked when it was
/// recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureCheck {
    /// A signature verified with the key the recorder was given.
    Verified,
    /// Signed, but no key was given: recorded as unverified.
    NotVerified,
}

impl BodyParts for Evidence {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(commit(Some(&self.repo), &self.commit));
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "check", &self.check);
        opt_text(out, "predicate_type", &self.predicate_type);
        opt_text(out, "url", &self.url);
    }
}

/// `exception`: a policy override with an approver, reason, scope and expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// Who approved the exception.
    pub approver: Identity,
    /// Why.
    pub reason: String,
    /// What it covers (a change, a deployment, a commit).
    pub scope: Subject,
    /// Policy rule it overrides, if specific.
    pub rule: Option<String>,
    /// After this time the exception is ignored.
    pub not_after: Timestamp,
}

impl BodyParts for Exception {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(self.scope.clone());
    }
    fn push_text<'a>(&'a self, out: &mut Vec<(String, &'a str)>) {
        text(out, "reason", &self.reason);
        opt_text(out, "rule", &self.rule);
    }
}

/// How a change landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MergeMethod {
    /// A merge commit.
    Merge,
    /// Squashed into one commit.
    Squash,
    /// Rebased onto the base branch.
    Rebase,
    /// Pushed directly, without a pull request.
    Direct,
}

/// `merge`: a change landed on its base branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// Repository.
    pub repo: RepoName,
    /// The commit that landed on the base branch (merge or squash commit).
    pub merge_commit: CommitId,
    /// The change's head commit at merge time: what approvals must be for.
    pub head_commit: CommitId,
    /// The base branch commit before the merge.
    pub base_commit: Option<CommitId>,
    /// Who merged, when known.
    pub merged_by: Option<Identity>,
    /// How.
    pub method: MergeMethod,
    /// Where this record came from.
    pub source: Option<Source>,
}

impl BodyParts for Merge {
    fn push_subjects(&self, out: &mut Vec<Subject>) {
        out.push(commit(Some(&self.repo), &self.merge_commit));
        out.push(commit(Some(&self.repo), &self.head_commit));
    }
    fn push_text<'a>(&'a self, _: &mut Vec<(String, &'a str)>) {}
}

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

/// `key`: registers, rotates or revokes a signer key. Signed by the admin key.
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
}

impl BodyParts for KeyBody {
    fn push_subjects(&self, _: &mut Vec<Subject>) {}
    fn push_text<'a>(&'a self, _: &mut Vec<(String, &'a str)>) {}
}
