//! AES-128 in counter mode over u64 words: the keystream of [`crate::prf::Prf`].
//!
//! Word `w` of the stream with high half `tweak` is half `w mod 2` (little-endian) of
//! `AES_k(⌊w/2⌋ ‖ tweak)`, each half a u64 LE, i.e. block `b` = counter `b` (bytes 0..8) ‖
//! `tweak` (bytes 8..16), and words `2b`, `2b + 1` are its low and high halves.
//!
//! Three paths, chosen at run time, widest first ([`aes_ctr_path`]):
//! - [`AesCtrPath::Vaes`]: VAES + AVX2, two blocks per ymm register, 8 registers (16 blocks)
//!   in flight to hide the `vaesenc` latency;
//! - [`AesCtrPath::AesNi`]: AES-NI, 8 xmm blocks in flight;
//! - [`AesCtrPath::Soft`]: the `aes` crate's `encrypt_blocks` on counter blocks written into
//!   the output (the reference; the crate itself picks AES-NI or a bitsliced software AES).
//!
//! The SIMD paths use a key schedule expanded here with `aeskeygenassist` (FIPS-197 §5.2);
//! every path equals the reference bit for bit (tested on all paths this CPU has).

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use std::sync::OnceLock;
use zeroize::Zeroize;

/// Blocks per `encrypt_blocks` call on the soft path (1 KiB of output per call).
const SOFT_BATCH_BLOCKS: usize = 64;

/// Implementation of the counter-mode keystream, ordered from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AesCtrPath {
    /// The `aes` crate's `encrypt_blocks` (the reference; any CPU).
    Soft,
    /// x86-64 AES-NI, 8 blocks interleaved.
    AesNi,
    /// x86-64 VAES + AVX2, 16 blocks (8 ymm registers) interleaved.
    Vaes,
}

impl AesCtrPath {
    /// All paths, narrowest first.
    pub const ALL: [AesCtrPath; 3] = [AesCtrPath::Soft, AesCtrPath::AesNi, AesCtrPath::Vaes];

    /// Whether this CPU can run this path.
    pub fn is_supported(self) -> bool {
        self <= aes_ctr_path()
    }
}

/// The widest path this CPU supports; detected on first use, then cached.
pub fn aes_ctr_path() -> AesCtrPath {
    static PATH: OnceLock<AesCtrPath> = OnceLock::new();
    *PATH.get_or_init(detect)
}

/// Every path this CPU supports, narrowest first (tests compare them with each other).
pub fn supported_aes_ctr_paths() -> Vec<AesCtrPath> {
    AesCtrPath::ALL
        .into_iter()
        .filter(|p| p.is_supported())
        .collect()
}

fn detect() -> AesCtrPath {
    #[cfg(target_arch = "x86_64")]
    {
        // Each path implies the ones below it, so `path <= aes_ctr_path()` means "supported".
        if std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("sse2")
        {
            if std::arch::is_x86_feature_detected!("vaes")
                && std::arch::is_x86_feature_detected!("avx2")
            {
                return AesCtrPath::Vaes;
            }
            return AesCtrPath::AesNi;
        }
    }
    AesCtrPath::Soft
}

