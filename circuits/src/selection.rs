//! Public plans of the oblivious selection ops: the comparator network of [`Op::BestK`] and the
//! product tree of [`Op::OneHotLow`]. Both depend only on public sizes, so every party (and the
//! plaintext evaluator, and the cost model) derives the same plan.
//!
//! **Top-k network** (Batcher's bitonic sorter, Batcher 1968, with the "merge two sorted
//! lists, keep the better half" step of bitonic top-k selection, e.g. Shanbhag, Pirk & Madden,
//! SIGMOD 2018): with `K` = the next power of two ≥ k,
//! 1. pad the n elements with sentinels (the worst possible value) to a multiple of `K` and
//!    sort every group of `K` best-first with a bitonic sorting network
//!    (`log2 K·(log2 K + 1)/2` layers);
//! 2. while more than one group is left, pair groups 2a and 2a+1: element i of the new group is
//!    the better of `A[i]` and `B[K−1−i]` (one layer; the result holds the best `K` of both and
//!    is bitonic), then a bitonic merge (`log2 K` layers) sorts it best-first; an odd last group
//!    passes through;
//! 3. the first k elements of the last group are the answer.
//!
//! That is `O(n)` comparators (about `5.5·n` for K = 8) in `log2 K·(log2 K + 1)/2 +
//! (1 + log2 K)·⌈log2(n/K)⌉` layers, instead of the `k·(n − 1)` comparators and `k·⌈log2 n⌉`
//! sequential levels of k argmax rounds.
//!
//! **Rank selection** replaces the network once at most [`RANK_SELECT_MAX`] candidates are
//! left (and for small k): candidates are cut into groups of `G = 4·K`, every pair of a group is
//! compared in one batch (`G(G−1)/2` comparisons), each element's rank is the number of group
//! members that beat it (a strict order: ties go to the lower position, so ranks are
//! distinct), and element r of the group's answer is `Σ_i [rank_i = r]·x_i` — the one-hot of
//! the rank times the value, summed over the group (the value is the last factor of the
//! rank's product tree, [`rank_tree_levels`], so the sum is the tree's last level). A stage
//! divides the candidates by 4 in 15 rounds (a sign test, the low 5 bits of the ranks
//! decomposed, the product tree), against 64 rounds for two network levels (K = 8), at about
//! 3× the comparisons, which is why the default plan only runs it on the last, small levels.
//!
//! **Rank-only plans** ([`best_k_plan_with`] with group sizes, chosen per link by
//! [`crate::cost::best_k_groups_for`]): every stage is rank selection, with groups as large
//! as the link makes worthwhile — comparison counting (Knuth vol. 3 §5.2, Algorithm C) in one
//! comparison depth per stage; RAG 10,000 → best 8 in 3 stages (48 rounds) instead of 204.
//!
//! **One-hot product tree**: the one-hot vector of `x mod 2^bits` is the outer (Kronecker)
//! product of the per-bit one-hots `[1 − b_i, b_i]`; pairing neighbouring factors level by level
//! gives it in `⌈log2 bits⌉` multiplication rounds.
//!
//! [`Op::BestK`]: crate::Op::BestK
//! [`Op::OneHotLow`]: crate::Op::OneHotLow

/// One layer of comparators on the current vector, applied in parallel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// `(p, q)`: afterwards position `p` holds the better and `q` the worse of the two.
    pub pairs: Vec<(u32, u32)>,
    /// When set, the vector after the layer is these positions, in this order.
    pub keep: Option<Vec<u32>>,
}

/// One stage of the selection plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A layer of the comparator network.
    Layer(Layer),
    /// Rank selection: pad the current vector with sentinels to whole groups of `group`,
    /// keep the best `keep` of each group, best first (groups in order).
    Rank {
        /// Group size (any size ≥ 2; ranks take ⌈log2 group⌉ bits).
        group: usize,
        /// Elements kept per group.
        keep: usize,
    },
}

/// How the best `k` of `n` elements are selected: the padded length the input is extended to
/// (with sentinels) and the stages. At the end the answer is the first `k` elements.
/// `1 ≤ k ≤ n` is the caller's to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestKPlan {
    /// Input length after padding with sentinels (a multiple of the network group size).
    pub padded: usize,
    /// Stages, in order.
    pub stages: Vec<Stage>,
}

