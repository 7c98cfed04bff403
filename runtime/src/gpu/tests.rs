//! Tests of the GPU module.
//!
//! - `nvrtc_*`: every kernel source compiles with NVRTC for `sm_80` and `sm_90` with an empty log
//!   (no error, no warning). They need only `libnvrtc` (no GPU, no driver) and skip, saying so,
//!   when it cannot be loaded. CI runs them with the `nvidia-cuda-nvrtc-cu12` wheel.
//! - `gpu_*`: every kernel equals its CPU twin bit for bit on awkward sizes; they skip, saying
//!   why, when no driver or device is present.
//! - The rest check the host-side math of the kernels on the CPU: the S-box and key schedule
//!   against FIPS-197, a line-by-line Rust model of the T-table kernel against the `aes` crate,
//!   and the 32-bit limb split of the scan against the scalar GEMV.

use std::sync::Arc;

use aes::cipher::{BlockEncrypt, KeyInit};
use rand::Rng;

use super::nvrtc::{self, KernelSource};
use super::*;
use crate::kernels::{self, AesCtr, PreparedVector};
use crate::testing::{ring_vec_with_edges, test_rng};

/// Architectures CI compiles every kernel for (A100 and H100).
const ARCHS: [&str; 2] = ["sm_80", "sm_90"];

/// Compiles `src` for every arch in [`ARCHS`]; fails on any error or warning. Skips (with a
/// printed reason) only when libnvrtc cannot be loaded.
fn check_compiles(src: &KernelSource) {
    if !nvrtc::nvrtc_available() {
        eprintln!(
            "skipping nvrtc test of {}: libnvrtc could not be loaded (pip install \
             nvidia-cuda-nvrtc-cu12 and put nvidia/cuda_nvrtc/lib on LD_LIBRARY_PATH)",
            src.name
        );
        return;
    }
    for arch in ARCHS {
        let compiled = match nvrtc::compile(src, arch) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(
            compiled.log.is_empty(),
            "NVRTC warnings in {} for {arch}:\n{}",
            src.name,
            compiled.log
        );
        assert!(
            !compiled.cubin.is_empty(),
            "{} {arch}: empty CUBIN",
            src.name
        );
        for f in src.functions {
            // Entry points are `extern "C"`: their names appear unmangled in the ELF symbols.
            assert!(
                compiled.cubin.windows(f.len()).any(|w| w == f.as_bytes()),
                "{} {arch}: no entry point {f}",
                src.name
            );
        }
    }
}

#[test]
fn nvrtc_compiles_ring() {
    check_compiles(&nvrtc::RING);
}

#[test]
fn nvrtc_compiles_gemv_i8() {
    check_compiles(&nvrtc::GEMV_I8);
}

#[test]
fn nvrtc_compiles_aes_ctr() {
    check_compiles(&nvrtc::AES_CTR);
}

#[test]
fn nvrtc_compiles_boolean() {
    check_compiles(&nvrtc::BOOLEAN);
}

#[test]
fn nvrtc_every_source_has_a_test() {
    // The four tests above, by name; a new source must get its own.
    let tested = ["ring", "gemv_i8", "aes_ctr", "boolean"];
    let names: Vec<&str> = nvrtc::SOURCES.iter().map(|s| s.name).collect();
    assert_eq!(names, tested);
}

