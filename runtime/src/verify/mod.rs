//! Malicious security with abort: the security mode of a session and the checks that make a
//! deviating party's messages detected before any output is released.
//!
//! Threat model of [`SecurityMode::Malicious`]: three parties, at most one corrupted and
//! deviating arbitrarily (honest majority). Security with abort: every honest party either
//! returns the correct outputs or fails the session with [`EngineError::Aborted`]; outputs are
//! returned only after the session's verification has passed. Privacy holds in either case.
//!
//! What is verified, and how (details in each module):
//! - products (`Mul`, `Dot`, `MatMul` over Z_2^64 and Z_2^32, `Select`): every masked
//!   cross-term word a party sends is proven correct in one batched distributed zero-knowledge
//!   proof per prover at the end of the session ([`dzkp`], over the Galois ring [`galois`]);
//! - AND gates (the sign test behind `Ltz`, the comparisons, ReLU, max/min and the
//!   tournaments): every AND word a party sends, reshared or opened, is proven correct in a
//!   second batched proof per prover, over GF(2^64) (`and_dzkp`); the sign test splits its
//!   input with an AND round instead of P0's input ([`crate::protocols::msb`]);
//! - inputs: the two parties holding the same component of an input compare a digest of it;
//! - reveals and outputs to a party: each missing component comes from both its holders and
//!   must agree ([`crate::protocols::reveal`]); shares of an opened value, sent to both peers,
//!   must reach both the same (digests compared);
//! - truncations: exact, by bit decomposition ([`crate::protocols::trunc::exact`]), so every
//!   message is one of the above.
//!
//! Every op of the client API has a verified protocol; an interactive op without one (a future
//! op) would be refused before a malicious session starts ([`unverified_op`]), never run
//! unchecked.

pub(crate) mod and_dzkp;
pub(crate) mod dzkp;
pub mod galois;
pub(crate) mod tape;

use crate::engine::Report;
use crate::engine::offload;
use crate::error::EngineError;
use crate::kernels::gf64_mul;
use crate::party::PartyCtx;
use crate::protocols::compare::Target;
use crate::protocols::{Expect, exchange, msb, select};
use crate::transport::Transport;
use dzkp::Batch;
use galois::{D, Gr};
use sha2::Digest;
use std::fmt;
use std::str::FromStr;
use veil_circuits::cost::{ProgramCost, Suite};
use veil_circuits::{Op, Shape, ValidatedProgram};

/// What a session protects against, weakest first (`Ord` follows strength).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityMode {
    /// Semi-honest: every party follows the protocol; a single curious party learns nothing.
    #[default]
    SemiHonest,
    /// Malicious with abort: a single deviating party is caught before any output is released.
    Malicious,
}

impl SecurityMode {
    /// Whether a session run in this mode gives at least the protection of `required`.
    pub fn satisfies(self, required: SecurityMode) -> bool {
        self >= required
    }

    /// The mode's name as configs and flags spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityMode::SemiHonest => "semi-honest",
            SecurityMode::Malicious => "malicious",
        }
    }

    /// The protocols this mode runs, as the cost model names them.
    pub fn suite(self) -> Suite {
        match self {
            SecurityMode::SemiHonest => Suite::SemiHonest,
            SecurityMode::Malicious => Suite::Malicious,
        }
    }
}

impl fmt::Display for SecurityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A security mode name that is neither `semi-honest` nor `malicious`.
#[derive(Debug, thiserror::Error)]
#[error("unknown security mode `{0}` (expected `semi-honest` or `malicious`)")]
pub struct UnknownSecurityMode(pub String);

impl FromStr for SecurityMode {
    type Err = UnknownSecurityMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "semi-honest" | "semihonest" => Ok(SecurityMode::SemiHonest),
            "malicious" => Ok(SecurityMode::Malicious),
            other => Err(UnknownSecurityMode(other.to_string())),
        }
    }
}

