//! Public plans of the oblivious selection ops: the comparator network of [`Op::TopK`] and the
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
//! **One-hot product tree**: the one-hot vector of `x mod 2^bits` is the outer (Kronecker)
//! product of the per-bit one-hots `[1 − b_i, b_i]`; pairing neighbouring factors level by level
//! gives it in `⌈log2 bits⌉` multiplication rounds.
//!
//! [`Op::TopK`]: crate::Op::TopK
//! [`Op::OneHotLow`]: crate::Op::OneHotLow

/// One layer of comparators on the current vector, applied in parallel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// `(p, q)`: afterwards position `p` holds the better and `q` the worse of the two.
    pub pairs: Vec<(u32, u32)>,
    /// When set, the vector after the layer is these positions, in this order.
    pub keep: Option<Vec<u32>>,
}

/// The comparator network selecting the best `k` of `n` elements: the padded length the input
/// is extended to (with sentinels), the layers, and the number of elements at the end (the
/// answer is the first `k` of them). `1 ≤ k ≤ n` is the caller's to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopKPlan {
    /// Input length after padding with sentinels (a multiple of the group size).
    pub padded: usize,
    /// Comparator layers, in order.
    pub layers: Vec<Layer>,
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

/// The plan for the best `k` of `n` elements (`1 ≤ k ≤ n`).
pub fn topk_plan(n: usize, k: usize) -> TopKPlan {
    let kk = group_size(k);
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
    // Stage 2: merge pairs of sorted groups, keeping the better half, until one is left.
    let mut groups: Vec<Vec<u32>> = (0..padded / kk)
        .map(|g| ((g * kk) as u32..((g + 1) * kk) as u32).collect())
        .collect();
    while groups.len() > 1 {
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
    TopKPlan { padded, layers }
}

/// The sentinel padding value: the worst value in the range where comparisons are exact
/// (`−2^62` when selecting the largest, `2^62 − 1` when selecting the smallest).
pub fn topk_sentinel(largest: bool) -> u64 {
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
pub fn topk_plain(x: &[u64], k: usize, largest: bool) -> Vec<u64> {
    let plan = topk_plan(x.len(), k);
    let mut v = x.to_vec();
    v.resize(plan.padded, topk_sentinel(largest));
    for layer in &plan.layers {
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
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut out = vec![0u64; x.len() * n];
    for (r, &w) in x.iter().enumerate() {
        let i = (w & mask) as usize;
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
        for n in [1usize, 2, 3, 5, 8, 9, 17, 100, 1000, 1531] {
            for k in [1usize, 2, 3, 5, 8, 13, 16] {
                if k > n {
                    continue;
                }
                for largest in [true, false] {
                    // Small range so ties are common.
                    let x: Vec<u64> = (0..n)
                        .map(|_| rng.random_range(-50i64..50) as u64)
                        .collect();
                    assert_eq!(
                        topk_plain(&x, k, largest),
                        reference(&x, k, largest),
                        "n={n} k={k} largest={largest}"
                    );
                    let x: Vec<u64> = (0..n)
                        .map(|_| rng.random_range(-(1i64 << 61)..(1i64 << 61)) as u64)
                        .collect();
                    assert_eq!(topk_plain(&x, k, largest), reference(&x, k, largest));
                }
            }
        }
    }

    #[test]
    fn layer_count_matches_the_formula() {
        // K = 8: 6 sort layers, then 4 per merge level; 10,000 → 1250 groups → 11 levels.
        assert_eq!(topk_plan(10_000, 8).layers.len(), 6 + 4 * 11);
        assert_eq!(topk_plan(8, 8).layers.len(), 6);
        assert_eq!(topk_plan(5, 1).layers.len(), 3); // 5 → 3 → 2 → 1
        let comparators: usize = topk_plan(100_000, 8)
            .layers
            .iter()
            .map(|l| l.pairs.len())
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
