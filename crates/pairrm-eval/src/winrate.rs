//! Win rates, AlpacaEval-style: a model's outputs against a baseline's, matched by instruction.
//!
//! Both files hold rows `{instruction, output, generator?, dataset?}`, as JSON lines or as one
//! JSON array (AlpacaEval's `model_outputs.json`); other fields are ignored. Each model output is
//! compared with the baseline output of the same instruction (A = model, B = baseline, source =
//! the instruction): a **win** when the logit is above the tie threshold, a **loss** when it is
//! below minus the threshold, a **tie** in between (`|logit| ≤ threshold`; with the default 0 only
//! an exact 0, which mode `both` gives for identical outputs) — and, without scoring, whenever the
//! two outputs are identical, as AlpacaEval does. The win rate counts a tie as half a win, like
//! AlpacaEval's preference 1.5; its standard error is AlpacaEval's (the standard error of the
//! mean of the per-instruction scores, ddof 1) and its interval the percentile bootstrap (overall,
//! and per `dataset`). Lengths are in characters (Unicode scalar values).
//!
//! The baseline file is indexed, not loaded: only a hash of each instruction and where its row
//! is; the model file is streamed in chunks and each matched baseline row read back from disk.
//! Rows that cannot be used are reported with their positions: unreadable or invalid rows, model
//! rows without a baseline row (or with an instruction already seen), baseline rows with a
//! duplicate instruction; baseline rows no model row matched are listed too.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::evaluator::{validate_bootstrap, BadRow, Location, CHUNK_PASSES, CHUNK_ROWS};
use crate::formats::fields::Fields;
use crate::records::{read_at, Position, RecordReader};
use crate::stats::{predict, Bootstrap, Combine, Estimate, Label};
use crate::summary::{summarize, GroupSpec, Grouping, MetricInfo, MetricScores, Summary};
use pairrm::judge::{compare_logits, CompareMode, CompareRequest, PairScorer};
use pairrm::{Error, Result};

/// How to compute win rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WinrateOptions {
    /// Compare mode (`both` by default).
    pub mode: CompareMode,
    /// A tie when `|logit| ≤ tie_threshold`.
    pub tie_threshold: f64,
    /// Bootstrap intervals.
    pub bootstrap: Bootstrap,
}

impl Default for WinrateOptions {
    fn default() -> Self {
        WinrateOptions { mode: CompareMode::Both, tie_threshold: 0.0, bootstrap: Bootstrap::default() }
    }
}

/// The outcome of one instruction, for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The model's output is better.
    Win,
    /// The baseline's output is better.
    Loss,
    /// Neither.
    Tie,
}

impl Outcome {
    /// The win-rate score: 1, ½ or 0.
    pub fn score(self) -> f64 {
        match self {
            Outcome::Win => 1.0,
            Outcome::Tie => 0.5,
            Outcome::Loss => 0.0,
        }
    }
}

/// One instruction's result (for per-row output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairResult {
    /// The model row.
    #[serde(flatten)]
    pub location: Location,
    /// The baseline row it was compared with.
    pub baseline: Location,
    /// Its dataset (`(none)` without one).
    pub dataset: String,
    /// Win, loss or tie.
    pub outcome: Outcome,
    /// The logit (`None` for identical outputs, not scored).
    pub logit: Option<f32>,
    /// Characters of the model's output.
    pub model_length: u64,
    /// Characters of the baseline's output.
    pub baseline_length: u64,
}

/// What happened to one model row, in file order.
#[derive(Debug)]
pub enum PairOutcome<'r> {
    /// Compared.
    Compared(&'r PairResult),
    /// Not compared.
    Bad(&'r BadRow),
}

/// Lengths of the outputs of a set of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    /// Pairs.
    pub pairs: u64,
    /// Mean characters of the model's outputs.
    pub model_mean: Option<f64>,
    /// Median characters of the model's outputs.
    pub model_median: Option<f64>,
    /// Mean characters of the baseline's outputs.
    pub baseline_mean: Option<f64>,
    /// Median characters of the baseline's outputs.
    pub baseline_median: Option<f64>,
}

/// Length statistics of wins, losses, ties and all pairs, and how often length decides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lengths {
    /// Pairs the model won.
    pub wins: LengthStats,
    /// Pairs the model lost.
    pub losses: LengthStats,
    /// Ties.
    pub ties: LengthStats,
    /// All pairs.
    pub all: LengthStats,
    /// Of the decided pairs whose outputs differ in length, the share the longer output won.
    pub longer_wins: Option<f64>,
    /// How many pairs that share is of.
    pub longer_decided: u64,
}

