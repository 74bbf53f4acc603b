//! Picking the best sample of each line with PairRM, and the output line.

use pairrm::judge::{rank, select_n, PairScorer, RankRequest, RankResult, SelectMethod, Target};
use serde::Serialize;

use super::sampling::LineUsage;

/// A line whose samples are all in.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    /// The line's position in the input (from 0).
    pub index: usize,
    /// The samples as the server returned them.
    pub samples: Vec<String>,
    /// What PairRM ranks (the samples, rendered for conversations).
    pub request: RankRequest,
    /// What generating the samples cost.
    pub usage: LineUsage,
}

/// The output line of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Output {
    /// The best sample, as the server returned it.
    pub best: String,
    /// Its index among the samples (in generation order).
    pub best_index: usize,
    /// With `--return-all`: every sample, in generation order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<String>>,
    /// With `--return-all` and `--strategy full`: each sample's PairRM score (higher is better).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<f32>>,
    /// With `--return-all` and `--strategy full`: each sample's rank (1 is best).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranks: Option<Vec<usize>>,
    /// With `--return-all`: sample indices, the best first (`full`: by rank, ties by index;
    /// `bubble`: the winner, then the loser of each bubble step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<usize>>,
    /// What generating the samples cost.
    pub usage: LineUsage,
}

/// How the best sample is found.
#[derive(Debug, Clone, Copy)]
pub struct Picker {
    /// Full comparison matrix or one bubble pass.
    pub strategy: SelectMethod,
    /// The seed of the bubble order.
    pub seed: u64,
    /// Whether outputs carry every sample and the ranking.
    pub return_all: bool,
}

impl Picker {
    /// Forward passes needed for `n` samples.
    pub fn passes(&self, n: usize) -> usize {
        self.strategy.passes(n)
    }

    /// Picks the best sample of every line, all lines in one judge call: [`rank`] (the best is the
    /// first sample of rank 1, as `select_n` with [`SelectMethod::Full`]) or [`select_n`] with
    /// [`SelectMethod::Bubble`] and this picker's seed. Results are in `lines` order.
    pub fn pick<S: PairScorer + ?Sized>(
        &self,
        scorer: &S,
        lines: Vec<Sampled>,
    ) -> Vec<(usize, Result<Output, String>)> {
        let requests: Vec<RankRequest> = lines.iter().map(|l| l.request.clone()).collect();
        let picked: Vec<Result<Picked, String>> = match self.strategy {
            SelectMethod::Full => rank(scorer, &requests)
                .into_iter()
                .map(|r| {
                    let ranked = r.map_err(|e| e.to_string())?;
                    let mut order: Vec<usize> = (0..ranked.ranks.len()).collect();
                    order.sort_by_key(|&i| ranked.ranks[i]);
                    Ok(Picked { index: order[0], ranked: Some(ranked), order })
                })
                .collect(),
            SelectMethod::Bubble => select_n(scorer, &requests, Target::Best, SelectMethod::Bubble, self.seed)
                .into_iter()
                .map(|r| r.map(|s| Picked { index: s.index, ranked: None, order: s.order }).map_err(|e| e.to_string()))
                .collect(),
        };
        lines
            .into_iter()
            .zip(picked)
            .map(|(line, picked)| {
                let output = picked.map(|picked| {
                    let ranked = picked.ranked.filter(|_| self.return_all);
                    Output {
                        best: line.samples[picked.index].clone(),
                        best_index: picked.index,
                        candidates: self.return_all.then(|| line.samples.clone()),
                        scores: ranked.as_ref().map(|r| r.scores.clone()),
                        ranks: ranked.map(|r| r.ranks),
                        order: self.return_all.then_some(picked.order),
                        usage: line.usage,
                    }
                });
                (line.index, output)
            })
            .collect()
    }
}

/// The pick of one line.
struct Picked {
    /// The best sample.
    index: usize,
    /// Scores and ranks (`full` only).
    ranked: Option<RankResult>,
    /// All samples, the best first.
    order: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use pairrm::judge::{best_of_n, Pair};
    use pairrm::Result;

