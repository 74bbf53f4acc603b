//! Statistics of an evaluation: labels and predictions, the percentile bootstrap,
//! weighted and pooled group estimates, and the tie-threshold search.
//!
//! # The bootstrap
//! A rate over rows (a category, or all rows) gets a percentile bootstrap interval: its counted
//! rows are resampled with replacement, as many as there are, `resamples` times, and the interval
//! is the `(1 − confidence)/2` and `(1 + confidence)/2` percentiles of the replicate rates, with
//! linear interpolation between closest ranks (numpy's default `percentile` method). A weighted
//! mean of category rates (RewardBench's section scores) resamples each category's rows
//! separately and recomputes the weighted mean.
//!
//! Draws come from [`SplitMix64`]: each (metric, group) has its own stream, started at
//! [`stream_seed`]`(seed, metric, group)`, and each draw is `below(n)` (multiply-shift). Sums run
//! in row order in `f64`, so a seed gives the same intervals on every platform.

use serde::{Deserialize, Serialize};

use pairrm::judge::SplitMix64;

/// A human label, or a prediction: which answer is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Answer A (the left one, `a`, `response 1`, `chosen`).
    A,
    /// Answer B.
    B,
    /// Neither.
    Tie,
}

impl Label {
    /// `a`, `b` or `tie`.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::A => "a",
            Label::B => "b",
            Label::Tie => "tie",
        }
    }
}

/// The prediction of a logit (> 0: A is better) with a tie threshold: a tie when
/// `|logit| ≤ threshold` (so with threshold 0, only a logit of exactly 0 is a tie; a NaN logit is
/// a tie too), else A when positive and B when negative.
pub fn predict(logit: f32, threshold: f64) -> Label {
    let l = f64::from(logit);
    if l > threshold {
        Label::A
    } else if l < -threshold {
        Label::B
    } else {
        Label::Tie
    }
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Replicates (0: no intervals).
    pub resamples: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Coverage of the interval, in (0, 1).
    pub confidence: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 1000, seed: 0, confidence: 0.95 }
    }
}

/// A rate with its interval: `hits / n` for a pooled group, a weighted mean of stratum rates
/// for a weighted one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The rate (`None` when no row counts).
    pub value: Option<f64>,
    /// The bootstrap interval (`None` without resamples or rows).
    pub ci: Option<[f64; 2]>,
    /// Rows counted.
    pub n: u64,
    /// Sum of the counted rows' scores (correct rows; ties count ½ in win rates).
    pub hits: f64,
}

/// How a group combines the strata (finest categories) it covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Combine {
    /// All rows of these strata together: `Σ sums / Σ n`.
    Pooled(Vec<usize>),
    /// A weighted mean of the strata's rates, `Σ wₛ·rateₛ / Σ wₛ` over the strata that have rows
    /// (RewardBench's section scores).
    Weighted(Vec<(usize, f64)>),
}

/// The start of the draw stream of `group` for `metric`: the SplitMix64 output after
/// `seed ⊕ FNV-1a(metric, 0xFF, group)`.
pub fn stream_seed(seed: u64, metric: &str, group: &str) -> u64 {
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for b in metric.bytes().chain([0xFF]).chain(group.bytes()) {
        fnv ^= u64::from(b);
        fnv = fnv.wrapping_mul(0x0000_0100_0000_01b3);
    }
    SplitMix64::new(seed ^ fnv).next_u64()
}

/// `resamples` replicate means of `values`, each of `values.len()` draws with replacement from
/// the stream started at `stream` (none for no values).
pub fn resample_means(values: &[f64], resamples: usize, stream: u64) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return vec![];
    }
    let mut rng = SplitMix64::new(stream);
    (0..resamples)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..n {
                sum += values[rng.below(n as u64) as usize];
            }
            sum / n as f64
        })
        .collect()
}