/// Rank selection takes over when at most this many candidates are left: below it the
/// rounds saved (64 per factor of 4) outweigh its extra work — about 3× the comparisons and a
/// bit decomposition of every rank, ≈ 1.2 kB sent per candidate and party against ≈ 0.4 kB
/// for the network — measured on a 2-core machine running all three nodes over gRPC.
/// Part of the protocol: every party must use the same value.
pub const RANK_SELECT_MAX: usize = 2048;

/// Largest k for which rank selection is used (its groups hold 4·K elements).
pub const RANK_SELECT_MAX_K: usize = 16;

/// Rank selection: `x` (best-first groups of `keep` come out) with the protocol's arithmetic:
/// for a pair a < b of a group, `c = [x_a < x_b]` (largest) or `[x_b < x_a]` (smallest) says b
/// beats a; otherwise a beats b (ties to the lower position).
pub fn rank_select_plain(x: &[u64], group: usize, keep: usize, largest: bool) -> Vec<u64> {
    let mut v = x.to_vec();
    v.resize(x.len().div_ceil(group) * group, best_k_sentinel(largest));
    let mut out = Vec::with_capacity(v.len() / group * keep);
    for g in v.chunks_exact(group) {
        let mut rank = vec![0usize; group];
        for a in 0..group {
            for b in a + 1..group {
                let c = if largest {
                    lt(g[a], g[b])
                } else {
                    lt(g[b], g[a])
                };
                if c == 1 {
                    rank[a] += 1;
                } else {
                    rank[b] += 1;
                }
            }
        }
        let mut best = vec![0u64; keep];
        for (i, &r) in rank.iter().enumerate() {
            if r < keep {
                best[r] = g[i];
            }
        }
        out.extend(best);
    }
    out
}

/// The pairs (a, b), a < b, of every group of `group` in a vector of `len` (a multiple).
pub fn rank_pairs(len: usize, group: usize) -> Vec<(u32, u32)> {
    let mut pairs = Vec::with_capacity(len / group * group * (group - 1) / 2);
    for base in (0..len).step_by(group) {
        for a in 0..group {
            for b in a + 1..group {
                pairs.push(((base + a) as u32, (base + b) as u32));
            }
        }
    }
    pairs
}

/// Group size of the network: the next power of two ≥ k.
fn group_size(k: usize) -> usize {
    k.max(1).next_power_of_two()
}

/// Bitonic merge of a bitonic run `g` (power-of-two length) into best-first order, one layer
/// per stride, appended to `layers` (layer `offset + s` gets stride `len >> (s + 1)`).
fn merge_layers(groups: &[Vec<u32>], layers: &mut [Layer]) {
    for g in groups {
        let len = g.len();
        let mut d = len / 2;
        let mut s = 0;
        while d >= 1 {
            for i in 0..len {
                let j = i ^ d;
                if j > i {
                    layers[s].pairs.push((g[i], g[j]));
                }
            }
            d /= 2;
            s += 1;
        }
    }
}

