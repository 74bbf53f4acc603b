//! Reports as plain-text tables: rates in percent with their intervals, one table per category
//! with the overall row last.

use std::fmt::Write;

use pairrm_eval::agreement::{AgreementReport, Percentiles};
use pairrm_eval::evaluator::{BadRow, EvalReport};
use pairrm_eval::stats::{Bootstrap, Estimate};
use pairrm_eval::summary::{MetricInfo, Row, Summary};
use pairrm_eval::winrate::{LengthStats, WinrateReport};

/// Bad rows listed in a text report (all of them are in the JSON report).
const BAD_ROWS_SHOWN: usize = 20;

/// `61.3 [55.0, 67.1]`, `61.3` without an interval, `-` without a value.
pub fn format_estimate(e: &Estimate) -> String {
    match (e.value, e.ci) {
        (None, _) => "-".into(),
        (Some(v), None) => format!("{:.1}", 100.0 * v),
        (Some(v), Some([lo, hi])) => format!("{:.1} [{:.1}, {:.1}]", 100.0 * v, 100.0 * lo, 100.0 * hi),
    }
}

/// A cell: the estimate, and `(n=…)` when the metric counts fewer rows than the group has.
fn cell(row: &Row, metric: &MetricInfo) -> String {
    match row.values.get(&metric.key) {
        None => "-".into(),
        Some(e) if e.n != row.rows => format!("{} (n={})", format_estimate(e), e.n),
        Some(e) => format_estimate(e),
    }
}

/// One table of `rows` (then the overall row) with a column per metric.
pub fn table(name: &str, rows: &[Row], overall: &Row, metrics: &[MetricInfo]) -> String {
    let mut header = vec![name.to_string(), "rows".to_string()];
    header.extend(metrics.iter().map(|m| m.title.clone()));
    let line = |r: &Row| {
        let mut cells = vec![r.name.clone(), r.rows.to_string()];
        cells.extend(metrics.iter().map(|m| cell(r, m)));
        cells
    };
    let body: Vec<Vec<String>> = rows.iter().map(line).collect();
    let last = line(overall);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for cells in body.iter().chain(std::iter::once(&last)) {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt = |cells: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            match i {
                0 => out.push_str(&format!("{c}{}", " ".repeat(pad))),
                _ => out.push_str(&format!("  {}{c}", " ".repeat(pad))),
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)) + "\n";
    let mut out = fmt(&header);
    out.push_str(&rule);
    for cells in &body {
        out.push_str(&fmt(cells));
    }
    if !body.is_empty() {
        out.push_str(&rule);
    }
    out.push_str(&fmt(&last));
    out
}

/// Every table of a summary (the overall row alone when there is none).
pub fn summary_tables(summary: &Summary) -> String {
    if summary.tables.is_empty() {
        return table("", &[], &summary.overall, &summary.metrics);
    }
    summary
        .tables
        .iter()
        .map(|t| table(&t.name, &t.rows, &summary.overall, &summary.metrics))
        .collect::<Vec<_>>()
        .join("\n")
}

fn bad_rows_text(bad: &[BadRow]) -> String {
    let mut out = String::new();
    if bad.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nbad rows: {} (not evaluated)", bad.len());
    for b in bad.iter().take(BAD_ROWS_SHOWN) {
        let _ = writeln!(out, "  {}: {}", b.location, b.error);
    }
    if bad.len() > BAD_ROWS_SHOWN {
        let _ = writeln!(out, "  … and {} more (all of them are in --json)", bad.len() - BAD_ROWS_SHOWN);
    }
    out
}

/// The line that says how the confidence intervals were made (none when bootstrapping is off).
fn bootstrap_line(out: &mut String, b: &Bootstrap) {
    if b.resamples > 0 {
        let _ = writeln!(
            out,
            "intervals: {:.0}% percentile bootstrap, {} resamples, seed {}",
            100.0 * b.confidence,
            b.resamples,
            b.seed
        );
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v))
}

