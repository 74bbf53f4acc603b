//! The evaluation pipeline: rows are read one at a time, scored in chunks (all the passes of a
//! chunk in one scorer call), and only each row's outcome — its category, label and logits — is
//! kept. Bad rows (unreadable, invalid, or failing to score) are counted with where they are and
//! why, and never stop the run. The statistics are computed once at the end.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::formats::{Context, Format, Item};
use crate::metrics::{metrics_for, Rule};
use crate::records::{count_records, Position, RecordReader};
use crate::stats::{predict, search_tie_threshold, Bootstrap, Label, TieGrid, TieSearch};
use crate::summary::{summarize, MetricScores, Summary};
use pairrm::judge::{compare_logits, CompareLogits, CompareMode, PairScorer};
use pairrm::{Error, Result};

/// Forward passes gathered before a chunk is scored.
pub const CHUNK_PASSES: usize = 256;
/// Rows gathered at most before a chunk is scored.
pub const CHUNK_ROWS: usize = 1024;

/// How to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Compare mode (`both` by default: the two orders, which cancels position bias).
    pub mode: CompareMode,
    /// The model predicts a tie when `|logit| ≤ tie_threshold` (0: only an exact 0).
    pub tie_threshold: f64,
    /// The grid of the tie-threshold search (benchmarks with tie labels).
    pub tie_grid: TieGrid,
    /// Bootstrap intervals.
    pub bootstrap: Bootstrap,
    /// Format single-turn pairs as one-turn conversations (RewardBench's PairRM pipeline).
    pub conversation: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            mode: CompareMode::Both,
            tie_threshold: 0.0,
            tie_grid: TieGrid::default(),
            bootstrap: Bootstrap::default(),
            conversation: false,
        }
    }
}

impl EvalOptions {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.tie_threshold >= 0.0 && self.tie_threshold.is_finite()) {
            return Err(Error::invalid_input(
                "tie_threshold",
                format!("must be a non-negative number, got {}", self.tie_threshold),
            ));
        }
        self.tie_grid.points().map_err(|e| Error::invalid_input("tie_grid", e))?;
        validate_bootstrap(&self.bootstrap)
    }
}

/// Checks bootstrap settings.
///
/// # Errors
/// [`Error::InvalidInput`] when the confidence is not in (0, 1).
pub fn validate_bootstrap(b: &Bootstrap) -> Result<()> {
    if !(b.confidence > 0.0 && b.confidence < 1.0) {
        return Err(Error::invalid_input("confidence", format!("must be between 0 and 1, got {}", b.confidence)));
    }
    Ok(())
}

/// Where a row is: its file and its place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file, as named.
    #[serde(serialize_with = "serialize_str")]
    pub file: Arc<str>,
    /// The row's place.
    #[serde(flatten)]
    pub position: Position,
}

fn serialize_str<S: serde::Serializer>(s: &Arc<str>, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(s)
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.position)
    }
}

/// A row that was not evaluated, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// Where it is.
    #[serde(flatten)]
    pub location: Location,
    /// What is wrong.
    pub error: String,
}

/// What happened to one row, in file order (for per-row output).
#[derive(Debug)]
pub enum RowOutcome<'r> {
    /// Scored.
    Scored {
        /// Where it is.
        location: &'r Location,
        /// The row.
        item: &'r Item,
        /// Its logits.
        scored: CompareLogits,
    },
    /// Not evaluated.
    Bad(&'r BadRow),
}

/// Rows per label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LabelCounts {
    /// A preferred.
    pub a: u64,
    /// B preferred.
    pub b: u64,
    /// Ties.
    pub tie: u64,
}

