//! AES-128-CTR keystream on the GPU (`cuda/aes_ctr.cu`), twin of
//! [`crate::kernels::AesCtr::fill_at`]: the same words for the same key, tweak and offset.
//!
//! The host expands the key (FIPS-197 §5.2) with the S-box computed here from its definition
//! (inverse in GF(2^8) followed by the affine map, FIPS-197 §5.1.1), and uploads both; the kernel
//! builds its T-table from that S-box. The round keys are zeroised on the host after upload and
//! on the device when the object is dropped.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, PushKernelArg};
use zeroize::Zeroize;

use super::ring::{THREADS, grid_1d};
use super::{Gpu, GpuError, driver, nvrtc};

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
const fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80;
        a <<= 1;
        if carry != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// The AES S-box: `S(x) = A·x^{-1} + 0x63` (x^{-1} = x^254, 0 ↦ 0).
const fn build_sbox() -> [u8; 256] {
    let mut s = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        // x^254 by square-and-multiply: x^(2+4+8+16+32+64+128).
        let mut inv = 1u8;
        let mut sq = x as u8;
        let mut e = 254u32;
        while e != 0 {
            if e & 1 != 0 {
                inv = gf_mul(inv, sq);
            }
            sq = gf_mul(sq, sq);
            e >>= 1;
        }
        if x == 0 {
            inv = 0;
        }
        s[x] = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
        x += 1;
    }
    s
}

static SBOX: [u8; 256] = build_sbox();

/// The AES S-box (FIPS-197 Figure 7), computed from its definition.
pub fn aes_sbox() -> &'static [u8; 256] {
    &SBOX
}

/// FIPS-197 §5.2 key expansion: the 44 round-key words, word `i` holding bytes `4i..4i + 4` of
/// the schedule little-endian (so column c of round key r is word `4r + c`, row j its byte j).
pub fn aes128_expand_key(key: &[u8; 16]) -> [u32; 44] {
    let mut w = [0u32; 44];
    for (i, k) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([k[0], k[1], k[2], k[3]]);
    }
    let mut rcon = 1u8;
    for i in 4..44 {
        let mut t = w[i - 1];
        if i % 4 == 0 {
            // RotWord moves byte 0 to the top (a right rotation of the LE word), then SubWord,
            // then Rcon into byte 0.
            t = t.rotate_right(8);
            let b = t.to_le_bytes().map(|x| SBOX[usize::from(x)]);
            t = u32::from_le_bytes(b) ^ u32::from(rcon);
            rcon = gf_mul(rcon, 2);
        }
        w[i] = w[i - 4] ^ t;
    }
    w
}

/// An AES-128 key on the GPU, ready for counter-mode keystream.
pub struct DeviceAesCtr {
    gpu: Arc<Gpu>,
    round_keys: CudaSlice<u32>,
    sbox: CudaSlice<u32>,
}

impl std::fmt::Debug for DeviceAesCtr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceAesCtr { .. }")
    }
}

impl DeviceAesCtr {
    /// Key `key` on `gpu` (uploads 176 bytes of round keys and the S-box).
    pub fn new(gpu: &Arc<Gpu>, key: &[u8; 16]) -> Result<Self, GpuError> {
        let mut rk = aes128_expand_key(key);
        let uploaded = gpu.upload(&rk);
        rk.zeroize();
        let round_keys = uploaded?;
        let sbox: Vec<u32> = SBOX.iter().map(|&s| u32::from(s)).collect();
        Ok(DeviceAesCtr {
            gpu: gpu.clone(),
            round_keys,
            sbox: gpu.upload(&sbox)?,
        })
    }

    /// [`crate::kernels::AesCtr::fill_at`] on the GPU: words `offset..offset + out.len()` of the
    /// keystream whose blocks have high half `tweak`. Panics if the range passes 2^64 words.
    pub fn fill_at(&self, tweak: u64, offset: u64, out: &mut [u64]) -> Result<(), GpuError> {
        if out.is_empty() {
            return Ok(());
        }
        let len = u64::try_from(out.len()).expect("slice length fits in u64");
        assert!(
            offset.checked_add(len).is_some(),
            "AES-CTR stream range passes 2^64 words"
        );
        let gpu = &self.gpu;
        let f = gpu.function(&nvrtc::AES_CTR, "aes128_ctr_fill")?;
        let mut d_out = gpu
            .stream()
            .alloc_zeros::<u64>(out.len())
            .map_err(driver("allocating the keystream"))?;
        let blocks = (offset + len - 1) / 2 - offset / 2 + 1;
        let mut launch = gpu.stream().launch_builder(&f);
        launch
            .arg(&self.round_keys)
            .arg(&self.sbox)
            .arg(&tweak)
            .arg(&offset)
            .arg(&len)
            .arg(&mut d_out);
        // SAFETY: the kernel reads 44 round-key words and 256 S-box words (both uploaded in
        // full) and writes words w − offset < len of `out` only.
        unsafe { launch.launch(grid_1d(blocks, u64::from(THREADS))) }
            .map_err(driver("launching aes128_ctr_fill"))?;
        gpu.download(&d_out, out)
    }
}

impl Drop for DeviceAesCtr {
    fn drop(&mut self) {
        // Best effort: clear the key schedule in device memory before it is freed.
        let _ = self.gpu.stream().memset_zeros(&mut self.round_keys);
        let _ = self.gpu.sync();
    }
}
