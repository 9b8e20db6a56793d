//! The HTML reports, opened in headless Chromium: each page is screenshotted, then its DOM is
//! queried by a script run in the browser (on a test copy of the page; the reports themselves
//! carry no script) and compared with the JSON of the commands the page summarises.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::audit::{append, seven_pull_requests};
use crate::support::Ledger;

/// Debian's Chromium, or `None` (with a notice) when this machine has none; under `CI` a
/// missing browser is an error (`.ci/run` installs it).
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("headless Chromium is missing (CI is set, so this is an error): apt-get install -y chromium");
    }
    eprintln!("notice: no Chromium on this machine; skipping the browser checks");
    None
}

fn headless(browser: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]);
    c
}

/// Takes a screenshot of `page` and checks it is a PNG of the window's width.
fn screenshot(browser: &Path, page: &Path) {
    let png = page.with_extension("png");
    let out = headless(browser)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("running chromium");
    assert!(out.status.success(), "chromium --screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).expect("the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().expect("IHDR width"));
    assert_eq!(width, 1280, "screenshot width");
    assert!(bytes.len() > 20_000, "a page with content, not a blank screen ({} bytes)", bytes.len());
}

/// What the browser's DOM says: the page is copied with `script` (which must assign an object
/// to `r`) appended; Chromium runs it and the result is read back from the dumped DOM.
fn dom(browser: &Path, page: &Path, script: &str) -> Value {
    let html = std::fs::read_to_string(page).expect("the page");
    let probe = format!(
        "<script>(function(){{let r;{script};\
         r.resources=performance.getEntriesByType('resource').length;\
         const p=document.createElement('pre');p.id='dom-check';p.textContent=JSON.stringify(r);\
         document.body.appendChild(p);}})();</script></body>"
    );
    let copy = page.with_extension("check.html");
    std::fs::write(&copy, html.replacen("</body>", &probe, 1)).expect("writing the probe copy");
    let out = headless(browser)
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.display()))
        .output()
        .expect("running chromium");
    assert!(out.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&out.stderr));
    let dumped = String::from_utf8_lossy(&out.stdout);
    let start = dumped.find("<pre id=\"dom-check\">").expect("the probe ran") + "<pre id=\"dom-check\">".len();
    let end = start + dumped[start..].find("</pre>").expect("end of the probe output");
    let text = dumped[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe output {text}: {e}"));
    assert_eq!(v["resources"], 0, "the page fetched something: {v}");
    v
}

/// The page refers to nothing outside itself.
fn self_contained(page: &Path) {
    let html = std::fs::read_to_string(page).expect("the page");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for outside in ["http://", "https://", "src=", "<link", "@import", "url(", "<script"] {
        assert!(!html.contains(outside), "{}: refers outside itself ({outside})", page.display());
    }
}

/// Seven April pull requests with known control outcomes (as in the controls test), an
/// incident caused by the first deployment, and a deployment of an unknown commit.
fn history(l: &Ledger, dir: &Path) {
    seven_pull_requests(l, dir);
    append(
        l,
        dir,
        "incident",
        json!({
            "actor": "pagerduty:ops", "time": "2026-04-01T12:00:00Z", "system": "pagerduty", "incident_id": "P1",
            "title": "checkout errors", "severity": "high", "opened": "2026-04-01T12:00:00Z",
            "resolved": "2026-04-01T13:30:00Z", "links": [{"rel": "caused_by", "target": "deploy:shop/production/0"}],
        }),
    );
    append(
        l,
        dir,
        "deployment",
        json!({
            "actor": "github:ops", "time": "2026-04-20T11:00:00Z", "service": "shop", "environment": "production",
            "deployment_id": "stray", "repo": "acme/shop", "commits": ["f".repeat(40)], "deployer": "github:ops", "status": "success",
        }),
    );
}

