// veil GPU kernels: common definitions, prepended to every kernel source before NVRTC compiles it.
// NVRTC has no system headers, so the fixed-width types are spelled out. All arithmetic on
// ring elements is on unsigned types, whose overflow wraps mod 2^64 (or 2^32) by definition.
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int u32;
typedef int i32;

// Wrapping sum of `v` over the 32 lanes of a warp, in lane 0 (every lane must call it).
__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
    for (int off = 16; off > 0; off >>= 1) {
        v += __shfl_down_sync(0xffffffffu, v, off);
    }
    return v;
}

// First global index of this thread and the stride of a grid-stride loop.
__device__ __forceinline__ u64 grid_index() {
    return (u64)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ u64 grid_stride() {
    return (u64)gridDim.x * blockDim.x;
}
