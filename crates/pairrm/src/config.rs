//! Model configurations: the DeBERTa-v2 backbone and the PairRM ranker settings.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Which relative-attention terms the backbone adds to content-to-content attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PosAttType {
    /// Content-to-position: `Q_i · K_rel[δ(i-j)]`.
    pub c2p: bool,
    /// Position-to-content: `K_j · Q_rel[δ(i-j)]`.
    pub p2c: bool,
}

impl PosAttType {
    /// The attention scale factor: 1 plus the number of relative terms.
    pub fn scale_factor(&self) -> usize {
        1 + self.c2p as usize + self.p2c as usize
    }
}

/// The DeBERTa-v2 architecture, as read from a transformers `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct DebertaConfig {
    /// Rows of the word embedding table in the checkpoint (may differ from the file's `vocab_size`:
    /// PairRM resizes the table to the tokenizer's length).
    pub vocab_size: usize,
    /// Hidden width H.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Width of one head (H / heads unless `attention_head_size` says otherwise).
    pub attention_head_size: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Absolute positions the model was trained with.
    pub max_position_embeddings: usize,
    /// Log-bucket count for relative positions (<= 0: no buckets).
    pub position_buckets: i64,
    /// Largest relative distance (after the `< 1 → max_position_embeddings` rule).
    pub max_relative_positions: usize,
    /// Relative-attention terms.
    pub pos_att_type: PosAttType,
    /// Whether the rel-embedding table is layer-normalised (`norm_rel_ebd` contains `layer_norm`).
    pub norm_rel_ebd: bool,
    /// Pad token id.
    pub pad_token_id: u32,
}

impl DebertaConfig {
    /// The attention span: rel-embedding rows on each side.
    pub fn att_span(&self) -> usize {
        if self.position_buckets > 0 {
            self.position_buckets as usize
        } else {
            self.max_relative_positions
        }
    }

    /// Width of all heads together.
    pub fn all_head_size(&self) -> usize {
        self.num_attention_heads * self.attention_head_size
    }

    /// Parses and validates a transformers DeBERTa-v2 `config.json` value.
    ///
    /// `path` names the file in error messages. Settings that this engine does not implement
    /// (absolute position input, token types, conv layer, embedding projection, unshared
    /// attention keys, other activations) are rejected with a clear error.
    pub fn from_json(value: &serde_json::Value, path: &Path) -> Result<Self> {
        let raw: RawDebertaConfig = serde_json::from_value(value.clone())
            .map_err(|e| Error::invalid_file(path, format!("not a DeBERTa-v2 config: {e}")))?;
        let unsupported = |m: String| Err(Error::unsupported(path, m));
        if let Some(mt) = &raw.model_type {
            if mt != "deberta-v2" {
                return unsupported(format!("model_type {mt:?} (expected \"deberta-v2\")"));
            }
        }
        if raw.hidden_act != "gelu" {
            return unsupported(format!("hidden_act {:?} (only \"gelu\")", raw.hidden_act));
        }
        if !raw.relative_attention {
            return unsupported("relative_attention is false".into());
        }
        if raw.position_biased_input {
            return unsupported("position_biased_input is true".into());
        }
        if raw.type_vocab_size > 0 {
            return unsupported(format!("type_vocab_size {}", raw.type_vocab_size));
        }
        if raw.conv_kernel_size.unwrap_or(0) > 0 {
            return unsupported("conv_kernel_size > 0 (convolution layer)".into());
        }
        if let Some(e) = raw.embedding_size {
            if e != raw.hidden_size {
                return unsupported(format!("embedding_size {e} != hidden_size {}", raw.hidden_size));
            }
        }
        if !raw.share_att_key {
            return unsupported("share_att_key is false".into());
        }
        let pos_att_type = parse_pos_att_type(&raw.pos_att_type)
            .map_err(|m| Error::invalid_file(path, format!("pos_att_type: {m}")))?;
        let norm_rel_ebd = raw.norm_rel_ebd.to_lowercase().split('|').any(|x| x.trim() == "layer_norm");
        if raw.hidden_size == 0 || raw.num_attention_heads == 0 || raw.num_hidden_layers == 0 {
            return Err(Error::invalid_file(
                path,
                "hidden_size, num_attention_heads and num_hidden_layers must be positive",
            ));
        }
        if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
            return Err(Error::invalid_file(
                path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    raw.hidden_size, raw.num_attention_heads
                ),
            ));
        }
        let attention_head_size = raw.attention_head_size.unwrap_or(raw.hidden_size / raw.num_attention_heads);
        let max_relative_positions = if raw.max_relative_positions < 1 {
            raw.max_position_embeddings
        } else {
            raw.max_relative_positions as usize
        };
        let cfg = DebertaConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            attention_head_size,
            intermediate_size: raw.intermediate_size,
            layer_norm_eps: raw.layer_norm_eps,
            max_position_embeddings: raw.max_position_embeddings,
            position_buckets: raw.position_buckets,
            max_relative_positions,
            pos_att_type,
            norm_rel_ebd,
            pad_token_id: raw.pad_token_id,
        };
        if cfg.att_span() == 0 {
            return Err(Error::invalid_file(
                path,
                "relative attention span is 0 (position_buckets and max_position_embeddings)",
            ));
        }
        cfg.validate().map_err(|m| Error::invalid_file(path, m))?;
        Ok(cfg)
    }

    /// The largest size any dimension may have ([`DebertaConfig::from_json`] rejects more):
    /// 2^20, far above deberta-v3-large's largest (4096), and small enough that no product of
    /// sizes overflows.
    pub const MAX_SIZE: usize = 1 << 20;

    /// Checks what a parsed config must satisfy for the computation to mean anything; the
    /// message names the field.
    fn validate(&self) -> std::result::Result<(), String> {
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!("layer_norm_eps is {}: it must be a positive finite number", self.layer_norm_eps));
        }
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("attention_head_size", self.attention_head_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads × attention_head_size", self.all_head_size()),
            ("the relative attention span", self.att_span()),
        ] {
            if value == 0 || value > Self::MAX_SIZE {
                return Err(format!("{name} is {value}: it must be between 1 and {}", Self::MAX_SIZE));
            }
        }
        if self.position_buckets > 0 {
            // transformers' log buckets divide by ln((max_relative_positions - 1) / mid).
            let mid = self.position_buckets as usize / 2;
            if mid == 0 || self.max_relative_positions <= mid + 1 {
                return Err(format!(
                    "position_buckets {} needs at least 2 buckets and max_relative_positions (or \
                     max_position_embeddings) above {}, got {}",
                    self.position_buckets,
                    mid + 1,
                    self.max_relative_positions
                ));
            }
        }
        Ok(())
    }
}

