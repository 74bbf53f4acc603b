//! The PairRM network: a DeBERTa-v2 encoder and the pairwise head.

mod attention;
mod deberta;
mod gemm;
mod head;
#[cfg_attr(not(test), allow(dead_code, unused_imports))] // used by the linear layers once the precision seam lands
mod kernels;
mod matrix;
mod ops;
pub mod position;
mod vmath;

use crate::checkpoint::Checkpoint;
use crate::config::DebertaConfig;
use crate::error::{Error, Result};
use crate::input::PairInput;

use deberta::{Batch, Encoder};
pub use matrix::WeightDtype;

/// `c[m×n] = a[m×k] · bᵀ` with `b` `[n×k]` row-major, on the current rayon pool: the product the
/// linear layers use (for measuring this machine's GEMM rate).
pub fn linear_product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    gemm::linear(m, n, k, a, b, c, gemm::Threads::Pool);
}
use head::Head;

/// Weight-name prefix of the backbone in both checkpoint layouts.
const BACKBONE_PREFIX: &str = "pretrained_model.";

/// A loaded PairRM model, computing in f32.
pub struct PairRm {
    encoder: Encoder,
    head: Head,
    config: DebertaConfig,
}

impl PairRm {
    /// Builds the model from a checkpoint's weights, stored as `dtype`; the input-independent
    /// rel-embedding projections are computed here, once.
    pub fn load(checkpoint: &Checkpoint, dtype: WeightDtype) -> Result<Self> {
        let cfg = &checkpoint.deberta;
        let encoder = Encoder::load(&checkpoint.weights, BACKBONE_PREFIX, cfg, dtype)?;
        let head = Head::load(&checkpoint.weights, cfg.hidden_size, checkpoint.pairrm.n_tasks)?;
        Ok(PairRm { encoder, head, config: cfg.clone() })
    }

    /// The backbone configuration.
    pub fn config(&self) -> &DebertaConfig {
        &self.config
    }

    /// Rows of the word-embedding table: every token id must be below this.
    pub fn vocab_rows(&self) -> usize {
        self.encoder.vocab_rows()
    }

    /// Bytes of the weights as stored in memory (with the rel-embedding table as its per-layer
    /// projections).
    pub fn weight_bytes(&self) -> u64 {
        self.encoder.weight_bytes() + self.head.weight_bytes()
    }

    /// Number of parameters of the checkpoint (encoder and head).
    pub fn parameters(&self) -> u64 {
        let c = &self.config;
        let (h, a, f) = (c.hidden_size as u64, c.all_head_size() as u64, c.intermediate_size as u64);
        let layer = 3 * (h * a + a) + (a * h + h) + (h * f + f) + (f * h + h) + 4 * h;
        let embeddings = self.vocab_rows() as u64 * h + 2 * h;
        let rel = 2 * c.att_span() as u64 * h + if c.norm_rel_ebd { 2 * h } else { 0 };
        let head = 2 * h * h + h + self.head.n_tasks() as u64 * (h + 1);
        embeddings + rel + c.num_hidden_layers as u64 * layer + head
    }

    /// FLOPs of one pass of `len` tokens as a straightforward implementation computes it (every
    /// row in every layer; the full `2·span` rel window), without the input-independent
    /// rel-embedding projections. A multiply-add counts 2.
    pub fn nominal_flop(&self, len: usize) -> f64 {
        let c = &self.config;
        let rel = (2 * c.att_span()) as f64;
        c.num_hidden_layers as f64 * self.layer_flop(len as f64, len as f64, rel) + self.head_flop()
    }

    /// FLOPs this engine executes for one pass of `len` tokens: in the last layer only the three
    /// marker rows go past the key and value projections, and the rel window is clipped to the
    /// distances that occur.
    pub fn executed_flop(&self, len: usize) -> f64 {
        let c = &self.config;
        let index = position::RelIndex::new(len.max(1), c.position_buckets, c.max_relative_positions, c.att_span());
        let window = (index.index(len.max(1) - 1, 0) - index.index(0, len.max(1) - 1) + 1) as f64;
        let l = len as f64;
        (c.num_hidden_layers - 1) as f64 * self.layer_flop(l, l, window)
            + self.layer_flop(3.0, l, window)
            + self.head_flop()
    }

    /// FLOPs of one layer with `q` query rows over `l` rows and a rel window of `w` rows.
    fn layer_flop(&self, q: f64, l: f64, w: f64) -> f64 {
        let c = &self.config;
        let (h, a, f) = (c.hidden_size as f64, c.all_head_size() as f64, c.intermediate_size as f64);
        let projections = 2.0 * (q * h * a + 2.0 * l * h * a + q * a * h); // Q, K, V, output
        let ffn = 2.0 * 2.0 * q * h * f;
        let attention = 2.0 * 2.0 * q * l * a; // Q·Kᵀ and P·V
        let mut rel = 0.0;
        if c.pos_att_type.c2p {
            rel += 2.0 * q * w * a;
        }
        if c.pos_att_type.p2c {
            rel += 2.0 * l * w * a;
        }
        projections + ffn + attention + rel
    }

    fn head_flop(&self) -> f64 {
        let h = self.config.hidden_size as f64;
        2.0 * 2.0 * (2.0 * h * h + h)
    }

    /// `logit(left, right)` of every input. Each result depends only on its own input, never on
    /// the rest of the batch or on the number of threads.
    pub fn logits(&self, inputs: &[&PairInput]) -> Result<Vec<f32>> {
        for (n, input) in inputs.iter().enumerate() {
            if let Some(&bad) = input.ids.iter().find(|&&id| id as usize >= self.vocab_rows()) {
                return Err(Error::invalid_input(
                    format!("input {n}"),
                    format!("token id {bad} is outside the embedding table ({} rows)", self.vocab_rows()),
                ));
            }
        }
        if inputs.is_empty() {
            return Ok(vec![]);
        }
        let seqs: Vec<&[u32]> = inputs.iter().map(|i| i.ids.as_slice()).collect();
        let outputs: Vec<[usize; 3]> = inputs.iter().map(|i| i.marker_positions()).collect();
        let states = self.encoder.forward(&Batch { seqs: &seqs, outputs: &outputs });
        let h = self.config.hidden_size;
        Ok(states.chunks_exact(3 * h).map(|s| self.head.logit(&s[..h], &s[h..2 * h], &s[2 * h..])).collect())
    }
}
