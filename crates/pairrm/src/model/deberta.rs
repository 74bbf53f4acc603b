//! The DeBERTa-v2 encoder.
//!
//! A batch is a set of sequences whose rows are concatenated (no padding): the linear layers run
//! once over all rows, attention runs per sequence and head ([`super::attention`]).
//! Input-independent work — the layer-normalised rel-embedding table projected by each layer's
//! query and key weights — is done once at load. In the last layer only the rows that feed the
//! head are computed past the keys and values. Activations live in workspaces that are reused
//! from call to call.

use std::sync::Mutex;

use rayon::prelude::*;

use super::attention::HeadAttention;
use super::matrix::{Matrix, WeightDtype};
use super::ops::{add_bias, bias_gelu, bias_residual_layer_norm, layer_norm};
use super::position::RelIndex;
use crate::checkpoint::{Tensor, Weights};
use crate::config::DebertaConfig;
use crate::error::Result;

/// A torch `Linear`: weight `[n_out, n_in]`, bias `[n_out]`.
pub(crate) struct Linear {
    weight: Matrix,
    bias: Tensor,
    n_out: usize,
    n_in: usize,
}

impl Linear {
    pub(crate) fn load(w: &Weights, prefix: &str, n_out: usize, n_in: usize, dtype: WeightDtype) -> Result<Self> {
        Ok(Linear {
            weight: Matrix::load(w, &format!("{prefix}.weight"), n_out, n_in, dtype)?,
            bias: w.get(&format!("{prefix}.bias"), &[n_out])?,
            n_out,
            n_in,
        })
    }

    /// Bytes of the weight and bias.
    fn bytes(&self) -> u64 {
        self.weight.bytes() + 4 * self.bias.len() as u64
    }

    /// `out = x · Wᵀ` for `rows` rows, without the bias.
    fn product(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.weight.product(rows, self.n_out, self.n_in, &x[..rows * self.n_in], &mut out[..rows * self.n_out]);
    }

    /// `out = x · Wᵀ + b` for `rows` rows.
    fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.product(x, rows, out);
        add_bias(&mut out[..rows * self.n_out], &self.bias);
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
    rel_query: Matrix,
    /// The rel-embedding table through `key` (bias included): `[2·span, H]`.
    rel_key: Matrix,
}

/// Where the sequences of a batch lie in the concatenated rows.
pub(crate) struct Batch<'a> {
    /// Token ids of each sequence.
    pub seqs: &'a [&'a [u32]],
    /// The rows of each sequence whose final hidden states are wanted.
    pub outputs: &'a [[usize; 3]],
}

/// Activation buffers of one forward call.
#[derive(Default)]
struct Workspace {
    /// Hidden states `[rows × H]`.
    x: Vec<f32>,
    /// Query-row inputs of the last layer `[queries × H]`.
    xq: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    /// The attention block's output `[queries × H]`.
    attn: Vec<f32>,
    /// FFN activations `[queries × F]`.
    inter: Vec<f32>,
    /// The layer's projected rel tables, widened when stored in 16 bits.
    rel_q: Vec<f32>,
    rel_k: Vec<f32>,
}