/// Ops whose protocols the malicious mode verifies: the products over Z_2^64 and Z_2^32 (the
/// Reshare round of [`crate::protocols::mul`]), reveals, the comparisons built on the sign
/// test of [`crate::protocols::msb`] and the bit decompositions of
/// [`crate::protocols::compare`] (their AND rounds, masked openings and the products of their
/// masks' injection), and the selections built on both ([`crate::protocols::select`]). Every
/// other op must be local (0 rounds in the cost model).
const VERIFIED: &[&str] = &[
    "input",
    "mul",
    "dot",
    "matmul",
    "select",
    "reveal",
    "ltz",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "relu",
    "max",
    "min",
    "max_all",
    "argmax",
    "bits",
    "best_k",
    "onehot_low",
    "rescale",
    "matmul_rescale",
    "msb_onehot",
];

/// The first op of `program` that has no maliciously secure protocol: an interactive op (one
/// with rounds in `cost`) outside `VERIFIED`. `None` when the whole program can run in
/// [`SecurityMode::Malicious`].
pub fn unverified_op(
    program: &ValidatedProgram,
    cost: &ProgramCost,
) -> Option<(usize, &'static str)> {
    program
        .program()
        .ops
        .iter()
        .zip(&cost.per_op)
        .enumerate()
        .find_map(|(i, (op, c))| {
            (c.rounds > 0 && !VERIFIED.contains(&op.name())).then_some((i, op.name()))
        })
}

/// Most proof entries a malicious session may need (2·n for an n-element product): the
/// proof's vectors hold N/2 elements of 376 bytes after the first fold, four vectors per party,
/// so 2^21 entries is ≈ 1.6 GB of verification state at each party.
pub const MAX_PROOF_ENTRIES: usize = 1 << 21;

pub use and_dzkp::MAX_AND_WORDS;

/// [`unverified_op`] as the engine's error, and the bounds on the proofs' sizes.
pub fn check_program(program: &ValidatedProgram, cost: &ProgramCost) -> Result<(), EngineError> {
    if let Some((op, name)) = unverified_op(program, cost) {
        return Err(EngineError::Unverified { op, name });
    }
    let work = Work::of(program, cost);
    if work.entries > MAX_PROOF_ENTRIES {
        return Err(EngineError::ProofTooLarge {
            what: "products (proof entries)",
            entries: work.entries,
            limit: MAX_PROOF_ENTRIES,
        });
    }
    if work.and_words > MAX_AND_WORDS {
        return Err(EngineError::ProofTooLarge {
            what: "AND gates (64-gate words)",
            entries: work.and_words,
            limit: MAX_AND_WORDS,
        });
    }
    Ok(())
}

/// What the malicious mode adds to a program's cost model (the "malicious column"): the
/// verification's rounds and the bytes each party sends in them, and the protocols' own
/// difference (the sign test's split is an AND round at every party instead of P0's input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overhead {
    /// Verification rounds.
    pub rounds: u64,
    /// Bytes each party sends in them.
    pub bytes_per_party: u64,
    /// Elements whose sign is tested: each makes P0 send 8 bytes fewer, P1 and P2 8 more.
    pub split_elements: u64,
}

impl Overhead {
    /// Bytes each party sends in malicious mode, from the semi-honest cost model's `semi`.
    pub fn bytes_sent(&self, semi: [u64; 3]) -> [u64; 3] {
        let split = 8 * self.split_elements;
        let [p0, p1, p2] = semi.map(|b| b + self.bytes_per_party);
        [p0 - split, p1 + split, p2 + split]
    }
}

/// A proof's rounds and the words each party sends in it: per level the cross terms (`elem`
/// words each, δ too at the first), a challenge between levels, then the final values.
fn proof_cost(levels: u64, elem: u64) -> (u64, u64) {
    let words = levels * 2 * elem + elem + (levels - 1) * 2 + 4 * elem;
    (2 * levels, words)
}

