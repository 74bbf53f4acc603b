//! Finding and reading a PairRM checkpoint: a local directory in either layout, or a hub id
//! resolved through the Hugging Face cache ([`hub`]; what fetches a hub id's missing files is a
//! [`SnapshotSource`] given to [`Checkpoint::open_with`], e.g. the `pairrm-hub` crate's downloader).
//!
//! Opening happens in three steps, so that each can be used (and tested) on its own:
//! 1. [`CheckpointFiles::locate`] finds the files and reads the configurations: the layout, the
//!    backbone config, the tokenizer directory, the weight file, the limits and how the marker
//!    ids are given. No tokenizer or weights are loaded.
//! 2. The tokenizer is loaded from [`CheckpointFiles::tokenizer_dir`]; with its base length and
//!    recorded marker ids, [`CheckpointFiles::pairrm_config`] fixes the marker ids.
//! 3. The weights are opened and [`CheckpointFiles::check_weights`] checks them against both.
//!
//! [`Checkpoint::open`] does all three.
//!
//! Two layouts are recognised from the `config.json` of the model directory:
//! - **Original** (`llm-blender/PairRM`): LLM-Blender's ranker config, `ranker_type:
//!   "pairranker"`. Its `model_name` names where the backbone's `config.json` and tokenizer live:
//!   a directory (a relative path is taken relative to the checkpoint directory) or a hub id
//!   (`microsoft/deberta-v3-large`, revision `main`; only its `config.json` and tokenizer files
//!   are used, never its weights). Weights:
//!   `pytorch_model.bin` if present, else `model.safetensors` — the order of LLM-Blender's
//!   `load_ranker`. The marker ids are not stored anywhere: LLM-Blender adds `<|source|>`,
//!   `<|candidate1|>`, `<|candidate2|>`, `<|candidate|>` to the backbone tokenizer in this
//!   order, so they are its base length + 0, 1, 2, 3.
//! - **PairRM-hf** (`llm-blender/PairRM-hf`): a DeBERTa-v2 `config.json` with
//!   `source_prefix_id`, `cand1_prefix_id`, `cand2_prefix_id` (and `cand_prefix_id`; when it is
//!   absent, the tokenizer's record of `<|candidate|>` is used) and `n_tasks`; tokenizer files
//!   beside it. Weights: `model.safetensors` if present, else `pytorch_model.bin` (the order of
//!   transformers' `from_pretrained`). The marker ids of the config are checked against those
//!   the tokenizer records.
//!
//! Limits: [`OpenOptions`] overrides, else the config's `source_maxlength` /
//! `candidate_maxlength`, else PairRM's 1224 / 412 ([`DEFAULT_SOURCE_MAX_LENGTH`],
//! [`DEFAULT_CANDIDATE_MAX_LENGTH`]; the PairRM-hf config does not carry them: LLM-Blender's
//! `tokenize_pair` helper for PairRM-hf uses these defaults). `n_tasks` defaults to 1
//! (LLM-Blender's `RankerConfig` default).

pub mod hub;
mod pickle;
mod torch;
mod weights;

use std::path::{Path, PathBuf};

pub use hub::{EnvCache, FileRequest, HubCache, SnapshotSource};
pub use weights::{Tensor, WeightFormat, WeightScope, Weights};

use crate::config::{DebertaConfig, MarkerIds, PairRmConfig};
use crate::error::{Error, Result};
use crate::tokenizer::PairTokenizer;

/// PairRM's source budget, used when neither the options nor the config give one.
pub const DEFAULT_SOURCE_MAX_LENGTH: usize = 1224;
/// PairRM's candidate budget, used when neither the options nor the config give one.
pub const DEFAULT_CANDIDATE_MAX_LENGTH: usize = 412;

/// The scope of the backbone's tensors (`pretrained_model.embeddings.…`, `pretrained_model.encoder.…`)
/// in both layouts.
pub const BACKBONE: &str = "pretrained_model";
/// The word embedding table (rows = vocabulary incl. the markers, columns = H).
pub const WORD_EMBEDDINGS: &str = "pretrained_model.embeddings.word_embeddings.weight";
/// The head's first linear layer, weight `[H, 2H]` (bias: `head_layer.1.bias`, `[H]`).
pub const HEAD_HIDDEN_WEIGHT: &str = "head_layer.1.weight";
/// The head's first linear layer's bias, `[H]`.
pub const HEAD_HIDDEN_BIAS: &str = "head_layer.1.bias";
/// The head's output layer, weight `[n_tasks, H]`.
pub const HEAD_OUT_WEIGHT: &str = "head_layer.4.weight";
/// The head's output layer's bias, `[n_tasks]`.
pub const HEAD_OUT_BIAS: &str = "head_layer.4.bias";

