//! Printing: text and JSON to standard output, and the output types several commands share
//! (receipts, entries). Each command's own report is a `Serialize` type in its module.

use std::io::Write;

use anyhow::Result;
use ledger_core::chain::Receipt;
use ledger_core::record::{Body, Record};
use ledger_store::ledger::EntryView;
use serde::Serialize;

/// Writes to standard output. A closed pipe surfaces as an error that `main` turns into exit 0.
pub fn out(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()?;
    Ok(())
}

/// Writes one line.
pub fn line(s: impl AsRef<str>) -> Result<()> {
    out(&format!("{}\n", s.as_ref()))
}

/// Writes `v` as pretty JSON.
pub fn json_out(v: &impl Serialize) -> Result<()> {
    line(serde_json::to_string_pretty(v)?)
}

/// A progress bar on standard error for long work, hidden with `--json` or when standard
/// error is not a terminal. `template` is an indicatif template (`{bar:40} {pos}/{len} …`).
pub fn progress(json: bool, total: u64, template: &str) -> indicatif::ProgressBar {
    let bar = if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Whether `e` is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A receipt, as every command that appends reports it: where the record is, and whether it
/// was already there. `kind` is given by ingests (which append several kinds); `proof` by
/// `append --prove`.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptOut {
    /// True when the record was already in the ledger and nothing was appended.
    pub duplicate: bool,
    /// Entry hash, hex.
    pub entry: String,
    /// Record kind, for ingests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Record id, hex.
    pub record_id: String,
    /// Sequence number.
    pub seq: u64,
    /// The checked inclusion proof, for `append --prove`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofOut>,
}

/// The inclusion proof an `append --prove` receipt carries.
#[derive(Clone, Debug, Serialize)]
pub struct ProofOut {
    /// C2SP tlog-proof@v1 text.
    pub tlog_proof: String,
    /// The tree size of the checkpoint it proves against.
    pub tree_size: u64,
    /// The log's verifier key that signed the checkpoint.
    pub verifier_key: String,
}

impl ReceiptOut {
    /// The output form of `r`.
    pub fn new(r: &Receipt) -> Self {
        ReceiptOut {
            duplicate: r.duplicate,
            entry: r.hash.to_hex(),
            kind: None,
            record_id: r.record_id.to_hex(),
            seq: r.seq.0,
            proof: None,
        }
    }

    /// With the record's kind.
    pub fn of_kind(r: &Receipt, kind: &'static str) -> Self {
        ReceiptOut { kind: Some(kind), ..ReceiptOut::new(r) }
    }

    /// The receipt as one line of text.
    pub fn text(&self) -> String {
        if self.duplicate {
            format!("already recorded as #{} entry {} (nothing appended)", self.seq, self.entry)
        } else {
            format!("appended #{} entry {}", self.seq, self.entry)
        }
    }
}

/// Prints a receipt, as text or (with `--json`) JSON.
pub fn receipt(r: &Receipt, as_json: bool) -> Result<()> {
    let out = ReceiptOut::new(r);
    if as_json {
        json_out(&out)
    } else {
        line(out.text())
    }
}

/// An entry as `show` and `log` print it in JSON: position, chain fields, signer and the
/// decoded record.
#[derive(Debug, Serialize)]
pub struct EntryOut<'a> {
    /// Entry hash, hex.
    pub entry: String,
    /// Integration time.
    pub integrated_time: ledger_core::types::Timestamp,
    /// Record kind.
    pub kind: &'static str,
    /// Previous entry's hash, hex.
    pub prev: String,
    /// The decoded record.
    pub record: &'a Record,
    /// Sequence number.
    pub seq: u64,
    /// Signer key id, hex.
    pub signer: String,
    /// The signer key's registered name, if known.
    pub signer_name: Option<&'a str>,
    /// Stored size in bytes.
    pub size: usize,
}

impl<'a> EntryOut<'a> {
    /// The output form of `v`, signed by the key named `signer_name`.
    pub fn new(v: &'a EntryView, signer_name: Option<&'a str>) -> Self {
        EntryOut {
            entry: v.hash.to_hex(),
            integrated_time: v.entry.time,
            kind: v.record.kind().as_str(),
            prev: v.entry.prev.to_hex(),
            record: &v.record,
            seq: v.seq.0,
            signer: v.entry.signer.to_hex(),
            signer_name,
            size: v.bytes.len(),
        }
    }
}

/// A one-line summary of a record for `log`.
pub fn summary(r: &Record) -> String {
    match &r.body {
        Body::Session(s) => format!("{} {}", s.subject(), s.model.as_deref().unwrap_or("")),
        Body::Model(m) => format!("{} {} tiers {:?}", m.tool, m.model, m.approved_tiers),
        Body::Change(c) => format!("{} \"{}\" ({} commits)", c.subject(), c.title, c.commits_total),
        Body::Review(v) => format!("{:?} by {} at {}", v.verdict, v.reviewer, &v.commit.as_str()[..12]).to_lowercase(),
        Body::Evidence(e) => format!("{} {:?} at {}", e.check, e.result, &e.commit.as_str()[..12]),
        Body::Exception(x) => format!("{} until {} by {}", x.scope, x.not_after, x.approver),
        Body::Merge(m) => format!(
            "{} {:?} by {}",
            &m.merge_commit.as_str()[..12],
            m.method,
            m.merged_by.as_ref().map_or("(unknown)".to_string(), |i| i.to_string())
        ),
        Body::Deployment(d) => format!("{} {:?}", d.subject(), d.status),
        Body::Incident(i) => format!("{} \"{}\"", i.subject(), i.title),
        Body::Policy(p) => format!("{} v{}", p.name, p.version),
        Body::Gate(g) => format!("{} {:?}", g.subject, g.decision),
        Body::Key(k) => format!(
            "{:?} {} kinds {}",
            k.action,
            k.name,
            k.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
        ),
        _ => String::new(),
    }
}

/// One `log` line: seq, integration time, the record's own (event) time, kind, actor, the
/// change it belongs to (if linked) and a summary.
pub fn log_line(v: &EntryView) -> String {
    let change = v
        .record
        .links
        .iter()
        .find(|l| l.rel == ledger_core::record::Rel::Change)
        .map(|l| format!(" [{}]", l.target))
        .unwrap_or_default();
    format!(
        "#{:<6} {}  event {}  {:<10} {:<40} {}{change}",
        v.seq.0,
        v.entry.time,
        v.record.time,
        v.record.kind().as_str(),
        truncate(v.record.actor.as_str(), 40),
        summary(&v.record)
    )
}

/// `s` cut to `n` characters, with `…` when cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The first 12 characters (a short hash or commit id).
pub fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}
