//! The RAG retrieval circuit on shares: top-k ids, scores and fetched texts equal a plaintext
//! search (highest score first, ties to the lower index), with rounds and bytes equal to the
//! cost model.

use rand::Rng;
use std::collections::HashMap;
use veil_circuits::cost::{LinkProfile, program_cost};
use veil_circuits::eval::evaluate;
use veil_circuits::retrieval::{
    KEYS, QUERY, RetrievalShape, TEXTS, decode_key, emb_input, retrieval_program,
    retrieval_program_for, text_input,
};
use veil_runtime::harness::{collect_outputs, run_program3, share_inputs};
use veil_runtime::testing::test_rng;

/// Plaintext reference: (score, index) of the best k, highest score first, ties → lower index.
fn reference(emb: &[i8], dim: usize, q: &[i8], k: usize) -> Vec<(i64, usize)> {
    let mut s: Vec<(i64, usize)> = emb
        .chunks_exact(dim)
        .enumerate()
        .map(|(j, row)| {
            let score = row.iter().zip(q).map(|(&a, &b)| a as i64 * b as i64).sum();
            (score, j)
        })
        .collect();
    s.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    s.truncate(k);
    s
}

#[test]
fn retrieval_circuit_returns_the_plaintext_top_k_and_texts() {
    for link in [LinkProfile::LOOPBACK, LinkProfile::WAN] {
        retrieval_matches_plaintext(&link);
    }
}

/// The WAN plan differs from the default one where it should, and only there.
#[test]
fn the_link_picks_the_top_k_plan() {
    let shape = RetrievalShape {
        dim: 8,
        width: 2,
        blocks: vec![10_000],
    };
    let default = retrieval_program(&shape, 8, "o", "a").unwrap();
    let lan = retrieval_program_for(&shape, 8, "o", "a", &LinkProfile::LAN).unwrap();
    let wan = retrieval_program_for(&shape, 8, "o", "a", &LinkProfile::WAN).unwrap();
    assert_eq!(default.id(), lan.id());
    assert_ne!(default.id(), wan.id());
    let (d, w) = (program_cost(&default), program_cost(&wan));
    assert!(
        w.rounds <= 80 && w.rounds * 3 < d.rounds,
        "{} vs {}",
        w.rounds,
        d.rounds
    );
}

fn retrieval_matches_plaintext(link: &LinkProfile) {
    let mut rng = test_rng();
    for (blocks, dim, width, k) in [
        (vec![1usize], 3usize, 2usize, 1usize),
        (vec![5, 3], 4, 3, 3),
        (vec![40, 40, 17], 16, 5, 8),
        (vec![300], 32, 4, 8),
        (vec![1500, 1500], 4, 2, 8),
    ] {
        let shape = RetrievalShape {
            dim,
            width,
            blocks: blocks.clone(),
        };
        let n = shape.documents();
        let p = retrieval_program_for(&shape, k, "owner", "asker", link).unwrap();
        // Small coordinates so equal scores (ties) occur.
        let emb: Vec<i8> = (0..n * dim).map(|_| rng.random_range(-3..=3)).collect();
        let q: Vec<i8> = (0..dim).map(|_| rng.random_range(-3..=3)).collect();
        let texts: Vec<u64> = (0..n * width).map(|_| rng.random()).collect();
        let mut plain = HashMap::from([(
            QUERY.to_string(),
            q.iter().map(|&v| v as i64 as u64).collect::<Vec<u64>>(),
        )]);
        let mut at = 0;
        for (i, &rows) in blocks.iter().enumerate() {
            let e = &emb[at * dim..(at + rows) * dim];
            plain.insert(emb_input(i), e.iter().map(|&v| v as i64 as u64).collect());
            plain.insert(
                text_input(i),
                texts[at * width..(at + rows) * width].to_vec(),
            );
            at += rows;
        }
        let results = run_program3(&p, share_inputs(&p, &plain, &mut rng)).map(|r| r.expect("run"));
        let cost = program_cost(&p);
        for (i, (_, report)) in results.iter().enumerate() {
            assert_eq!(report.rounds, cost.rounds as u64, "rounds at P{i}");
            assert_eq!(report.bytes_sent, cost.bytes_sent[i], "bytes sent by P{i}");
        }
        let outputs = results.map(|(o, _)| o);
        let got = collect_outputs(&p, &outputs).expect("outputs reconstruct");
        assert_eq!(got, evaluate(&p, &plain).unwrap());
        let want = reference(&emb, dim, &q, k);
        let bits = shape.index_bits();
        let hits: Vec<(i64, usize)> = got[KEYS].iter().map(|&key| decode_key(key, bits)).collect();
        assert_eq!(hits, want, "blocks {blocks:?} k {k}");
        for (r, &(_, j)) in want.iter().enumerate() {
            assert_eq!(
                got[TEXTS][r * width..(r + 1) * width],
                texts[j * width..(j + 1) * width],
                "text of hit {r}"
            );
        }
    }
}
