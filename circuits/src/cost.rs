//! Cost model of veil's replicated three-party protocols: rounds and bytes **sent** per party.
//!
//! One element is one u64 word (8 bytes); `n` is the number of elements of the op's result (of
//! the output's value for outputs). An operand is "secret" when its type is secret.
//!
//! | op | rounds | bytes sent `[P0, P1, P2]` |
//! |---|---|---|
//! | `Input`, owner `Party(j)`, secret | 1 | `16·n` for `Pj` (8·n to each other party), 0 for the others |
//! | `Input` from a client, or public | 0 | 0 (client shares arrive before the program runs) |
//! | `Mul`, `Dot`, `MatMul`, secret · secret | 1 | `8·n` each (one reshare per result element) |
//! | `Rescale` of a secret | 1 | `[0, 8·n, 0]` (probabilistic truncation: P1 sends one masked component to P0) |
//! | `MatMulRescale`, secret · secret | 1 | `[8·n, 8·n, 24·n]` (product and truncation fused: P0 and P1 open the masked product, P2 deals the mask) |
//! | `MatMulRescale`, one operand public | 1 | `[0, 8·n, 0]` (local product, then the truncation) |
//! | `Reveal` (to every party) | 1 | `16·n` each |
//! | `Ltz`, `Lt`, `Le`, `Gt`, `Ge`, any operand secret | [`LTZ_ROUNDS`] = 8 | [`ltz_bytes`]`(n)` ≈ `n·[56, 40, 40]` |
//! | `Eq`, any operand secret (two comparisons batched) | 8 | [`ltz_bytes`]`(2n)` |
//! | `Relu` of a secret (sign test, its masked bit multiplied in beside it) | [`MAX_ROUNDS`] = 8 | [`ltz_bytes`]`(n) + 8·n` each |
//! | `Max`, `Min`, any operand secret (comparison + select) | 8 | [`ltz_bytes`]`(n) + 8·n` each |
//! | `Select`, secret `cond` and secret `a` or `b` | 1 | `8·n` each |
//! | `Select` with public `cond`, or secret `cond` and public `a`, `b` | 0 | 0 (`b + cond·(a − b)` is local) |
//! | `MaxAll` of a secret with `N` elements | `8·L` | `Σ_j (`[`ltz_bytes`]`(m_j) + 8·m_j)` |
//! | `ArgMax` of a secret with `N` elements | `8·L` | `Σ_j (`[`ltz_bytes`]`(m_j) + 16·m_j)` |
//! | anything with a public multiplicand, or only public operands | 0 | 0 |
//! | `Add`, `Sub`, `Neg`, `Sum`, `Reshape`, `Slice`, `Concat`, `Im2Col`, `Transpose`, `Constant` | 0 | 0 |
//! | output of a secret to `Party(j)` | 1 | `8·n` from each of the two other parties, 0 from `Pj` |
//! | output of a secret to `AllParties` | 1 | `16·n` each |
//! | output to a `Client`, or of a public value | 0 | 0 (components are handed over after the program) |
//! | `Bits` of a secret with `n` elements | 8 | `n·`[`low_bits_bytes`]`(64) = n·[1144, 1128, 1128]` |
//! | `MsbOneHot { lanes: L }` of a secret with `n` elements | 14 | `n·`([`BIT_DECOMPOSE_BYTES`] `+ 56 + 16·L`) |
//! | `BestK` of a secret ([`selection::best_k_plan_with`]) | `8` per network layer; per rank stage [`rank_stage_cost`] (15 for groups of 32, 16 for 64 or 128) | per layer `ltz_bytes(pairs) + 8·pairs`; per rank stage `ltz_bytes(pairs)`, the ranks' low bits, the product tree, `8·kept` |
//! | `OneHotLow { bits: B, n, skip: S }` of a secret with `m` elements | `2 + `[`low_bits_prefix_levels`]`(S + B) + ⌈log2 B⌉` | `m·(`[`low_bits_range_bytes`]`(S, B) + 8·`[`selection::onehot_products`]`(B, n))` |
//! | `Widen`, `Narrow` | 0 | 0 (local: shift or reduce each component) |
//!
//! Ring32 values cost as ring values: one u64 word per element on the wire (a Ring32
//! `MatMul` of two secrets reshares one word per output, the word below 2^32).
//!
//! `MaxAll` and `ArgMax` run a tournament ([`tournament_pairs`]): level `j` has
//! `len_j` candidates (`len_0 = N`) and compares `m_j = ⌊len_j / 2⌋` pairs, an odd last one
//! passing through, and `len_{j+1} = ⌈len_j / 2⌉`; `L` is the number of levels until one
//! candidate remains (0 for `N = 1`, `⌈log2 N⌉` in general), and `Σ_j m_j = N − 1`. An
//! `ArgMax` select moves two words per pair (value and index).
//!
//! **The malicious suite** ([`Suite::Malicious`], [`program_cost_in`]) runs `Rescale` and
//! `MatMulRescale` by exact truncation — five of the adder's carry bits read out of a
//! decomposition ([`EXACT_TRUNC_ROUNDS`], [`exact_trunc_bytes`] per element; the product of a
//! `MatMulRescale` of two secrets reshared first, one round of `8·n` each), because the
//! probabilistic truncations have no verifiable message; and `MsbOneHot` reshares its last
//! suffix-OR level and opens the one-hot in one more round (`+1` round, `+8` bytes per element
//! each). Every other row is the same; the
//! verification's own rounds and bytes are the runtime's (`veil_runtime::verify::overhead`).
//!
//! This mirrors the protocol table of the design brief (fixed-point mul = mul + rescale = 2
//! rounds). Rounds compose by an ASAP schedule:
//! `depth(op) = max(depth of its operands, or 0) + rounds(op)`,
//! `depth(output) = depth(value) + rounds(output)`, and the program takes the maximum over all
//! ops and outputs (0 for an empty program). The engine executes every op in
//! round `depth(op)`, batching all ops of a round into one message per peer, so its measured
//! rounds equal this model; bytes are the sums over ops and outputs.

