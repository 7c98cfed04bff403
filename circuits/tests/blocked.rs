//! Blocked and clustered retrieval (`retrieval::blocked`): the plaintext evaluator of each
//! program equals its reference on random data (ties, padding rows, k = 1, k = R, p = 1,
//! p = C), the refusals are typed, and the fetch costs k·(nb·width + R + nb), not k·n.

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::HashMap;
use veil_circuits::cost::{self, LinkProfile};
use veil_circuits::retrieval::blocked::{
    BlockedError, BlockedShape, CENTROIDS, MAX_ABS_SCORE32, PAD_KEY32, clustered_program,
    decode_key32, exact_program, fetch_cost, is_padding_key32, plain_clustered, plain_exact,
    plain_fetch,
};
use veil_circuits::retrieval::{KEYS, QUERY, TEXTS, emb_input, text_input};
use veil_circuits::{ElemType, Op, RING32_MASK, ValidatedProgram, eval};

/// Random corpus data for `shape`: small signed components (many ties), zero padding rows.
struct Data {
    query: Vec<u64>,
    centroids: Vec<u64>,
    emb: Vec<Vec<u64>>,
    texts: Vec<Vec<u64>>,
}

fn w32(x: i64) -> u64 {
    x as u64 & RING32_MASK
}

fn data(shape: &BlockedShape, spread: i64, rng: &mut StdRng) -> Data {
    let mut small = |n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| w32(rng.random_range(-spread..=spread)))
            .collect()
    };
    let query = small(shape.dim);
    let centroids = small(shape.blocks.len() * shape.dim);
    let emb = shape
        .blocks
        .iter()
        .map(|&present| {
            let mut m = small(shape.block_rows * shape.dim);
            m[present * shape.dim..].iter_mut().for_each(|w| *w = 0);
            m
        })
        .collect();
    let texts = shape
        .blocks
        .iter()
        .map(|_| {
            (0..shape.block_rows * shape.width)
                .map(|_| rng.random::<u32>() as u64)
                .collect()
        })
        .collect();
    Data {
        query,
        centroids,
        emb,
        texts,
    }
}

fn inputs(shape: &BlockedShape, d: &Data, clustered: bool) -> HashMap<String, Vec<u64>> {
    let mut m = HashMap::from([(QUERY.to_string(), d.query.clone())]);
    if clustered {
        m.insert(CENTROIDS.to_string(), d.centroids.clone());
    }
    for b in 0..shape.blocks.len() {
        m.insert(emb_input(b), d.emb[b].clone());
        m.insert(text_input(b), d.texts[b].clone());
    }
    m
}

fn check_program(
    p: &ValidatedProgram,
    ins: &HashMap<String, Vec<u64>>,
    keys: &[u64],
    shape: &BlockedShape,
    d: &Data,
) {
    let out = eval::evaluate(p, ins).unwrap();
    assert_eq!(out[KEYS], keys, "{shape:?}");
    assert_eq!(
        out[TEXTS],
        plain_fetch(shape, keys, &d.texts).unwrap(),
        "{shape:?}"
    );
}

fn shapes() -> Vec<BlockedShape> {
    vec![
        // Padding in the middle and at the end; one empty block.
        BlockedShape::new(3, 2, 4, vec![4, 3, 0, 1]),
        // One block (no block level in the fetch).
        BlockedShape::new(2, 3, 8, vec![5]),
        // Non-power-of-two block count, all full.
        BlockedShape::new(4, 1, 2, vec![2, 2, 2]),
        // Many blocks, uneven.
        BlockedShape::new(2, 2, 4, vec![1, 4, 2, 4, 3]),
    ]
}

#[test]
fn exact_program_matches_reference() {
    let mut rng = StdRng::seed_from_u64(20);
    for shape in shapes() {
        let slots = shape.slots();
        let mut ks = vec![1, shape.block_rows, shape.documents().max(1), slots];
        ks.retain(|&k| (1..=slots).contains(&k));
        ks.dedup();
        for &k in &ks {
            for spread in [1, 127] {
                let d = data(&shape, spread, &mut rng);
                let p =
                    exact_program(&shape, k, "owner", "asker", &LinkProfile::default()).unwrap();
                let keys = plain_exact(&shape, k, &d.query, &d.emb).unwrap();
                assert_eq!(keys.len(), k);
                check_program(&p, &inputs(&shape, &d, false), &keys, &shape, &d);
            }
        }
    }
}

