//! `pairrm._pairrm.Engine`: a loaded model and the judge functions over it.

use std::path::PathBuf;

use pairrm::checkpoint::{Checkpoint, Layout, OpenOptions};
use pairrm::judge::{self, CompareMode, RankWithRefRequest, Reference, SelectMethod, Target};
use pairrm::model::WeightDtype;
use pairrm::{Engine, EngineOptions, Precision};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::call;
use crate::errors::{collect, to_py};
use crate::requests::{compare_requests, conversation_pairs, rank_requests, Conversation};
use crate::source::{Fetcher, FetchingSource};

/// Scores and ranks per request.
type Ranked = (Vec<Vec<f32>>, Vec<Vec<usize>>);

/// A loaded PairRM model. Every method takes columns (one list per field, one item per
/// request), runs all the requests' forward passes together with the GIL released, and raises
/// for the first invalid request. `progress`, if given, is called as `progress(done, total)`
/// (forward passes) from the calling thread while the work runs. Ctrl-C (or any exception from a
/// signal handler or from `progress`) stops the work and is raised.
#[pyclass(frozen, name = "Engine", module = "pairrm._pairrm")]
pub struct PyEngine {
    engine: Engine,
}

fn parse<T: std::str::FromStr<Err = pairrm::Error>>(py: Python<'_>, s: &str) -> PyResult<T> {
    s.parse().map_err(|e| to_py(py, e, ""))
}

impl PyEngine {
    /// The engine (for the labelling binding).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[pymethods]
impl PyEngine {
    /// Loads `model`: a local checkpoint directory (either layout) or a hub id such as
    /// `llm-blender/PairRM`, read from the Hugging Face cache (`cache_dir`, else `HF_HUB_CACHE`,
    /// `HF_HOME/hub` or `~/.cache/huggingface/hub`). Files missing from the cache are fetched
    /// by `download`: a callable `download(repo, revision, cache_dir, required, one_of, optional)`
    /// that puts them in the cache, `True` for the built-in downloader (the environment's
    /// `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`, ...), or `None`/`False` for none. `dtype`:
    /// the weights' storage, `f32` (exact), `f16` or `bf16`. `precision`: the arithmetic of the
    /// linear layers, `f32` (exact), `bf16` or `int8`.
    #[new]
    #[pyo3(signature = (
        model, *, revision=None, cache_dir=None, download=None, source_max_length=None,
        candidate_max_length=None, threads=0, max_batch_tokens=None, dtype="f32", precision="f32"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: String,
        revision: Option<String>,
        cache_dir: Option<PathBuf>,
        download: Option<Bound<'_, PyAny>>,
        source_max_length: Option<usize>,
        candidate_max_length: Option<usize>,
        threads: usize,
        max_batch_tokens: Option<usize>,
        dtype: &str,
        precision: &str,
    ) -> PyResult<Self> {
        let open = OpenOptions { revision, source_max_length, candidate_max_length };
        let dtype: WeightDtype = dtype.parse().map_err(|e: String| PyValueError::new_err(format!("dtype: {e}")))?;
        let precision: Precision =
            precision.parse().map_err(|e: String| PyValueError::new_err(format!("precision: {e}")))?;
        let mut options = EngineOptions { threads, dtype, precision, ..Default::default() };
        if let Some(tokens) = max_batch_tokens {
            if tokens == 0 {
                return Err(PyValueError::new_err("max_batch_tokens must be at least 1"));
            }
            options.max_batch_tokens = tokens;
        }
        let fetcher = match download {
            None => Fetcher::Never,
            Some(d) if d.is_instance_of::<PyBool>() => {
                if d.is_truthy()? {
                    Fetcher::Builtin
                } else {
                    Fetcher::Never
                }
            }
            Some(d) if d.is_callable() => Fetcher::Python(d.unbind()),
            Some(d) => {
                return Err(PyTypeError::new_err(format!(
                    "download must be a callable, True, False or None, not {}",
                    d.get_type().name()?
                )))
            }
        };
        let source = FetchingSource::new(cache_dir, fetcher);
        let loaded = py
            .detach(|| Checkpoint::open_with(&model, &open, &source).and_then(|c| Engine::from_checkpoint(c, options)));
        match loaded {
            Ok(engine) => Ok(PyEngine { engine }),
            Err(e) => Err(source.take_raised().unwrap_or_else(|| to_py(py, e, &format!("loading model {model}: ")))),
        }
    }

