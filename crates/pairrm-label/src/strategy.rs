//! Which pairs a row yields: `full` (the full comparison matrix), `best-worst` (a knockout
//! tournament for the best and the worst at once) and `all-pairs` (every pair of the full
//! scores above a margin). Scores come from the core's [`pairrm::judge`] functions: [`rank`]
//! for the full matrix, [`compare`] in both orders for the tournament.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use pairrm::judge::{compare, rank, CompareMode, CompareRequest, PairScorer, RankRequest};

use crate::error::LabelError;
use crate::row::ModelView;

/// How a row's candidates are turned into preference pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The best and the worst candidate by a knockout tournament, each comparison in both orders
    /// (`[A,B]+[B,A]`): about `3n` passes for `n` distinct candidates instead of `n·(n−1)`.
    #[default]
    BestWorst,
    /// Every pair of distinct candidates whose full-matrix scores differ by more than the
    /// minimum margin, better one chosen (`n·(n−1)` passes).
    AllPairs,
    /// The best and the worst candidate by the full comparison matrix, the reference's scores
    /// (`n·(n−1)` passes).
    Full,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::BestWorst => "best-worst",
            Strategy::AllPairs => "all-pairs",
            Strategy::Full => "full",
        })
    }
}

impl FromStr for Strategy {
    type Err = LabelError;

    fn from_str(s: &str) -> Result<Self, LabelError> {
        match s {
            "best-worst" => Ok(Strategy::BestWorst),
            "all-pairs" => Ok(Strategy::AllPairs),
            "full" => Ok(Strategy::Full),
            _ => Err(LabelError::Settings(format!("unknown strategy {s:?}; expected best-worst, all-pairs or full"))),
        }
    }
}

/// One preference pair of a row: candidate indices and their scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Index of the chosen (better) candidate.
    pub chosen: usize,
    /// Index of the rejected candidate.
    pub rejected: usize,
    /// The chosen candidate's score.
    pub score_chosen: f32,
    /// The rejected candidate's score.
    pub score_rejected: f32,
}

impl Choice {
    /// `score_chosen - score_rejected`.
    pub fn margin(&self) -> f32 {
        self.score_chosen - self.score_rejected
    }
}

/// The pairs of every row of a chunk (an empty list: the row yields no pair), or the row's error.
///
/// A pair is kept only when its candidates' texts differ and its margin is above `min_margin`
/// (strictly: with the default 0, ties give no pair). All rows of the chunk go to the scorer
/// together: one call for `full` and `all-pairs`, one call per tournament round for
/// `best-worst`.
pub fn choose<S: PairScorer + ?Sized>(
    scorer: &S,
    views: &[ModelView],
    strategy: Strategy,
    min_margin: f32,
) -> Vec<Result<Vec<Choice>, String>> {
    let choices = match strategy {
        Strategy::Full | Strategy::AllPairs => full_matrix(scorer, views, strategy),
        Strategy::BestWorst => tournaments(scorer, views),
    };
    choices
        .into_iter()
        .zip(views)
        .map(|(choices, view)| {
            choices.map(|choices| {
                choices
                    .into_iter()
                    .filter(|c| view.texts[c.chosen] != view.texts[c.rejected] && c.margin() > min_margin)
                    .collect()
            })
        })
        .collect()
}

/// Indices of the first occurrence of each distinct text, in order.
fn distinct(texts: &[String]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    (0..texts.len()).filter(|&i| seen.insert(texts[i].as_str())).collect()
}

fn full_matrix<S: PairScorer + ?Sized>(
    scorer: &S,
    views: &[ModelView],
    strategy: Strategy,
) -> Vec<Result<Vec<Choice>, String>> {
    let requests: Vec<RankRequest> = views
        .iter()
        .map(|v| RankRequest {
            instruction: v.instruction.clone(),
            source: v.source.clone(),
            candidates: v.texts.clone(),
        })
        .collect();
    rank(scorer, &requests)
        .into_iter()
        .zip(views)
        .map(|(ranked, view)| {
            let scores = ranked.map_err(|e| e.to_string())?.scores;
            let pair = |a: usize, b: usize| {
                let (chosen, rejected) = if scores[a] >= scores[b] { (a, b) } else { (b, a) };
                Choice { chosen, rejected, score_chosen: scores[chosen], score_rejected: scores[rejected] }
            };
            let unique = distinct(&view.texts);
            Ok(match strategy {
                Strategy::Full => {
                    // The first of equal best scores and the first of equal worst scores.
                    let best = unique.iter().copied().fold(unique[0], |b, i| if scores[i] > scores[b] { i } else { b });
                    let worst =
                        unique.iter().copied().fold(unique[0], |w, i| if scores[i] < scores[w] { i } else { w });
                    vec![Choice {
                        chosen: best,
                        rejected: worst,
                        score_chosen: scores[best],
                        score_rejected: scores[worst],
                    }]
                }
                _ => unique
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &a)| unique[k + 1..].iter().map(move |&b| (a, b)))
                    .map(|(a, b)| pair(a, b))
                    .collect(),
            })
        })
        .collect()
}

