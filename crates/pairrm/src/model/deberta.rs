//! The DeBERTa-v2 encoder with disentangled (content + relative-position) attention.
//!
//! A batch is a set of sequences whose rows are concatenated (no padding): the linear layers run
//! once over all rows, attention runs per sequence and head. Input-independent work — the
//! layer-normalised rel-embedding table projected by each layer's query and key weights — is done
//! once at load. In the last layer only the rows that feed the head are computed past the keys and
//! values.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::{linear, matmul, Threads, View};
use super::ops::{add_bias, bias_gelu, bias_residual_layer_norm, layer_norm, softmax};
use super::position::RelIndex;
use crate::checkpoint::{Tensor, Weights};
use crate::config::DebertaConfig;
use crate::error::Result;

/// A torch `Linear`: weight `[n_out, n_in]`, bias `[n_out]`.
pub(crate) struct Linear {
    weight: Tensor,
    bias: Tensor,
    n_out: usize,
    n_in: usize,
}

impl Linear {
    pub(crate) fn load(w: &Weights, prefix: &str, n_out: usize, n_in: usize) -> Result<Self> {
        Ok(Linear {
            weight: w.get(&format!("{prefix}.weight"), &[n_out, n_in])?,
            bias: w.get(&format!("{prefix}.bias"), &[n_out])?,
            n_out,
            n_in,
        })
    }

    /// `x · Wᵀ` for `rows` rows, without the bias.
    fn product(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = vec![0.0; rows * self.n_out];
        linear(rows, self.n_out, self.n_in, x, &self.weight, &mut out, Threads::Pool);
        out
    }

    /// `x · Wᵀ + b` for `rows` rows.
    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = self.product(x, rows);
        add_bias(&mut out, &self.bias);
        out
    }
}

struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    fn load(w: &Weights, prefix: &str, n: usize) -> Result<Self> {
        Ok(LayerNorm {
            gamma: w.get(&format!("{prefix}.weight"), &[n])?,
            beta: w.get(&format!("{prefix}.bias"), &[n])?,
        })
    }
}

/// One encoder block.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
    /// The rel-embedding table through `query` (bias included): `[2·span, H]`.
    rel_query: Vec<f32>,
    /// The rel-embedding table through `key` (bias included): `[2·span, H]`.
    rel_key: Vec<f32>,
}

/// Where the sequences of a batch lie in the concatenated rows.
pub(crate) struct Batch<'a> {
    /// Token ids of each sequence.
    pub seqs: &'a [&'a [u32]],
    /// The rows of each sequence whose final hidden states are wanted.
    pub outputs: &'a [[usize; 3]],
}

/// The DeBERTa-v2 encoder.
pub(crate) struct Encoder {
    cfg: DebertaConfig,
    word_embeddings: Tensor,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    vocab_rows: usize,
}

