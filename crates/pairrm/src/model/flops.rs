//! Work accounting: parameters and FLOPs of a pass, nominal (as a straightforward implementation
//! computes it) and executed (what this engine runs). A multiply-add counts 2.

use super::position::RelIndex;
use crate::config::DebertaConfig;

/// Parameters of a checkpoint: embeddings (`vocab_rows` rows), the rel-embedding table, every
/// layer and the head with `n_tasks` outputs.
pub(crate) fn parameters(c: &DebertaConfig, vocab_rows: usize, n_tasks: usize) -> u64 {
    let (h, a, f) = (c.hidden_size as u64, c.all_head_size() as u64, c.intermediate_size as u64);
    let layer = 3 * (h * a + a) + (a * h + h) + (h * f + f) + (f * h + h) + 4 * h;
    let embeddings = vocab_rows as u64 * h + 2 * h;
    let rel = 2 * c.att_span() as u64 * h + if c.norm_rel_ebd { 2 * h } else { 0 };
    let head = 2 * h * h + h + n_tasks as u64 * (h + 1);
    embeddings + rel + c.num_hidden_layers as u64 * layer + head
}

/// FLOPs of one pass of `len` tokens computed straightforwardly: every row in every layer, the
/// full `2·span` rel window; without the input-independent rel-embedding projections.
pub(crate) fn nominal(c: &DebertaConfig, len: usize) -> f64 {
    let rel = (2 * c.att_span()) as f64;
    c.num_hidden_layers as f64 * layer(c, len as f64, len as f64, rel) + head(c)
}

/// FLOPs this engine executes for one pass of `len` tokens: in the last layer only the three
/// marker rows go past the key and value projections, and the rel window is clipped to the
/// distances that occur.
pub(crate) fn executed(c: &DebertaConfig, len: usize) -> f64 {
    let index = RelIndex::new(len.max(1), c.position_buckets, c.max_relative_positions, c.att_span());
    let window = (index.index(len.max(1) - 1, 0) - index.index(0, len.max(1) - 1) + 1) as f64;
    let l = len as f64;
    (c.num_hidden_layers - 1) as f64 * layer(c, l, l, window) + layer(c, 3.0, l, window) + head(c)
}

/// FLOPs of one layer with `q` query rows over `l` rows and a rel window of `w` rows.
fn layer(c: &DebertaConfig, q: f64, l: f64, w: f64) -> f64 {
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

/// FLOPs of the head for one pair (both candidates).
fn head(c: &DebertaConfig) -> f64 {
    let h = c.hidden_size as f64;
    2.0 * 2.0 * (2.0 * h * h + h)
}