/// The result of a win-rate run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WinrateReport {
    /// The model's name (its `generator`, else the file name; the caller may override it).
    pub model: String,
    /// The baseline's name, likewise.
    pub baseline: String,
    /// The model's file.
    pub outputs_file: String,
    /// The baseline's file.
    pub baseline_file: String,
    /// The settings.
    pub options: WinrateOptions,
    /// Instructions compared.
    pub pairs: u64,
    /// Wins of the model.
    pub wins: u64,
    /// Losses.
    pub losses: u64,
    /// Ties (identical outputs included).
    pub ties: u64,
    /// Pairs with identical outputs (ties, not scored).
    pub identical: u64,
    /// The win rate (ties count ½) with its interval.
    pub win_rate: Estimate,
    /// AlpacaEval's standard error of the win rate.
    pub standard_error: Option<f64>,
    /// The win rate overall and by dataset.
    pub summary: Summary,
    /// Output lengths.
    pub lengths: Lengths,
    /// Baseline rows no model row matched.
    pub unmatched_baseline: Vec<Location>,
    /// Rows not compared (see each `error`).
    pub bad_rows: Vec<BadRow>,
}

/// A row of either file.
struct OutputRow {
    instruction: String,
    output: String,
    generator: Option<String>,
    dataset: Option<String>,
}

