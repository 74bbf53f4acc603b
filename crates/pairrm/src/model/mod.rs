//! The PairRM network: a DeBERTa-v2 encoder and the pairwise head.

mod attention;
mod deberta;
mod flops;
mod gemm;
mod head;
pub mod kernels;
mod linear;
mod matrix;
mod ops;
pub mod position;
mod precision;
mod vmath;

use crate::checkpoint::{Checkpoint, BACKBONE};
use crate::config::DebertaConfig;
use crate::error::{Error, Result};
use crate::input::PairInput;

use deberta::{Batch, Encoder};
use head::Head;
pub use kernels::KernelLevel;
use linear::Numerics;
pub use linear::{LinearProduct, ModelOptions};
pub use matrix::WeightDtype;
pub use precision::Precision;

/// The name reports give the `gemm` crate's f32 products.
pub const GEMM_KERNEL: &str = "f32-gemm";

/// `c[m×n] = a[m×k] · bᵀ` with `b` `[n×k]` row-major, on the current rayon pool, with the `gemm`
/// crate (the exact tier's linear layers without AVX-512): the yardstick of this machine's f32
/// GEMM rate.
pub fn linear_product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    gemm::linear(m, n, k, a, b, c, gemm::Threads::Pool);
}

/// The kernels a loaded model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Kernels {
    /// The linear layers' products (e.g. `f32-avx512`, `f32-gemm`, `bf16-avx512-bf16`).
    pub linear: &'static str,
    /// The attention products (scores, relative terms, context).
    pub attention: &'static str,
    /// The instruction-set level the kernels were capped at (what the CPU supports, or lower
    /// where `PAIRRM_KERNELS` or the options say so).
    pub level: KernelLevel,
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "linear {}, attention {} (level {})", self.linear, self.attention, self.level)
    }
}

/// A loaded PairRM model.
pub struct PairRm {
    encoder: Encoder,
    head: Head,
    config: DebertaConfig,
    numerics: Numerics,
}

impl PairRm {
    /// Builds the model from a checkpoint's weights, held and multiplied as `options` say; the
    /// input-independent rel-embedding projections are computed here, once.
    pub fn load(checkpoint: &Checkpoint, options: &ModelOptions) -> Result<Self> {
        let numerics = Numerics::new(options)?;
        let cfg = &checkpoint.deberta;
        let encoder = Encoder::load(&checkpoint.weights.at(BACKBONE), cfg, &numerics)?;
        let head = Head::load(&checkpoint.weights, cfg.hidden_size, checkpoint.pairrm.n_tasks)?;
        checkpoint.check_all_used()?;
        Ok(PairRm { encoder, head, config: cfg.clone(), numerics })
    }

    /// The arithmetic tier of the linear layers.
    pub fn precision(&self) -> Precision {
        self.numerics.precision
    }

    /// The kernels this model runs.
    pub fn kernels(&self) -> Kernels {
        Kernels {
            linear: self.encoder.linear_kernel(),
            attention: self.encoder.attention_kernel(),
            level: self.numerics.level,
        }
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
        flops::parameters(&self.config, self.vocab_rows(), self.head.n_tasks())
    }

    /// FLOPs of one pass of `len` tokens as a straightforward implementation computes it (every
    /// row in every layer; the full `2·span` rel window), without the input-independent
    /// rel-embedding projections. A multiply-add counts 2.
    pub fn nominal_flop(&self, len: usize) -> f64 {
        flops::nominal(&self.config, len)
    }

    /// FLOPs this engine executes for one pass of `len` tokens: in the last layer only the three
    /// marker rows go past the key and value projections, and the rel window is clipped to the
    /// distances that occur.
    pub fn executed_flop(&self, len: usize) -> f64 {
        flops::executed(&self.config, len)
    }

    /// The hidden states of the three marker rows of `input` (source, left and right candidate,
    /// in that order, `H` values each) after the embeddings and after every layer: `layers + 1`
    /// entries, the last one what the head reads. For measuring how far a precision's states
    /// drift from f32's, layer by layer.
    pub fn layer_states(&self, input: &PairInput) -> Result<Vec<[Vec<f32>; 3]>> {
        self.check_ids(0, input)?;
        let h = self.config.hidden_size;
        let seqs = [input.ids.as_slice()];
        let outputs = [input.marker_positions()];
        let mut states = vec![];
        self.encoder.forward_traced(&Batch { seqs: &seqs, outputs: &outputs }, &mut |x| {
            states.push([x[..h].to_vec(), x[h..2 * h].to_vec(), x[2 * h..3 * h].to_vec()]);
        });
        Ok(states)
    }

    fn check_ids(&self, n: usize, input: &PairInput) -> Result<()> {
        match input.ids.iter().find(|&&id| id as usize >= self.vocab_rows()) {
            Some(&bad) => Err(Error::invalid_input(
                format!("input {n}"),
                format!("token id {bad} is outside the embedding table ({} rows)", self.vocab_rows()),
            )),
            None => Ok(()),
        }
    }

    /// `logit(left, right)` of every input. Each result depends only on its own input, never on
    /// the rest of the batch or on the number of threads.
    pub fn logits(&self, inputs: &[&PairInput]) -> Result<Vec<f32>> {
        for (n, input) in inputs.iter().enumerate() {
            self.check_ids(n, input)?;
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
