//! Fixed-point codec: reals ↔ words of Z_2^64.
//!
//! A real `x` with `f` fractional bits is stored as `v = round(x · 2^f)`, read as a signed
//! (two's complement) 64-bit integer. Rounding is to nearest, ties away from zero
//! ([`f64::round`]). [`encode`] refuses non-finite inputs and any `|v| ≥ 2^MAX_MAGNITUDE_BITS`.
//!
//! # Error budget
//! Values must stay **well below** 2^[`MAX_MAGNITUDE_BITS`]: the limit only guarantees that an
//! encoded value does not wrap, nothing more.
//!
//! - A product `Fixed(f) · Fixed(f)` carries `2f` fractional bits before it is rescaled, so the
//!   plaintext product needs `2f + m_a + m_b` bits when `|a| < 2^m_a` and `|b| < 2^m_b`, and a
//!   dot product of `n` terms needs `⌈log2 n⌉` more.
//! - Secret values are rescaled by probabilistic truncation (ABY3 / SecureML). Truncating a
//!   secret ring value `x` with `|x| < 2^ℓx` returns `⌊x / 2^d⌋` or `⌊x / 2^d⌋ + 1` (one ulp),
//!   except with probability at most `2^(ℓx + 1 − 64)` per element, in which case the result is
//!   wrong by about `2^(64 − d)` (garbage, not a small error).
//!
//! Worked example, `f = 16`: two values of magnitude `< 2^7` encode to words of magnitude
//! `< 2^(7+16) = 2^23`; their product is below `2^(14 + 32) = 2^46`, so `ℓx = 46` and the
//! truncation back to 16 fractional bits fails with probability at most
//! `2^(46 + 1 − 64) = 2^-17 ≈ 7.6·10^-6` per element — about 7.6 expected failures per million
//! products. Keeping magnitudes below `2^4` gives `ℓx = 40` and `2^-23 ≈ 1.2·10^-7`; a dot
//! product of 1024 such terms adds 10 bits (`ℓx = 50`, `2^-13`). Size `f` and the magnitudes
//! of your data with this budget in mind.

use crate::types::FracBits;

/// Encoded values must satisfy `|v| < 2^MAX_MAGNITUDE_BITS`; also the largest allowed `f`.
pub const MAX_MAGNITUDE_BITS: u32 = 62;

/// Why a real could not be encoded. Messages never contain the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixedError {
    /// NaN or ±∞.
    #[error("value is not finite")]
    NotFinite,
    /// `|round(x · 2^f)| ≥ 2^62`.
    #[error(
        "value out of range for {frac_bits} fractional bits (|x|·2^f must be < 2^{MAX_MAGNITUDE_BITS})"
    )]
    OutOfRange {
        /// The `f` asked for.
        frac_bits: u32,
    },
    /// `f > 62`.
    #[error("{frac_bits} fractional bits exceed the maximum of {MAX_MAGNITUDE_BITS}")]
    FracBitsTooLarge {
        /// The `f` asked for.
        frac_bits: u32,
    },
}

/// Encodes `x` as `round(x · 2^f)` (ties away from zero), two's complement in a u64.
pub fn encode(x: f64, f: FracBits) -> Result<u64, FixedError> {
    if f.0 > MAX_MAGNITUDE_BITS {
        return Err(FixedError::FracBitsTooLarge { frac_bits: f.0 });
    }
    if !x.is_finite() {
        return Err(FixedError::NotFinite);
    }
    // f ≤ 62: both powers are exact in f64.
    let scaled = (x * 2f64.powi(f.0 as i32)).round();
    if !scaled.is_finite() || scaled.abs() >= 2f64.powi(MAX_MAGNITUDE_BITS as i32) {
        return Err(FixedError::OutOfRange { frac_bits: f.0 });
    }
    Ok(from_signed(scaled as i64))
}

/// Decodes a word as the signed value `v / 2^f`.
pub fn decode(v: u64, f: FracBits) -> f64 {
    // Clamp keeps the exponent cast in range; any f ≥ 1100 underflows to 0 anyway.
    let e = f.0.min(1100) as i32;
    to_signed(v) as f64 * 2f64.powi(-e)
}

/// [`encode`] for every element; the first failure is returned.
pub fn encode_slice(xs: &[f64], f: FracBits) -> Result<Vec<u64>, FixedError> {
    xs.iter().map(|&x| encode(x, f)).collect()
}

/// [`decode`] for every element.
pub fn decode_slice(vs: &[u64], f: FracBits) -> Vec<f64> {
    vs.iter().map(|&v| decode(v, f)).collect()
}

/// The word read as a signed two's complement integer.
pub fn to_signed(v: u64) -> i64 {
    v as i64
}

/// A signed integer as its two's complement word.
pub fn from_signed(x: i64) -> u64 {
    x as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const F16: FracBits = FracBits(16);

    #[test]
    fn round_trip_exact_values() {
        for x in [0.0, 1.0, -1.0, 0.5, -1.5, 3.25, -1234.0625, 2f64.powi(-16)] {
            let v = encode(x, F16).unwrap();
            assert_eq!(decode(v, F16), x);
        }
        assert_eq!(encode(-1.0, F16).unwrap(), (-65536i64) as u64);
        assert_eq!(encode(1.0, FracBits(0)).unwrap(), 1);
    }

    #[test]
    fn rounds_to_nearest_ties_away() {
        let ulp = 2f64.powi(-16);
        assert_eq!(encode(0.4 * ulp, F16).unwrap(), 0);
        assert_eq!(encode(0.6 * ulp, F16).unwrap(), 1);
        assert_eq!(encode(0.5 * ulp, F16).unwrap(), 1);
        assert_eq!(encode(-0.5 * ulp, F16).unwrap(), u64::MAX);
        let x = 0.1;
        assert!((decode(encode(x, F16).unwrap(), F16) - x).abs() <= ulp / 2.0);
    }

    #[test]
    fn range_errors() {
        assert_eq!(encode(f64::NAN, F16), Err(FixedError::NotFinite));
        assert_eq!(encode(f64::INFINITY, F16), Err(FixedError::NotFinite));
        assert_eq!(encode(f64::NEG_INFINITY, F16), Err(FixedError::NotFinite));
        let limit = 2f64.powi(62 - 16);
        assert_eq!(
            encode(limit, F16),
            Err(FixedError::OutOfRange { frac_bits: 16 })
        );
        assert_eq!(
            encode(-limit, F16),
            Err(FixedError::OutOfRange { frac_bits: 16 })
        );
        assert!(encode(limit / 2.0, F16).is_ok());
        assert_eq!(
            encode(1e300, F16),
            Err(FixedError::OutOfRange { frac_bits: 16 })
        );
        assert_eq!(
            encode(0.0, FracBits(63)),
            Err(FixedError::FracBitsTooLarge { frac_bits: 63 })
        );
        assert!(encode(1.0, FracBits(62)).is_err());
        assert!(encode(0.5, FracBits(62)).is_ok());
    }

    #[test]
    fn slices_and_signed() {
        let xs = [1.0, -2.5, 0.0];
        let vs = encode_slice(&xs, F16).unwrap();
        assert_eq!(decode_slice(&vs, F16), xs);
        assert_eq!(
            encode_slice(&[1.0, f64::NAN], F16),
            Err(FixedError::NotFinite)
        );
        assert_eq!(to_signed(u64::MAX), -1);
        assert_eq!(from_signed(-2), u64::MAX - 1);
        assert_eq!(decode(1, FracBits(u32::MAX)), 0.0);
    }
}