thread_local! {
    /// Per-thread scratch for attention (scores, c2p and p2c products), reused across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Encoder {
    /// Loads the encoder from tensors named `{prefix}embeddings.…` and `{prefix}encoder.…`.
    pub(crate) fn load(w: &Weights, prefix: &str, cfg: &DebertaConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let ah = cfg.all_head_size();
        let span = cfg.att_span();
        let emb_name = format!("{prefix}embeddings.word_embeddings.weight");
        let vocab_rows = match w.shape(&emb_name) {
            Some(s) if s.len() == 2 && s[1] == h => s[0],
            _ => 0,
        };
        let word_embeddings = w.get(&emb_name, &[vocab_rows, h])?;
        let embed_norm = LayerNorm::load(w, &format!("{prefix}embeddings.LayerNorm"), h)?;
        let rel = w.get(&format!("{prefix}encoder.rel_embeddings.weight"), &[2 * span, h])?;
        let mut rel: Vec<f32> = rel.to_vec();
        if cfg.norm_rel_ebd {
            let n = LayerNorm::load(w, &format!("{prefix}encoder.LayerNorm"), h)?;
            layer_norm(&mut rel, &n.gamma, &n.beta, cfg.layer_norm_eps);
        }
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("{prefix}encoder.layer.{i}.");
            let query = Linear::load(w, &format!("{p}attention.self.query_proj"), ah, h)?;
            let key = Linear::load(w, &format!("{p}attention.self.key_proj"), ah, h)?;
            let rel_query = query.forward(&rel, 2 * span);
            let rel_key = key.forward(&rel, 2 * span);
            layers.push(Layer {
                value: Linear::load(w, &format!("{p}attention.self.value_proj"), ah, h)?,
                attn_out: Linear::load(w, &format!("{p}attention.output.dense"), h, ah)?,
                attn_norm: LayerNorm::load(w, &format!("{p}attention.output.LayerNorm"), h)?,
                intermediate: Linear::load(w, &format!("{p}intermediate.dense"), cfg.intermediate_size, h)?,
                output: Linear::load(w, &format!("{p}output.dense"), h, cfg.intermediate_size)?,
                out_norm: LayerNorm::load(w, &format!("{p}output.LayerNorm"), h)?,
                query,
                key,
                rel_query,
                rel_key,
            });
        }
        Ok(Encoder { cfg: cfg.clone(), word_embeddings, embed_norm, layers, vocab_rows })
    }

    /// Rows of the word-embedding table: every token id must be below this.
    pub(crate) fn vocab_rows(&self) -> usize {
        self.vocab_rows
    }

    /// Runs the encoder and returns the final hidden states of the three requested rows of every
    /// sequence: `[seqs × 3 × H]`. Token ids must be below [`Self::vocab_rows`].
    pub(crate) fn forward(&self, batch: &Batch) -> Vec<f32> {
        let h = self.cfg.hidden_size;
        let offsets: Vec<usize> = batch
            .seqs
            .iter()
            .scan(0, |acc, s| {
                let o = *acc;
                *acc += s.len();
                Some(o)
            })
            .collect();
        let total: usize = batch.seqs.iter().map(|s| s.len()).sum();
        let max_len = batch.seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let rel_index =
            RelIndex::new(max_len, self.cfg.position_buckets, self.cfg.max_relative_positions, self.cfg.att_span());

        // Embeddings: word vectors, LayerNorm (the attention mask is all ones: no padding).
        let mut x = vec![0.0f32; total * h];
        for (row, &id) in x.chunks_exact_mut(h).zip(batch.seqs.iter().flat_map(|s| s.iter())) {
            let id = id as usize;
            row.copy_from_slice(&self.word_embeddings[id * h..(id + 1) * h]);
        }
        layer_norm(&mut x, &self.embed_norm.gamma, &self.embed_norm.beta, self.cfg.layer_norm_eps);

        let (last, rest) = self.layers.split_last().expect("at least one layer");
        for layer in rest {
            let queries: Vec<Vec<usize>> = batch.seqs.iter().map(|s| (0..s.len()).collect()).collect();
            x = self.layer_forward(layer, &x, batch.seqs, &offsets, &queries, &rel_index);
        }
        let queries: Vec<Vec<usize>> = batch.outputs.iter().map(|o| o.to_vec()).collect();
        self.layer_forward(last, &x, batch.seqs, &offsets, &queries, &rel_index)
    }

    /// One block over all rows `x` (`[total × H]`); returns the new states of the query rows only
    /// (`queries[s]` are positions within sequence `s`), in order.
    fn layer_forward(
        &self,
        layer: &Layer,
        x: &[f32],
        seqs: &[&[u32]],
        offsets: &[usize],
        queries: &[Vec<usize>],
        rel_index: &RelIndex,
    ) -> Vec<f32> {
        let h = self.cfg.hidden_size;
        let ah = self.cfg.all_head_size();
        let total = x.len() / h;
        let n_q: usize = queries.iter().map(|q| q.len()).sum();
        let all_rows = n_q == total;

        // Rows that are queries (and the residual of the block).
        let xq: Vec<f32> = if all_rows {
            x.to_vec()
        } else {
            queries
                .iter()
                .zip(offsets)
                .flat_map(|(q, &o)| q.iter().map(move |&p| o + p))
                .flat_map(|r| x[r * h..(r + 1) * h].iter().copied())
                .collect()
        };
        let q = layer.query.forward(&xq, n_q);
        let k = layer.key.forward(x, total);
        let v = layer.value.forward(x, total);

        // Attention per (sequence, head).
        let heads = self.cfg.num_attention_heads;
        let d = self.cfg.attention_head_size;
        let q_offsets: Vec<usize> = queries
            .iter()
            .scan(0, |acc, qs| {
                let o = *acc;
                *acc += qs.len();
                Some(o)
            })
            .collect();
        let tasks: Vec<(usize, usize)> = (0..seqs.len()).flat_map(|s| (0..heads).map(move |hd| (s, hd))).collect();
        let blocks: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(s, hd)| {
                let len = seqs[s].len();
                let att = HeadAttention {
                    q: &q[q_offsets[s] * ah + hd * d..],
                    k: &k[offsets[s] * ah + hd * d..],
                    v: &v[offsets[s] * ah + hd * d..],
                    rel_q: &layer.rel_query[hd * d..],
                    rel_k: &layer.rel_key[hd * d..],
                    stride: ah,
                    d,
                    len,
                };
                att.run(&queries[s], rel_index, &self.cfg)
            })
            .collect();
        let mut ctx = vec![0.0f32; n_q * ah];
        for (&(s, hd), block) in tasks.iter().zip(&blocks) {
            for (qi, out) in block.chunks_exact(d).enumerate() {
                let row = q_offsets[s] + qi;
                ctx[row * ah + hd * d..row * ah + (hd + 1) * d].copy_from_slice(out);
            }
        }

        let eps = self.cfg.layer_norm_eps;
        let mut x1 = layer.attn_out.product(&ctx, n_q);
        bias_residual_layer_norm(
            &mut x1,
            &layer.attn_out.bias,
            &xq,
            &layer.attn_norm.gamma,
            &layer.attn_norm.beta,
            eps,
        );
        let mut inter = layer.intermediate.product(&x1, n_q);
        bias_gelu(&mut inter, &layer.intermediate.bias);
        let mut out = layer.output.product(&inter, n_q);
        bias_residual_layer_norm(&mut out, &layer.output.bias, &x1, &layer.out_norm.gamma, &layer.out_norm.beta, eps);
        out
    }
}

