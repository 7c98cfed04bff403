//! AES-128-CTR pseudorandom function for correlated randomness.
//!
//! Construction: AES-128 in counter mode (kernel [`crate::kernels::aes_ctr`]: VAES, AES-NI or
//! the `aes` crate, selected at run time), as used for the pairwise PRF of Araki, Furukawa,
//! Lindell, Nof, Ohara, CCS 2016 (eprint 2016/768, §2.2 "correlated randomness") and ABY3
//! (Mohassel & Rindal, CCS 2018, §2.2).
//!
//! # Stream layout
//! Word `w` of the stream for [`Domain`] `(op, worker)` is half `w mod 2` (little-endian) of
//! `AES_k(B(⌊w/2⌋))`, where the 16-byte counter block is
//!
//! | bytes  | content                                                        |
//! |--------|----------------------------------------------------------------|
//! | 0..8   | block counter `⌊w/2⌋`, u64 LE                                  |
//! | 8..16  | `op · 2^0 + worker · 2^47`, u64 LE (bit 63 is always 0)        |
//!
//! so `(op, worker, counter)` maps injectively to blocks for `op < 2^47`, `worker < 2^16`
//! (asserted; an op counter or worker index beyond that is a bug in the caller, not an input).
//! [`Prf::derive`] encrypts blocks whose bit 127 is 1, so subkeys never reuse a stream block.
//!
//! Security: AES-128 modelled as a PRP/PRF. Whoever holds the key (for pairwise keys, the two
//! parties of the pair) can compute every stream; to anyone else all streams, and all derived
//! subkeys, are indistinguishable from uniform and independent of each other. Distinct domains
//! and distinct derive labels give independent outputs; reusing a domain reuses the stream.

use crate::kernels::AesCtr;
use aes::cipher::BlockEncrypt;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroize;

/// A 128-bit PRF key. Zeroised on drop; `Debug` never prints it.
#[derive(Clone)]
pub struct PrfKey(pub(crate) [u8; 16]);

impl PrfKey {
    /// Key from raw bytes (from a key agreement or a test vector).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        PrfKey(bytes)
    }

    /// Fresh uniformly random key from `rng` (use `rand::rngs::OsRng` outside tests).
    pub fn random<R: rand::CryptoRng + rand::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 16];
        rng.fill_bytes(&mut k);
        PrfKey(k)
    }
}

impl Drop for PrfKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for PrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrfKey(..)")
    }
}

/// Domain of one PRF stream: (op, worker) inside a session. Sessions are separated by their
/// keys (session setup hashes the session id into every pairwise key); different domains give
/// independent streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    /// Protocol invocation counter within the session.
    pub op: u64,
    /// Worker (thread) index, so parallel workers fork independent streams.
    pub worker: u32,
}

impl Domain {
    /// Largest op counter + 1 that fits in a counter block (2^47).
    pub const OP_LIMIT: u64 = 1 << 47;
    /// Largest worker index + 1 that fits in a counter block (2^16).
    pub const WORKER_LIMIT: u32 = 1 << 16;

    /// High 8 bytes of every counter block of this domain (bit 63 clear).
    fn tweak(self) -> u64 {
        assert!(
            self.op < Self::OP_LIMIT,
            "PRF domain op counter exceeds 2^47"
        );
        assert!(
            self.worker < Self::WORKER_LIMIT,
            "PRF domain worker index exceeds 2^16"
        );
        self.op | (u64::from(self.worker) << 47)
    }
}

/// Bit 63 of the block's high half: set on [`Prf::derive`] inputs, clear on stream blocks.
const DERIVE_FLAG: u64 = 1 << 63;

/// Words per rayon task in [`Prf::par_fill_at`] (512 KiB).
const PAR_CHUNK_WORDS: usize = 1 << 16;

/// AES-128 in counter mode keyed with a [`PrfKey`].
///
/// The keystream runs on the widest path this CPU has ([`crate::kernels::AesCtrPath`]: VAES, AES-NI, or the
/// `aes` crate). Both key schedules (the `aes` crate's, whose `zeroize` feature is on, and the
/// kernel's expanded round keys) are zeroised on drop, as is the [`PrfKey`] they came from.
#[derive(Clone)]
pub struct Prf {
    ctr: AesCtr,
}