use crate::program::{Op, Owner, Recipient};
use crate::selection;
use crate::types::{PartyId, Visibility};
use crate::validate::ValidatedProgram;

/// Rounds of one secret sign test (`Ltz`), and of every comparison built on it.
pub const LTZ_ROUNDS: u32 = 8;

/// Bytes sent by `[P0, P1, P2]` by one batched secret sign test (`Ltz`) of `n` elements: the
/// MSB-only carry tree of `veil_runtime::protocols::msb` — P0's boolean input (16·n), the
/// generate AND (8·n), five tree levels whose two gate batches are packed to the live lanes
/// (2·8·⌈n·w/64⌉ for w = 32, 16, 8, 4, 2), the last level's masked bit opened to both peers
/// (2·8·⌈n/64⌉), and the mask bit's injection (16·n, run beside the first two rounds).
/// About `n·[56, 40, 40]` for large n.
pub fn ltz_bytes(n: usize) -> [u64; 3] {
    let n = n as u64;
    let words = |bits: u64| bits.div_ceil(64);
    let tree: u64 = [32u64, 16, 8, 4, 2, 1]
        .iter()
        .map(|w| 2 * words(n * w))
        .sum();
    let common = 8 * (n + tree) + 16 * n;
    [common + 16 * n, common, common]
}

/// A sign test whose bit is multiplied into `words` values per element (ReLU / max / min: 1;
/// an argmax pair, value and index: 2): [`ltz_bytes`]`(n)` plus the mask's product with the
/// values (one multiplication round beside the sign test, 8·words·n) at every party.
fn ltz_then_mul_bytes(n: usize, words: u64) -> [u64; 3] {
    let n = n as u64;
    ltz_bytes(n as usize).map(|b| b + 8 * words * n)
}

/// Bytes sent by `[P0, P1, P2]` by a `MaxAll` (`words` = 1) or `ArgMax` (`words` = 2)
/// tournament over `n` secret elements: each level is one batched sign test of its `m_j` pairs
/// plus the select's reshare.
pub fn tournament_bytes(n: usize, words: u64) -> [u64; 3] {
    let mut total = [0u64; 3];
    for m in tournament_pairs(n) {
        for (t, b) in total.iter_mut().zip(ltz_then_mul_bytes(m, words)) {
            *t = t.saturating_add(b);
        }
    }
    total
}

