//! `ledger-ingest`: outside data → Provenance Ledger records.
//!
//! Each module maps one kind of input to typed [`ledger_core::record::Record`]s, without I/O:
//! the caller reads the bytes (a file, an authenticated webhook body, a git repository walked
//! with libgit2) and signs and appends what comes out.
//!
//! | module | input |
//! |---|---|
//! | [`git`] | first-parent git history: landings, trailers, AI-assistance detection |
//! | [`github`] | GitHub webhook deliveries (pull requests, reviews, checks, deployments, incident issues, pushes) and REST API objects |
//! | [`gitlab`] | GitLab webhook deliveries (merge requests, approvals, pipelines, jobs, deployments) and REST API v4 objects |
//! | [`incident`] | PagerDuty v3 and Opsgenie incident payloads |
//! | [`attestation`] | in-toto Statements, DSSE envelopes, Sigstore bundles, SLSA provenance and VSAs |
//! | [`provenance`] | `.ai/provenance.json` files |
//!
//! Every mapping is deterministic: the same input gives the same record bytes, so re-ingesting
//! it appends nothing. Webhook and attestation records keep the SHA-256 of the payload they
//! came from.

pub mod attestation;
mod backfill;
pub mod git;
pub mod github;
pub mod gitlab;
pub mod incident;
mod payload;
pub mod provenance;

pub use backfill::{ChangedFile, Response};
use ledger_core::record::{Channel, Record, Source};

/// Largest payload an ingest reads, in bytes (GitHub caps webhook deliveries at 25 MB; the
/// records made from one are far smaller). The CLI refuses larger files and `ledgerd`'s
/// webhook receiver larger bodies.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;

/// What a delivery (or an attestation file) maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// Records to append, in order.
    Records(Vec<Record>),
    /// Nothing to record, and why.
    Skipped(String),
}

impl Mapped {
    /// The same records, each marked as having reached the ledger through `channel` (the
    /// webhook receiver says it verified the delivery's HMAC or token). Records made from a
    /// payload without a channel were given as a file or by a client: only their signer
    /// vouches for where they came from.
    pub fn received_by(self, channel: Channel) -> Mapped {
        match self {
            Mapped::Records(mut records) => {
                for r in &mut records {
                    if let Some(Source::Payload { channel: c, .. }) = r.body.source_mut() {
                        *c = Some(channel);
                    }
                }
                Mapped::Records(records)
            }
            skipped => skipped,
        }
    }
}

/// What makes a record the same fact whichever way it reached the ledger (a webhook
/// delivery, an API backfill, a re-run of either): the forge object's own identity as the
/// record states it, without the actor (a delivery names its sender, the API does not) or the
/// source (each names its own payload). Keys are compared in memory, never stored. `None` for
/// kinds an ingest from a forge does not make.
///
/// Times are compared to the whole second: GitLab's webhooks write seconds where its API
/// writes milliseconds.
///
/// - review: repository, reviewer, reviewed commit, verdict and the time it was given;
/// - evidence: repository, commit, check name, result and when it concluded;
/// - deployment: service, environment, deployment id, status and the status's time;
/// - change: its subject, head commit and the time of this version (`updated_at`);
/// - merge: repository and landed commit; session: tool and session id.
///
/// An ingest that backfills skips a record whose key a record in the ledger already has.
pub fn dedupe_key(record: &Record) -> Option<String> {
    use ledger_core::record::Body;
    let t = record.time.0.div_euclid(1000);
    match &record.body {
        Body::Review(r) => Some(format!("review\n{}\n{}\n{}\n{:?}\n{t}", r.repo, r.reviewer, r.commit, r.verdict)),
        Body::Evidence(e) => Some(format!("evidence\n{}\n{}\n{}\n{:?}\n{t}", e.repo, e.commit, e.check, e.result)),
        Body::Deployment(d) => {
            Some(format!("deployment\n{}\n{}\n{}\n{:?}\n{t}", d.service, d.environment, d.deployment_id, d.status))
        }
        Body::Change(c) => Some(format!("change\n{}\n{}\n{t}", c.subject(), c.head_commit)),
        Body::Merge(m) => Some(format!("merge\n{}\n{}", m.repo, m.merge_commit)),
        Body::Session(s) => Some(format!("session\n{}\n{}", s.tool, s.session_id)),
        _ => None,
    }
}

/// The facts a ledger holds, by [`dedupe_key`]: what a backfill skips. An approval a GitLab
/// webhook delivered is timed by the merge request's `updated_at` in the delivery, while the
/// API times it by its approval note; so an approval from the GitLab API is also the same
/// fact as a delivered approval by the same reviewer, of the same commit, with the same
/// verdict, matched one to one.
#[derive(Debug, Default)]
pub struct Held {
    keys: std::collections::HashSet<String>,
    delivered_approvals: std::collections::HashMap<String, u32>,
}

fn gitlab_review(record: &Record, source_prefix: &str) -> Option<String> {
    use ledger_core::record::Body;
    let Body::Review(r) = &record.body else { return None };
    let from = match &r.source {
        Some(Source::Payload { format, .. }) => format.starts_with(source_prefix),
        _ => false,
    };
    from.then(|| format!("{}\n{}\n{}\n{:?}", r.repo, r.reviewer, r.commit, r.verdict))
}

impl Held {
    /// Notes a record the ledger holds.
    pub fn note(&mut self, record: &Record) {
        if let Some(k) = dedupe_key(record) {
            self.keys.insert(k);
        }
        if let Some(k) = gitlab_review(record, "gitlab-webhook:") {
            *self.delivered_approvals.entry(k).or_default() += 1;
        }
    }

    /// Whether `record` states a fact not held yet; if it does, the fact is held from now on.
    /// Records of kinds without a [`dedupe_key`] are always new.
    pub fn admit(&mut self, record: &Record) -> bool {
        let Some(key) = dedupe_key(record) else { return true };
        if self.keys.contains(&key) {
            return false;
        }
        self.keys.insert(key);
        if let Some(k) = gitlab_review(record, "gitlab-api:") {
            if let Some(n) = self.delivered_approvals.get_mut(&k).filter(|n| **n > 0) {
                *n -= 1;
                return false;
            }
        }
        true
    }
}
