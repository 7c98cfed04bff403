//! Public GLWE masks from a fixed seed, through tfhe's seeded GLWE ciphertext lists.
//!
//! A client encrypts into a `SeededGlweCiphertextList` whose compression seed is the
//! database's public mask seed; tfhe's encryption generator then draws every mask from that
//! seed (AES-CTR, forked per ciphertext) and only the bodies are stored. Decompressing a list
//! with the same seed and zero bodies regenerates exactly those masks, which is how the server
//! obtains them for the hint. LWE stays hard with public, reused masks as long as every query
//! has a fresh secret (SimplePIR §4; Tiptoe §5) — which [`super::query`] enforces.

use super::db::DbId;
use super::params::{GLWE_DIMENSION, POLY_SIZE};
use sha2::{Digest, Sha256};
use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};
use tfhe::core_crypto::prelude::*;

/// The public 128-bit seed of a database's query masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskSeed(pub u128);

impl MaskSeed {
    /// Seed for a database: SHA-256("veil-fhe-mask-seed" ‖ id), first 16 bytes.
    pub fn for_database(id: &DbId) -> Self {
        let digest = Sha256::new()
            .chain_update(b"veil-fhe-mask-seed")
            .chain_update(id.0)
            .finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        Self(u128::from_le_bytes(b))
    }

    /// The tfhe compression seed carrying it.
    pub fn compression_seed(self) -> CompressionSeed {
        CompressionSeed::from(Seed(self.0))
    }
}

/// An empty seeded list of `count` GLWE ciphertexts (k = 1, N = 2048, q = 2^64) with this seed.
pub(crate) fn seeded_list(seed: MaskSeed, count: usize) -> SeededGlweCiphertextListOwned<u64> {
    SeededGlweCiphertextListOwned::new(
        0u64,
        GlweSize(GLWE_DIMENSION + 1),
        PolynomialSize(POLY_SIZE),
        GlweCiphertextCount(count),
        seed.compression_seed(),
        CiphertextModulus::new_native(),
    )
}

/// The masks a_0, …, a_{count−1} (N coefficients each, concatenated) that tfhe derives from
/// `seed` for a seeded list of `count` ciphertexts.
pub fn public_masks(seed: MaskSeed, count: usize) -> Vec<u64> {
    let list = seeded_list(seed, count).decompress_into_glwe_ciphertext_list();
    let mut out = Vec::with_capacity(count * POLY_SIZE);
    for ct in list.iter() {
        out.extend_from_slice(ct.get_mask().as_ref());
    }
    out
}