/// Tensors a checkpoint may hold that the model never reads, because they do not take part in
/// the computation and the reference drops them when it loads:
/// - `pretrained_model.embeddings.position_ids`, in every layout: the position indices
///   0, 1, 2, ... that transformers before 4.31 saved with the weights as a buffer (a
///   non-persistent buffer since: a `pytorch_model.bin` of that time has it, and LLM-Blender loads
///   those with `strict=False`); this model has no absolute positions.
/// - `pretrained_model.embeddings.position_embeddings.weight`, in the PairRM-hf layout only:
///   transformers skips it when loading (`DebertaV2PreTrainedModel._keys_to_ignore_on_load_unexpected`),
///   as the configs this engine accepts have `position_biased_input: false`.
pub const IGNORED_TENSORS: [(&str, Option<Layout>); 2] = [
    ("pretrained_model.embeddings.position_ids", None),
    ("pretrained_model.embeddings.position_embeddings.weight", Some(Layout::Hf)),
];

/// The marker strings in LLM-Blender's `add_tokens` order, with the PairRM-hf config keys.
const MARKERS: [(&str, &str); 4] = [
    ("<|source|>", "source_prefix_id"),
    ("<|candidate1|>", "cand1_prefix_id"),
    ("<|candidate2|>", "cand2_prefix_id"),
    ("<|candidate|>", "cand_prefix_id"),
];

/// Tokenizer files fetched with a model when present.
const TOKENIZER_OPTIONAL: [&str; 3] = ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"];

/// The two checkpoint layouts PairRM is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `llm-blender/PairRM`: LLM-Blender's ranker `config.json` (`ranker_type: "pairranker"`);
    /// backbone config and tokenizer come from `model_name`.
    Original,
    /// `llm-blender/PairRM-hf`: a DeBERTa-v2 `config.json` with the marker ids; tokenizer files
    /// beside it.
    Hf,
}

/// How to find a model.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Hub revision (branch, tag or commit); `main` when unset. Only for hub ids (a local
    /// directory is used as it is), and only for the ranker repo: the backbone named by an
    /// original checkpoint's `model_name` is taken at `main`, as LLM-Blender does.
    pub revision: Option<String>,
    /// Override of the checkpoint's `source_maxlength`.
    pub source_max_length: Option<usize>,
    /// Override of the checkpoint's `candidate_maxlength`.
    pub candidate_max_length: Option<usize>,
}

/// How a checkpoint gives its marker ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerSpec {
    /// Original layout: the ids follow the tokenizer's base length, in the order `<|source|>`,
    /// `<|candidate1|>`, `<|candidate2|>`, `<|candidate|>`.
    AfterBase,
    /// PairRM-hf layout: the ids in `config.json` (`cand` is `None` when `cand_prefix_id` is
    /// absent).
    Explicit {
        /// `source_prefix_id`.
        source: u32,
        /// `cand1_prefix_id`.
        cand1: u32,
        /// `cand2_prefix_id`.
        cand2: u32,
        /// `cand_prefix_id`, if present.
        cand: Option<u32>,
    },
}

/// Everything about a checkpoint that can be known without loading its tokenizer or weights.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    /// The model as the user named it (path or hub id).
    pub model_id: String,
    /// The directory holding the ranker's `config.json` and weights.
    pub dir: PathBuf,
    /// Which layout it is in.
    pub layout: Layout,
    /// The ranker's `config.json`.
    pub config_path: PathBuf,
    /// The backbone's `config.json` (the same file as `config_path` for PairRM-hf).
    pub backbone_config_path: PathBuf,
    /// Backbone architecture as the config file gives it (`vocab_size` is the file's; the real
    /// table size comes from the weights, see [`CheckpointFiles::check_weights`]).
    pub deberta: DebertaConfig,
    /// Where the tokenizer files are.
    pub tokenizer_dir: PathBuf,
    /// The weight file to read.
    pub weights_path: PathBuf,
    /// Source budget (options, else config, else [`DEFAULT_SOURCE_MAX_LENGTH`]).
    pub source_max_length: usize,
    /// Candidate budget (options, else config, else [`DEFAULT_CANDIDATE_MAX_LENGTH`]).
    pub candidate_max_length: usize,
    /// Outputs of the head (config `n_tasks`, default 1).
    pub n_tasks: usize,
    /// How the marker ids are given.
    pub markers: MarkerSpec,
}