/// A comparison `(a, b)`: `d = compare(a, b)` in both orders, > 0 when `a` is better.
type Match = (usize, usize);

/// One row's knockout tournament for its best and worst distinct candidates.
///
/// Round 1 pairs the distinct candidates in order (0–1, 2–3, ...): winners go on to the best
/// bracket, losers to the worst bracket, an odd last candidate to both. Each later round pairs
/// each bracket's survivors in order the same way (winners survive in the best bracket, losers in
/// the worst), until one is left in each. Should the same candidate win both (possible only when
/// preferences are cyclic) it is taken out of the worst bracket, which goes on. A final
/// comparison of the best with the worst gives the margin, unless they already met. A tie goes
/// to the candidate with the lower index. So `u` distinct candidates take about `1.5u`
/// comparisons, `3u` passes.
struct Tournament {
    unique: Vec<usize>,
    best: Vec<usize>,
    worst: Vec<usize>,
    played: HashMap<Match, f32>,
    started: bool,
}

impl Tournament {
    fn new(texts: &[String]) -> Self {
        let unique = distinct(texts);
        Tournament { best: unique.clone(), worst: unique.clone(), unique, played: HashMap::new(), started: false }
    }

    /// `d(a, b)` if the two already met (in either order: `d` is exactly antisymmetric).
    fn result(&self, a: usize, b: usize) -> Option<f32> {
        self.played.get(&(a, b)).copied().or_else(|| self.played.get(&(b, a)).map(|d| -d))
    }

    fn a_wins(&self, a: usize, b: usize) -> bool {
        let d = self.result(a, b).expect("played");
        // A tie (or NaN) goes to the lower index.
        match d.partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => true,
            Some(std::cmp::Ordering::Less) => false,
            _ => a < b,
        }
    }

    /// All the matches of the next round, `None` when the tournament is over.
    fn round(&self) -> Option<Vec<Match>> {
        let pairs = |bracket: &[usize]| bracket.chunks_exact(2).map(|p| (p[0], p[1])).collect::<Vec<Match>>();
        if !self.started {
            // Fewer than two distinct candidates: no pair.
            return (self.unique.len() >= 2).then(|| pairs(&self.best));
        }
        if self.best.len() > 1 || self.worst.len() > 1 {
            return Some([pairs(&self.best), pairs(&self.worst)].concat());
        }
        let (best, worst) = (self.best[0], self.worst[0]);
        self.result(best, worst).is_none().then(|| vec![(best, worst)])
    }

    /// The matches still to play for the next round (empty when the tournament is over). Two
    /// candidates that already met (in the other bracket or an earlier round) are not compared
    /// again; a round with nothing new to play is settled at once.
    fn pending(&mut self) -> Vec<Match> {
        while let Some(round) = self.round() {
            let mut new: Vec<Match> = Vec::new();
            for m in round {
                if self.result(m.0, m.1).is_none() && !new.contains(&m) {
                    new.push(m);
                }
            }
            if !new.is_empty() {
                return new;
            }
            self.play(&[]);
        }
        vec![]
    }

    /// Records a round's results and moves the brackets on.
    fn play(&mut self, results: &[(Match, f32)]) {
        self.played.extend(results.iter().copied());
        if !self.started {
            self.started = true;
            let odd = (self.best.len() % 2 == 1).then(|| *self.best.last().expect("not empty"));
            let pairs: Vec<Match> = self.best.chunks_exact(2).map(|p| (p[0], p[1])).collect();
            self.best = pairs.iter().map(|&(a, b)| if self.a_wins(a, b) { a } else { b }).chain(odd).collect();
            self.worst = pairs.iter().map(|&(a, b)| if self.a_wins(a, b) { b } else { a }).chain(odd).collect();
        } else {
            self.best = self.reduce(&self.best, true);
            self.worst = self.reduce(&self.worst, false);
        }
        if self.best.len() == 1 && self.worst.len() == 1 && self.best[0] == self.worst[0] {
            // A cycle made one candidate both best and worst: find the worst among the others.
            let champion = self.best[0];
            self.worst = self.unique.iter().copied().filter(|&i| i != champion).collect();
        }
    }

    fn reduce(&self, bracket: &[usize], keep_winners: bool) -> Vec<usize> {
        let odd = (bracket.len() % 2 == 1).then(|| *bracket.last().expect("not empty"));
        bracket
            .chunks_exact(2)
            .map(|p| if self.a_wins(p[0], p[1]) == keep_winners { p[0] } else { p[1] })
            .chain(odd)
            .collect()
    }

    /// The best–worst pair once the tournament is over, with the scores the two would get ranked
    /// alone by the full matrix: `d/2` and `−d/2` for `d = compare(best, worst)` (so the margin
    /// is `d`).
    fn choice(&self) -> Option<Choice> {
        let (&best, &worst) = (self.best.first()?, self.worst.first()?);
        let d = self.result(best, worst)?;
        Some(Choice { chosen: best, rejected: worst, score_chosen: d / 2.0, score_rejected: -d / 2.0 })
    }
}

