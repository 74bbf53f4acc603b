//! Per-category tables of metrics with bootstrap intervals, shared by `eval` and `winrate`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::{estimate, Bootstrap, Combine, Estimate};

/// What a metric measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    /// Its key in [`Row::values`] (`accuracy`, `with_ties`, `win_rate`, …).
    pub key: String,
    /// A short column title.
    pub title: String,
    /// What it counts, in a sentence.
    pub description: String,
}

/// One group of a table: a name and how it combines strata.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// The row name.
    pub name: String,
    /// Its strata.
    pub combine: Combine,
}

/// A table to compute: its name (the category it is by) and its groups, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// What the rows are (`subset`, `scenario`, `group`, `section`, `turn`, …).
    pub name: String,
    /// The rows.
    pub groups: Vec<GroupSpec>,
}

/// One row of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The category.
    pub name: String,
    /// Rows of the dataset in it (whether a metric counts them or not).
    pub rows: u64,
    /// Each metric's estimate, by key.
    pub values: BTreeMap<String, Estimate>,
}

/// A table: one category's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The category (`subset`, `scenario`, …).
    pub name: String,
    /// Its rows, in the benchmark's order.
    pub rows: Vec<Row>,
}

/// Metrics overall and per category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The metrics, headline first.
    pub metrics: Vec<MetricInfo>,
    /// All rows pooled.
    pub overall: Row,
    /// The category tables.
    pub tables: Vec<Table>,
}

/// A metric's scores: for each stratum, the scores of the rows it counts.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricScores {
    /// The metric.
    pub info: MetricInfo,
    /// Scores by stratum.
    pub scores: Vec<Vec<f64>>,
}

/// Computes every metric for the overall row and every group of `groupings`. `strata` names the
/// strata (finest categories) and `rows` holds the number of dataset rows of each. A group's draw
/// stream is named `<table>/<group>`, the overall row's `Overall`.
pub fn summarize(
    strata: &[String],
    rows: &[u64],
    metrics: Vec<MetricScores>,
    groupings: &[Grouping],
    boot: &Bootstrap,
) -> Summary {
    let all = Combine::Pooled((0..rows.len()).collect());
    let count = |c: &Combine| -> u64 {
        match c {
            Combine::Pooled(s) => s.iter().map(|&s| rows[s]).sum(),
            Combine::Weighted(w) => w.iter().map(|&(s, _)| rows[s]).sum(),
        }
    };
    let mut overall = Row { name: "Overall".into(), rows: count(&all), values: BTreeMap::new() };
    let mut tables: Vec<Table> = groupings
        .iter()
        .map(|g| Table {
            name: g.name.clone(),
            rows: g
                .groups
                .iter()
                .map(|spec| Row { name: spec.name.clone(), rows: count(&spec.combine), values: BTreeMap::new() })
                .collect(),
        })
        .collect();
    let mut infos = vec![];
    for metric in metrics {
        let key = &metric.info.key;
        let est = |combine: &Combine, group: &str| estimate(&metric.scores, strata, combine, boot, key, group);
        overall.values.insert(key.clone(), est(&all, "Overall"));
        for (table, grouping) in tables.iter_mut().zip(groupings) {
            for (row, spec) in table.rows.iter_mut().zip(&grouping.groups) {
                row.values.insert(key.clone(), est(&spec.combine, &format!("{}/{}", grouping.name, spec.name)));
            }
        }
        infos.push(metric.info);
    }
    Summary { metrics: infos, overall, tables }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str) -> MetricInfo {
        MetricInfo { key: key.into(), title: key.into(), description: String::new() }
    }

    #[test]
    fn tables_hold_every_metric_for_every_group() {
        let groupings = vec![Grouping {
            name: "subset".into(),
            groups: vec![
                GroupSpec { name: "x".into(), combine: Combine::Pooled(vec![0]) },
                GroupSpec { name: "both".into(), combine: Combine::Weighted(vec![(0, 1.0), (1, 3.0)]) },
            ],
        }];
        let metrics = vec![
            MetricScores { info: info("m1"), scores: vec![vec![1.0, 0.0], vec![1.0]] },
            // The second metric leaves a row of stratum 0 out.
            MetricScores { info: info("m2"), scores: vec![vec![1.0], vec![0.0]] },
        ];
        let strata = ["s0".to_string(), "s1".to_string()];
        let s =
            summarize(&strata, &[2, 1], metrics, &groupings, &Bootstrap { resamples: 10, seed: 0, confidence: 0.9 });
        assert_eq!(s.metrics.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
        assert_eq!(s.overall.rows, 3);
        assert_eq!(s.overall.values["m1"].value, Some(2.0 / 3.0));
        assert_eq!((s.overall.values["m2"].value, s.overall.values["m2"].n), (Some(0.5), 2));
        let t = &s.tables[0];
        assert_eq!((t.rows[0].rows, t.rows[1].rows), (2, 3));
        assert_eq!(t.rows[0].values["m1"].value, Some(0.5));
        assert_eq!(t.rows[1].values["m1"].value, Some((0.5 + 3.0) / 4.0));
        assert!(t.rows[1].values["m2"].ci.is_some());
    }
}
