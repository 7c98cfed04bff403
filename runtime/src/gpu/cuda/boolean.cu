// AND layers of boolean replicated shares, 64 gates per word (CPU twins:
// kernels::rep3_and_cross_xor_assign, kernels::rep3_and_prefix_xor_assign).
//
// XOR shares: P_i holds (a_i, a_{i+1}) = (a0, a1); its term of a ∧ b is
// z_i = (a0 ∧ (b0 ⊕ b1)) ⊕ (a1 ∧ b0) (Araki et al., CCS 2016, §2.2 over Z_2). `out` enters
// holding the XOR zero-sharing mask, so the kernels XOR into it.

__device__ __forceinline__ u64 and_cross(u64 a0, u64 a1, u64 b0, u64 b1) {
    return (a0 & (b0 ^ b1)) ^ (a1 & b0);
}

// out[i] ^= and_cross(a0[i], a1[i], b0[i], b1[i]), grid-stride over n words.
extern "C" __global__ void rep3_and_cross_xor_assign(u64* __restrict__ out,
                                                     const u64* __restrict__ a0,
                                                     const u64* __restrict__ a1,
                                                     const u64* __restrict__ b0,
                                                     const u64* __restrict__ b1, u64 n) {
    for (u64 i = grid_index(); i < n; i += grid_stride()) {
        out[i] ^= and_cross(a0[i], a1[i], b0[i], b1[i]);
    }
}

// One Kogge–Stone level: out[j] ^= P ∧ (G ≪ k) for j < n and, when with_p != 0,
// out[n + j] ^= P ∧ (P ≪ k). k < 64 (checked on the host).
extern "C" __global__ void rep3_and_prefix_xor_assign(u64* __restrict__ out,
                                                      const u64* __restrict__ p0,
                                                      const u64* __restrict__ p1,
                                                      const u64* __restrict__ g0,
                                                      const u64* __restrict__ g1, u64 n,
                                                      u32 k, u32 with_p) {
    for (u64 j = grid_index(); j < n; j += grid_stride()) {
        const u64 a0 = p0[j], a1 = p1[j];
        out[j] ^= and_cross(a0, a1, g0[j] << k, g1[j] << k);
        if (with_p) {
            out[n + j] ^= and_cross(a0, a1, a0 << k, a1 << k);
        }
    }
}