/// The verification overhead of running `program` in [`SecurityMode::Malicious`].
pub fn overhead(program: &ValidatedProgram, cost: &ProgramCost) -> Overhead {
    let work = Work::of(program, cost);
    let inputs = program
        .program()
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Input { .. }))
        .count() as u64;
    // Digests, seeds and the opened words' digest; then verdicts.
    let mut rounds = 2;
    let mut words = 4 * inputs + 4 + 4 + 2;
    if work.entries > 0 {
        let levels = work.entries.max(2).next_power_of_two().trailing_zeros() as u64;
        let (r, w) = proof_cost(levels, D as u64);
        rounds += r;
        words += w;
    }
    if work.and_words > 0 {
        let (r, w) = proof_cost(u64::from(and_dzkp::levels(work.and_words)), 1);
        rounds += r;
        words += w;
    }
    Overhead {
        rounds,
        bytes_per_party: 8 * words,
        split_elements: work.split_elements as u64,
    }
}

/// Entries of a malicious session's product proof before padding: 2·n per n-element `mul` or
/// `select`, 2·rows·cols per `dot`, 2·k per m×k·k×n `matmul` (what [`tape::Form`] records),
/// and those of the sign tests' products.
pub fn proof_entries(program: &ValidatedProgram, cost: &ProgramCost) -> usize {
    Work::of(program, cost).entries
}

/// The verified work of a program, as the proofs will count it.
pub(crate) struct Work {
    /// Product proof entries.
    entries: usize,
    /// AND words.
    and_words: usize,
    /// Elements through the sign test's or a decomposition's split (an AND round in malicious
    /// mode instead of P0's input).
    split_elements: usize,
}

impl Work {
    fn of(program: &ValidatedProgram, cost: &ProgramCost) -> Work {
        let prog = program.program();
        let types = program.types();
        let len = |v: veil_circuits::ValueId| types[v.index()].shape.len();
        // An m×k·k×n product batches into 2·k entries ([`tape::Form::MatMul`]).
        let matmul = |a: veil_circuits::ValueId| match types[a.index()].shape {
            Shape::Matrix(_, k) => 2 * k,
            s => 2 * s.len(),
        };
        let mut work = Work {
            entries: 0,
            and_words: 0,
            split_elements: 0,
        };
        for (i, (op, c)) in prog.ops.iter().zip(&cost.per_op).enumerate() {
            if c.rounds == 0 {
                continue;
            }
            let n = types[i].shape.len();
            match op {
                Op::Mul(..) | Op::Select { .. } => work.product(2 * n),
                Op::Dot(a, _) => work.product(2 * len(*a)),
                Op::MatMul(a, _) => work.product(matmul(*a)),
                Op::Ltz(_) | Op::Lt(..) | Op::Le(..) | Op::Gt(..) | Op::Ge(..) => {
                    work.sign_test(n, 0)
                }
                Op::Eq(..) => work.sign_test(2 * n, 0),
                Op::Relu(_) | Op::Max(..) | Op::Min(..) => work.sign_test(n, n),
                Op::MaxAll(a) | Op::ArgMax(a) => {
                    let words = if matches!(op, Op::ArgMax(_)) { 2 } else { 1 };
                    for m in veil_circuits::cost::tournament_pairs(len(*a)) {
                        work.sign_test(m, words * m);
                    }
                }
                Op::Bits(a) => work.decompose(len(*a), Target::Bits),
                Op::MsbOneHot { a, lanes } => {
                    work.decompose(len(*a), Target::MsbOneHot { lanes: *lanes })
                }
                // Exact truncation ([`crate::protocols::trunc::exact`]), after the product of
                // two secrets.
                Op::Rescale { bits, .. } => work.decompose(n, Target::TruncCarries { d: *bits }),
                Op::MatMulRescale { a, b, bits } => {
                    let secret = |v: veil_circuits::ValueId| {
                        types[v.index()].vis == veil_circuits::Visibility::Secret
                    };
                    if secret(*a) && secret(*b) {
                        work.product(matmul(*a));
                    }
                    work.decompose(n, Target::TruncCarries { d: *bits });
                }
                Op::BestK { a, k, groups, .. } => {
                    select::best_k_work(&mut work, len(*a), *k, groups.as_deref())
                }
                Op::OneHotLow { a, bits, n, skip } => {
                    select::onehot_work(&mut work, len(*a), *skip, *bits, *n)
                }
                _ => {}
            }
        }
        work
    }

