//! SLSA Source verification summaries: an in-toto Statement v1 with a Verification Summary v1
//! predicate (`https://slsa.dev/verification_summary/v1`) for a change's landed commit,
//! stating the SLSA Source level the recorded evidence supports and the policy's result.
//! Pure: the caller signs the statement into a DSSE envelope.
//!
//! What the ledger can vouch for, and so what the summary claims (SLSA 1.2 Source track):
//! - `SLSA_SOURCE_LEVEL_1`: the revision is in version control and its landing is recorded;
//! - `SLSA_SOURCE_LEVEL_2`: its branch history is continuous in the ingested history (the
//!   landing entered from git history or a verified webhook delivery, on its base branch);
//! - `SLSA_SOURCE_TWO_PARTY_REVIEWED` (a SLSA verified property): a person who wrote and
//!   committed none of its commits approved the final revision.
//!
//! Level 3 (technical controls enforced continuously by the source control system) is a
//! property of the forge's configuration over time, which the ledger does not observe; the
//! summary does not claim it, and so not level 4 either.

use serde_json::{json, Value};

use crate::gate::GateReport;
use crate::policy::tier_name;
use crate::why::{ChangeReport, Entered, ReviewStatus};

/// The predicate type of a SLSA verification summary v1.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The in-toto Statement v1 type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The SLSA Source level the recorded evidence supports, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLevel {
    /// 1 or 2.
    pub level: u8,
    /// Whether a second, independent person approved the final revision.
    pub two_party_reviewed: bool,
    /// One sentence per criterion, met or not.
    pub reasons: Vec<String>,
}

/// What the evidence about `change` supports.
///
/// # Errors
/// A message when the change has not landed (no merge recorded): a source summary is about
/// a revision on a branch.
pub fn source_level(change: &ChangeReport) -> Result<SourceLevel, String> {
    let merge =
        change.merge.as_ref().ok_or_else(|| format!("{} has not landed: no merge is recorded", change.subject))?;
    let mut reasons = vec![format!("landed as {} (entry {})", merge.commit, merge.at.seq)];
    let continuous =
        matches!(merge.vouched.entered, Entered::GitHistory | Entered::WebhookHmac | Entered::WebhookToken);
    reasons.push(if continuous {
        format!("branch continuity: the landing entered the ledger from {}", merge.vouched.entered.describe())
    } else {
        format!("no branch continuity: the landing was {}", merge.vouched.entered.describe())
    });
    let writers: Vec<_> = change.commits.iter().flat_map(|c| [&c.author, &c.committer]).collect();
    let independent = change.reviews.iter().find(|r| {
        r.status == ReviewStatus::Valid
            && r.verdict == ledger_core::record::Verdict::Approved
            && !r.reviewer.is_automation()
            && !r.reviewer.same_person(&change.author)
            && !writers.iter().any(|w| w.same_person(&r.reviewer))
    });
    let two_party = independent.is_some() && !change.commits.is_empty();
    reasons.push(match (independent, change.commits.is_empty()) {
        (_, true) => "two-party review unknown: the change's commits are not recorded".to_string(),
        (Some(r), false) => {
            format!("two-party review: {} approved the final revision (entry {})", r.reviewer, r.at.seq)
        }
        (None, false) => "no approval of the final revision by a second, independent person".to_string(),
    });
    Ok(SourceLevel { level: if continuous { 2 } else { 1 }, two_party_reviewed: two_party, reasons })
}

/// What the statement names besides the change.
pub struct VsaContext<'a> {
    /// The verifier id, e.g. `https://ledger.example.com`.
    pub verifier: &'a str,
    /// The forge's base URL, e.g. `https://github.com`.
    pub forge: &'a str,
    /// Entries the summary rests on: (sequence number, entry hash hex).
    pub inputs: &'a [(u64, String)],
}

/// The in-toto statement of the summary for `change`, under the merge-stage `gate`.
///
/// # Errors
/// As [`source_level`].
pub fn statement(change: &ChangeReport, gate: &GateReport, ctx: &VsaContext<'_>) -> Result<Value, String> {
    let level = source_level(change)?;
    let merge = change.merge.as_ref().ok_or("no merge")?;
    let forge = ctx.forge.trim_end_matches('/');
    let mut levels = vec![format!("SLSA_SOURCE_LEVEL_{}", level.level)];
    if level.two_party_reviewed {
        levels.push("SLSA_SOURCE_TWO_PARTY_REVIEWED".into());
    }
    levels.push(format!("ORG_SOURCE_TIER_{}", tier_name(gate.tier)));
    let allow = gate.decision == ledger_core::record::Decision::Allow;
    levels.push(if allow { "ORG_SOURCE_POLICY_ALLOW" } else { "ORG_SOURCE_POLICY_DENY" }.into());
    let digest = gate.policy.digest.strip_prefix("sha256:").unwrap_or(&gate.policy.digest);
    Ok(json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "uri": format!("{forge}/{}/commit/{}", change.repo, merge.commit),
            "digest": { "gitCommit": merge.commit.as_str() },
        }],
        "predicateType": VSA_PREDICATE_TYPE,
        "predicate": {
            "verifier": { "id": ctx.verifier, "version": { "provenance-ledger": env!("CARGO_PKG_VERSION") } },
            "timeVerified": gate.evaluated_at.to_rfc3339(),
            "resourceUri": format!("git+{forge}/{}", change.repo),
            "policy": {
                "uri": format!("ledger:policy/{}/v{}", gate.policy.name, gate.policy.version),
                "digest": { "sha256": digest },
            },
            "inputAttestations": ctx.inputs.iter().map(|(seq, hash)| json!({
                "uri": format!("ledger:entry/{seq}"),
                "digest": { "blake3": hash },
            })).collect::<Vec<_>>(),
            "verificationResult": if allow { "PASSED" } else { "FAILED" },
            "verifiedLevels": levels,
            "slsaVersion": "1.2",
        },
    }))
}
