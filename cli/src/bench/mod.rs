//! `veil bench`: measure MPC ops on three parties beside their plaintext twin, in one run.

pub mod fhe;
pub mod grpc;
pub mod mlp;
pub mod rag;

pub use fhe::FheOp;
pub use veil_benches::{BenchOp, OPS, Params, Workload};

use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use veil_circuits::ValidatedProgram;
use veil_circuits::cost::program_cost;
use veil_runtime::SecurityMode;
use veil_runtime::engine::{InputValue, Outputs, Report, Session};
use veil_runtime::error::EngineError;
use veil_runtime::harness::{collect_outputs, run3, share_inputs};
use veil_runtime::sharing::ReconstructError;
use veil_runtime::transport::Transport;

/// An op of `veil bench`: an MPC program on three parties, or a TFHE retrieval measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpChoice {
    /// An MPC op.
    Mpc(BenchOp),
    /// A retrieval-path op.
    Fhe(FheOp),
    /// One private RAG query, both backends beside plaintext (`rag`).
    Rag,
    /// Private inference of dense ReLU networks beside plaintext (`mlp`).
    Mlp,
}

/// The ops of `veil bench` that are no row of [`OPS`], as `--ops` spells them.
pub const OTHER_OPS: [&str; 4] = ["fhe_score", "fhe_fetch", "rag", "mlp"];

impl std::str::FromStr for OpChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rag" => return Ok(OpChoice::Rag),
            "mlp" => return Ok(OpChoice::Mlp),
            _ => {}
        }
        if let Ok(op) = s.parse::<FheOp>() {
            return Ok(OpChoice::Fhe(op));
        }
        s.parse::<BenchOp>()
            .map(OpChoice::Mpc)
            .map_err(|e| format!("{e}, {}", OTHER_OPS.join(", ")))
    }
}

/// Which links the three parties use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Three parties in this process, connected by in-memory channels.
    Memory,
    /// Three `veil node` processes over gRPC with mutual TLS (a devnet started on the fly, or
    /// `--cluster cluster.toml`).
    Grpc,
}

/// The link profile a RAG retrieval program's top-k plan is chosen for
/// ([`veil_circuits::cost::LinkProfile`]); the link itself is whatever the nodes run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkChoice {
    /// Three nodes on one host (the default plan: the comparator network).
    Loopback,
    /// 0.2 ms RTT, 10 Gbit/s.
    Lan,
    /// 20 ms RTT, 1 Gbit/s (rank selection in all-pairs groups: far fewer rounds).
    Wan,
}

impl LinkChoice {
    /// The cost model's profile.
    pub fn profile(self) -> veil_circuits::cost::LinkProfile {
        use veil_circuits::cost::LinkProfile;
        match self {
            LinkChoice::Loopback => LinkProfile::LOOPBACK,
            LinkChoice::Lan => LinkProfile::LAN,
            LinkChoice::Wan => LinkProfile::WAN,
        }
    }
}

/// One measured op at one size (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Op name.
    pub op: &'static str,
    /// Op size (see `veil bench --help`).
    pub size: usize,
    /// Transport used.
    pub transport: TransportKind,
    /// Security mode of the sessions: `semi-honest` or `malicious`.
    pub security: &'static str,
    /// Median wall time of one program run (slowest party), seconds.
    pub median_s: f64,
    /// Work items (elements, dot products, matrix products, top-k queries, gathers) per second
    /// at the median.
    pub throughput_per_s: f64,
    /// Communication rounds of one run.
    pub rounds: u64,
    /// Payload bytes sent per party, averaged over the three parties.
    pub bytes_per_party: f64,
    /// Payload bytes sent by P0, P1, P2.
    pub bytes_by_party: [u64; 3],
    /// Of `rounds`, those of the malicious mode's verification (0 in semi-honest mode).
    pub verify_rounds: u64,
    /// Of `bytes_by_party`, the verification's.
    pub verify_bytes_by_party: [u64; 3],
    /// Median time of the same computation in the clear, seconds.
    pub plaintext_median_s: f64,
    /// `median_s / plaintext_median_s`.
    pub ratio_to_plaintext: f64,
    /// gRPC only: median client wall time of a whole Invoke (storage included), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoke_wall_median_s: Option<f64>,
    /// Where P0's time went in the last run: (op name, seconds) per op, then `comm`.
    #[serde(skip)]
    pub breakdown: Vec<(String, f64)>,
}