#[test]
fn clustered_program_matches_reference() {
    let mut rng = StdRng::seed_from_u64(21);
    for shape in shapes() {
        let nc = shape.blocks.len();
        let mut ps = vec![1, nc.div_ceil(2), nc];
        ps.dedup();
        for &p in &ps {
            let max_k = p * shape.block_rows;
            let mut ks = vec![1, shape.block_rows.min(max_k), max_k];
            ks.dedup();
            for &k in &ks {
                for spread in [1, 127] {
                    let d = data(&shape, spread, &mut rng);
                    let prog =
                        clustered_program(&shape, p, k, "owner", "asker", &LinkProfile::default())
                            .unwrap();
                    let keys =
                        plain_clustered(&shape, p, k, &d.query, &d.centroids, &d.emb).unwrap();
                    check_program(&prog, &inputs(&shape, &d, true), &keys, &shape, &d);
                    if p == nc {
                        // Every cluster chosen: the exact answer.
                        assert_eq!(keys, plain_exact(&shape, k, &d.query, &d.emb).unwrap());
                    }
                }
            }
        }
    }
}

#[test]
fn rank_only_plans_give_the_same_answer() {
    let mut rng = StdRng::seed_from_u64(22);
    let shape = BlockedShape::new(3, 2, 16, vec![16, 9, 16, 12]);
    let d = data(&shape, 2, &mut rng);
    for link in [LinkProfile::LAN, LinkProfile::WAN] {
        let p = exact_program(&shape, 5, "o", "a", &link).unwrap();
        let keys = plain_exact(&shape, 5, &d.query, &d.emb).unwrap();
        check_program(&p, &inputs(&shape, &d, false), &keys, &shape, &d);
        let p = clustered_program(&shape, 2, 5, "o", "a", &link).unwrap();
        let keys = plain_clustered(&shape, 2, 5, &d.query, &d.centroids, &d.emb).unwrap();
        check_program(&p, &inputs(&shape, &d, true), &keys, &shape, &d);
    }
}

#[test]
fn extreme_scores_stay_exact() {
    // dim 1 with a declared bound of 2^30 − 2: the largest scores the keys hold.
    let mut shape = BlockedShape::new(1, 1, 2, vec![2, 1]);
    shape.max_abs_score = Some(MAX_ABS_SCORE32);
    let m = MAX_ABS_SCORE32 as i64;
    let d = Data {
        query: vec![w32(1)],
        centroids: vec![w32(-m), w32(m)],
        emb: vec![vec![w32(-m), w32(m)], vec![w32(m), 0]],
        texts: vec![vec![1, 2], vec![3, 4]],
    };
    let p = exact_program(&shape, 4, "o", "a", &LinkProfile::default()).unwrap();
    let keys = plain_exact(&shape, 4, &d.query, &d.emb).unwrap();
    check_program(&p, &inputs(&shape, &d, false), &keys, &shape, &d);
    let bits = shape.index_bits();
    let decoded: Vec<_> = keys.iter().map(|&k| decode_key32(k, bits)).collect();
    assert_eq!(decoded[..3], [(m, 1), (m, 2), (-m, 0)]);
    assert!(is_padding_key32(keys[3]));
    assert!(!keys[..3].iter().any(|&k| is_padding_key32(k)));
    assert_eq!(keys[3], PAD_KEY32 + 3);
}

#[test]
fn decode_round_trip() {
    for (score, id) in [
        (0i64, 0usize),
        (5, 7),
        (-5, 1 << 31),
        (1 << 29, 3),
        (-(1 << 29), 9),
    ] {
        let key = ((-score) << 32) as u64 + id as u64;
        assert_eq!(decode_key32(key, 32), (score, id));
        assert!(!is_padding_key32(key));
    }
}

