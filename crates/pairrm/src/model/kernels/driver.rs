//! The blocked, multithreaded product over a kernel's register tile, shared by the kernel
//! families whose weights are packed in panels of [`PANEL`] columns (bf16 and exact f32).
//!
//! The weights are a sequence of depth steps per panel (a step: one word per column — a pair of
//! bf16 inputs, or one f32 input); each activation row holds [`Tile::WORDS`] words per step.
//! The output is cut into tasks of [`Tile::TASK_ROWS`] rows × [`Tile::TASK_COLS`] columns, run on
//! the current rayon pool. A task walks the depth in chunks of [`Tile::DEPTH`] steps; for each
//! chunk, each row block of the task (its packed activations, up to 48 KiB, mostly in L1) meets every
//! weight slice of the task (in L2) — or, for tiles with [`Tile::COLUMNS_OUTSIDE`], each weight
//! slice meets every row block. A tile keeps its sums in registers over the chunk and
//! continues from the stored ones in the next chunk, so each output is the same chain of
//! multiply-adds whatever the split: rows, tasks and threads change only the order in which
//! outputs are computed, never how.
//!
//! The bf16 sizes were measured (Zen 4, one thread, m ∈ {640, 2048}, n and k ∈ {1024, 4096}):
//! whole-depth chunks beat 128-pair ones (16 KiB weight slices in L1) by about 15%, the per-tile
//! overhead then being paid once per 1024 pairs; rows outside columns, and the task sizes, within a
//! few percent.

use rayon::prelude::*;

/// Output columns per weight panel.
pub(crate) const PANEL: usize = 32;

/// One depth step of one panel: a word per column, aligned so that a 512-bit load never splits a
/// cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct PanelPair(pub(crate) [u32; PANEL]);

/// A kernel's register tile: `MR` rows × `COLS` columns.
pub(crate) trait Tile {
    /// Rows per tile.
    const MR: usize;
    /// Columns per tile: a divisor of [`PANEL`].
    const COLS: usize;
    /// Activation words per depth step.
    const WORDS: usize;
    /// Depth steps per chunk (the whole depth of every layer but the FFN output).
    const DEPTH: usize = 1024;
    /// Output rows per task (rounded down to whole tiles).
    const TASK_ROWS: usize = 48;
    /// Output columns per task (whole panels).
    const TASK_COLS: usize = 512;
    /// Whether a task walks its column tiles in the outer loop (each weight slice meets all the
    /// task's row blocks while in cache) rather than its row blocks.
    const COLUMNS_OUTSIDE: bool = false;

    /// `c[r][j] (+)= Σ_q` over `pairs` depth steps, for rows `r < mr` and the tile's `COLS`
    /// columns, from the `MR` activation rows at `a` (row stride `lda` words) and the weights at
    /// `b` (`pairs` panel rows of [`PANEL`] words, from the tile's first column). With
    /// `accumulate` the chains continue from the values in `c`, else they start from zero.
    ///
    /// # Safety
    /// The CPU must support the kernel; the `MR` rows at `a`, the `pairs` panel rows at `b` and the
    /// `mr` rows of `COLS` values at `c` (row stride `ldc`) must be valid, and nothing else may
    /// access those outputs during the call.
    #[allow(clippy::too_many_arguments)] // a micro-kernel: operands, depth, destination, mode
    unsafe fn tile(
        a: *const u32,
        lda: usize,
        b: *const u32,
        pairs: usize,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        accumulate: bool,
    );
}

/// A row stride of at least `words` that is not a multiple of 4 KiB: a tile reads its rows side by
/// side, and rows 4 KiB apart share their L1 cache sets (with 8 KiB rows, twelve rows of one tile
/// in one 8-way set: measured 15–20% slower).
pub(crate) fn padded_stride(words: usize) -> usize {
    words.next_multiple_of(16) + 16
}

/// The sums of an AVX-512 tile (`MR` rows × 32 columns, two vectors a row), shared by the tiles that
/// keep them so: loaded from the output to continue the chains of a depth chunk, stored after it.
#[cfg(target_arch = "x86_64")]
pub(crate) mod sums512 {
    use std::arch::x86_64::*;

    /// `acc[r]` from the 32 values of row `r` at `c` (row stride `ldc`), for the rows `r < mr`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the `mr` rows of 32 values at `c` must be readable.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn load<const MR: usize>(acc: &mut [[__m512; 2]; MR], c: *const f32, ldc: usize, mr: usize) {
        for (r, s) in acc.iter_mut().enumerate().take(mr) {
            // SAFETY: row r < mr of the caller's outputs.
            unsafe {
                s[0] = _mm512_loadu_ps(c.add(r * ldc));
                s[1] = _mm512_loadu_ps(c.add(r * ldc + 16));
            }
        }
    }

    /// The rows `r < mr` of `acc` to the 32 values of row `r` at `c` (row stride `ldc`).
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the `mr` rows of 32 values at `c` must be writable and
    /// accessed by nothing else during the call.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn store<const MR: usize>(acc: &[[__m512; 2]; MR], c: *mut f32, ldc: usize, mr: usize) {
        for (r, s) in acc.iter().enumerate().take(mr) {
            // SAFETY: row r < mr of the caller's outputs.
            unsafe {
                _mm512_storeu_ps(c.add(r * ldc), s[0]);
                _mm512_storeu_ps(c.add(r * ldc + 16), s[1]);
            }
        }
    }
}