/// A benchmark could not run or produced a wrong result.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A cluster call failed.
    #[error("{op} at size {size}: {source}")]
    Client {
        /// Op.
        op: BenchOp,
        /// Size.
        size: usize,
        /// Cause.
        #[source]
        source: veil_client::ClientError,
    },
    /// The on-the-fly devnet could not be started.
    #[error("devnet: {0}")]
    Devnet(String),
    /// `mlp`: a cluster call failed or the private logits differ from plaintext.
    #[error("mlp: {0}")]
    Mlp(String),
    /// The workload's program is invalid (a bug).
    #[error("building the {op} program: {source}")]
    Program {
        /// Op.
        op: BenchOp,
        /// Cause.
        #[source]
        source: veil_circuits::ValidationError,
    },
    /// The engine failed.
    #[error("{op} at size {size}: {source}")]
    Engine {
        /// Op.
        op: BenchOp,
        /// Size.
        size: usize,
        /// Cause.
        #[source]
        source: EngineError,
    },
    /// The client could not reconstruct the output.
    #[error("{op} at size {size}: {source}")]
    Reconstruct {
        /// Op.
        op: BenchOp,
        /// Size.
        size: usize,
        /// Cause.
        #[source]
        source: ReconstructError,
    },
    /// An MPC output differs from the plaintext twin beyond the op's tolerance (the
    /// truncation's 1 ulp, or 0 for exact ops).
    #[error("{op} at size {size}: MPC result differs from plaintext: {mismatch}")]
    Mismatch {
        /// Op.
        op: BenchOp,
        /// Size.
        size: usize,
        /// First differing output and element.
        mismatch: veil_benches::OutputMismatch,
    },
    /// `k` of `topk` is outside 1..=size.
    #[error("{op} at size {size}: k = {k} is outside 1..={size}")]
    K {
        /// Op.
        op: BenchOp,
        /// Size.
        size: usize,
        /// Requested k.
        k: usize,
    },
    /// In malicious mode: a workload's program cannot run in that mode — an op with no
    /// maliciously secure protocol yet, or a proof larger than a session allows (`veil bench`
    /// skips it with a note).
    #[error("{what} does not run in malicious mode: {source}")]
    NotMalicious {
        /// The workload, e.g. `ltz at size 1000000`.
        what: String,
        /// Why, as the engine refuses it.
        #[source]
        source: EngineError,
    },
    /// `--cluster` runs its sessions in another security mode than the one measured.
    #[error(
        "{op} at size {size}: the cluster ran the session in {got} mode, not {want} (a \
         cluster's mode is its nodes' `security` setting)"
    )]
    WrongMode {
        /// Op.
        op: BenchOp,
        /// Size.
        size: usize,
        /// The mode asked for.
        want: SecurityMode,
        /// The mode the receipts state.
        got: SecurityMode,
    },
    /// The size is outside what the op supports.
    #[error("{op}: size {size} is outside 1..={max}")]
    Size {
        /// Op.
        op: BenchOp,
        /// Requested size.
        size: usize,
        /// Largest supported size.
        max: usize,
    },
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Refuse sizes and `k` outside what `op` supports (checked for every op and size before a
/// run starts, so a bad pair fails at once instead of after the others have run).
pub fn check_args(op: BenchOp, size: usize, params: Params) -> Result<(), BenchError> {
    if size == 0 || size > op.max_size {
        return Err(BenchError::Size {
            op,
            size,
            max: op.max_size,
        });
    }
    if op.takes_k && !(1..=size).contains(&params.k) {
        return Err(BenchError::K {
            op,
            size,
            k: params.k,
        });
    }
    Ok(())
}

/// Check the arguments and build the workload: what both runners do first. In malicious mode
/// a workload the engine would refuse is refused ([`BenchError::NotMalicious`]) before
/// anything runs.
pub(crate) fn prepare<R: rand::Rng>(
    op: BenchOp,
    size: usize,
    params: Params,
    mode: SecurityMode,
    rng: &mut R,
) -> Result<Workload, BenchError> {
    check_args(op, size, params)?;
    let w = Workload::with_params(op, size, params, rng)
        .map_err(|source| BenchError::Program { op, source })?;
    check_mode(&w.program, mode, || format!("{op} at size {size}"))?;
    Ok(w)
}

/// Refuses `program` in `mode` when the engine would ([`BenchError::NotMalicious`], naming the
/// workload with `what`): in malicious mode, an op with no maliciously secure protocol or a
/// proof over the session's bound.
pub fn check_mode(
    program: &ValidatedProgram,
    mode: SecurityMode,
    what: impl FnOnce() -> String,
) -> Result<(), BenchError> {
    if mode == SecurityMode::SemiHonest {
        return Ok(());
    }
    veil_runtime::verify::check_program(program, &program_cost(program)).map_err(|source| {
        BenchError::NotMalicious {
            what: what(),
            source,
        }
    })
}

impl BenchResult {
    /// A result from its measurements; throughput, bytes per party and the ratio are derived.
    pub(crate) fn measured(
        (op, size, transport, security): (BenchOp, usize, TransportKind, SecurityMode),
        median_s: f64,
        (rounds, bytes_by_party): (u64, [u64; 3]),
        (verify_rounds, verify_bytes_by_party): (u64, [u64; 3]),
        plaintext_median_s: f64,
    ) -> Self {
        BenchResult {
            op: op.name,
            size,
            transport,
            security: security.as_str(),
            median_s,
            throughput_per_s: op.work_items(size) / median_s,
            rounds,
            bytes_per_party: bytes_by_party.iter().sum::<u64>() as f64 / 3.0,
            bytes_by_party,
            verify_rounds,
            verify_bytes_by_party,
            plaintext_median_s,
            ratio_to_plaintext: median_s / plaintext_median_s,
            invoke_wall_median_s: None,
            breakdown: Vec::new(),
        }
    }
}

/// `reps` timed runs of the plaintext twin: (median seconds, the outputs).
pub(crate) fn time_plaintext(w: &Workload, reps: usize) -> (f64, Vec<(&'static str, Vec<u64>)>) {
    let mut times = Vec::with_capacity(reps);
    let mut want = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        want = std::hint::black_box(w.plaintext());
        times.push(t.elapsed().as_secs_f64());
    }
    (median(times), want)
}

/// Measure `op` at `size` (with `params`): `reps` runs of the program on one session of three
/// in-memory parties in `mode`, and `reps` runs of the plaintext twin; checks every MPC output
/// against plaintext.
pub fn run_memory(
    op: BenchOp,
    size: usize,
    params: Params,
    reps: usize,
    mode: SecurityMode,
) -> Result<BenchResult, BenchError> {
    let reps = reps.max(1);
    let mut rng = rand::rng();
    let w = prepare(op, size, params, mode, &mut rng)?;
    let shared = share_inputs(&w.program, &w.inputs, &mut rng);
    let engine_err = |source| BenchError::Engine { op, size, source };

    let program = &w.program;
    let [p0, p1, p2] = memory_runs(program, &shared, reps, mode);
    let (p0, p1, p2) = (
        p0.map_err(engine_err)?,
        p1.map_err(engine_err)?,
        p2.map_err(engine_err)?,
    );
    let per_rep: Vec<f64> = (0..reps)
        .map(|i| p0.0[i].max(p1.0[i]).max(p2.0[i]).as_secs_f64())
        .collect();
    let reports: [&Report; 3] = [&p0.2, &p1.2, &p2.2];
    let outputs = [p0.1, p1.1, p2.1];
    let got = collect_outputs(program, &outputs).map_err(|source| BenchError::Reconstruct {
        op,
        size,
        source,
    })?;

    let (plaintext_median_s, want) = time_plaintext(&w, reps);
    // Probabilistic truncation may add one ulp; the other ops are exact.
    veil_benches::compare_outputs(&got, &want, op.tolerance)
        .map_err(|mismatch| BenchError::Mismatch { op, size, mismatch })?;

    let median_s = median(per_rep);
    Ok(BenchResult {
        breakdown: reports[0]
            .ops
            .iter()
            .map(|o| (format!("{}#{}", o.name, o.op), o.time.as_secs_f64()))
            .chain([("comm".to_string(), reports[0].comm_time.as_secs_f64())])
            .collect(),
        ..BenchResult::measured(
            (op, size, TransportKind::Memory, mode),
            median_s,
            (reports[0].rounds, reports.map(|r| r.bytes_sent)),
            (reports[0].verify_rounds, reports.map(|r| r.verify_bytes)),
            plaintext_median_s,
        )
    })
}

/// One party's side of [`memory_runs`]: each run's time, and the last run's outputs and report.
pub(crate) type PartyRuns = (Vec<Duration>, Outputs, Report);

/// `reps` (≥ 1) runs of `program` on three in-process parties, one session each, in `mode`.
/// Parties copy their inputs outside the timed region, then start each run together so one
/// party's copying does not steal a core from another's timed run.
pub(crate) fn memory_runs(
    program: &ValidatedProgram,
    shared: &[HashMap<String, InputValue>; 3],
    reps: usize,
    mode: SecurityMode,
) -> [Result<PartyRuns, EngineError>; 3] {
    let barrier = &std::sync::Barrier::new(3);
    run3(|net| async move {
        let me = net.me();
        let mut session = Session::establish(net).await?;
        session.set_security(mode);
        let mut times = Vec::with_capacity(reps);
        let mut last = None;
        for _ in 0..reps.max(1) {
            let inputs = shared[me.index()].clone();
            barrier.wait();
            let (outputs, report) = session.run(program, inputs).await?;
            times.push(report.total);
            last = Some((outputs, report));
        }
        let (outputs, report) = last.expect("at least one run");
        Ok((times, outputs, report))
    })
}

/// Human-readable duration for the table.
pub fn fmt_duration(s: f64) -> String {
    let d = Duration::from_secs_f64(s);
    if s >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// `--ops` when it is not given: the rows of [`OPS`] marked for it, comma-separated.
pub static DEFAULT_OPS: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = veil_benches::workload::default_ops()
        .map(|op| op.name)
        .collect();
    names.join(",")
});

