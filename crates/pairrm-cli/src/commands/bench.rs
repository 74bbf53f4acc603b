//! `pairrm bench`: throughput, FLOP rate against the machine's GEMM peak, memory and load time on
//! standard workloads; `--write-workload` exports them for `bench/reference.py`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use pairrm::judge::{
    compare, rank, select_n, CompareMode, CompareRequest, RankRequest, SelectMethod, SplitMix64, Target,
};
use pairrm::model::{Kernels, LinearProduct, Precision};
use pairrm::Engine;
use serde::Serialize;

use crate::args::ModelArgs;
use crate::outfile::OutputFile;
use crate::progress::Progress;
use crate::stdout;

/// A standard workload.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Pairs with a 128-token source and two 256-token candidates (mode `ab`: one pass each).
    Uniform,
    /// Pairs with sources of 16–256 tokens and candidates of 32–412 tokens (one pass each).
    Mixed,
    /// Full rank of 4 candidates (12 passes per item), mixed lengths.
    Rank4,
    /// Bubble best-of-16 (30 passes per item), mixed lengths.
    Best16,
}

/// Arguments of `pairrm bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Workloads to run.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "uniform,mixed,rank4,best16")]
    workload: Vec<Workload>,
    /// Forward passes per workload (rounded up to whole items).
    #[arg(long, default_value_t = 12)]
    passes: usize,
    /// Seed of the generated texts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the workloads as JSON lines (for `bench/reference.py`) to this file and exit.
    #[arg(long)]
    write_workload: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Skip measuring the GEMM peak.
    #[arg(long)]
    no_peak: bool,
    /// Instead of the workloads, measure the linear layers' products at the encoder's shapes
    /// (rows 640 and 2048; H×H, 4H×H, H×4H): f32 `gemm` against the engine's kernel for `--precision`.
    #[arg(long)]
    gemm_sweep: bool,
}

/// One item of a workload: a pair (one pass) or a set of candidates.
#[derive(Serialize, Clone)]
struct Item {
    workload: Workload,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<String>,
}

#[derive(Serialize)]
struct WorkloadReport {
    workload: Workload,
    items: usize,
    passes: usize,
    tokens: usize,
    seconds: f64,
    passes_per_second: f64,
    tokens_per_second: f64,
    /// What a straightforward pass computes (every row in every layer, the full 2·span rel
    /// window), without the input-independent rel-embedding projections.
    nominal_gflop: f64,
    /// What this engine executes (last layer: marker rows only; rel window clipped to the length).
    executed_gflop: f64,
    nominal_gflops: f64,
    executed_gflops: f64,
    /// CPU time of the process's threads during the workload: on a shared machine, the work
    /// done per CPU-second drifts less than per wall-clock second.
    cpu_seconds: Option<f64>,
    passes_per_cpu_second: Option<f64>,
}

/// The engine's own kernel's rate on the GEMM-rate product (a reduced-precision kernel, or the
/// exact tier's AVX-512 kernel).
#[derive(Serialize, Clone, Copy)]
struct PrecisionGemm {
    kernel: &'static str,
    peak_gflops: f64,
    sustained_gflops: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    threads: usize,
    cpu: String,
    /// The arithmetic tier of the linear layers.
    precision: Precision,
    /// The kernels the model runs.
    kernels: Kernels,
    load_seconds: f64,
    /// The untimed warm-up pass (includes paging the weights in).
    first_pass_seconds: f64,
    /// The fastest large f32 product (1024×4096×1024) of the runs before and after the workloads,
    /// with the `gemm` crate: the yardstick of the machine's f32 rate.
    gemm_peak_gflops: Option<f64>,
    /// The same products' total FLOPs over their total time: the rate this machine sustained
    /// around the workloads (below the peak on a shared machine).
    gemm_sustained_gflops: Option<f64>,
    /// The same product with the engine's own linear-layer kernel, measured alongside (none where
    /// the engine multiplies with the `gemm` crate).
    precision_gemm: Option<PrecisionGemm>,
    /// Weights as stored in memory (depends on `--dtype` and `--precision`).
    weight_bytes: u64,
    /// The checkpoint's parameters as f32 (4 bytes each): the yardstick of the memory targets.
    f32_weight_bytes: u64,
    /// Peak resident memory of loading and the workloads.
    peak_rss_bytes: Option<u64>,
    workloads: Vec<WorkloadReport>,
}

