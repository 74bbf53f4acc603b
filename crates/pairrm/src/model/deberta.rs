//! The DeBERTa-v2 encoder: embeddings, then layers of disentangled self-attention and a
//! feed-forward block (transformers' `DebertaV2Model`, the shape of candle's `debertav2.rs`).
//!
//! A batch is a set of sequences whose rows are concatenated (no padding): the linear layers run
//! once over all rows, attention runs per sequence and head ([`super::attention`]).
//! Input-independent work — the layer-normalised rel-embedding table projected by each layer's
//! query and key weights — is done once at load. In the last layer only the rows that feed the
//! head are computed past the keys and values. Activations live in workspaces that are reused
//! from call to call.

use std::sync::Mutex;

use rayon::prelude::*;

use super::attention::{HeadAttention, Products};
use super::kernels::bf16::{Kernel, PanelBuf, RowBuf};
use super::linear::{LayerNorm, Linear, Numerics};
use super::matrix::{Matrix, WeightDtype};
use super::ops::{bias_gelu, bias_residual_layer_norm};
use super::position::RelIndex;
use crate::checkpoint::WeightScope;
use crate::config::{DebertaConfig, PosAttType};
use crate::error::Result;

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
    /// Queries and keys rounded for the bf16 attention products.
    q_bf16: RowBuf,
    k_bf16: RowBuf,
}

fn ensure(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Where a layer's rows lie: each sequence's rows in the concatenated hidden states, and the
/// query rows — those the layer computes past its keys and values (all of them, or the rows that
/// feed the head in the last layer).
struct Rows<'a> {
    seqs: &'a [&'a [u32]],
    /// Rows of all sequences.
    total: usize,
    /// First row of each sequence.
    offsets: Vec<usize>,
    /// The query positions of each sequence.
    positions: Vec<Vec<usize>>,
    /// First query row of each sequence.
    q_offsets: Vec<usize>,
    /// Query rows of all sequences.
    n_q: usize,
    /// Whether every row is a query row (then the query rows are the hidden states themselves).
    all: bool,
}

impl<'a> Rows<'a> {
    /// Every row of every sequence is a query row.
    fn all(seqs: &'a [&'a [u32]]) -> Self {
        Self::new(seqs, seqs.iter().map(|s| (0..s.len()).collect()).collect(), true)
    }

    /// Only `rows` of each sequence are query rows.
    fn only(seqs: &'a [&'a [u32]], rows: &[[usize; 3]]) -> Self {
        Self::new(seqs, rows.iter().map(|r| r.to_vec()).collect(), false)
    }

    fn new(seqs: &'a [&'a [u32]], positions: Vec<Vec<usize>>, all: bool) -> Self {
        Rows {
            seqs,
            total: seqs.iter().map(|s| s.len()).sum(),
            offsets: prefix_sums(seqs.iter().map(|s| s.len())),
            q_offsets: prefix_sums(positions.iter().map(Vec::len)),
            n_q: positions.iter().map(Vec::len).sum(),
            positions,
            all,
        }
    }
}

/// The embeddings: word vectors, then LayerNorm (no absolute positions, no token types, no mask:
/// the configurations that need them are rejected when the config is read).
struct Embeddings {
    /// Kept f32 whatever the weight dtype: as a lookup table, memory-mapped, only the rows of
    /// tokens in use are ever read into memory.
    word_embeddings: Matrix,
    norm: LayerNorm,
    vocab_rows: usize,
}

impl Embeddings {
    /// Reads `word_embeddings.weight` and `LayerNorm` of scope `w` (`…embeddings`).
    fn load(w: &WeightScope, cfg: &DebertaConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let vocab_rows = match w.shape("word_embeddings.weight") {
            Some(s) if s.len() == 2 && s[1] == h => s[0],
            _ => 0,
        };
        Ok(Embeddings {
            word_embeddings: Matrix::load(w, "word_embeddings.weight", vocab_rows, h, WeightDtype::F32)?,
            norm: LayerNorm::load(&w.at("LayerNorm"), h, cfg.layer_norm_eps)?,
            vocab_rows,
        })
    }