/// The plan for the best `k` of `n` elements (`1 ≤ k ≤ n`): the comparator network while
/// many candidates are left, then rank selection (for k ≤ [`RANK_SELECT_MAX_K`]).
pub fn best_k_plan(n: usize, k: usize) -> BestKPlan {
    let kk = group_size(k);
    let rank = k <= RANK_SELECT_MAX_K;
    if rank && n <= RANK_SELECT_MAX {
        return BestKPlan {
            padded: n,
            stages: rank_stages(n, k),
        };
    }
    let padded = n.div_ceil(kk) * kk;
    let log = kk.trailing_zeros() as usize;
    let mut layers = Vec::new();
    // Stage 1: bitonic sort of every group; block direction alternates until the last stage.
    let mut size = 2;
    while size <= kk {
        let mut d = size / 2;
        while d >= 1 {
            let mut pairs = Vec::with_capacity(padded / 2);
            for base in (0..padded).step_by(kk) {
                for i in 0..kk {
                    let j = i ^ d;
                    if j > i {
                        let (a, b) = ((base + i) as u32, (base + j) as u32);
                        pairs.push(if i & size == 0 { (a, b) } else { (b, a) });
                    }
                }
            }
            layers.push(Layer { pairs, keep: None });
            d /= 2;
        }
        size *= 2;
    }
    // Stage 2: merge pairs of sorted groups, keeping the better half, until one is left (or,
    // with rank selection, until few enough candidates are left for it).
    let mut groups: Vec<Vec<u32>> = (0..padded / kk)
        .map(|g| ((g * kk) as u32..((g + 1) * kk) as u32).collect())
        .collect();
    while groups.len() > 1 && !(rank && groups.len() * kk <= RANK_SELECT_MAX) {
        let mut pairs = Vec::new();
        let mut kept: Vec<Vec<u32>> = Vec::new();
        for chunk in groups.chunks(2) {
            match chunk {
                [a, b] => {
                    for i in 0..kk {
                        pairs.push((a[i], b[kk - 1 - i]));
                    }
                    kept.push(a.clone());
                }
                [odd] => kept.push(odd.clone()),
                _ => unreachable!("chunks(2) yields one or two groups"),
            }
        }
        let keep: Vec<u32> = kept.iter().flatten().copied().collect();
        layers.push(Layer {
            pairs,
            keep: Some(keep),
        });
        // After the keep, group g occupies positions g·K .. (g+1)·K; only merged groups (all
        // but an odd last one) need the bitonic merge.
        let merged = groups.len() / 2;
        groups = (0..kept.len())
            .map(|g| ((g * kk) as u32..((g + 1) * kk) as u32).collect())
            .collect();
        let mut merge = vec![
            Layer {
                pairs: Vec::new(),
                keep: None,
            };
            log
        ];
        merge_layers(&groups[..merged], &mut merge);
        layers.extend(merge.into_iter().filter(|l| !l.pairs.is_empty()));
    }
    let mut stages: Vec<Stage> = layers.into_iter().map(Stage::Layer).collect();
    if groups.len() > 1 {
        stages.extend(rank_stages(groups.len() * kk, k));
    }
    BestKPlan { padded, stages }
}

/// Largest group of a rank stage: `G(G−1)/2` comparisons per group, so 1,024 already costs
/// about 511 sign tests per candidate. Part of the validation rules of [`Op::BestK`].
///
/// [`Op::BestK`]: crate::Op::BestK
pub const MAX_RANK_GROUP: usize = 1024;

/// Most rank stages one [`Op::BestK`] may list (each divides the candidates by at least
/// `(k + 1)/k`, so more stages than this are never useful for the sizes veil accepts).
///
/// [`Op::BestK`]: crate::Op::BestK
pub const MAX_RANK_STAGES: usize = 64;

/// Why a list of rank-stage group sizes is not a valid plan for the best `k` of `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RankGroupsError {
    /// No stages.
    #[error("no rank stages")]
    Empty,
    /// More than [`MAX_RANK_STAGES`] stages.
    #[error("{0} rank stages, at most {MAX_RANK_STAGES}")]
    TooManyStages(usize),
    /// A group smaller than `max(k, 2)` or larger than [`MAX_RANK_GROUP`].
    #[error("stage {stage}: group {group} is outside max(k, 2)..={MAX_RANK_GROUP}")]
    GroupSize {
        /// Stage index.
        stage: usize,
        /// Its group size.
        group: usize,
    },
    /// A stage with several groups that does not reduce the candidates (`group ≤ k`).
    #[error(
        "stage {stage}: {candidates} candidates in groups of {group} keeping {keep} do not shrink"
    )]
    NoProgress {
        /// Stage index.
        stage: usize,
        /// Candidates entering the stage.
        candidates: usize,
        /// Its group size.
        group: usize,
        /// Kept per group (k).
        keep: usize,
    },
    /// The last stage leaves more than one group (more than k candidates), or a stage follows
    /// one that already left a single group.
    #[error("the stages leave {groups} groups instead of ending with exactly one")]
    NotFinal {
        /// Groups of the offending stage.
        groups: usize,
    },
}

