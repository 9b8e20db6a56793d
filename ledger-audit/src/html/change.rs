//! The change report: one subject's chain (AI session → change → reviews → checks → merge →
//! gates → deployments → incidents) drawn as a timeline, every point naming its entry.

use serde::Serialize;

use super::svg::{timeline, Event};
use super::{card, esc, page, short, table};
use crate::why::{ChangeReport, ReviewStatus, WhyReport};

/// A serde enum's wire name (`approved`, `pass`, `squash`), for display.
pub(super) fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// The chain of one change, in the order the timeline draws it.
pub(super) fn events(c: &ChangeReport) -> Vec<Event> {
    let ev = |stage, what: String, when: String, at: &crate::why::EntryRef, tone| Event {
        stage,
        what,
        when,
        seq: at.seq,
        entry: at.entry.clone(),
        tone,
    };
    let mut out = vec![];
    for s in &c.sessions {
        let model = s.model.as_deref().unwrap_or("model not recorded");
        out.push(ev("session", format!("{} ({model}) {}", s.tool, s.subject), String::new(), &s.at, ""));
    }
    let number = c.number.map(|n| format!("#{n} ")).unwrap_or_default();
    out.push(ev("change", format!("{} {number}“{}” by {}", c.repo, c.title, c.author), String::new(), &c.at, ""));
    let mut reviews: Vec<_> = c.reviews.iter().collect();
    reviews.sort_by_key(|r| (r.time, r.at.seq));
    for r in reviews {
        let tone = match (r.status, name(&r.verdict).as_str()) {
            (ReviewStatus::Valid, "approved") => "pass",
            (_, "changes_requested") => "fail",
            _ => "",
        };
        out.push(ev(
            "review",
            format!(
                "{} {} at {} ({}, via {})",
                r.reviewer,
                name(&r.verdict),
                short(r.commit.as_str()),
                name(&r.status),
                r.via
            ),
            r.time.to_rfc3339(),
            &r.at,
            tone,
        ));
    }
    for e in &c.evidence {
        let result = name(&e.result);
        let tone = if !e.counts {
            ""
        } else if result == "pass" {
            "pass"
        } else {
            "fail"
        };
        let at = if e.at_final_commit { "the final commit" } else { "an earlier commit" };
        out.push(ev(
            "check",
            format!("{} {result} at {at} {} ({})", e.check, short(e.commit.as_str()), e.verification.as_str()),
            String::new(),
            &e.at,
            tone,
        ));
    }
    if let Some(m) = &c.merge {
        let by = m.merged_by.as_ref().map(|p| format!(" by {p}")).unwrap_or_default();
        out.push(ev(
            "merge",
            format!("{} merge → {}{by}", name(&m.method), short(m.commit.as_str())),
            m.time.to_rfc3339(),
            &m.at,
            "",
        ));
    }
    for g in &c.gates {
        let tone = if name(&g.decision) == "allow" { "pass" } else { "fail" };
        let stage = g.stage.as_ref().map(name).unwrap_or_default();
        out.push(ev(
            "gate",
            format!("{stage} gate: {} under {}", name(&g.decision), g.policy),
            g.time.to_rfc3339(),
            &g.at,
            tone,
        ));
    }
    for x in &c.exceptions {
        out.push(ev(
            "exception",
            format!("exception by {}: {}{}", x.approver, x.reason, if x.expired { " (expired)" } else { "" }),
            String::new(),
            &x.at,
            if x.expired { "fail" } else { "" },
        ));
    }
    let mut deployments: Vec<_> = c.deployments.iter().collect();
    deployments.sort_by_key(|d| (d.time, d.at.seq));
    for d in deployments {
        let status = name(&d.status);
        let tone = match status.as_str() {
            "success" => "pass",
            "failure" | "error" => "fail",
            _ => "",
        };
        out.push(ev(
            "deployment",
            format!("{} {status} by {} ({})", d.subject, d.deployer, short(d.commit.as_str())),
            d.time.to_rfc3339(),
            &d.at,
            tone,
        ));
    }
    let mut incidents: Vec<_> = c.incidents.iter().collect();
    incidents.sort_by_key(|i| (i.opened, i.at.seq));
    for i in incidents {
        let how = if i.inferred {
            format!("inferred cause {}: {}", i.cause, i.inference.as_deref().unwrap_or("service and time"))
        } else {
            format!("caused by {}", i.cause)
        };
        out.push(ev("incident", format!("{} “{}” · {how}", i.subject, i.title), i.opened.to_rfc3339(), &i.at, "fail"));
    }
    out
}

/// The HTML of one change's chain: summary cards, the timeline, findings and the entry table.
/// `anchor` prefixes element ids so several chains can share a page.
pub(super) fn chain_html(c: &ChangeReport, anchor: &str) -> String {
    let valid = c.reviews.iter().filter(|r| r.status == ReviewStatus::Valid && name(&r.verdict) == "approved").count();
    let at_final = c.evidence.iter().filter(|e| e.at_final_commit && e.counts).count();
    let mut s = format!(
        "<div class=\"chain\" data-change=\"{}\"><div class=\"cards\">{}{}{}{}{}</div>",
        esc(&c.subject),
        card(&valid.to_string(), "valid approvals"),
        card(&at_final.to_string(), "checks at the final commit"),
        card(&c.deployments.len().to_string(), "deployments"),
        card(&c.incidents.len().to_string(), "incidents"),
        card(&c.findings.len().to_string(), "findings"),
    );
    let events = events(c);
    s.push_str(&timeline(&format!("{anchor}timeline"), &events));
    for f in &c.findings {
        s.push_str(&format!(
            "<div class=\"finding\" data-code=\"{}\"><code>{}</code> {}</div>",
            esc(&f.code),
            esc(&f.code),
            esc(&f.message)
        ));
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                esc(e.stage),
                esc(&e.what),
                esc(&e.when),
                format!("<span class=\"mono\">#{}</span>", e.seq),
                format!("<span class=\"mono\">{}</span>", esc(&e.entry)),
            ]
        })
        .collect();
    s.push_str("<details><summary>entries</summary>");
    s.push_str(&table(&format!("{anchor}entries"), &["stage", "what", "when", "#entry", "entry hash"], &rows));
    s.push_str("</details></div>");
    s
}

/// The change report page of `why` (whatever subject it was asked of: a change, commit,
/// deployment or incident).
pub fn change_page(why: &WhyReport) -> String {
    let mut body = format!(
        "<h1>Change report</h1><p class=\"sub\">subject <code id=\"subject\">{}</code> · {} change(s) · walked {}</p>",
        esc(&why.subject),
        why.changes.len(),
        esc(&why.walked.iter().map(|w| w.subject.as_str()).collect::<Vec<_>>().join(" → "))
    );
    for f in &why.findings {
        body.push_str(&format!("<div class=\"finding\" data-code=\"{}\">{}</div>", esc(&f.code), esc(&f.message)));
    }
    for (i, c) in why.changes.iter().enumerate() {
        body.push_str(&format!(
            "<h2 id=\"change-{i}\">{} <span class=\"sub\">{} → {}</span></h2>",
            esc(&c.subject),
            esc(short(c.head_commit.as_str())),
            esc(short(c.final_commit.as_str()))
        ));
        body.push_str(&chain_html(c, &format!("change-{i}-")));
    }
    page("change", &format!("Change report: {}", why.subject), &body)
}
