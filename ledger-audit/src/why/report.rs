//! The `why` report: one `Serialize` type per part, whose JSON form is documented in
//! docs/WHY.md and must stay stable (the CLI prints it and a remote report is read back from it).

use std::fmt;

use serde::{Deserialize, Serialize};

use ledger_core::record::{
    Body, Channel, CheckResult, CommitSignature, Decision, DeployStatus, MergeMethod, Record, RuleResult, Source,
    Stage, Verdict,
};
use ledger_core::types::{CommitId, EntryHash, Identity, KeyId, Seq, Tier, Timestamp};

/// A record as gathered for analysis: its position, entry hash, signer and decoded content.
#[derive(Clone, Debug)]
pub struct Gathered {
    /// Sequence number.
    pub seq: Seq,
    /// Entry hash.
    pub hash: EntryHash,
    /// Integration time.
    pub integrated: Timestamp,
    /// The record.
    pub record: Record,
    /// The key that signed the record.
    pub signer: KeyId,
    /// That key's registered name, when the gatherer knows the key register.
    pub signer_name: Option<String>,
}

/// Who vouched for an item, and how the fact entered the ledger: what an auditor weighs it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vouch {
    /// The registered name of the key that signed the record (its key id when unknown).
    pub signer: String,
    /// The signer's key id, hex.
    pub key_id: String,
    /// How the fact entered the ledger.
    pub entered: Entered,
}

impl Vouch {
    /// Who vouched for the gathered record `g`, and how it entered the ledger.
    pub fn of(g: &Gathered) -> Self {
        Vouch {
            signer: g.signer_name.clone().unwrap_or_else(|| g.signer.short()),
            key_id: g.signer.to_hex(),
            entered: Entered::of(&g.record),
        }
    }
}

/// How a fact entered the ledger, from the record's own account of its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entered {
    /// A webhook delivery whose HMAC signature `ledgerd`'s receiver verified.
    WebhookHmac,
    /// A webhook delivery whose secret token `ledgerd`'s receiver verified.
    WebhookToken,
    /// An attestation (DSSE envelope): see the evidence's `verification`.
    Attestation,
    /// Derived from git history (a commit, its trailers or parents).
    GitHistory,
    /// Mapped from a payload the signer was given (a file): nothing but the signer vouches for
    /// where it came from.
    Payload,
    /// Written by hand (`ledger append`): the signer's word.
    Manual,
}

impl Entered {
    /// How `record` entered the ledger.
    pub fn of(record: &Record) -> Self {
        let attestation = matches!(&record.body, Body::Evidence(e) if e.signature.is_some());
        match record.body.source() {
            Some(Source::GitCommit { .. }) => Entered::GitHistory,
            Some(Source::Payload { channel: Some(Channel::WebhookHmac), .. }) => Entered::WebhookHmac,
            Some(Source::Payload { channel: Some(Channel::WebhookToken), .. }) => Entered::WebhookToken,
            Some(Source::Payload { .. }) if attestation => Entered::Attestation,
            Some(_) => Entered::Payload,
            None => Entered::Manual,
        }
    }

    /// In words, for the text report.
    pub fn describe(self) -> &'static str {
        match self {
            Entered::WebhookHmac => "webhook delivery, HMAC verified",
            Entered::WebhookToken => "webhook delivery, token verified",
            Entered::Attestation => "attestation",
            Entered::GitHistory => "git history",
            Entered::Payload => "payload given to the signer",
            Entered::Manual => "appended by hand",
        }
    }
}

/// Whether evidence's own signature (an attestation's envelope) was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verification {
    /// A signed attestation whose signature verified with the key the recorder was given.
    Verified,
    /// A signed attestation recorded without checking its signature: it counts for nothing.
    NotVerified,
    /// Not an attestation: a check result its signer (a CI key) vouches for.
    Unsigned,
}

impl Verification {
    /// The name in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::NotVerified => "not_verified",
            Verification::Unsigned => "unsigned",
        }
    }
}

/// Where an item of the report comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    /// Sequence number.
    pub seq: u64,
    /// Entry hash, lowercase hex.
    pub entry: String,
}

impl From<&Gathered> for EntryRef {
    fn from(g: &Gathered) -> Self {
        EntryRef { seq: g.seq.0, entry: g.hash.to_hex() }
    }
}

/// A finding: something an auditor should know, with a stable machine-readable code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `no_approval`.
    pub code: String,
    /// Human sentence.
    pub message: String,
}

/// One commit of a change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitLine {
    /// Commit id.
    pub sha: CommitId,
    /// Author.
    pub author: Identity,
    /// Committer.
    pub committer: Identity,
    /// First line of the message.
    pub title: String,
    /// Signature kind (`none`, `pgp`, `ssh`, `x509`, `unknown`); not verified.
    pub signature: CommitSignature,
    /// Trailers, as `Key: value`.
    pub trailers: Vec<String>,
}

