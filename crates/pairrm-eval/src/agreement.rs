//! How two ways of computing the model agree on a dataset: a reduced precision (`bf16`, `int8`)
//! against exact `f32`, or any other pair. Decisions (the predicted winner, or a tie within the
//! tie threshold), flips binned by how decided the reference was, the logit error's
//! distribution, and optionally the hidden states' relative error layer by layer.
//!
//! Random weights cannot stand in for this measurement: they give logits near zero, where any
//! error flips decisions. Run it with the real model on your own data.

use serde::Serialize;

/// Upper edges of the margin bins of [`AgreementReport::flips_by_margin`] (the reference's
/// |logit|); the last bin is unbounded.
pub const MARGIN_EDGES: [f64; 6] = [0.01, 0.1, 0.25, 0.5, 1.0, 2.0];

/// Percentiles of a distribution of non-negative errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values.
    pub count: usize,
    /// The mean.
    pub mean: f64,
    /// The 50th percentile.
    pub median: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (sorted here); `None` for no values.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
        Some(Percentiles {
            count: values.len(),
            mean: values.iter().sum::<f64>() / values.len() as f64,
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// Rows whose reference |logit| falls in `[min, max)`, and how many of them flipped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MarginBin {
    /// The bin's lower edge.
    pub min: f64,
    /// Its upper edge (`None`: unbounded).
    pub max: Option<f64>,
    /// Rows in the bin.
    pub rows: u64,
    /// Of them, rows whose decision differs.
    pub flips: u64,
}

/// One layer's hidden-state error (layer 0: the embeddings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerError {
    /// The layer.
    pub layer: usize,
    /// `‖h − h_ref‖ / ‖h_ref‖` over the three marker rows of the pairs measured.
    pub relative_error: Percentiles,
}

/// The agreement of `precision` with `against` on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementReport {
    /// What was measured (e.g. `bf16`).
    pub precision: String,
    /// What it was measured against (e.g. `f32`).
    pub against: String,
    /// The tie threshold of the decisions.
    pub tie_threshold: f64,
    /// Rows scored by both.
    pub rows: u64,
    /// Rows whose decision (A, B, or a tie within the threshold) is the same.
    pub same_decision: u64,
    /// `same_decision / rows`.
    pub agreement: f64,
    /// Flips by the reference's |logit| (see [`MARGIN_EDGES`]).
    pub flips_by_margin: Vec<MarginBin>,
    /// `|logit − logit_against|` over the rows.
    pub logit_error: Option<Percentiles>,
    /// The headline metric of the benchmark with each: `(name, precision's, against's)`.
    pub metric: Option<(String, f64, f64)>,
    /// Hidden-state errors per layer on the first pairs (empty when not measured).
    pub layers: Vec<LayerError>,
    /// Pairs the layer errors were measured on.
    pub layer_pairs: usize,
}

/// The decision a logit makes: 1 (A), -1 (B) or 0 (a tie within `threshold`).
fn decision(logit: f32, threshold: f64) -> i8 {
    let l = logit as f64;
    if l > threshold {
        1
    } else if l < -threshold {
        -1
    } else {
        0
    }
}

impl AgreementReport {
    /// Compares the logits of the same rows (`logits[i]` and `against[i]` of row `i`; `None` for a
    /// row one of them could not score, which is left out).
    pub fn new(
        precision: &str,
        against_name: &str,
        logits: &[Option<f32>],
        against: &[Option<f32>],
        tie_threshold: f64,
    ) -> Self {
        let mut bins: Vec<MarginBin> = std::iter::once(0.0)
            .chain(MARGIN_EDGES)
            .zip(MARGIN_EDGES.iter().map(|&e| Some(e)).chain([None]))
            .map(|(min, max)| MarginBin { min, max, rows: 0, flips: 0 })
            .collect();
        let (mut rows, mut same, mut errors) = (0u64, 0u64, vec![]);
        for (x, y) in logits.iter().zip(against) {
            let (Some(x), Some(y)) = (x, y) else { continue };
            rows += 1;
            errors.push((*x as f64 - *y as f64).abs());
            let flipped = decision(*x, tie_threshold) != decision(*y, tie_threshold);
            same += u64::from(!flipped);
            let margin = (*y as f64).abs();
            let bin = bins.iter_mut().find(|b| b.max.is_none_or(|m| margin < m)).expect("the last bin is unbounded");
            bin.rows += 1;
            bin.flips += u64::from(flipped);
        }
        AgreementReport {
            precision: precision.to_string(),
            against: against_name.to_string(),
            tie_threshold,
            rows,
            same_decision: same,
            agreement: if rows == 0 { 0.0 } else { same as f64 / rows as f64 },
            flips_by_margin: bins,
            logit_error: Percentiles::of(errors),
            metric: None,
            layers: vec![],
            layer_pairs: 0,
        }
    }

