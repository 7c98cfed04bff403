//! Oblivious selection on replicated shares: the best k elements of a vector by a comparator
//! network ([`best_k`], op `BestK`), and one-hot rows from the low bits of shared words
//! ([`onehot_low`], op `OneHotLow`). Private RAG uses them for its top-k and for fetching the
//! chosen chunks.
//!
//! **Best k.** The public plan is [`veil_circuits::selection::best_k_plan`] (Batcher's bitonic
//! sorter on groups of K = 2^⌈log2 k⌉, then "better half of two sorted groups" merges). Each
//! layer is one batched sign test of all its pairs, c = LTZ(x_p − x_q) = [x_p < x_q] (see
//! [`super::msb`]), and one multiplication t = c·(x_q − x_p): the larger is x_p + t and the
//! smaller x_q − t (8 rounds per layer: the sign bit's mask is multiplied in beside the
//! boolean work). Padding uses public sentinels (trivial sharings).
//! The last stages (or, for a plan with `groups`, all of them) are rank selections: one
//! batched sign test of every pair of each group, ranks summed locally, the kept elements
//! picked by the product of the ranks' bit factors and the value, summed over the group (15
//! rounds for groups of 32, 16 for 64 or 128).
//!
//! **One-hot.** The low `bits` bits of every word (or bits `skip..skip + bits`,
//! [`onehot_bits`]) are decomposed and opened under masks to
//! arithmetic 0/1 ([`super::compare`]'s two-way-split adder, ABY3 §5.3, stopped at the prefix
//! level that covers `bits` lanes), then the one-hot vector of the index
//! is the Kronecker product of the per-bit factors [1 − b_i, b_i], built by pairing
//! neighbouring factors: ⌈log2 bits⌉ multiplication rounds (Araki et al. 2016 products).
//!
//! Malicious mode: built only of sign tests, decompositions and products, each verified
//! ([`crate::verify`]); the proofs' sizes are counted by [`best_k_work`] and [`onehot_work`].
//!
//! Security: semi-honest, honest majority. Only sign tests, bit decompositions and
//! multiplications run, each of whose messages is masked by fresh zero-sharings or PRF streams
//! (see those modules), so a single party's view is independent of the values; which pairs are
//! compared, the rounds and the bytes depend only on the public sizes n, k, bits.

