//! veil-benches: the benchmark workloads shared by `veil bench` and the criterion benchmarks
//! under `benches/` — each op's program, random inputs and plaintext twin, and the benchmarked networks.
#![forbid(unsafe_code)]

pub mod networks;
pub mod workload;

pub use workload::{
    BenchOp, OPS, OpSpec, OutputMismatch, Params, UnknownOp, Work, Workload, compare_outputs,
};