#[test]
fn refusals_are_typed() {
    let ok = BlockedShape::new(4, 2, 4, vec![4, 2]);
    let link = LinkProfile::default();
    let exact = |s: &BlockedShape, k| exact_program(s, k, "o", "a", &link).err();
    // Score bound: dim·127² above 2^30 − 2 (dim 66,573), or a declared bound.
    let e = exact(&BlockedShape::new(66_573, 1, 2, vec![2]), 1).unwrap();
    assert!(
        matches!(
            e,
            BlockedError::ScoreBound {
                max: MAX_ABS_SCORE32,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("2^30 − 2"), "{e}");
    assert!(BlockedShape::new(66_572, 1, 2, vec![2]).check().is_ok());
    let mut declared = ok.clone();
    declared.max_abs_score = Some(1 << 31);
    assert!(matches!(
        exact(&declared, 1),
        Some(BlockedError::ScoreBound { bound, .. }) if bound == 1 << 31
    ));
    // Index bits: R = 2^20 and 2^13 blocks need 33 bits.
    let wide = BlockedShape::new(1, 1, 1 << 20, vec![0; (1 << 12) + 1]);
    assert!(matches!(
        wide.check(),
        Err(BlockedError::IndexBits { bits: 33, max: 32 })
    ));
    assert!(
        BlockedShape::new(1, 1, 1 << 20, vec![0; 1 << 12])
            .check()
            .is_ok()
    );
    // More than 2^32 words in a block.
    assert!(matches!(
        BlockedShape::new(1 << 13, 1, 1 << 20, vec![1]).check(),
        Err(BlockedError::TooLarge { .. })
    ));
    assert!(matches!(
        exact(&BlockedShape::new(4, 2, 3, vec![3]), 1),
        Some(BlockedError::BlockRows { rows: 3 })
    ));
    assert!(matches!(
        exact(&BlockedShape::new(4, 2, 1, vec![1]), 1),
        Some(BlockedError::BlockRows { rows: 1 })
    ));
    assert!(matches!(
        exact(&BlockedShape::new(4, 2, 4, vec![4, 5]), 1),
        Some(BlockedError::BlockTooFull {
            block: 1,
            present: 5,
            rows: 4
        })
    ));
    assert!(matches!(
        exact(&BlockedShape::new(4, 2, 4, vec![]), 1),
        Some(BlockedError::NoBlocks)
    ));
    assert!(matches!(
        exact(&BlockedShape::new(0, 2, 4, vec![1]), 1),
        Some(BlockedError::Empty { what: "dim" })
    ));
    assert!(matches!(
        exact(&ok, 0),
        Some(BlockedError::Count { what: "k", .. })
    ));
    assert!(matches!(
        exact(&ok, 9),
        Some(BlockedError::Count {
            what: "k",
            got: 9,
            max: 8
        })
    ));
    assert!(exact(&ok, 8).is_none());
    let clustered = |p, k| clustered_program(&ok, p, k, "o", "a", &link).err();
    assert!(matches!(
        clustered(3, 1),
        Some(BlockedError::Count {
            what: "p",
            max: 2,
            ..
        })
    ));
    assert!(matches!(
        clustered(1, 5),
        Some(BlockedError::Count {
            what: "k",
            max: 4,
            ..
        })
    ));
    assert!(clustered(2, 8).is_none());
}

#[test]
fn references_check_their_data() {
    let shape = BlockedShape::new(2, 1, 2, vec![2, 1]);
    let q = vec![w32(1), w32(1)];
    let good = vec![vec![1, 2, 3, 4], vec![1, 1, 0, 0]];
    assert!(plain_exact(&shape, 1, &q, &good).is_ok());
    let padded = vec![good[0].clone(), vec![1, 1, 0, 1]];
    assert!(matches!(
        plain_exact(&shape, 1, &q, &padded),
        Err(BlockedError::PaddingNotZero { block: 1, row: 1 })
    ));
    let mut big = shape.clone();
    big.max_abs_score = Some(5);
    assert!(matches!(
        plain_exact(&big, 1, &q, &good),
        Err(BlockedError::ScoreOutOfRange {
            what: "chunk",
            index: 1,
            bound: 5
        })
    ));
    big.max_abs_score = Some(7);
    assert!(plain_clustered(&big, 1, 1, &q, &[3, 3, 0, 0], &good).is_ok());
    assert!(matches!(
        plain_clustered(&big, 1, 1, &q, &[3, 3, 4, 4], &good),
        Err(BlockedError::ScoreOutOfRange {
            what: "centroid",
            index: 1,
            bound: 7
        })
    ));
    assert!(matches!(
        plain_exact(&shape, 1, &[1, 1 << 32], &good),
        Err(BlockedError::NotRing32 { position: 1, .. })
    ));
    assert!(matches!(
        plain_exact(&shape, 1, &q, &good[..1]),
        Err(BlockedError::InputLength { .. })
    ));
}

#[test]
fn programs_use_compact_inputs_and_small_constants() {
    let shape = BlockedShape::new(8, 4, 64, vec![64, 64, 64, 10]);
    let p = exact_program(&shape, 4, "o", "a", &LinkProfile::default()).unwrap();
    for decl in &p.program().inputs {
        assert_eq!(decl.ty.elem, ElemType::Ring32, "{}", decl.name);
    }
    // The key base is built from O(nb + R) words, not one word per row.
    let words: usize = p
        .program()
        .ops
        .iter()
        .map(|op| match op {
            Op::Constant { values, .. } => values.len(),
            _ => 0,
        })
        .sum();
    assert!(
        words < 4 * (shape.blocks.len() + shape.block_rows) + 8,
        "{words}"
    );
    let out = &p.program().outputs;
    assert_eq!(p.types()[out[0].value.index()].elem, ElemType::Ring);
    assert_eq!(p.types()[out[1].value.index()].elem, ElemType::Ring32);
}

/// Cost of the ops after the last `BestK` (the fetch): outputs to a client are free.
fn fetch_part(p: &ValidatedProgram) -> cost::Cost {
    let c = cost::program_cost(p);
    let ops = &p.program().ops;
    let last = ops
        .iter()
        .rposition(|op| matches!(op, Op::BestK { .. }))
        .unwrap();
    let start = c.depth[last];
    let mut bytes = [0u64; 3];
    for pc in &c.per_op[last + 1..] {
        for (total, b) in bytes.iter_mut().zip(pc.bytes_sent) {
            *total += b;
        }
    }
    cost::Cost {
        rounds: c.rounds - start,
        bytes_sent: bytes,
    }
}

#[test]
fn fetch_cost_is_linear_in_blocks_rows_and_width_not_n() {
    let link = LinkProfile::default();
    for (rows, nb, width, k) in [
        (4usize, 3usize, 2usize, 2usize),
        (16, 1, 3, 4),
        (256, 256, 8, 8),
        (1024, 16, 32, 8),
    ] {
        let shape = BlockedShape::new(4, width, rows, vec![rows; nb]);
        let n = shape.slots() as u64;
        for p in [
            exact_program(&shape, k, "o", "a", &link).unwrap(),
            clustered_program(&shape, nb, k, "o", "a", &link).unwrap(),
        ] {
            let measured = fetch_part(&p);
            assert_eq!(measured, fetch_cost(&shape, k), "{rows} × {nb}");
            let (kk, nbw) = (k as u64, (nb * width) as u64);
            // One reshared word per (chosen, block, text word) and per output word, one-hot
            // trees of at most 2 products per column, ≤ 616 bytes to decompose ≤ 32 bits.
            let bound = 8 * kk * (nbw + width as u64 + 2 * (rows + nb) as u64) + kk * 2 * 616;
            assert!(
                measured.bytes_sent.iter().all(|&b| b <= bound),
                "{measured:?} > {bound}"
            );
            if n >= 1 << 16 {
                // A k × n one-hot alone would reshare 8·k·n bytes.
                assert!(measured.bytes_sent[1] * 4 < 8 * kk * n, "{measured:?}");
            }
            // One round more than a one-level fetch (one-hot, then one product).
            let one_level = cost::onehot_low_rounds(0, shape.index_bits()) + 1;
            assert!(measured.rounds <= one_level + 1);
        }
    }
}
