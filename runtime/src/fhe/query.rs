//! The client side of a scan: encrypt a query vector under a fresh GLWE secret, then decode the
//! server's answer with the hint.
//!
//! Security model: the server sees only GLWE bodies b = a·s + Δ·v + e under a binary secret s
//! drawn for this query alone (tfhe's CSPRNG seeded from the OS / RDSEED), with public masks a.
//! Under decision-RLWE these bodies are indistinguishable from uniform, so the server learns
//! nothing about v — not which cluster, not which passage. A secret must never encrypt two
//! queries against the same masks (the difference of two bodies would be Δ·(v − v') + small):
//! [`encrypt`] draws a new key every call and [`PendingQuery::decode`] consumes it, so the API
//! offers no way to reuse one. No integrity: a lying server can make the client decode garbage.

use super::db::{DbId, DbShape, EncryptedQuery, Hint};
use super::error::{FheError, Result};
use super::masks::seeded_list;
use super::params::{DELTA, GLWE_DIMENSION, LOG_DELTA, NOISE_BOUND_LOG2, POLY_SIZE};
use tfhe::core_crypto::prelude::*;
use zeroize::Zeroizing;

/// A query waiting for its answer: holds the one-time secret key (wiped on drop).
pub struct PendingQuery {
    db: DbId,
    rows: usize,
    /// The binary secret s, reversed: key_rev[i] = s[N−1−i], so ⟨H_r, key_rev⟩ is
    /// coefficient N−1 of H_r·s.
    key_rev: Zeroizing<Vec<u64>>,
}

impl std::fmt::Debug for PendingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingQuery")
            .field("db", &self.db)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// Encrypts `v` (one entry per logical column, |v_j| ≤ the database's query bound) under a
/// freshly generated secret. Returns the pending query (keep it) and the ciphertext (send it).
pub fn encrypt(shape: &DbShape, v: &[i64]) -> Result<(PendingQuery, EncryptedQuery)> {
    if v.len() != shape.cols {
        return Err(FheError::Shape {
            what: "query vector",
            expected: shape.cols,
            got: v.len(),
        });
    }
    let bound = i64::from(shape.query_bound);
    if let Some(index) = v.iter().position(|x| x.abs() > bound) {
        return Err(FheError::QueryRange {
            index,
            bound: shape.query_bound,
        });
    }
    let nonzero = v.iter().filter(|&&x| x != 0).count();
    if nonzero > shape.query_support {
        return Err(FheError::Budget(format!(
            "the query has {nonzero} non-zero entries; this database accepts at most {}",
            shape.query_support
        )));
    }
    let mut seeder = new_seeder();
    let mut secret_generator = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
    let key: GlweSecretKeyOwned<u64> = allocate_and_generate_new_binary_glwe_secret_key(
        GlweDimension(GLWE_DIMENSION),
        PolynomialSize(POLY_SIZE),
        &mut secret_generator,
    );
    let mut encoded = vec![0u64; shape.padded_cols()];
    for (e, &x) in encoded.iter_mut().zip(v) {
        *e = (x as u64).wrapping_mul(DELTA);
    }
    let plaintexts = PlaintextList::from_container(encoded);
    let mut list = seeded_list(shape.mask_seed(), shape.ciphertexts());
    encrypt_seeded_glwe_ciphertext_list(
        &key,
        &mut list,
        &plaintexts,
        DynamicDistribution::new_t_uniform(NOISE_BOUND_LOG2),
        seeder.as_mut(),
    );
    let key = Zeroizing::new(key.into_container());
    let key_rev = Zeroizing::new(key.iter().rev().copied().collect::<Vec<u64>>());
    let pending = PendingQuery {
        db: shape.id,
        rows: shape.rows,
        key_rev,
    };
    Ok((
        pending,
        EncryptedQuery {
            db: shape.id,
            bodies: list.into_container(),
        },
    ))
}

impl PendingQuery {
    /// Database this query was made for.
    pub fn db(&self) -> &DbId {
        &self.db
    }

    /// Decodes the server's answer into the exact integers ⟨D_r, v⟩ for every row, consuming
    /// (and wiping) the one-time key.
    pub fn decode(self, hint: &Hint, answer: &[u64]) -> Result<Vec<i64>> {
        hint.shape.check_id("hint", &self.db)?;
        if answer.len() != self.rows {
            return Err(FheError::Shape {
                what: "answer",
                expected: self.rows,
                got: answer.len(),
            });
        }
        if hint.data.len() != self.rows * POLY_SIZE {
            return Err(FheError::Shape {
                what: "hint coefficients",
                expected: self.rows * POLY_SIZE,
                got: hint.data.len(),
            });
        }
        Ok(answer
            .iter()
            .zip(hint.data.chunks_exact(POLY_SIZE))
            .map(|(&t, h)| {
                let mask_part = h
                    .iter()
                    .zip(self.key_rev.iter())
                    .fold(0u64, |acc, (&c, &s)| acc.wrapping_add(c & s.wrapping_neg()));
                // t − ⟨H_r, rev s⟩ = Δ·m + e; adding Δ/2 and shifting arithmetically rounds.
                let noisy = t.wrapping_sub(mask_part).wrapping_add(DELTA / 2);
                (noisy as i64) >> LOG_DELTA
            })
            .collect())
    }
}

#[cfg(test)]
impl PendingQuery {
    /// The one-time secret (tests only: check that keys are never shared).
    pub(crate) fn secret_for_test(&self) -> &[u64] {
        &self.key_rev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhe::db::LinearDb;

    #[test]
    fn every_query_gets_a_fresh_secret() {
        let db = LinearDb::new(2, 10, &[1i8; 20], 1, 10).unwrap();
        let v = vec![1i64; 10];
        let (a, ct_a) = encrypt(db.shape(), &v).unwrap();
        let (b, ct_b) = encrypt(db.shape(), &v).unwrap();
        assert_ne!(
            a.secret_for_test(),
            b.secret_for_test(),
            "two queries share a key"
        );
        assert_ne!(ct_a.bodies, ct_b.bodies);
        // Both secrets are binary and non-trivial.
        for s in [a.secret_for_test(), b.secret_for_test()] {
            assert!(s.iter().all(|&x| x <= 1));
            assert!(s.contains(&1) && s.contains(&0));
        }
        // `decode` takes the pending query by value: the key cannot encrypt or decode again.
        let hint = db.hint();
        let answer = db.answer(&ct_a).unwrap();
        assert_eq!(a.decode(&hint, &answer).unwrap(), vec![10, 10]);
    }
}
