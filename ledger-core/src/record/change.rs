//! The bodies of the records that describe a change on its way to a merge: AI sessions and
//! approved models, the change, reviews, evidence, exceptions, merges; and the provenance
//! (`Source`) and commit details they share.

use serde::{Deserialize, Serialize};

use super::{commit, opt_text, text, BodyParts};
use crate::subject::Subject;
use crate::types::{CommitId, Digest, Identity, RepoName, Tier, Timestamp, Token};

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
        /// How the payload reached the ledger, when the recorder knows (absent in records
        /// written before it was kept: encoded only when present).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Channel>,
    },
}

impl Source {
    /// A payload source with no channel recorded.
    pub fn payload(format: impl Into<String>, digest: Digest) -> Source {
        Source::Payload { format: format.into(), digest, channel: None }
    }
}

/// How a payload reached the ledger: what vouches for it having come from where it says. A
/// payload without a channel was given to the signer (a file, a client's append): only the
/// signer vouches for where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Channel {
    /// A webhook delivery whose HMAC signature the receiver verified (GitHub
    /// `X-Hub-Signature-256`, PagerDuty `X-PagerDuty-Signature`).
    WebhookHmac,
    /// A webhook delivery whose shared secret token the receiver verified (GitLab
    /// `X-Gitlab-Token`).
    WebhookToken,
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
    /// What the session cost, when its tool or billing reports it (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// What an AI session cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// The amount in millionths of the currency unit (`1250000` is 1.25): an integer, because
    /// canonical CBOR carries no floats.
    pub micros: u64,
    /// The ISO 4217 currency code, e.g. `USD`.
    pub currency: Token,
}

impl Cost {
    /// A cost from a decimal amount (JSON number or string, e.g. `1.25` or `"0.0031"`) and a
    /// currency code.
    ///
    /// # Errors
    /// [`Error::InvalidField`] (field `cost`) for a negative, non-finite or absurd amount, or a
    /// currency that is not three letters.
    pub fn from_decimal(amount: f64, currency: &str) -> crate::Result<Cost> {
        let bad = |reason: &str| crate::Error::InvalidField { field: "cost".into(), reason: reason.into() };
        if !amount.is_finite() || !(0.0..=1e12).contains(&amount) {
            return Err(bad("the amount must be a non-negative number below 10^12"));
        }
        let code = currency.trim().to_ascii_uppercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad("the currency must be a three-letter ISO 4217 code, e.g. USD"));
        }
        Ok(Cost { micros: (amount * 1e6).round() as u64, currency: Token::new(code)? })
    }
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
    /// After this time the approval no longer counts. Omitted from the encoding when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
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
    /// The paths the change touched (repository-relative, `/`-separated), when the source lists
    /// them (a git diff, an API file list). `None`: not known, which is not "none touched".
    /// Omitted from the encoding when absent, like the fields after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Lines added across the change, when the source counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    /// Lines removed across the change, when the source counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_removed: Option<u64>,
    /// Labels on the change (pull request labels, merge request labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Change {
    /// Lines changed (added + removed), when both counts are known.
    pub fn lines_changed(&self) -> Option<u64> {
        Some(self.lines_added?.saturating_add(self.lines_removed?))
    }

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
        for (i, p) in self.paths.iter().flatten().enumerate() {
            text(out, &format!("paths[{i}]"), p);
        }
        for (i, l) in self.labels.iter().enumerate() {
            text(out, &format!("labels[{i}]"), l);
        }
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
    /// For an attestation: the builder it names (SLSA `builder.id`), which `why` checks
    /// against the trusted builders (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
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
        opt_text(out, "builder", &self.builder);
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
