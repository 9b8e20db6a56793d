//! The auditor's workpaper: the population summary with its completeness findings and control
//! totals, how the sample was drawn, the sample table with every control per item, and each
//! item's chain.

use std::collections::BTreeMap;

use super::change::chain_html;
use super::{card, esc, page, table};
use crate::controls::{ControlsReport, Outcome};
use crate::population::{Population, PopulationItem};
use crate::why::WhyReport;

/// One sampled deployment.
#[derive(Clone, Debug)]
pub struct WorkpaperItem<'a> {
    /// Its sample key (hex), by which it was drawn.
    pub key: &'a str,
    /// The deployment.
    pub item: &'a PopulationItem,
    /// Every control's outcome for it, in the controls report's order.
    pub outcomes: Vec<(&'static str, Outcome)>,
    /// Its `why` report (the chain).
    pub why: &'a WhyReport,
}

/// What the workpaper shows.
#[derive(Clone, Debug)]
pub struct Workpaper<'a> {
    /// The population of the period.
    pub population: &'a Population,
    /// The control tests over the whole population.
    pub controls: &'a ControlsReport,
    /// The sample seed.
    pub seed: &'a str,
    /// How the sample is drawn, in words.
    pub algorithm: &'a str,
    /// The tree size the sample is drawn at.
    pub tree_size: u64,
    /// The signed checkpoint of that tree size, when there is one.
    pub checkpoint: Option<&'a str>,
    /// The sample, in key order.
    pub items: Vec<WorkpaperItem<'a>>,
}

fn outcome_cell(o: &Outcome) -> String {
    match o {
        Outcome::Pass => "<span class=\"pass\" data-outcome=\"pass\">pass</span>".into(),
        Outcome::NotApplicable => "<span class=\"not_applicable\" data-outcome=\"not_applicable\">n/a</span>".into(),
        Outcome::Fail(reason) => {
            format!("<span class=\"fail\" data-outcome=\"fail\" title=\"{}\">fail</span>", esc(reason))
        }
    }
}