fn tournaments<S: PairScorer + ?Sized>(scorer: &S, views: &[ModelView]) -> Vec<Result<Vec<Choice>, String>> {
    let mut games: Vec<Result<Tournament, String>> = views.iter().map(|v| Ok(Tournament::new(&v.texts))).collect();
    loop {
        let mut requests = Vec::new();
        let mut owners = Vec::new();
        for (r, game) in games.iter_mut().enumerate() {
            if let Ok(game) = game {
                let matches = game.pending();
                if !matches.is_empty() {
                    let view = &views[r];
                    requests.extend(matches.iter().map(|&(a, b)| CompareRequest {
                        instruction: view.instruction.clone(),
                        source: view.source.clone(),
                        a: view.texts[a].clone(),
                        b: view.texts[b].clone(),
                    }));
                    owners.push((r, matches));
                }
            }
        }
        if owners.is_empty() {
            break;
        }
        let mut results = compare(scorer, &requests, CompareMode::Both).into_iter();
        for (r, matches) in owners {
            let outcome: Result<Vec<(Match, f32)>, String> = matches
                .iter()
                .map(|&m| {
                    results.next().expect("one result per request").map(|c| (m, c.logit)).map_err(|e| e.to_string())
                })
                .collect();
            match outcome {
                Ok(played) => {
                    if let Ok(game) = &mut games[r] {
                        game.play(&played);
                    }
                }
                Err(e) => games[r] = Err(e),
            }
        }
    }
    games.into_iter().map(|g| g.map(|g| g.choice().into_iter().collect())).collect()
}