#[test]
fn nvrtc_reports_errors_and_warnings() {
    if !nvrtc::nvrtc_available() {
        eprintln!("skipping nvrtc_reports_errors_and_warnings: libnvrtc could not be loaded");
        return;
    }
    // The checks above rely on NVRTC reporting warnings in the log of a successful compile.
    const WARNS: KernelSource = KernelSource {
        name: "warns",
        code: "extern \"C\" __global__ void k(int* p) { int unused = 1; *p = 0; }",
        functions: &["k"],
    };
    const BROKEN: KernelSource = KernelSource {
        name: "broken",
        code: "extern \"C\" __global__ void k(int* p) { *p = undefined_name; }",
        functions: &["k"],
    };
    let warned = nvrtc::compile(&WARNS, "sm_80").expect("a warning is not an error");
    assert!(warned.log.contains("warning"), "log: {:?}", warned.log);
    match nvrtc::compile(&BROKEN, "sm_80") {
        Err(GpuError::Compile { kernel, log, .. }) => {
            assert_eq!(kernel, "broken");
            assert!(log.contains("undefined_name"), "log: {log}");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

/// The GPU, or `None` with the reason printed (no driver, no NVRTC, no device).
fn gpu_or_skip(test: &str) -> Option<Arc<Gpu>> {
    match Gpu::open(0) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            eprintln!("skipping {test}: {e}");
            None
        }
    }
}

/// Element counts that are awkward for the kernels: empty, one, around a warp, a block and a
/// tile, primes, and large.
const SIZES: [usize; 12] = [
    0,
    1,
    2,
    31,
    33,
    97,
    255,
    256,
    257,
    1009,
    65_537,
    (1 << 20) + 3,
];

fn vecs<const N: usize>(rng: &mut impl Rng, n: usize) -> [Vec<u64>; N] {
    std::array::from_fn(|_| ring_vec_with_edges(rng, n))
}

#[test]
fn gpu_cross_terms_match_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_cross_terms_match_cpu") else {
        return;
    };
    let mut rng = test_rng();
    for n in SIZES {
        let [x0, x1, y0, y1, start] = vecs(&mut rng, n);
        let mut want = start.clone();
        kernels::rep3_cross_add_assign(&mut want, &x0, &x1, &y0, &y1);
        let mut got = start;
        gpu.rep3_cross_add_assign(&mut got, &x0, &x1, &y0, &y1)
            .unwrap();
        assert_eq!(got, want, "n = {n}");
    }
}

#[test]
fn gpu_dot_rows_match_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_dot_rows_match_cpu") else {
        return;
    };
    let mut rng = test_rng();
    for (rows, cols) in [
        (0, 0),
        (0, 7),
        (5, 0),
        (1, 1),
        (1, 31),
        (3, 33),
        (97, 384),
        (1009, 65),
        (10_000, 384),
        (2, 100_003),
    ] {
        let [x0, x1, y0, y1] = vecs(&mut rng, rows * cols);
        let start = ring_vec_with_edges(&mut rng, rows);
        let mut want = start.clone();
        kernels::rep3_dot_rows_add_assign(cols, &mut want, &x0, &x1, &y0, &y1);
        let mut got = start;
        gpu.rep3_dot_rows_add_assign(cols, &mut got, &x0, &x1, &y0, &y1)
            .unwrap();
        assert_eq!(got, want, "{rows}×{cols}");
    }
}

/// GEMM shapes: empty, vectors, around the 64-wide tile and the 16-deep step, primes, large.
const GEMM_SHAPES: [(usize, usize, usize); 12] = [
    (0, 0, 0),
    (3, 0, 4),
    (1, 1, 1),
    (1, 7, 1),
    (127, 300, 1),
    (3, 5, 7),
    (63, 15, 65),
    (64, 16, 64),
    (65, 17, 129),
    (1, 1000, 3),
    (257, 129, 97),
    (512, 512, 512),
];

#[test]
fn gpu_gemm_matches_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_gemm_matches_cpu") else {
        return;
    };
    let mut rng = test_rng();
    for (m, k, n) in GEMM_SHAPES {
        let a = ring_vec_with_edges(&mut rng, m * k);
        let b = ring_vec_with_edges(&mut rng, k * n);
        let start = ring_vec_with_edges(&mut rng, m * n);
        let mut want = start.clone();
        kernels::par_gemm_u64_add_assign(m, k, n, &a, &b, &mut want);
        let mut got = start;
        gpu.gemm_u64_add_assign(m, k, n, &a, &b, &mut got).unwrap();
        assert_eq!(got, want, "{m}×{k}×{n}");
    }
}