/// Where a set of files lives: a local directory, or a repo in the hub cache.
enum Place {
    Local(PathBuf),
    Hub { repo: String, revision: String },
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Place::Local(d) => d.display().to_string(),
            Place::Hub { repo, revision } => format!("{repo}@{revision}"),
        }
    }

    /// The directory holding what `request` asks for.
    fn fetch(&self, model: &str, request: &FileRequest, source: &dyn SnapshotSource) -> Result<PathBuf> {
        match self {
            Place::Hub { repo, revision } => source.snapshot(repo, revision, request),
            Place::Local(dir) => {
                let missing = request.missing_in(dir);
                if missing.is_empty() {
                    return Ok(dir.clone());
                }
                let sharded = ["model.safetensors.index.json", "pytorch_model.bin.index.json"]
                    .iter()
                    .any(|f| dir.join(f).is_file());
                let hint = if sharded { " (sharded checkpoints are not supported)" } else { "" };
                Err(Error::model(model, format!("{} not found in {}{hint}", missing.join(", "), dir.display())))
            }
        }
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::invalid_file(path, format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::invalid_file(path, "expected a JSON object"));
    }
    Ok(value)
}

/// An optional non-negative integer field (`null` counts as absent).
fn opt_uint(v: &serde_json::Value, key: &str, path: &Path) -> Result<Option<u64>> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::invalid_file(path, format!("`{key}` must be a non-negative integer, got {x}"))),
    }
}

fn opt_usize(v: &serde_json::Value, key: &str, path: &Path) -> Result<Option<usize>> {
    opt_uint(v, key, path)?
        .map(|x| usize::try_from(x).map_err(|_| Error::invalid_file(path, format!("`{key}` is too large: {x}"))))
        .transpose()
}

fn opt_u32(v: &serde_json::Value, key: &str, path: &Path) -> Result<Option<u32>> {
    opt_uint(v, key, path)?
        .map(|x| u32::try_from(x).map_err(|_| Error::invalid_file(path, format!("`{key}` is too large: {x}"))))
        .transpose()
}

