//! Blocked and clustered retrieval over compact Z_2^32 corpora, run by three parties: the keys
//! and texts equal the plaintext references on random corpora (embeddings and texts as compact
//! shares with seeded components), and what each party sends — rounds and bytes — is the cost
//! model's and does not depend on the query or on which clusters and chunks are selected.

use rand::Rng;
use std::collections::HashMap;
use veil_circuits::cost::{LinkProfile, program_cost};
use veil_circuits::retrieval::blocked::{
    BlockedShape, CENTROIDS, clustered_program, exact_program, plain_clustered, plain_exact,
    plain_fetch,
};
use veil_circuits::retrieval::{KEYS, QUERY, TEXTS, emb_input, text_input};
use veil_circuits::{RING32_MASK, ValidatedProgram};
use veil_runtime::SecurityMode;
use veil_runtime::engine::Report;
use veil_runtime::harness::{collect_outputs, run_program3_in, share_inputs};
use veil_runtime::testing::test_rng;
use veil_runtime::verify::{self, overhead};

/// A random corpus for `shape`: int8-range components (`spread` ≤ 127, small ones give ties),
/// zero padding rows, random packed texts.
struct Corpus {
    query: Vec<u64>,
    centroids: Vec<u64>,
    emb: Vec<Vec<u64>>,
    texts: Vec<Vec<u64>>,
}

fn w32(x: i64) -> u64 {
    x as u64 & RING32_MASK
}

fn corpus(shape: &BlockedShape, spread: i64, rng: &mut impl Rng) -> Corpus {
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
                .map(|_| u64::from(rng.random::<u32>()))
                .collect()
        })
        .collect();
    Corpus {
        query,
        centroids,
        emb,
        texts,
    }
}

fn plain_inputs(shape: &BlockedShape, c: &Corpus, clustered: bool) -> HashMap<String, Vec<u64>> {
    let mut m = HashMap::from([(QUERY.to_string(), c.query.clone())]);
    if clustered {
        m.insert(CENTROIDS.to_string(), c.centroids.clone());
    }
    for b in 0..shape.blocks.len() {
        m.insert(emb_input(b), c.emb[b].clone());
        m.insert(text_input(b), c.texts[b].clone());
    }
    m
}

/// Run `p` at three parties (Ring32 inputs compact-shared, seeded components, rotations
/// varying by input); check the keys against `keys` and the texts against the reference
/// fetch, and every party's rounds and bytes against the cost model. Returns the reports.
fn run_and_check(
    p: &ValidatedProgram,
    shape: &BlockedShape,
    c: &Corpus,
    clustered: bool,
    keys: &[u64],
) -> [Report; 3] {
    run_and_check_in(p, shape, c, clustered, keys, SecurityMode::SemiHonest)
}

/// [`run_and_check`] in security mode `mode` (malicious: the cost model plus its malicious
/// column).
fn run_and_check_in(
    p: &ValidatedProgram,
    shape: &BlockedShape,
    c: &Corpus,
    clustered: bool,
    keys: &[u64],
    mode: SecurityMode,
) -> [Report; 3] {
    let plain = plain_inputs(shape, c, clustered);
    let results = run_program3_in(p, share_inputs(p, &plain, &mut test_rng()), mode);
    let results = results.map(|r| r.expect("engine run succeeds"));
    let reports = [0, 1, 2].map(|i| results[i].1.clone());
    let got = collect_outputs(p, &results.map(|(o, _)| o)).expect("outputs reconstruct");
    assert!(
        got[KEYS] == keys,
        "keys differ from the reference ({shape:?})"
    );
    let texts = plain_fetch(shape, keys, &c.texts).expect("reference fetch");
    assert!(
        got[TEXTS] == texts,
        "texts differ from the reference ({shape:?})"
    );
    let cost = program_cost(p);
    let (rounds, bytes) = match mode {
        SecurityMode::SemiHonest => (u64::from(cost.rounds), cost.bytes_sent),
        SecurityMode::Malicious => {
            let extra = overhead(p, &cost);
            (
                u64::from(cost.rounds) + extra.rounds,
                extra.bytes_sent(cost.bytes_sent),
            )
        }
    };
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.security, mode);
        assert_eq!(r.rounds, rounds, "rounds at P{i}");
        assert_eq!(r.bytes_sent, bytes[i], "bytes sent by P{i}");
    }
    reports
}

/// Private RAG in malicious mode: both programs verify end to end (scoring, top-k, the
/// two-level fetch) and equal the references, with the malicious column's rounds and bytes.
#[test]
fn exact_and_clustered_programs_run_maliciously() {
    let mut rng = test_rng();
    let link = LinkProfile::default();
    for shape in [
        BlockedShape::new(3, 2, 4, vec![4, 3, 0, 1]),
        BlockedShape::new(8, 3, 16, vec![16, 11, 16, 5]),
    ] {
        let k = 3.min(shape.slots());
        let c = corpus(&shape, 127, &mut rng);
        let exact = exact_program(&shape, k, "owner", "asker", &link).expect("valid shape");
        assert_eq!(verify::unverified_op(&exact, &program_cost(&exact)), None);
        let keys = plain_exact(&shape, k, &c.query, &c.emb).expect("reference");
        run_and_check_in(&exact, &shape, &c, false, &keys, SecurityMode::Malicious);
        let p = shape.blocks.len().div_ceil(2);
        let clustered =
            clustered_program(&shape, p, k, "owner", "asker", &link).expect("valid shape");
        let keys =
            plain_clustered(&shape, p, k, &c.query, &c.centroids, &c.emb).expect("reference");
        run_and_check_in(&clustered, &shape, &c, true, &keys, SecurityMode::Malicious);
    }
}