    /// Adds the per-layer hidden-state errors of pairs whose states were taken with both:
    /// `states[p][layer][marker]` and `against[p][layer][marker]`, `H` values each.
    pub fn with_layers(mut self, states: &[Vec<[Vec<f32>; 3]>], against: &[Vec<[Vec<f32>; 3]>]) -> Self {
        let layers = states.iter().map(Vec::len).min().unwrap_or(0);
        self.layers = (0..layers)
            .filter_map(|layer| {
                let errors = states
                    .iter()
                    .zip(against)
                    .flat_map(|(s, a)| (0..3).map(move |m| relative_error(&s[layer][m], &a[layer][m])))
                    .collect();
                Percentiles::of(errors).map(|relative_error| LayerError { layer, relative_error })
            })
            .collect();
        self.layer_pairs = states.len().min(against.len());
        self
    }
}

/// `‖x − y‖ / ‖y‖` (0 when both are zero).
pub fn relative_error(x: &[f32], y: &[f32]) -> f64 {
    let diff: f64 = x.iter().zip(y).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let norm: f64 = y.iter().map(|b| (*b as f64).powi(2)).sum();
    if diff == 0.0 {
        0.0
    } else {
        (diff / norm).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_flips_and_errors() {
        let reference = [Some(0.005), Some(-0.05), Some(0.3), Some(3.0), None, Some(-1.5)];
        let other = [Some(-0.001), Some(-0.04), Some(0.31), Some(2.9), Some(1.0), Some(0.2)];
        let r = AgreementReport::new("bf16", "f32", &other, &reference, 0.0);
        assert_eq!((r.rows, r.same_decision), (5, 3));
        assert!((r.agreement - 0.6).abs() < 1e-12);
        let bins: Vec<(u64, u64)> = r.flips_by_margin.iter().map(|b| (b.rows, b.flips)).collect();
        assert_eq!(bins, [(1, 1), (1, 0), (0, 0), (1, 0), (0, 0), (1, 1), (1, 0)]);
        assert_eq!(r.flips_by_margin.last().unwrap().max, None);
        let e = r.logit_error.unwrap();
        assert_eq!(e.count, 5);
        assert!((e.max - 1.7).abs() < 1e-6 && (e.median - 0.01).abs() < 1e-6, "{e:?}");
        // Within a tie threshold of 0.01, 0.005 and -0.001 are both ties: no flip.
        let t = AgreementReport::new("bf16", "f32", &other, &reference, 0.01);
        assert_eq!(t.same_decision, 4);
    }

    #[test]
    fn layer_errors_per_layer() {
        let state = |v: f32| vec![[vec![v, 0.0], vec![0.0, v], vec![v, v]]; 2];
        let r = AgreementReport::new("a", "b", &[], &[], 0.0).with_layers(&[state(1.1)], &[state(1.0)]);
        assert_eq!(r.layer_pairs, 1);
        assert_eq!(r.layers.len(), 2);
        assert!((r.layers[1].relative_error.max - 0.1).abs() < 1e-6);
        assert_eq!(relative_error(&[0.0], &[0.0]), 0.0);
        assert!(Percentiles::of(vec![]).is_none());
    }
}