/// Runs `pairrm bench`.
pub fn run(args: Args) -> anyhow::Result<crate::jsonl::Outcome> {
    let start = Instant::now();
    let engine = args.model.load(true)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let words = single_token_words(&engine)?;
    let items: Vec<Item> =
        args.workload.iter().flat_map(|&w| make_workload(w, args.passes, args.seed, &words)).collect();
    if let Some(path) = &args.write_workload {
        let mut f = std::io::BufWriter::new(OutputFile::create(path)?);
        for item in &items {
            writeln!(f, "{}", serde_json::to_string(item)?).with_context(|| format!("writing {}", path.display()))?;
        }
        f.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", path.display()))?.commit()?;
        return Ok(crate::jsonl::Outcome { failed: 0 });
    }
    // One untimed pass first: it pages the memory-mapped weights in (on a cold page cache that
    // is disk I/O, not compute) and warms the workspaces.
    let first_pass = Instant::now();
    if let Some(item) = items.first() {
        let b = item.candidates.first().or(item.b.as_ref()).cloned().unwrap_or_default();
        let a = item.candidates.get(1).or(item.a.as_ref()).cloned().unwrap_or_default();
        let req = CompareRequest { instruction: None, source: item.source.clone(), a, b };
        for r in compare(&engine, &[req], CompareMode::Ab) {
            r.context("the warm-up pass failed")?;
        }
    }
    let first_pass_seconds = first_pass.elapsed().as_secs_f64();
    if args.gemm_sweep {
        return gemm_sweep(&engine, args.json);
    }
    // The GEMM rates are measured before and after the workloads (on a shared machine they drift),
    // on the engine's threads. The peak memory is that of loading, the warm-up pass and the
    // workloads: the opening measurement's operands are freed and handed back, and the
    // high-water mark reset after it.
    let rates = !args.no_peak;
    let measure = || -> anyhow::Result<_> { Ok(GemmRates::new(engine.precision())?.measure(&engine)) };
    let load_peak = peak_rss();
    let before = rates.then(measure).transpose()?;
    let reset = rates && reset_peak_rss();
    let mut reports = vec![];
    for &w in &args.workload {
        let work: Vec<&Item> = items.iter().filter(|i| i.workload == w).collect();
        reports.push(run_workload(&engine, w, &work)?);
    }
    // Read before the closing GEMM-rate measurement: its operands would sit on top of the
    // workspaces the workloads leave allocated.
    let peak_rss_bytes = match (peak_rss(), reset) {
        (Some(workloads), true) => Some(workloads.max(load_peak.unwrap_or(0))),
        (peak, _) => peak,
    };
    let after = rates.then(measure).transpose()?;
    let (gemm, own) = match (before, after) {
        (Some((f0, r0, _)), Some((f1, r1, kernel))) => {
            (Some(f0.merge(f1)), r0.zip(r1).map(|(a, b)| a.merge(b)).zip(kernel))
        }
        _ => (None, None),
    };
    let report = Report {
        model: args.model.model.clone(),
        threads: engine.threads(),
        cpu: cpu_name(),
        precision: engine.precision(),
        kernels: engine.kernels(),
        load_seconds,
        first_pass_seconds,
        gemm_peak_gflops: gemm.map(|g| g.best),
        gemm_sustained_gflops: gemm.map(|g| g.sustained()),
        precision_gemm: own.map(|(g, kernel)| PrecisionGemm {
            kernel,
            peak_gflops: g.best,
            sustained_gflops: g.sustained(),
        }),
        weight_bytes: engine.model().weight_bytes(),
        f32_weight_bytes: 4 * engine.model().parameters(),
        peak_rss_bytes,
        workloads: reports,
    };
    let text = if args.json { serde_json::to_string_pretty(&report)? + "\n" } else { table(&report) };
    stdout::print(text.as_bytes()).context("writing the report")?;
    Ok(crate::jsonl::Outcome { failed: 0 })
}