#[test]
fn the_workpaper_shows_the_population_the_sample_and_every_control_per_item() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    history(&l, tmp.path());
    let page = tmp.path().join("workpaper.html");
    let p = page.to_str().unwrap();
    let period = "2026-04-01..2026-04-30";
    let written =
        l.json(["report", "workpaper", "--period", period, "--seed", "audit-2026", "--n", "5", "--html", p, "--json"]);
    assert_eq!((written["population"].as_u64(), written["sampled"].as_u64()), (Some(8), Some(5)), "{written}");
    self_contained(&page);

    // The same sample and control outcomes as the commands.
    let sample = l.json(["sample", "--period", period, "--seed", "audit-2026", "--n", "5", "--json"]);
    let sampled: Vec<String> =
        sample["items"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap().to_string()).collect();
    let controls = l.json_code_any(["controls", "test", "--period", period, "--json"]);
    let failing: BTreeSet<(String, String)> =
        controls["controls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| {
                c["failing"].as_array().unwrap().iter().map(move |f| {
                    (c["control"].as_str().unwrap().to_string(), f["subject"].as_str().unwrap().to_string())
                })
            })
            .collect();

    let Some(browser) = chromium() else { return };
    screenshot(&browser, &page);
    let v = dom(
        &browser,
        &page,
        "const head=[...document.querySelectorAll('#sample thead th')].map(t=>t.textContent);\
         const rows=[...document.querySelectorAll('#sample tbody tr')].map(tr=>{\
           const cells=[...tr.children];\
           const link=tr.querySelector('a').getAttribute('href');\
           const target=document.querySelector(link);\
           return {subject: cells[1].childNodes[0].textContent,\
                   outcomes: cells.slice(5, cells.length-1).map(c=>c.querySelector('[data-outcome]').dataset.outcome),\
                   section: target ? target.dataset.subject : null,\
                   events: target ? target.querySelectorAll('g.event').length : 0};});\
         r={report: document.body.dataset.report, head, rows,\
            population: document.querySelector('#population-summary .value').textContent,\
            totals: [...document.querySelectorAll('#control-totals tbody tr')].map(tr=>[...tr.children].map(c=>c.textContent)),\
            seed: document.querySelector('#seed').textContent}",
    );
    assert_eq!(v["report"], "workpaper");
    assert_eq!(v["population"], "8");
    assert_eq!(v["seed"], "audit-2026");
    let head: Vec<&str> = v["head"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    let names = ["authorized", "tested", "linked", "emergency_reviewed", "ai_human_approved"];
    let spaced: Vec<String> = names.iter().map(|n| n.replace('_', " ")).collect();
    assert_eq!(head[5..10], spaced, "{head:?}");
    let rows = v["rows"].as_array().unwrap();
    let shown: Vec<&str> = rows.iter().map(|r| r["subject"].as_str().unwrap()).collect();
    assert_eq!(shown, sampled, "the page's sample is the command's sample, in order");
    for row in rows {
        let subject = row["subject"].as_str().unwrap();
        assert_eq!(row["section"], subject, "the chain link of {subject} leads to its section");
        for (name, outcome) in names.iter().zip(row["outcomes"].as_array().unwrap()) {
            let fails = failing.contains(&(name.to_string(), subject.to_string()));
            assert_eq!(outcome == "fail", fails, "{name} of {subject}: page says {outcome}");
        }
        if subject != "deploy:shop/production/stray" {
            assert!(row["events"].as_u64().unwrap() >= 4, "{subject}: its chain is drawn: {row}");
        }
    }
    // The totals table is the controls report's.
    for (t, c) in v["totals"].as_array().unwrap().iter().zip(controls["controls"].as_array().unwrap()) {
        assert_eq!(t[0], c["control"]);
        assert_eq!(t[1], c["passed"].to_string());
        assert_eq!(t[2], c["failed"].to_string());
    }
}