/// How the answer order matters (mode `both` only): the headline metric computed from each
/// single pass, and how often the two passes agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionStats {
    /// The metric (the headline one).
    pub metric: String,
    /// Its value from `logit(A, B)` alone (mode `ab`).
    pub ab: Option<f64>,
    /// Its value from `−logit(B, A)` alone (mode `ba`).
    pub ba: Option<f64>,
    /// Rows where both passes predict the same (A, B or, within the tie threshold, tie).
    pub consistency: f64,
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The format read.
    pub benchmark: Format,
    /// The benchmark's name.
    pub title: String,
    /// The model (set by the caller).
    pub model: Option<String>,
    /// The files read, in order.
    pub files: Vec<String>,
    /// The settings.
    pub options: EvalOptions,
    /// Rows evaluated.
    pub rows: u64,
    /// Their labels.
    pub labels: LabelCounts,
    /// Rows not evaluated (see each `error`).
    pub bad_rows: Vec<BadRow>,
    /// The tie-threshold search (benchmarks with tie labels, when the data has ties).
    pub tie_search: Option<TieSearch>,
    /// Position statistics (mode `both`).
    pub position: Option<PositionStats>,
    /// The metrics, overall and per category.
    pub summary: Summary,
}

/// What is kept of a scored row.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    stratum: u32,
    label: Label,
    scored: CompareLogits,
}

/// Callback receiving each row's outcome.
type Sink<'a> = Box<dyn FnMut(RowOutcome<'_>) + 'a>;

/// An evaluation in progress.
pub struct Evaluator<'a, S: PairScorer + ?Sized> {
    scorer: &'a S,
    format: Format,
    options: EvalOptions,
    pending: Vec<(Location, std::result::Result<Item, String>)>,
    pending_passes: usize,
    chunk_passes: usize,
    chunk_rows: usize,
    outcomes: Vec<Outcome>,
    strata: Vec<Vec<String>>,
    strata_index: HashMap<Vec<String>, u32>,
    bad: Vec<BadRow>,
    files: Vec<String>,
    sink: Option<Sink<'a>>,
}

impl<'a, S: PairScorer + ?Sized> Evaluator<'a, S> {
    /// Starts an evaluation of `format` rows with `scorer`.
    ///
    /// # Errors
    /// Invalid options ([`EvalOptions::validate`]).
    pub fn new(scorer: &'a S, format: Format, options: EvalOptions) -> Result<Self> {
        options.validate()?;
        Ok(Evaluator {
            scorer,
            format,
            options,
            pending: vec![],
            pending_passes: 0,
            chunk_passes: CHUNK_PASSES,
            chunk_rows: CHUNK_ROWS,
            outcomes: vec![],
            strata: vec![],
            strata_index: HashMap::new(),
            bad: vec![],
            files: vec![],
            sink: None,
        })
    }

    /// Calls `sink` with every row's outcome, in input order, as chunks are scored.
    pub fn on_row(mut self, sink: impl FnMut(RowOutcome<'_>) + 'a) -> Self {
        self.sink = Some(Box::new(sink));
        self
    }

    /// Changes the chunk size (passes and rows); results do not depend on it.
    pub fn with_chunks(mut self, passes: usize, rows: usize) -> Self {
        self.chunk_passes = passes.max(1);
        self.chunk_rows = rows.max(1);
        self
    }

    /// Reads, scores and records every row of `path`.
    ///
    /// # Errors
    /// Only when the file cannot be read at all (missing, unreadable, an unparseable `task.json`):
    /// bad rows are recorded, not returned.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        let context = Context::for_file(path, self.options.conversation);
        if let Some(rows) = self.format.read_document(path, &context)? {
            self.files.push(file.to_string());
            for (position, item) in rows {
                self.push(Location { file: file.clone(), position }, item);
            }
            return Ok(());
        }
        let mut reader = RecordReader::open(path)?;
        self.files.push(file.to_string());
        while let Some(record) = reader.next_record().map_err(|e| Error::io(path, e))? {
            match record {
                Ok(r) => {
                    let item = self.format.parse(&r.bytes, &context);
                    self.push(Location { file: file.clone(), position: r.position }, item);
                }
                Err(bad) => self.push(Location { file: file.clone(), position: bad.position }, Err(bad.message)),
            }
        }
        Ok(())
    }

    /// Adds one row (or the reason it is bad); scores the chunk when it is full.
    pub fn push(&mut self, location: Location, item: std::result::Result<Item, String>) {
        if item.is_ok() {
            self.pending_passes += self.options.mode.passes();
        }
        self.pending.push((location, item));
        if self.pending_passes >= self.chunk_passes || self.pending.len() >= self.chunk_rows {
            self.flush();
        }
    }