/// The percentile interval of replicate values (`None` for none).
pub fn interval(mut replicates: Vec<f64>, confidence: f64) -> Option<[f64; 2]> {
    if replicates.is_empty() {
        return None;
    }
    replicates.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    Some([percentile(&replicates, alpha), percentile(&replicates, 1.0 - alpha)])
}

/// The estimate of one group of a metric. `scores` holds each stratum's counted scores and
/// `strata` their names; `group` names the group's draw stream (a weighted group draws each
/// stratum from the stream `stratum/<name>`, so groups sharing strata resample them alike).
pub fn estimate(
    scores: &[Vec<f64>],
    strata: &[String],
    combine: &Combine,
    boot: &Bootstrap,
    metric: &str,
    group: &str,
) -> Estimate {
    match combine {
        Combine::Pooled(members) => {
            let values: Vec<f64> = members.iter().flat_map(|&s| scores[s].iter().copied()).collect();
            let n = values.len() as u64;
            let hits: f64 = values.iter().sum();
            let value = (n > 0).then(|| hits / n as f64);
            let stream = stream_seed(boot.seed, metric, group);
            let ci = interval(resample_means(&values, boot.resamples, stream), boot.confidence);
            Estimate { value, ci, n, hits }
        }
        Combine::Weighted(weights) => {
            let present: Vec<(usize, f64)> = weights.iter().copied().filter(|&(s, _)| !scores[s].is_empty()).collect();
            let n: u64 = present.iter().map(|&(s, _)| scores[s].len() as u64).sum();
            let hits: f64 = present.iter().map(|&(s, _)| scores[s].iter().sum::<f64>()).sum();
            let total: f64 = present.iter().map(|&(_, w)| w).sum();
            if n == 0 || total <= 0.0 {
                return Estimate { value: None, ci: None, n, hits };
            }
            let rate = |s: usize| scores[s].iter().sum::<f64>() / scores[s].len() as f64;
            let value = present.iter().map(|&(s, w)| w * rate(s)).sum::<f64>() / total;
            let reps: Vec<Vec<f64>> = present
                .iter()
                .map(|&(s, _)| {
                    let stream = stream_seed(boot.seed, metric, &format!("stratum/{}", strata[s]));
                    resample_means(&scores[s], boot.resamples, stream)
                })
                .collect();
            let replicates: Vec<f64> = (0..boot.resamples)
                .map(|b| present.iter().zip(&reps).map(|(&(_, w), r)| w * r[b]).sum::<f64>() / total)
                .collect();
            Estimate { value: Some(value), ci: interval(replicates, boot.confidence), n, hits }
        }
    }
}

/// The `q`-quantile (`q` in [0, 1]) of ascending `sorted` values, interpolating linearly between
/// closest ranks: position `q·(len − 1)`, the way numpy's default method computes it. NaN for no
/// values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // numpy's lerp: from the nearer end, so that t = 1 gives `b` exactly.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// The thresholds tried by the tie-threshold search: `0, step, 2·step, …` up to `max` (Auto-J
/// searched 0 to 2.0 by 0.01 for reward models).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TieGrid {
    /// The largest threshold.
    pub max: f64,
    /// The spacing.
    pub step: f64,
}

impl Default for TieGrid {
    fn default() -> Self {
        TieGrid { max: 2.0, step: 0.01 }
    }
}

/// Most thresholds a grid may have.
const MAX_GRID_POINTS: usize = 1_000_000;

impl TieGrid {
    /// The thresholds, `k·step` rounded to 12 decimals, for `k = 0..=⌊max/step⌋` (a `max` within
    /// 1e-9 steps of a grid point counts as on it).
    ///
    /// # Errors
    /// A message when `step` is not positive, `max` is negative or not finite, or the grid would
    /// have more than a million points.
    pub fn points(&self) -> Result<Vec<f64>, String> {
        if !(self.step > 0.0 && self.step.is_finite()) {
            return Err(format!("the tie-search step must be positive, got {}", self.step));
        }
        if !(self.max >= 0.0 && self.max.is_finite()) {
            return Err(format!("the tie-search maximum must be a non-negative number, got {}", self.max));
        }
        let k = (self.max / self.step + 1e-9).floor();
        if k >= MAX_GRID_POINTS as f64 {
            return Err(format!("a tie search from 0 to {} by {} has too many points", self.max, self.step));
        }
        // Rounded to 12 decimals so that 57 × 0.01 is 0.57, not 0.5700000000000001.
        Ok((0..=k as usize).map(|i| (i as f64 * self.step * 1e12).round() / 1e12).collect())
    }
}