/// Candidates after each rank stage of `groups` on `n` candidates, keeping `k` per group:
/// `m ↦ ⌈m / G⌉·k`, except that a last stage with one group keeps `k`. Checks the plan:
/// every group within `max(k, 2)..=`[`MAX_RANK_GROUP`], every stage but the last splits into
/// several groups and shrinks the candidates, the last has exactly one group.
pub fn check_rank_groups(n: usize, k: usize, groups: &[usize]) -> Result<(), RankGroupsError> {
    if groups.is_empty() {
        return Err(RankGroupsError::Empty);
    }
    if groups.len() > MAX_RANK_STAGES {
        return Err(RankGroupsError::TooManyStages(groups.len()));
    }
    let mut m = n;
    for (stage, &group) in groups.iter().enumerate() {
        if group < k.max(2) || group > MAX_RANK_GROUP {
            return Err(RankGroupsError::GroupSize { stage, group });
        }
        let count = m.div_ceil(group);
        let last = stage + 1 == groups.len();
        if last != (count == 1) {
            return Err(RankGroupsError::NotFinal { groups: count });
        }
        if !last && count * k >= m {
            return Err(RankGroupsError::NoProgress {
                stage,
                candidates: m,
                group,
                keep: k,
            });
        }
        m = count * k;
    }
    Ok(())
}

/// The plan of [`Op::BestK`] for the best `k` of `n`: `None` is the default comparator
/// network with its rank-selection tail ([`best_k_plan`]); `Some(groups)` is rank selection
/// only, stage s in groups of `groups[s]` (see [`check_rank_groups`]; `1 ≤ k ≤ n` and a
/// checked list are the caller's to ensure).
///
/// [`Op::BestK`]: crate::Op::BestK
pub fn best_k_plan_with(n: usize, k: usize, groups: Option<&[usize]>) -> BestKPlan {
    match groups {
        None => best_k_plan(n, k),
        Some(groups) => BestKPlan {
            padded: n,
            stages: groups
                .iter()
                .map(|&group| Stage::Rank { group, keep: k })
                .collect(),
        },
    }
}

/// Bits of the ranks of a group of `group` (ranks `0..group`): `⌈log2 group⌉`, at least 1.
pub fn rank_bits(group: usize) -> u32 {
    group.max(2).next_power_of_two().trailing_zeros()
}

/// Factor sizes of the rank-stage product tree, level by level: level 0 is `bits` factors
/// `[1 − b_j, b_j]` (size 2) and the value itself (size 1) last; each level multiplies
/// neighbouring factors (an odd last one passes through) until two are left, whose product —
/// `[rank = r]·x` for every r — is cut to `keep` columns and summed over the group. The result
/// lists the sizes before each level; its length is the number of multiplication rounds.
pub fn rank_tree_levels(bits: u32) -> Vec<Vec<usize>> {
    let mut sizes = vec![2usize; bits as usize];
    sizes.push(1);
    let mut levels = Vec::new();
    while sizes.len() > 1 {
        levels.push(sizes.clone());
        sizes = sizes.chunks(2).map(|c| c.iter().product()).collect();
    }
    levels
}

/// Products (reshared words) per candidate of the rank-stage tree before its last level; the
/// last level costs `keep` words per group (a dot product over the group's members).
pub fn rank_tree_products(bits: u32) -> usize {
    let levels = rank_tree_levels(bits);
    let Some((_, inner)) = levels.split_last() else {
        return 0;
    };
    inner
        .iter()
        .map(|sizes| sizes.chunks_exact(2).map(|c| c[0] * c[1]).sum::<usize>())
        .sum()
}

/// Rank-selection stages taking `m` candidates down to the best `k` (groups of 4·K).
fn rank_stages(mut m: usize, k: usize) -> Vec<Stage> {
    let group = 4 * group_size(k);
    let mut stages = Vec::new();
    loop {
        stages.push(Stage::Rank { group, keep: k });
        let groups = m.div_ceil(group);
        m = groups * k;
        if groups == 1 {
            return stages;
        }
    }
}

/// The sentinel padding value: the worst value in the range where comparisons are exact
/// (`−2^62` when selecting the largest, `2^62 − 1` when selecting the smallest).
pub fn best_k_sentinel(largest: bool) -> u64 {
    if largest {
        (-(1i64 << 62)) as u64
    } else {
        ((1i64 << 62) - 1) as u64
    }
}