    /// A product-type round with `entries` proof entries ([`tape::Form::proof_len`]).
    pub(crate) fn product(&mut self, entries: usize) {
        self.entries = self.entries.saturating_add(entries);
    }

    /// A sign test of `n` elements ([`msb`]) whose bit is multiplied into `blend` values
    /// (0 for none): its split and AND words, and its mask's injection (two n-element
    /// products) and blend (one product).
    pub(crate) fn sign_test(&mut self, n: usize, blend: usize) {
        self.split_elements = self.split_elements.saturating_add(n);
        self.and_words = self.and_words.saturating_add(msb::and_words(n));
        self.product(4 * n + 2 * blend);
    }

    /// A bit decomposition of `n` elements for `target` ([`crate::protocols::compare`]): its
    /// split and AND words, and the injection of its opened lanes (two products of n·lanes
    /// bits).
    pub(crate) fn decompose(&mut self, n: usize, target: Target) {
        self.split_elements = self.split_elements.saturating_add(n);
        self.and_words = self.and_words.saturating_add(target.and_words(n));
        self.product(4 * n * target.lanes() as usize);
    }
}

/// One verification round: one message to each peer, counted in the report.
async fn round<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    report: &mut Report,
    (to_next, to_prev): (&[u64], &[u64]),
    expect: Expect,
) -> Result<(Vec<u64>, Vec<u64>), EngineError> {
    let round = ctx.next_round();
    report.rounds += 1;
    report.verify_rounds += 1;
    let bytes = 8 * (to_next.len() + to_prev.len()) as u64;
    report.bytes_sent += bytes;
    report.verify_bytes += bytes;
    let mut got = exchange(net, round, &[to_next], &[to_prev], &[expect])
        .await
        .map_err(|source| EngineError::Round { round, source })?;
    Ok(got.pop().unwrap_or_default())
}

fn words(parts: &[&Gr]) -> Vec<u64> {
    parts.iter().flat_map(|g| g.0).collect()
}

fn digest_words(d: &[u8; 32]) -> impl Iterator<Item = u64> + '_ {
    d.chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
}