    /// The embedded rows of every sequence, concatenated, into `x` (`[rows × H]`).
    fn forward(&self, seqs: &[&[u32]], x: &mut [f32]) {
        let _span = tracing::trace_span!("embeddings").entered();
        let h = self.norm.gamma.len();
        for (row, &id) in x.chunks_exact_mut(h).zip(seqs.iter().flat_map(|s| s.iter())) {
            self.word_embeddings.row_into(id as usize, row);
        }
        self.norm.forward(x);
    }

    fn bytes(&self) -> u64 {
        self.word_embeddings.bytes() + self.norm.bytes()
    }
}

/// The rel-embedding table `[2·span, H]` of scope `w` (`…encoder`), layer-normalised when the
/// model says so: what every layer's query and key projections see as relative positions.
fn rel_embeddings(w: &WeightScope, cfg: &DebertaConfig) -> Result<Vec<f32>> {
    let h = cfg.hidden_size;
    let mut rel = w.get("rel_embeddings.weight", &[2 * cfg.att_span(), h])?.to_vec();
    if cfg.norm_rel_ebd {
        LayerNorm::load(&w.at("LayerNorm"), h, cfg.layer_norm_eps)?.forward(&mut rel);
    }
    Ok(rel)
}

/// One encoder block: disentangled self-attention, then the feed-forward block, each closed by a
/// residual LayerNorm.
struct Layer {
    /// Position in the stack (for the tracing spans).
    index: usize,
    query: Linear,
    key: Linear,
    value: Linear,
    /// The rel-embedding table through `query` and `key` (bias included).
    rel: RelTables,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
    heads: usize,
    head_size: usize,
    pos_att: PosAttType,
}

impl Layer {
    /// Reads layer `index` from scope `w` (`…encoder.layer.{index}`) and projects the rel table
    /// `rel` through its query and key weights (exactly, in f32, whatever the precision).
    fn load(w: &WeightScope, index: usize, cfg: &DebertaConfig, rel: &[f32], numerics: &Numerics) -> Result<Self> {
        let (h, ah, f) = (cfg.hidden_size, cfg.all_head_size(), cfg.intermediate_size);
        let eps = cfg.layer_norm_eps;
        let (attention, output) = (w.at("attention.self"), w.at("attention.output"));
        let project = |name: &str| Linear::exact_forward(&attention.at(name), ah, h, rel);
        let (d, rel_rows) = (cfg.attention_head_size, rel.len() / h);
        // The bf16 operands of a head start at an even column.
        let rel = match numerics.attention_kernel().filter(|_| d.is_multiple_of(2)) {
            None => RelTables::Exact {
                query: Matrix::from_f32(project("query_proj")?, numerics.dtype),
                key: Matrix::from_f32(project("key_proj")?, numerics.dtype),
            },
            Some(kernel) => {
                let heads = |table: Vec<f32>| -> Vec<PanelBuf> {
                    (0..cfg.num_attention_heads)
                        .map(|hd| {
                            let mut panels = PanelBuf::default();
                            panels.columns(&table[hd * d..], rel_rows, d, ah);
                            panels
                        })
                        .collect()
                };
                RelTables::Bf16 { kernel, query: heads(project("query_proj")?), key: heads(project("key_proj")?) }
            }
        };
        Ok(Layer {
            index,
            rel,
            query: Linear::load(&attention.at("query_proj"), ah, h, numerics)?,
            key: Linear::load(&attention.at("key_proj"), ah, h, numerics)?,
            value: Linear::load(&attention.at("value_proj"), ah, h, numerics)?,
            attn_out: Linear::load(&output.at("dense"), h, ah, numerics)?,
            attn_norm: LayerNorm::load(&output.at("LayerNorm"), h, eps)?,
            intermediate: Linear::load(&w.at("intermediate.dense"), f, h, numerics)?,
            output: Linear::load(&w.at("output.dense"), h, f, numerics)?,
            out_norm: LayerNorm::load(&w.at("output.LayerNorm"), h, eps)?,
            heads: cfg.num_attention_heads,
            head_size: cfg.attention_head_size,
            pos_att: cfg.pos_att_type,
        })
    }

