//! A linearly homomorphic scan database: the server-side matrix D ∈ i8^{rows×cols}, its
//! public shape, and the client's hint (SimplePIR, Henzinger et al., USENIX Security 2023;
//! Tiptoe, Henzinger et al., SOSP 2023; here with tfhe's GLWE ciphertexts instead of plain LWE).
//!
//! The client encrypts v ∈ Z^cols as G = cols/N GLWE ciphertexts (b_g = a_g·s + Δ·v_g + e_g)
//! whose masks a_g come from a public seed fixed per database, so only the bodies travel. The
//! server returns t_r = Σ_j D_rj·b_j mod 2^64 — one i8 × u64 GEMV. Because coefficient N−1 of
//! rev(D_{r,g})·b_g is Σ_i D_{r,gN+i}·b_g[i] (no negacyclic wrap), the mask part of t_r is
//! coefficient N−1 of H_r·s with the hint H_r = Σ_g rev(D_{r,g})·a_g, a polynomial per row that
//! depends only on D and the public masks. The server computes it once per database
//! ([`LinearDb::hint`], exact negacyclic products mod 2^64 with `tfhe-ntt`); the client
//! subtracts ⟨H_r, rev(s)⟩ and rounds away Δ.

use super::error::{FheError, Result};
use super::masks::{MaskSeed, public_masks};
use super::params::{POLY_SIZE, check_budget};
use crate::kernels::gemv_i8::{PreparedVector, par_gemm_i8_u64};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tfhe_ntt::native64::Plan32;

/// Content hash of a database (shape, query bound and every entry); names its version.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DbId(pub [u8; 32]);

impl DbId {
    /// First 8 bytes in hex, for messages and logs.
    pub fn short(&self) -> String {
        self.0[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for DbId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbId({})", self.short())
    }
}

/// The public shape of a database: what a client needs to encrypt a query for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbShape {
    /// Content hash; also seeds the public masks.
    pub id: DbId,
    /// Rows of D (entries of an answer).
    pub rows: usize,
    /// Logical columns of D (entries of a query vector).
    pub cols: usize,
    /// Largest |v_j| a query may carry (the message budget was checked for it).
    pub query_bound: u32,
    /// Most non-zero entries a query may carry (the message budget was checked for it).
    pub query_support: usize,
}

impl DbShape {
    /// Columns padded to whole GLWE ciphertexts (a multiple of N).
    pub fn padded_cols(&self) -> usize {
        self.cols.div_ceil(POLY_SIZE) * POLY_SIZE
    }

    /// Number of GLWE ciphertexts in a query.
    pub fn ciphertexts(&self) -> usize {
        self.padded_cols() / POLY_SIZE
    }

    /// The public seed of the query masks, derived from the content hash.
    pub fn mask_seed(&self) -> MaskSeed {
        MaskSeed::for_database(&self.id)
    }

    pub(crate) fn check_id(&self, what: &'static str, got: &DbId) -> Result<()> {
        if *got != self.id {
            return Err(FheError::WrongDatabase {
                what,
                expected: self.id.short(),
                got: got.short(),
            });
        }
        Ok(())
    }
}

/// An encrypted query: the GLWE bodies only (masks are public), tagged with its database.
#[derive(Clone, Debug)]
pub struct EncryptedQuery {
    /// Database the query was encrypted for.
    pub db: DbId,
    /// padded_cols bodies, ciphertext after ciphertext.
    pub bodies: Vec<u64>,
}

/// The client's hint: H_r (N coefficients mod 2^64) for every row, and the shape.
#[derive(Clone, Debug)]
pub struct Hint {
    /// Shape of the database the hint belongs to.
    pub shape: DbShape,
    /// rows × N coefficients, row after row.
    pub data: Vec<u64>,
}

impl Hint {
    /// Bytes of the hint body (what a client downloads once per database version).
    pub fn byte_len(&self) -> usize {
        self.data.len() * 8
    }
}

/// The server side: D stored with padded columns.
#[derive(Clone)]
pub struct LinearDb {
    shape: DbShape,
    data: Vec<i8>,
}