/// Run the session's verification (malicious mode), after its last round and before any output
/// is returned: `Ok` when every check passed at this party and at both peers, else
/// [`EngineError::Aborted`] at every honest party.
///
/// Rounds: 1 (input digests, batching seeds) + 2·log2(N) − 1 (the proof's cross terms and
/// challenges, N the proof length) + 1 (final values) + 1 (verdicts); without products,
/// 2 (digests, verdicts).
///
/// Roles of this party P_i: prover of its own product words (verifiers A = P_{i−1},
/// B = P_{i+1}); verifier A of P_{i+1}; verifier B of P_{i−1}. Keys: with P_{i+1} it shares
/// `vnext`, with P_{i−1} `vprev`; so as prover its A-key is `vprev` and its B-key `vnext`, as A
/// its prover key is `vnext` and its co-verifier key `vprev`, as B the reverse.
pub(crate) async fn run<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    report: &mut Report,
) -> Result<(), EngineError> {
    let tape = ctx.tape.take().unwrap_or_default();
    let (vnext, vprev) = ctx.verify_prfs();
    let me = ctx.id;
    let (next, prev) = (me.next(), me.prev());
    let mut failures: Vec<String> = Vec::new();

    // Round 1: digests of the input components (P_{i−1} holds my `own` as its `next`; a
    // public input's value is compared around the ring) and the batching seeds for my two
    // provers.
    // It also carries the digest of the opened words this party received from P_{i−1}, which
    // P_{i+1} received from the same sender.
    let seed_as_a = dzkp::seed(&vprev);
    let seed_as_b = dzkp::seed(&vnext);
    let to_prev: Vec<u64> = tape
        .inputs
        .iter()
        .flat_map(|d| digest_words(&d.own))
        .chain(seed_as_b)
        .collect();
    let opened_prev: [u8; 32] = tape.opened.from_prev.clone().finalize().into();
    let opened_next: [u8; 32] = tape.opened.from_next.clone().finalize().into();
    let to_next: Vec<u64> = seed_as_a
        .iter()
        .copied()
        .chain(digest_words(&opened_prev))
        .collect();
    let expect = Expect {
        from_next: 4 * tape.inputs.len() + 2,
        from_prev: 6,
    };
    let (from_next, from_prev) = round(ctx, net, report, (&to_next, &to_prev), expect).await?;
    if !from_prev[2..]
        .iter()
        .copied()
        .eq(digest_words(&opened_next))
    {
        failures.push(format!(
            "{next} sent {me} and {prev} different shares of an opened value"
        ));
    }
    for (k, d) in tape.inputs.iter().enumerate() {
        if from_next[4 * k..4 * k + 4]
            .iter()
            .copied()
            .eq(digest_words(&d.next))
        {
            continue;
        }
        failures.push(if d.public {
            format!(
                "public input `{}`: {me} and {next} were given different values",
                d.name
            )
        } else {
            format!(
                "input `{}`: {me} and {next} hold different copies of component {} (the \
                 client or the input's owner sent inconsistent shares)",
                d.name,
                next.index()
            )
        });
    }
    let seed_from_b = [
        from_next[expect.from_next - 2],
        from_next[expect.from_next - 1],
    ];
    let seed_from_a = [from_prev[0], from_prev[1]];
    if seed_from_a != seed_from_b {
        failures.push(format!(
            "{prev} and {next} sent {me} different batching seeds"
        ));
    }

    let keys = ProofKeys {
        vnext: &vnext,
        vprev: &vprev,
        seed_prover: seed_from_a,
        seed_as_a,
        seed_as_b,
    };
    if !tape.products.is_empty() {
        prove_products(ctx, net, report, &tape, &keys, &mut failures).await?;
    }
    if !tape.ands.is_empty() {
        prove_ands(ctx, net, report, &tape, &keys, &mut failures).await?;
    }

    // Verdicts: every party tells both peers whether its checks passed, so one honest party's
    // failed check aborts both honest parties.
    let verdict = [u64::from(!failures.is_empty())];
    let (from_next, from_prev) = round(
        ctx,
        net,
        report,
        (&verdict, &verdict),
        Expect {
            from_next: 1,
            from_prev: 1,
        },
    )
    .await?;
    for (peer, v) in [(next, from_next[0]), (prev, from_prev[0])] {
        if v != 0 {
            failures.push(format!("{peer} reported a failed check"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Aborted {
            what: failures.join("; "),
        })
    }
}

/// A challenge round: as A this party sends its prover P_{i+1} `rho_a`, as B its prover
/// P_{i−1} `rho_b`; as prover it receives one challenge from each verifier and returns it,
/// setting `differ` when the two copies disagree (a verifier lied: the proof must fail).
async fn challenge_round<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    report: &mut Report,
    (rho_a, rho_b): (u64, u64),
    differ: &mut bool,
) -> Result<u64, EngineError> {
    let expect = Expect {
        from_next: 1,
        from_prev: 1,
    };
    let (from_next, from_prev) = round(ctx, net, report, (&[rho_a], &[rho_b]), expect).await?;
    *differ |= from_next[0] != from_prev[0];
    Ok(from_prev[0])
}

/// What the three proofs of a session run with: this party's verification PRFs with its next
/// and previous party, and the batching seeds it proves under (from its verifiers), and
/// verifies under as A and as B.
struct ProofKeys<'a> {
    vnext: &'a crate::prf::Prf,
    vprev: &'a crate::prf::Prf,
    seed_prover: [u64; 2],
    seed_as_a: [u64; 2],
    seed_as_b: [u64; 2],
}