fn run_workload(engine: &Engine, workload: Workload, items: &[&Item]) -> anyhow::Result<WorkloadReport> {
    let progress = Progress::new(Some(items.iter().map(|i| passes_of(workload, i)).sum()), false);
    let scorer = engine.scorer(progress.call_options());
    let before = engine.counters();
    let cpu_before = cpu_seconds();
    let t = Instant::now();
    let failures: Vec<pairrm::Error> = match workload {
        Workload::Uniform | Workload::Mixed => {
            let reqs: Vec<CompareRequest> = items
                .iter()
                .map(|i| CompareRequest {
                    instruction: None,
                    source: i.source.clone(),
                    a: i.a.clone().unwrap_or_default(),
                    b: i.b.clone().unwrap_or_default(),
                })
                .collect();
            compare(&scorer, &reqs, CompareMode::Ab).into_iter().filter_map(Result::err).collect()
        }
        Workload::Rank4 => rank(&scorer, &rank_requests(items)).into_iter().filter_map(Result::err).collect(),
        Workload::Best16 => select_n(&scorer, &rank_requests(items), Target::Best, SelectMethod::Bubble, 0)
            .into_iter()
            .filter_map(Result::err)
            .collect(),
    };
    let seconds = t.elapsed().as_secs_f64();
    let cpu = cpu_before.zip(cpu_seconds()).map(|(a, b)| b - a);
    progress.finish();
    if let Some(e) = failures.into_iter().next() {
        return Err(e).context("a benchmark pass failed");
    }
    let after = engine.counters();
    let passes = (after.passes - before.passes) as usize;
    let tokens = (after.tokens - before.tokens) as usize;
    let nominal = after.nominal_flop - before.nominal_flop;
    let executed = after.executed_flop - before.executed_flop;
    Ok(WorkloadReport {
        workload,
        items: items.len(),
        passes,
        tokens,
        seconds,
        passes_per_second: passes as f64 / seconds,
        tokens_per_second: tokens as f64 / seconds,
        nominal_gflop: nominal / 1e9,
        executed_gflop: executed / 1e9,
        nominal_gflops: nominal / 1e9 / seconds,
        executed_gflops: executed / 1e9 / seconds,
        cpu_seconds: cpu,
        passes_per_cpu_second: cpu.filter(|&c| c > 0.0).map(|c| passes as f64 / c),
    })
}

fn rank_requests(items: &[&Item]) -> Vec<RankRequest> {
    items
        .iter()
        .map(|i| RankRequest { instruction: None, source: i.source.clone(), candidates: i.candidates.clone() })
        .collect()
}

fn passes_of(w: Workload, item: &Item) -> usize {
    let n = item.candidates.len();
    match w {
        Workload::Uniform | Workload::Mixed => 1,
        Workload::Rank4 => n * (n - 1),
        Workload::Best16 => 2 * (n - 1),
    }
}

/// Common English words that the model's tokenizer keeps as one token each, so that a text of n
/// of them is exactly n tokens (all of them, with approximate lengths, for toy tokenizers).
fn single_token_words(engine: &Engine) -> anyhow::Result<Vec<&'static str>> {
    const WORDS: &str = "the of and to in is you that it he was for on are as with his they at be this have from or \
        one had by word but not what all were we when your can said there use an each which she do how their if will \
        up other about out many then them these so some her would make like him into time has look two more write go \
        see number no way could people my than first water been call who oil its now find long down day did get come \
        made may part over new sound take only little work know place year live me back give most very after thing our \
        just name good sentence man think say great where help through much before line right too mean old any same \
        tell boy follow came want show also around form three small set put end does another well large must big even \
        such because turn here why ask went men read need land different home us move try kind hand picture again \
        change off play spell air away animal house point page letter mother answer found study still learn should";
    let builder = engine.input_builder();
    let mut out = vec![];
    for w in WORDS.split_whitespace() {
        // `[CLS] <marker> ▁word [SEP]`: one token for the word.
        if builder.encode_part(w)?.len() == 4 && builder.encode_part(&format!("{w} {w}"))?.len() == 5 {
            out.push(w);
        }
    }
    if out.len() < 20 {
        tracing::warn!("this tokenizer splits most common words: workload lengths are approximate");
        return Ok(WORDS.split_whitespace().collect());
    }
    Ok(out)
}