fn parse_pos_att_type(value: &serde_json::Value) -> std::result::Result<PosAttType, String> {
    let items: Vec<String> = match value {
        serde_json::Value::Null => vec![],
        serde_json::Value::String(s) => s.to_lowercase().split('|').map(|x| x.trim().to_string()).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(|s| s.trim().to_lowercase()).ok_or_else(|| format!("{x} is not a string")))
            .collect::<std::result::Result<_, _>>()?,
        other => return Err(format!("expected a list or a \"|\"-separated string, got {other}")),
    };
    let mut t = PosAttType::default();
    for item in items {
        match item.as_str() {
            "c2p" => t.c2p = true,
            "p2c" => t.p2c = true,
            "" => {}
            other => return Err(format!("unknown attention type {other:?}")),
        }
    }
    Ok(t)
}

fn default_eps() -> f64 {
    1e-7
}
fn default_max_pos() -> usize {
    512
}
fn default_minus_one() -> i64 {
    -1
}
fn default_none() -> String {
    "none".into()
}
fn default_true() -> bool {
    true
}
fn default_gelu() -> String {
    "gelu".into()
}

#[derive(Deserialize)]
struct RawDebertaConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    attention_head_size: Option<usize>,
    intermediate_size: usize,
    #[serde(default = "default_gelu")]
    hidden_act: String,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default)]
    relative_attention: bool,
    #[serde(default = "default_minus_one")]
    max_relative_positions: i64,
    #[serde(default = "default_minus_one")]
    position_buckets: i64,
    #[serde(default = "default_true")]
    position_biased_input: bool,
    #[serde(default)]
    type_vocab_size: usize,
    #[serde(default)]
    pos_att_type: serde_json::Value,
    #[serde(default)]
    share_att_key: bool,
    #[serde(default = "default_none")]
    norm_rel_ebd: String,
    conv_kernel_size: Option<usize>,
    embedding_size: Option<usize>,
    #[serde(default)]
    pad_token_id: u32,
}

/// The ids of PairRM's four marker tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerIds {
    /// `<|source|>`: starts the source part; its hidden state feeds the head.
    pub source: u32,
    /// `<|candidate1|>`: starts the left candidate.
    pub cand1: u32,
    /// `<|candidate2|>`: starts the right candidate.
    pub cand2: u32,
    /// `<|candidate|>`: the generic candidate marker (replaced by cand1/cand2 in model inputs).
    pub cand: u32,
}

/// PairRM's ranker settings: truncation limits, head size and marker ids.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRmConfig {
    /// Token budget of the source part (`[CLS] <|source|> ... [SEP]`).
    pub source_max_length: usize,
    /// Base token budget of each candidate part.
    pub candidate_max_length: usize,
    /// Outputs of the head's last linear layer (averaged).
    pub n_tasks: usize,
    /// Marker token ids.
    pub markers: MarkerIds,
}

impl PairRmConfig {
    /// The smallest limit that still holds `[CLS] marker [SEP]`.
    pub const MIN_LENGTH: usize = 3;