fn keys_of(v: &serde_json::Value) -> String {
    let mut keys: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.sort_unstable();
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

fn detect_layout(config: &serde_json::Value, path: &Path) -> Result<Layout> {
    let unknown =
        |why: String| Error::invalid_file(path, format!("unknown layout: {why}; keys found: {}", keys_of(config)));
    if let Some(rt) = config.get("ranker_type") {
        return match rt.as_str() {
            Some("pairranker") => Ok(Layout::Original),
            _ => Err(unknown(format!("ranker_type is {rt}, only \"pairranker\" (PairRM) is supported"))),
        };
    }
    if MARKERS.iter().any(|(_, key)| config.get(key).is_some()) {
        return Ok(Layout::Hf);
    }
    Err(unknown(
        "neither LLM-Blender's ranker config (`ranker_type: \"pairranker\"`) nor a PairRM-hf config \
         (`source_prefix_id`, `cand1_prefix_id`, `cand2_prefix_id`)"
            .into(),
    ))
}

impl CheckpointFiles {
    /// Finds `model` (an existing local directory, else a hub id looked up in the HF cache the
    /// environment names, as [`Checkpoint::open`]) and reads its configurations.
    pub fn locate(model: &str, options: &OpenOptions) -> Result<Self> {
        Self::locate_with(model, options, &EnvCache)
    }

    /// [`CheckpointFiles::locate`] with hub ids resolved by `source` (e.g. a [`HubCache`] at a
    /// given directory, or a downloader).
    pub fn locate_with(model: &str, options: &OpenOptions, source: &dyn SnapshotSource) -> Result<Self> {
        // A limit asked for is checked before anything is read or downloaded: a bad one fails at once.
        for (name, value) in
            [("source_max_length", options.source_max_length), ("candidate_max_length", options.candidate_max_length)]
        {
            if let Some(value) = value {
                PairRmConfig::check_limit(name, value, "the limit asked for")?;
            }
        }
        let path = Path::new(model);
        let place = if path.is_dir() {
            if options.revision.is_some() {
                tracing::warn!(model, "a revision was given for a local directory; it is ignored");
            }
            Place::Local(path.to_path_buf())
        } else if path.exists() {
            return Err(Error::model(model, "is a file; pass the checkpoint directory"));
        } else if let Some(parent) = hub::local_parent(model, Path::new("")) {
            return Err(Error::model(
                model,
                format!(
                    "no such directory (`{parent}` is a local directory, so this names a path in it, not a hub repo)"
                ),
            ));
        } else if hub::is_repo_id(model) {
            let revision = options.revision.clone().unwrap_or_else(|| hub::DEFAULT_REVISION.to_string());
            Place::Hub { repo: model.to_string(), revision }
        } else {
            return Err(Error::model(model, "no such directory, and not a hub repo id (`org/name`)"));
        };

        let dir = place.fetch(model, &FileRequest::required(&["config.json"]), source)?;
        let config_path = dir.join("config.json");
        let config = read_json(&config_path)?;
        let layout = detect_layout(&config, &config_path)?;

        let source_cfg = opt_usize(&config, "source_maxlength", &config_path)?;
        let candidate_cfg = opt_usize(&config, "candidate_maxlength", &config_path)?;
        let source_max_length = options.source_max_length.or(source_cfg).unwrap_or(DEFAULT_SOURCE_MAX_LENGTH);
        let candidate_max_length =
            options.candidate_max_length.or(candidate_cfg).unwrap_or(DEFAULT_CANDIDATE_MAX_LENGTH);
        let n_tasks = opt_usize(&config, "n_tasks", &config_path)?.unwrap_or(1);

        match layout {
            Layout::Original => {
                let model_name = match config.get("model_name") {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                    Some(other) if !other.is_null() => {
                        return Err(Error::invalid_file(&config_path, format!("`model_name` must be a string, got {other}")))
                    }
                    _ => {
                        return Err(Error::invalid_file(
                            &config_path,
                            "`model_name` is missing: the LLM-Blender layout needs it to find the backbone config and tokenizer",
                        ))
                    }
                };
                if let Some(mt) = config.get("model_type").and_then(|v| v.as_str()) {
                    if !mt.starts_with("deberta") || mt.starts_with("deberta-rm") {
                        return Err(Error::unsupported(
                            &config_path,
                            format!(
                                "model_type {mt:?}: only PairRanker with a DeBERTa backbone (\"deberta\") is supported"
                            ),
                        ));
                    }
                }
                let local = dir.join(&model_name);
                let backbone_place = if local.is_dir() {
                    Place::Local(local)
                } else if hub::is_repo_id(&model_name) {
                    Place::Hub { repo: model_name.clone(), revision: hub::DEFAULT_REVISION.to_string() }
                } else {
                    return Err(Error::invalid_file(
                        &config_path,
                        format!(
                            "`model_name` {model_name:?} is neither a directory (looked at {}) nor a hub repo id",
                            local.display()
                        ),
                    ));
                };
                let request = FileRequest::required(&["config.json"])
                    .one_of(&["tokenizer.json", "spm.model"])
                    .optional(&TOKENIZER_OPTIONAL);
                let backbone_dir = backbone_place.fetch(model, &request, source).map_err(|e| match e {
                    Error::Model { message, .. } => {
                        Error::invalid_file(&config_path, format!("backbone `model_name` {model_name:?}: {message}"))
                    }
                    other => other,
                })?;
                let backbone_config_path = backbone_dir.join("config.json");
                let deberta = DebertaConfig::from_json(&read_json(&backbone_config_path)?, &backbone_config_path)?;

                let weights_dir = place.fetch(
                    model,
                    &FileRequest::default().one_of(&["pytorch_model.bin", "model.safetensors"]),
                    source,
                )?;
                let weights_path = first_file(&weights_dir, &["pytorch_model.bin", "model.safetensors"]);
                tracing::debug!(model, backbone = %backbone_place.describe(), "original PairRM layout");
                Ok(CheckpointFiles {
                    model_id: model.to_string(),
                    dir,
                    layout,
                    config_path,
                    backbone_config_path,
                    deberta,
                    tokenizer_dir: backbone_dir,
                    weights_path,
                    source_max_length,
                    candidate_max_length,
                    n_tasks,
                    markers: MarkerSpec::AfterBase,
                })
            }
            Layout::Hf => {
                let deberta = DebertaConfig::from_json(&config, &config_path)?;
                let mut ids = [None; 4];
                for (slot, (_, key)) in ids.iter_mut().zip(MARKERS) {
                    *slot = opt_u32(&config, key, &config_path)?;
                }
                let need = |i: usize| {
                    ids[i].ok_or_else(|| {
                        Error::invalid_file(
                            &config_path,
                            format!("PairRM-hf layout without `{}` (keys found: {})", MARKERS[i].1, keys_of(&config)),
                        )
                    })
                };
                let markers = MarkerSpec::Explicit { source: need(0)?, cand1: need(1)?, cand2: need(2)?, cand: ids[3] };
                let request = FileRequest::default()
                    .one_of(&["model.safetensors", "pytorch_model.bin"])
                    .one_of(&["tokenizer.json", "spm.model"])
                    .optional(&TOKENIZER_OPTIONAL);
                let full_dir = place.fetch(model, &request, source)?;
                let weights_path = first_file(&full_dir, &["model.safetensors", "pytorch_model.bin"]);
                Ok(CheckpointFiles {
                    model_id: model.to_string(),
                    backbone_config_path: config_path.clone(),
                    config_path,
                    layout,
                    deberta,
                    tokenizer_dir: full_dir,
                    dir,
                    weights_path,
                    source_max_length,
                    candidate_max_length,
                    n_tasks,
                    markers,
                })
            }
        }
    }

    /// The ranker settings, given the tokenizer's base length ([`PairTokenizer::base_len`]) and
    /// its record of marker ids (`recorded(marker)`, e.g. [`PairTokenizer::marker_id`]).
    ///
    /// A marker id that the tokenizer records differently from the checkpoint is an error naming
    /// both. The limits are validated ([`PairRmConfig::validate`]).
    pub fn pairrm_config(&self, base_len: usize, recorded: &dyn Fn(&str) -> Option<u32>) -> Result<PairRmConfig> {
        let config = &self.config_path;
        let (ids, origin): ([u32; 4], [String; 4]) = match self.markers {
            MarkerSpec::AfterBase => {
                let base = u32::try_from(base_len)
                    .ok()
                    .filter(|b| b.checked_add(3).is_some())
                    .ok_or_else(|| Error::Tokenizer(format!("base length {base_len} is too large")))?;
                let ids = [base, base + 1, base + 2, base + 3];
                let origin = std::array::from_fn(|i| {
                    format!(
                        "LLM-Blender adds {} as id {} (tokenizer base length {base_len} + {i})",
                        MARKERS[i].0, ids[i]
                    )
                });
                (ids, origin)
            }
            MarkerSpec::Explicit { source, cand1, cand2, cand } => {
                let cand = match cand.or_else(|| recorded(MARKERS[3].0)) {
                    Some(c) => c,
                    None => {
                        return Err(Error::invalid_file(
                            config,
                            format!(
                                "`cand_prefix_id` is missing and the tokenizer in {} does not record {}",
                                self.tokenizer_dir.display(),
                                MARKERS[3].0
                            ),
                        ))
                    }
                };
                let ids = [source, cand1, cand2, cand];
                let origin = std::array::from_fn(|i| format!("`{}` is {}", MARKERS[i].1, ids[i]));
                (ids, origin)
            }
        };
        for (i, (marker, _)) in MARKERS.iter().enumerate() {
            if let Some(r) = recorded(marker) {
                if r != ids[i] {
                    return Err(Error::invalid_file(
                        config,
                        format!(
                            "marker ids disagree: {}, but the tokenizer in {} records {marker} as {r}",
                            origin[i],
                            self.tokenizer_dir.display()
                        ),
                    ));
                }
            }
        }
        for i in 0..4 {
            for j in i + 1..4 {
                if ids[i] == ids[j] {
                    return Err(Error::invalid_file(
                        config,
                        format!("markers {} and {} have the same id {}", MARKERS[i].0, MARKERS[j].0, ids[i]),
                    ));
                }
            }
        }
        let cfg = PairRmConfig {
            source_max_length: self.source_max_length,
            candidate_max_length: self.candidate_max_length,
            n_tasks: self.n_tasks,
            markers: MarkerIds { source: ids[0], cand1: ids[1], cand2: ids[2], cand: ids[3] },
        };
        cfg.validate(&config.display().to_string())?;
        Ok(cfg)
    }

    /// Checks the weights against the configs: the word embeddings are `[rows, H]` with H the
    /// backbone's hidden size and rows covering the tokenizer's ids (`base_len`) and every
    /// marker id; the head is `[H, 2H]`, `[H]`, `[n_tasks, H]`, `[n_tasks]`. Returns the
    /// backbone config with `vocab_size` set to the table's row count.
    pub fn check_weights(&self, weights: &Weights, pairrm: &PairRmConfig, base_len: usize) -> Result<DebertaConfig> {
        let file = weights.path();
        let h = self.deberta.hidden_size;
        let shape_of = |name: &str| {
            weights.shape(name).ok_or_else(|| {
                Error::invalid_file(file, format!("tensor `{name}` is missing; the file has {} entries", weights.len()))
            })
        };
        let emb = shape_of(WORD_EMBEDDINGS)?;
        let rows = match emb[..] {
            [rows, width] if width == h => rows,
            _ => {
                return Err(Error::invalid_file(
                    file,
                    format!(
                        "tensor `{WORD_EMBEDDINGS}` has shape {emb:?}, expected [rows, {h}] (hidden_size of {})",
                        self.backbone_config_path.display()
                    ),
                ))
            }
        };
        let m = pairrm.markers;
        for (marker, id) in
            [(MARKERS[0].0, m.source), (MARKERS[1].0, m.cand1), (MARKERS[2].0, m.cand2), (MARKERS[3].0, m.cand)]
        {
            if id as usize >= rows {
                return Err(Error::invalid_file(
                    file,
                    format!("tensor `{WORD_EMBEDDINGS}` has {rows} rows, but marker {marker} has id {id}"),
                ));
            }
        }
        if base_len > rows {
            return Err(Error::invalid_file(
                file,
                format!(
                    "tensor `{WORD_EMBEDDINGS}` has {rows} rows, but the tokenizer in {} has {base_len} ids",
                    self.tokenizer_dir.display()
                ),
            ));
        }
        let n = pairrm.n_tasks;
        for (name, expected) in [
            (HEAD_HIDDEN_WEIGHT, vec![h, 2 * h]),
            (HEAD_HIDDEN_BIAS, vec![h]),
            (HEAD_OUT_WEIGHT, vec![n, h]),
            (HEAD_OUT_BIAS, vec![n]),
        ] {
            let got = shape_of(name)?;
            if got != expected {
                return Err(Error::invalid_file(
                    file,
                    format!(
                        "tensor `{name}` has shape {got:?}, expected {expected:?} (hidden_size {h} of {}, n_tasks {n} of {})",
                        self.backbone_config_path.display(),
                        self.config_path.display()
                    ),
                ));
            }
        }
        Ok(DebertaConfig { vocab_size: rows, ..self.deberta.clone() })
    }
}

/// Tensor names grouped by layer (`….layer.24.*`, with a count), the first few groups listed.
fn summarize_names(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut groups: Vec<(String, usize)> = Vec::new();
    for name in names {
        let group = layer_group(name).unwrap_or_else(|| name.to_string());
        match groups.last_mut() {
            Some((last, count)) if *last == group => *count += 1,
            _ => groups.push((group, 1)),
        }
    }
    let mut parts: Vec<String> = groups
        .iter()
        .take(SHOWN)
        .map(|(g, n)| match (n, g.ends_with(".*")) {
            (1, false) => format!("`{g}`"),
            (1, true) => format!("`{g}` (1 tensor)"),
            _ => format!("`{g}` ({n} tensors)"),
        })
        .collect();
    if groups.len() > SHOWN {
        parts.push(format!("and {} more", groups.len() - SHOWN));
    }
    parts.join(", ")
}

/// `a.layer.7.*` for a name `a.layer.7.b…`.
fn layer_group(name: &str) -> Option<String> {
    let at = name.find(".layer.")? + ".layer.".len();
    let digits = name[at..].bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && name[at + digits..].starts_with('.')).then(|| format!("{}.*", &name[..at + digits]))
}