/// Rounds of a secret `Relu`, `Max` or `Min`, of one tournament level of `MaxAll` or
/// `ArgMax`, and of one `BestK` network layer: a sign test whose mask bit is multiplied into
/// the select's difference beside the boolean work, so no extra round.
pub const MAX_ROUNDS: u32 = LTZ_ROUNDS;

/// Rounds of a full bit decomposition: split input, generate, 6 prefix levels.
pub const BIT_DECOMPOSE_ROUNDS: u32 = 8;

/// Bytes sent by `[P0, P1, P2]` per element of a bit decomposition (P0's input share 16, then
/// 10 word ANDs of 8 bytes at every party).
pub const BIT_DECOMPOSE_BYTES: [u64; 3] = [112, 96, 96];

/// Rounds of `Bits`: the decomposition, its last level opened under daBit masks whose
/// injection runs beside the first two rounds (`veil_runtime`'s `masked_bit`), so no
/// injection rounds follow.
pub const BITS_ROUNDS: u32 = BIT_DECOMPOSE_ROUNDS;

/// Rounds of `MsbOneHot`: decomposition, a 6-level suffix OR (1 AND each) whose last level is
/// opened under the masks.
pub const MSB_ONEHOT_ROUNDS: u32 = BIT_DECOMPOSE_ROUNDS + 6;

/// Prefix levels (k = 1, 2, …) the adder needs for the low `lanes` bits of a sum: the carry
/// into lane i < lanes spans lanes 0..i, so spans of `lanes − 1`; at least one level.
pub fn low_bits_prefix_levels(lanes: u32) -> u32 {
    lanes
        .saturating_sub(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(1)
}

/// Pairs compared at each level of the `MaxAll`/`ArgMax` tournament over `n` elements: level
/// `j` has `m_j = ⌊len_j / 2⌋` pairs and leaves `⌈len_j / 2⌉` candidates (`len_0 = n`). The
/// length of the result is the number of levels `L` (empty for `n ≤ 1`).
pub fn tournament_pairs(n: usize) -> Vec<usize> {
    let mut levels = vec![];
    let mut len = n;
    while len > 1 {
        levels.push(len / 2);
        len = len.div_ceil(2);
    }
    levels
}

/// Rounds and bytes sent by each party (index = party) for one op or output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cost {
    /// Communication rounds.
    pub rounds: u32,
    /// Bytes sent by P0, P1, P2.
    pub bytes_sent: [u64; 3],
}

impl Cost {
    /// Free: 0 rounds, 0 bytes.
    pub const FREE: Cost = Cost {
        rounds: 0,
        bytes_sent: [0; 3],
    };

    fn one_round(bytes_sent: [u64; 3]) -> Cost {
        Cost {
            rounds: 1,
            bytes_sent,
        }
    }

    /// Total bytes sent by all parties.
    pub fn total_bytes(&self) -> u64 {
        self.bytes_sent
            .iter()
            .fold(0u64, |s, b| s.saturating_add(*b))
    }
}

/// Cost of a whole program under the ASAP schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramCost {
    /// Rounds of the whole program.
    pub rounds: u32,
    /// Bytes sent by P0, P1, P2 over all ops and outputs.
    pub bytes_sent: [u64; 3],
    /// Cost of each op.
    pub per_op: Vec<Cost>,
    /// Cost of each output.
    pub per_output: Vec<Cost>,
    /// Round in which each op completes (`depth(op)`; 0 for local ops on local inputs).
    pub depth: Vec<u32>,
}

/// Bytes for `n` elements of `words_per_element` words each (saturating).
fn bytes(n: usize, words: u64) -> u64 {
    (n as u64).saturating_mul(8 * words)
}

/// `per_element[i]·n` for each party (saturating).
fn scaled(n: usize, per_element: [u64; 3]) -> [u64; 3] {
    per_element.map(|b| (n as u64).saturating_mul(b))
}