/// The 11 AES-128 round keys, as the 16 bytes of each (zeroised on drop).
#[derive(Clone, Default)]
struct RoundKeys([[u8; 16]; 11]);

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An AES-128 key ready for counter-mode keystream: the `aes` crate cipher (soft path, single
/// blocks) and, when a SIMD path is used, the expanded round keys. Both are zeroised on drop.
#[derive(Clone)]
pub struct AesCtr {
    cipher: Aes128,
    round_keys: RoundKeys,
    path: AesCtrPath,
}

impl AesCtr {
    /// Key `key` on the widest path this CPU supports.
    pub fn new(key: &[u8; 16]) -> Self {
        Self::with_path(key, aes_ctr_path())
    }

    /// Key `key` on an explicit path; panics if this CPU does not support `path`.
    pub fn with_path(key: &[u8; 16], path: AesCtrPath) -> Self {
        assert!(
            path.is_supported(),
            "AES-CTR path {path:?} is not supported by this CPU"
        );
        let mut round_keys = RoundKeys::default();
        match path {
            AesCtrPath::Soft => {}
            #[cfg(target_arch = "x86_64")]
            AesCtrPath::AesNi | AesCtrPath::Vaes => {
                // SAFETY: `path` is supported (asserted above), and both SIMD paths imply AES-NI.
                unsafe { x86::expand_key(key, &mut round_keys.0) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("SIMD AES paths exist only on x86-64"),
        }
        AesCtr {
            cipher: Aes128::new(&(*key).into()),
            round_keys,
            path,
        }
    }

    /// The block cipher (for single-block uses such as key derivation).
    pub fn cipher(&self) -> &Aes128 {
        &self.cipher
    }

    /// The path this key runs on.
    pub fn path(&self) -> AesCtrPath {
        self.path
    }

    /// Fill `out` with words `offset..offset + out.len()` of the keystream whose blocks have high
    /// half `tweak`. Panics if the range passes 2^64 words.
    ///
    /// # Performance
    /// Compute-bound: 10 AES rounds per 16 bytes. VAES path: 8 ymm (16 blocks) in flight,
    /// ~2× the AES-NI path where `vaesenc` ymm has the xmm throughput (Zen 3, Ice Lake).
    /// Bench: `prf::tests::throughput`.
    pub fn fill_at(&self, tweak: u64, offset: u64, out: &mut [u64]) {
        if out.is_empty() {
            return;
        }
        let len = u64::try_from(out.len()).expect("slice length fits in u64");
        assert!(
            offset.checked_add(len).is_some(),
            "AES-CTR stream range passes 2^64 words"
        );
        let mut out = out;
        let mut block = offset / 2;
        if offset % 2 == 1 {
            // Unaligned start: the high half of the block that holds word `offset`.
            out[0] = self.block(tweak, block)[1];
            out = &mut out[1..];
            block += 1;
        }
        let whole = out.len() / 2 * 2;
        let (body, tail) = out.split_at_mut(whole);
        self.fill_blocks(tweak, block, body);
        if let Some(last) = tail.first_mut() {
            *last = self.block(tweak, block + (whole / 2) as u64)[0];
        }
    }

    /// Block `counter` of the stream as its two words.
    fn block(&self, tweak: u64, counter: u64) -> [u64; 2] {
        let mut w = [0u64; 2];
        self.fill_blocks(tweak, counter, &mut w);
        w
    }

    /// Blocks `first..first + out.len() / 2` into `out` (even length; no counter overflow since
    /// the caller's word range is below 2^64, so block indices are below 2^63).
    fn fill_blocks(&self, tweak: u64, first: u64, out: &mut [u64]) {
        debug_assert!(out.len().is_multiple_of(2));
        match self.path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_path` checked that this CPU has VAES, AVX2 and AES-NI.
            AesCtrPath::Vaes => unsafe { x86::ctr_vaes(&self.round_keys.0, tweak, first, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_path` checked that this CPU has AES-NI.
            AesCtrPath::AesNi => unsafe { x86::ctr_aesni(&self.round_keys.0, tweak, first, out) },
            _ => soft_ctr(&self.cipher, tweak, first, out),
        }
    }
}

/// The reference path: counter blocks written straight into `out` (word 2b = counter b, word
/// 2b+1 = tweak, little-endian) and encrypted in place by the `aes` crate.
fn soft_ctr(cipher: &Aes128, tweak: u64, first: u64, out: &mut [u64]) {
    let mut block = first;
    for chunk in out.chunks_mut(2 * SOFT_BATCH_BLOCKS) {
        for (k, pair) in chunk.chunks_exact_mut(2).enumerate() {
            pair[0] = (block + k as u64).to_le();
            pair[1] = tweak.to_le();
        }
        let blocks = super::bytes::words_as_aes_blocks_mut(chunk);
        let n = blocks.len() as u64;
        cipher.encrypt_blocks(blocks);
        block += n;
        for w in chunk.iter_mut() {
            *w = u64::from_le(*w);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// One step of the AES-128 key schedule: `prev` and `aeskeygenassist(prev, rcon)`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn expand_step(prev: __m128i, assist: __m128i) -> __m128i {
        let assist = _mm_shuffle_epi32::<0xff>(assist);
        let mut k = prev;
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        _mm_xor_si128(k, assist)
    }

    /// FIPS-197 §5.2 key expansion of `key` into `out` (round keys 0..=10).
    ///
    /// # Safety
    /// The CPU must have AES-NI.
    #[target_feature(enable = "aes")]
    pub(super) unsafe fn expand_key(key: &[u8; 16], out: &mut [[u8; 16]; 11]) {
        // SAFETY: `key` is 16 readable bytes; `loadu` has no alignment requirement.
        let mut k = unsafe { _mm_loadu_si128(key.as_ptr().cast()) };
        let mut rk = [k; 11];
        macro_rules! step {
            ($i:expr, $rcon:expr) => {
                k = expand_step(k, _mm_aeskeygenassist_si128::<$rcon>(k));
                rk[$i] = k;
            };
        }
        step!(1, 0x01);
        step!(2, 0x02);
        step!(3, 0x04);
        step!(4, 0x08);
        step!(5, 0x10);
        step!(6, 0x20);
        step!(7, 0x40);
        step!(8, 0x80);
        step!(9, 0x1b);
        step!(10, 0x36);
        for (o, r) in out.iter_mut().zip(rk) {
            // SAFETY: `o` is 16 writable bytes; `storeu` has no alignment requirement.
            unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), r) };
        }
    }

    /// Load the round keys into registers.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load_keys(rk: &[[u8; 16]; 11]) -> [__m128i; 11] {
        // SAFETY: each `r` is 16 readable bytes; `loadu` has no alignment requirement.
        rk.map(|r| unsafe { _mm_loadu_si128(r.as_ptr().cast()) })
    }

    /// Counter block `ctr ‖ tweak` (low lane = counter: bytes 0..8 LE on x86).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn counter_block(tweak: u64, ctr: u64) -> __m128i {
        _mm_set_epi64x(tweak as i64, ctr as i64)
    }

    /// AES-128 encryption of one block.
    #[inline]
    #[target_feature(enable = "aes")]
    fn encrypt1(k: &[__m128i; 11], b: __m128i) -> __m128i {
        let mut b = _mm_xor_si128(b, k[0]);
        for rk in &k[1..10] {
            b = _mm_aesenc_si128(b, *rk);
        }
        _mm_aesenclast_si128(b, k[10])
    }

    /// Store one block into two words.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn store1(out: &mut [u64], b: __m128i) {
        assert!(out.len() >= 2);
        // SAFETY: `out` has at least 2 words (16 bytes) writable; `storeu` is unaligned.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), b) };
    }

    /// AES-NI counter mode: blocks `first..` into `out` (even length), 8 blocks interleaved.
    ///
    /// # Safety
    /// The CPU must have AES-NI.
    #[target_feature(enable = "aes")]
    pub(super) unsafe fn ctr_aesni(rk: &[[u8; 16]; 11], tweak: u64, first: u64, out: &mut [u64]) {
        const LANES: usize = 8;
        let k = load_keys(rk);
        let mut ctr = first;
        let mut chunks = out.chunks_exact_mut(2 * LANES);
        for chunk in &mut chunks {
            let mut b: [__m128i; LANES] =
                core::array::from_fn(|i| _mm_xor_si128(counter_block(tweak, ctr + i as u64), k[0]));
            for rk in &k[1..10] {
                for x in &mut b {
                    *x = _mm_aesenc_si128(*x, *rk);
                }
            }
            for (i, x) in b.iter().enumerate() {
                store1(&mut chunk[2 * i..], _mm_aesenclast_si128(*x, k[10]));
            }
            ctr += LANES as u64;
        }
        for pair in chunks.into_remainder().chunks_exact_mut(2) {
            store1(pair, encrypt1(&k, counter_block(tweak, ctr)));
            ctr += 1;
        }
    }

    /// VAES counter mode: blocks `first..` into `out` (even length), 2 blocks per ymm and 8 ymm
    /// (16 blocks) interleaved.
    ///
    /// # Safety
    /// The CPU must have VAES, AVX2 and AES-NI.
    #[target_feature(enable = "vaes,avx2,aes")]
    pub(super) unsafe fn ctr_vaes(rk: &[[u8; 16]; 11], tweak: u64, first: u64, out: &mut [u64]) {
        const REGS: usize = 8;
        let k = load_keys(rk);
        let k2 = k.map(|r| _mm256_broadcastsi128_si256(r));
        // Lanes (low to high): counter c, tweak, counter c + 1, tweak.
        let t = tweak as i64;
        let mut ctr = _mm256_set_epi64x(t, first.wrapping_add(1) as i64, t, first as i64);
        let two = _mm256_set_epi64x(0, 2, 0, 2);
        let mut chunks = out.chunks_exact_mut(4 * REGS);
        for chunk in &mut chunks {
            let mut b = [_mm256_setzero_si256(); REGS];
            for x in &mut b {
                *x = _mm256_xor_si256(ctr, k2[0]);
                ctr = _mm256_add_epi64(ctr, two);
            }
            for rk in &k2[1..10] {
                for x in &mut b {
                    *x = _mm256_aesenc_epi128(*x, *rk);
                }
            }
            for (i, x) in b.iter().enumerate() {
                let y = _mm256_aesenclast_epi128(*x, k2[10]);
                let dst = &mut chunk[4 * i..4 * i + 4];
                // SAFETY: `dst` is 4 words (32 bytes) writable; `storeu` is unaligned.
                unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), y) };
            }
        }
        let mut rest = chunks.into_remainder();
        while rest.len() >= 4 {
            let mut x = _mm256_xor_si256(ctr, k2[0]);
            for rk in &k2[1..10] {
                x = _mm256_aesenc_epi128(x, *rk);
            }
            x = _mm256_aesenclast_epi128(x, k2[10]);
            let (dst, tail) = rest.split_at_mut(4);
            // SAFETY: `dst` is 4 words (32 bytes) writable; `storeu` is unaligned.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), x) };
            ctr = _mm256_add_epi64(ctr, two);
            rest = tail;
        }
        if rest.len() == 2 {
            // The low lane of `ctr` is the next counter block.
            store1(rest, encrypt1(&k, _mm256_castsi256_si128(ctr)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENS: [usize; 12] = [0, 1, 2, 3, 15, 16, 17, 63, 64, 65, 1000, 4097];
    const OFFSETS: [u64; 7] = [0, 1, 2, 3, 31, 33, 1 << 40 | 5];

    #[test]
    fn every_path_equals_the_reference() {
        for key in [
            [0u8; 16],
            [0x2b; 16],
            core::array::from_fn(|i| (i * 37) as u8),
        ] {
            let reference = AesCtr::with_path(&key, AesCtrPath::Soft);
            for path in supported_aes_ctr_paths() {
                let fast = AesCtr::with_path(&key, path);
                assert_eq!(fast.path(), path);
                for tweak in [0u64, 5 | (2 << 47), u64::MAX >> 1] {
                    for offset in OFFSETS {
                        for len in LENS {
                            let mut want = vec![0u64; len];
                            reference.fill_at(tweak, offset, &mut want);
                            let mut got = vec![!0u64; len];
                            fast.fill_at(tweak, offset, &mut got);
                            assert_eq!(got, want, "{path:?} offset {offset} len {len}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reference_is_raw_aes() {
        let key = core::array::from_fn(|i| i as u8);
        let cipher = Aes128::new(&key.into());
        let tweak = 0x0123_4567_89ab_cdef;
        for path in supported_aes_ctr_paths() {
            let mut out = vec![0u64; 9];
            AesCtr::with_path(&key, path).fill_at(tweak, 3, &mut out);
            for (i, w) in out.iter().enumerate() {
                let word = 3 + i as u64;
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&(word / 2).to_le_bytes());
                block[8..].copy_from_slice(&tweak.to_le_bytes());
                let mut b = aes::Block::from(block);
                cipher.encrypt_block(&mut b);
                let h = (word % 2) as usize * 8;
                assert_eq!(*w, u64::from_le_bytes(b[h..h + 8].try_into().unwrap()));
            }
        }
    }

    #[test]
    fn fips197_key_schedule() {
        // FIPS-197 appendix A.1: last round key of 2b7e1516 28aed2a6 abf71588 09cf4f3c.
        #[cfg(target_arch = "x86_64")]
        if AesCtrPath::AesNi.is_supported() {
            let key = [
                0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
                0x4f, 0x3c,
            ];
            let c = AesCtr::with_path(&key, AesCtrPath::AesNi);
            assert_eq!(
                c.round_keys.0[10],
                [
                    0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6,
                    0x63, 0x0c, 0xa6
                ]
            );
        }
    }

    #[test]
    #[should_panic(expected = "passes 2^64")]
    fn range_overflow_panics() {
        AesCtr::new(&[1; 16]).fill_at(0, u64::MAX, &mut [0u64; 2]);
    }

    /// Per-path throughput: `cargo test --release -p veil-runtime --lib aes_ctr::tests::throughput
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn throughput() {
        let mut out = vec![0u64; 1 << 20]; // 8 MiB
        for path in supported_aes_ctr_paths() {
            let c = AesCtr::with_path(&[1; 16], path);
            c.fill_at(7, 0, &mut out);
            let reps = 16;
            let t = std::time::Instant::now();
            for r in 0..reps {
                c.fill_at(7, r * out.len() as u64, &mut out);
            }
            let s = t.elapsed().as_secs_f64();
            let gbps = (reps as f64 * 8.0 * out.len() as f64) / s / 1e9;
            eprintln!("aes_ctr {path:?}: {gbps:.2} GB/s on one core");
            std::hint::black_box(&out);
        }
    }
}