/// The first of `names` that is a file in `dir` (the caller made sure one is).
fn first_file(dir: &Path, names: &[&str]) -> PathBuf {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file()).unwrap_or_else(|| dir.join(names[0]))
}

/// A checkpoint ready to build a model from.
pub struct Checkpoint {
    /// The model as the user named it (path or hub id).
    pub model_id: String,
    /// The directory holding the ranker's `config.json` and weights.
    pub dir: PathBuf,
    /// Which layout it is in.
    pub layout: Layout,
    /// Backbone architecture (`vocab_size` = rows of the checkpoint's embedding table).
    pub deberta: DebertaConfig,
    /// Ranker settings (limits already overridden by [`OpenOptions`]).
    pub pairrm: PairRmConfig,
    /// The tokenizer.
    pub tokenizer: PairTokenizer,
    /// The weight tensors (memory-mapped where possible).
    pub weights: Weights,
}

impl Checkpoint {
    /// Fails, naming them, when the weight file holds tensors that the model built from it did
    /// not read (except [`IGNORED_TENSORS`]): the config does not describe the checkpoint (say,
    /// `num_hidden_layers` is 12 and the file has 24 layers), and the model would compute
    /// something else than what was trained. Called once the model is built.
    pub fn check_all_used(&self) -> Result<()> {
        let ignored = |name: &str| {
            IGNORED_TENSORS.iter().any(|(n, layout)| *n == name && layout.is_none_or(|l| l == self.layout))
        };
        let unused: Vec<&str> = self.weights.unread().into_iter().filter(|n| !ignored(n)).collect();
        if unused.is_empty() {
            return Ok(());
        }
        let d = &self.deberta;
        Err(Error::invalid_file(
            self.weights.path(),
            format!(
                "{} tensors are not used by the model its config describes ({} layers, hidden size {}, \
                 {} heads, intermediate size {}, n_tasks {}): {}; the config does not match the checkpoint",
                unused.len(),
                d.num_hidden_layers,
                d.hidden_size,
                d.num_attention_heads,
                d.intermediate_size,
                self.pairrm.n_tasks,
                summarize_names(&unused)
            ),
        ))
    }