/// Which protocols run the secret ops: the semi-honest ones, or the malicious mode's, whose
/// truncations are exact (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Suite {
    /// Semi-honest protocols (probabilistic truncation).
    #[default]
    SemiHonest,
    /// The malicious mode's protocols (exact truncation by bit decomposition).
    Malicious,
}

/// Rounds of an exact truncation: split, generate and the prefix levels of all 64 lanes, the
/// last one opened (the carries into bit 63 span every lane below it).
pub const EXACT_TRUNC_ROUNDS: u32 = BIT_DECOMPOSE_ROUNDS;

/// Bytes sent by `[P0, P1, P2]` per element of an exact truncation: a decomposition through
/// all 64 lanes that opens and injects five carry bits.
pub fn exact_trunc_bytes() -> [u64; 3] {
    low_bits_range_bytes(64 - 5, 5)
}

/// Cost of op `op_index` of `p` in `suite` (free for an out-of-range index).
pub fn op_cost_in(p: &ValidatedProgram, op_index: usize, suite: Suite) -> Cost {
    let prog = p.program();
    let types = p.types();
    let (Some(op), Suite::Malicious) = (prog.ops.get(op_index), suite) else {
        return op_cost(p, op_index);
    };
    let n = types[op_index].shape.len();
    let secret = |v: crate::program::ValueId| types[v.index()].vis == Visibility::Secret;
    let trunc = Cost {
        rounds: EXACT_TRUNC_ROUNDS,
        bytes_sent: scaled(n, exact_trunc_bytes()),
    };
    match *op {
        Op::Rescale { a, .. } if secret(a) => trunc,
        Op::MatMulRescale { a, b, .. } if secret(a) && secret(b) => Cost {
            rounds: 1 + trunc.rounds,
            bytes_sent: trunc.bytes_sent.map(|x| x.saturating_add(bytes(n, 1))),
        },
        Op::MatMulRescale { a, b, .. } if secret(a) || secret(b) => trunc,
        // The last suffix-OR level reshared, the one-hot opened in one more round.
        Op::MsbOneHot { a, .. } if secret(a) => {
            let c = op_cost(p, op_index);
            Cost {
                rounds: c.rounds + 1,
                bytes_sent: c
                    .bytes_sent
                    .map(|x| x.saturating_add(bytes(types[a.index()].shape.len(), 1))),
            }
        }
        _ => op_cost(p, op_index),
    }
}