use super::Reshare;
use super::compare::{Target, decompose, ltz};
use super::compose::{OneRound, Then};
use super::msb::Msb;
use super::{MulRound, MultiRound, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::verify::Work;
use std::collections::VecDeque;
use veil_circuits::selection::{
    Layer, Stage, best_k_plan_with, best_k_sentinel, rank_bits, rank_pairs, rank_tree_levels,
};

/// The best `k` of the shared vector `x` (1 ≤ k ≤ len), largest first when `largest`, else
/// smallest first.
/// `groups` is the op's plan ([`best_k_plan_with`]): `None` for the comparator network,
/// `Some` for rank selection only (already validated).
pub fn best_k(
    ctx: &mut PartyCtx,
    x: Shares,
    k: usize,
    largest: bool,
    groups: Option<&[usize]>,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let plan = best_k_plan_with(x.len(), k, groups);
    let x = pad(ctx, x, plan.padded, largest);
    next_stage(ctx, x, plan.stages.into(), k, largest)
}

/// `x` extended to `len` with public sentinels (trivial sharings of the worst value).
fn pad(ctx: &PartyCtx, x: Shares, len: usize, largest: bool) -> Shares {
    let missing = len.saturating_sub(x.len());
    if missing == 0 {
        return x;
    }
    x.concat(&Shares::from_public(
        ctx.id,
        &vec![best_k_sentinel(largest); missing],
    ))
}

/// Runs the next stage of the plan on `x`; the last one finishes with its first `k` elements.
fn next_stage(
    ctx: &mut PartyCtx,
    x: Shares,
    mut stages: VecDeque<Stage>,
    k: usize,
    largest: bool,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let Some(stage) = stages.pop_front() else {
        return Err(ProtocolError::Argument {
            op: "best_k",
            what: "a plan without stages".into(),
        });
    };
    let then = move |ctx: &mut PartyCtx, x: Shares| -> Result<Step, ProtocolError> {
        if stages.is_empty() {
            return Ok(Step::Done(x.slice(0, k)));
        }
        Ok(Step::More(next_stage(ctx, x, stages, k, largest)?))
    };
    match stage {
        Stage::Layer(layer) => network_layer(ctx, x, layer, largest, then),
        Stage::Rank { group, keep } => rank_stage(ctx, x, group, keep, largest, then),
    }
}

/// One comparator layer: t = LTZ(x_p − x_q)·(x_q − x_p); the better goes to p.
fn network_layer(
    ctx: &mut PartyCtx,
    x: Shares,
    layer: Layer,
    largest: bool,
    then: impl FnOnce(&mut PartyCtx, Shares) -> Result<Step, ProtocolError> + Send + 'static,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let p = layer.pairs.iter().map(|&(p, _)| p as usize);
    let q = layer.pairs.iter().map(|&(_, q)| q as usize);
    let (a, b) = (x.gather(p), x.gather(q));
    // t = LTZ(a − b)·(b − a), the mask multiplied in beside the sign test (8 rounds).
    let sign_times_diff = Msb::start_blend(ctx, &a.sub(&b), b.sub(&a))?;
    Ok(Then::boxed(sign_times_diff, move |ctx, t| {
        let (hi, lo) = (a.add(&t), b.sub(&t));
        let (better, worse) = if largest { (hi, lo) } else { (lo, hi) };
        let mut x = x;
        for (j, &(p, q)) in layer.pairs.iter().enumerate() {
            let (p, q) = (p as usize, q as usize);
            (x.own[p], x.next[p]) = (better.own[j], better.next[j]);
            (x.own[q], x.next[q]) = (worse.own[j], worse.next[j]);
        }
        if let Some(keep) = &layer.keep {
            x = x.gather(keep.iter().map(|&i| i as usize));
        }
        then(ctx, x)
    }))
}

/// One rank-selection stage (see [`veil_circuits::selection`]): all pairs of each group are
/// compared at once, rank_i = #{members that beat i} (local), and kept element r of a group is
/// Σ_i [rank_i = r]·x_i. The indicator is the Kronecker product of the per-bit factors
/// [1 − b_j, b_j] of the rank's β = ⌈log2 G⌉ low bits; x_i joins the product tree as one more
/// factor of size 1, so its last level already is [rank_i = r]·x_i and the sum over the group
/// is taken before the reshare (a dot product): 8 + (2 + prefix levels(β)) + ⌈log2(β + 1)⌉
/// rounds.
fn rank_stage(
    ctx: &mut PartyCtx,
    x: Shares,
    group: usize,
    keep: usize,
    largest: bool,
    then: impl FnOnce(&mut PartyCtx, Shares) -> Result<Step, ProtocolError> + Send + 'static,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let len = x.len().div_ceil(group) * group;
    let x = pad(ctx, x, len, largest);
    let pairs = rank_pairs(len, group);
    let a = x.gather(pairs.iter().map(|&(a, _)| a as usize));
    let b = x.gather(pairs.iter().map(|&(_, b)| b as usize));
    // c = 1 iff b beats a: [x_a < x_b] for the largest, [x_b < x_a] for the smallest.
    let d = if largest { a.sub(&b) } else { b.sub(&a) };
    let sign = ltz(ctx, &d)?;
    let bits = rank_bits(group);
    Ok(Then::boxed(sign, move |ctx, c| {
        // rank_a += c (b beats a); rank_b += 1 − c (a beats b): rank_b gets one public 1 per
        // pair with a smaller partner, i.e. its position in the group, minus the c's.
        let mut rank = Shares::from_public(
            ctx.id,
            &(0..len).map(|i| (i % group) as u64).collect::<Vec<u64>>(),
        );
        for (j, &(a, b)) in pairs.iter().enumerate() {
            let (a, b) = (a as usize, b as usize);
            rank.own[a] = rank.own[a].wrapping_add(c.own[j]);
            rank.next[a] = rank.next[a].wrapping_add(c.next[j]);
            rank.own[b] = rank.own[b].wrapping_sub(c.own[j]);
            rank.next[b] = rank.next[b].wrapping_sub(c.next[j]);
        }
        let dec = decompose(ctx, &rank, Target::LowBits { lanes: bits })?;
        Ok(Step::More(Then::boxed(dec, move |ctx, bit| {
            // Per candidate: β factors [1 − b_j, b_j], then x itself (size 1).
            let one = Shares::from_public(ctx.id, &[1]);
            let beta = bits as usize;
            let row = |ones: u64, bit: &[u64], x: &[u64]| -> Vec<u64> {
                bit.chunks_exact(beta)
                    .zip(x)
                    .flat_map(|(bs, &x)| {
                        bs.iter()
                            .flat_map(move |&v| [ones.wrapping_sub(v), v])
                            .chain(std::iter::once(x))
                    })
                    .collect()
            };
            let f = Shares {
                own: row(one.own[0], &bit.own, &x.own),
                next: row(one.next[0], &bit.next, &x.next),
            };
            let levels: VecDeque<Vec<usize>> = rank_tree_levels(bits).into();
            rank_tree_level(ctx, f, len, group, keep, levels, then)
        })))
    }))
}

/// One level of the rank-stage product tree on `f` (`rows` candidates × Σ sizes words, the
/// factors of `levels[0]` per row). Below the last level it is [`product_level`]'s pairing;
/// the last level's two factors A, B give column r = A[r mod |A|]·B[r / |A|] for r < `keep`,
/// summed over the `group` rows of each group: one dot product per (group, r).
fn rank_tree_level(
    ctx: &mut PartyCtx,
    f: Shares,
    rows: usize,
    group: usize,
    keep: usize,
    mut levels: VecDeque<Vec<usize>>,
    then: impl FnOnce(&mut PartyCtx, Shares) -> Result<Step, ProtocolError> + Send + 'static,
) -> Result<Step, ProtocolError> {
    let Some(sizes) = levels.pop_front() else {
        return Err(ProtocolError::Argument {
            op: "best_k",
            what: "an empty rank product tree".into(),
        });
    };
    let stride: usize = sizes.iter().sum();
    let offsets = factor_offsets(&sizes);
    if levels.is_empty() {
        // Last level: exactly two factors. Row (g, r) of the dot: over members i of group g,
        // A_i[r mod |A|] · B_i[r / |A|].
        let (sa, ob) = (sizes[0], offsets[1]);
        let groups = rows / group;
        let left = f.gather((0..groups).flat_map(|g| {
            (0..keep).flat_map(move |r| (0..group).map(move |i| (g * group + i) * stride + r % sa))
        }));
        let right = f.gather((0..groups).flat_map(|g| {
            (0..keep)
                .flat_map(move |r| (0..group).map(move |i| (g * group + i) * stride + ob + r / sa))
        }));
        let dot = MulRound::dot(ctx, &left, &right, groups * keep, group)?;
        return Ok(Step::More(Then::boxed(Box::new(OneRound(dot)), then)));
    }
    let (mul, next_layout) = pair_products(ctx, f, rows, &sizes, usize::MAX)?;
    Ok(Step::More(Then::boxed(
        Box::new(OneRound(mul)),
        move |ctx, prod| rank_tree_level(ctx, next_layout(prod), rows, group, keep, levels, then),
    )))
}

/// One-hot rows of `x_r mod 2^bits` over `n` columns (row-major `len × n` result): decompose
/// the low `bits` bits, then multiply the per-bit factors [1 − b, b] pairwise.
pub fn onehot_low(
    ctx: &mut PartyCtx,
    x: &Shares,
    bits: u32,
    n: usize,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    onehot_bits(ctx, x, 0, bits, n)
}

/// One-hot rows of `⌊x_r / 2^skip⌋ mod 2^bits` (bits `skip..skip + bits`) over `n` columns
/// (op `OneHotLow` with `skip`): the adder runs to bit `skip + bits` (the carries into the
/// index bits come from the skipped ones) but only the `bits` index lanes are opened and
/// injected ([`Target::BitRange`]), then the product tree as [`onehot_low`].
pub fn onehot_bits(
    ctx: &mut PartyCtx,
    x: &Shares,
    skip: u32,
    bits: u32,
    n: usize,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let rows = x.len();
    let target = match skip {
        0 => Target::LowBits { lanes: bits },
        _ => Target::BitRange { skip, lanes: bits },
    };
    let dec = decompose(ctx, x, target)?;
    Ok(Then::boxed(dec, move |ctx, b| {
        // Factor i of row r is [1 − b_{r,i}, b_{r,i}]: row stride 2·bits.
        // The public 1 lives in component x_0, which P0 holds as `own` and P2 as `next`.
        let one = Shares::from_public(ctx.id, &[1]);
        let pairs = |ones: u64, bits: &[u64]| -> Vec<u64> {
            bits.iter()
                .flat_map(|&v| [ones.wrapping_sub(v), v])
                .collect()
        };
        let f = Shares {
            own: pairs(one.own[0], &b.own),
            next: pairs(one.next[0], &b.next),
        };
        let sizes = vec![2usize; bits as usize];
        product_level(ctx, f, rows, sizes, n)
    }))
}

/// One level of the product tree on `f` (rows × Σ sizes, factors of `sizes` per row); the
/// final single factor is cut to `n` columns.
fn product_level(
    ctx: &mut PartyCtx,
    f: Shares,
    rows: usize,
    sizes: Vec<usize>,
    n: usize,
) -> Result<Step, ProtocolError> {
    let stride: usize = sizes.iter().sum();
    if sizes.len() <= 1 {
        let idx = (0..rows).flat_map(|r| (0..n).map(move |c| r * stride + c));
        return Ok(Step::Done(f.gather(idx)));
    }
    // Only the last level's single product is cut to `n` columns.
    let last = sizes.len() == 2;
    let cap = if last { n } else { usize::MAX };
    let new_sizes: Vec<usize> = sizes
        .chunks(2)
        .map(|pair| match pair {
            [sa, sb] => (sa * sb).min(cap),
            // An odd last factor passes through.
            _ => pair[0],
        })
        .collect();
    let (mul, next_layout) = pair_products(ctx, f, rows, &sizes, cap)?;
    Ok(Step::More(Then::boxed(
        Box::new(OneRound(mul)),
        move |ctx, prod| product_level(ctx, next_layout(prod), rows, new_sizes, n),
    )))
}

/// Where each factor of a row starts, for factors of `sizes` words laid out one after another.
fn factor_offsets(sizes: &[usize]) -> Vec<usize> {
    sizes
        .iter()
        .scan(0, |o, &s| {
            let at = *o;
            *o += s;
            Some(at)
        })
        .collect()
}

/// One level of a product tree over `rows` rows of factors (`sizes` words each, laid out one
/// after another in each row of `f`): the products of neighbouring factors (A lower, B
/// higher), P[hi·|A| + lo] = A[lo]·B[hi], the first `cap` of each pair kept, in one
/// multiplication round; an odd last factor passes through. Returns that round and the layout
/// of the next level as a function of its products: per row, its products, then the
/// pass-through factor.
fn pair_products(
    ctx: &mut PartyCtx,
    f: Shares,
    rows: usize,
    sizes: &[usize],
    cap: usize,
) -> Result<(Reshare, impl FnOnce(Shares) -> Shares + Send + 'static), ProtocolError> {
    let stride: usize = sizes.iter().sum();
    let offsets = factor_offsets(sizes);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for r in 0..rows {
        for c in (0..sizes.len() - 1).step_by(2) {
            let (sa, sb) = (sizes[c], sizes[c + 1]);
            for t in 0..(sa * sb).min(cap) {
                left.push(r * stride + offsets[c] + t % sa);
                right.push(r * stride + offsets[c + 1] + t / sa);
            }
        }
    }
    let mul = MulRound::mul(
        ctx,
        &f.gather(left.iter().copied()),
        &f.gather(right.iter().copied()),
    )?;
    let odd = sizes.len() % 2 == 1;
    let (odd_off, odd_size) = (offsets[sizes.len() - 1], sizes[sizes.len() - 1]);
    let products_per_row = left.len() / rows.max(1);
    let next_layout = move |prod: Shares| {
        if !odd {
            return prod;
        }
        let both = prod.concat(&f);
        let base = prod.len();
        both.gather((0..rows).flat_map(|r| {
            (0..products_per_row)
                .map(move |t| r * products_per_row + t)
                .chain((0..odd_size).map(move |t| base + r * stride + odd_off + t))
        }))
    };
    Ok((mul, next_layout))
}

/// The verified work of a `BestK` of `n` elements ([`best_k`]): each layer's sign test times
/// its differences, and each rank stage's sign test, rank decomposition and product tree.
pub(crate) fn best_k_work(work: &mut Work, n: usize, k: usize, groups: Option<&[usize]>) {
    let plan = best_k_plan_with(n, k, groups);
    let mut len = plan.padded;
    for stage in plan.stages {
        match stage {
            Stage::Layer(layer) => {
                let m = layer.pairs.len();
                work.sign_test(m, m);
                len = layer.keep.map_or(len, |kept| kept.len());
            }
            Stage::Rank { group, keep } => {
                let padded = len.div_ceil(group) * group;
                work.sign_test(rank_pairs(padded, group).len(), 0);
                let bits = rank_bits(group);
                work.decompose(padded, Target::LowBits { lanes: bits });
                let levels = rank_tree_levels(bits);
                let groups = padded / group;
                for (i, sizes) in levels.iter().enumerate() {
                    if i + 1 == levels.len() {
                        work.product(2 * groups * keep * group);
                    } else {
                        work.product(2 * padded * pair_products_per_row(sizes, usize::MAX));
                    }
                }
                len = groups * keep;
            }
        }
    }
}

/// The verified work of a `OneHotLow` of `rows` words over `n` columns
/// ([`onehot_bits`]): the decomposition, then the product tree.
pub(crate) fn onehot_work(work: &mut Work, rows: usize, skip: u32, bits: u32, n: usize) {
    let target = match skip {
        0 => Target::LowBits { lanes: bits },
        _ => Target::BitRange { skip, lanes: bits },
    };
    work.decompose(rows, target);
    let mut sizes = vec![2usize; bits as usize];
    while sizes.len() > 1 {
        let cap = if sizes.len() == 2 { n } else { usize::MAX };
        work.product(2 * rows * pair_products_per_row(&sizes, cap));
        sizes = sizes
            .chunks(2)
            .map(|pair| match pair {
                [sa, sb] => (sa * sb).min(cap),
                _ => pair[0],
            })
            .collect();
    }
}

/// Products per row of one product-tree level ([`pair_products`]).
fn pair_products_per_row(sizes: &[usize], cap: usize) -> usize {
    sizes
        .chunks_exact(2)
        .map(|pair| (pair[0] * pair[1]).min(cap))
        .sum()
}