#[test]
fn gpu_rep3_matmul_matches_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_rep3_matmul_matches_cpu") else {
        return;
    };
    let mut rng = test_rng();
    for (m, k, n) in GEMM_SHAPES {
        let [x0, x1] = vecs(&mut rng, m * k);
        let [y0, y1] = vecs(&mut rng, k * n);
        let start = ring_vec_with_edges(&mut rng, m * n);
        let mut want = start.clone();
        kernels::rep3_matmul_add_assign((m, k, n), &x0, &x1, &y0, &y1, &mut want);
        let mut got = start;
        gpu.rep3_matmul_add_assign((m, k, n), &x0, &x1, &y0, &y1, &mut got)
            .unwrap();
        assert_eq!(got, want, "{m}×{k}×{n}");
    }
}

/// `n` i8 values with the extremes somewhere.
fn i8_vec(rng: &mut impl Rng, n: usize) -> Vec<i8> {
    let mut d: Vec<i8> = (0..n).map(|_| rng.random()).collect();
    for (i, e) in [i8::MIN, i8::MAX, -1, 0, 1].into_iter().enumerate() {
        if n > 0 {
            d[(i * 7919 + rng.random_range(0..n)) % n] = e;
        }
    }
    d
}

#[test]
fn gpu_resident_gemv_i8_matches_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_resident_gemv_i8_matches_cpu") else {
        return;
    };
    let mut rng = test_rng();
    for (rows, cols, nq) in [
        (0, 16, 1),
        (3, 0, 2),
        (1, 1, 1),
        (7, 15, 1),
        (9, 17, 2),
        (33, 2047, 4),
        (5, 2049, 5),
        (1000, 384, 6),
        (3, 70_001, 1),
        (4099, 2048, 3),
    ] {
        let d = i8_vec(&mut rng, rows * cols);
        let queries: Vec<PreparedVector> = (0..nq)
            .map(|_| PreparedVector::new(&ring_vec_with_edges(&mut rng, cols)))
            .collect();
        let want = kernels::par_gemm_i8_u64(&d, rows, &queries);
        let resident = ResidentI8Matrix::upload(&gpu, &d, rows, cols).unwrap();
        // Twice against the same upload: the matrix stays resident and unchanged.
        for _ in 0..2 {
            assert_eq!(resident.gemm(&queries).unwrap(), want, "{rows}×{cols}×{nq}");
        }
    }
    // Every product at its extreme, long rows (the u32 half wraps, the u64 half does not).
    for (dv, bv) in [
        (i8::MIN, u64::MAX),
        (i8::MIN, 1 << 63),
        (i8::MAX, 0x8000_0000),
    ] {
        let (rows, cols) = (3, 70_001);
        let d = vec![dv; rows * cols];
        let b = vec![bv; cols];
        let resident = ResidentI8Matrix::upload(&gpu, &d, rows, cols).unwrap();
        let want = kernels::gemv_i8_u64_scalar(&d, rows, &b);
        assert_eq!(resident.gemv(&b).unwrap(), want, "D = {dv}, b = {bv:#x}");
    }
}

#[test]
fn gpu_aes_ctr_matches_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_aes_ctr_matches_cpu") else {
        return;
    };
    for key in [
        [0u8; 16],
        [0x2b; 16],
        std::array::from_fn(|i| (i * 37) as u8),
    ] {
        let cpu = AesCtr::new(&key);
        let dev = DeviceAesCtr::new(&gpu, &key).unwrap();
        for tweak in [0u64, 5 | (2 << 47), u64::MAX >> 1] {
            for offset in [0u64, 1, 2, 3, 31, 1 << 40 | 5] {
                for len in [0usize, 1, 2, 3, 255, 256, 257, 4097, (1 << 20) + 1] {
                    let mut want = vec![0u64; len];
                    cpu.fill_at(tweak, offset, &mut want);
                    let mut got = vec![!0u64; len];
                    dev.fill_at(tweak, offset, &mut got).unwrap();
                    assert_eq!(got, want, "tweak {tweak:#x} offset {offset} len {len}");
                }
            }
        }
    }
}