/// Cost of op `op_index` of `p` (free for an out-of-range index).
pub fn op_cost(p: &ValidatedProgram, op_index: usize) -> Cost {
    let prog = p.program();
    let types = p.types();
    let Some(op) = prog.ops.get(op_index) else {
        return Cost::FREE;
    };
    let ty = types[op_index];
    let n = ty.shape.len();
    let secret = |v: crate::program::ValueId| types[v.index()].vis == Visibility::Secret;
    match op {
        Op::Input { input } => match (&prog.inputs[*input].owner, ty.vis) {
            (Owner::Party(j), Visibility::Secret) => {
                let mut b = [0; 3];
                b[j.index()] = bytes(n, 2);
                Cost::one_round(b)
            }
            _ => Cost::FREE,
        },
        Op::Mul(a, b) | Op::Dot(a, b) | Op::MatMul(a, b) if secret(*a) && secret(*b) => {
            Cost::one_round([bytes(n, 1); 3])
        }
        Op::Rescale { a, .. } if secret(*a) => Cost::one_round([0, bytes(n, 1), 0]),
        // Fused product + truncation (P2 deals the mask, P0 and P1 open the masked product).
        Op::MatMulRescale { a, b, .. } if secret(*a) && secret(*b) => {
            Cost::one_round([bytes(n, 1), bytes(n, 1), bytes(n, 3)])
        }
        Op::MatMulRescale { a, b, .. } if secret(*a) || secret(*b) => {
            Cost::one_round([0, bytes(n, 1), 0])
        }
        Op::Reveal(_) => Cost::one_round([bytes(n, 2); 3]),
        Op::Ltz(a) if secret(*a) => Cost {
            rounds: LTZ_ROUNDS,
            bytes_sent: ltz_bytes(n),
        },
        Op::Lt(a, b) | Op::Le(a, b) | Op::Gt(a, b) | Op::Ge(a, b) if secret(*a) || secret(*b) => {
            Cost {
                rounds: LTZ_ROUNDS,
                bytes_sent: ltz_bytes(n),
            }
        }
        Op::Eq(a, b) if secret(*a) || secret(*b) => Cost {
            rounds: LTZ_ROUNDS,
            bytes_sent: ltz_bytes(n.saturating_mul(2)),
        },
        Op::Relu(a) if secret(*a) => Cost {
            rounds: MAX_ROUNDS,
            bytes_sent: ltz_then_mul_bytes(n, 1),
        },
        Op::Max(a, b) | Op::Min(a, b) if secret(*a) || secret(*b) => Cost {
            rounds: MAX_ROUNDS,
            bytes_sent: ltz_then_mul_bytes(n, 1),
        },
        Op::Select { cond, a, b } if secret(*cond) && (secret(*a) || secret(*b)) => {
            Cost::one_round([bytes(n, 1); 3])
        }
        Op::MaxAll(a) | Op::ArgMax(a) if secret(*a) => {
            let pairs = tournament_pairs(types[a.index()].shape.len());
            let words = if matches!(op, Op::ArgMax(_)) { 2 } else { 1 };
            let levels = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
            Cost {
                rounds: MAX_ROUNDS.saturating_mul(levels),
                bytes_sent: tournament_bytes(types[a.index()].shape.len(), words),
            }
        }
        Op::Bits(a) if secret(*a) => Cost {
            rounds: BITS_ROUNDS,
            bytes_sent: scaled(n / 64, low_bits_bytes(64)),
        },
        Op::MsbOneHot { a, lanes } if secret(*a) => {
            let lanes = u64::from(*lanes);
            Cost {
                rounds: MSB_ONEHOT_ROUNDS,
                bytes_sent: scaled(
                    types[a.index()].shape.len(),
                    BIT_DECOMPOSE_BYTES.map(|b| b + 5 * 8 + 16 + 16 * lanes),
                ),
            }
        }
        Op::BestK { a, k, groups, .. } if secret(*a) => {
            best_k_cost(types[a.index()].shape.len(), *k, groups.as_deref())
        }
        Op::OneHotLow { a, bits, n, skip } if secret(*a) => Cost {
            rounds: onehot_low_rounds(*skip, *bits),
            bytes_sent: onehot_low_bytes(types[a.index()].shape.len(), *skip, *bits, *n),
        },
        _ => Cost::FREE,
    }
}

/// Rounds of `OneHotLow` with `bits` index bits above `skip` low bits: split, generate and
/// [`low_bits_prefix_levels`]`(skip + bits)` (the carries into the index bits span every lane
/// below them; the last level is opened under the masks), then ⌈log2 bits⌉ multiplication
/// levels.
pub fn onehot_low_rounds(skip: u32, bits: u32) -> u32 {
    2 + low_bits_prefix_levels(skip.saturating_add(bits)) + selection::onehot_levels(bits)
}

/// Bytes sent by `[P0, P1, P2]` per element to decompose and inject its low `lanes` bits:
/// P0's input (16), the generate AND (8), the prefix levels before the last (G and P, 16
/// each), the last level opened to both peers (16) and the masks' injection (16 per lane).
/// `[120, 104, 104] + 1024` for all 64 bits.
pub fn low_bits_bytes(lanes: u32) -> [u64; 3] {
    low_bits_range_bytes(0, lanes)
}

/// Bytes sent by `[P0, P1, P2]` per element to decompose bits `skip..skip + lanes` and inject
/// only those `lanes`: the adder runs to [`low_bits_prefix_levels`]`(skip + lanes)` (its AND
/// words carry all 64 lanes, so only the level count depends on the range), and the masks'
/// injection costs 16 per opened lane. [`low_bits_bytes`] is `skip` = 0.
pub fn low_bits_range_bytes(skip: u32, lanes: u32) -> [u64; 3] {
    let levels = u64::from(low_bits_prefix_levels(skip.saturating_add(lanes)));
    let common = 8 + 16 * (levels - 1) + 16 + 16 * u64::from(lanes);
    [common + 16, common, common]
}