    /// Bytes of the layer's weights (the rel table as its two projections).
    fn bytes(&self) -> u64 {
        let linears = [&self.query, &self.key, &self.value, &self.attn_out, &self.intermediate, &self.output];
        linears.iter().map(|l| l.bytes()).sum::<u64>()
            + self.rel.bytes()
            + self.attn_norm.bytes()
            + self.out_norm.bytes()
    }

    /// The block on the hidden states `ws.x`; on return `ws.x` holds the new states of the query
    /// rows only, in order.
    fn forward(&self, ws: &mut Workspace, rows: &Rows, rel_index: &RelIndex) {
        let _span = tracing::trace_span!("layer", index = self.index).entered();
        self.attention(ws, rows, rel_index);
        self.feed_forward(ws, rows.n_q);
    }

    /// Self-attention of the query rows over all rows of their sequence, output projection,
    /// residual and LayerNorm: `ws.x` → `ws.attn` (`[queries × H]`).
    fn attention(&self, ws: &mut Workspace, rows: &Rows, rel_index: &RelIndex) {
        let _span = tracing::trace_span!("attention", layer = self.index).entered();
        let (heads, d) = (self.heads, self.head_size);
        let ah = heads * d;
        let h = self.attn_norm.gamma.len();
        let (total, n_q) = (rows.total, rows.n_q);
        // In the reduced tiers the f32 queries are read only to be rounded to bf16: the context
        // then goes into their buffer, and `ws.ctx` (one more [rows × H] block) is not needed.
        let reduced = matches!(self.rel, RelTables::Bf16 { .. });
        ensure(&mut ws.q, n_q * ah);
        if !reduced {
            ensure(&mut ws.ctx, n_q * ah);
        }
        for buf in [&mut ws.k, &mut ws.v] {
            ensure(buf, total * ah);
        }
        ensure(&mut ws.attn, n_q * h);

        // Projections. The queries (and the block's residual) are all rows, or the gathered ones.
        if !rows.all {
            ensure(&mut ws.xq, n_q * h);
            let at = rows.positions.iter().zip(&rows.offsets).flat_map(|(ps, &o)| ps.iter().map(move |&p| o + p));
            for (dst, r) in ws.xq.chunks_exact_mut(h).zip(at) {
                dst.copy_from_slice(&ws.x[r * h..(r + 1) * h]);
            }
        }
        let xq: &[f32] = if rows.all { &ws.x } else { &ws.xq };
        self.query.forward(xq, n_q, &mut ws.q);
        self.key.forward(&ws.x, total, &mut ws.k);
        self.value.forward(&ws.x, total, &mut ws.v);

        // Attention per (sequence, head), each writing its own block of `ctx`.
        let (rel_query, rel_key): (&[f32], &[f32]) = match &self.rel {
            RelTables::Exact { query, key } => (query.as_f32(&mut ws.rel_q), key.as_f32(&mut ws.rel_k)),
            RelTables::Bf16 { kernel, .. } => {
                ws.q_bf16.fill(*kernel, &ws.q, n_q, ah, ah, true);
                ws.k_bf16.fill(*kernel, &ws.k, total, ah, ah, true);
                (&[], &[])
            }
        };
        let ctx = SharedRows { ptr: if reduced { ws.q.as_mut_ptr() } else { ws.ctx.as_mut_ptr() }, len: n_q * ah };
        // No reference into the f32 queries exists while the context is written over them.
        let q: &[f32] = if reduced { &[] } else { &ws.q };
        let (k, v, q_bf16, k_bf16) = (&ws.k, &ws.v, &ws.q_bf16, &ws.k_bf16);
        (0..rows.seqs.len() * heads).into_par_iter().for_each(|task| {
            let (s, hd) = (task / heads, task % heads);
            let len = rows.seqs[s].len();
            let products = match &self.rel {
                RelTables::Exact { .. } => Products::F32 { rel_q: &rel_query[hd * d..], rel_k: &rel_key[hd * d..] },
                RelTables::Bf16 { kernel, query, key } => Products::Bf16 {
                    kernel: *kernel,
                    q: q_bf16.view(rows.q_offsets[s], rows.positions[s].len(), hd * d),
                    k: k_bf16.view(rows.offsets[s], len, hd * d),
                    rel_q: &query[hd],
                    rel_k: &key[hd],
                },
            };
            let att = HeadAttention {
                q: if reduced { &[] } else { &q[rows.q_offsets[s] * ah + hd * d..] },
                k: &k[rows.offsets[s] * ah + hd * d..],
                v: &v[rows.offsets[s] * ah + hd * d..],
                products,
                stride: ah,
                d,
                len,
                pos_att: self.pos_att,
            };
            let first = rows.q_offsets[s] * ah + hd * d;
            let n = rows.positions[s].len();
            assert!(n == 0 || first + (n - 1) * ah + d <= ctx.len, "context block in bounds");
            // SAFETY: task (s, hd) writes rows q_offsets[s].. of columns hd·d..(hd+1)·d only: the
            // blocks of different tasks are disjoint, and the buffer (`ws.ctx`, or `ws.q` in the
            // reduced tiers, which no task reads) is not otherwise touched until every task has
            // finished (end of `for_each`).
            unsafe { att.run(&rows.positions[s], rel_index, ctx.at(first), ah) };
        });

        // Output projection, residual, LayerNorm.
        let residual: &[f32] = if rows.all { &ws.x } else { &ws.xq };
        self.attn_out.product(if reduced { &ws.q } else { &ws.ctx }, n_q, &mut ws.attn);
        let norm = &self.attn_norm;
        let attn = &mut ws.attn[..n_q * h];
        bias_residual_layer_norm(attn, &self.attn_out.bias, &residual[..n_q * h], &norm.gamma, &norm.beta, norm.eps);
    }

