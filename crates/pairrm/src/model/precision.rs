//! The arithmetic tier a model computes in.

/// The arithmetic of the linear layers (the products that dominate the work).
///
/// `F32` is exact: the reference's numbers within 1e-5. The reduced tiers trade a measured,
/// bounded deviation for speed; what stays f32 in each is documented in `docs/precision.md`.
/// Every tier gives each pair the same bits whatever the batch, its order or the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 arithmetic throughout (weights stored as `--dtype` says).
    #[default]
    F32,
    /// Weights held in bfloat16, the linear layers' inputs rounded to bfloat16 (nearest, ties to
    /// even), products accumulated in f32.
    Bf16,
    /// Weights in int8 per output channel, inputs quantized per token on the fly, products
    /// accumulated in i32.
    Int8,
}

impl Precision {
    /// Every tier, exact first.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Int8];

    /// The tier's name as the flags spell it (`f32`, `bf16`, `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "int8" | "i8" => Ok(Precision::Int8),
            other => Err(format!("unknown precision {other:?} (expected f32, bf16 or int8)")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!(Precision::default(), Precision::F32);
        let e = "f16".parse::<Precision>().unwrap_err();
        assert!(e.contains("f32, bf16 or int8"), "{e}");
    }
}
