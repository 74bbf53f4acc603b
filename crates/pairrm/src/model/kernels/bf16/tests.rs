use super::*;

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Values of very different magnitudes, so that the order of the additions shows in the bits.
fn values(n: usize, seed: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = lcg(seed);
            v * [1.0, 1e-3, 37.0, 0.25, 1e3][i % 5]
        })
        .collect()
}

fn widen(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// The arithmetic of the module documentation, written out on row-major data.
fn reference(m: usize, n: usize, k: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
    let get = |v: &[f32], row: usize, i: usize| if i < k { widen(round(v[row * k + i])) } else { 0.0 };
    let mut out = vec![0.0f32; m * n];
    for r in 0..m {
        for c in 0..n {
            let mut s = 0.0f32;
            for p in 0..k.div_ceil(2) {
                s = get(x, r, 2 * p + 1).mul_add(get(w, c, 2 * p + 1), s);
                s = get(x, r, 2 * p).mul_add(get(w, c, 2 * p), s);
            }
            out[r * n + c] = s;
        }
    }
    out
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn rounding_is_nearest_even_and_flushes_subnormals() {
    assert_eq!(round(1.0), 0x3f80);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
    assert_eq!(round(1.0 + 1.0 / 256.0), 0x3f80);
    // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
    assert_eq!(round(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(round(1.0 + 1.0 / 256.0 + 1.0 / 65536.0), 0x3f81);
    assert_eq!(round(-2.5), 0xc020);
    assert_eq!(round(f32::MAX), 0x7f80, "overflow rounds to infinity");
    assert_eq!(round(f32::INFINITY), 0x7f80);
    assert_eq!(round(f32::NEG_INFINITY), 0xff80);
    assert_eq!(round(f32::from_bits(1)), 0, "subnormal to +0");
    assert_eq!(round(-f32::from_bits(0x7f_ffff)), 0x8000, "subnormal to -0");
    assert_eq!(round(f32::MIN_POSITIVE), 0x0080);
    assert!(widen(round(f32::NAN)).is_nan());
    assert!(widen(round(f32::from_bits(0x7f80_0001))).is_nan(), "a NaN whose top bits look infinite");
    // Against the `half` crate (same rounding) on normal values.
    let mut s = 3;
    for v in values(10_000, &mut s) {
        assert_eq!(round(v), half::bf16::from_f32(v).to_bits(), "{v}");
    }
}

#[test]
fn every_kernel_computes_the_documented_arithmetic() {
    let mut s = 11;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    for &(m, n, k) in
        &[(1, 1, 1), (3, 17, 5), (13, 32, 64), (25, 48, 300), (7, 100, 257), (40, 64, 2), (97, 300, 40), (13, 33, 4097)]
    {
        let x = values(m * k, &mut s);
        let w = values(n * k, &mut s);
        let want = reference(m, n, k, &x, &w);
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let packed = PackedBf16::with_kernel(&w, n, k, kernel);
            let mut got = vec![f32::NAN; m * n];
            pool.install(|| packed.product(m, &x, &mut got));
            assert!(same_bits(&got, &want), "{} {m}×{n}×{k}", kernel.name());
        }
    }
}

/// Every row of a product equals, bit for bit, the same row computed in any other batch, on any
/// number of threads.
#[test]
fn rows_do_not_depend_on_the_batch_or_threads() {
    let mut s = 5;
    // k > 2048: two depth chunks.
    let (n, k, big) = (80, 2101, 150);
    let x = values(big * k, &mut s);
    let w = values(n * k, &mut s);
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let packed = PackedBf16::with_kernel(&w, n, k, kernel);
        let mut full = vec![0.0; big * n];
        packed.product(big, &x, &mut full);
        for threads in [1, 2, 5] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for &(start, m) in &[(0, 1), (3, 2), (5, 13), (10, 97), (40, 110), (1, 149)] {
                let mut part = vec![0.0; m * n];
                pool.install(|| packed.product(m, &x[start * k..(start + m) * k], &mut part));
                assert!(
                    same_bits(&part, &full[start * n..(start + m) * n]),
                    "{}: rows {start}..{} on {threads} threads differ from the full product",
                    kernel.name(),
                    start + m
                );
            }
        }
    }
}

#[test]
fn empty_shapes() {
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let packed = PackedBf16::with_kernel(&[], 3, 0, kernel);
        let mut out = vec![f32::NAN; 6];
        packed.product(2, &[], &mut out);
        assert_eq!(out, vec![0.0; 6]);
        let packed = PackedBf16::with_kernel(&[], 0, 4, kernel);
        packed.product(2, &[0.0; 8], &mut []);
    }
}

#[test]
fn kernels_follow_the_level() {
    assert_eq!(Kernel::best(KernelLevel::Scalar), Kernel::Scalar);
    let best = Kernel::best(KernelLevel::Avx512);
    assert!(best.is_supported());
    if cpu().avx512_bf16 {
        assert_eq!(best, Kernel::Avx512Bf16);
    }
    if cpu().avx2_fma {
        assert_eq!(Kernel::best(KernelLevel::Avx2), Kernel::Avx2);
    }
}

/// `vdpbf16ps` is the documented chain: the odd product added first, each addition rounded (on
/// normal values, where it does not flush).
#[cfg(target_arch = "x86_64")]
#[test]
fn vdpbf16ps_is_the_documented_chain() {
    if !cpu().avx512_bf16 {
        return;
    }
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn dot(acc: &[f32; 16], a: &[u32; 16], b: &[u32; 16]) -> [f32; 16] {
        use std::arch::x86_64::*;
        // SAFETY: 16 lanes read and written; the CPU has AVX512-BF16 (checked by the caller).
        unsafe {
            let a: __m512bh = std::mem::transmute(_mm512_loadu_si512(a.as_ptr().cast()));
            let b: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.as_ptr().cast()));
            let mut out = [0.0f32; 16];
            _mm512_storeu_ps(out.as_mut_ptr(), _mm512_dpbf16_ps(_mm512_loadu_ps(acc.as_ptr()), a, b));
            out
        }
    }
    let mut s = 99;
    let mut differs_from_even_first = false;
    for _ in 0..2000 {
        let acc: [f32; 16] = std::array::from_fn(|_| lcg(&mut s) * 1e3);
        let mut pair = || (round(lcg(&mut s) * 50.0) as u32) | (round(lcg(&mut s) * 0.02) as u32) << 16;
        let a: [u32; 16] = std::array::from_fn(|_| pair());
        let b: [u32; 16] = std::array::from_fn(|_| pair());
        // SAFETY: the CPU has AVX512-BF16 (checked above).
        let got = unsafe { dot(&acc, &a, &b) };
        for j in 0..16 {
            let (ae, ao, be, bo) =
                (widen(a[j] as u16), widen((a[j] >> 16) as u16), widen(b[j] as u16), widen((b[j] >> 16) as u16));
            let want = ae.mul_add(be, ao.mul_add(bo, acc[j]));
            assert_eq!(got[j].to_bits(), want.to_bits(), "lane {j}: {acc:?} {a:?} {b:?}");
            differs_from_even_first |= want != ao.mul_add(bo, ae.mul_add(be, acc[j]));
        }
    }
    assert!(differs_from_even_first, "the data does not tell the orders apart");
}