/// `[x_p < x_q]` exactly as the protocol computes it: the sign of the wrapping difference.
fn lt(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b) >> 63
}

/// Runs the plan on plaintext words with the protocol's arithmetic: for a pair (p, q),
/// `t = [x_p < x_q]·(x_q − x_p)`; the larger is `x_p + t`, the smaller `x_q − t` (wrapping).
/// Returns the best `k` (largest first, or smallest first).
pub fn best_k_plain(x: &[u64], k: usize, largest: bool) -> Vec<u64> {
    best_k_plain_with(x, k, largest, None)
}

/// [`best_k_plain`] for the plan [`best_k_plan_with`]`(x.len(), k, groups)`: what
/// [`Op::BestK`] with `groups` computes. Every valid plan gives the same answer — the best k,
/// best first, ties to the lower position — so this equals [`best_k_plain`] (the tests
/// check it); it is kept separate so the evaluator follows the protocol step for step.
///
/// [`Op::BestK`]: crate::Op::BestK
pub fn best_k_plain_with(x: &[u64], k: usize, largest: bool, groups: Option<&[usize]>) -> Vec<u64> {
    let plan = best_k_plan_with(x.len(), k, groups);
    let mut v = x.to_vec();
    v.resize(plan.padded, best_k_sentinel(largest));
    for stage in &plan.stages {
        match stage {
            Stage::Layer(layer) => {
                for &(p, q) in &layer.pairs {
                    let (a, b) = (v[p as usize], v[q as usize]);
                    let t = lt(a, b).wrapping_mul(b.wrapping_sub(a));
                    let (hi, lo) = (a.wrapping_add(t), b.wrapping_sub(t));
                    (v[p as usize], v[q as usize]) = if largest { (hi, lo) } else { (lo, hi) };
                }
                if let Some(keep) = &layer.keep {
                    v = keep.iter().map(|&i| v[i as usize]).collect();
                }
            }
            Stage::Rank { group, keep } => v = rank_select_plain(&v, *group, *keep, largest),
        }
    }
    v.truncate(k);
    v
}

/// Multiplication levels of the one-hot product tree for `bits` bits: level 0 has `bits`
/// factors of size 2; each level multiplies neighbouring factors (an odd last one passes), so
/// there are `⌈log2 bits⌉` levels.
pub fn onehot_levels(bits: u32) -> u32 {
    (bits.max(1) as usize).next_power_of_two().trailing_zeros()
}

/// Multiplications per row of the one-hot tree for `bits` bits whose final product is cut to
/// the first `n` positions (the pass-through factors cost nothing).
pub fn onehot_products(bits: u32, n: usize) -> usize {
    let mut sizes = vec![2usize; bits as usize];
    let mut products = 0;
    while sizes.len() > 1 {
        let last = sizes.len() == 2;
        sizes = sizes
            .chunks(2)
            .map(|c| {
                let p: usize = c.iter().product();
                if c.len() == 2 {
                    products += if last { p.min(n) } else { p };
                }
                p
            })
            .collect();
    }
    products
}

/// Plaintext one-hot of `x mod 2^bits` over `n` columns (a zero row when it is ≥ n).
pub fn onehot_low_plain(x: &[u64], bits: u32, n: usize) -> Vec<u64> {
    onehot_bits_plain(x, 0, bits, n)
}

