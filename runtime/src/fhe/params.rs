//! GLWE parameters of the retrieval path and the noise budget that decides which databases
//! and queries they can serve exactly.
//!
//! Parameters: k = 1, N = 2048, q = 2^64, binary secret, noise TUniform(2^17), Δ = 2^37.
//! These are the GLWE parameters of tfhe's default 128-bit shortint parameter sets
//! (`V1_x_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`: glwe_dimension 1,
//! polynomial_size 2048, glwe_noise_distribution TUniform(17), native modulus), which Zama
//! rates at ≥ 128 bits with the lattice estimator (Albrecht, Player, Scott 2015) in its
//! parameter-generation procedure; we use the same ring, secret distribution and noise.
//!
//! Noise. A server answer for row r is Σ_j D_rj·b_j with b_j = (A·S)_j + Δ·v_j + e_j, so after
//! removing the hint term the client holds Δ·⟨D_r, v⟩ + Σ_j D_rj·e_j. The e_j are independent
//! TUniform(2^17) (variance σ² = (2^35 + 1)/3, σ ≈ 75,674), so the noise has standard
//! deviation σ·‖D_r‖₂ = σ·√L·rms(D_r). Decoding rounds to the nearest multiple of Δ, which is
//! exact while |noise| < Δ/2; we require the worst row to keep a 13σ margin
//! (failure probability < 2^-120 per entry by the Gaussian tail of the sum). The message must
//! also fit the signed range: a query with at most `support` non-zero entries bounded by
//! `bound` gives |⟨D_r, v⟩| ≤ max|D_r|·support·bound, which must stay below 2^63 / Δ = 2^26.

use super::error::{FheError, Result};

/// Polynomial size N of the GLWE ring Z_q[X]/(X^N + 1).
pub const POLY_SIZE: usize = 2048;
/// GLWE dimension k (one mask polynomial per ciphertext).
pub const GLWE_DIMENSION: usize = 1;
/// log2 of the scaling factor Δ that places messages in the top bits.
pub const LOG_DELTA: u32 = 37;
/// Δ = 2^37.
pub const DELTA: u64 = 1 << LOG_DELTA;
/// log2 of the TUniform noise bound: e ∈ [-2^17, 2^17].
pub const NOISE_BOUND_LOG2: u32 = 17;
/// Required margin, in standard deviations, between the noise and Δ/2.
pub const MARGIN_SIGMAS: f64 = 13.0;
/// Largest |⟨D_r, v⟩| that decodes without wrapping: 2^63 / Δ.
pub const MESSAGE_LIMIT: u64 = 1 << (63 - LOG_DELTA);

/// Standard deviation σ of one TUniform(2^b) sample: sqrt((2^(2b+1) + 1) / 6).
pub fn noise_sigma() -> f64 {
    let b = f64::from(NOISE_BOUND_LOG2);
    ((2f64.powf(2.0 * b + 1.0) + 1.0) / 6.0).sqrt()
}

/// Largest row norm ‖D_r‖₂ the parameters decode exactly with the 13σ margin.
pub fn max_row_l2() -> f64 {
    (DELTA as f64 / 2.0) / (MARGIN_SIGMAS * noise_sigma())
}

/// Checks that a database whose worst row has norm `max_row_l2` and largest entry `max_entry`
/// can be queried with vectors of at most `support` non-zero entries, each at most
/// `query_bound` in absolute value. Errors name the bound that fails.
pub fn check_budget(
    max_row_l2: f64,
    max_entry: u64,
    support: usize,
    query_bound: u32,
) -> Result<()> {
    let limit = self::max_row_l2();
    if max_row_l2 > limit {
        return Err(FheError::Budget(format!(
            "a row has norm {max_row_l2:.0} > {limit:.0}: noise std {:.3e} leaves less than a \
             {MARGIN_SIGMAS}σ margin below Δ/2 = 2^{}; split the database or lower its values",
            max_row_l2 * noise_sigma(),
            LOG_DELTA - 1
        )));
    }
    let worst = u128::from(max_entry) * support as u128 * u128::from(query_bound);
    if worst >= u128::from(MESSAGE_LIMIT) {
        return Err(FheError::Budget(format!(
            "a result could reach {worst}, beyond 2^{} (largest entry {max_entry} × {support} \
             non-zero query entries × query bound {query_bound})",
            63 - LOG_DELTA
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_matches_tuniform_17() {
        assert!((noise_sigma() - 75_674.0).abs() < 1.0, "{}", noise_sigma());
    }

    #[test]
    fn budget_admits_design_case_and_refuses_beyond() {
        // 786,432 coefficients of rms 21 (a 384-dim int8 corpus of 2048 clusters): fits.
        let l2 = 21.0 * (786_432f64).sqrt();
        check_budget(l2, 127, 384, 127).unwrap();
        // All-127 rows of the same length do not.
        let l2 = 127.0 * (786_432f64).sqrt();
        assert!(matches!(
            check_budget(l2, 127, 1, 1),
            Err(FheError::Budget(_))
        ));
        // Message overflow: 2^26 / 127² + 1 non-zero entries of 127 against a 127 query.
        let support = (MESSAGE_LIMIT / (127 * 127)) as usize + 1;
        assert!(matches!(
            check_budget(1.0, 127, support, 127),
            Err(FheError::Budget(_))
        ));
        check_budget(1.0, 127, support - 1, 127).unwrap();
    }
}
