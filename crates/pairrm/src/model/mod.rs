//! The PairRM network: a DeBERTa-v2 encoder and the pairwise head.

mod attention;
mod deberta;
mod gemm;
mod head;
mod ops;
pub mod position;

use crate::checkpoint::Checkpoint;
use crate::config::DebertaConfig;
use crate::error::{Error, Result};
use crate::input::PairInput;

use deberta::{Batch, Encoder};
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
    /// Builds the model from a checkpoint's weights; the input-independent rel-embedding
    /// projections are computed here, once.
    pub fn load(checkpoint: &Checkpoint) -> Result<Self> {
        let cfg = &checkpoint.deberta;
        let encoder = Encoder::load(&checkpoint.weights, BACKBONE_PREFIX, cfg)?;
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