/// A size as `--help` writes it: a power of two from 2^12 up as `2^k`, others with thousands
/// separators.
fn help_size(n: usize) -> String {
    if n.is_power_of_two() && n >= 1 << 12 {
        return format!("2^{}", n.trailing_zeros());
    }
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The end of `veil bench -h`: the op names, from [`OPS`].
pub fn ops_short_help() -> String {
    let names: Vec<String> = OPS
        .iter()
        .map(|op| format!("{op}{}", if op.in_default_ops { "*" } else { "" }))
        .collect();
    format!(
        "MPC ops (* = default): {}; also {}. `veil bench --help` describes each.",
        names.join(", "),
        OTHER_OPS.join(", ")
    )
}

/// The end of `veil bench --help`: every row of [`OPS`] with what its size counts, its
/// default and cap, what throughput counts and how its result is checked.
pub fn ops_long_help() -> String {
    let mut s = String::from(
        "MPC ops (* = in the default --ops). Fixed point has 16 fractional bits. Every result is \
         checked against the plaintext twin: exact ops word for word, truncating ones within 1 \
         ulp, approximations within 0.01 (655 ulps) of f64.\n",
    );
    for op in &OPS {
        let name = format!("{op}{}", if op.in_default_ops { " *" } else { "" });
        let throughput = match op.work {
            veil_benches::Work::PerSize(unit) => format!("{unit}/s"),
            veil_benches::Work::PerRun(unit) => format!("{unit}/s (one per run)"),
        };
        let check = match op.tolerance {
            0 => "exact".to_string(),
            1 => "within 1 ulp".to_string(),
            t => format!("within {t} ulps"),
        };
        let mut facts = format!(
            "size = {}, default {}, cap {}; throughput: {throughput}; {check}",
            op.size,
            help_size(op.default_size),
            help_size(op.max_size)
        );
        if op.takes_k {
            facts.push_str("; reads --k");
        }
        if op.per_round {
            facts.push_str("; prints the session time per round");
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "\n  {name:<16}{}\n  {:<16}{facts}\n", op.about, "");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_an_op_choice_and_runs_in_memory() {
        for op in &OPS {
            assert_eq!(op.name.parse::<OpChoice>(), Ok(OpChoice::Mpc(op)));
            let size = 16.min(op.max_size);
            check_args(op, op.default_size, Params::default()).expect("default size");
            assert!(check_args(op, op.max_size + 1, Params::default()).is_err());
            let r = run_memory(op, size, Params::default(), 1, SecurityMode::SemiHonest)
                .unwrap_or_else(|e| panic!("{op}: {e}"));
            assert_eq!((r.op, r.size, r.security), (op.name, size, "semi-honest"));
            // Malicious mode: every op runs verified, or (a workload too large for one
            // session's proofs) is refused before any round, saying so.
            match run_memory(op, size, Params::default(), 1, SecurityMode::Malicious) {
                Ok(r) => assert_eq!(r.security, "malicious", "{op}"),
                Err(
                    e @ BenchError::NotMalicious {
                        source: veil_runtime::error::EngineError::ProofTooLarge { .. },
                        ..
                    },
                ) => {
                    let msg = e.to_string();
                    assert!(msg.contains("a malicious session allows at most"), "{msg}");
                }
                Err(e) => panic!("{op} in malicious mode: {e}"),
            }
        }
        // `mul` is made of verified ops only.
        let mul: BenchOp = "mul".parse().unwrap();
        let r = run_memory(mul, 16, Params::default(), 1, SecurityMode::Malicious).unwrap();
        assert_eq!((r.security, r.rounds > 0), ("malicious", true));
        for name in OTHER_OPS {
            let choice = name.parse::<OpChoice>().expect("other op");
            assert!(!matches!(choice, OpChoice::Mpc(_)), "{name}");
        }
    }

    #[test]
    fn topk_k_is_checked() {
        let topk: BenchOp = "topk".parse().expect("topk");
        assert!(check_args(topk, 4, Params { k: 4 }).is_ok());
        let e = check_args(topk, 4, Params { k: 9 }).unwrap_err();
        assert_eq!(e.to_string(), "topk at size 4: k = 9 is outside 1..=4");
        assert!(check_args(topk, 4, Params { k: 0 }).is_err());
    }

    #[test]
    fn help_lists_every_row() {
        assert_eq!(DEFAULT_OPS.as_str(), "mul,dot,matmul,fixmul");
        let long = ops_long_help();
        let short = ops_short_help();
        for op in &OPS {
            assert!(long.contains(op.about), "{op}");
            assert!(short.contains(op.name), "{op}");
        }
        assert_eq!(help_size(1 << 25), "2^25");
        assert_eq!(help_size(1_000_000), "1,000,000");
        assert_eq!(help_size(2048), "2,048");
        assert_eq!(help_size(100), "100");
    }
}
