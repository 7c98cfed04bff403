//! AND layers of boolean replicated shares on the GPU (`cuda/boolean.cu`), twins of
//! [`crate::kernels::rep3_and_cross_xor_assign`] and [`crate::kernels::rep3_and_prefix_xor_assign`].

use cudarc::driver::PushKernelArg;

use super::ring::{THREADS, grid_1d};
use super::{Gpu, GpuError, driver, nvrtc};
use crate::kernels::rep3::{check_and_prefix, check_lens};

impl Gpu {
    /// [`crate::kernels::rep3_and_cross_xor_assign`] on the GPU:
    /// `out[i] ^= (a0[i] ∧ (b0[i] ⊕ b1[i])) ⊕ (a1[i] ∧ b0[i])`. Panics if lengths differ.
    pub fn rep3_and_cross_xor_assign(
        &self,
        out: &mut [u64],
        a0: &[u64],
        a1: &[u64],
        b0: &[u64],
        b1: &[u64],
    ) -> Result<(), GpuError> {
        let n = out.len();
        check_lens(
            "rep3_and_cross_xor_assign",
            n,
            [a0.len(), a1.len(), b0.len(), b1.len()],
        );
        if n == 0 {
            return Ok(());
        }
        let f = self.function(&nvrtc::BOOLEAN, "rep3_and_cross_xor_assign")?;
        let mut d_out = self.upload(out)?;
        let [d_a0, d_a1, d_b0, d_b1] = [a0, a1, b0, b1].map(|v| self.upload(v));
        let (d_a0, d_a1, d_b0, d_b1) = (d_a0?, d_a1?, d_b0?, d_b1?);
        let n64 = n as u64;
        let mut launch = self.stream().launch_builder(&f);
        launch
            .arg(&mut d_out)
            .arg(&d_a0)
            .arg(&d_a1)
            .arg(&d_b0)
            .arg(&d_b1)
            .arg(&n64);
        // SAFETY: the kernel touches words 0..n of each buffer, all of which hold n words.
        unsafe { launch.launch(grid_1d(n64, u64::from(THREADS))) }
            .map_err(driver("launching rep3_and_cross_xor_assign"))?;
        self.download(&d_out, out)
    }

    /// [`crate::kernels::rep3_and_prefix_xor_assign`] on the GPU: one carry level, the gates
    /// P ∧ (G ≪ k) into `out[..n]` and, when `with_p`, P ∧ (P ≪ k) into `out[n..]`. Panics
    /// unless `k < 64`, the inputs have equal lengths and `out` has `n` (or `2n`) words.
    #[allow(clippy::too_many_arguments)]
    pub fn rep3_and_prefix_xor_assign(
        &self,
        k: u32,
        with_p: bool,
        out: &mut [u64],
        p0: &[u64],
        p1: &[u64],
        g0: &[u64],
        g1: &[u64],
    ) -> Result<(), GpuError> {
        let n = p0.len();
        check_and_prefix(k, with_p, out.len(), [n, p1.len(), g0.len(), g1.len()]);
        if n == 0 {
            return Ok(());
        }
        let f = self.function(&nvrtc::BOOLEAN, "rep3_and_prefix_xor_assign")?;
        let mut d_out = self.upload(out)?;
        let [d_p0, d_p1, d_g0, d_g1] = [p0, p1, g0, g1].map(|v| self.upload(v));
        let (d_p0, d_p1, d_g0, d_g1) = (d_p0?, d_p1?, d_g0?, d_g1?);
        let (n64, with_p) = (n as u64, u32::from(with_p));
        let mut launch = self.stream().launch_builder(&f);
        launch
            .arg(&mut d_out)
            .arg(&d_p0)
            .arg(&d_p1)
            .arg(&d_g0)
            .arg(&d_g1)
            .arg(&n64)
            .arg(&k)
            .arg(&with_p);
        // SAFETY: thread j < n reads word j of each input and writes out[j] (and out[n + j]
        // when with_p, where out holds 2n words).
        unsafe { launch.launch(grid_1d(n64, u64::from(THREADS))) }
            .map_err(driver("launching rep3_and_prefix_xor_assign"))?;
        self.download(&d_out, out)
    }
}
