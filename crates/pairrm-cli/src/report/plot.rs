//! Reports as an SVG figure: one panel per category table (the overall row last), each row a dot
//! per metric at its rate with a bar across its interval, on a 0–100% axis.

use std::fmt::Write;

use pairrm_eval::summary::{Row, Summary};

/// Colours of the metric series, in order.
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
/// Width of the figure.
const WIDTH: f64 = 820.0;
/// Left edge of the axis (labels go to its left).
const AXIS_LEFT: f64 = 260.0;
/// Right edge of the axis.
const AXIS_RIGHT: f64 = 790.0;
/// Height of a row.
const ROW: f64 = 20.0;
/// Longest label drawn in full.
const LABEL_CHARS: usize = 36;

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn x(rate: f64) -> f64 {
    AXIS_LEFT + rate.clamp(0.0, 1.0) * (AXIS_RIGHT - AXIS_LEFT)
}

fn label(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        return name.to_string();
    }
    name.chars().take(LABEL_CHARS - 1).collect::<String>() + "…"
}

/// The figure for `summary`, titled `title`; `reference` draws a dashed line at that rate (50%
/// for win rates).
pub fn svg(title: &str, summary: &Summary, reference: Option<f64>) -> String {
    let panels: Vec<(String, Vec<&Row>)> = if summary.tables.is_empty() {
        vec![(String::new(), vec![&summary.overall])]
    } else {
        summary
            .tables
            .iter()
            .map(|t| (format!("by {}", t.name), t.rows.iter().chain(std::iter::once(&summary.overall)).collect()))
            .collect()
    };
    let series = summary.metrics.len().max(1);
    let legend_h = 18.0 * series as f64;
    let mut body = String::new();
    let mut y = 40.0 + legend_h;
    for (name, rows) in &panels {
        if !name.is_empty() {
            let _ = writeln!(body, r#"<text x="10" y="{:.1}" font-weight="bold">{}</text>"#, y + 14.0, escape(name));
            y += 22.0;
        }
        let top = y;
        let bottom = top + ROW * rows.len() as f64;
        for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let _ = writeln!(
                body,
                r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{bottom:.1}" stroke="#ddd"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle" font-size="10" fill="#555">{2}%</text>"##,
                x(tick),
                bottom + 12.0,
                (tick * 100.0) as u32
            );
        }
        if let Some(r) = reference {
            let _ = writeln!(
                body,
                r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{bottom:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
                x(r)
            );
        }
        for (i, row) in rows.iter().enumerate() {
            let mid = top + ROW * (i as f64 + 0.5);
            let weight = if i + 1 == rows.len() { r#" font-weight="bold""# } else { "" };
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end"{weight}><title>{} ({} rows)</title>{}</text>"#,
                AXIS_LEFT - 8.0,
                mid + 4.0,
                escape(&row.name),
                row.rows,
                escape(&label(&row.name))
            );
            for (k, metric) in summary.metrics.iter().enumerate() {
                let Some(e) = row.values.get(&metric.key) else { continue };
                let Some(v) = e.value else { continue };
                let color = COLORS[k % COLORS.len()];
                let dy = (k as f64 - (series as f64 - 1.0) / 2.0) * (ROW / (series as f64 + 1.0));
                let cy = mid + dy;
                if let Some([lo, hi]) = e.ci {
                    let _ = writeln!(
                        body,
                        r#"<line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="{color}" stroke-width="2"/>"#,
                        x(lo),
                        x(hi)
                    );
                }
                let _ = writeln!(
                    body,
                    r#"<circle cx="{:.1}" cy="{cy:.1}" r="3.5" fill="{color}"><title>{}: {:.1}%{}</title></circle>"#,
                    x(v),
                    escape(&metric.title),
                    100.0 * v,
                    e.ci.map(|[lo, hi]| format!(" [{:.1}, {:.1}]", 100.0 * lo, 100.0 * hi)).unwrap_or_default()
                );
            }
        }
        y = bottom + 30.0;
    }
    let height = y;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#, escape(title));
    for (k, metric) in summary.metrics.iter().enumerate() {
        let ly = 40.0 + 18.0 * k as f64;
        let _ = writeln!(
            out,
            r#"<circle cx="16" cy="{:.1}" r="4" fill="{}"/><text x="26" y="{:.1}">{}</text>"#,
            ly - 4.0,
            COLORS[k % COLORS.len()],
            ly,
            escape(&metric.title)
        );
    }
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use pairrm_eval::stats::Estimate;
    use pairrm_eval::summary::{MetricInfo, Table};

    fn row(name: &str, v: f64) -> Row {
        let e = Estimate { value: Some(v), ci: Some([v - 0.1, v + 0.1]), n: 10, hits: 10.0 * v };
        Row { name: name.into(), rows: 10, values: BTreeMap::from([("m".to_string(), e)]) }
    }

    #[test]
    fn figures_have_a_panel_per_table_and_escape_text() {
        let summary = Summary {
            metrics: vec![MetricInfo {
                key: "m".into(),
                title: "ties ≤ 0 & <more>".into(),
                description: String::new(),
            }],
            overall: row("Overall", 0.6),
            tables: vec![
                Table { name: "group".into(), rows: vec![row("A & B", 0.5), row("C", 0.75)] },
                Table { name: "scenario".into(), rows: vec![row(&"x".repeat(50), 0.9)] },
            ],
        };
        let svg = svg("Auto-J <test>", &summary, Some(0.5));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains("Auto-J &lt;test&gt;")
                && svg.contains("A &amp; B")
                && svg.contains("ties ≤ 0 &amp; &lt;more&gt;")
        );
        assert!(!svg.contains("A & B"));
        // 5 rows with a value (3 + the overall row twice) plus the legend dot.
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(svg.contains(&format!("{}…", "x".repeat(LABEL_CHARS - 1))));
        assert!(svg.contains(">by scenario</text>"));
        // The 50% point sits mid-axis.
        assert!(svg.contains(&format!("cx=\"{:.1}\"", (AXIS_LEFT + AXIS_RIGHT) / 2.0)));
        let alone = Summary { tables: vec![], ..summary };
        assert_eq!(svg_count(&self::svg("t", &alone, None)), 2);
    }

    fn svg_count(s: &str) -> usize {
        s.matches("<circle").count()
    }
}