#[test]
fn gpu_and_layers_match_cpu() {
    let Some(gpu) = gpu_or_skip("gpu_and_layers_match_cpu") else {
        return;
    };
    let mut rng = test_rng();
    for n in SIZES {
        let [a0, a1, b0, b1] = vecs(&mut rng, n);
        let start = ring_vec_with_edges(&mut rng, 2 * n);
        let mut want = start[..n].to_vec();
        kernels::rep3_and_cross_xor_assign(&mut want, &a0, &a1, &b0, &b1);
        let mut got = start[..n].to_vec();
        gpu.rep3_and_cross_xor_assign(&mut got, &a0, &a1, &b0, &b1)
            .unwrap();
        assert_eq!(got, want, "and n = {n}");
        for (k, with_p) in [(0, true), (1, false), (31, true), (63, true)] {
            let len = if with_p { 2 * n } else { n };
            let mut want = start[..len].to_vec();
            kernels::rep3_and_prefix_xor_assign(k, with_p, &mut want, &a0, &a1, &b0, &b1);
            let mut got = start[..len].to_vec();
            gpu.rep3_and_prefix_xor_assign(k, with_p, &mut got, &a0, &a1, &b0, &b1)
                .unwrap();
            assert_eq!(got, want, "prefix n = {n} k = {k} with_p = {with_p}");
        }
    }
}

#[test]
fn opening_without_a_driver_is_an_error_not_a_panic() {
    if driver_available() {
        eprintln!("skipping opening_without_a_driver_is_an_error_not_a_panic: a driver is present");
        return;
    }
    let err = Gpu::open(0).unwrap_err();
    assert!(matches!(err, GpuError::NoDriver), "{err}");
    let d = crate::device::Device::Cuda { ordinal: 0 };
    assert_eq!(
        err.into_device_error(d),
        crate::device::DeviceError::NoDriver(d)
    );
}

#[test]
fn dispatch_on_the_cpu_equals_the_kernels() {
    // No device chosen in tests (VEIL_DEVICE unset): everything runs on the CPU twins.
    let mut rng = test_rng();
    let n = 1000;
    let [x0, x1, y0, y1, start] = vecs(&mut rng, n);
    let mut a = start.clone();
    let mut b = start.clone();
    dispatch::rep3_cross_add_assign(&mut a, &x0, &x1, &y0, &y1);
    kernels::rep3_cross_add_assign(&mut b, &x0, &x1, &y0, &y1);
    assert_eq!(a, b);
    let (mut a, mut b) = (start[..10].to_vec(), start[..10].to_vec());
    dispatch::rep3_dot_rows_add_assign(100, &mut a, &x0, &x1, &y0, &y1);
    kernels::rep3_dot_rows_add_assign(100, &mut b, &x0, &x1, &y0, &y1);
    assert_eq!(a, b);
    let (mut a, mut b) = (start[..100].to_vec(), start[..100].to_vec());
    dispatch::rep3_matmul_add_assign((10, 100, 10), &x0, &x1, &y0, &y1, &mut a);
    kernels::rep3_matmul_add_assign((10, 100, 10), &x0, &x1, &y0, &y1, &mut b);
    assert_eq!(a, b);
    assert_eq!(dispatch::gpu_fallbacks(), 0);
}

#[test]
fn sbox_and_key_schedule_match_fips197() {
    let s = aes_sbox();
    // FIPS-197 Figure 7 samples.
    assert_eq!(
        (s[0x00], s[0x01], s[0x53], s[0xff]),
        (0x63, 0x7c, 0xed, 0x16)
    );
    let mut sorted = s.to_vec();
    sorted.sort_unstable();
    assert!(
        sorted.iter().enumerate().all(|(i, &v)| usize::from(v) == i),
        "a permutation"
    );
    // FIPS-197 Appendix A.1: key 2b7e1516 28aed2a6 abf71588 09cf4f3c.
    let key = [
        0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f,
        0x3c,
    ];
    let w = aes128_expand_key(&key);
    let be = |i: usize| u32::from_be_bytes(w[i].to_le_bytes());
    assert_eq!((be(4), be(5), be(43)), (0xa0fafe17, 0x88542cb1, 0xb6630ca6));
    assert_eq!(
        (be(40), be(41), be(42)),
        (0xd014f9a8, 0xc9ee2589, 0xe13f0cc8)
    );
}