    /// Scores the pending rows.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.pending_passes = 0;
        let requests = pending.iter().filter_map(|(_, i)| i.as_ref().ok().map(|i| &i.request));
        let mut scored = compare_logits(self.scorer, requests, self.options.mode).into_iter();
        for (location, item) in pending {
            let result = item.and_then(|item| {
                let s = scored.next().expect("one result per request").map_err(|e| e.to_string())?;
                Ok((item, s))
            });
            match result {
                Ok((item, s)) => {
                    let stratum = match self.strata_index.get(&item.keys) {
                        Some(&i) => i,
                        None => {
                            let i = self.strata.len() as u32;
                            self.strata.push(item.keys.clone());
                            self.strata_index.insert(item.keys.clone(), i);
                            i
                        }
                    };
                    self.outcomes.push(Outcome { stratum, label: item.label, scored: s });
                    if let Some(sink) = &mut self.sink {
                        sink(RowOutcome::Scored { location: &location, item: &item, scored: s });
                    }
                }
                Err(error) => {
                    let bad = BadRow { location, error };
                    if let Some(sink) = &mut self.sink {
                        sink(RowOutcome::Bad(&bad));
                    }
                    self.bad.push(bad);
                }
            }
        }
    }

    /// Scores what is left and computes the report.
    pub fn finish(mut self) -> EvalReport {
        self.flush();
        let options = self.options;
        let mut labels = LabelCounts::default();
        for o in &self.outcomes {
            match o.label {
                Label::A => labels.a += 1,
                Label::B => labels.b += 1,
                Label::Tie => labels.tie += 1,
            }
        }
        let ties_possible = self.format.has_ties();
        let tie_search = if ties_possible && labels.tie > 0 {
            let rows: Vec<(Label, f32)> = self.outcomes.iter().map(|o| (o.label, o.scored.logit)).collect();
            search_tie_threshold(&rows, options.tie_grid).expect("the grid was validated")
        } else {
            None
        };
        let metrics =
            metrics_for(labels.tie > 0, ties_possible, options.tie_threshold, tie_search.as_ref().map(|s| s.threshold));
        let mut rows = vec![0u64; self.strata.len()];
        for o in &self.outcomes {
            rows[o.stratum as usize] += 1;
        }
        let scores = metrics
            .iter()
            .map(|m| {
                let mut scores = vec![vec![]; self.strata.len()];
                for o in &self.outcomes {
                    if let Some(s) = m.rule.score(o.label, o.scored.logit) {
                        scores[o.stratum as usize].push(s);
                    }
                }
                MetricScores { info: m.info.clone(), scores }
            })
            .collect();
        let groupings = self.format.groupings(&self.strata);
        let names: Vec<String> = self.strata.iter().map(|k| k.join("/")).collect();
        let summary = summarize(&names, &rows, scores, &groupings, &options.bootstrap);
        let position = (options.mode == CompareMode::Both && !self.outcomes.is_empty())
            .then(|| self.position(metrics[0].rule, &metrics[0].info.key));
        EvalReport {
            benchmark: self.format,
            title: self.format.title().to_string(),
            model: None,
            files: self.files,
            options,
            rows: self.outcomes.len() as u64,
            labels,
            bad_rows: self.bad,
            tie_search,
            position,
            summary,
        }
    }

    fn position(&self, rule: Rule, metric: &str) -> PositionStats {
        let rate = |logit: &dyn Fn(&CompareLogits) -> f32| {
            let scores: Vec<f64> = self.outcomes.iter().filter_map(|o| rule.score(o.label, logit(&o.scored))).collect();
            (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
        };
        let t = self.options.tie_threshold;
        let agree = self
            .outcomes
            .iter()
            .filter(|o| {
                let (ab, ba) = (o.scored.ab.unwrap_or(f32::NAN), o.scored.ba.unwrap_or(f32::NAN));
                predict(ab, t) == predict(-ba, t)
            })
            .count();
        PositionStats {
            metric: metric.to_string(),
            ab: rate(&|s| s.ab.unwrap_or(f32::NAN)),
            ba: rate(&|s| -s.ba.unwrap_or(f32::NAN)),
            consistency: agree as f64 / self.outcomes.len() as f64,
        }
    }
}