/// Plaintext one-hot of bits `skip..skip + bits` of each word, `⌊x / 2^skip⌋ mod 2^bits`, over
/// `n` columns (a zero row when it is ≥ n): [`Op::OneHotLow`](crate::Op::OneHotLow) with `skip`.
pub fn onehot_bits_plain(x: &[u64], skip: u32, bits: u32, n: usize) -> Vec<u64> {
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut out = vec![0u64; x.len() * n];
    for (r, &w) in x.iter().enumerate() {
        let i = (w.checked_shr(skip).unwrap_or(0) & mask) as usize;
        if i < n {
            out[r * n + i] = 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn reference(x: &[u64], k: usize, largest: bool) -> Vec<u64> {
        let mut v: Vec<i64> = x.iter().map(|&w| w as i64).collect();
        if largest {
            v.sort_unstable_by(|a, b| b.cmp(a));
        } else {
            v.sort_unstable();
        }
        v.truncate(k);
        v.into_iter().map(|w| w as u64).collect()
    }

    #[test]
    fn network_selects_the_best_k_on_random_inputs() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in [1usize, 2, 3, 5, 8, 9, 17, 100, 1000, 1531, 40_000] {
            for k in [1usize, 2, 3, 5, 8, 13, 16, 17, 40] {
                if k > n {
                    continue;
                }
                for largest in [true, false] {
                    // Small range so ties are common.
                    let x: Vec<u64> = (0..n)
                        .map(|_| rng.random_range(-50i64..50) as u64)
                        .collect();
                    assert_eq!(
                        best_k_plain(&x, k, largest),
                        reference(&x, k, largest),
                        "n={n} k={k} largest={largest}"
                    );
                    let x: Vec<u64> = (0..n)
                        .map(|_| rng.random_range(-(1i64 << 61)..(1i64 << 61)) as u64)
                        .collect();
                    assert_eq!(best_k_plain(&x, k, largest), reference(&x, k, largest));
                }
            }
        }
    }

    /// Random valid rank plans for (n, k): random group sizes, each stage splitting or ending.
    fn random_groups(rng: &mut StdRng, n: usize, k: usize) -> Vec<usize> {
        let mut m = n;
        let mut groups = vec![];
        loop {
            let end = m.max(k).max(2);
            if end <= MAX_RANK_GROUP && (rng.random_bool(0.4) || m <= k + 1) {
                groups.push(end);
                return groups;
            }
            // A splitting group in (k, min(m, MAX)) that shrinks the candidates.
            let hi = (m - 1).min(MAX_RANK_GROUP);
            let g = rng.random_range(k + 1..=hi.max(k + 1));
            let count = m.div_ceil(g);
            if count >= 2 && count * k < m {
                groups.push(g);
                m = count * k;
            } else if end <= MAX_RANK_GROUP {
                groups.push(end);
                return groups;
            }
        }
    }

    #[test]
    fn every_rank_plan_selects_the_best_k_with_many_ties() {
        use crate::cost::{LinkProfile, best_rank_groups};
        let mut rng = StdRng::seed_from_u64(21);
        let links = [LinkProfile::LOOPBACK, LinkProfile::LAN, LinkProfile::WAN];
        for n in [1usize, 2, 3, 5, 7, 8, 9, 31, 33, 100, 257, 1000, 3001] {
            for k in [1usize, 2, 3, 7, 8, 9, 16, 33, n] {
                if k > n {
                    continue;
                }
                let mut plans: Vec<Vec<usize>> = links
                    .iter()
                    .map(|l| best_rank_groups(n, k, l).0)
                    .filter(|g| !g.is_empty())
                    .collect();
                if n <= MAX_RANK_GROUP {
                    plans.push(vec![n.max(2)]);
                }
                for _ in 0..3 {
                    if k < MAX_RANK_GROUP / 2 {
                        plans.push(random_groups(&mut rng, n, k));
                    }
                }
                for groups in plans {
                    check_rank_groups(n, k, &groups)
                        .unwrap_or_else(|e| panic!("n={n} k={k} {groups:?}: {e}"));
                    for largest in [true, false] {
                        // Tiny ranges (many ties), the sentinel itself, and wide values.
                        for range in [2i64, 20, 1 << 61] {
                            let mut x: Vec<u64> = (0..n)
                                .map(|_| rng.random_range(-range..range) as u64)
                                .collect();
                            if n > 3 {
                                x[n / 2] = best_k_sentinel(largest);
                            }
                            let want = reference(&x, k, largest);
                            assert_eq!(
                                best_k_plain_with(&x, k, largest, Some(&groups)),
                                want,
                                "n={n} k={k} largest={largest} groups={groups:?}"
                            );
                            assert_eq!(best_k_plain(&x, k, largest), want);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rank_group_lists_are_checked() {
        use RankGroupsError::*;
        assert_eq!(check_rank_groups(10, 2, &[]), Err(Empty));
        assert_eq!(
            check_rank_groups(10, 3, &[2, 10]),
            Err(GroupSize { stage: 0, group: 2 })
        );
        assert_eq!(
            check_rank_groups(10, 2, &[MAX_RANK_GROUP + 1]),
            Err(GroupSize {
                stage: 0,
                group: MAX_RANK_GROUP + 1
            })
        );
        // 10 in groups of 4 keeping 2: 3 groups → 6 left, not one group.
        assert_eq!(check_rank_groups(10, 2, &[4]), Err(NotFinal { groups: 3 }));
        assert_eq!(
            check_rank_groups(10, 2, &[10, 2]),
            Err(NotFinal { groups: 1 })
        );
        // 10 in groups of 3 keeping 3 does not shrink (4 groups · 3 = 12).
        assert_eq!(
            check_rank_groups(10, 3, &[3, 12]),
            Err(NoProgress {
                stage: 0,
                candidates: 10,
                group: 3,
                keep: 3
            })
        );
        assert_eq!(check_rank_groups(10, 2, &[4, 6]), Ok(()));
        assert_eq!(check_rank_groups(1, 1, &[2]), Ok(()));
        assert_eq!(
            check_rank_groups(1, 1, &vec![2; MAX_RANK_STAGES + 1]),
            Err(TooManyStages(MAX_RANK_STAGES + 1))
        );
    }

    #[test]
    fn rank_tree_shapes() {
        // 5 rank bits and the value: [2,2,2,2,2,1] → [4,4,2] → [16,2] → cut to keep.
        assert_eq!(
            rank_tree_levels(5),
            vec![vec![2, 2, 2, 2, 2, 1], vec![4, 4, 2], vec![16, 2]]
        );
        assert_eq!(rank_tree_products(5), 4 + 4 + 2 + 16);
        assert_eq!(rank_tree_levels(1), vec![vec![2, 1]]);
        assert_eq!(rank_tree_products(1), 0);
        assert_eq!(rank_bits(2), 1);
        assert_eq!(rank_bits(127), 7);
        assert_eq!(rank_bits(128), 7);
        assert_eq!(rank_bits(129), 8);
    }

    #[test]
    fn plans_have_the_expected_stages() {
        let count = |n, k| {
            let p = best_k_plan(n, k);
            let layers = p
                .stages
                .iter()
                .filter(|s| matches!(s, Stage::Layer(_)))
                .count();
            (layers, p.stages.len() - layers)
        };
        // Up to RANK_SELECT_MAX candidates: rank selection only, ÷4 per stage.
        assert_eq!(count(2_000, 8), (0, 4)); // 2,000 → 504 → 128 → 32 → 8
        assert_eq!(count(8, 8), (0, 1));
        // Above: 6 sort layers, 4 per merge level down to 2,048 candidates, then ranks.
        assert_eq!(count(10_000, 8), (6 + 4 * 3, 4)); // … 1,256 → 320 → 80 → 24 → 8
        assert_eq!(count(100_000, 8), (6 + 4 * 6, 4)); // … 1,568 → 392 → 104 → 32 → 8
        // Large k: the network alone; 5 → 3 → 2 → 1 for k = 1 is rank selection.
        assert_eq!(count(1000, 100), (28 + 8 * 3, 0));
        let comparators: usize = best_k_plan(100_000, 8)
            .stages
            .iter()
            .map(|s| match s {
                Stage::Layer(l) => l.pairs.len(),
                Stage::Rank { .. } => 0,
            })
            .sum();
        assert!(comparators < 6 * 100_000, "{comparators}");
    }

    #[test]
    fn onehot_tree_sizes() {
        assert_eq!(onehot_levels(1), 0);
        assert_eq!(onehot_levels(3), 2);
        assert_eq!(onehot_levels(17), 5);
        // 3 bits: [2, 2, 2] → [4, 2] (4 products) → [8] cut to 5.
        assert_eq!(onehot_products(3, 5), 4 + 5);
        assert_eq!(onehot_products(1, 2), 0);
        // 5 → column 5; 9 mod 8 = 1 → column 1; 7 ≥ n = 6 → a zero row.
        let oh = onehot_low_plain(&[5, 9, 7], 3, 6);
        assert_eq!(
            oh,
            [[0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0], [0; 6]].concat()
        );
    }
}