fn shapes() -> Vec<BlockedShape> {
    vec![
        // Padding in the middle and at the end; one empty block.
        BlockedShape::new(3, 2, 4, vec![4, 3, 0, 1]),
        // One block (no block level in the fetch).
        BlockedShape::new(2, 3, 8, vec![5]),
        // Non-power-of-two block count, all full.
        BlockedShape::new(4, 1, 2, vec![2, 2, 2]),
        // Bigger blocks, uneven.
        BlockedShape::new(16, 4, 32, vec![32, 17, 32, 9, 30]),
    ]
}

#[test]
fn exact_program_matches_its_reference_three_party() {
    let mut rng = test_rng();
    for shape in shapes() {
        let slots = shape.slots();
        let mut ks = vec![1, shape.block_rows.min(slots), 3.min(slots)];
        ks.sort_unstable();
        ks.dedup();
        for &k in &ks {
            for spread in [1, 127] {
                let c = corpus(&shape, spread, &mut rng);
                let p = exact_program(&shape, k, "owner", "asker", &LinkProfile::default())
                    .expect("valid shape");
                let keys = plain_exact(&shape, k, &c.query, &c.emb).expect("reference");
                run_and_check(&p, &shape, &c, false, &keys);
            }
        }
    }
}

#[test]
fn clustered_program_matches_its_reference_three_party() {
    let mut rng = test_rng();
    for shape in shapes() {
        let nc = shape.blocks.len();
        let mut ps = vec![1, nc.div_ceil(2), nc];
        ps.dedup();
        for &p in &ps {
            let max_k = p * shape.block_rows;
            let mut ks = vec![1, shape.block_rows.min(max_k)];
            ks.dedup();
            for &k in &ks {
                let c = corpus(&shape, 127, &mut rng);
                let prog =
                    clustered_program(&shape, p, k, "owner", "asker", &LinkProfile::default())
                        .expect("valid shape");
                let keys = plain_clustered(&shape, p, k, &c.query, &c.centroids, &c.emb)
                    .expect("reference");
                run_and_check(&prog, &shape, &c, true, &keys);
            }
        }
    }
}

/// The `p` clusters whose centroids score highest against `query` (ties to the lower index).
fn chosen_clusters(shape: &BlockedShape, c: &Corpus, query: &[u64], p: usize) -> Vec<usize> {
    let signed = |w: u64| i64::from(w as u32 as i32);
    let mut scored: Vec<(i64, usize)> = c
        .centroids
        .chunks(shape.dim)
        .enumerate()
        .map(|(i, row)| {
            let s: i64 = row
                .iter()
                .zip(query)
                .map(|(a, b)| signed(*a) * signed(*b))
                .sum();
            (-s, i)
        })
        .collect();
    scored.sort_unstable();
    let mut best: Vec<usize> = scored[..p].iter().map(|&(_, i)| i).collect();
    best.sort_unstable();
    best
}

#[test]
fn what_each_party_sends_does_not_depend_on_the_query() {
    let mut rng = test_rng();
    let shape = BlockedShape::new(8, 3, 16, vec![16, 11, 16, 5]);
    let (k, p) = (3, 2);
    let c = corpus(&shape, 127, &mut rng);
    // The opposite query reverses every ranking: other chunks, other clusters.
    let flipped = Corpus {
        query: c
            .query
            .iter()
            .map(|&w| w32(-i64::from(w as u32 as i32)))
            .collect(),
        centroids: c.centroids.clone(),
        emb: c.emb.clone(),
        texts: c.texts.clone(),
    };
    let link = LinkProfile::default();

    let exact = exact_program(&shape, k, "owner", "asker", &link).unwrap();
    let keys_a = plain_exact(&shape, k, &c.query, &c.emb).unwrap();
    let keys_b = plain_exact(&shape, k, &flipped.query, &flipped.emb).unwrap();
    assert_ne!(keys_a, keys_b, "the two queries select different chunks");
    let a = run_and_check(&exact, &shape, &c, false, &keys_a);
    let b = run_and_check(&exact, &shape, &flipped, false, &keys_b);
    for i in 0..3 {
        assert_eq!(
            (a[i].rounds, a[i].bytes_sent),
            (b[i].rounds, b[i].bytes_sent),
            "exact: P{i}"
        );
    }

    let clustered = clustered_program(&shape, p, k, "owner", "asker", &link).unwrap();
    assert_ne!(
        chosen_clusters(&shape, &c, &c.query, p),
        chosen_clusters(&shape, &c, &flipped.query, p),
        "the two queries select different clusters"
    );
    let keys_a = plain_clustered(&shape, p, k, &c.query, &c.centroids, &c.emb).unwrap();
    let keys_b = plain_clustered(
        &shape,
        p,
        k,
        &flipped.query,
        &flipped.centroids,
        &flipped.emb,
    )
    .unwrap();
    let a = run_and_check(&clustered, &shape, &c, true, &keys_a);
    let b = run_and_check(&clustered, &shape, &flipped, true, &keys_b);
    for i in 0..3 {
        assert_eq!(
            (a[i].rounds, a[i].bytes_sent),
            (b[i].rounds, b[i].bytes_sent),
            "clustered: P{i}"
        );
    }
}