#[test]
fn the_metrics_report_charts_every_figure_per_tier() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    history(&l, tmp.path());
    let page = tmp.path().join("metrics.html");
    let args = ["--since", "2026-04-01", "--until", "2026-04-30"];
    let mut cmd = vec!["report", "metrics"];
    cmd.extend(args);
    cmd.extend(["--html", page.to_str().unwrap(), "--json"]);
    let written = l.json(cmd);
    assert_eq!(written["by"], "tier");
    self_contained(&page);
    let mut m = vec!["metrics", "--by", "tier", "--json"];
    m.extend(args);
    let metrics = l.json(m);

    let Some(browser) = chromium() else { return };
    screenshot(&browser, &page);
    let v = dom(
        &browser,
        &page,
        "r={report: document.body.dataset.report,\
            charts: [...document.querySelectorAll('svg.chart')].map(s=>({id: s.dataset.metric,\
               bars: [...s.querySelectorAll('rect.bar')].map(b=>[b.dataset.label, Number(b.dataset.value)])}))}",
    );
    assert_eq!(v["report"], "metrics");
    let charts = v["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 12, "{v:#}");
    let groups: Vec<String> =
        std::iter::once("all".to_string()).chain(metrics["groups"].as_object().unwrap().keys().cloned()).collect();
    assert!(groups.len() >= 2, "at least one tier beside the whole: {groups:?}");
    let cfr = charts.iter().find(|c| c["id"] == "change_failure_rate").expect("the change failure rate chart");
    let all = cfr["bars"].as_array().unwrap().iter().find(|b| b[0] == "all").expect("the whole's bar");
    assert_eq!(all[1].as_f64(), metrics["all"]["change_failure_rate"]["rate"].as_f64(), "{cfr}");
    let deploys = charts.iter().find(|c| c["id"] == "deployments_per_day").unwrap();
    let labels: Vec<&str> = deploys["bars"].as_array().unwrap().iter().map(|b| b[0].as_str().unwrap()).collect();
    assert_eq!(labels, groups, "one bar per tier and the whole");
}

#[test]
fn the_change_report_draws_the_chain_with_entry_ids_and_refuses_an_unknown_subject() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    history(&l, tmp.path());
    let page = tmp.path().join("change.html");
    l.json(["report", "change", "pr:acme/shop#0", "--html", page.to_str().unwrap(), "--json"]);
    self_contained(&page);
    let why = l.why_one_change("pr:acme/shop#0");

    // A subject nothing recorded mentions, and one that is not a subject: errors, no page.
    for bad in ["pr:acme/shop#999", "not a subject"] {
        let missing = tmp.path().join("missing.html");
        let out = l.command(["report", "change", bad, "--html", missing.to_str().unwrap()]).output().unwrap();
        assert!(!out.status.success(), "{bad}: exit {:?}", out.status.code());
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"), "{bad}: an error message");
        assert!(!missing.exists(), "{bad}: no page written");
    }

    let Some(browser) = chromium() else { return };
    screenshot(&browser, &page);
    let v = dom(
        &browser,
        &page,
        "r={subject: document.querySelector('#subject').textContent,\
            events: [...document.querySelectorAll('g.event')].map(g=>[g.dataset.stage, Number(g.dataset.seq)])}",
    );
    assert_eq!(v["subject"], "pr:acme/shop#0");
    let events = v["events"].as_array().unwrap();
    let stages: Vec<&str> = events.iter().map(|e| e[0].as_str().unwrap()).collect();
    assert_eq!(stages, ["change", "review", "check", "merge", "deployment", "incident"], "{v:#}");
    let seq = |v: &Value| v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"));
    let expected = [
        seq(&why),
        seq(&why["reviews"][0]),
        seq(&why["evidence"][0]),
        seq(&why["merge"]),
        seq(&why["deployments"][0]),
        seq(&why["incidents"][0]),
    ];
    let shown: Vec<u64> = events.iter().map(|e| e[1].as_u64().unwrap()).collect();
    assert_eq!(shown, expected, "each point names its entry");
}
