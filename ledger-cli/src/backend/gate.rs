//! The gate through either backend: evaluate (locally, or by the server's `Gate` call) and
//! re-check a recorded decision.

use anyhow::{anyhow, Result};
use ledger_audit::gate::GateReport;
use ledger_core::record::Stage;
use ledger_proto::v1 as pb;

use super::{status, Backend};

/// A recorded decision evaluated again.
pub struct Rechecked {
    /// The `gate` entry.
    pub seq: u64,
    /// The fresh evaluation, as of the recorded tree size and time.
    pub fresh: GateReport,
    /// Differences from the recorded decision; empty when reproduced exactly.
    pub differences: Vec<String>,
}

fn report(r: Option<pb::GateReport>) -> Result<GateReport> {
    let r = r.ok_or_else(|| anyhow!("the server sent no gate report"))?;
    GateReport::try_from(&r).map_err(|e| anyhow!("the server sent a malformed gate report: {e}"))
}

impl Backend {
    /// Evaluates the policy (`policy_document`, else the one in force) for `subject` at
    /// `stage`. Also returns the `policy` entry of the policy used, when it is published.
    pub fn gate(
        &mut self,
        subject: &str,
        stage: Stage,
        policy_document: Option<&str>,
    ) -> Result<(GateReport, Option<u64>)> {
        match self {
            Backend::Local(l) => {
                let (report, policy) = l.gate_input(subject, stage, policy_document)?;
                Ok((report, policy.published.map(|s| s.0)))
            }
            Backend::Remote(r) => {
                let mut client = r.client.clone();
                let req = r.req(pb::GateRequest {
                    subject: subject.to_string(),
                    stage: stage.as_str().to_string(),
                    policy_document: policy_document.map(str::to_string),
                    recheck_seq: None,
                })?;
                let resp = r.rt.block_on(client.gate(req)).map_err(status)?.into_inner();
                Ok((report(resp.report)?, resp.policy_entry))
            }
        }
    }

    /// Re-evaluates the gate decision recorded at `entry` (`#seq` or an entry hash).
    pub fn recheck(&mut self, entry: &str) -> Result<Rechecked> {
        match self {
            Backend::Local(l) => {
                let r = l.recheck_gate(entry)?;
                let mut fresh = r.fresh;
                fresh.recorded_at = Some(r.seq.0);
                Ok(Rechecked { seq: r.seq.0, fresh, differences: r.differences })
            }
            Backend::Remote(_) => {
                let seq = self.find_entry(entry)?.seq.0;
                let Backend::Remote(r) = self else { unreachable!("matched above") };
                let mut client = r.client.clone();
                let req = r.req(pb::GateRequest { recheck_seq: Some(seq), ..Default::default() })?;
                let resp = r.rt.block_on(client.gate(req)).map_err(status)?.into_inner();
                Ok(Rechecked { seq, fresh: report(resp.report)?, differences: resp.differences })
            }
        }
    }
}
