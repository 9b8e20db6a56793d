//! Everything the CLI prints: receipts, entries, log lines, key tables and `why` reports.

use std::io::Write;

use anyhow::Result;
use ledger_audit::why::{ChangeReport, WhyReport};
use ledger_core::record::{Body, Record};
use ledger_store::ledger::{EntryView, Receipt};
use serde_json::json;

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
pub fn json_out(v: &impl serde::Serialize) -> Result<()> {
    line(serde_json::to_string_pretty(v)?)
}

/// Whether `e` is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A receipt as JSON.
pub fn receipt_json(r: &Receipt) -> serde_json::Value {
    json!({ "seq": r.seq.0, "entry": r.hash.to_hex(), "record_id": r.record_id.to_hex(), "duplicate": r.duplicate })
}

/// Prints a receipt.
pub fn receipt(r: &Receipt, as_json: bool) -> Result<()> {
    if as_json {
        return json_out(&receipt_json(r));
    }
    if r.duplicate {
        line(format!("already recorded as #{} entry {} (nothing appended)", r.seq, r.hash))
    } else {
        line(format!("appended #{} entry {}", r.seq, r.hash))
    }
}

/// An entry as JSON: position, chain fields, signer and the decoded record.
pub fn entry_json(v: &EntryView, signer_name: Option<&str>) -> serde_json::Value {
    json!({
        "seq": v.seq.0,
        "entry": v.hash.to_hex(),
        "integrated_time": v.entry.time,
        "prev": v.entry.prev.to_hex(),
        "signer": v.entry.signer.to_hex(),
        "signer_name": signer_name,
        "kind": v.record.kind().as_str(),
        "record": v.record,
        "size": v.bytes.len(),
    })
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

/// One `log` line.
pub fn log_line(v: &EntryView) -> String {
    format!(
        "#{:<6} {}  {:<10} {:<40} {}",
        v.seq.0,
        v.entry.time,
        v.record.kind().as_str(),
        truncate(v.record.actor.as_str(), 40),
        summary(&v.record)
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// Prints a `why` report as a readable tree.
pub fn why_human(r: &WhyReport) -> Result<()> {
    let mut s = format!("why {}\n", r.subject);
    for f in &r.findings {
        s += &format!("  ! {}: {}\n", f.code, f.message);
    }
    for c in &r.changes {
        s += &change_human(c);
    }
    out(&s)
}

fn change_human(c: &ChangeReport) -> String {
    let mut s = String::new();
    s += &format!("\nchange {}  \"{}\"   [#{} {}]\n", c.subject, c.title, c.at.seq, short(&c.at.entry));
    s += &format!("├─ author        {}\n", c.author);
    let more = if c.commits_total as usize > c.commits.len() {
        format!(", {} listed", c.commits.len())
    } else {
        String::new()
    };
    if c.commits.is_empty() {
        s += &format!("├─ commits       {} (not listed: recorded from a webhook)\n", c.commits_total);
    } else {
        s += &format!(
            "├─ commits       {}{} by {}\n",
            c.commits_total,
            more,
            c.commit_authors.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    for cm in &c.commits {
        let tr = if cm.trailers.is_empty() { String::new() } else { format!("  [{}]", cm.trailers.join("; ")) };
        s += &format!(
            "│    {}  {:<5} {}{}\n",
            short(cm.sha.as_str()),
            format!("{:?}", cm.signature).to_lowercase(),
            truncate(&cm.title, 60),
            tr
        );
    }
    match &c.merge {
        Some(m) => {
            s += &format!(
                "├─ merged        {} ({:?}) by {} at {}   [#{} {}]\n",
                short(m.commit.as_str()),
                m.method,
                m.merged_by.as_ref().map_or("(unknown)".to_string(), |i| i.to_string()),
                m.time,
                m.at.seq,
                short(&m.at.entry)
            );
        }
        None => s += "├─ merged        (no merge recorded)\n",
    }
    s += &format!("├─ final commit  {}\n", c.final_commit);
    if c.reviews.is_empty() {
        s += "├─ reviews       none recorded\n";
    } else {
        s += "├─ reviews\n";
        for r in &c.reviews {
            s += &format!(
                "│    {:<6} {:?} by {} at {} via {}   [#{} {}]\n",
                r.status,
                r.verdict,
                r.reviewer,
                short(r.commit.as_str()),
                r.via,
                r.at.seq,
                short(&r.at.entry)
            );
        }
    }
    if c.evidence.is_empty() {
        s += "├─ evidence      none recorded\n";
    } else {
        s += "├─ evidence\n";
        for e in &c.evidence {
            let at = if e.at_final_commit { "final commit" } else { "other commit" };
            s += &format!(
                "│    {:?} {} at {} ({})   [#{} {}]\n",
                e.result,
                e.check,
                short(e.commit.as_str()),
                at,
                e.at.seq,
                short(&e.at.entry)
            );
        }
    }
    if c.sessions.is_empty() {
        s += "├─ AI sessions   none recorded\n";
    } else {
        s += "├─ AI sessions\n";
        for x in &c.sessions {
            let tiers = x.model_approved_tiers.as_ref().map_or(String::new(), |t| format!(" approved for {t:?}"));
            s += &format!(
                "│    {} model {}{} via {}   [#{} {}]\n",
                x.subject,
                x.model.as_deref().unwrap_or("(unknown)"),
                tiers,
                x.via,
                x.at.seq,
                short(&x.at.entry)
            );
        }
    }
    for d in &c.deployments {
        s += &format!(
            "├─ deployment    {} {:?} by {} at {} (commit {})   [#{} {}]\n",
            d.subject,
            d.status,
            d.deployer,
            d.time,
            short(d.commit.as_str()),
            d.at.seq,
            short(&d.at.entry)
        );
    }
    for i in &c.incidents {
        let how = if i.inferred { "inferred" } else { "explicit" };
        s += &format!(
            "├─ incident      {} \"{}\" severity {} opened {}{} ← {} ({how})   [#{} {}]\n",
            i.subject,
            i.title,
            i.severity.as_deref().unwrap_or("-"),
            i.opened,
            i.resolved.map(|r| format!(" resolved {r}")).unwrap_or_default(),
            i.cause,
            i.at.seq,
            short(&i.at.entry)
        );
    }
    for x in &c.exceptions {
        let state = if x.expired { "expired" } else { "in force" };
        s += &format!("├─ exception     {} by {} until {} ({state})\n", x.reason, x.approver, x.not_after);
    }
    if c.findings.is_empty() {
        s += "└─ findings      none\n";
    } else {
        s += "└─ findings\n";
        for f in &c.findings {
            s += &format!("     ! {}: {}\n", f.code, f.message);
        }
    }
    s
}
