//! Run-time instruction-set dispatch for the kernels.
//!
//! Each kernel body is written once as an `#[inline(always)]` plain loop and instantiated by
//! [`multiversion!`] three times: for the target baseline (x86-64: SSE2, where a 64-bit multiply
//! is emulated with `pmuludq`), with `#[target_feature(enable = "avx2")]` and with
//! `#[target_feature(enable = "avx512f,avx512dq")]` (the last two only on x86-64). LLVM
//! vectorises the same source differently in each. The widest level this CPU supports is
//! detected once ([`simd_level`]) and every call dispatches on it.
//!
//! Binaries never assume a feature at compile time (no `target-cpu=native`), so they run on any
//! x86-64 CPU and on other architectures (which always use [`SimdLevel::Baseline`]).

use std::sync::OnceLock;

/// Instruction-set level a kernel runs at, ordered from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// The compilation target's baseline (x86-64: SSE2, 2 lanes, 64-bit multiply emulated).
    Baseline,
    /// x86-64 AVX2: 4 lanes of u64, 64-bit multiply emulated with three `vpmuludq`.
    Avx2,
    /// x86-64 AVX-512F + AVX-512DQ: 8 lanes of u64, native 64-bit multiply `vpmullq`.
    Avx512,
}

impl SimdLevel {
    /// All levels, narrowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512];

    /// Whether this CPU can run kernels at this level.
    pub fn is_supported(self) -> bool {
        self <= simd_level()
    }

    /// Short lowercase name (`baseline`, `avx2`, `avx512`), e.g. for bench ids.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Baseline => "baseline",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }
}

/// The widest level this CPU supports, capped by [`SIMD_ENV`] when set; detected on first use,
/// then cached.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

/// Every level this CPU supports, narrowest first (tests compare them with each other).
pub fn supported_simd_levels() -> Vec<SimdLevel> {
    SimdLevel::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// The environment variable that caps the level (`baseline`, `avx2` or `avx512`): a CPU may
/// support a level that is slower for these kernels than a narrower one (measure with
/// `veil bench` under each value).
pub const SIMD_ENV: &str = "VEIL_SIMD";

fn detect() -> SimdLevel {
    let widest = widest_supported();
    match std::env::var(SIMD_ENV).ok().as_deref() {
        Some("baseline") => SimdLevel::Baseline,
        Some("avx2") => widest.min(SimdLevel::Avx2),
        _ => widest,
    }
}

fn widest_supported() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        // Each level implies the ones below it, so `level <= simd_level()` means "supported".
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        if avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            return SimdLevel::Avx512;
        }
        if avx2 {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Baseline
}

/// Instantiates kernel bodies once per [`SimdLevel`].
///
/// `fn name(args) -> ret => body;` creates a private module `name` with
/// - `dispatch(args)`: runs at [`simd_level`] (what the public kernel calls);
/// - `at(level, args)`: runs at an explicit level, panicking if the CPU lacks it;
///
/// where `body` is an `#[inline(always)]` function of the parent module with the same arguments.
macro_rules! multiversion {
    ($(
        fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident;
    )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::kernels::simd::{simd_level, SimdLevel};

            fn baseline($($arg: $ty),*) $(-> $ret)? {
                super::$body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                super::$body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq")]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                super::$body($($arg),*)
            }

            /// # Safety
            /// `level` must be supported by this CPU (`level <= simd_level()`).
            #[inline(always)]
            unsafe fn run(level: SimdLevel, $($arg: $ty),*) $(-> $ret)? {
                match level {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the caller guarantees the CPU has AVX-512F and AVX-512DQ.
                    SimdLevel::Avx512 => unsafe { avx512($($arg),*) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the caller guarantees the CPU has AVX2.
                    SimdLevel::Avx2 => unsafe { avx2($($arg),*) },
                    _ => baseline($($arg),*),
                }
            }

            #[inline]
            pub(crate) fn dispatch($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: `simd_level()` is the widest level detected on this CPU.
                unsafe { run(simd_level(), $($arg),*) }
            }

            #[doc = concat!("[`", stringify!($name), "`](fn@super::", stringify!($name),
                ") at an explicit level; panics if this CPU does not support `level`.")]
            #[allow(dead_code)]
            pub fn at(level: SimdLevel, $($arg: $ty),*) $(-> $ret)? {
                assert!(level.is_supported(), "SIMD level {level:?} is not supported by this CPU");
                // SAFETY: checked just above.
                unsafe { run(level, $($arg),*) }
            }
        }
    )*};
}

pub(crate) use multiversion;