/// The inputs of one head's attention over one sequence; every matrix is a column block of width
/// `d` in a row-major buffer with row stride `stride`.
struct HeadAttention<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    rel_q: &'a [f32],
    rel_k: &'a [f32],
    stride: usize,
    d: usize,
    len: usize,
}

impl HeadAttention<'_> {
    /// The context vectors `[queries × d]` for the query positions `qpos`.
    fn run(&self, qpos: &[usize], rel_index: &RelIndex, cfg: &DebertaConfig) -> Vec<f32> {
        let (nq, len, d) = (qpos.len(), self.len, self.d);
        let pos_att = cfg.pos_att_type;
        let scale = ((d as f32) * pos_att.scale_factor() as f32).sqrt();
        // Rel rows any (query, key) of this sequence can use: a contiguous range.
        let lo = rel_index.index(0, len - 1);
        let hi = rel_index.index(len - 1, 0);
        let width = hi - lo + 1;

        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let need = nq * len + nq * width + len * width;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let (scores, rest) = scratch.split_at_mut(nq * len);
            let (c2p, rest) = rest.split_at_mut(nq * width);
            let p2c = &mut rest[..len * width];

            // Content to content: Q · Kᵀ.
            matmul(
                nq,
                len,
                d,
                View::rows(self.q, self.stride),
                View::transposed(self.k, self.stride),
                scores,
                len,
                false,
                Threads::One,
            );
            if pos_att.c2p {
                // Q · K_relᵀ over the rel rows in use.
                let rk = &self.rel_k[lo * self.stride..];
                matmul(
                    nq,
                    width,
                    d,
                    View::rows(self.q, self.stride),
                    View::transposed(rk, self.stride),
                    c2p,
                    width,
                    false,
                    Threads::One,
                );
            }
            if pos_att.p2c {
                // K · Q_relᵀ over the rel rows in use.
                let rq = &self.rel_q[lo * self.stride..];
                matmul(
                    len,
                    width,
                    d,
                    View::rows(self.k, self.stride),
                    View::transposed(rq, self.stride),
                    p2c,
                    width,
                    false,
                    Threads::One,
                );
            }
            for (qi, &i) in qpos.iter().enumerate() {
                let row = &mut scores[qi * len..(qi + 1) * len];
                for (j, idx) in rel_index.row(i, len).enumerate() {
                    let c = idx - lo;
                    let mut rel = 0.0f32;
                    if pos_att.c2p {
                        rel += c2p[qi * width + c] / scale;
                    }
                    if pos_att.p2c {
                        rel += p2c[j * width + c] / scale;
                    }
                    row[j] = row[j] / scale + rel;
                }
                softmax(row);
            }
            let mut out = vec![0.0f32; nq * d];
            matmul(
                nq,
                d,
                len,
                View::rows(scores, len),
                View::rows(self.v, self.stride),
                &mut out,
                d,
                false,
                Threads::One,
            );
            out
        })
    }
}
