//! `ledger-ingest`: outside data → Provenance Ledger records.
//!
//! Each module maps one kind of input to typed [`ledger_core::record::Record`]s, without I/O:
//! the caller reads the bytes (a file, an authenticated webhook body, a git repository walked
//! with libgit2) and signs and appends what comes out.
//!
//! | module | input |
//! |---|---|
//! | [`git`] | first-parent git history: landings, trailers, AI-assistance detection |
//! | [`github`] | GitHub webhook deliveries (pull requests, reviews, checks, deployments, incident issues, pushes) |
//! | [`gitlab`] | GitLab webhook deliveries (merge requests, approvals, pipelines, jobs, deployments) |
//! | [`incident`] | PagerDuty v3 and Opsgenie incident payloads |
//! | [`attestation`] | in-toto Statements, DSSE envelopes, Sigstore bundles, SLSA provenance and VSAs |
//! | [`provenance`] | `.ai/provenance.json` files |
//!
//! Every mapping is deterministic: the same input gives the same record bytes, so re-ingesting
//! it appends nothing. Webhook and attestation records keep the SHA-256 of the payload they
//! came from.

pub mod attestation;
pub mod git;
pub mod github;
pub mod gitlab;
pub mod incident;
mod payload;
pub mod provenance;

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