/// The workpaper page.
pub fn workpaper_page(w: &Workpaper<'_>) -> String {
    let pop = w.population;
    let title = format!("Change management workpaper: {} {}", pop.environment, pop.period);
    let mut body = format!(
        "<h1>Change management workpaper</h1><p class=\"sub\">{} deployments in <span id=\"period\">{}</span>{} · \
         tree size {}</p>",
        esc(&pop.environment),
        esc(&pop.period.to_string()),
        pop.repo.as_ref().map(|r| format!(" · repository {}", esc(r))).unwrap_or_default(),
        w.tree_size
    );

    // The population.
    let failing_any: usize = {
        let mut subjects = std::collections::BTreeSet::new();
        for c in &w.controls.controls {
            subjects.extend(c.failing.iter().map(|f| f.subject.as_str()));
        }
        subjects.len()
    };
    body.push_str("<h2 id=\"population\">Population</h2><div class=\"cards\" id=\"population-summary\">");
    body.push_str(&card(&pop.deployments.len().to_string(), "successful deployments"));
    body.push_str(&card(
        &pop.deployments
            .iter()
            .flat_map(|d| d.changes.iter())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            .to_string(),
        "changes shipped",
    ));
    body.push_str(&card(&pop.findings.len().to_string(), "completeness findings"));
    body.push_str(&card(&failing_any.to_string(), "deployments failing a control"));
    body.push_str("</div>");
    let mut by_code: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for f in &pop.findings {
        by_code.entry(f.code.as_str()).or_default().push(format!("{} (#{})", f.subject, f.seq));
    }
    let rows: Vec<Vec<String>> = by_code
        .iter()
        .map(|(code, items)| {
            let shown: Vec<String> = items.iter().take(20).map(|s| esc(s)).collect();
            let more = if items.len() > 20 { format!(" … and {} more", items.len() - 20) } else { String::new() };
            vec![format!("<code>{}</code>", esc(code)), items.len().to_string(), shown.join("<br>") + &more]
        })
        .collect();
    if rows.is_empty() {
        body.push_str("<p class=\"note\">Completeness: no findings.</p>");
    } else {
        body.push_str(&table("findings", &["finding", "#count", "subjects (entries)"], &rows));
    }

    // The control tests over the population.
    body.push_str("<h2 id=\"controls\">Control tests over the population</h2>");
    let rows: Vec<Vec<String>> = w
        .controls
        .controls
        .iter()
        .map(|c| {
            vec![
                format!("<code>{}</code>", esc(&c.control)),
                format!("<span class=\"pass\">{}</span>", c.passed),
                format!("<span class=\"{}\">{}</span>", if c.failed > 0 { "fail" } else { "pass" }, c.failed),
                c.not_applicable.to_string(),
            ]
        })
        .collect();
    body.push_str(&table("control-totals", &["control", "#passed", "#failed", "#not applicable"], &rows));

    // The sample.
    body.push_str(&format!(
        "<h2 id=\"sample-method\">Sample</h2><div class=\"cards\">{}{}{}</div>\
         <p>Seed <code id=\"seed\">{}</code>. {}</p>",
        card(&w.items.len().to_string(), "items sampled"),
        card(&pop.deployments.len().to_string(), "population"),
        card(&w.tree_size.to_string(), "tree size"),
        esc(w.seed),
        esc(w.algorithm)
    ));
    match w.checkpoint {
        Some(c) => {
            body.push_str(&format!("<p>Drawn at the signed checkpoint:</p><pre id=\"checkpoint\">{}</pre>", esc(c)))
        }
        None => body.push_str("<p class=\"note\">No signed checkpoint: drawn at the current tree size.</p>"),
    }
    let mut header: Vec<&str> = vec!["#", "deployment", "time", "deployer", "changes"];
    // Control names with spaces, so that the headers can wrap.
    let controls: Vec<String> =
        w.items.first().map(|i| i.outcomes.iter().map(|(n, _)| n.replace('_', " ")).collect()).unwrap_or_default();
    header.extend(controls.iter().map(String::as_str));
    header.push("chain");
    let rows: Vec<Vec<String>> = w
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut row = vec![
                (i + 1).to_string(),
                format!("{}<br><span class=\"mono\">#{}</span>", esc(&it.item.subject), it.item.seq),
                esc(&it.item.time.to_rfc3339()),
                esc(it.item.deployer.as_str()),
                if it.item.changes.is_empty() {
                    "<span class=\"fail\">none linked</span>".into()
                } else {
                    it.item.changes.iter().map(|c| esc(c)).collect::<Vec<_>>().join("<br>")
                },
            ];
            row.extend(it.outcomes.iter().map(|(_, o)| outcome_cell(o)));
            row.push(format!("<a href=\"#item-{}\">chain</a>", i + 1));
            row
        })
        .collect();
    body.push_str(&table("sample", &header, &rows));

    // Each item's chain.
    body.push_str("<h2 id=\"chains\">Sampled items</h2>");
    for (i, it) in w.items.iter().enumerate() {
        body.push_str(&format!(
            "<section class=\"item\" id=\"item-{}\" data-subject=\"{}\"><h3>{}. {} <span class=\"sub\">entry #{} · key {}</span></h3>",
            i + 1,
            esc(&it.item.subject),
            i + 1,
            esc(&it.item.subject),
            it.item.seq,
            esc(super::short(it.key))
        ));
        let failing: Vec<String> = it
            .outcomes
            .iter()
            .filter_map(|(n, o)| match o {
                Outcome::Fail(r) => Some(format!("<li><code>{}</code>: {}</li>", esc(n), esc(r))),
                _ => None,
            })
            .collect();
        if !failing.is_empty() {
            body.push_str(&format!("<div class=\"finding\"><ul>{}</ul></div>", failing.join("")));
        }
        if it.why.changes.is_empty() {
            body.push_str("<p class=\"finding\">Nothing links this deployment to a recorded change.</p>");
        }
        for (j, c) in it.why.changes.iter().enumerate() {
            body.push_str(&format!("<h3>{}</h3>", esc(&c.subject)));
            body.push_str(&chain_html(c, &format!("item-{}-{j}-", i + 1)));
        }
        body.push_str("<p><a href=\"#sample\">back to the sample</a></p></section>");
    }
    page("workpaper", &title, &body)
}