    /// The feed-forward block on the attention output of `n_q` rows, residual and LayerNorm:
    /// `ws.attn` → `ws.x`.
    fn feed_forward(&self, ws: &mut Workspace, n_q: usize) {
        let _span = tracing::trace_span!("feed_forward", layer = self.index).entered();
        let h = self.out_norm.gamma.len();
        let f = self.intermediate.n_out();
        // Packed weights cost nothing to reuse, so their rows go through in chunks: the
        // intermediate activations (4H wide) then take a quarter of the memory of a 2048-token
        // batch's. The `gemm` crate packs its weight operand on every call: it gets all rows at once.
        let chunk = if self.intermediate.is_packed() { FFN_CHUNK_ROWS } else { n_q.max(1) };
        ensure(&mut ws.inter, chunk.min(n_q) * f);
        let norm = &self.out_norm;
        for r0 in (0..n_q).step_by(chunk) {
            let rows = chunk.min(n_q - r0);
            let (attn, x) = (&ws.attn[r0 * h..(r0 + rows) * h], &mut ws.x[r0 * h..(r0 + rows) * h]);
            self.intermediate.product(attn, rows, &mut ws.inter);
            bias_gelu(&mut ws.inter[..rows * f], &self.intermediate.bias);
            self.output.product(&ws.inter, rows, x);
            bias_residual_layer_norm(x, &self.output.bias, attn, &norm.gamma, &norm.beta, norm.eps);
        }
    }
}

/// Rows per chunk of the feed-forward block with packed weights.
const FFN_CHUNK_ROWS: usize = 512;

/// A layer's rel-embedding table projected through its query and key weights, as the attention
/// reads them.
enum RelTables {
    /// `[2·span, H]` each, f32 or in 16 bits (widened per layer): the exact tier.
    Exact { query: Matrix, key: Matrix },
    /// Each head's block in bf16 panels (rel rows as columns), for the bf16 attention products.
    Bf16 { kernel: Kernel, query: Vec<PanelBuf>, key: Vec<PanelBuf> },
}

impl RelTables {
    fn bytes(&self) -> u64 {
        match self {
            RelTables::Exact { query, key } => query.bytes() + key.bytes(),
            RelTables::Bf16 { query, key, .. } => query.iter().chain(key).map(PanelBuf::bytes).sum(),
        }
    }
}

