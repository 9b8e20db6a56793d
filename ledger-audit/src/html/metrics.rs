//! The metrics report: every figure of [`Metrics`] as a bar chart with one bar per group
//! (per tier by default) beside the whole, the figures' table, and the integrity findings.
//! Speed is never drawn without the change failure rate: both sit in the first row.

use super::svg::{bar_chart, Bar};
use super::{card, esc, page, table};
use crate::metrics::{Distribution, Figures, Metrics, Rate};

fn dist_text(d: &Distribution) -> String {
    match (d.median, d.p90) {
        (Some(m), Some(p)) => format!("median {m:.1} · p90 {p:.1} (n={})", d.count),
        _ => "no data".into(),
    }
}

fn rate_text(r: &Rate) -> String {
    match r.rate {
        Some(x) => format!("{:.1}% ({}/{})", x * 100.0, r.numerator, r.denominator),
        None => format!("no data (0/{})", r.denominator),
    }
}

enum Figure {
    Count(fn(&Figures) -> f64, fn(&Figures) -> String),
    Dist(fn(&Figures) -> &Distribution),
    Rate(fn(&Figures) -> &Rate),
}

/// Every charted figure: its id (the JSON field), its title, how to read it.
fn figures() -> Vec<(&'static str, &'static str, Figure)> {
    vec![
        (
            "deployments_per_day",
            "Deployment frequency (per day)",
            Figure::Count(
                |f| f.deployments_per_day,
                |f| format!("{:.2}/day ({} deployments)", f.deployments_per_day, f.deployments),
            ),
        ),
        (
            "change_failure_rate",
            "Change failure rate (explicit causes, rollbacks)",
            Figure::Rate(|f| &f.change_failure_rate),
        ),
        (
            "change_failure_rate_with_inferred",
            "Change failure rate, with inferred causes",
            Figure::Rate(|f| &f.change_failure_rate_with_inferred),
        ),
        (
            "lead_time_first_commit_hours",
            "Lead time, first commit → production (h)",
            Figure::Dist(|f| &f.lead_time_first_commit_hours),
        ),
        ("lead_time_merge_hours", "Lead time, merge → production (h)", Figure::Dist(|f| &f.lead_time_merge_hours)),
        ("time_to_restore_hours", "Time to restore (h)", Figure::Dist(|f| &f.time_to_restore_hours)),
        (
            "with_test_evidence",
            "Changes with test evidence at the final commit",
            Figure::Rate(|f| &f.with_test_evidence),
        ),
        ("with_test_delta", "Changes with a test delta", Figure::Rate(|f| &f.with_test_delta)),
        (
            "approved_at_final_commit",
            "Changes approved at the final commit",
            Figure::Rate(|f| &f.approved_at_final_commit),
        ),
        ("ai_assisted", "AI-assisted changes", Figure::Rate(|f| &f.ai_assisted)),
        ("ai_diff_lines", "AI-assisted diff size (lines)", Figure::Dist(|f| &f.ai_diff_lines)),
        ("review_time_hours", "Review time (h)", Figure::Dist(|f| &f.review_time_hours)),
    ]
}

/// The metrics report page of `m`.
pub fn metrics_page(m: &Metrics) -> String {
    let mut groups: Vec<(&str, &Figures)> = vec![("all", &m.all)];
    groups.extend(m.groups.iter().map(|(k, f)| (k.as_str(), f)));
    let split = m.by.as_deref().unwrap_or("none");
    let mut body = format!(
        "<h1>Delivery metrics</h1><p class=\"sub\"><span id=\"window\">{}</span> · environment {} · split by {}</p>",
        esc(&m.window.to_string()),
        esc(&m.environment),
        esc(split)
    );
    body.push_str("<div class=\"cards\" id=\"headline\">");
    body.push_str(&card(&m.all.deployments.to_string(), "deployments"));
    body.push_str(&card(&rate_text(&m.all.change_failure_rate), "change failure rate"));
    body.push_str(&card(&dist_text(&m.all.lead_time_merge_hours), "lead time, merge → production (h)"));
    body.push_str(&card(&format!("{} open · {} expired", m.exceptions.open, m.exceptions.expired), "exceptions"));
    let spend: Vec<String> = m.ai_spend.iter().map(|a| format!("{:.2} {}", a.per_engineer_month, a.currency)).collect();
    body.push_str(&card(
        &if spend.is_empty() { "not recorded".to_string() } else { spend.join(" · ") },
        "AI spend per engineer-month",
    ));
    body.push_str("</div>");
    if m.findings.is_empty() {
        body.push_str("<p class=\"note\" id=\"findings\">Integrity: no findings.</p>");
    } else {
        body.push_str("<div id=\"findings\">");
        for f in &m.findings {
            body.push_str(&format!(
                "<div class=\"finding\" data-code=\"{}\"><code>{}</code> {}</div>",
                esc(&f.code),
                esc(&f.code),
                esc(&f.message)
            ));
        }
        body.push_str("</div>");
    }
    body.push_str(&format!(
        "<h2 id=\"charts\">Per {}</h2><div class=\"charts\">",
        esc(if split == "none" { "whole" } else { split })
    ));
    let mut rows: Vec<Vec<String>> = vec![];
    for (id, title, fig) in figures() {
        let (bars, max): (Vec<Bar>, Option<f64>) = match &fig {
            Figure::Count(v, t) => (
                groups.iter().map(|(k, f)| Bar { label: k.to_string(), value: Some(v(f)), text: t(f) }).collect(),
                None,
            ),
            Figure::Dist(d) => (
                groups
                    .iter()
                    .map(|(k, f)| Bar { label: k.to_string(), value: d(f).median, text: dist_text(d(f)) })
                    .collect(),
                None,
            ),
            Figure::Rate(r) => (
                groups
                    .iter()
                    .map(|(k, f)| Bar { label: k.to_string(), value: r(f).rate, text: rate_text(r(f)) })
                    .collect(),
                Some(1.0),
            ),
        };
        body.push_str(&bar_chart(id, title, &bars, max));
        let mut row = vec![esc(title)];
        row.extend(bars.iter().map(|b| esc(&b.text)));
        rows.push(row);
    }
    body.push_str("</div><h2 id=\"table\">Figures</h2>");
    let mut header = vec!["figure"];
    header.extend(groups.iter().map(|(k, _)| *k));
    body.push_str(&table("figures", &header, &rows));
    body.push_str(
        "<p class=\"note\">Definitions: docs/METRICS.md. Distributions are medians and 90th percentiles \
         over the items counted (n); rates give numerator/denominator.</p>",
    );
    page("metrics", &format!("Delivery metrics {}", m.window), &body)
}