/// The outcome of a tie-threshold search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TieSearch {
    /// The grid searched.
    pub grid: TieGrid,
    /// The threshold with the best agreement (the smallest of equals).
    pub threshold: f64,
    /// Its agreement with ties (fraction of rows whose prediction equals the label).
    pub agreement: f64,
    /// `[threshold, agreement]` at every grid point.
    pub curve: Vec<[f64; 2]>,
}

/// Searches the tie threshold that maximises agreement with ties over `rows` (label, logit):
/// at threshold `t` a row agrees when [`predict`]`(logit, t)` equals its label. `None` for no rows.
///
/// # Errors
/// The grid's errors ([`TieGrid::points`]).
pub fn search_tie_threshold(rows: &[(Label, f32)], grid: TieGrid) -> Result<Option<TieSearch>, String> {
    let points = grid.points()?;
    if rows.is_empty() {
        return Ok(None);
    }
    let curve: Vec<[f64; 2]> = points
        .iter()
        .map(|&t| {
            let hits = rows.iter().filter(|&&(label, logit)| predict(logit, t) == label).count();
            [t, hits as f64 / rows.len() as f64]
        })
        .collect();
    let best = curve.iter().fold(curve[0], |best, &p| if p[1] > best[1] { p } else { best });
    Ok(Some(TieSearch { grid, threshold: best[0], agreement: best[1], curve }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(resamples: usize, seed: u64) -> Bootstrap {
        Bootstrap { resamples, seed, confidence: 0.95 }
    }

    #[test]
    fn predictions_use_the_threshold_inclusively() {
        assert_eq!(predict(0.5, 0.0), Label::A);
        assert_eq!(predict(-0.5, 0.0), Label::B);
        assert_eq!(predict(0.0, 0.0), Label::Tie);
        assert_eq!(predict(-0.0, 0.0), Label::Tie);
        assert_eq!(predict(0.5, 0.5), Label::Tie);
        assert_eq!(predict(-0.5, 0.5), Label::Tie);
        assert_eq!(predict(0.51, 0.5), Label::A);
        assert_eq!(predict(f32::NAN, 0.0), Label::Tie);
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 4, 8, 16], [0, 2.5, 25, 50, 62.5, 97.5, 100]).tolist() =
        // [1.0, 1.1, 2.0, 4.0, 6.0, 15.2, 16.0].
        let v = [1.0, 2.0, 4.0, 8.0, 16.0];
        for (q, want) in [(0.0, 1.0), (0.025, 1.1), (0.25, 2.0), (0.5, 4.0), (0.625, 6.0), (0.975, 15.2), (1.0, 16.0)] {
            assert_eq!(percentile(&v, q), want, "{q}");
        }
        assert_eq!(percentile(&[3.0], 0.3), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    fn names(n: usize) -> Vec<String> {
        ["x", "y", "z"][..n].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bootstrap_draws_follow_the_documented_streams() {
        // Replay the draws by hand: 4 replicates of [1, 0, 0, 1, 1].
        let values = [1.0, 0.0, 0.0, 1.0, 1.0];
        let got = resample_means(&values, 4, stream_seed(42, "accuracy", "Overall"));
        let mut rng = SplitMix64::new(stream_seed(42, "accuracy", "Overall"));
        let want: Vec<f64> = (0..4).map(|_| (0..5).map(|_| values[rng.below(5) as usize]).sum::<f64>() / 5.0).collect();
        assert_eq!(got, want);
        assert!(resample_means(&[], 4, 1).is_empty());
    }

    #[test]
    fn bootstrap_intervals_are_pinned_for_a_seed() {
        // Recomputed by an independent Python implementation (SplitMix64, the stream seed,
        // multiply-shift draws, numpy.percentile): 8 replicate means of [1, 0, 0, 1, 1] with
        // seed 7, metric "m", group "g" are [0.2, 0.6, 0.2, 0.6, 0.6, 0.4, 0.6, 0.8], whose 2.5% and
        // 97.5% percentiles are 0.2 and 0.7650000000000001.
        let scores = vec![vec![1.0, 0.0, 0.0], vec![1.0, 1.0]];
        let got = resample_means(&[1.0, 0.0, 0.0, 1.0, 1.0], 8, stream_seed(7, "m", "g"));
        assert_eq!(got, [0.2, 0.6, 0.2, 0.6, 0.6, 0.4, 0.6, 0.8]);
        // A pooled group concatenates its strata's scores in order.
        let e = estimate(&scores, &names(2), &Combine::Pooled(vec![0, 1]), &boot(8, 7), "m", "g");
        assert_eq!(e.value, Some(0.6));
        assert_eq!(e.ci, Some([0.2, 0.7650000000000001]));
        assert_eq!((e.n, e.hits), (5, 3.0));
    }

    #[test]
    fn degenerate_samples_give_degenerate_intervals() {
        let b = boot(50, 1);
        let scores = vec![vec![1.0; 7], vec![0.0], vec![]];
        let all = estimate(&scores, &names(3), &Combine::Pooled(vec![0]), &b, "m", "g");
        assert_eq!((all.value, all.ci), (Some(1.0), Some([1.0, 1.0])));
        let one = estimate(&scores, &names(3), &Combine::Pooled(vec![1]), &b, "m", "g");
        assert_eq!((one.value, one.ci), (Some(0.0), Some([0.0, 0.0])));
        let none = estimate(&scores, &names(3), &Combine::Pooled(vec![2]), &b, "m", "g");
        assert_eq!((none.value, none.ci, none.n), (None, None, 0));
        let weighted_none = estimate(&scores, &names(3), &Combine::Weighted(vec![(2, 1.0)]), &b, "m", "g");
        assert_eq!((weighted_none.value, weighted_none.ci), (None, None));
        let no_ci = estimate(&[vec![1.0, 0.0]], &names(1), &Combine::Pooled(vec![0]), &boot(0, 1), "m", "g");
        assert_eq!((no_ci.value, no_ci.ci), (Some(0.5), None));
        assert_eq!(interval(vec![], 0.95), None);
    }

    #[test]
    fn weighted_groups_resample_each_stratum() {
        // Stratum x: 3/4 correct, y: 1/2, z: empty. RewardBench-style weights 100 and 300 →
        // (100·0.75 + 300·0.5) / 400 = 0.5625; the empty stratum is left out. Independent Python:
        // 6 replicates of x from stream "stratum/x" are [0.75, 1, 0.75, 0.25, 0.25, 0.75], of y
        // [1, 0.5, 1, 0, 0, 0]; weighted [0.9375, 0.625, 0.9375, 0.0625, 0.0625, 0.1875] →
        // interval [0.0625, 0.9375].
        let scores = vec![vec![1.0, 1.0, 0.0, 1.0], vec![0.0, 1.0], vec![]];
        let b = boot(6, 3);
        let weighted =
            estimate(&scores, &names(3), &Combine::Weighted(vec![(0, 100.0), (1, 300.0), (2, 50.0)]), &b, "m", "Chat");
        assert_eq!((weighted.value, weighted.n, weighted.hits), (Some(0.5625), 6, 4.0));
        assert_eq!(weighted.ci, Some([0.0625, 0.9375]));
        // The group's own name does not matter: its strata's streams do.
        let other = estimate(&scores, &names(3), &Combine::Weighted(vec![(0, 100.0), (1, 300.0)]), &b, "m", "Score");
        assert_eq!(other, weighted);
        let pooled = estimate(&scores, &names(3), &Combine::Pooled(vec![0, 1, 2]), &b, "m", "Overall");
        assert_eq!((pooled.value, pooled.n, pooled.hits), (Some(4.0 / 6.0), 6, 4.0));
    }

    #[test]
    fn streams_differ_by_seed_metric_and_group() {
        let a = stream_seed(0, "with_ties", "Overall");
        assert_ne!(a, stream_seed(0, "with_ties", "group/Code"));
        assert_ne!(a, stream_seed(0, "without_ties", "Overall"));
        assert_ne!(a, stream_seed(1, "with_ties", "Overall"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(stream_seed(0, "ab", "c"), stream_seed(0, "a", "bc"));
        assert_eq!(a, stream_seed(0, "with_ties", "Overall"));
    }

    #[test]
    fn tie_search_on_a_hand_computed_table() {
        // Logits exact in binary so that the thresholds fall exactly where the table says.
        let rows = [
            (Label::A, 0.5f32),
            (Label::B, -0.25),
            (Label::Tie, 0.375),
            (Label::Tie, -0.125),
            (Label::B, -1.0),
            (Label::A, 0.0625),
        ];
        // Predictions and hits (✓) per threshold:
        //   t = 0     A✓ B✓ A✗ B✗ B✓ A✓ → 4/6
        //   t = 0.125 A✓ B✓ A✗ T✓ B✓ T✗ → 4/6
        //   t = 0.25  A✓ T✗ A✗ T✓ B✓ T✗ → 3/6
        //   t = 0.375 A✓ T✗ T✓ T✓ B✓ T✗ → 4/6
        //   t = 0.5   T✗ T✗ T✓ T✓ B✓ T✗ → 3/6
        let s = search_tie_threshold(&rows, TieGrid { max: 0.5, step: 0.125 }).unwrap().unwrap();
        let want = [4.0 / 6.0, 4.0 / 6.0, 3.0 / 6.0, 4.0 / 6.0, 3.0 / 6.0];
        assert_eq!(s.curve.iter().map(|p| p[0]).collect::<Vec<_>>(), [0.0, 0.125, 0.25, 0.375, 0.5]);
        assert_eq!(s.curve.iter().map(|p| p[1]).collect::<Vec<_>>(), want);
        // Equal agreements go to the smallest threshold.
        assert_eq!((s.threshold, s.agreement), (0.0, 4.0 / 6.0));
        // A tie label that only a threshold can get right: t = 0.25 gets both rows.
        let rows = [(Label::Tie, 0.1875f32), (Label::A, 0.375)];
        let s = search_tie_threshold(&rows, TieGrid { max: 0.375, step: 0.125 }).unwrap().unwrap();
        assert_eq!(s.curve.iter().map(|p| p[1]).collect::<Vec<_>>(), [0.5, 0.5, 1.0, 0.5]);
        assert_eq!((s.threshold, s.agreement), (0.25, 1.0));
        assert_eq!(search_tie_threshold(&[], TieGrid::default()).unwrap(), None);
    }

    #[test]
    fn grids_are_validated() {
        assert_eq!(TieGrid::default().points().unwrap().len(), 201);
        assert_eq!(TieGrid { max: 0.3, step: 0.1 }.points().unwrap().len(), 4);
        assert_eq!(TieGrid { max: 0.0, step: 0.1 }.points().unwrap(), [0.0]);
        assert_eq!(TieGrid::default().points().unwrap()[57], 0.57);
        assert_eq!(TieGrid { max: 0.3, step: 0.1 }.points().unwrap()[3], 0.3);
        assert!(TieGrid { max: 1.0, step: 0.0 }.points().is_err());
        assert!(TieGrid { max: -1.0, step: 0.1 }.points().is_err());
        assert!(TieGrid { max: f64::INFINITY, step: 0.1 }.points().is_err());
        assert!(TieGrid { max: 1e9, step: 1e-3 }.points().is_err());
    }
}