/// An evaluation report as text.
pub fn eval_text(r: &EvalReport) -> String {
    let mut out = String::new();
    let o = &r.options;
    let _ = writeln!(
        out,
        "{} — {}{} rows evaluated, {} bad; mode {}{}",
        r.title,
        r.model.as_deref().map(|m| format!("model {m}, ")).unwrap_or_default(),
        r.rows,
        r.bad_rows.len(),
        o.mode,
        if o.conversation { ", pairs as conversations" } else { "" }
    );
    let _ = writeln!(out, "labels: a {}, b {}, tie {}", r.labels.a, r.labels.b, r.labels.tie);
    bootstrap_line(&mut out, &o.bootstrap);
    for m in &r.summary.metrics {
        let _ = writeln!(out, "  {}: {}", m.title, m.description);
    }
    out.push('\n');
    out.push_str(&summary_tables(&r.summary));
    if let Some(s) = &r.tie_search {
        let _ = writeln!(
            out,
            "\ntie threshold search (0 to {} by {}): best |logit| ≤ {} → {} agreement with ties",
            s.grid.max,
            s.grid.step,
            s.threshold,
            percent(Some(s.agreement))
        );
    }
    if let Some(p) = &r.position {
        let title =
            r.summary.metrics.iter().find(|m| m.key == p.metric).map_or(p.metric.as_str(), |m| m.title.as_str());
        let _ = writeln!(
            out,
            "\norder (mode both): {title} from logit(A,B) alone {}, from −logit(B,A) alone {}; the two orders agree on {} of rows",
            percent(p.ab),
            percent(p.ba),
            percent(Some(p.consistency))
        );
    }
    out.push_str(&bad_rows_text(&r.bad_rows));
    out
}

/// The agreement of two precisions as text (appended to an evaluation report).
pub fn agreement_text(a: &AgreementReport) -> String {
    let mut out = String::new();
    let (p, q) = (&a.precision, &a.against);
    let _ = writeln!(
        out,
        "\nagreement of {p} with {q} (tie threshold {}): {} rows, the same decision on {} ({:.2}%)",
        a.tie_threshold,
        a.rows,
        a.same_decision,
        100.0 * a.agreement
    );
    if let Some((name, x, y)) = &a.metric {
        let _ = writeln!(out, "  {name}: {p} {}, {q} {}", percent(Some(*x)), percent(Some(*y)));
    }
    let spread = |e: &Percentiles| {
        format!("mean {:.2e}, median {:.2e}, p90 {:.2e}, p99 {:.2e}, max {:.2e}", e.mean, e.median, e.p90, e.p99, e.max)
    };
    if let Some(e) = &a.logit_error {
        let _ = writeln!(out, "  |logit − logit_{q}|: {}", spread(e));
    }
    let _ = writeln!(out, "  decisions flipped, by |logit_{q}|:");
    for b in &a.flips_by_margin {
        let range = match b.max {
            Some(max) => format!("[{}, {max})", b.min),
            None => format!("≥ {}", b.min),
        };
        let _ = writeln!(out, "    {range:<14} {:>8} rows {:>8} flipped", b.rows, b.flips);
    }
    if !a.layers.is_empty() {
        let _ = writeln!(
            out,
            "  hidden states of the three marker rows, ‖h_{p} − h_{q}‖ / ‖h_{q}‖ on the first {} pairs (layer 0: embeddings):",
            a.layer_pairs
        );
        for l in &a.layers {
            let e = &l.relative_error;
            let _ = writeln!(out, "    layer {:>3}: median {:.2e}, max {:.2e}", l.layer, e.median, e.max);
        }
    }
    out
}

fn length_line(name: &str, s: &LengthStats) -> Vec<String> {
    let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
    vec![name.into(), s.pairs.to_string(), f(s.model_mean), f(s.model_median), f(s.baseline_mean), f(s.baseline_median)]
}

