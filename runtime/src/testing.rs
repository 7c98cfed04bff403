//! Seeded randomness and edge-value generators for tests and benches (not for secrets).
//!
//! Every test draws from [`test_rng`], seeded from `VEIL_TEST_SEED` (a u64) or a fixed default,
//! and the seed is printed to stderr so a failure can be replayed with the same inputs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Seed used when `VEIL_TEST_SEED` is unset ("veil" in ASCII).
pub const DEFAULT_TEST_SEED: u64 = 0x7665_696c;

/// Ring edge values: 0, 1, −1, −2^63 (= 2^63) and 2^63 − 1.
pub const RING_EDGES: [u64; 5] = [0, 1, u64::MAX, 1 << 63, (1 << 63) - 1];

/// Deterministic test RNG from `VEIL_TEST_SEED` (u64, decimal or 0x-hex) or [`DEFAULT_TEST_SEED`].
///
/// Prints the seed to stderr (shown by the test harness on failure). Panics if the variable is
/// set but not a u64, so a typo never silently falls back to the default.
pub fn test_rng() -> ChaCha20Rng {
    let seed = match std::env::var("VEIL_TEST_SEED") {
        Ok(s) => parse_seed(&s).unwrap_or_else(|| panic!("VEIL_TEST_SEED={s:?} is not a u64")),
        Err(_) => DEFAULT_TEST_SEED,
    };
    eprintln!("test rng: VEIL_TEST_SEED={seed}");
    ChaCha20Rng::seed_from_u64(seed)
}

fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `n` uniform ring words whose first `min(n, 5)` positions are [`RING_EDGES`].
pub fn ring_vec_with_edges<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).map(|_| rng.random()).collect();
    for (x, e) in v.iter_mut().zip(RING_EDGES) {
        *x = e;
    }
    v
}

/// `n` fixed-point encodings `round(x · 2^f)` (two's complement) of reals `x` in
/// `[−max_abs, max_abs]`; the first positions are 0, max_abs, −max_abs, −2^−f, −0.5 and
/// −1 (those within range, as `n` allows), the rest uniform in the interval.
///
/// Panics unless `max_abs` is finite, non-negative and `max_abs · 2^f < 2^62`.
pub fn fixed_vec<R: Rng + ?Sized>(rng: &mut R, n: usize, f: u32, max_abs: f64) -> Vec<u64> {
    let scale = (f as f64).exp2();
    assert!(
        max_abs.is_finite() && max_abs >= 0.0 && max_abs * scale < 2f64.powi(62),
        "fixed_vec: max_abs · 2^f must be finite and below 2^62"
    );
    let encode = |x: f64| (x * scale).round() as i64 as u64;
    let edges = [0.0, max_abs, -max_abs, -1.0 / scale, -0.5, -1.0];
    let edges = edges.into_iter().filter(|e| e.abs() <= max_abs);
    let mut v: Vec<u64> = edges.map(encode).take(n).collect();
    while v.len() < n {
        let x = if max_abs > 0.0 {
            rng.random_range(-max_abs..=max_abs)
        } else {
            0.0
        };
        v.push(encode(x));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_place_edges_and_respect_bounds() {
        let mut rng = test_rng();
        assert_eq!(ring_vec_with_edges(&mut rng, 0), Vec::<u64>::new());
        assert_eq!(ring_vec_with_edges(&mut rng, 3), RING_EDGES[..3]);
        let v = ring_vec_with_edges(&mut rng, 100);
        assert_eq!(v[..5], RING_EDGES);

        let v = fixed_vec(&mut rng, 1000, 16, 8.0);
        assert_eq!(
            v[..6],
            [
                0,
                8 << 16,
                (-8i64 << 16) as u64,
                u64::MAX,
                (-(1i64 << 15)) as u64,
                (-1i64 << 16) as u64
            ]
        );
        assert!(v.iter().all(|&x| (x as i64).unsigned_abs() <= 8 << 16));
        assert!(v.iter().any(|&x| (x as i64) < 0) && v.iter().any(|&x| (x as i64) > 0));
        // Small range drops the out-of-range edges.
        assert_eq!(
            fixed_vec(&mut rng, 4, 4, 0.25)[..4],
            [0, 4, (-4i64) as u64, u64::MAX]
        );
        assert_eq!(parse_seed("0x10"), Some(16));
        assert_eq!(parse_seed(" 42 "), Some(42));
        assert_eq!(parse_seed("x"), None);
    }
}