impl fmt::Debug for Prf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prf { .. }")
    }
}

impl Prf {
    /// PRF under `key`.
    pub fn new(key: &PrfKey) -> Self {
        Prf {
            ctr: AesCtr::new(&key.0),
        }
    }

    /// Fill `out` with words `offset..offset + out.len()` of the stream for `domain`.
    ///
    /// Any split of a range into chunks, each filled at its own offset, equals one fill.
    /// Panics if the domain is out of range (see [`Domain::OP_LIMIT`]) or the range passes 2^64.
    pub fn fill_at(&self, domain: Domain, offset: u64, out: &mut [u64]) {
        let tweak = domain.tweak();
        if out.is_empty() {
            return;
        }
        let len = u64::try_from(out.len()).expect("slice length fits in u64");
        assert!(
            offset.checked_add(len).is_some(),
            "PRF stream range passes 2^64 words"
        );

        self.ctr.fill_at(tweak, offset, out);
    }

    /// Fill `out` with the first `out.len()` words of the stream for `domain`.
    pub fn fill(&self, domain: Domain, out: &mut [u64]) {
        self.fill_at(domain, 0, out)
    }

    /// [`Prf::fill_at`] split over the rayon pool; the result is identical. Call it from rayon
    /// or a blocking thread, never from a tokio worker.
    pub fn par_fill_at(&self, domain: Domain, offset: u64, out: &mut [u64]) {
        use rayon::prelude::*;
        out.par_chunks_mut(PAR_CHUNK_WORDS)
            .enumerate()
            .for_each(|(i, chunk)| {
                self.fill_at(domain, offset + (i * PAR_CHUNK_WORDS) as u64, chunk)
            });
    }