/// A line-by-line Rust model of `aes128_ctr_fill`'s block encryption (T-table rounds on
/// little-endian columns), to check the kernel's table and indexing on the CPU.
fn ttable_model(rk: &[u32; 44], block: [u32; 4]) -> [u32; 4] {
    let sb = aes_sbox();
    let xtime = |s: u32| ((s << 1) ^ (((s >> 7) & 1) * 0x1b)) & 0xff;
    let t0: Vec<u32> = (0..256)
        .map(|i| {
            let s = u32::from(sb[i]);
            let s2 = xtime(s);
            s2 | (s << 8) | (s << 16) | ((s2 ^ s) << 24)
        })
        .collect();
    let b = |x: u32, j: u32| ((x >> (8 * j)) & 0xff) as usize;
    let mut s: [u32; 4] = std::array::from_fn(|c| block[c] ^ rk[c]);
    for r in 1..10 {
        s = std::array::from_fn(|c| {
            t0[b(s[c], 0)]
                ^ t0[b(s[(c + 1) % 4], 1)].rotate_left(8)
                ^ t0[b(s[(c + 2) % 4], 2)].rotate_left(16)
                ^ t0[b(s[(c + 3) % 4], 3)].rotate_left(24)
                ^ rk[4 * r + c]
        });
    }
    std::array::from_fn(|c| {
        (0..4u32).fold(0, |o, j| {
            o | (u32::from(sb[b(s[(c + j as usize) % 4], j)]) << (8 * j))
        }) ^ rk[40 + c]
    })
}

#[test]
fn ttable_model_equals_aes() {
    let mut rng = test_rng();
    for _ in 0..200 {
        let key: [u8; 16] = rng.random();
        let (ctr, tweak): (u64, u64) = (rng.random(), rng.random());
        let rk = aes128_expand_key(&key);
        let words = [
            ctr as u32,
            (ctr >> 32) as u32,
            tweak as u32,
            (tweak >> 32) as u32,
        ];
        let got = ttable_model(&rk, words);
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&ctr.to_le_bytes());
        block[8..].copy_from_slice(&tweak.to_le_bytes());
        let mut blk = aes::Block::from(block);
        aes::Aes128::new(&key.into()).encrypt_block(&mut blk);
        let want: [u32; 4] =
            std::array::from_fn(|c| u32::from_le_bytes(blk[4 * c..4 * c + 4].try_into().unwrap()));
        assert_eq!(got, want);
    }
}

#[test]
fn limb32_split_reconstructs_and_scans_exactly() {
    let mut rng = test_rng();
    let mut b = ring_vec_with_edges(&mut rng, 5000);
    b.extend([
        0,
        1,
        u64::MAX,
        1 << 63,
        0x8000_0000,
        0x7fff_ffff,
        0xffff_ffff,
        1 << 32,
    ]);
    for &v in &b {
        let (l0, l1) = split_limbs32(v);
        let back = (l0 as i64 as u64).wrapping_add((l1 as i64 as u64) << 32);
        assert_eq!(back, v, "{v:#x}");
    }
    // The kernel's per-row arithmetic: Σ D·l0 in u64 (exact products), Σ D·l1 in u32.
    let d = i8_vec(&mut rng, 3 * b.len());
    let want = kernels::gemv_i8_u64_scalar(&d, 3, &b);
    for (r, row) in d.chunks(b.len()).enumerate() {
        let (mut lo, mut hi) = (0u64, 0u32);
        for (&x, &v) in row.iter().zip(&b) {
            let (l0, l1) = split_limbs32(v);
            lo = lo.wrapping_add((i64::from(x) * i64::from(l0)) as u64);
            hi = hi.wrapping_add((i32::from(x) as u32).wrapping_mul(l1 as u32));
        }
        assert_eq!(lo.wrapping_add(u64::from(hi) << 32), want[r], "row {r}");
    }
}
