// Z_2^64 kernels of replicated-share products (CPU twins: kernels::rep3_cross_add_assign,
// kernels::rep3_dot_rows_add_assign, kernels::gemm_u64_add_assign, kernels::rep3_matmul_add_assign).
//
// P_i holds (x_i, x_{i+1}) = (x0, x1) and (y0, y1); its local term of x·y is
// z_i = x0·(y0 + y1) + x1·y0 (Araki et al., CCS 2016, §2.2). `out` enters holding the
// zero-sharing mask α_i, so every kernel here adds into it: the mask add is fused.
// Wrapping addition is associative and commutative, so any order of summation (per-thread
// partial sums, warp shuffles, tiles) equals the CPU result bit for bit.

// out[i] += x0[i]·(y0[i] + y1[i]) + x1[i]·y0[i], grid-stride over n elements.
extern "C" __global__ void rep3_cross_add_assign(u64* __restrict__ out,
                                                 const u64* __restrict__ x0,
                                                 const u64* __restrict__ x1,
                                                 const u64* __restrict__ y0,
                                                 const u64* __restrict__ y1, u64 n) {
    for (u64 i = grid_index(); i < n; i += grid_stride()) {
        const u64 b0 = y0[i];
        out[i] += x0[i] * (b0 + y1[i]) + x1[i] * b0;
    }
}

// One warp per row: out[r] += Σ_j term(r, j), the warp's lanes striding over the columns and
// their partial sums combined with shuffles. Row r of y starts at r·y_stride (y_stride = cols
// for row-wise dot products, 0 for a matrix–vector product with one shared vector).
// REP3: term = x0·(y0 + y1) + x1·y0; otherwise term = x0·y0 (x1, y1 unused).
template <bool REP3>
__device__ __forceinline__ void dot_rows(u64* __restrict__ out, const u64* __restrict__ x0,
                                         const u64* __restrict__ x1,
                                         const u64* __restrict__ y0,
                                         const u64* __restrict__ y1, u64 rows, u64 cols,
                                         u64 y_stride) {
    const u32 lane = threadIdx.x & 31u;
    const u64 warps = grid_stride() >> 5;
    for (u64 r = grid_index() >> 5; r < rows; r += warps) {  // warp-uniform
        const u64* a0 = x0 + r * cols;
        const u64* b0 = y0 + r * y_stride;
        u64 s = 0;
        if (REP3) {
            const u64* a1 = x1 + r * cols;
            const u64* b1 = y1 + r * y_stride;
            for (u64 j = lane; j < cols; j += 32) {
                const u64 v0 = b0[j];
                s += a0[j] * (v0 + b1[j]) + a1[j] * v0;
            }
        } else {
            for (u64 j = lane; j < cols; j += 32) {
                s += a0[j] * b0[j];
            }
        }
        s = warp_sum_u64(s);
        if (lane == 0) {
            out[r] += s;
        }
    }
}

// Row-wise replicated dot products (y_stride = cols) or the matrix–vector case of the
// replicated matmul (y_stride = 0). Block size: a multiple of 32.
extern "C" __global__ void rep3_dot_rows_add_assign(u64* __restrict__ out,
                                                    const u64* __restrict__ x0,
                                                    const u64* __restrict__ x1,
                                                    const u64* __restrict__ y0,
                                                    const u64* __restrict__ y1, u64 rows,
                                                    u64 cols, u64 y_stride) {
    dot_rows<true>(out, x0, x1, y0, y1, rows, cols, y_stride);
}

// c[r] += Σ_p a[r, p]·b[p]: the n = 1 case of gemm_u64_add_assign.
extern "C" __global__ void gemv_u64_add_assign(u64* __restrict__ c, const u64* __restrict__ a,
                                               const u64* __restrict__ b, u64 m, u64 k) {
    dot_rows<false>(c, a, a, b, b, m, k, 0);
}

// Tiled GEMM: each block of GEMM_THREADS threads computes a GEMM_TILE × GEMM_TILE tile of c,
// each thread a 4 × 4 register block (rows ty + 16i, columns tx + 16j: the 16 threads of a
// half-warp read 16 consecutive words of a B tile, and a warp's two rows of A are broadcasts).
// The depth is walked in steps of GEMM_TK through shared memory (the classic scheme of
// Volkov & Demmel, SC 2008; Piranha, Watson et al., USENIX Security 2022, runs its Z_2^64
// share products through the same integer GEMM structure). Out-of-range elements load as 0.
// REP3: c += x0·(y0 + y1) + x1·y0 (four tiles: x0, x1, y0 + y1, y0); otherwise c += x0·y0.
#define GEMM_TILE 64
#define GEMM_TK 16
#define GEMM_THREADS 256