    /// A subkey for a labelled sub-protocol or session.
    ///
    /// Subkey = `AES_k(h)` with `h` = the first 16 bytes of SHA-256("veil/v1/prf-derive" ‖ label)
    /// and bit 127 of `h` (top bit of byte 15) forced to 1, so `h` is never a stream block.
    pub fn derive(&self, label: &[u8]) -> PrfKey {
        let digest = Sha256::new()
            .chain_update(b"veil/v1/prf-derive")
            .chain_update(label)
            .finalize();
        let mut block = aes::Block::clone_from_slice(&digest[..16]);
        block[15] |= (DERIVE_FLAG >> 56) as u8;
        self.ctr.cipher().encrypt_block(&mut block);
        let mut key = [0u8; 16];
        key.copy_from_slice(&block);
        block.as_mut_slice().zeroize();
        PrfKey(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;
    use aes::Aes128;
    use aes::cipher::KeyInit;

    fn prf(seed: u8) -> Prf {
        Prf::new(&PrfKey::from_bytes([seed; 16]))
    }

    const D: Domain = Domain { op: 7, worker: 3 };

    #[test]
    fn fill_at_chunks_equal_one_fill() {
        let p = prf(1);
        let mut whole = vec![0u64; 1000];
        p.fill(D, &mut whole);
        // Every split point, including odd ones, for a few chunk sizes.
        for chunk in [1, 2, 3, 7, 128, 129, 300] {
            let mut parts = vec![0u64; 1000];
            let mut off = 0;
            for c in parts.chunks_mut(chunk) {
                p.fill_at(D, off as u64, c);
                off += c.len();
            }
            assert_eq!(parts, whole, "chunk size {chunk}");
        }
        for start in [0usize, 1, 2, 127, 128, 129, 511] {
            for len in [0usize, 1, 2, 3, 255] {
                let mut part = vec![0u64; len];
                p.fill_at(D, start as u64, &mut part);
                assert_eq!(part, whole[start..start + len], "start {start} len {len}");
            }
        }
        let mut par = vec![0u64; 3 * PAR_CHUNK_WORDS + 5];
        p.par_fill_at(D, 3, &mut par);
        let mut seq = vec![0u64; par.len()];
        p.fill_at(D, 3, &mut seq);
        assert_eq!(par, seq);
    }

    #[test]
    fn known_answer_matches_raw_aes() {
        let key = [0x2bu8; 16];
        let p = Prf::new(&PrfKey::from_bytes(key));
        let d = Domain { op: 5, worker: 2 };
        let mut out = [0u64; 4];
        p.fill(d, &mut out);
        let aes = Aes128::new(&key.into());
        for ctr in 0u64..2 {
            let mut block = [0u8; 16];
            block[..8].copy_from_slice(&ctr.to_le_bytes());
            block[8..].copy_from_slice(&(5u64 | (2u64 << 47)).to_le_bytes());
            let mut b = aes::Block::from(block);
            aes.encrypt_block(&mut b);
            let lo = u64::from_le_bytes(b[..8].try_into().unwrap());
            let hi = u64::from_le_bytes(b[8..].try_into().unwrap());
            assert_eq!([out[2 * ctr as usize], out[2 * ctr as usize + 1]], [lo, hi]);
        }
        // FIPS-197 appendix C.1 vector through the same cipher, to pin the `aes` crate itself.
        let fips = Aes128::new(&core::array::from_fn::<u8, 16, _>(|i| i as u8).into());
        let mut b = aes::Block::from(core::array::from_fn::<u8, 16, _>(|i| (i as u8) * 0x11));
        fips.encrypt_block(&mut b);
        assert_eq!(
            b.as_slice(),
            [
                0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
                0xc5, 0x5a
            ]
        );
    }

    #[test]
    fn domains_and_keys_differ() {
        let (a, b) = (prf(1), prf(2));
        let stream = |p: &Prf, d: Domain| {
            let mut v = vec![0u64; 64];
            p.fill(d, &mut v);
            v
        };
        let base = stream(&a, D);
        assert_ne!(base, stream(&b, D));
        assert_ne!(base, stream(&a, Domain { op: 8, ..D }));
        assert_ne!(base, stream(&a, Domain { worker: 4, ..D }));
        // Swapping op and worker does not alias.
        assert_ne!(
            stream(&a, Domain { op: 1, worker: 0 }),
            stream(&a, Domain { op: 0, worker: 1 })
        );
        // Extremes are accepted.
        let _ = stream(
            &a,
            Domain {
                op: Domain::OP_LIMIT - 1,
                worker: Domain::WORKER_LIMIT - 1,
            },
        );
        assert_eq!(base, stream(&prf(1), D), "deterministic");
    }

    #[test]
    #[should_panic(expected = "op counter")]
    fn op_out_of_range_panics() {
        prf(1).fill(
            Domain {
                op: Domain::OP_LIMIT,
                worker: 0,
            },
            &mut [0u64; 2],
        );
    }

    #[test]
    #[should_panic(expected = "worker index")]
    fn worker_out_of_range_panics() {
        prf(1).fill(
            Domain {
                op: 0,
                worker: Domain::WORKER_LIMIT,
            },
            &mut [0u64; 2],
        );
    }

    #[test]
    fn derive_separates_labels_and_keys() {
        let mut rng = test_rng();
        let k = PrfKey::random(&mut rng);
        let p = Prf::new(&k);
        let a = p.derive(b"session/1");
        assert_eq!(a.0, p.derive(b"session/1").0);
        assert_ne!(a.0, p.derive(b"session/2").0);
        assert_ne!(a.0, p.derive(b"").0);
        assert_ne!(a.0, prf(9).derive(b"session/1").0);
        assert_ne!(a.0, k.0);
        assert_eq!(format!("{a:?}"), "PrfKey(..)");
        assert_eq!(format!("{p:?}"), "Prf { .. }");
    }

    /// Throughput check: `cargo test -p veil-runtime --lib prf::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn throughput() {
        let p = prf(1);
        let mut out = vec![0u64; 1 << 20]; // 8 MiB
        p.fill(D, &mut out);
        let reps = 32;
        let t = std::time::Instant::now();
        for r in 0..reps {
            p.fill_at(D, r * out.len() as u64, &mut out);
        }
        let s = t.elapsed().as_secs_f64();
        let gbps = (reps as f64 * 8.0 * out.len() as f64) / s / 1e9;
        eprintln!(
            "prf fill: {gbps:.2} GB/s on one core ({} MiB in {s:.3} s)",
            reps * 8
        );
        std::hint::black_box(&out);
    }
}