/// A text of exactly `part_len` tokens as a part (`[CLS] <marker> … [SEP]`).
fn text(part_len: usize, words: &[&str], rng: &mut SplitMix64) -> String {
    let n = part_len.saturating_sub(3);
    (0..n).map(|_| words[rng.below(words.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
}

fn make_workload(w: Workload, passes: usize, seed: u64, words: &[&str]) -> Vec<Item> {
    let mut rng = SplitMix64::new(seed ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let range = |lo: usize, hi: usize, rng: &mut SplitMix64| lo + rng.below((hi - lo + 1) as u64) as usize;
    let mut items = vec![];
    let mut planned = 0;
    while planned < passes.max(1) {
        let item = match w {
            Workload::Uniform => Item {
                workload: w,
                source: text(128, words, &mut rng),
                a: Some(text(256, words, &mut rng)),
                b: Some(text(256, words, &mut rng)),
                candidates: vec![],
            },
            Workload::Mixed => {
                let (s, a, b) = (range(16, 256, &mut rng), range(32, 412, &mut rng), range(32, 412, &mut rng));
                Item {
                    workload: w,
                    source: text(s, words, &mut rng),
                    a: Some(text(a, words, &mut rng)),
                    b: Some(text(b, words, &mut rng)),
                    candidates: vec![],
                }
            }
            Workload::Rank4 | Workload::Best16 => {
                let n = if w == Workload::Rank4 { 4 } else { 16 };
                let s = range(16, 256, &mut rng);
                let source = text(s, words, &mut rng);
                let candidates = (0..n)
                    .map(|_| {
                        let len = range(32, 412, &mut rng);
                        text(len, words, &mut rng)
                    })
                    .collect();
                Item { workload: w, source, a: None, b: None, candidates }
            }
        };
        planned += passes_of(w, &item);
        items.push(item);
    }
    items
}

/// The GEMM-rate product: `m × k` rows through a `[n, k]` weight.
const RATE_SHAPE: (usize, usize, usize) = (1024, 4096, 1024);

/// The products whose rates `pairrm bench` measures: f32 with the `gemm` crate (the yardstick), and
/// the engine's own kernel for its `--precision` on the same operands.
struct GemmRates {
    a: Vec<f32>,
    b: Vec<f32>,
    /// The engine's own kernel (none where the engine multiplies with the `gemm` crate).
    own: Option<LinearProduct>,
}

impl GemmRates {
    fn new(precision: Precision) -> anyhow::Result<Self> {
        let (m, n, k) = RATE_SHAPE;
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3).collect();
        let b: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3).collect();
        let product = LinearProduct::new(b.clone(), n, k, precision, None)?;
        let own = (product.kernel() != pairrm::model::GEMM_KERNEL).then_some(product);
        Ok(GemmRates { a, b, own })
    }

    /// The f32 rate, and the engine's own kernel's (with its name), each over about two seconds
    /// (interleaved, so that both see the same machine).
    fn measure(&self, engine: &Engine) -> (GemmRate, Option<GemmRate>, Option<&'static str>) {
        let (m, n, k) = RATE_SHAPE;
        let mut c = vec![0.0f32; m * n];
        let flop = 2.0 * (m * n * k) as f64;
        let mut f32_rate = GemmRate { best: 0.0, flop: 0.0, seconds: 0.0 };
        let mut own_rate = self.own.as_ref().map(|_| f32_rate);
        let start = Instant::now();
        engine.install(|| {
            let budget = if self.own.is_some() { 4.0 } else { 2.0 };
            while start.elapsed().as_secs_f64() < budget {
                f32_rate.time(flop, || pairrm::model::linear_product(m, n, k, &self.a, &self.b, &mut c));
                if let (Some(p), Some(r)) = (&self.own, own_rate.as_mut()) {
                    r.time(flop, || p.product(m, &self.a, &mut c));
                }
            }
        });
        (f32_rate, own_rate, self.own.as_ref().map(LinearProduct::kernel))
    }
}

/// A product's rate on this machine, from repeated timings.
#[derive(Clone, Copy)]
struct GemmRate {
    /// The fastest single product, in GFLOP/s: the machine's peak.
    best: f64,
    /// All the products' FLOPs over all their time, in GFLOP/s: what the machine sustained.
    flop: f64,
    seconds: f64,
}

impl GemmRate {
    /// Times one product of `flop` FLOPs.
    fn time(&mut self, flop: f64, product: impl FnOnce()) {
        let t = Instant::now();
        product();
        let seconds = t.elapsed().as_secs_f64();
        self.best = self.best.max(flop / seconds / 1e9);
        self.flop += flop;
        self.seconds += seconds;
    }

    /// Two measurements as one: the better peak, the pooled sustained rate.
    fn merge(self, other: GemmRate) -> Self {
        GemmRate {
            best: self.best.max(other.best),
            flop: self.flop + other.flop,
            seconds: self.seconds + other.seconds,
        }
    }

    fn sustained(&self) -> f64 {
        self.flop / self.seconds / 1e9
    }
}

/// One shape of `--gemm-sweep`.
#[derive(Serialize)]
struct SweepRow {
    rows: usize,
    n_out: usize,
    n_in: usize,
    f32_gflops: f64,
    f32_gflops_per_cpu_second: Option<f64>,
    kernel: &'static str,
    gflops: f64,
    gflops_per_cpu_second: Option<f64>,
}

/// A timed product, writing its output.
type Product<'a> = dyn Fn(&mut [f32]) + Sync + 'a;

/// `--gemm-sweep`: the linear layers' products at the encoder's shapes, f32 `gemm` against the
/// engine's kernel, best of five interleaved runs each (wall clock, and per CPU-second).
fn gemm_sweep(engine: &Engine, json: bool) -> anyhow::Result<crate::jsonl::Outcome> {
    let h = engine.model().config().hidden_size;
    let f = engine.model().config().intermediate_size;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(engine.threads()).build()?;
    let mut rows = vec![];
    for m in [640, 2048] {
        for (n, k) in [(h, h), (f, h), (h, f)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5).collect();
            let kernel = LinearProduct::new(w.clone(), n, k, engine.precision(), None)?;
            let products: [&Product; 2] =
                [&|out| pairrm::model::linear_product(m, n, k, &x, &w, out), &|out| kernel.product(m, &x, out)];
            let mut out = vec![0.0f32; m * n];
            let flop = 2.0 * (m * n * k) as f64;
            let mut best = [(0.0f64, None::<f64>); 2];
            pool.install(|| {
                for _ in 0..5 {
                    for (i, product) in products.iter().enumerate() {
                        let (t, cpu) = (Instant::now(), cpu_seconds());
                        product(&mut out);
                        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds().zip(cpu).map(|(b, a)| b - a));
                        best[i].0 = best[i].0.max(flop / wall / 1e9);
                        if let Some(c) = cpu.filter(|&c| c > 0.0) {
                            best[i].1 = Some(best[i].1.unwrap_or(0.0).max(flop / c / 1e9));
                        }
                    }
                }
            });
            rows.push(SweepRow {
                rows: m,
                n_out: n,
                n_in: k,
                f32_gflops: best[0].0,
                f32_gflops_per_cpu_second: best[0].1,
                kernel: kernel.kernel(),
                gflops: best[1].0,
                gflops_per_cpu_second: best[1].1,
            });
        }
    }
    let text = if json {
        let report = serde_json::json!({
            "cpu": cpu_name(),
            "threads": engine.threads(),
            "precision": engine.precision(),
            "shapes": rows,
        });
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        let mut out = String::new();
        let _ = writeln!(out, "{} threads · {} · precision {}", engine.threads(), cpu_name(), engine.precision());
        let _ = writeln!(
            out,
            "{:>6} {:>6} {:>6} {:>10} {:>12} {:>18} {:>10} {:>12} {:>7} {:>9}",
            "rows", "n_out", "n_in", "f32 GF/s", "per CPU-s", "kernel", "GF/s", "per CPU-s", "× wall", "× CPU-s"
        );
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
        for r in &rows {
            let per_cpu = r.gflops_per_cpu_second.zip(r.f32_gflops_per_cpu_second).map(|(a, b)| a / b);
            let _ = writeln!(
                out,
                "{:>6} {:>6} {:>6} {:>10.1} {:>12} {:>18} {:>10.1} {:>12} {:>7.2} {:>9}",
                r.rows,
                r.n_out,
                r.n_in,
                r.f32_gflops,
                opt(r.f32_gflops_per_cpu_second),
                r.kernel,
                r.gflops,
                opt(r.gflops_per_cpu_second),
                r.gflops / r.f32_gflops,
                per_cpu.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
            );
        }
        out
    };
    stdout::print(text.as_bytes()).context("writing the report")?;
    Ok(crate::jsonl::Outcome { failed: 0 })
}