/// Bytes of `OneHotLow` on `m` elements: bits `skip..skip + bits` decomposed and injected,
/// then one reshared word per product of the tree.
pub fn onehot_low_bytes(m: usize, skip: u32, bits: u32, n: usize) -> [u64; 3] {
    let products = bytes(m, selection::onehot_products(bits, n) as u64);
    scaled(m, low_bits_range_bytes(skip, bits)).map(|b| b.saturating_add(products))
}

/// Cost of one rank-selection stage on `m` secret candidates in groups of `group`, keeping
/// `keep` per group: a sign test of all `G(G−1)/2` pairs of every group (8 rounds); the ranks
/// (local sums of the comparison bits) decomposed into their low `β = ⌈log2 G⌉` bits
/// (`2 + `[`low_bits_prefix_levels`]`(β)` rounds, [`low_bits_bytes`]`(β)` per candidate); then
/// the product tree of [`selection::rank_tree_levels`] over the β factors `[1 − b, b]` and the
/// value itself (`⌈log2(β + 1)⌉` rounds), whose last level is summed over the group — one
/// reshared word per kept element, `8·keep` bytes per group — and whose earlier levels reshare
/// [`selection::rank_tree_products`]`(β)` words per candidate.
pub fn rank_stage_cost(m: usize, group: usize, keep: usize) -> Cost {
    let groups = m.div_ceil(group);
    let padded = groups * group;
    let bits = selection::rank_bits(group);
    let levels = u32::try_from(selection::rank_tree_levels(bits).len()).unwrap_or(u32::MAX);
    let rounds = LTZ_ROUNDS + 2 + low_bits_prefix_levels(bits) + levels;
    let pairs = groups.saturating_mul(group * (group - 1) / 2);
    let tree = bytes(padded, selection::rank_tree_products(bits) as u64)
        .saturating_add(bytes(groups.saturating_mul(keep), 1));
    let mut total = ltz_bytes(pairs);
    for (t, b) in total.iter_mut().zip(scaled(padded, low_bits_bytes(bits))) {
        *t = t.saturating_add(b).saturating_add(tree);
    }
    Cost {
        rounds,
        bytes_sent: total,
    }
}

/// Cost of `BestK` on `n` secret elements with the plan
/// [`selection::best_k_plan_with`]`(n, k, groups)`: each network layer is a sign test of its
/// pairs with the select multiplied in (8 rounds); each rank stage is [`rank_stage_cost`].
pub fn best_k_cost(n: usize, k: usize, groups: Option<&[usize]>) -> Cost {
    let plan = selection::best_k_plan_with(n, k, groups);
    let mut m = plan.padded;
    let (mut rounds, mut total) = (0u32, [0u64; 3]);
    let mut add = |b: [u64; 3]| {
        for (t, x) in total.iter_mut().zip(b) {
            *t = t.saturating_add(x);
        }
    };
    for stage in &plan.stages {
        match stage {
            selection::Stage::Layer(layer) => {
                rounds = rounds.saturating_add(MAX_ROUNDS);
                add(ltz_then_mul_bytes(layer.pairs.len(), 1));
                if let Some(keep) = &layer.keep {
                    m = keep.len();
                }
            }
            selection::Stage::Rank { group, keep } => {
                let c = rank_stage_cost(m, *group, *keep);
                rounds = rounds.saturating_add(c.rounds);
                add(c.bytes_sent);
                m = m.div_ceil(*group) * keep;
            }
        }
    }
    Cost {
        rounds,
        bytes_sent: total,
    }
}

/// The link between the parties, as the cost model sees it: a round costs `rtt_s`, and each
/// party's bytes cost `1 / bandwidth` plus `1 / processing` (the nodes' own work, roughly in
/// proportion to what they send). [`LinkProfile::seconds`] is the estimate the plan choice
/// ([`best_k_groups_for`]) minimises: `rounds·rtt + max_party_bytes·(1/bandwidth +
/// 1/processing)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkProfile {
    /// Round-trip time between two parties, seconds.
    pub rtt_s: f64,
    /// Link bandwidth per party, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Bytes per second a node protocols through (sign tests, reshares, serialisation) when
    /// the link is not the limit.
    pub processing_bytes_per_s: f64,
}