/// The DeBERTa-v2 encoder.
pub(crate) struct Encoder {
    cfg: DebertaConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    workspaces: Mutex<Vec<Workspace>>,
}

impl Encoder {
    /// Loads the encoder from scope `w` (the backbone: tensors `embeddings.…` and `encoder.…`).
    pub(crate) fn load(w: &WeightScope, cfg: &DebertaConfig, numerics: &Numerics) -> Result<Self> {
        let embeddings = Embeddings::load(&w.at("embeddings"), cfg)?;
        let encoder = w.at("encoder");
        let rel = rel_embeddings(&encoder, cfg)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(&encoder.at("layer").at(i), i, cfg, &rel, numerics))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder { cfg: cfg.clone(), embeddings, layers, workspaces: Mutex::default() })
    }

    /// Bytes of the encoder's weights as stored (the rel-embedding table as its two projections).
    pub(crate) fn weight_bytes(&self) -> u64 {
        self.embeddings.bytes() + self.layers.iter().map(Layer::bytes).sum::<u64>()
    }

    /// The kernel of the linear layers' products.
    pub(crate) fn linear_kernel(&self) -> &'static str {
        self.layers[0].query.kernel()
    }

    /// The kernel of the attention's products.
    pub(crate) fn attention_kernel(&self) -> &'static str {
        match &self.layers[0].rel {
            RelTables::Exact { .. } => super::GEMM_KERNEL,
            RelTables::Bf16 { kernel, .. } => kernel.name(),
        }
    }

    /// Rows of the word-embedding table: every token id must be below this.
    pub(crate) fn vocab_rows(&self) -> usize {
        self.embeddings.vocab_rows
    }

    /// Runs the encoder and returns the final hidden states of the three requested rows of every
    /// sequence: `[seqs × 3 × H]`. Token ids must be below [`Self::vocab_rows`].
    pub(crate) fn forward(&self, batch: &Batch) -> Vec<f32> {
        self.forward_traced(batch, &mut |_| {})
    }

    /// [`Self::forward`], handing `trace` the hidden states of the requested rows (`[seqs × 3 ×
    /// H]`) after the embeddings and after every layer.
    pub(crate) fn forward_traced(&self, batch: &Batch, trace: &mut dyn FnMut(&[f32])) -> Vec<f32> {
        let _span = tracing::trace_span!("encoder", seqs = batch.seqs.len()).entered();
        let h = self.cfg.hidden_size;
        let all = Rows::all(batch.seqs);
        let max_len = batch.seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let rel_index =
            RelIndex::new(max_len, self.cfg.position_buckets, self.cfg.max_relative_positions, self.cfg.att_span());
        let mut ws = self.workspaces.lock().expect("workspace pool").pop().unwrap_or_default();
        let mut outputs = vec![0.0f32; batch.seqs.len() * 3 * h];
        let mut gather = |x: &[f32]| {
            let rows = batch.outputs.iter().zip(&all.offsets).flat_map(|(ps, &o)| ps.iter().map(move |&p| o + p));
            for (dst, r) in outputs.chunks_exact_mut(h).zip(rows) {
                dst.copy_from_slice(&x[r * h..(r + 1) * h]);
            }
            trace(&outputs);
        };

        ensure(&mut ws.x, all.total * h);
        self.embeddings.forward(batch.seqs, &mut ws.x[..all.total * h]);
        gather(&ws.x);
        let (last, rest) = self.layers.split_last().expect("at least one layer");
        for layer in rest {
            layer.forward(&mut ws, &all, &rel_index);
            gather(&ws.x);
        }
        last.forward(&mut ws, &Rows::only(batch.seqs, batch.outputs), &rel_index);
        let out = ws.x[..batch.seqs.len() * 3 * h].to_vec();
        trace(&out);
        self.workspaces.lock().expect("workspace pool").push(ws);
        out
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

// SAFETY: the tasks sharing it write disjoint blocks (see `Layer::attention`).
unsafe impl Sync for SharedRows {}
