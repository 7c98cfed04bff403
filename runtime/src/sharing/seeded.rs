//! Seed-compressed replicated sharing, for clients sending inputs to the three nodes.
//!
//! Construction: as [`share3`](super::share3) — x = x_0 + x_1 + x_2 (mod 2^64), P_i holds
//! (x_i, x_{i+1}) — but x_0 and x_1 are the ChaCha20 keystreams of two fresh 32-byte seeds
//! s_0, s_1 (little-endian words), and x_2 = x − x_0 − x_1. A client then sends P0 the two
//! seeds, P1 s_1 and x_2, and P2 x_2 and s_0: 2n words on the wire instead of 6n, and each node
//! expands the seeds it got with [`expand`]. (The standard PRG compression of replicated
//! shares; e.g. Araki et al., CCS 2016, §2.2, compress correlated randomness the same way.)
//!
//! Security: each node receives exactly its two components, one or both as a seed that
//! determines nothing else. With ChaCha20 as a PRG and the seeds uniform (a CSPRNG), x_0 and
//! x_1 are indistinguishable from uniform, so any two components are jointly indistinguishable
//! from uniform and independent of x, as with `share3`; the third component is what hides x
//! from each node. A seed must never be reused across values.

use super::replicated::{Shares, fill_u64};
use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use std::fmt;

/// Length of a component seed.
pub const SEED_BYTES: usize = 32;

/// A sharing with components 0 and 1 given by seeds; `Debug` is redacted.
pub struct SeededShares {
    /// Seed of x_0 (P0's own component, P2's next).
    pub seed0: [u8; SEED_BYTES],
    /// Seed of x_1 (P0's next component, P1's own).
    pub seed1: [u8; SEED_BYTES],
    /// x_2 = x − x_0 − x_1 (P1's next component, P2's own).
    pub x2: Vec<u64>,
}

impl fmt::Debug for SeededShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SeededShares {{ <{} elements redacted> }}",
            self.x2.len()
        )
    }
}

/// The `n` words a component seed stands for (ChaCha20 keystream, little-endian words).
pub fn expand(seed: &[u8; SEED_BYTES], n: usize) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let mut out = vec![0u64; n];
    fill_u64(&mut rng, &mut out);
    out
}

/// Share `values` with fresh seeds from `rng` (a CSPRNG).
pub fn share3_seeded<R: rand::CryptoRng + rand::RngCore>(
    values: &[u64],
    rng: &mut R,
) -> SeededShares {
    let mut seed0 = [0u8; SEED_BYTES];
    let mut seed1 = [0u8; SEED_BYTES];
    rng.fill_bytes(&mut seed0);
    rng.fill_bytes(&mut seed1);
    let (x0, x1) = (expand(&seed0, values.len()), expand(&seed1, values.len()));
    let x2 = values
        .iter()
        .zip(x0.iter().zip(&x1))
        .map(|(v, (a, b))| v.wrapping_sub(*a).wrapping_sub(*b))
        .collect();
    SeededShares { seed0, seed1, x2 }
}

impl SeededShares {
    /// The three parties' shares, seeds expanded (what the nodes hold after expansion).
    pub fn shares(&self) -> [Shares; 3] {
        let n = self.x2.len();
        let (x0, x1) = (expand(&self.seed0, n), expand(&self.seed1, n));
        [
            Shares {
                own: x0.clone(),
                next: x1.clone(),
            },
            Shares {
                own: x1,
                next: self.x2.clone(),
            },
            Shares {
                own: self.x2.clone(),
                next: x0,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::reconstruct;
    use crate::testing::test_rng;
    use rand::Rng;

    #[test]
    fn seeded_shares_reconstruct_and_expand_deterministically() {
        let mut rng = test_rng();
        for n in [0, 1, 63, 64, 65, 1000] {
            let x: Vec<u64> = (0..n).map(|_| rng.random()).collect();
            let s = share3_seeded(&x, &mut rng);
            assert_eq!(reconstruct(&s.shares()).unwrap(), x, "n = {n}");
            assert_eq!(expand(&s.seed0, n), expand(&s.seed0, n));
        }
        let s = share3_seeded(&[7; 100], &mut rng);
        assert_ne!(s.seed0, s.seed1);
        assert_ne!(expand(&s.seed0, 100), expand(&s.seed1, 100));
        // A prefix of a longer expansion: the words do not depend on the length asked for.
        assert_eq!(expand(&s.seed0, 10), expand(&s.seed0, 100)[..10]);
        assert_eq!(format!("{s:?}"), "SeededShares { <100 elements redacted> }");
    }
}