fn parse_row(bytes: &[u8]) -> std::result::Result<OutputRow, String> {
    let f = Fields::parse(bytes)?;
    Ok(OutputRow {
        instruction: f.str("instruction")?.to_string(),
        output: f.str("output")?.to_string(),
        generator: f.opt_str("generator")?.map(str::to_string),
        dataset: f.opt_str("dataset")?.map(str::to_string),
    })
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// A baseline row: where it is, and the model row that matched it.
struct Entry {
    offset: u64,
    len: usize,
    position: Position,
    matched_by: Option<Position>,
}

/// The baseline file's rows by instruction hash, read back from disk when needed.
struct Index {
    file: File,
    name: Arc<str>,
    path: std::path::PathBuf,
    entries: Vec<Entry>,
    by_hash: HashMap<u64, Vec<usize>>,
    generator: Option<String>,
}

impl Index {
    fn build(path: &Path, bad: &mut Vec<BadRow>) -> Result<Self> {
        let name: Arc<str> = Arc::from(path.display().to_string());
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut index = Index {
            file,
            name: name.clone(),
            path: path.to_path_buf(),
            entries: vec![],
            by_hash: HashMap::new(),
            generator: None,
        };
        let mut reader = RecordReader::open(path)?;
        while let Some(record) = reader.next_record().map_err(|e| Error::io(path, e))? {
            let record = match record {
                Ok(r) => r,
                Err(b) => {
                    bad.push(BadRow {
                        location: Location { file: name.clone(), position: b.position },
                        error: b.message,
                    });
                    continue;
                }
            };
            let location = Location { file: name.clone(), position: record.position };
            let row = match parse_row(&record.bytes) {
                Ok(row) => row,
                Err(error) => {
                    bad.push(BadRow { location, error });
                    continue;
                }
            };
            if let Some((i, _)) = index.find(&row.instruction)? {
                let error =
                    format!("duplicate instruction (first at {}); the first row is used", index.entries[i].position);
                bad.push(BadRow { location, error });
                continue;
            }
            if index.generator.is_none() {
                index.generator = row.generator;
            }
            index.by_hash.entry(hash(&row.instruction)).or_default().push(index.entries.len());
            index.entries.push(Entry {
                offset: record.offset,
                len: record.bytes.len(),
                position: record.position,
                matched_by: None,
            });
        }
        Ok(index)
    }

    /// The entry with this instruction and its row.
    fn find(&mut self, instruction: &str) -> Result<Option<(usize, OutputRow)>> {
        let Some(candidates) = self.by_hash.get(&hash(instruction)) else {
            return Ok(None);
        };
        for &i in candidates {
            let e = &self.entries[i];
            let bytes = read_at(&mut self.file, e.offset, e.len).map_err(|err| Error::io(&self.path, err))?;
            let row = parse_row(&bytes).map_err(|err| {
                Error::invalid_file(&self.path, format!("{} changed while being read: {err}", e.position))
            })?;
            if row.instruction == instruction {
                return Ok(Some((i, row)));
            }
        }
        Ok(None)
    }
}

/// A matched pair waiting to be scored.
struct Pending {
    result: PairResult,
    request: Option<CompareRequest>,
}

/// What is kept of each compared pair.
struct Kept {
    stratum: u32,
    outcome: Outcome,
    identical: bool,
    model_length: u64,
    baseline_length: u64,
}

/// Compares every model row of `outputs` with the baseline row of the same instruction in
/// `baseline`, calling `sink` with each model row's outcome in file order.
///
/// # Errors
/// Invalid options; a file that cannot be read at all. Bad rows are reported, not returned.
pub fn winrate<S: PairScorer + ?Sized>(
    scorer: &S,
    outputs: &Path,
    baseline: &Path,
    options: WinrateOptions,
    sink: impl FnMut(PairOutcome<'_>),
) -> Result<WinrateReport> {
    winrate_chunked(scorer, outputs, baseline, options, sink, CHUNK_PASSES, CHUNK_ROWS)
}

fn winrate_chunked<S: PairScorer + ?Sized>(
    scorer: &S,
    outputs: &Path,
    baseline: &Path,
    options: WinrateOptions,
    mut sink: impl FnMut(PairOutcome<'_>),
    chunk_passes: usize,
    chunk_rows: usize,
) -> Result<WinrateReport> {
    if !(options.tie_threshold >= 0.0 && options.tie_threshold.is_finite()) {
        return Err(Error::invalid_input(
            "tie_threshold",
            format!("must be a non-negative number, got {}", options.tie_threshold),
        ));
    }
    validate_bootstrap(&options.bootstrap)?;
    let mut bad = vec![];
    let mut index = Index::build(baseline, &mut bad)?;
    let name: Arc<str> = Arc::from(outputs.display().to_string());
    let mut reader = RecordReader::open(outputs)?;
    let mut state =
        Run { options, kept: vec![], strata: vec![], strata_index: HashMap::new(), bad: vec![], any_dataset: false };
    let mut pending: Vec<std::result::Result<Pending, BadRow>> = vec![];
    let mut passes = 0;
    let mut generator = None;
    while let Some(record) = reader.next_record().map_err(|e| Error::io(outputs, e))? {
        let item = match record {
            Err(b) => Err(BadRow { location: Location { file: name.clone(), position: b.position }, error: b.message }),
            Ok(r) => {
                let location = Location { file: name.clone(), position: r.position };
                match parse_row(&r.bytes) {
                    Err(error) => Err(BadRow { location, error }),
                    Ok(row) => {
                        if generator.is_none() {
                            generator = row.generator.clone();
                        }
                        state.pair(&mut index, location, row)?
                    }
                }
            }
        };
        if let Ok(Pending { request: Some(_), .. }) = &item {
            passes += options.mode.passes();
        }
        pending.push(item);
        if passes >= chunk_passes || pending.len() >= chunk_rows {
            state.flush(scorer, std::mem::take(&mut pending), &mut sink);
            passes = 0;
        }
    }
    state.flush(scorer, pending, &mut sink);
    let unmatched_baseline = index
        .entries
        .iter()
        .filter(|e| e.matched_by.is_none())
        .map(|e| Location { file: index.name.clone(), position: e.position })
        .collect();
    bad.append(&mut state.bad);
    let stem = |p: &Path| p.file_stem().map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into_owned());
    Ok(state.report(
        generator.unwrap_or_else(|| stem(outputs)),
        index.generator.take().unwrap_or_else(|| stem(baseline)),
        outputs.display().to_string(),
        baseline.display().to_string(),
        unmatched_baseline,
        bad,
    ))
}

/// The state of a run over the model rows.
struct Run {
    options: WinrateOptions,
    kept: Vec<Kept>,
    strata: Vec<String>,
    strata_index: HashMap<String, u32>,
    bad: Vec<BadRow>,
    any_dataset: bool,
}

impl Run {
    /// Matches a model row with its baseline row.
    fn pair(
        &mut self,
        index: &mut Index,
        location: Location,
        row: OutputRow,
    ) -> Result<std::result::Result<Pending, BadRow>> {
        let Some((i, base)) = index.find(&row.instruction)? else {
            return Ok(Err(BadRow { location, error: "no baseline row has this instruction".into() }));
        };
        let entry = &mut index.entries[i];
        if let Some(first) = entry.matched_by {
            return Ok(Err(BadRow {
                location,
                error: format!("duplicate instruction (first at {first}); the first row is used"),
            }));
        }
        entry.matched_by = Some(location.position);
        let dataset = row.dataset.or(base.dataset);
        self.any_dataset |= dataset.is_some();
        let request = (row.output != base.output).then(|| CompareRequest {
            instruction: None,
            source: row.instruction.clone(),
            a: row.output.clone(),
            b: base.output.clone(),
        });
        let result = PairResult {
            location,
            baseline: Location { file: index.name.clone(), position: entry.position },
            dataset: dataset.unwrap_or_else(|| "(none)".into()),
            outcome: Outcome::Tie,
            logit: None,
            model_length: row.output.chars().count() as u64,
            baseline_length: base.output.chars().count() as u64,
        };
        Ok(Ok(Pending { result, request }))
    }

    /// Scores the pending pairs and records them.
    fn flush<S: PairScorer + ?Sized>(
        &mut self,
        scorer: &S,
        pending: Vec<std::result::Result<Pending, BadRow>>,
        sink: &mut impl FnMut(PairOutcome<'_>),
    ) {
        let requests = pending.iter().filter_map(|p| p.as_ref().ok().and_then(|p| p.request.as_ref()));
        let mut scored = compare_logits(scorer, requests, self.options.mode).into_iter();
        for item in pending {
            let result = item.and_then(|Pending { mut result, request }| {
                if request.is_some() {
                    match scored.next().expect("one result per request") {
                        Ok(s) => {
                            result.logit = Some(s.logit);
                            result.outcome = match predict(s.logit, self.options.tie_threshold) {
                                Label::A => Outcome::Win,
                                Label::B => Outcome::Loss,
                                Label::Tie => Outcome::Tie,
                            };
                        }
                        Err(e) => return Err(BadRow { location: result.location, error: e.to_string() }),
                    }
                }
                Ok(result)
            });
            match result {
                Ok(r) => {
                    let stratum = match self.strata_index.get(&r.dataset) {
                        Some(&s) => s,
                        None => {
                            self.strata.push(r.dataset.clone());
                            self.strata_index.insert(r.dataset.clone(), self.strata.len() as u32 - 1);
                            self.strata.len() as u32 - 1
                        }
                    };
                    self.kept.push(Kept {
                        stratum,
                        outcome: r.outcome,
                        identical: r.logit.is_none(),
                        model_length: r.model_length,
                        baseline_length: r.baseline_length,
                    });
                    sink(PairOutcome::Compared(&r));
                }
                Err(b) => {
                    sink(PairOutcome::Bad(&b));
                    self.bad.push(b);
                }
            }
        }
    }

    fn report(
        &self,
        model: String,
        baseline: String,
        outputs_file: String,
        baseline_file: String,
        unmatched_baseline: Vec<Location>,
        bad_rows: Vec<BadRow>,
    ) -> WinrateReport {
        let count = |o: Outcome| self.kept.iter().filter(|k| k.outcome == o).count() as u64;
        let mut rows = vec![0u64; self.strata.len()];
        let mut scores = vec![vec![]; self.strata.len()];
        for k in &self.kept {
            rows[k.stratum as usize] += 1;
            scores[k.stratum as usize].push(k.outcome.score());
        }
        let info = MetricInfo {
            key: "win_rate".into(),
            title: "win rate".into(),
            description: "share of instructions where the model's output is preferred, ties counting half".into(),
        };
        let groupings = if self.any_dataset {
            vec![Grouping {
                name: "dataset".into(),
                groups: self
                    .strata
                    .iter()
                    .enumerate()
                    .map(|(s, name)| GroupSpec { name: name.clone(), combine: Combine::Pooled(vec![s]) })
                    .collect(),
            }]
        } else {
            vec![]
        };
        let summary =
            summarize(&self.strata, &rows, vec![MetricScores { info, scores }], &groupings, &self.options.bootstrap);
        let all: Vec<f64> = self.kept.iter().map(|k| k.outcome.score()).collect();
        WinrateReport {
            model,
            baseline,
            outputs_file,
            baseline_file,
            options: self.options,
            pairs: self.kept.len() as u64,
            wins: count(Outcome::Win),
            losses: count(Outcome::Loss),
            ties: count(Outcome::Tie),
            identical: self.kept.iter().filter(|k| k.identical).count() as u64,
            win_rate: summary.overall.values["win_rate"],
            standard_error: standard_error(&all),
            summary,
            lengths: self.lengths(),
            unmatched_baseline,
            bad_rows,
        }
    }
}

impl Run {
    fn lengths(&self) -> Lengths {
        let stats = |filter: &dyn Fn(&Kept) -> bool| {
            let chosen: Vec<&Kept> = self.kept.iter().filter(|k| filter(k)).collect();
            let (model_mean, model_median) =
                mean_median(&mut chosen.iter().map(|k| k.model_length).collect::<Vec<_>>());
            let (baseline_mean, baseline_median) =
                mean_median(&mut chosen.iter().map(|k| k.baseline_length).collect::<Vec<_>>());
            LengthStats { pairs: chosen.len() as u64, model_mean, model_median, baseline_mean, baseline_median }
        };
        let decided: Vec<&Kept> =
            self.kept.iter().filter(|k| k.outcome != Outcome::Tie && k.model_length != k.baseline_length).collect();
        let longer_won =
            decided.iter().filter(|k| (k.outcome == Outcome::Win) == (k.model_length > k.baseline_length)).count();
        Lengths {
            wins: stats(&|k| k.outcome == Outcome::Win),
            losses: stats(&|k| k.outcome == Outcome::Loss),
            ties: stats(&|k| k.outcome == Outcome::Tie),
            all: stats(&|_| true),
            longer_wins: (!decided.is_empty()).then(|| longer_won as f64 / decided.len() as f64),
            longer_decided: decided.len() as u64,
        }
    }
}

/// The standard error of the mean (sample standard deviation over √n, ddof 1): `None` below two
/// values.
pub fn standard_error(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    Some((var / n as f64).sqrt())
}

/// Mean and median of `values` (`None` for none).
fn mean_median(values: &mut [u64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    values.sort_unstable();
    let n = values.len();
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let median = if n % 2 == 1 { values[n / 2] as f64 } else { (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0 };
    (Some(mean), Some(median))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::LenScorer;

    const BASELINE: &str = r#"{"instruction": "i1", "output": "bb", "generator": "base", "dataset": "d1"}
{"instruction": "i2", "output": "bbbb", "dataset": "d1"}
{"instruction": "i3", "output": "same"}
{"instruction": "i4", "output": "b"}
{"instruction": "i1", "output": "dup"}
not json
"#;

    const OUTPUTS: &str = r#"[
  {"instruction": "i1", "output": "mmmm", "generator": "mine", "dataset": "d1"},
  {"instruction": "i2", "output": "m", "dataset": "d1"},
  {"instruction": "i3", "output": "same", "dataset": "d2"},
  {"instruction": "i9", "output": "x"},
  {"instruction": "i1", "output": "again"},
  {"output": "x"}
]"#;

    fn files() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (b, o) = (dir.path().join("base.jsonl"), dir.path().join("model.json"));
        std::fs::write(&b, BASELINE).unwrap();
        std::fs::write(&o, OUTPUTS).unwrap();
        (dir, o, b)
    }

    #[test]
    fn pairs_are_matched_by_instruction_and_counted() {
        let (_dir, outputs, baseline) = files();
        let scorer = LenScorer::new(0.25);
        let mut events = vec![];
        let r = winrate(&scorer, &outputs, &baseline, WinrateOptions::default(), |e| {
            events.push(match e {
                PairOutcome::Compared(p) => format!("{} {:?} {:?}", p.location.position, p.outcome, p.logit),
                PairOutcome::Bad(b) => format!("{} bad", b.location.position),
            })
        })
        .unwrap();
        assert_eq!(
            events,
            [
                "item 1 (line 2) Win Some(2.0)",
                "item 2 (line 3) Loss Some(-3.0)",
                "item 3 (line 4) Tie None",
                "item 4 (line 5) bad",
                "item 5 (line 6) bad",
                "item 6 (line 7) bad"
            ]
        );
        assert_eq!((r.model.as_str(), r.baseline.as_str()), ("mine", "base"));
        assert_eq!((r.pairs, r.wins, r.losses, r.ties, r.identical), (3, 1, 1, 1, 1));
        // Ties count half: (1 + 0 + ½) / 3.
        assert_eq!(r.win_rate.value, Some(0.5));
        // Scores [1, 0, ½]: variance ((½)² + (½)² + 0) / 2 = ¼, standard error √(¼ / 3).
        assert_eq!(r.standard_error, Some((0.25f64 / 3.0).sqrt()));
        let t = &r.summary.tables[0];
        assert_eq!(t.name, "dataset");
        assert_eq!(t.rows.iter().map(|r| (r.name.as_str(), r.rows)).collect::<Vec<_>>(), [("d1", 2), ("d2", 1)]);
        let l = &r.lengths;
        assert_eq!((l.wins.model_mean, l.wins.baseline_mean), (Some(4.0), Some(2.0)));
        assert_eq!((l.losses.model_median, l.losses.baseline_median), (Some(1.0), Some(4.0)));
        assert_eq!((l.all.pairs, l.all.model_mean, l.all.model_median), (3, Some(3.0), Some(4.0)));
        assert_eq!((l.all.baseline_mean, l.all.baseline_median), (Some(10.0 / 3.0), Some(4.0)));
        assert_eq!((l.longer_wins, l.longer_decided), (Some(1.0), 2));
        assert_eq!(r.unmatched_baseline.iter().map(|l| l.position.to_string()).collect::<Vec<_>>(), ["line 4"]);
        let bad: Vec<String> = r.bad_rows.iter().map(|b| format!("{}: {}", b.location.position, b.error)).collect();
        assert_eq!(bad.len(), 5);
        assert_eq!(bad[0], "line 5: duplicate instruction (first at line 1); the first row is used");
        assert!(bad[1].starts_with("line 6: invalid JSON"));
        assert_eq!(bad[2], "item 4 (line 5): no baseline row has this instruction");
        assert_eq!(bad[3], "item 5 (line 6): duplicate instruction (first at item 1 (line 2)); the first row is used");
        assert_eq!(bad[4], "item 6 (line 7): missing field `instruction`");
    }

    #[test]
    fn thresholds_and_chunks() {
        let (_dir, outputs, baseline) = files();
        let scorer = LenScorer::new(0.0);
        let wide = WinrateOptions { tie_threshold: 2.0, ..Default::default() };
        let r = winrate(&scorer, &outputs, &baseline, wide, |_| {}).unwrap();
        assert_eq!((r.wins, r.losses, r.ties, r.identical), (0, 1, 2, 1));
        let a = winrate_chunked(&scorer, &outputs, &baseline, WinrateOptions::default(), |_| {}, 1, 1).unwrap();
        let counting = LenScorer::new(0.0);
        let b = winrate(&counting, &outputs, &baseline, WinrateOptions::default(), |_| {}).unwrap();
        assert_eq!(a, b);
        // Identical outputs are never scored: 2 pairs × 2 orders, in one call.
        assert_eq!(*counting.calls.lock().unwrap(), [4]);
        let bad = WinrateOptions { tie_threshold: f64::NAN, ..Default::default() };
        assert!(matches!(winrate(&scorer, &outputs, &baseline, bad, |_| {}), Err(Error::InvalidInput { .. })));
        let missing = outputs.with_file_name("missing.json");
        assert!(matches!(
            winrate(&scorer, &missing, &baseline, WinrateOptions::default(), |_| {}),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn without_datasets_or_generators_names_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let (b, o) = (dir.path().join("ref.jsonl"), dir.path().join("sys.jsonl"));
        std::fs::write(&b, "{\"instruction\": \"i\", \"output\": \"x\"}\n").unwrap();
        std::fs::write(&o, "{\"instruction\": \"i\", \"output\": \"yy\"}\n").unwrap();
        let r = winrate(&LenScorer::new(0.0), &o, &b, WinrateOptions::default(), |_| {}).unwrap();
        assert_eq!((r.model.as_str(), r.baseline.as_str()), ("sys", "ref"));
        assert!(r.summary.tables.is_empty());
        assert_eq!((r.win_rate.value, r.standard_error), (Some(1.0), None));
    }

    #[test]
    fn standard_errors_match_pandas_sem() {
        // pandas.Series([1, 0, 0.5, 1]).sem() = numpy std(ddof=1) / √4 = 0.23935677693908453.
        let se = standard_error(&[1.0, 0.0, 0.5, 1.0]).unwrap();
        assert!((se - 0.239_356_776_939_085).abs() < 1e-12, "{se}");
        assert_eq!(standard_error(&[1.0]), None);
    }
}