/// The number of rows of `path` in `format` (for progress reports; bad records excluded).
///
/// # Errors
/// The file cannot be read.
pub fn count_rows(format: Format, path: &Path) -> Result<u64> {
    match format.read_document(path, &Context::for_file(path, false))? {
        Some(rows) => Ok(rows.len() as u64),
        None => count_records(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::LenScorer;

    fn format(name: &str) -> Format {
        Format::named(name).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn autoj_rows(n: usize) -> String {
        (0..n)
            .map(|i| {
                let (r1, r2) = ("x".repeat(1 + i % 5), "y".repeat(1 + (i * 7) % 4));
                let scenario = ["planning", "chitchat", "code_generation"][i % 3];
                format!(
                    "{{\"scenario\": \"{scenario}\", \"label\": {}, \"prompt\": \"p{i}\", \"response 1\": \"{r1}\", \"response 2\": \"{r2}\"}}\n",
                    i % 3
                )
            })
            .collect()
    }

    #[test]
    fn results_do_not_depend_on_chunk_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "autoj.jsonl", &autoj_rows(40));
        let scorer = LenScorer::new(0.125);
        let run = |passes, rows| {
            let mut e =
                Evaluator::new(&scorer, format("autoj"), EvalOptions::default()).unwrap().with_chunks(passes, rows);
            e.add_file(&path).unwrap();
            e.finish()
        };
        let a = run(1, 1);
        let b = run(7, 3);
        let c = run(10_000, 10_000);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.rows, 40);
        assert_eq!(a.labels, LabelCounts { a: 14, b: 13, tie: 13 });
        let keys: Vec<&str> = a.summary.metrics.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["with_ties_searched", "with_ties", "without_ties"]);
        assert_eq!(a.summary.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["group", "scenario"]);
        assert_eq!(a.tie_search.as_ref().unwrap().curve.len(), 201);
        // Both orders: the combined logit is antisymmetric, so the search and the headline agree.
        assert_eq!(
            a.summary.overall.values["with_ties_searched"].value,
            Some(a.tie_search.as_ref().unwrap().agreement)
        );
    }

    #[test]
    fn rows_are_scored_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "autoj.jsonl", &autoj_rows(3000));
        let scorer = LenScorer::new(0.0);
        let mut seen = 0usize;
        let mut e = Evaluator::new(&scorer, format("autoj"), EvalOptions::default()).unwrap().on_row(|_| seen += 1);
        e.add_file(&path).unwrap();
        let report = e.finish();
        assert_eq!((report.rows, seen), (3000, 3000));
        let calls = scorer.calls.lock().unwrap();
        // 256 passes per chunk (128 rows × 2 orders), fewer distinct pairs after deduplication.
        assert!(calls.len() >= 3000 / 128, "{} calls", calls.len());
        assert!(calls.iter().all(|&n| n <= CHUNK_PASSES), "{calls:?}");
    }

    #[test]
    fn bad_rows_are_reported_where_they_are_and_the_rest_is_evaluated() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "pairs.jsonl",
            "{\"source\": \"s\", \"a\": \"aa\", \"b\": \"b\", \"label\": \"a\"}\n\
             not json\n\
             \n\
             {\"source\": \"s\", \"a\": \"FAIL\", \"b\": \"b\", \"label\": \"a\"}\n\
             {\"source\": \"s\", \"a\": \"a\", \"b\": \"b\", \"label\": \"maybe\"}\n\
             [1]\n\
             {\"source\": \"s\", \"a\": \"a\", \"b\": \"bbb\", \"label\": \"b\", \"subset\": \"two\"}\n",
        );
        let scorer = LenScorer::new(0.0);
        let mut events = vec![];
        let mut e = Evaluator::new(&scorer, format("jsonl"), EvalOptions::default()).unwrap().on_row(|r| {
            events.push(match r {
                RowOutcome::Scored { location, scored, .. } => format!("{} ok {}", location.position, scored.logit),
                RowOutcome::Bad(b) => format!("{} bad", b.location.position),
            })
        });
        e.add_file(&path).unwrap();
        let report = e.finish();
        assert_eq!(events, ["line 1 ok 1", "line 2 bad", "line 4 bad", "line 5 bad", "line 6 bad", "line 7 ok -2"]);
        assert_eq!(report.rows, 2);
        let lines: Vec<String> = report.bad_rows.iter().map(|b| b.location.to_string()).collect();
        let file = path.display().to_string();
        assert_eq!(lines, [2, 4, 5, 6].map(|l| format!("{file}: line {l}")));
        assert!(report.bad_rows[0].error.starts_with("invalid JSON"));
        assert!(report.bad_rows[1].error.contains("cannot score"));
        assert!(report.bad_rows[2].error.contains("field `label`"));
        assert_eq!(report.bad_rows[3].error, "expected a JSON object, got an array");
        // No tie labels: only "without ties".
        assert_eq!(report.summary.metrics.len(), 1);
        assert_eq!(report.summary.overall.values["without_ties"].value, Some(1.0));
        assert_eq!(report.summary.tables[0].rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["pairs", "two"]);
    }

    #[test]
    fn position_statistics_show_the_order_bias() {
        let dir = tempfile::tempdir().unwrap();
        // Equal lengths: logit(A, B) = logit(B, A) = bias, so each single pass always picks its left
        // answer; both orders together give exactly 0.
        let path = write(
            dir.path(),
            "rb.jsonl",
            "{\"prompt\": \"p\", \"chosen\": \"aa\", \"rejected\": \"bb\", \"subset\": \"hep-go\"}\n\
             {\"prompt\": \"p\", \"chosen\": \"aaaa\", \"rejected\": \"b\", \"subset\": \"hep-go\"}\n",
        );
        let scorer = LenScorer::new(0.5);
        let mut e = Evaluator::new(&scorer, format("rewardbench"), EvalOptions::default()).unwrap();
        e.add_file(&path).unwrap();
        let r = e.finish();
        assert_eq!(r.summary.overall.values["accuracy"].value, Some(0.5));
        let p = r.position.unwrap();
        assert_eq!((p.metric.as_str(), p.ab, p.ba, p.consistency), ("accuracy", Some(1.0), Some(0.5), 0.5));
        assert_eq!(r.summary.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["section", "subset"]);
        let mut single =
            Evaluator::new(&scorer, format("rewardbench"), EvalOptions { mode: CompareMode::Ab, ..Default::default() })
                .unwrap();
        single.add_file(&path).unwrap();
        let r = single.finish();
        assert_eq!((r.position, r.summary.overall.values["accuracy"].value), (None, Some(1.0)));
    }

    #[test]
    fn hhh_task_files_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("honest")).unwrap();
        let task = write(
            &dir.path().join("honest"),
            "task.json",
            "{\n \"examples\": [\n  {\"input\": \"q\", \"target_scores\": {\"good!\": 1, \"bad\": 0}},\n  {\"input\": \"q\", \"target_scores\": {\"x\": 1}}\n ]\n}\n",
        );
        assert_eq!(count_rows(format("hhh"), &task).unwrap(), 2);
        let scorer = LenScorer::new(0.0);
        let mut e = Evaluator::new(&scorer, format("hhh"), EvalOptions::default()).unwrap();
        e.add_file(&task).unwrap();
        assert!(matches!(e.add_file(&dir.path().join("missing.json")), Err(Error::Io { .. })));
        let r = e.finish();
        assert_eq!(r.rows, 1);
        assert_eq!(r.files, [task.display().to_string()]);
        assert_eq!(r.bad_rows[0].location.position, Position::Example { example: 2 });
        assert_eq!(r.summary.tables[0].rows[0].name, "honest");
        assert_eq!(r.tie_search, None);
        let rows = write(dir.path(), "x.jsonl", "{}\n\n{}\n");
        assert_eq!(count_rows(format("jsonl"), &rows).unwrap(), 2);
    }

    #[test]
    fn options_are_validated() {
        let scorer = LenScorer::new(0.0);
        let bad = [
            EvalOptions { tie_threshold: -1.0, ..Default::default() },
            EvalOptions { tie_grid: TieGrid { max: 1.0, step: 0.0 }, ..Default::default() },
            EvalOptions { bootstrap: Bootstrap { confidence: 1.0, ..Default::default() }, ..Default::default() },
        ];
        for o in bad {
            assert!(matches!(Evaluator::new(&scorer, format("jsonl"), o), Err(Error::InvalidInput { .. })));
        }
    }
}