impl std::fmt::Debug for LinearDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearDb")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl LinearDb {
    /// Builds a database from `rows × cols` row-major entries, refusing it if some row would
    /// break the noise or message budget for queries with at most `query_support` non-zero
    /// entries bounded by `query_bound`.
    pub fn new(
        rows: usize,
        cols: usize,
        data: &[i8],
        query_bound: u32,
        query_support: usize,
    ) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(FheError::Shape {
                what: "database entries",
                expected: rows * cols,
                got: data.len(),
            });
        }
        if rows == 0 || cols == 0 {
            return Err(FheError::Invalid(
                "a database needs at least one row and one column".into(),
            ));
        }
        if query_bound == 0 || !(1..=cols).contains(&query_support) {
            return Err(FheError::Invalid(format!(
                "query bound {query_bound} and support {query_support} must be ≥ 1 (support ≤ {cols} columns)"
            )));
        }
        let (max_l2, max_entry) = data
            .par_chunks(cols)
            .map(|row| {
                let l2: u64 = row
                    .iter()
                    .map(|&x| (i64::from(x) * i64::from(x)) as u64)
                    .sum();
                let max = row
                    .iter()
                    .map(|&x| u64::from(x.unsigned_abs()))
                    .max()
                    .unwrap_or(0);
                (l2, max)
            })
            .reduce(|| (0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
        check_budget(
            (max_l2 as f64).sqrt(),
            max_entry,
            query_support,
            query_bound,
        )?;

        let mut hasher = Sha256::new();
        hasher.update(b"veil-fhe-linear-db-v1");
        hasher.update((rows as u64).to_le_bytes());
        hasher.update((cols as u64).to_le_bytes());
        hasher.update(query_bound.to_le_bytes());
        hasher.update((query_support as u64).to_le_bytes());
        hasher.update(data.iter().map(|&x| x as u8).collect::<Vec<u8>>());
        let shape = DbShape {
            id: DbId(hasher.finalize().into()),
            rows,
            cols,
            query_bound,
            query_support,
        };

        let padded = shape.padded_cols();
        let mut stored = vec![0i8; rows * padded];
        for (dst, src) in stored.chunks_exact_mut(padded).zip(data.chunks_exact(cols)) {
            dst[..cols].copy_from_slice(src);
        }
        Ok(Self {
            shape,
            data: stored,
        })
    }

    /// The public shape (also what [`Hint::shape`] holds).
    pub fn shape(&self) -> &DbShape {
        &self.shape
    }

    /// Bytes the server scans per query (rows × padded columns, one byte each).
    pub fn scan_bytes(&self) -> usize {
        self.data.len()
    }

    /// Logical entries of row `r` (for plaintext references and tests).
    pub fn row(&self, r: usize) -> &[i8] {
        let padded = self.shape.padded_cols();
        &self.data[r * padded..r * padded + self.shape.cols]
    }

    /// Computes the hint H_r = Σ_g rev(D_{r,g})·a_g for every row (offline, per database).
    ///
    /// Each product is exact mod 2^64: `tfhe-ntt`'s five-prime 32-bit negacyclic NTT holds the
    /// integer coefficients (|·| < G·N·2^7·2^64 ≪ the 2^149 CRT range) before the reduction.
    /// The mask transforms are computed once; each row costs G forward NTTs of small values,
    /// G pointwise multiply-accumulates and one inverse NTT.
    pub fn hint(&self) -> Hint {
        let n = POLY_SIZE;
        let g_count = self.shape.ciphertexts();
        let plan = Plan32::try_new(n).expect("tfhe-ntt supports N = 2048");
        let primes = [
            plan.ntt_0(),
            plan.ntt_1(),
            plan.ntt_2(),
            plan.ntt_3(),
            plan.ntt_4(),
        ];
        let masks = public_masks(self.shape.mask_seed(), g_count);
        // NTT of every mask, per prime: mask_ntt[g][k] = NTT_k(a_g mod p_k).
        let mask_ntt: Vec<[Vec<u32>; 5]> = masks
            .par_chunks_exact(n)
            .map(|a| {
                let mut out: [Vec<u32>; 5] = std::array::from_fn(|_| vec![0u32; n]);
                let [o0, o1, o2, o3, o4] = &mut out;
                plan.fwd(a, o0, o1, o2, o3, o4);
                out
            })
            .collect();
        let padded = self.shape.padded_cols();
        let mut hint = vec![0u64; self.shape.rows * n];
        hint.par_chunks_exact_mut(n)
            .zip(self.data.par_chunks_exact(padded))
            .for_each(|(h, row)| {
                let mut acc: [Vec<u32>; 5] = std::array::from_fn(|_| vec![0u32; n]);
                let mut tmp = vec![0u32; n];
                for (g, block) in row.chunks_exact(n).enumerate() {
                    if block.iter().all(|&x| x == 0) {
                        continue;
                    }
                    for (k, ntt) in primes.iter().enumerate() {
                        let p = ntt.modulus();
                        // rev(D_{r,g})[i] = D[r, gN + N−1−i], reduced mod p as a signed value.
                        for (t, &x) in tmp.iter_mut().zip(block.iter().rev()) {
                            *t = if x >= 0 {
                                x as u32
                            } else {
                                p - u32::from(x.unsigned_abs())
                            };
                        }
                        ntt.fwd(&mut tmp);
                        ntt.mul_accumulate(&mut acc[k], &tmp, &mask_ntt[g][k]);
                    }
                }
                for (k, ntt) in primes.iter().enumerate() {
                    ntt.normalize(&mut acc[k]);
                }
                let [a0, a1, a2, a3, a4] = &mut acc;
                plan.inv(h, a0, a1, a2, a3, a4);
            });
        Hint {
            shape: self.shape.clone(),
            data: hint,
        }
    }

    /// Answers one encrypted query: t = D·b mod 2^64 over the bodies.
    pub fn answer(&self, query: &EncryptedQuery) -> Result<Vec<u64>> {
        Ok(self
            .answer_batch(std::slice::from_ref(query))?
            .pop()
            .expect("one query in, one answer out"))
    }

    /// Answers several queries in one pass over D (each block of D is read once for all).
    pub fn answer_batch(&self, queries: &[EncryptedQuery]) -> Result<Vec<Vec<u64>>> {
        let prepared = queries
            .iter()
            .map(|q| {
                self.shape.check_id("query", &q.db)?;
                if q.bodies.len() != self.shape.padded_cols() {
                    return Err(FheError::Shape {
                        what: "query ciphertext bodies",
                        expected: self.shape.padded_cols(),
                        got: q.bodies.len(),
                    });
                }
                Ok(PreparedVector::new(&q.bodies))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(par_gemm_i8_u64(&self.data, self.shape.rows, &prepared))
    }
}
