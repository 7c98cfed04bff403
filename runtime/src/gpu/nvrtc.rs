//! The CUDA C sources of the kernels and their run-time compilation with NVRTC.
//!
//! Kernels are CUDA C strings compiled when first used (no `nvcc` at build time): each source is
//! the shared prelude (`cuda/prelude.cuh`) followed by one kernel file. [`compile`] returns the
//! CUBIN for a real architecture (`sm_XY`, loadable by any driver of the same CUDA major
//! version, unlike PTX from a newer NVRTC) together with the compiler's log, so callers can
//! insist on a clean compile: the `nvrtc` tests fail on any error **or warning**.

use std::ffi::{CStr, CString, c_char};

use cudarc::nvrtc::{result, sys};

use super::GpuError;

/// One kernel source file and the entry points it defines.
#[derive(Debug)]
pub struct KernelSource {
    /// Short name (`ring`, `gemv_i8`, …); also the NVRTC program name.
    pub name: &'static str,
    /// The complete CUDA C text (prelude included).
    pub code: &'static str,
    /// The `extern "C" __global__` functions it defines.
    pub functions: &'static [&'static str],
}

macro_rules! source {
    ($file:literal) => {
        concat!(include_str!("cuda/prelude.cuh"), include_str!($file))
    };
}

/// Z_2^64 replicated products: cross terms, row-wise dots, GEMV, GEMM, fused replicated matmul.
pub const RING: KernelSource = KernelSource {
    name: "ring",
    code: source!("cuda/ring.cu"),
    functions: &[
        "rep3_cross_add_assign",
        "rep3_dot_rows_add_assign",
        "gemv_u64_add_assign",
        "gemm_u64_add_assign",
        "rep3_matmul_add_assign",
    ],
};

/// The i8 × u64 GEMV of the TFHE scan.
pub const GEMV_I8: KernelSource = KernelSource {
    name: "gemv_i8",
    code: source!("cuda/gemv_i8.cu"),
    functions: &["gemv_i8_u64"],
};

/// AES-128-CTR keystream.
pub const AES_CTR: KernelSource = KernelSource {
    name: "aes_ctr",
    code: source!("cuda/aes_ctr.cu"),
    functions: &["aes128_ctr_fill"],
};

/// AND layers of boolean replicated shares.
pub const BOOLEAN: KernelSource = KernelSource {
    name: "boolean",
    code: source!("cuda/boolean.cu"),
    functions: &["rep3_and_cross_xor_assign", "rep3_and_prefix_xor_assign"],
};

/// Every kernel source (the `nvrtc` tests compile each of them).
pub const SOURCES: [&KernelSource; 4] = [&RING, &GEMV_I8, &AES_CTR, &BOOLEAN];

/// A compiled kernel source.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Device code for the architecture asked for.
    pub cubin: Vec<u8>,
    /// NVRTC's log (warnings; empty for a clean compile).
    pub log: String,
}

/// Whether the NVRTC library can be loaded (`libnvrtc.so.12` on the loader path).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to `dlopen` the library candidates; no symbol is called.
    unsafe { sys::is_culib_present() }
}

/// Compiles `src` for the real architecture `arch` (`"sm_80"`, `"sm_90"`, …).
///
/// Fails with [`GpuError::NoNvrtc`] if NVRTC cannot be loaded and with [`GpuError::Compile`]
/// (carrying the log) if the source does not compile. Warnings do not fail here; they are in
/// [`Compiled::log`].
pub fn compile(src: &KernelSource, arch: &str) -> Result<Compiled, GpuError> {
    if !nvrtc_available() {
        return Err(GpuError::NoNvrtc);
    }
    let code = CString::new(src.code).expect("kernel sources contain no NUL byte");
    let name = CString::new(src.name).expect("kernel names contain no NUL byte");
    let options = [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_owned(),
        "--restrict".to_owned(),
    ];
    // cudarc resolves NVRTC symbols lazily and panics if one is missing (a very old library):
    // turn that into an error too.
    let run = std::panic::catch_unwind(|| compile_program(&code, &name, &options));
    let (ok, log, cubin) = run.map_err(|_| GpuError::Compile {
        kernel: src.name,
        arch: arch.to_owned(),
        log: "the NVRTC library lacks a required function (too old?)".to_owned(),
    })??;
    if !ok {
        return Err(GpuError::Compile {
            kernel: src.name,
            arch: arch.to_owned(),
            log,
        });
    }
    Ok(Compiled { cubin, log })
}

/// Creates, compiles and destroys one NVRTC program: (success, log, CUBIN if success).
fn compile_program(
    code: &CStr,
    name: &CStr,
    options: &[String],
) -> Result<(bool, String, Vec<u8>), GpuError> {
    let nvrtc = |op: &'static str| move |e: result::NvrtcError| GpuError::Nvrtc { op, error: e };
    let prog = result::create_program(code, Some(name)).map_err(nvrtc("create program"))?;
    // SAFETY: `prog` was just created and is destroyed exactly once, below; `code` and `name`
    // outlive it.
    let out = unsafe {
        let compiled = result::compile_program(prog, options);
        let log = result::get_program_log(prog)
            .map(|l| c_chars_to_string(&l))
            .map_err(nvrtc("get log"));
        let cubin = match (&compiled, &log) {
            (Ok(()), Ok(_)) => get_cubin(prog).map_err(nvrtc("get cubin")),
            _ => Ok(Vec::new()),
        };
        let destroyed = result::destroy_program(prog).map_err(nvrtc("destroy program"));
        (compiled.is_ok(), log, cubin, destroyed)
    };
    let (ok, log, cubin, destroyed) = out;
    destroyed?;
    Ok((ok, log?, cubin?))
}

/// The CUBIN of a compiled program.
///
/// # Safety
/// `prog` must be a live program compiled for a real architecture.
unsafe fn get_cubin(prog: sys::nvrtcProgram) -> Result<Vec<u8>, result::NvrtcError> {
    let mut size = 0usize;
    // SAFETY: `prog` is live (caller); `size` is a valid out-pointer.
    unsafe { sys::nvrtcGetCUBINSize(prog, &mut size) }.result()?;
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` has the `size` bytes NVRTC asked for.
    unsafe { sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr().cast::<c_char>()) }.result()?;
    Ok(buf)
}

/// NVRTC's NUL-terminated log as trimmed text.
fn c_chars_to_string(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).trim().to_owned()
}