/// The three proofs of the session's products (one per prover), run side by side.
async fn prove_products<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    report: &mut Report,
    tape: &tape::Tape,
    keys: &ProofKeys<'_>,
    failures: &mut Vec<String>,
) -> Result<(), EngineError> {
    let ProofKeys {
        vnext,
        vprev,
        seed_prover,
        seed_as_a,
        seed_as_b,
    } = *keys;
    let me = ctx.id;
    let (next, prev) = (me.next(), me.prev());
    let n = dzkp::proof_len(tape);
    let levels = n.trailing_zeros();
    let heavy = n >= 1 << 12;
    let built = offload::run(heavy, || -> Result<_, EngineError> {
        let (pu, pv, delta) = dzkp::prover_vectors(tape, &Batch::new(seed_prover), vprev, vnext);
        let (au, ta) = dzkp::verifier_a(tape, &Batch::new(seed_as_a), vnext, |d, k| {
            ctx.rand_with_next(d, k)
        })?;
        let (bv, tb) = dzkp::verifier_b(tape, &Batch::new(seed_as_b), vprev, |d, k| {
            ctx.rand_with_prev(d, k)
        });
        Ok((pu, pv, delta, au, ta, bv, tb))
    })?;
    let (mut pu, mut pv, delta, au, mut ta, bv, mut tb) = built;
    let mut differ = false;
    // The verifiers' vectors are folded once, at the end, with all their challenges.
    let (mut rhos_a, mut rhos_b) = (Vec::new(), Vec::new());
    for level in 0..levels {
        // The prover's cross terms: A's shares come from our common key, B gets the rest.
        let (cl, cr) = offload::run(heavy, || dzkp::cross_terms(&pu, &pv));
        let (sl, sr) = dzkp::a_shares(vprev, level);
        let mut msg = words(&[&(cl - sl), &(cr - sr)]);
        // The first message also carries B's share of the masks' contribution δ.
        let first = level == 0;
        if first {
            msg.extend((delta - dzkp::delta_share(vprev)).0);
        }
        let expect = Expect {
            from_next: 0,
            from_prev: if first { 3 * D } else { 2 * D },
        };
        let (_, from_prev) = round(ctx, net, report, (&msg, &[]), expect).await?;
        if first {
            tb += Gr::from_words(&from_prev[2 * D..]);
        }
        let shares_b = (
            Gr::from_words(&from_prev[..D]),
            Gr::from_words(&from_prev[D..]),
        );
        let rho_a = dzkp::challenge(vprev, level);
        let rho_b = dzkp::challenge(vnext, level);
        let (ra, rb) = (Gr::exceptional(rho_a), Gr::exceptional(rho_b));
        ta = dzkp::fold_claim(&ta, &ra, dzkp::a_shares(vnext, level));
        tb = dzkp::fold_claim(&tb, &rb, shares_b);
        rhos_a.push(rho_a);
        rhos_b.push(rho_b);
        if level + 1 < levels {
            let rho = challenge_round(ctx, net, report, (rho_a, rho_b), &mut differ).await?
                & galois::EXCEPTIONAL_MASK;
            (pu, pv) = offload::run(heavy, || (pu.fold_left(rho), pv.fold_right(rho)));
        }
    }
    if differ {
        failures.push(format!(
            "{prev} and {next} sent {me} different challenges for its product words"
        ));
    }
    // Final values: as A I send (u″, t_A) to B = P_{i−1}; as B I send (v″, t_B) to A = P_{i+1}.
    let last_a = || au.fold_all(&rhos_a, true);
    let last_b = || bv.fold_all(&rhos_b, false);
    let (ulast, vlast) = if heavy {
        offload::run(heavy, || rayon::join(last_a, last_b))
    } else {
        (last_a(), last_b())
    };
    let to_prev = words(&[&ulast, &ta]);
    let to_next = words(&[&vlast, &tb]);
    let expect = Expect {
        from_next: 2 * D,
        from_prev: 2 * D,
    };
    let (from_next, from_prev) = round(ctx, net, report, (&to_next, &to_prev), expect).await?;
    // As A for P_{i+1}: B = P_{i−1} sent (v″, t_B).
    let (v_b, t_b) = (
        Gr::from_words(&from_prev[..D]),
        Gr::from_words(&from_prev[D..]),
    );
    if ulast.mul(&v_b) != ta + t_b {
        failures.push(format!(
            "the proof of {next}'s product words (sent to {me}) did not verify"
        ));
    }
    // As B for P_{i−1}: A = P_{i+1} sent (u″, t_A).
    let (u_a, t_a) = (
        Gr::from_words(&from_next[..D]),
        Gr::from_words(&from_next[D..]),
    );
    if u_a.mul(&vlast) != t_a + tb {
        failures.push(format!(
            "the proof of {prev}'s product words (sent to {}) did not verify",
            prev.prev()
        ));
    }
    Ok(())
}