/// Processing rate of a node: each sent byte of a secret-shared protocol costs its sender
/// and receivers about this much CPU time. Measured on the reference machine (2 cores running
/// all three nodes over gRPC on loopback, RAG 10,000, both `BestK` plans; see
/// `docs/benchmarks.md`).
pub const PROCESSING_BYTES_PER_S: f64 = 60.0e6;

impl LinkProfile {
    /// Three nodes on one host over gRPC loopback (how every figure was taken so far): the
    /// default, under which `BestK` keeps its comparator network. Its "RTT" is fitted: a
    /// round costs about 0.4 ms there (scheduling and gRPC, not the wire).
    pub const LOOPBACK: LinkProfile = LinkProfile {
        rtt_s: 0.8e-3,
        bandwidth_bytes_per_s: 2.0e9,
        processing_bytes_per_s: PROCESSING_BYTES_PER_S,
    };
    /// A data-centre LAN: 0.2 ms RTT, 10 Gbit/s (issue 21's LAN profile).
    pub const LAN: LinkProfile = LinkProfile {
        rtt_s: 0.2e-3,
        bandwidth_bytes_per_s: 1.25e9,
        processing_bytes_per_s: PROCESSING_BYTES_PER_S,
    };
    /// A WAN: 20 ms RTT, 1 Gbit/s (issue 21's WAN profile).
    pub const WAN: LinkProfile = LinkProfile {
        rtt_s: 20.0e-3,
        bandwidth_bytes_per_s: 1.25e8,
        processing_bytes_per_s: PROCESSING_BYTES_PER_S,
    };

    /// Estimated seconds for `cost` on this link: rounds × the one-way delay (RTT / 2) plus the
    /// busiest party's bytes over the bandwidth and the processing rate. A round costs the
    /// one-way delay, not the RTT: every party sends its round message and then waits for the
    /// one its neighbour sent at the same time (measured: 1,000 dependent rounds take 10.0 s of
    /// delay on a 20 ms-RTT link; `docs/benchmarks.md`).
    pub fn seconds(&self, cost: &Cost) -> f64 {
        let bytes = cost.bytes_sent.iter().copied().max().unwrap_or(0) as f64;
        f64::from(cost.rounds) * self.rtt_s / 2.0
            + bytes / self.bandwidth_bytes_per_s
            + bytes / self.processing_bytes_per_s
    }
}

impl Default for LinkProfile {
    /// [`LinkProfile::LOOPBACK`].
    fn default() -> Self {
        LinkProfile::LOOPBACK
    }
}

/// The cheapest rank-only plan for the best `k` of `n` under `link`: the group sizes and
/// their cost. Each stage on `m` candidates either ends (one group of `m`, when
/// `max(k, 2) ≤ m ≤` [`selection::MAX_RANK_GROUP`]) or splits into `c = ⌈m / 2^β⌉ ≥ 2` balanced
/// groups of `⌈m / c⌉ > k` (β = 1..=10: the rank bits, which fix the stage's rounds); a
/// dynamic programme over the candidate counts picks the sequence with the least
/// [`LinkProfile::seconds`].
pub fn best_rank_groups(n: usize, k: usize, link: &LinkProfile) -> (Vec<usize>, Cost) {
    fn go(
        m: usize,
        k: usize,
        link: &LinkProfile,
        memo: &mut std::collections::HashMap<usize, (f64, Vec<usize>, Cost)>,
    ) -> (f64, Vec<usize>, Cost) {
        if let Some(hit) = memo.get(&m) {
            return hit.clone();
        }
        let mut best: Option<(f64, Vec<usize>, Cost)> = None;
        let mut consider = |cand: (f64, Vec<usize>, Cost)| {
            if best.as_ref().is_none_or(|b| cand.0 < b.0) {
                best = Some(cand);
            }
        };
        let last = m.max(k).max(2);
        if last <= selection::MAX_RANK_GROUP {
            let c = rank_stage_cost(m, last, k);
            consider((link.seconds(&c), vec![last], c));
        }
        let max_bits = selection::MAX_RANK_GROUP.trailing_zeros();
        for bits in 1..=max_bits {
            let count = m.div_ceil(1 << bits);
            if count < 2 {
                break;
            }
            let group = m.div_ceil(count);
            if group <= k || count * k >= m {
                continue;
            }
            let c = rank_stage_cost(m, group, k);
            let (_, mut rest, rc) = go(count * k, k, link, memo);
            let total = Cost {
                rounds: c.rounds.saturating_add(rc.rounds),
                bytes_sent: [0, 1, 2].map(|p| c.bytes_sent[p].saturating_add(rc.bytes_sent[p])),
            };
            rest.insert(0, group);
            consider((link.seconds(&total), rest, total));
        }
        // Some choice always exists: m ≤ MAX_RANK_GROUP ends, larger m splits into groups of
        // 1,024 > k (k ≤ m is kept, and k ≥ 1,024 would make m ≤ … end) — but stay total.
        let best = best.unwrap_or((f64::INFINITY, vec![], Cost::FREE));
        memo.insert(m, best.clone());
        best
    }
    let (_, groups, cost) = go(n, k, link, &mut std::collections::HashMap::new());
    (groups, cost)
}

