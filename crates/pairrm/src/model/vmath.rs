//! Vectorizable elementwise math: `exp` and the erf-form GELU, written as straight-line f32
//! arithmetic (no calls, no branches) so that the compiler turns the loops over them into SIMD
//! code; the hot loops are compiled a second time for AVX2+FMA and picked at run time.

/// `e^x` for f32 with `x ≤ 88` (larger inputs give `e^88`), relative error below 3e-7 (about
/// 1–2 ulp); 0 below about -87.3 (subnormal results are flushed). The encoder only needs `x ≤ 0`.
///
/// Range reduction `x = n·ln2 + r` with `|r| ≤ ln2/2` (Cody–Waite split of ln2), `e^r` by its Taylor
/// polynomial to degree 7 (truncation error below 6e-9 relatively), scaling by `2^n` through the
/// exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // ln2 rounded to 16 significant bits: n·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6; // ln2 - LN2_HI
                                        // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^n from the integer in t's low bits (n in -126..=127 after the clamp).
    let n_int = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    let y = p * scale;
    // x = -87.3 can land on n = -126 with p < 1: keep results below the normal range at 0.
    if x <= -87.3 {
        0.0
    } else {
        y
    }
}

/// `erf(z)` by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7): the same formula the
/// reference's CPU GELU kernel (PyTorch's vectorized `erf`) evaluates.
#[inline(always)]
pub fn erf(z: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let a = z.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(z)
}

/// GELU, erf form: `x/2 · (1 + erf(x/√2))`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Defines `pub fn $name($args) -> $ret` that runs `$body` compiled for AVX2+FMA when the CPU has
/// them, and for the baseline target otherwise. Both compile the same code; only the vector width
/// differs.
macro_rules! dispatch {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        assert!(worst < 3e-7, "max relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn erf_and_gelu_are_close_to_exact() {
        let mut worst = 0.0f64;
        let mut x = -10.0f32;
        while x < 10.0 {
            let want = libm::erf(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
            let g = 0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((gelu(x) as f64 - g).abs() <= 2e-7 * (1.0 + x.abs() as f64), "gelu({x})");
            x += 0.000_97;
        }
        // 1.5e-7 from the formula, the rest from evaluating it in f32.
        assert!(worst < 5e-7, "max absolute erf error {worst:e}");
        assert!(erf(0.0).abs() < 1e-7);
        assert_eq!(gelu(0.0), 0.0);
    }
}