/// The three proofs of the session's AND words (one per prover, [`and_dzkp`]), run side by
/// side after the proofs of products, with the same roles, keys and round structure.
async fn prove_ands<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    report: &mut Report,
    tape: &tape::Tape,
    keys: &ProofKeys<'_>,
    failures: &mut Vec<String>,
) -> Result<(), EngineError> {
    let ProofKeys {
        vnext,
        vprev,
        seed_prover,
        seed_as_a,
        seed_as_b,
    } = *keys;
    let me = ctx.id;
    let (next, prev) = (me.next(), me.prev());
    let count = and_dzkp::count(tape);
    let levels = and_dzkp::levels(count);
    let heavy = count >= 1 << 8;
    let built = offload::run(heavy, || -> Result<_, EngineError> {
        let (p, delta) = and_dzkp::Prover::new(tape, &Batch::new(seed_prover), vprev, vnext);
        let (a, ta) = and_dzkp::VerifierA::new(tape, &Batch::new(seed_as_a), vnext, |d, k| {
            ctx.rand_with_next(d, k)
        })?;
        let (b, tb) = and_dzkp::VerifierB::new(tape, &Batch::new(seed_as_b), vprev, |d, k| {
            ctx.rand_with_prev(d, k)
        });
        Ok((p, delta, a, ta, b, tb))
    })?;
    let (mut prover, delta, a, mut ta, b, mut tb) = built;
    let mut differ = false;
    let (mut rhos_a, mut rhos_b) = (Vec::new(), Vec::new());
    for level in 0..levels {
        // The prover's cross terms (and, first, δ): A's shares from our common key.
        let (cl, cr) = offload::run(heavy, || prover.cross_terms());
        let (sl, sr) = and_dzkp::a_shares(vprev, level);
        let mut msg = vec![cl ^ sl, cr ^ sr];
        if level == 0 {
            msg.push(delta ^ and_dzkp::delta_share(vprev));
        }
        let expect = Expect {
            from_next: 0,
            from_prev: msg.len(),
        };
        let (_, from_prev) = round(ctx, net, report, (&msg, &[]), expect).await?;
        if level == 0 {
            tb ^= from_prev[2];
        }
        let rho_a = and_dzkp::challenge(vprev, level);
        let rho_b = and_dzkp::challenge(vnext, level);
        ta = and_dzkp::fold_claim(ta, rho_a, and_dzkp::a_shares(vnext, level));
        tb = and_dzkp::fold_claim(tb, rho_b, (from_prev[0], from_prev[1]));
        rhos_a.push(rho_a);
        rhos_b.push(rho_b);
        if level + 1 < levels {
            let rho = challenge_round(ctx, net, report, (rho_a, rho_b), &mut differ).await?;
            prover = offload::run(heavy, || prover.fold(rho));
        }
    }
    if differ {
        failures.push(format!(
            "{prev} and {next} sent {me} different challenges for its AND words"
        ));
    }
    // Final values: as A I send (u″, t_A) to B = P_{i−1}; as B I send (v″, t_B) to A = P_{i+1}.
    let (ulast, vlast) = offload::run(heavy, || (a.last(&rhos_a), b.last(&rhos_b)));
    let expect = Expect {
        from_next: 2,
        from_prev: 2,
    };
    let (from_next, from_prev) =
        round(ctx, net, report, (&[vlast, tb], &[ulast, ta]), expect).await?;
    if gf64_mul(ulast, from_prev[0]) != ta ^ from_prev[1] {
        failures.push(format!(
            "the proof of {next}'s AND words (sent to {me}) did not verify"
        ));
    }
    if gf64_mul(from_next[0], vlast) != from_next[1] ^ tb {
        failures.push(format!(
            "the proof of {prev}'s AND words (sent to {}) did not verify",
            prev.prev()
        ));
    }
    Ok(())
}