template <bool REP3>
__device__ __forceinline__ void gemm_tiles(u64 m, u64 k, u64 n, const u64* __restrict__ x0,
                                           const u64* __restrict__ x1,
                                           const u64* __restrict__ y0,
                                           const u64* __restrict__ y1, u64* __restrict__ c) {
    // A tiles transposed ([depth][row]) and padded by one word against bank conflicts on store.
    __shared__ u64 a0s[GEMM_TK][GEMM_TILE + 1];
    __shared__ u64 a1s[REP3 ? GEMM_TK : 1][GEMM_TILE + 1];
    __shared__ u64 b0s[GEMM_TK][GEMM_TILE];
    __shared__ u64 b1s[REP3 ? GEMM_TK : 1][GEMM_TILE];
    const u32 tid = threadIdx.x;
    const u32 ty = tid / 16, tx = tid % 16;
    const u64 tiles_m = (m + GEMM_TILE - 1) / GEMM_TILE;
    const u64 tiles_n = (n + GEMM_TILE - 1) / GEMM_TILE;
    // Block-uniform loops (every thread of a block runs the same iterations: the barriers
    // below are safe).
    for (u64 tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
        for (u64 tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
            const u64 row0 = tm * GEMM_TILE, col0 = tn * GEMM_TILE;
            u64 acc[4][4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    acc[i][j] = 0;
                }
            }
            for (u64 p0 = 0; p0 < k; p0 += GEMM_TK) {
                // 64 × 16 words of A and 16 × 64 of B: four of each per thread, coalesced.
#pragma unroll
                for (int l = 0; l < 4; ++l) {
                    const u32 e = tid + GEMM_THREADS * l;
                    const u32 ai = e / GEMM_TK, ap = e % GEMM_TK;
                    const u64 ar = row0 + ai, ac = p0 + ap;
                    const bool a_in = ar < m && ac < k;
                    a0s[ap][ai] = a_in ? x0[ar * k + ac] : 0;
                    if (REP3) {
                        a1s[ap][ai] = a_in ? x1[ar * k + ac] : 0;
                    }
                    const u32 bp = e / GEMM_TILE, bj = e % GEMM_TILE;
                    const u64 br = p0 + bp, bc = col0 + bj;
                    const bool b_in = br < k && bc < n;
                    const u64 v0 = b_in ? y0[br * n + bc] : 0;
                    if (REP3) {
                        const u64 v1 = b_in ? y1[br * n + bc] : 0;
                        b0s[bp][bj] = v0 + v1;
                        b1s[bp][bj] = v0;
                    } else {
                        b0s[bp][bj] = v0;
                    }
                }
                __syncthreads();
#pragma unroll 4
                for (int p = 0; p < GEMM_TK; ++p) {
                    u64 a[4], b[4];
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        a[i] = a0s[p][ty + 16 * i];
                        b[i] = b0s[p][tx + 16 * i];
                    }
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
#pragma unroll
                        for (int j = 0; j < 4; ++j) {
                            acc[i][j] += a[i] * b[j];
                        }
                    }
                    if (REP3) {
#pragma unroll
                        for (int i = 0; i < 4; ++i) {
                            a[i] = a1s[p][ty + 16 * i];
                            b[i] = b1s[p][tx + 16 * i];
                        }
#pragma unroll
                        for (int i = 0; i < 4; ++i) {
#pragma unroll
                            for (int j = 0; j < 4; ++j) {
                                acc[i][j] += a[i] * b[j];
                            }
                        }
                    }
                }
                __syncthreads();
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const u64 r = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
                    if (r < m && col < n) {
                        c[r * n + col] += acc[i][j];
                    }
                }
            }
        }
    }
}

// c += a·b, a m×k, b k×n, c m×n, row-major. Block: GEMM_THREADS threads.
extern "C" __global__ void gemm_u64_add_assign(u64 m, u64 k, u64 n, const u64* __restrict__ a,
                                               const u64* __restrict__ b,
                                               u64* __restrict__ c) {
    gemm_tiles<false>(m, k, n, a, a, b, b, c);
}

// out += x0·(y0 + y1) + x1·y0: both products of a replicated matmul in one pass over the tiles.
// Block: GEMM_THREADS threads.
extern "C" __global__ void rep3_matmul_add_assign(u64 m, u64 k, u64 n,
                                                  const u64* __restrict__ x0,
                                                  const u64* __restrict__ x1,
                                                  const u64* __restrict__ y0,
                                                  const u64* __restrict__ y1,
                                                  u64* __restrict__ out) {
    gemm_tiles<true>(m, k, n, x0, x1, y0, y1, out);
}
