//! The int8 GEMM rate against the f32 GEMM the engine uses, at the encoder's shapes. A
//! measurement, not a test: run it with
//! `cargo test --release -p pairrm --lib int8_gemm_rate -- --ignored --nocapture`
//! (`PAIRRM_BENCH_THREADS`, default 2; `PAIRRM_BENCH_REPS`, default 5).

use std::time::Instant;

use super::{Level, PackedInt8};
use crate::model::gemm::{linear, Threads};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The fastest of `reps` runs (after one warm-up), in seconds.
fn fastest(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn int8_gemm_rate() {
    let threads = env("PAIRRM_BENCH_THREADS", 2);
    let reps = env("PAIRRM_BENCH_REPS", 5);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let levels: Vec<Level> = Level::ALL.into_iter().filter(|l| l.is_supported() && *l != Level::Scalar).collect();
    println!("threads {threads}, fastest of {reps}; GOP/s (multiply-add = 2 ops) and ratio to f32");
    let mut seed = 1u64;
    let mut value = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    for m in [650, 2048] {
        for (n, k) in [(1024, 1024), (4096, 1024), (1024, 4096)] {
            let x: Vec<f32> = (0..m * k).map(|_| value()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| value() * 0.05).collect();
            let packed = PackedInt8::new("w", &w, n, k, Level::Scalar).unwrap();
            let mut out = vec![0.0f32; m * n];
            let ops = 2.0 * (m * n * k) as f64;
            let f32_rate = ops / pool.install(|| fastest(reps, || linear(m, n, k, &x, &w, &mut out, Threads::Pool)));
            let mut line = format!("m={m:5} n={n:5} k={k:5}  f32 gemm {:6.1}", f32_rate / 1e9);
            for &level in &levels {
                let rate = ops / pool.install(|| fastest(reps, || packed.product_with(level, m, &x, &mut out)));
                line += &format!("  {} {:6.1} ({:.2}x)", level.name(), rate / 1e9, rate / f32_rate);
            }
            println!("{line}");
        }
    }
}