    /// The model as it was named when loaded.
    #[getter]
    fn model_id(&self) -> &str {
        self.engine.model_id()
    }

    /// The checkpoint layout: `"original"` (LLM-Blender's) or `"hf"` (PairRM-hf).
    #[getter]
    fn layout(&self) -> &'static str {
        match self.engine.layout() {
            Layout::Original => "original",
            Layout::Hf => "hf",
        }
    }

    /// The weights' storage: `"f32"`, `"f16"` or `"bf16"`.
    #[getter]
    fn dtype(&self) -> String {
        self.engine.dtype().to_string()
    }

    /// The arithmetic of the linear layers: `"f32"` (exact), `"bf16"` or `"int8"`.
    #[getter]
    fn precision(&self) -> String {
        self.engine.precision().to_string()
    }

    /// The compute kernels that run: `{"linear", "attention", "level"}`.
    #[getter]
    fn kernels(&self) -> std::collections::HashMap<&'static str, String> {
        let k = self.engine.kernels();
        [("linear", k.linear.to_string()), ("attention", k.attention.to_string()), ("level", k.level.to_string())]
            .into_iter()
            .collect()
    }

    /// Threads of the engine's pool.
    #[getter]
    fn threads(&self) -> usize {
        self.engine.threads()
    }

    /// Token budget of the source part (instruction + input).
    #[getter]
    fn source_max_length(&self) -> usize {
        self.engine.config().source_max_length
    }

    /// Base token budget of each candidate part.
    #[getter]
    fn candidate_max_length(&self) -> usize {
        self.engine.config().candidate_max_length
    }

    /// The exact model input ids for `instruction + source` with `a` left and `b` right.
    #[pyo3(signature = (source, a, b, instruction=None))]
    fn encode(&self, py: Python<'_>, source: &str, a: &str, b: &str, instruction: Option<&str>) -> PyResult<Vec<u32>> {
        let source = format!("{}{source}", instruction.unwrap_or(""));
        self.engine.encode(&source, a, b).map(|input| input.ids).map_err(|e| to_py(py, e, ""))
    }

    /// `logit` per pair (> 0: A is better in every mode). `mode`: `ab`, `ba`, `both` or the
    /// reference's names `[A,B]`, `[B,A]`, `[A,B]+[B,A]`.
    #[pyo3(signature = (sources, candidates_a, candidates_b, instructions=None, mode="both", progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        candidates_a: Vec<String>,
        candidates_b: Vec<String>,
        instructions: Option<Vec<String>>,
        mode: &str,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<f32>> {
        let mode: CompareMode = parse(py, mode)?;
        let requests = compare_requests(sources, candidates_a, candidates_b, instructions)?;
        let planned = requests.len() * mode.passes();
        let results =
            call::run(py, progress.as_ref(), planned, |c| judge::compare(&self.engine.scorer(c), &requests, mode))?;
        Ok(collect(py, results, "inputs")?.into_iter().map(|r| r.logit).collect())
    }

    /// `logit` per pair of conversations, given as lists of `(role, content)` turns.
    #[pyo3(signature = (conversations_a, conversations_b, mode="both", progress=None))]
    fn compare_conversations(
        &self,
        py: Python<'_>,
        conversations_a: Vec<Conversation>,
        conversations_b: Vec<Conversation>,
        mode: &str,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<f32>> {
        let mode: CompareMode = parse(py, mode)?;
        let pairs = conversation_pairs(conversations_a, conversations_b)?;
        let planned = pairs.len() * mode.passes();
        let results = call::run(py, progress.as_ref(), planned, |c| {
            judge::compare_conversations(&self.engine.scorer(c), &pairs, mode)
        })?;
        Ok(collect(py, results, "conversations")?.into_iter().map(|r| r.logit).collect())
    }

    /// Scores (higher is better) and ranks (1 is best) of each request's candidates, from the
    /// full comparison matrix.
    #[pyo3(signature = (sources, candidates, instructions=None, progress=None))]
    fn rank(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        candidates: Vec<Vec<String>>,
        instructions: Option<Vec<String>>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Ranked> {
        let requests = rank_requests(sources, candidates, instructions)?;
        let planned = requests.iter().map(|r| judge::matrix_passes(r.candidates.len())).sum();
        let results = call::run(py, progress.as_ref(), planned, |c| judge::rank(&self.engine.scorer(c), &requests))?;
        Ok(collect(py, results, "inputs")?.into_iter().map(|r| (r.scores, r.ranks)).unzip())
    }

    /// Scores (`-compare(reference, candidate)`, mode both) and ranks against a reference: the
    /// `reference` mode (`longest`, `shortest`, `median`/`median_length`, `first`, `last`), or
    /// the given `references` texts (one per request).
    #[pyo3(signature = (sources, candidates, instructions=None, reference="longest", references=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn rank_with_ref(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        candidates: Vec<Vec<String>>,
        instructions: Option<Vec<String>>,
        reference: &str,
        references: Option<Vec<String>>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Ranked> {
        let n = sources.len();
        let requests = rank_requests(sources, candidates, instructions)?;
        let references: Vec<Reference> = match references {
            Some(texts) if texts.len() != n => {
                return Err(PyValueError::new_err(format!(
                    "references has {} items but sources has {n}; they must match",
                    texts.len()
                )))
            }
            Some(texts) => texts.into_iter().map(Reference::Given).collect(),
            None => vec![parse(py, reference)?; n],
        };
        let requests: Vec<RankWithRefRequest> = requests
            .into_iter()
            .zip(references)
            .map(|(request, reference)| RankWithRefRequest { request, reference })
            .collect();
        let planned = requests.iter().map(|r| judge::reference_passes(r.request.candidates.len())).sum();
        let results =
            call::run(py, progress.as_ref(), planned, |c| judge::rank_with_ref(&self.engine.scorer(c), &requests))?;
        Ok(collect(py, results, "inputs")?.into_iter().map(|r| (r.scores, r.ranks)).unzip())
    }

    /// The candidate indices of each request, the best (or, with `worst`, the worst) first:
    /// `method="full"` sorts by the full-matrix ranks (ties by index); `method="bubble"` runs one
    /// bubble pass over a permutation seeded by `seed` (winner first, then each step's loser).
    #[pyo3(signature = (sources, candidates, instructions=None, worst=false, method="bubble", seed=0, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn select(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        candidates: Vec<Vec<String>>,
        instructions: Option<Vec<String>>,
        worst: bool,
        method: &str,
        seed: u64,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Vec<usize>>> {
        let method: SelectMethod = parse(py, method)?;
        let target = if worst { Target::Worst } else { Target::Best };
        let requests = rank_requests(sources, candidates, instructions)?;
        let planned = requests.iter().map(|r| method.passes(r.candidates.len())).sum();
        let results = call::run(py, progress.as_ref(), planned, |c| {
            judge::select_n(&self.engine.scorer(c), &requests, target, method, seed)
        })?;
        Ok(collect(py, results, "inputs")?.into_iter().map(|r| r.order).collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(model_id={:?}, layout={:?}, threads={})",
            self.engine.model_id(),
            self.layout(),
            self.engine.threads()
        )
    }
}