/// The forward passes a strategy plans for `n` candidates, before deduplication: `n·(n−1)` for
/// the full matrix, and for the tournament two per comparison, at most
/// `⌊n/2⌋ + 2·(⌈n/2⌉ − 1) + 1` comparisons.
pub fn planned_passes(strategy: Strategy, n: usize) -> usize {
    match strategy {
        Strategy::Full | Strategy::AllPairs => pairrm::judge::matrix_passes(n),
        Strategy::BestWorst if n < 2 => 0,
        Strategy::BestWorst => 2 * (n / 2 + 2 * (n.div_ceil(2) - 1) + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairrm::judge::Pair;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `logit(left, right)` = value(left) − value(right) + 0.25·bias, so longer is better and
    /// the left slot is slightly favoured (both orders cancel it); counts passes.
    struct ByValue(AtomicUsize);

    fn value(s: &str) -> f32 {
        s.trim_start_matches('c').parse::<f32>().unwrap_or(s.len() as f32)
    }

    impl PairScorer for ByValue {
        fn logits(&self, pairs: &[Pair]) -> Vec<pairrm::Result<f32>> {
            self.0.fetch_add(pairs.len(), Ordering::Relaxed);
            pairs.iter().map(|p| Ok(value(&p.left) - value(&p.right) + 0.25)).collect()
        }
    }

    fn view(texts: &[&str]) -> ModelView {
        ModelView { instruction: None, source: "s".into(), texts: texts.iter().map(|s| s.to_string()).collect() }
    }

    fn run(strategy: Strategy, texts: &[&str], min_margin: f32) -> (Vec<Choice>, usize) {
        let scorer = ByValue(AtomicUsize::new(0));
        let out = choose(&scorer, &[view(texts)], strategy, min_margin).pop().unwrap().unwrap();
        (out, scorer.0.load(Ordering::Relaxed))
    }

    #[test]
    fn best_worst_finds_the_extremes_with_fewer_passes() {
        for n in 2..12 {
            // Values in a scrambled order: c3, c2, c1, c0, c(n-1), ...
            let texts: Vec<String> = (0..n).map(|i| format!("c{}", ((n - 1) * i + 3) % n)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let (bw, passes) = run(Strategy::BestWorst, &refs, 0.0);
            assert!(!bw.is_empty(), "n = {n}: {texts:?}");
            let (full, full_passes) = run(Strategy::Full, &refs, 0.0);
            assert_eq!((bw[0].chosen, bw[0].rejected), (full[0].chosen, full[0].rejected), "n = {n}");
            assert_eq!(texts[bw[0].chosen], format!("c{}", n - 1));
            assert_eq!(texts[bw[0].rejected], "c0");
            assert!(passes <= planned_passes(Strategy::BestWorst, n), "n = {n}: {passes}");
            assert_eq!(full_passes, n * (n - 1));
            // d = 2·(value difference): both orders cancel the bias; the margin is d.
            assert_eq!(bw[0].margin(), 2.0 * (n - 1) as f32);
            assert_eq!(bw[0].score_chosen, (n - 1) as f32);
        }
    }

    #[test]
    fn two_candidates_give_the_full_scores() {
        let (bw, _) = run(Strategy::BestWorst, &["c1", "c4"], 0.0);
        let (full, _) = run(Strategy::Full, &["c1", "c4"], 0.0);
        assert_eq!(bw, full);
    }

    #[test]
    fn identical_texts_and_ties_give_no_pair() {
        for strategy in [Strategy::BestWorst, Strategy::AllPairs, Strategy::Full] {
            assert!(run(strategy, &["c1", "c1", "c1"], 0.0).0.is_empty(), "{strategy}");
            assert!(run(strategy, &["c1"], 0.0).0.is_empty(), "{strategy}");
            // Different texts, same value: a tie.
            assert!(run(strategy, &["c1", "c01"], 0.0).0.is_empty(), "{strategy}");
        }
        // Duplicates are compared once.
        let (bw, passes) = run(Strategy::BestWorst, &["c1", "c1", "c3", "c3"], 0.0);
        assert_eq!((bw[0].chosen, bw[0].rejected), (2, 0));
        assert_eq!(passes, 2);
    }

    #[test]
    fn all_pairs_keeps_pairs_above_the_margin() {
        let (pairs, _) = run(Strategy::AllPairs, &["c1", "c3", "c2", "c3"], 0.0);
        let got: Vec<(usize, usize)> = pairs.iter().map(|c| (c.chosen, c.rejected)).collect();
        assert_eq!(got, vec![(1, 0), (2, 0), (1, 2)]);
        let (pairs, _) = run(Strategy::AllPairs, &["c1", "c3", "c2"], 2.5);
        let got: Vec<(usize, usize)> = pairs.iter().map(|c| (c.chosen, c.rejected)).collect();
        assert_eq!(got, vec![(1, 0)]);
        assert!(pairs.iter().all(|c| c.margin() > 2.5));
    }

    #[test]
    fn a_failing_row_fails_alone() {
        struct FailOn(&'static str);
        impl PairScorer for FailOn {
            fn logits(&self, pairs: &[Pair]) -> Vec<pairrm::Result<f32>> {
                pairs
                    .iter()
                    .map(|p| {
                        if &*p.left == self.0 {
                            Err(pairrm::Error::invalid_input("x", "boom"))
                        } else {
                            Ok(value(&p.left) - value(&p.right))
                        }
                    })
                    .collect()
            }
        }
        for strategy in [Strategy::BestWorst, Strategy::Full] {
            let out = choose(&FailOn("c9"), &[view(&["c9", "c1"]), view(&["c1", "c2"])], strategy, 0.0);
            assert!(out[0].as_ref().unwrap_err().contains("boom"));
            assert_eq!(out[1].as_ref().unwrap()[0].chosen, 1);
        }
    }

    #[test]
    fn strategies_parse_and_print() {
        for s in [Strategy::BestWorst, Strategy::AllPairs, Strategy::Full] {
            assert_eq!(s.to_string().parse::<Strategy>().unwrap(), s);
        }
        assert!("bubble".parse::<Strategy>().is_err());
        assert_eq!(planned_passes(Strategy::BestWorst, 5), 14);
        assert_eq!(planned_passes(Strategy::Full, 5), 20);
    }
}