fn ensure(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Which rows of each sequence a layer computes past its keys and values.
enum Queries<'a> {
    /// Every row.
    All,
    /// These positions of each sequence.
    Rows(&'a [[usize; 3]]),
}

/// The DeBERTa-v2 encoder.
pub(crate) struct Encoder {
    cfg: DebertaConfig,
    word_embeddings: Matrix,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    vocab_rows: usize,
    workspaces: Mutex<Vec<Workspace>>,
}

impl Encoder {
    /// Loads the encoder from tensors named `{prefix}embeddings.…` and `{prefix}encoder.…`.
    pub(crate) fn load(w: &Weights, prefix: &str, cfg: &DebertaConfig, dtype: WeightDtype) -> Result<Self> {
        let h = cfg.hidden_size;
        let ah = cfg.all_head_size();
        let span = cfg.att_span();
        let emb_name = format!("{prefix}embeddings.word_embeddings.weight");
        let vocab_rows = match w.shape(&emb_name) {
            Some(s) if s.len() == 2 && s[1] == h => s[0],
            _ => 0,
        };
        // The embedding table stays f32 whatever `dtype`: as a lookup table, memory-mapped, only
        // the rows of tokens in use are ever read into memory.
        let word_embeddings = Matrix::load(w, &emb_name, vocab_rows, h, WeightDtype::F32)?;
        let embed_norm = LayerNorm::load(w, &format!("{prefix}embeddings.LayerNorm"), h)?;
        let mut rel = w.get(&format!("{prefix}encoder.rel_embeddings.weight"), &[2 * span, h])?.to_vec();
        if cfg.norm_rel_ebd {
            let n = LayerNorm::load(w, &format!("{prefix}encoder.LayerNorm"), h)?;
            layer_norm(&mut rel, &n.gamma, &n.beta, cfg.layer_norm_eps);
        }
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("{prefix}encoder.layer.{i}.");
            let query = Linear::load(w, &format!("{p}attention.self.query_proj"), ah, h, dtype)?;
            let key = Linear::load(w, &format!("{p}attention.self.key_proj"), ah, h, dtype)?;
            let mut rel_query = vec![0.0; 2 * span * ah];
            query.forward(&rel, 2 * span, &mut rel_query);
            let rel_query = Matrix::from_f32(rel_query, dtype);
            let mut rel_key = vec![0.0; 2 * span * ah];
            key.forward(&rel, 2 * span, &mut rel_key);
            let rel_key = Matrix::from_f32(rel_key, dtype);
            layers.push(Layer {
                value: Linear::load(w, &format!("{p}attention.self.value_proj"), ah, h, dtype)?,
                attn_out: Linear::load(w, &format!("{p}attention.output.dense"), h, ah, dtype)?,
                attn_norm: LayerNorm::load(w, &format!("{p}attention.output.LayerNorm"), h)?,
                intermediate: Linear::load(w, &format!("{p}intermediate.dense"), cfg.intermediate_size, h, dtype)?,
                output: Linear::load(w, &format!("{p}output.dense"), h, cfg.intermediate_size, dtype)?,
                out_norm: LayerNorm::load(w, &format!("{p}output.LayerNorm"), h)?,
                query,
                key,
                rel_query,
                rel_key,
            });
        }
        Ok(Encoder { cfg: cfg.clone(), word_embeddings, embed_norm, layers, vocab_rows, workspaces: Mutex::default() })
    }

    /// Bytes of the encoder's weights as stored (the rel-embedding table as its two projections).
    pub(crate) fn weight_bytes(&self) -> u64 {
        let norm = |n: &LayerNorm| 4 * (n.gamma.len() + n.beta.len()) as u64;
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                let linears = [&l.query, &l.key, &l.value, &l.attn_out, &l.intermediate, &l.output];
                linears.iter().map(|x| x.bytes()).sum::<u64>() + norm(&l.attn_norm) + norm(&l.out_norm)
            })
            .sum();
        let rel: u64 = self.layers.iter().map(|l| l.rel_query.bytes() + l.rel_key.bytes()).sum();
        self.word_embeddings.bytes() + norm(&self.embed_norm) + rel + layers
    }

    /// Rows of the word-embedding table: every token id must be below this.
    pub(crate) fn vocab_rows(&self) -> usize {
        self.vocab_rows
    }

    /// Runs the encoder and returns the final hidden states of the three requested rows of every
    /// sequence: `[seqs × 3 × H]`. Token ids must be below [`Self::vocab_rows`].
    pub(crate) fn forward(&self, batch: &Batch) -> Vec<f32> {
        let h = self.cfg.hidden_size;
        let total: usize = batch.seqs.iter().map(|s| s.len()).sum();
        let max_len = batch.seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let rel_index =
            RelIndex::new(max_len, self.cfg.position_buckets, self.cfg.max_relative_positions, self.cfg.att_span());
        let mut ws = self.workspaces.lock().expect("workspace pool").pop().unwrap_or_default();

        // Embeddings: word vectors, LayerNorm (the attention mask is all ones: no padding).
        ensure(&mut ws.x, total * h);
        for (row, &id) in ws.x.chunks_exact_mut(h).zip(batch.seqs.iter().flat_map(|s| s.iter())) {
            self.word_embeddings.row_into(id as usize, row);
        }
        layer_norm(&mut ws.x[..total * h], &self.embed_norm.gamma, &self.embed_norm.beta, self.cfg.layer_norm_eps);

        let (last, rest) = self.layers.split_last().expect("at least one layer");
        for layer in rest {
            self.layer_forward(layer, &mut ws, batch.seqs, Queries::All, &rel_index);
        }
        self.layer_forward(last, &mut ws, batch.seqs, Queries::Rows(batch.outputs), &rel_index);
        let out = ws.x[..batch.seqs.len() * 3 * h].to_vec();
        self.workspaces.lock().expect("workspace pool").push(ws);
        out
    }

    /// One block. On return `ws.x` holds the new states of the query rows only, in order.
    fn layer_forward(
        &self,
        layer: &Layer,
        ws: &mut Workspace,
        seqs: &[&[u32]],
        queries: Queries,
        rel_index: &RelIndex,
    ) {
        let cfg = &self.cfg;
        let (h, ah, f) = (cfg.hidden_size, cfg.all_head_size(), cfg.intermediate_size);
        let (heads, d) = (cfg.num_attention_heads, cfg.attention_head_size);
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        let offsets: Vec<usize> = prefix_sums(seqs.iter().map(|s| s.len()));
        let all_positions: Vec<Vec<usize>> = match queries {
            Queries::All => seqs.iter().map(|s| (0..s.len()).collect()).collect(),
            Queries::Rows(rows) => rows.iter().map(|r| r.to_vec()).collect(),
        };
        let n_q: usize = all_positions.iter().map(Vec::len).sum();
        let q_offsets = prefix_sums(all_positions.iter().map(Vec::len));
        for buf in [&mut ws.q, &mut ws.ctx] {
            ensure(buf, n_q * ah);
        }
        for buf in [&mut ws.k, &mut ws.v] {
            ensure(buf, total * ah);
        }
        ensure(&mut ws.attn, n_q * h);
        ensure(&mut ws.inter, n_q * f);

        // Projections. The queries (and the block's residual) are all rows, or the gathered ones.
        let all = matches!(queries, Queries::All);
        if !all {
            ensure(&mut ws.xq, n_q * h);
            let rows = all_positions.iter().zip(&offsets).flat_map(|(ps, &o)| ps.iter().map(move |&p| o + p));
            for (dst, r) in ws.xq.chunks_exact_mut(h).zip(rows) {
                dst.copy_from_slice(&ws.x[r * h..(r + 1) * h]);
            }
        }
        let xq: &[f32] = if all { &ws.x } else { &ws.xq };
        layer.query.forward(xq, n_q, &mut ws.q);
        layer.key.forward(&ws.x, total, &mut ws.k);
        layer.value.forward(&ws.x, total, &mut ws.v);

        // Attention per (sequence, head), each writing its own block of `ctx`.
        let rel_query = layer.rel_query.as_f32(&mut ws.rel_q);
        let rel_key = layer.rel_key.as_f32(&mut ws.rel_k);
        let ctx = SharedRows { ptr: ws.ctx.as_mut_ptr(), len: n_q * ah };
        let (q, k, v) = (&ws.q, &ws.k, &ws.v);
        (0..seqs.len() * heads).into_par_iter().for_each(|task| {
            let (s, hd) = (task / heads, task % heads);
            let att = HeadAttention {
                q: &q[q_offsets[s] * ah + hd * d..],
                k: &k[offsets[s] * ah + hd * d..],
                v: &v[offsets[s] * ah + hd * d..],
                rel_q: &rel_query[hd * d..],
                rel_k: &rel_key[hd * d..],
                stride: ah,
                d,
                len: seqs[s].len(),
                pos_att: cfg.pos_att_type,
            };
            let first = q_offsets[s] * ah + hd * d;
            let rows = all_positions[s].len();
            assert!(rows == 0 || first + (rows - 1) * ah + d <= ctx.len, "context block in bounds");
            // SAFETY: task (s, hd) writes rows q_offsets[s].. of columns hd·d..(hd+1)·d only: the
            // blocks of different tasks are disjoint, and `ws.ctx` is not otherwise touched until
            // every task has finished (end of `for_each`).
            unsafe { att.run(&all_positions[s], rel_index, ctx.at(first), ah) };
        });

        // Output projection, residual, LayerNorm; FFN, residual, LayerNorm.
        let eps = cfg.layer_norm_eps;
        let residual: &[f32] = if all { &ws.x } else { &ws.xq };
        layer.attn_out.product(&ws.ctx, n_q, &mut ws.attn);
        bias_residual_layer_norm(
            &mut ws.attn[..n_q * h],
            &layer.attn_out.bias,
            &residual[..n_q * h],
            &layer.attn_norm.gamma,
            &layer.attn_norm.beta,
            eps,
        );
        layer.intermediate.product(&ws.attn, n_q, &mut ws.inter);
        bias_gelu(&mut ws.inter[..n_q * f], &layer.intermediate.bias);
        layer.output.product(&ws.inter, n_q, &mut ws.x);
        bias_residual_layer_norm(
            &mut ws.x[..n_q * h],
            &layer.output.bias,
            &ws.attn[..n_q * h],
            &layer.out_norm.gamma,
            &layer.out_norm.beta,
            eps,
        );
    }
}

/// Start offsets of consecutive lengths.
fn prefix_sums(lens: impl Iterator<Item = usize>) -> Vec<usize> {
    lens.scan(0, |acc, n| {
        let o = *acc;
        *acc += n;
        Some(o)
    })
    .collect()
}

/// The context buffer, written by the attention tasks in disjoint blocks.
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

impl SharedRows {
    /// The address of element `offset` (within `len`: checked by the caller).
    fn at(&self, offset: usize) -> *mut f32 {
        // SAFETY: callers keep `offset` within the buffer.
        unsafe { self.ptr.add(offset) }
    }
}

// SAFETY: the tasks sharing it write disjoint blocks (see `layer_forward`).
unsafe impl Sync for SharedRows {}