    /// Opens `model`: an existing local directory, else a hub id (`org/name`) found in the HF
    /// cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`; see
    /// [`EnvCache`]). Nothing is downloaded: files the cache lacks are an
    /// [`Error::NotInCache`]. To download them, use [`Checkpoint::open_with`] and a downloading
    /// source (the `pairrm-hub` crate's `EnvSource` reads the same environment, with `HF_ENDPOINT`
    /// and `HF_TOKEN`).
    pub fn open(model: &str, options: &OpenOptions) -> Result<Self> {
        Self::open_with(model, options, &EnvCache)
    }

    /// [`Checkpoint::open`] with hub ids resolved by `source`.
    pub fn open_with(model: &str, options: &OpenOptions, source: &dyn SnapshotSource) -> Result<Self> {
        let files = CheckpointFiles::locate_with(model, options, source)?;
        let tokenizer = PairTokenizer::from_dir(&files.tokenizer_dir)?;
        let base_len = tokenizer.base_len();
        let pairrm = files.pairrm_config(base_len, &|m| tokenizer.marker_id(m))?;
        let weights = Weights::open(&files.weights_path)?;
        let deberta = files.check_weights(&weights, &pairrm, base_len)?;
        Ok(Checkpoint {
            model_id: files.model_id,
            dir: files.dir,
            layout: files.layout,
            deberta,
            pairrm,
            tokenizer,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_names_are_grouped_by_layer() {
        let names = [
            "head_layer.9.bias",
            "pretrained_model.encoder.layer.2.a",
            "pretrained_model.encoder.layer.2.b",
            "pretrained_model.encoder.layer.3.a",
            "x",
        ];
        assert_eq!(
            summarize_names(&names),
            "`head_layer.9.bias`, `pretrained_model.encoder.layer.2.*` (2 tensors), \
             `pretrained_model.encoder.layer.3.*` (1 tensor), `x`"
        );
        let many: Vec<String> = (0..20).map(|i| format!("e.layer.{i}.w")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(summarize_names(&many).ends_with("and 12 more"));
        assert_eq!(layer_group("a.layer.x.b"), None);
        assert_eq!(layer_group("a.layer.12"), None);
    }

    #[test]
    fn word_embeddings_live_in_the_backbone_scope() {
        assert_eq!(WORD_EMBEDDINGS, format!("{BACKBONE}.embeddings.word_embeddings.weight"));
    }
}
