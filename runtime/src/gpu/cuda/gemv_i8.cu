// Wrapping i8 × u64 matrix–vector products over Z_2^64, the server scan of the TFHE retrieval
// path (CPU twin: kernels::par_gemm_i8_u64): s_q[r] = Σ_j D[r, j]·b_q[j] mod 2^64.
//
// Limb math: each b[j] is split on the host into two balanced signed 32-bit limbs,
// b ≡ l0 + l1·2^32 (mod 2^64) with l0 = b mod 2^32 read as an i32 and l1 = (b − l0) / 2^32
// mod 2^32 read as an i32. Then D·b ≡ D·l0 + (D·l1)·2^32, where
// - D·l0 is exact in 64 bits (|D·l0| ≤ 2^7·2^31 = 2^38: one `mul.wide.s32`), summed in u64;
// - D·l1 only matters mod 2^32 (its weight is 2^32), so it is multiplied and summed in u32,
//   wrapping freely.
// So s ≡ Σ D·l0 + (Σ D·l1 mod 2^32)·2^32 (mod 2^64): two 32-bit multiply-adds per byte of D
// instead of a 64-bit multiply (three). A GPU scan of a memory-bound PIR/GEMV database runs near
// the card's memory bandwidth (Tiptoe, Henzinger et al., SOSP 2023, §8; iris-mpc keeps its
// database resident on the device the same way).
//
// Layout: D is resident on the device, row-major with rows padded to a multiple of 16 bytes
// (zeros), read as uint4 chunks of 16 bytes; the limbs of query q are int2 (l0, l1) per column,
// padded with zeros to the same width and read as int4 (two columns per load). A block holds
// GEMV_WARPS warps, each owning one row at a time; blockIdx.x picks a segment of seg_chunks
// chunks of the row, so that a few long rows still spread over the whole device. Each warp
// adds its segment's partial sum into out with atomicAdd (wrapping, hence order-independent:
// the result is exact whatever the interleaving). `out` (q-major, out[q·rows + r]) starts at 0.

#define GEMV_MAX_QUERIES 4

// Byte t (0..3) of w, sign-extended (well-defined for every value, unlike a narrowing cast).
__device__ __forceinline__ i32 sbyte(u32 w, u32 t) {
    return (i32)(((w >> (8 * t)) & 0xffu) ^ 0x80u) - 0x80;
}

extern "C" __global__ void gemv_i8_u64(const uint4* __restrict__ d, u64 rows, u64 chunks,
                                       const int4* __restrict__ limbs, u32 q0, u32 nq,
                                       u64 seg_chunks, u64* __restrict__ out) {
    const u32 lane = threadIdx.x & 31u;
    const u32 warps_per_block = blockDim.x >> 5;
    const u64 c_begin = (u64)blockIdx.x * seg_chunks;
    const u64 c_end = min(c_begin + seg_chunks, chunks);
    // Row r's warp: warp-uniform loop (the shuffles below need all 32 lanes).
    for (u64 r = (u64)blockIdx.y * warps_per_block + (threadIdx.x >> 5); r < rows;
         r += (u64)gridDim.y * warps_per_block) {
        u64 lo[GEMV_MAX_QUERIES];
        u32 hi[GEMV_MAX_QUERIES];
#pragma unroll
        for (int q = 0; q < GEMV_MAX_QUERIES; ++q) {
            lo[q] = 0;
            hi[q] = 0;
        }
        const uint4* row = d + r * chunks;
        for (u64 c = c_begin + lane; c < c_end; c += 32) {
            const uint4 v = row[c];
            const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int q = 0; q < GEMV_MAX_QUERIES; ++q) {
                if ((u32)q < nq) {
                    // 16 columns of limbs: 8 int4 of two (l0, l1) pairs each.
                    const int4* l = limbs + ((u64)(q0 + q) * chunks + c) * 8;
#pragma unroll
                    for (int h = 0; h < 8; ++h) {
                        const int4 p = l[h];
                        const i32 d0 = sbyte(w[h / 2], 2 * (h % 2));
                        const i32 d1 = sbyte(w[h / 2], 2 * (h % 2) + 1);
                        lo[q] += (u64)((i64)d0 * (i64)p.x) + (u64)((i64)d1 * (i64)p.z);
                        hi[q] += (u32)d0 * (u32)p.y + (u32)d1 * (u32)p.w;
                    }
                }
            }
        }
#pragma unroll
        for (int q = 0; q < GEMV_MAX_QUERIES; ++q) {
            if ((u32)q < nq) {
                const u64 s = warp_sum_u64(lo[q] + ((u64)hi[q] << 32));
                if (lane == 0) {
                    atomicAdd(&out[(u64)(q0 + q) * rows + r], s);
                }
            }
        }
    }
}