    /// The largest limit: 2^22 tokens. A pair input is at most `2 · (source + candidate)` limits
    /// long, so every input stays under 2^24 tokens, the range in which the relative positions
    /// are exact: they are computed in float32, as in the reference (transformers'
    /// `make_log_bucket_position`), and float32 holds every integer up to 2^24 exactly.
    pub const MAX_LENGTH: usize = 1 << 22;

    /// Checks the limits; `origin` names where they came from for the error message.
    pub fn validate(&self, origin: &str) -> Result<()> {
        Self::check_limit("source_max_length", self.source_max_length, origin)?;
        Self::check_limit("candidate_max_length", self.candidate_max_length, origin)?;
        if self.n_tasks == 0 {
            return Err(Error::invalid_input(format!("{origin}: n_tasks"), "must be at least 1"));
        }
        Ok(())
    }

    /// Checks one limit (`name` is `source_max_length` or `candidate_max_length`): between
    /// [`Self::MIN_LENGTH`] and [`Self::MAX_LENGTH`]. `origin` names where it came from.
    pub fn check_limit(name: &str, value: usize, origin: &str) -> Result<()> {
        if value < Self::MIN_LENGTH {
            return Err(Error::invalid_input(
                format!("{origin}: {name}"),
                format!(
                    "{value} is too small: each part needs at least {} tokens ([CLS] marker [SEP])",
                    Self::MIN_LENGTH
                ),
            ));
        }
        if value > Self::MAX_LENGTH {
            return Err(Error::invalid_input(
                format!("{origin}: {name}"),
                format!(
                    "{value} is too large: the model computes relative positions exactly for inputs of up to \
                     2^24 tokens, so a limit is at most {} (2^22)",
                    Self::MAX_LENGTH
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v3_large() -> serde_json::Value {
        json!({
            "model_type": "deberta-v2", "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "hidden_size": 1024, "initializer_range": 0.02,
            "intermediate_size": 4096, "max_position_embeddings": 512, "relative_attention": true,
            "position_buckets": 256, "norm_rel_ebd": "layer_norm", "share_att_key": true,
            "pos_att_type": "p2c|c2p", "layer_norm_eps": 1e-7, "max_relative_positions": -1,
            "position_biased_input": false, "num_attention_heads": 16, "num_hidden_layers": 24,
            "type_vocab_size": 0, "vocab_size": 128100
        })
    }

    #[test]
    fn parses_deberta_v3_large() {
        let c = DebertaConfig::from_json(&v3_large(), Path::new("config.json")).unwrap();
        assert_eq!(c.attention_head_size, 64);
        assert_eq!(c.att_span(), 256);
        assert_eq!(c.max_relative_positions, 512);
        assert_eq!(c.pos_att_type, PosAttType { c2p: true, p2c: true });
        assert_eq!(c.pos_att_type.scale_factor(), 3);
        assert!(c.norm_rel_ebd);
    }

    #[test]
    fn pos_att_type_as_list() {
        let mut v = v3_large();
        v["pos_att_type"] = json!(["c2p"]);
        let c = DebertaConfig::from_json(&v, Path::new("config.json")).unwrap();
        assert_eq!(c.pos_att_type, PosAttType { c2p: true, p2c: false });
    }

    #[test]
    fn rejects_unsupported_and_invalid() {
        for (key, value, needle) in [
            ("position_biased_input", json!(true), "position_biased_input"),
            ("share_att_key", json!(false), "share_att_key"),
            ("hidden_act", json!("relu"), "hidden_act"),
            ("type_vocab_size", json!(2), "type_vocab_size"),
            ("num_attention_heads", json!(3), "not a multiple"),
            ("pos_att_type", json!(["x2y"]), "unknown attention type"),
            ("hidden_size", json!("big"), "not a DeBERTa-v2 config"),
        ] {
            let mut v = v3_large();
            v[key] = value;
            let e = DebertaConfig::from_json(&v, Path::new("dir/config.json")).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("dir/config.json"), "{key}: {e}");
        }
    }

    #[test]
    fn limits_are_validated() {
        let m = MarkerIds { source: 1, cand1: 2, cand2: 3, cand: 4 };
        let ok = PairRmConfig { source_max_length: 3, candidate_max_length: 3, n_tasks: 1, markers: m };
        ok.validate("x").unwrap();
        let bad = PairRmConfig { source_max_length: 2, ..ok.clone() };
        assert!(bad.validate("x").unwrap_err().to_string().contains("source_max_length"));
        let top = PairRmConfig { source_max_length: PairRmConfig::MAX_LENGTH, candidate_max_length: 412, ..ok.clone() };
        top.validate("x").unwrap();
        for huge in [PairRmConfig::MAX_LENGTH + 1, usize::MAX] {
            let bad = PairRmConfig { candidate_max_length: huge, ..ok.clone() };
            let e = bad.validate("--candidate-max-length").unwrap_err().to_string();
            assert!(
                e.contains("candidate_max_length") && e.contains("too large") && e.contains(&huge.to_string()),
                "{e}"
            );
        }
    }
}
