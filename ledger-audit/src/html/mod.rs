//! Self-contained HTML pages of the audit reports: the auditor's workpaper, the metrics report
//! and the change report. Each page is one string with its styles and charts (SVG) inline and
//! no reference to anything outside the document: it opens offline, can be attached to an
//! audit file as is, and makes no network request. Pure: the caller computes the reports.
//!
//! Every value from the ledger passes through [`esc`]; the only markup is written here.

mod change;
mod metrics;
pub mod svg;
mod workpaper;

pub use change::change_page;
pub use metrics::metrics_page;
pub use workpaper::{workpaper_page, Workpaper, WorkpaperItem};

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink: #1d2330; --muted: #5b6475; --line: #d8dde6; --pass: #1f7a4d; --fail: #b3261e;
        --na: #8a93a3; --accent: #2f5fb3; --bg: #ffffff; --panel: #f5f7fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: var(--panel); padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.pass { color: var(--pass); font-weight: 600; }
.fail { color: var(--fail); font-weight: 600; }
.not_applicable { color: var(--na); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; }
.finding { border-left: 4px solid var(--fail); background: #fdf1f0; padding: 6px 10px; margin: 6px 0; }
.note { border-left: 4px solid var(--accent); background: #eef3fb; padding: 6px 10px; margin: 6px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; fill: var(--ink); }
svg .muted { fill: var(--muted); }
section.item { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 10px; margin: 14px 0; }
a { color: var(--accent); }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; border-top: 1px solid var(--line); padding-top: 8px; }
"#;

/// A whole page: `<!DOCTYPE html>` with the title, the inline style sheet and `body` (already
/// HTML). `kind` becomes the body's `data-report` attribute.
fn page(kind: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body data-report=\"{}\">\n{body}\n\
         <footer>Provenance Ledger · entries are named by sequence number (#n) and hash; check them \
         with <code>ledger verify</code> or an export bundle.</footer>\n</body>\n</html>\n",
        esc(title),
        esc(kind)
    )
}

/// A table: `id` (may be empty), header cells (plain text; a leading `#` right-aligns the
/// column) and rows of cells that are already HTML.
fn table(id: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = if id.is_empty() { "<table>".to_string() } else { format!("<table id=\"{}\">", esc(id)) };
    s.push_str("<thead><tr>");
    let numeric: Vec<bool> = header.iter().map(|h| h.starts_with('#')).collect();
    for h in header {
        let (class, text) = match h.strip_prefix('#') {
            Some(t) => (" class=\"num\"", t),
            None => ("", *h),
        };
        s.push_str(&format!("<th{class}>{}</th>", esc(text)));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
            s.push_str(&format!("<td{class}>{cell}</td>"));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A summary card: a large value over a label.
fn card(value: &str, label: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
        esc(value),
        esc(label)
    )
}

/// The first 12 hex digits of an entry hash or commit, for display.
fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("plain: ✓"), "plain: ✓");
    }

    #[test]
    fn a_page_is_one_document_with_no_outside_reference() {
        let p = page("test", "T <1>", &table("t", &["a", "#n"], &[vec!["x".into(), "1".into()]]));
        assert!(p.starts_with("<!DOCTYPE html>"));
        assert!(p.contains("<title>T &lt;1&gt;</title>"));
        assert!(p.contains("<td class=\"num\">1</td>"));
        for outside in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(!p.contains(outside), "page refers outside itself: {outside}");
        }
    }
}
