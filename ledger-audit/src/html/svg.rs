//! Inline SVG charts: horizontal bar charts and the chain timeline. Sizes are in CSS pixels;
//! every chart is an `<svg class="chart">` with a `<title>` for screen readers, and values are
//! printed beside the bars so nothing depends on reading a scale.

use super::esc;

/// One bar: its label, its value (`None`: no data, drawn as an empty row saying so) and the
/// text printed after it.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Row label (e.g. a tier).
    pub label: String,
    /// Length, in the chart's unit.
    pub value: Option<f64>,
    /// Printed after the bar (e.g. `12.5% (3/24)`).
    pub text: String,
}

const LABEL_W: f64 = 70.0;
const BAR_W: f64 = 200.0;
const TEXT_W: f64 = 230.0;
const ROW_H: f64 = 22.0;

/// A horizontal bar chart titled `title`, bars scaled to the largest value (or to `max` when
/// given, e.g. 1.0 for rates). `id` names the chart (`data-metric`).
pub fn bar_chart(id: &str, title: &str, bars: &[Bar], max: Option<f64>) -> String {
    let top = 24.0;
    let height = top + ROW_H * bars.len().max(1) as f64 + 6.0;
    let width = LABEL_W + BAR_W + TEXT_W;
    let scale = max
        .or_else(|| bars.iter().filter_map(|b| b.value).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v)))))
        .filter(|m| *m > 0.0 && m.is_finite())
        .unwrap_or(1.0);
    let mut s = format!(
        "<svg class=\"chart\" data-metric=\"{}\" role=\"img\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\"><title>{}</title>\
         <text x=\"0\" y=\"14\" font-weight=\"600\">{}</text>",
        esc(id),
        esc(title),
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = top + ROW_H * i as f64;
        s.push_str(&format!("<text x=\"0\" y=\"{:.1}\">{}</text>", y + 14.0, esc(&b.label)));
        match b.value {
            Some(v) if v.is_finite() => {
                let w = (v.max(0.0) / scale * BAR_W).min(BAR_W);
                s.push_str(&format!(
                    "<rect class=\"bar\" data-label=\"{}\" data-value=\"{v}\" x=\"{LABEL_W}\" y=\"{:.1}\" \
                     width=\"{w:.1}\" height=\"{:.1}\" fill=\"#2f5fb3\" rx=\"2\"></rect>\
                     <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    esc(&b.label),
                    y + 3.0,
                    ROW_H - 6.0,
                    LABEL_W + w + 6.0,
                    y + 14.0,
                    esc(&b.text)
                ));
            }
            _ => s.push_str(&format!(
                "<text class=\"muted\" x=\"{LABEL_W}\" y=\"{:.1}\">{}</text>",
                y + 14.0,
                esc(if b.text.is_empty() { "no data" } else { &b.text })
            )),
        }
    }
    s.push_str("</svg>");
    s
}

/// One point of the chain timeline.
#[derive(Clone, Debug)]
pub struct Event {
    /// The stage: `session`, `change`, `review`, `check`, `merge`, `deployment`, `incident`,
    /// `gate` or `exception`.
    pub stage: &'static str,
    /// What happened, one line.
    pub what: String,
    /// When, RFC 3339 (empty when the record carries no time of its own).
    pub when: String,
    /// The entry: sequence number and hash (hex).
    pub seq: u64,
    /// Entry hash, lowercase hex.
    pub entry: String,
    /// `pass`, `fail` or `""`: colours the point.
    pub tone: &'static str,
}

fn stage_colour(stage: &str) -> &'static str {
    match stage {
        "session" => "#7a4fb3",
        "change" => "#2f5fb3",
        "review" => "#1f7a4d",
        "check" => "#0f7c8c",
        "merge" => "#3b4a66",
        "deployment" => "#b36b00",
        "incident" => "#b3261e",
        "gate" => "#5b6475",
        _ => "#8a93a3",
    }
}

/// The chain as a vertical timeline, one row per event in the order given (the caller orders
/// them session → change → reviews → checks → merge → deployments → incidents): a coloured
/// point per stage on a line, the stage, what happened, when, and the entry it rests on.
pub fn timeline(id: &str, events: &[Event]) -> String {
    let row = 34.0;
    let width = 1100.0;
    let height = 12.0 + row * events.len().max(1) as f64;
    let mut s = format!(
        "<svg class=\"chart timeline\" id=\"{}\" role=\"img\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\"><title>chain timeline</title>",
        esc(id)
    );
    if events.len() > 1 {
        s.push_str(&format!(
            "<line x1=\"20\" y1=\"20\" x2=\"20\" y2=\"{:.1}\" stroke=\"#d8dde6\" stroke-width=\"3\"></line>",
            20.0 + row * (events.len() - 1) as f64
        ));
    }
    for (i, e) in events.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let stroke = match e.tone {
            "fail" => "#b3261e",
            "pass" => "#1f7a4d",
            _ => "#ffffff",
        };
        s.push_str(&format!(
            "<g class=\"event\" data-stage=\"{}\" data-seq=\"{}\">\
             <circle cx=\"20\" cy=\"{y:.1}\" r=\"8\" fill=\"{}\" stroke=\"{stroke}\" stroke-width=\"3\"></circle>\
             <text x=\"40\" y=\"{:.1}\" font-weight=\"600\">{}</text>\
             <text x=\"130\" y=\"{:.1}\">{}</text>\
             <text class=\"muted\" x=\"130\" y=\"{:.1}\">{}entry #{} {}</text></g>",
            esc(e.stage),
            e.seq,
            stage_colour(e.stage),
            y + 4.0,
            esc(e.stage),
            y - 1.0,
            esc(&clip(&e.what, 150)),
            y + 12.0,
            if e.when.is_empty() { String::new() } else { format!("{} · ", esc(&e.when)) },
            e.seq,
            esc(super::short(&e.entry)),
        ));
    }
    s.push_str("</svg>");
    s
}

/// `s` cut to `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_print_their_text() {
        let bars = vec![
            Bar { label: "T1".into(), value: Some(2.0), text: "2".into() },
            Bar { label: "T2".into(), value: Some(4.0), text: "4".into() },
            Bar { label: "T3".into(), value: None, text: String::new() },
        ];
        let svg = bar_chart("lead", "Lead <time>", &bars, None);
        assert!(svg.contains("data-label=\"T2\" data-value=\"4\""));
        assert!(svg.contains(&format!("width=\"{:.1}\"", BAR_W)), "{svg}");
        assert!(svg.contains(&format!("width=\"{:.1}\"", BAR_W / 2.0)), "{svg}");
        assert!(svg.contains("no data"));
        assert!(svg.contains("Lead &lt;time&gt;"));
    }

    #[test]
    fn the_timeline_has_a_point_per_event_with_its_entry() {
        let e =
            |stage, seq| Event { stage, what: "x".into(), when: String::new(), seq, entry: "ab".repeat(32), tone: "" };
        let svg = timeline("t", &[e("change", 3), e("merge", 9)]);
        assert_eq!(svg.matches("<g class=\"event\"").count(), 2);
        assert!(svg.contains("data-stage=\"merge\" data-seq=\"9\""));
        assert!(svg.contains("entry #9 abababababab"));
    }
}