/// The merge of a change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergeLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// The commit that landed.
    pub commit: CommitId,
    /// The change's head commit at merge.
    pub head_commit: CommitId,
    /// Who merged, when known.
    pub merged_by: Option<Identity>,
    /// When (the author's claimed time).
    pub time: Timestamp,
    /// `merge`, `squash`, `rebase` or `direct`.
    pub method: MergeMethod,
    /// Who vouched for the merge record, and how it entered the ledger.
    pub vouched: Vouch,
}

/// An approval or other review.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Reviewer.
    pub reviewer: Identity,
    /// Verdict.
    pub verdict: Verdict,
    /// The commit reviewed.
    pub commit: CommitId,
    /// `valid` (at the final commit), `stale` (an older commit), `dismissed` (an approval its
    /// reviewer's later dismissal cancelled) or `late` (given after the merge).
    pub status: ReviewStatus,
    /// Where the review came from (`review`, or the trailer key such as `Reviewed-by`).
    pub via: String,
    /// When the reviewer gave it (the record's own time).
    pub time: Timestamp,
    /// Other entries that record the same review (same reviewer, verdict, commit and source):
    /// a delivery received twice, a review appended again. It is listed, and counts, once.
    pub also: Vec<EntryRef>,
    /// Who vouched for the review record, and how it entered the ledger.
    pub vouched: Vouch,
}

/// How a review counts, the `status` of a [`ReviewLine`]. Serialized as `valid`, `stale`,
/// `dismissed` or `late` (docs/WHY.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReviewStatus {
    /// At the final commit (for a squash or direct landing, the landed commit also counts).
    Valid,
    /// At another commit: it says nothing about what landed.
    Stale,
    /// An approval that a later dismissal by the same reviewer cancelled: it counts for nothing.
    Dismissed,
    /// Given after the change merged (beyond the tolerated clock skew): it approved nothing
    /// before it shipped, and counts for nothing.
    Late,
}

impl ReviewStatus {
    /// The status as written in the JSON report: `valid`, `stale`, `dismissed` or `late`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Valid => "valid",
            ReviewStatus::Stale => "stale",
            ReviewStatus::Dismissed => "dismissed",
            ReviewStatus::Late => "late",
        }
    }
}

impl fmt::Display for ReviewStatus {
    /// Honours width and alignment: the CLI pads the status into a column (`{:<6}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A check result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvidenceLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Check name.
    pub check: String,
    /// Result.
    pub result: CheckResult,
    /// Commit checked.
    pub commit: CommitId,
    /// Whether it was run at the final commit.
    pub at_final_commit: bool,
    /// Whether its own signature (an attestation's) was checked.
    pub verification: Verification,
    /// For an attestation: the builder (or verifier) it names.
    pub builder: Option<String>,
    /// Whether that builder is a trusted one (`true` when no builder is named).
    pub trusted_builder: bool,
    /// Whether it counts as evidence: not an unverified attestation, not from an untrusted
    /// builder. Evidence that does not count is shown, with a finding, and clears nothing.
    pub counts: bool,
    /// Who vouched for the evidence record, and how it entered the ledger.
    pub vouched: Vouch,
}

/// An AI session involved in the change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Session subject.
    pub subject: String,
    /// Tool.
    pub tool: String,
    /// Model, as reported.
    pub model: Option<String>,
    /// Short summary.
    pub summary: Option<String>,
    /// Where it came from (`Assisted-by` trailer, provenance file...).
    pub via: String,
    /// Tiers the model is approved for, when a `model` record names it.
    pub model_approved_tiers: Option<Vec<Tier>>,
    /// Other entries that record the same session (one session named by several deliveries).
    pub also: Vec<EntryRef>,
}

/// An exception in force (or expired) for the change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExceptionLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// Approver.
    pub approver: Identity,
    /// Reason.
    pub reason: String,
    /// Expiry.
    pub not_after: Timestamp,
    /// Whether it had expired at the time of the report.
    pub expired: bool,
}

/// A deployment of the change's landed or final commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeploymentLine {
    /// Where its latest record is.
    #[serde(flatten)]
    pub at: EntryRef,
    /// `deploy:<service>/<environment>/<id>`.
    pub subject: String,
    /// Environment.
    pub environment: String,
    /// Latest status.
    pub status: DeployStatus,
    /// Who deployed (from the first record).
    pub deployer: Identity,
    /// The commit deployed that belongs to this change.
    pub commit: CommitId,
    /// When (event time of the latest record).
    pub time: Timestamp,
    /// Who vouched for the latest deployment record, and how it entered the ledger.
    pub vouched: Vouch,
}