/// The left operand of a product: `m` rows in a tile's format, row `r` at `words[r · stride..]`;
/// the rows after them, up to a whole tile, must be readable too (their results are dropped).
#[derive(Clone, Copy)]
pub(crate) struct RowsRef<'a> {
    pub(crate) words: &'a [u32],
    pub(crate) stride: usize,
    pub(crate) m: usize,
}

/// The right operand: `n` columns in panels of [`PANEL`], each `pairs` input pairs deep.
#[derive(Clone, Copy)]
pub(crate) struct PanelsRef<'a> {
    pub(crate) data: &'a [PanelPair],
    pub(crate) pairs: usize,
    pub(crate) n: usize,
}

/// The destination of a product, written by the tasks in disjoint blocks.
struct SharedOut(*mut f32);

impl SharedOut {
    /// The address of element `i` (within the destination: checked by the caller).
    fn at(&self, i: usize) -> *mut f32 {
        // SAFETY: callers keep `i` within the destination.
        unsafe { self.0.add(i) }
    }
}

// SAFETY: the tasks sharing it write disjoint blocks (see `run`).
unsafe impl Sync for SharedOut {}

/// `out[m × n] = a · bᵀ` with tile `T`, `out` row-major with row stride `ldc`; on the current
/// rayon pool when `parallel`.
///
/// # Safety
/// The CPU must support `T`'s kernel; `a` must hold `T::WORDS` words per step for `b.pairs` steps
/// per row; the `m` rows of `n` values at `out` (row stride `ldc`) must be valid and accessed by nothing
/// else during the call.
pub(crate) unsafe fn run<T: Tile>(a: RowsRef, b: PanelsRef, out: *mut f32, ldc: usize, parallel: bool) {
    let (m, n, pairs) = (a.m, b.n, b.pairs);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.stride >= pairs * T::WORDS, "rows shorter than the depth");
    assert!(a.words.len() >= m.div_ceil(T::MR) * T::MR * a.stride, "rows not padded to whole tiles");
    assert!(b.data.len() >= n.div_ceil(PANEL) * pairs, "panels too short");
    if pairs == 0 {
        for r in 0..m {
            // SAFETY: row r of the destination the caller vouches for.
            unsafe { std::ptr::write_bytes(out.add(r * ldc), 0, n) };
        }
        return;
    }
    let blocks = m.div_ceil(T::MR);
    let blocks_per_task = (T::TASK_ROWS / T::MR).max(1);
    let col_tiles = n.div_ceil(T::COLS);
    let tiles_per_task = T::TASK_COLS / T::COLS;
    let (tasks_m, tasks_n) = (blocks.div_ceil(blocks_per_task), col_tiles.div_ceil(tiles_per_task));
    let dst = SharedOut(out);
    let task = |t: usize| {
        let weights = b.data.as_ptr().cast::<u32>();
        let (tm, tn) = (t / tasks_n, t % tasks_n);
        let block_range = tm * blocks_per_task..blocks.min((tm + 1) * blocks_per_task);
        let tile_range = tn * tiles_per_task..col_tiles.min((tn + 1) * tiles_per_task);
        let mut edge = [0.0f32; 16 * PANEL];
        for q0 in (0..pairs).step_by(T::DEPTH) {
            let depth = T::DEPTH.min(pairs - q0);
            let mut one = |rb: usize, ct: usize| {
                let (r0, mr) = (rb * T::MR, T::MR.min(m - rb * T::MR));
                let rows = a.words[r0 * a.stride + q0 * T::WORDS..].as_ptr();
                let col = ct * T::COLS;
                let cols = T::COLS.min(n - col);
                // SAFETY: rows r0..r0+mr, columns col..col+cols of `out` belong to this task
                // alone; the tile's rows and `depth` pairs of the panel (from the tile's
                // first column) are in `a` and `b` (asserted above); the caller vouches for
                // the CPU.
                unsafe {
                    let w = weights.add(((col / PANEL) * pairs + q0) * PANEL + col % PANEL);
                    let c = dst.at(r0 * ldc + col);
                    if cols == T::COLS {
                        T::tile(rows, a.stride, w, depth, c, ldc, mr, q0 > 0);
                    } else {
                        // A partial panel: through a full-width scratch tile.
                        for r in 0..mr {
                            std::ptr::copy_nonoverlapping(c.add(r * ldc), edge[r * T::COLS..].as_mut_ptr(), cols);
                        }
                        T::tile(rows, a.stride, w, depth, edge.as_mut_ptr(), T::COLS, mr, q0 > 0);
                        for r in 0..mr {
                            std::ptr::copy_nonoverlapping(edge[r * T::COLS..].as_ptr(), c.add(r * ldc), cols);
                        }
                    }
                }
            };
            if T::COLUMNS_OUTSIDE {
                for ct in tile_range.clone() {
                    for rb in block_range.clone() {
                        one(rb, ct);
                    }
                }
            } else {
                for rb in block_range.clone() {
                    for ct in tile_range.clone() {
                        one(rb, ct);
                    }
                }
            }
        }
    };
    let tasks = tasks_m * tasks_n;
    if parallel && tasks > 1 && rayon::current_num_threads() > 1 {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}