    use super::*;

    /// logit(left, right) = (len(left) - len(right)) / 4 + 0.5 (a position bias).
    struct Lengths;

    impl PairScorer for Lengths {
        fn logits(&self, pairs: &[Pair]) -> Vec<Result<f32>> {
            pairs.iter().map(|p| Ok((p.left.len() as f32 - p.right.len() as f32) / 4.0 + 0.5)).collect()
        }
    }

    fn sampled(index: usize, samples: &[&str]) -> Sampled {
        let samples: Vec<String> = samples.iter().map(|s| s.to_string()).collect();
        Sampled {
            index,
            request: RankRequest { instruction: None, source: "q".into(), candidates: samples.clone() },
            samples,
            usage: LineUsage { tokens: None, requests: 1, retries: 0 },
        }
    }

    #[test]
    fn full_picks_what_rank_and_select_n_pick() {
        let picker = Picker { strategy: SelectMethod::Full, seed: 0, return_all: true };
        let lines = vec![sampled(3, &["bb", "dddd", "a", "dddd"]), sampled(4, &["x"])];
        let out = picker.pick(&Lengths, lines.clone());
        let (index, first) = (&out[0].0, out[0].1.as_ref().unwrap());
        assert_eq!(*index, 3);
        let ranked = rank(&Lengths, &[lines[0].request.clone()]).pop().unwrap().unwrap();
        let selected = best_of_n(&Lengths, &[lines[0].request.clone()], SelectMethod::Full, 0).pop().unwrap().unwrap();
        assert_eq!(first.best_index, selected.index);
        assert_eq!(first.best_index, 1);
        assert_eq!(first.best, "dddd");
        assert_eq!(first.order.as_ref(), Some(&selected.order));
        assert_eq!(first.scores.as_ref(), Some(&ranked.scores));
        assert_eq!(first.ranks.as_ref(), Some(&ranked.ranks));
        assert_eq!(first.candidates.as_deref(), Some(&lines[0].samples[..]));
        let single = out[1].1.as_ref().unwrap();
        assert_eq!((single.best.as_str(), single.best_index, single.order.clone()), ("x", 0, Some(vec![0])));
    }

    #[test]
    fn bubble_picks_what_select_n_picks_with_the_seed() {
        let lines = vec![sampled(0, &["bb", "dddd", "a", "ccc", "eeeee"])];
        for seed in [0, 1, 42] {
            let picker = Picker { strategy: SelectMethod::Bubble, seed, return_all: false };
            let out = picker.pick(&Lengths, lines.clone()).pop().unwrap().1.unwrap();
            let selected = select_n(&Lengths, &[lines[0].request.clone()], Target::Best, SelectMethod::Bubble, seed);
            assert_eq!(out.best_index, selected[0].as_ref().unwrap().index);
            assert_eq!(out.best, "eeeee");
            assert_eq!((out.candidates, out.scores, out.ranks, out.order), (None, None, None, None));
        }
    }

    #[test]
    fn a_ranking_error_fails_only_its_line() {
        let picker = Picker { strategy: SelectMethod::Full, seed: 0, return_all: false };
        let mut bad = sampled(1, &["a"]);
        bad.request.candidates.clear();
        let out = picker.pick(&Lengths, vec![sampled(0, &["a", "bb"]), bad]);
        assert_eq!(out[0].1.as_ref().unwrap().best, "bb");
        assert!(out[1].1.as_ref().unwrap_err().contains("candidates"));
    }

    #[test]
    fn outputs_serialize_with_optional_fields_left_out() {
        let picker = Picker { strategy: SelectMethod::Bubble, seed: 0, return_all: false };
        let out = picker.pick(&Lengths, vec![sampled(0, &["a", "bb"])]).pop().unwrap().1.unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"best":"bb","best_index":1,"usage":{"requests":1,"retries":0}}"#
        );
        assert_eq!(picker.passes(5), 8);
        assert_eq!(Picker { strategy: SelectMethod::Full, ..picker }.passes(5), 20);
        assert_eq!(picker.passes(1), 0);
    }
}