/// An incident linked to the change through one of its deployments (or directly).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IncidentLine {
    /// Where its latest record is.
    #[serde(flatten)]
    pub at: EntryRef,
    /// `incident:<system>/<id>`.
    pub subject: String,
    /// Title.
    pub title: String,
    /// Severity, as the system names it.
    pub severity: Option<String>,
    /// Opened.
    pub opened: Timestamp,
    /// Resolved, if it was.
    pub resolved: Option<Timestamp>,
    /// What it is linked to (a deployment or the change).
    pub cause: String,
    /// True when the link was inferred from timing alone, not an explicit reference.
    pub inferred: bool,
    /// For an inferred link, why it was inferred (as recorded). Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<String>,
}

/// Everything recorded about one change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangeReport {
    /// Where the (latest) change record is.
    #[serde(flatten)]
    pub at: EntryRef,
    /// `pr:<repo>#<n>`, or the commit for a change without a PR.
    pub subject: String,
    /// Repository.
    pub repo: String,
    /// PR number.
    pub number: Option<u64>,
    /// Title.
    pub title: String,
    /// Author.
    pub author: Identity,
    /// Head commit as recorded on the change.
    pub head_commit: CommitId,
    /// The commit approvals must be for: the head at merge.
    pub final_commit: CommitId,
    /// Commits brought in (possibly truncated; see `commits_total`).
    pub commits: Vec<CommitLine>,
    /// Number of commits brought in.
    pub commits_total: u64,
    /// Distinct commit authors.
    pub commit_authors: Vec<Identity>,
    /// The merge, if recorded.
    pub merge: Option<MergeLine>,
    /// Reviews, oldest first.
    pub reviews: Vec<ReviewLine>,
    /// Evidence, oldest first.
    pub evidence: Vec<EvidenceLine>,
    /// AI sessions and bots involved.
    pub sessions: Vec<SessionLine>,
    /// Exceptions.
    pub exceptions: Vec<ExceptionLine>,
    /// Deployments of the landed or final commit.
    pub deployments: Vec<DeploymentLine>,
    /// Incidents linked to those deployments or to the change.
    pub incidents: Vec<IncidentLine>,
    /// Findings about this change.
    pub findings: Vec<Finding>,
    /// Recorded gate decisions about the change (or a deployment of it), oldest first. Omitted
    /// from the JSON when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateLine>,
    /// The change's labels (from its latest change record that has any). Omitted when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// A recorded gate decision (`ledger gate --record`), as `why` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateLine {
    /// Where it is recorded.
    #[serde(flatten)]
    pub at: EntryRef,
    /// What was gated.
    pub subject: String,
    /// `merge` or `deploy`, when recorded.
    pub stage: Option<Stage>,
    /// `allow` or `deny`.
    pub decision: Decision,
    /// The tier, when recorded.
    pub tier: Option<Tier>,
    /// The policy's digest.
    pub policy: String,
    /// The policy's version, when recorded.
    pub policy_version: Option<u64>,
    /// Each rule's result.
    pub rules: Vec<GateRuleLine>,
    /// When the decision was made.
    pub time: Timestamp,
    /// Who vouched for the decision record.
    pub vouched: Vouch,
}

/// One rule of a recorded gate decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRuleLine {
    /// Rule id.
    pub rule: String,
    /// `pass`, `fail` or `waived`.
    pub result: RuleResult,
    /// The exception entry that waived it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<u64>,
}

/// One subject `why` walked from the asked one, and the entries found under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStep {
    /// The subject, canonical.
    pub subject: String,
    /// The entries that mention it, ascending (empty: nothing is recorded about it).
    pub entries: Vec<EntryRef>,
}

/// The answer to `why <subject>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhyReport {
    /// The subject asked about, canonical.
    pub subject: String,
    /// The subjects walked to find the change(s), in the order they were reached (from an
    /// incident: its deployments, their commits, the change): the chain is shown even when it
    /// ends without a change.
    pub walked: Vec<WalkStep>,
    /// Changes the subject belongs to.
    pub changes: Vec<ChangeReport>,
    /// Findings about the subject as a whole (e.g. nothing recorded).
    pub findings: Vec<Finding>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_status_reads_as_in_the_json() {
        for (status, name) in [
            (ReviewStatus::Valid, "valid"),
            (ReviewStatus::Stale, "stale"),
            (ReviewStatus::Dismissed, "dismissed"),
            (ReviewStatus::Late, "late"),
        ] {
            assert_eq!(status.as_str(), name);
            assert_eq!(status.to_string(), name);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<ReviewStatus>(&format!("\"{name}\"")).unwrap(), status);
        }
        // The CLI pads the status into a column.
        assert_eq!(format!("[{:<6}]", ReviewStatus::Valid), "[valid ]");
        assert_eq!(format!("[{:>9}]", ReviewStatus::Stale), "[    stale]");
    }
}
