// AES-128 in counter mode over u64 words (CPU twin: kernels::AesCtr::fill_at): word w of the
// stream with high half `tweak` is half w mod 2 (little-endian) of AES_k(⌊w/2⌋ ‖ tweak), the
// counter in bytes 0..8 and the tweak in bytes 8..16 of the block, both little-endian.
//
// T-table AES (Daemen & Rijmen, "The Design of Rijndael", §4.2; the usual GPU form, e.g.
// Manavski, ICSPC 2007): the state is four columns, column c a u32 whose byte r (bits 8r..) is
// row r. One round (SubBytes, ShiftRows, MixColumns, AddRoundKey) of column c is
//   T0[s_c.b0] ^ T1[s_{c+1}.b1] ^ T2[s_{c+2}.b2] ^ T3[s_{c+3}.b3] ^ rk_c
// (ShiftRows takes row r of output column c from input column c + r), with
// T0[x] = (2·S[x], S[x], S[x], 3·S[x]) in rows 0..3 (the MixColumns column of row 0) and
// T_r = T0 rotated left by 8r bits. The last round has no MixColumns: S-box bytes only.
// Tables live in shared memory, built per block from the S-box the host passes (the host's
// S-box and key schedule are the ones the CPU test checks against FIPS-197). The host expands
// the key (FIPS-197 §5.2) into 44 little-endian round-key words.
//
// One thread per counter block; both words of a block are written if they fall inside
// [offset, offset + len) (an odd offset starts with the high half of block ⌊offset/2⌋).

__device__ __forceinline__ u32 rotl32(u32 x, u32 r) {
    return (x << r) | (x >> (32 - r));
}

__device__ __forceinline__ u32 xtime(u32 s) {
    return ((s << 1) ^ (((s >> 7) & 1u) * 0x1bu)) & 0xffu;
}

extern "C" __global__ void aes128_ctr_fill(const u32* __restrict__ round_keys,
                                           const u32* __restrict__ sbox, u64 tweak,
                                           u64 offset, u64 len, u64* __restrict__ out) {
    __shared__ u32 t0[256];
    __shared__ u32 sb[256];
    __shared__ u32 rk[44];
    for (u32 i = threadIdx.x; i < 256; i += blockDim.x) {
        const u32 s = sbox[i];
        const u32 s2 = xtime(s);
        t0[i] = s2 | (s << 8) | (s << 16) | ((s2 ^ s) << 24);
        sb[i] = s;
    }
    for (u32 i = threadIdx.x; i < 44; i += blockDim.x) {
        rk[i] = round_keys[i];
    }
    __syncthreads();
    if (len == 0) {
        return;
    }
    const u64 first = offset >> 1;
    const u64 blocks = ((offset + len - 1) >> 1) - first + 1;  // offset + len ≤ 2^64 (host)
    for (u64 i = grid_index(); i < blocks; i += grid_stride()) {
        const u64 ctr = first + i;
        u32 s0 = (u32)ctr ^ rk[0];
        u32 s1 = (u32)(ctr >> 32) ^ rk[1];
        u32 s2 = (u32)tweak ^ rk[2];
        u32 s3 = (u32)(tweak >> 32) ^ rk[3];
#pragma unroll
        for (int r = 1; r < 10; ++r) {
            const u32 n0 = t0[s0 & 0xffu] ^ rotl32(t0[(s1 >> 8) & 0xffu], 8) ^
                           rotl32(t0[(s2 >> 16) & 0xffu], 16) ^ rotl32(t0[s3 >> 24], 24) ^
                           rk[4 * r];
            const u32 n1 = t0[s1 & 0xffu] ^ rotl32(t0[(s2 >> 8) & 0xffu], 8) ^
                           rotl32(t0[(s3 >> 16) & 0xffu], 16) ^ rotl32(t0[s0 >> 24], 24) ^
                           rk[4 * r + 1];
            const u32 n2 = t0[s2 & 0xffu] ^ rotl32(t0[(s3 >> 8) & 0xffu], 8) ^
                           rotl32(t0[(s0 >> 16) & 0xffu], 16) ^ rotl32(t0[s1 >> 24], 24) ^
                           rk[4 * r + 2];
            const u32 n3 = t0[s3 & 0xffu] ^ rotl32(t0[(s0 >> 8) & 0xffu], 8) ^
                           rotl32(t0[(s1 >> 16) & 0xffu], 16) ^ rotl32(t0[s2 >> 24], 24) ^
                           rk[4 * r + 3];
            s0 = n0;
            s1 = n1;
            s2 = n2;
            s3 = n3;
        }
        const u32 o0 = (sb[s0 & 0xffu] | (sb[(s1 >> 8) & 0xffu] << 8) |
                        (sb[(s2 >> 16) & 0xffu] << 16) | (sb[s3 >> 24] << 24)) ^ rk[40];
        const u32 o1 = (sb[s1 & 0xffu] | (sb[(s2 >> 8) & 0xffu] << 8) |
                        (sb[(s3 >> 16) & 0xffu] << 16) | (sb[s0 >> 24] << 24)) ^ rk[41];
        const u32 o2 = (sb[s2 & 0xffu] | (sb[(s3 >> 8) & 0xffu] << 8) |
                        (sb[(s0 >> 16) & 0xffu] << 16) | (sb[s1 >> 24] << 24)) ^ rk[42];
        const u32 o3 = (sb[s3 & 0xffu] | (sb[(s0 >> 8) & 0xffu] << 8) |
                        (sb[(s1 >> 16) & 0xffu] << 16) | (sb[s2 >> 24] << 24)) ^ rk[43];
        // Words 2·ctr (low half) and 2·ctr + 1 (high half), where inside the range. The first
        // block may start one word early (odd offset); 2·ctr ≤ offset + len − 1 always.
        const u64 w = 2 * ctr;
        if (w >= offset) {
            out[w - offset] = (u64)o0 | ((u64)o1 << 32);
        }
        if (w + 1 - offset < len) {
            out[w + 1 - offset] = (u64)o2 | ((u64)o3 << 32);
        }
    }
}