/// CPU time of this process's live threads so far, from `/proc/self/task/*/schedstat` (time on
/// the CPU in nanoseconds: finer than `/proc/self/stat`'s ticks).
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Peak resident set size of this process (Linux `VmHWM`).
/// Resets the peak resident memory to the current one (Linux's `clear_refs` value 5); whether
/// it could. The memory freed so far is first handed back to the system: glibc keeps freed
/// blocks of the size of the GEMM-rate operands in its heaps, where they would count as resident.
fn reset_peak_rss() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The report as a table.
fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "model {} · {} threads · {} · precision {} · kernels {}",
        r.model, r.threads, r.cpu, r.precision, r.kernels
    );
    let _ = writeln!(
        out,
        "load {:.2} s (first pass {:.2} s) · weights {:.0} MB in memory ({:.0} MB as f32) · peak RSS {}",
        r.load_seconds,
        r.first_pass_seconds,
        r.weight_bytes as f64 / 1e6,
        r.f32_weight_bytes as f64 / 1e6,
        r.peak_rss_bytes
            .map(|b| format!("{:.0} MB ({:.2}× f32 weights)", b as f64 / 1e6, b as f64 / r.f32_weight_bytes as f64))
            .unwrap_or_else(|| "n/a".into())
    );
    if let (Some(p), Some(m)) = (r.gemm_peak_gflops, r.gemm_sustained_gflops) {
        let _ = writeln!(
            out,
            "GEMM peak {p:.1} GFLOP/s, sustained {m:.1} GFLOP/s (f32 1024×4096×1024, before and after the workloads)"
        );
    }
    if let Some(g) = &r.precision_gemm {
        let _ = writeln!(
            out,
            "{} peak {:.1} GFLOP/s, sustained {:.1} GFLOP/s on the same product ({:.2}× f32 sustained)",
            g.kernel,
            g.peak_gflops,
            g.sustained_gflops,
            r.gemm_sustained_gflops.map_or(f64::NAN, |f| g.sustained_gflops / f)
        );
    }
    let _ = writeln!(
        out,
        "{:<8} {:>6} {:>7} {:>8} {:>9} {:>10} {:>12} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10}",
        "workload",
        "items",
        "passes",
        "tokens",
        "seconds",
        "passes/s",
        "passes/CPU-s",
        "tokens/s",
        "GFLOP/s",
        "of peak",
        "executed",
        "of peak",
        "of sust."
    );
    let percent = |x: f64, of: Option<f64>| of.map(|p| format!("{:.0}%", 100.0 * x / p)).unwrap_or_default();
    for w in &r.workloads {
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>7} {:>8} {:>9.2} {:>10.3} {:>12} {:>10.1} {:>10.1} {:>8} {:>10.1} {:>8} {:>10}",
            format!("{:?}", w.workload).to_lowercase(),
            w.items,
            w.passes,
            w.tokens,
            w.seconds,
            w.passes_per_second,
            w.passes_per_cpu_second.map(|p| format!("{p:.3}")).unwrap_or_default(),
            w.tokens_per_second,
            w.nominal_gflops,
            percent(w.nominal_gflops, r.gemm_peak_gflops),
            w.executed_gflops,
            percent(w.executed_gflops, r.gemm_peak_gflops),
            percent(w.nominal_gflops, r.gemm_sustained_gflops)
        );
    }
    out
}