/// The `groups` of [`Op::BestK`] for the best `k` of `n` secret elements under `link`:
/// `None` (the comparator network, fewest bytes) unless a rank-only plan
/// ([`best_rank_groups`]) is estimated faster on this link. `1 ≤ k ≤ n` is the caller's.
pub fn best_k_groups_for(n: usize, k: usize, link: &LinkProfile) -> Option<Vec<usize>> {
    let network = link.seconds(&best_k_cost(n, k, None));
    let (groups, cost) = best_rank_groups(n, k, link);
    (!groups.is_empty() && link.seconds(&cost) < network).then_some(groups)
}

/// Cost of output `output_index` of `p` (free for an out-of-range index).
pub fn output_cost(p: &ValidatedProgram, output_index: usize) -> Cost {
    let Some(out) = p.program().outputs.get(output_index) else {
        return Cost::FREE;
    };
    let ty = p.types()[out.value.index()];
    if ty.vis == Visibility::Public {
        return Cost::FREE;
    }
    let n = ty.shape.len();
    match &out.recipient {
        Recipient::Party(j) => {
            let mut b = [bytes(n, 1); 3];
            b[j.index()] = 0;
            Cost::one_round(b)
        }
        Recipient::AllParties => Cost::one_round([bytes(n, 2); 3]),
        Recipient::Client(_) => Cost::FREE,
    }
}

/// Cost of the whole program: per op, per output, ASAP depths, total rounds and bytes.
pub fn program_cost(p: &ValidatedProgram) -> ProgramCost {
    program_cost_in(p, Suite::SemiHonest)
}

/// [`program_cost`] with the protocols of `suite`.
pub fn program_cost_in(p: &ValidatedProgram, suite: Suite) -> ProgramCost {
    let prog = p.program();
    let mut total = ProgramCost::default();
    let add = |total: &mut ProgramCost, c: &Cost| {
        for party in PartyId::ALL {
            let i = party.index();
            total.bytes_sent[i] = total.bytes_sent[i].saturating_add(c.bytes_sent[i]);
        }
    };
    for (i, op) in prog.ops.iter().enumerate() {
        let c = op_cost_in(p, i, suite);
        let start = op
            .operands()
            .iter()
            .map(|v| total.depth[v.index()])
            .max()
            .unwrap_or(0);
        let d = start.saturating_add(c.rounds);
        total.rounds = total.rounds.max(d);
        total.depth.push(d);
        add(&mut total, &c);
        total.per_op.push(c);
    }
    for i in 0..prog.outputs.len() {
        let c = output_cost(p, i);
        let d = total.depth[prog.outputs[i].value.index()].saturating_add(c.rounds);
        total.rounds = total.rounds.max(d);
        add(&mut total, &c);
        total.per_output.push(c);
    }
    total
}