/// A win-rate report as text.
pub fn winrate_text(r: &WinrateReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} against {} — {} instructions compared, {} bad; mode {}, ties: |logit| ≤ {}",
        r.model,
        r.baseline,
        r.pairs,
        r.bad_rows.len(),
        r.options.mode,
        r.options.tie_threshold
    );
    let _ = writeln!(
        out,
        "win rate {} (standard error {}) — {} wins, {} losses, {} ties ({} identical outputs)",
        format_estimate(&r.win_rate),
        r.standard_error.map_or_else(|| "-".into(), |s| format!("{:.1}", 100.0 * s)),
        r.wins,
        r.losses,
        r.ties,
        r.identical
    );
    bootstrap_line(&mut out, &r.options.bootstrap);
    if !r.summary.tables.is_empty() {
        out.push('\n');
        out.push_str(&summary_tables(&r.summary));
    }
    let l = &r.lengths;
    let rows = [
        length_line("wins", &l.wins),
        length_line("losses", &l.losses),
        length_line("ties", &l.ties),
        length_line("all", &l.all),
    ];
    let header: Vec<String> =
        ["length (chars)", "pairs", "model mean", "model median", "baseline mean", "baseline median"]
            .map(String::from)
            .into();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    out.push('\n');
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for (c, w) in row.iter().zip(&widths).skip(1) {
            line.push_str(&format!("  {c:>w$}"));
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(share) = l.longer_wins {
        let _ = writeln!(
            out,
            "the longer output won {} of the {} decided pairs of different lengths",
            percent(Some(share)),
            l.longer_decided
        );
    }
    if !r.unmatched_baseline.is_empty() {
        let shown: Vec<String> =
            r.unmatched_baseline.iter().take(BAD_ROWS_SHOWN).map(|l| l.position.to_string()).collect();
        let _ = writeln!(
            out,
            "\nbaseline rows without a model output: {} ({}{})",
            r.unmatched_baseline.len(),
            shown.join(", "),
            if r.unmatched_baseline.len() > BAD_ROWS_SHOWN { ", …" } else { "" }
        );
    }
    out.push_str(&bad_rows_text(&r.bad_rows));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn est(v: f64, ci: Option<[f64; 2]>, n: u64) -> Estimate {
        Estimate { value: Some(v), ci, n, hits: v * n as f64 }
    }

    fn row(name: &str, rows: u64, values: &[(&str, Estimate)]) -> Row {
        Row {
            name: name.into(),
            rows,
            values: values.iter().map(|(k, e)| (k.to_string(), *e)).collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn estimates_print_in_percent() {
        assert_eq!(format_estimate(&est(0.6125, Some([0.5, 0.71]), 3)), "61.3 [50.0, 71.0]");
        assert_eq!(format_estimate(&est(1.0, None, 3)), "100.0");
        assert_eq!(format_estimate(&Estimate { value: None, ci: None, n: 0, hits: 0.0 }), "-");
    }

    #[test]
    fn tables_align_columns_and_show_counts_when_rows_are_left_out() {
        let metrics = vec![
            MetricInfo { key: "with".into(), title: "with ties".into(), description: String::new() },
            MetricInfo { key: "without".into(), title: "without ties".into(), description: String::new() },
        ];
        let rows = vec![
            row("Code", 4, &[("with", est(0.5, Some([0.25, 0.75]), 4)), ("without", est(1.0, None, 2))]),
            row("Summarization", 2, &[("with", est(1.0, None, 2)), ("without", est(1.0, None, 2))]),
        ];
        let overall = row("Overall", 6, &[("with", est(4.0 / 6.0, None, 6))]);
        let text = table("group", &rows, &overall, &metrics);
        let want = "\
group          rows          with ties  without ties
----------------------------------------------------
Code              4  50.0 [25.0, 75.0]   100.0 (n=2)
Summarization     2              100.0         100.0
----------------------------------------------------
Overall           6               66.7             -
";
        assert_eq!(text, want);
    }
}
