//! Every protocol against plaintext on random inputs and edge values, with its measured rounds
//! and bytes per party checked against the protocol's documented cost.

use veil_circuits::PartyId;
use veil_runtime::engine::Session;
use veil_runtime::error::ProtocolError;
use veil_runtime::harness::run3;
use veil_runtime::party::PartyCtx;
use veil_runtime::protocols::{dot, input, matmul, matmul32, mul, reveal_to, trunc_pr};
use veil_runtime::sharing::{Shares, Shares32, reconstruct, reconstruct32, share3, share3_compact};
use veil_runtime::testing::{ring_vec_with_edges, test_rng};
use veil_runtime::transport::MemoryTransport;

/// What one party measured: its result, payload bytes sent and rounds used by the protocol.
struct Measured<T> {
    out: T,
    bytes: u64,
    rounds: u64,
}

/// Run a protocol at all three parties after session setup, measuring only the protocol.
fn run_protocol<T: Send>(
    f: impl AsyncFn(&mut PartyCtx, &MemoryTransport) -> T + Sync,
) -> [Measured<T>; 3] {
    run3(|net| async {
        let mut session = Session::establish(net).await.expect("session setup");
        let (ctx, net) = session.parts();
        let (b0, r0) = (net.bytes_sent(), ctx.rounds_used());
        let out = f(ctx, net).await;
        Measured {
            out,
            bytes: net.bytes_sent() - b0,
            rounds: ctx.rounds_used() - r0,
        }
    })
}

fn shares_of(m: [Measured<Result<Shares, ProtocolError>>; 3]) -> ([Shares; 3], [u64; 3], [u64; 3]) {
    let bytes = [m[0].bytes, m[1].bytes, m[2].bytes];
    let rounds = [m[0].rounds, m[1].rounds, m[2].rounds];
    let shares = m.map(|m| m.out.expect("protocol succeeds"));
    (shares, bytes, rounds)
}

#[test]
fn mul_matches_plaintext() {
    let mut rng = test_rng();
    for n in [0usize, 1, 63, 64, 65, 1000] {
        let (x, y) = (
            ring_vec_with_edges(&mut rng, n),
            ring_vec_with_edges(&mut rng, n),
        );
        let (xs, ys) = (share3(&x, &mut rng), share3(&y, &mut rng));
        let (out, bytes, rounds) = shares_of(run_protocol(async |ctx, net| {
            let i = ctx.id.index();
            mul(ctx, net, &xs[i], &ys[i]).await
        }));
        let want: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
        assert_eq!(reconstruct(&out).unwrap(), want, "n = {n}");
        assert_eq!(rounds, [1; 3]);
        assert_eq!(bytes, [8 * n as u64; 3], "n = {n}");
    }
}

#[test]
fn dot_costs_one_word_per_output_whatever_the_length() {
    let mut rng = test_rng();
    for (rows, cols) in [(1usize, 384usize), (10, 7), (3, 0), (0, 5), (5, 1000)] {
        let (x, y) = (
            ring_vec_with_edges(&mut rng, rows * cols),
            ring_vec_with_edges(&mut rng, rows * cols),
        );
        let (xs, ys) = (share3(&x, &mut rng), share3(&y, &mut rng));
        let (out, bytes, rounds) = shares_of(run_protocol(async |ctx, net| {
            let i = ctx.id.index();
            dot(ctx, net, &xs[i], &ys[i], rows, cols).await
        }));
        let want: Vec<u64> = (0..rows)
            .map(|r| {
                (0..cols).fold(0u64, |s, c| {
                    s.wrapping_add(x[r * cols + c].wrapping_mul(y[r * cols + c]))
                })
            })
            .collect();
        assert_eq!(reconstruct(&out).unwrap(), want, "{rows}×{cols}");
        assert_eq!(rounds, [1; 3]);
        assert_eq!(bytes, [8 * rows as u64; 3]);
    }
}

#[test]
fn matmul_matches_plaintext() {
    let mut rng = test_rng();
    for (m, k, n) in [(1usize, 1usize, 1usize), (3, 5, 7), (17, 33, 9), (2, 0, 3)] {
        let (x, y) = (
            ring_vec_with_edges(&mut rng, m * k),
            ring_vec_with_edges(&mut rng, k * n),
        );
        let (xs, ys) = (share3(&x, &mut rng), share3(&y, &mut rng));
        let (out, bytes, rounds) = shares_of(run_protocol(async |ctx, net| {
            let i = ctx.id.index();
            matmul(ctx, net, &xs[i], &ys[i], (m, k, n)).await
        }));
        let mut want = vec![0u64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    want[i * n + j] =
                        want[i * n + j].wrapping_add(x[i * k + p].wrapping_mul(y[p * n + j]));
                }
            }
        }
        assert_eq!(reconstruct(&out).unwrap(), want, "{m}×{k}×{n}");
        assert_eq!(rounds, [1; 3]);
        assert_eq!(bytes, [8 * (m * n) as u64; 3]);
    }
}

#[test]
fn matmul32_matches_plaintext_with_seeded_and_explicit_operands() {
    use rand::Rng;
    let mut rng = test_rng();
    for (m, k, n) in [
        (1usize, 1usize, 1usize),
        (3, 5, 7),
        (300, 40, 1),
        (4, 500, 9),
        (2, 0, 3),
    ] {
        let x: Vec<u32> = (0..m * k).map(|_| rng.random()).collect();
        let y: Vec<u32> = (0..k * n).map(|_| rng.random()).collect();
        let mut want = vec![0u32; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    want[i * n + j] =
                        want[i * n + j].wrapping_add(x[i * k + p].wrapping_mul(y[p * n + j]));
                }
            }
        }
        for (rx, ry) in [(PartyId::P0, PartyId::P1), (PartyId::P2, PartyId::P2)] {
            let xs = share3_compact(&x, rx, &mut rng).parties();
            // One operand seeded, the other explicit.
            let ys = share3_compact(&y, ry, &mut rng)
                .parties()
                .map(|s| s.explicit());
            let m3 = run_protocol(async |ctx, net| {
                let i = ctx.id.index();
                matmul32(ctx, net, &xs[i], &ys[i], (m, k, n)).await
            });
            let bytes = [m3[0].bytes, m3[1].bytes, m3[2].bytes];
            let rounds = [m3[0].rounds, m3[1].rounds, m3[2].rounds];
            let out: [Shares32; 3] = m3.map(|r| r.out.expect("protocol succeeds"));
            assert_eq!(reconstruct32(&out).unwrap(), want, "{m}×{k}×{n}");
            assert_eq!(rounds, [1; 3]);
            assert_eq!(bytes, [8 * (m * n) as u64; 3]);
        }
    }
}

#[test]
fn matmul32_rejects_mismatched_shapes() {
    let mut rng = test_rng();
    let xs = share3_compact(&[1, 2, 3, 4, 5, 6], PartyId::P0, &mut rng).parties();
    let m3 = run_protocol(async |ctx, net| {
        let i = ctx.id.index();
        matmul32(ctx, net, &xs[i], &xs[i], (2, 3, 3)).await
    });
    for r in m3 {
        assert!(matches!(
            r.out,
            Err(ProtocolError::Shape {
                op: "matmul32",
                left: 6,
                right: 9
            })
        ));
        assert_eq!((r.bytes, r.rounds), (0, 0));
    }
}

#[test]
fn mul_rejects_mismatched_lengths() {
    let mut rng = test_rng();
    let xs = share3(&[1, 2, 3], &mut rng);
    let ys = share3(&[1, 2], &mut rng);
    let res = run_protocol(async |ctx, net| {
        let i = ctx.id.index();
        mul(ctx, net, &xs[i], &ys[i]).await
    });
    for m in res {
        assert!(matches!(
            m.out,
            Err(ProtocolError::Shape {
                op: "mul",
                left: 3,
                right: 2
            })
        ));
        assert_eq!(m.rounds, 0);
    }
}

#[test]
fn trunc_is_floor_or_floor_plus_one() {
    let mut rng = test_rng();
    use rand::Rng;
    for d in [0u32, 1, 16, 32] {
        let n = 2000;
        // |x| < 2^40: failure probability ≤ 2^-23 per element.
        let mut x: Vec<u64> = (0..n)
            .map(|_| rng.random_range(-(1i64 << 40)..(1i64 << 40)) as u64)
            .collect();
        x[..6].copy_from_slice(&[
            0,
            1,
            u64::MAX,
            (1u64 << 40) - 1,
            (-(1i64 << 40)) as u64,
            1 << d,
        ]);
        let xs = share3(&x, &mut rng);
        let (out, bytes, rounds) = shares_of(run_protocol(async |ctx, net| {
            let i = ctx.id.index();
            trunc_pr(ctx, net, &xs[i], d).await
        }));
        let got = reconstruct(&out).unwrap();
        for (g, v) in got.iter().zip(&x) {
            let floor = (*v as i64) >> d;
            let diff = (*g as i64).wrapping_sub(floor);
            assert!(diff == 0 || diff == 1, "d = {d}: off by {diff}");
        }
        assert_eq!(rounds, [1; 3]);
        assert_eq!(bytes, [0, 8 * n as u64, 0]);
    }
}

#[test]
fn input_from_each_owner() {
    let mut rng = test_rng();
    for owner in PartyId::ALL {
        for n in [0usize, 1, 65] {
            let v = ring_vec_with_edges(&mut rng, n);
            let (out, bytes, rounds) = shares_of(run_protocol(async |ctx, net| {
                let mine = (ctx.id == owner).then_some(v.as_slice());
                input(ctx, net, owner, n, mine).await
            }));
            assert_eq!(reconstruct(&out).unwrap(), v);
            assert_eq!(rounds, [1; 3]);
            let mut want = [0u64; 3];
            want[owner.index()] = 16 * n as u64;
            assert_eq!(bytes, want);
        }
    }
}

#[test]
fn reveal_to_one_party_and_to_all() {
    let mut rng = test_rng();
    let v = ring_vec_with_edges(&mut rng, 100);
    let xs = share3(&v, &mut rng);
    for to in [
        Some(PartyId::P0),
        Some(PartyId::P1),
        Some(PartyId::P2),
        None,
    ] {
        let res = run_protocol(async |ctx, net| {
            let i = ctx.id.index();
            reveal_to(ctx, net, xs[i].clone(), to).await
        });
        for (i, m) in res.iter().enumerate() {
            let got = m.out.as_ref().expect("reveal succeeds");
            let receives = to.is_none_or(|p| p.index() == i);
            assert_eq!(got.as_ref(), receives.then_some(&v));
            assert_eq!(m.rounds, 1);
            let want_bytes = match to {
                None => 16 * 100,
                Some(p) if p.index() == i => 0,
                Some(_) => 8 * 100,
            };
            assert_eq!(m.bytes, want_bytes);
        }
    }
}

#[test]
fn reveal_detects_a_tampered_component() {
    let mut rng = test_rng();
    let v = ring_vec_with_edges(&mut rng, 10);
    let mut xs = share3(&v, &mut rng);
    // P1 lies about x_2 (its `next`), which P0 needs and also gets from P2.
    xs[1].next[7] ^= 1;
    let res = run_protocol(async |ctx, net| {
        let i = ctx.id.index();
        reveal_to(ctx, net, xs[i].clone(), Some(PartyId::P0)).await
    });
    match &res[0].out {
        Err(ProtocolError::PeerMisbehaved { what, .. }) => {
            assert!(what.contains("element 7"), "{what}");
            assert!(
                !what.contains(&v[7].to_string()),
                "error must not carry values"
            );
        }
        other => panic!("expected a detected mismatch, got {other:?}"),
    }
}

/// A party's view of a product is fresh and uniform: its own output component for the same
/// inputs differs across two sessions, and its bits are balanced.
#[test]
fn mul_output_components_are_fresh_and_uniform() {
    let mut rng = test_rng();
    let n = 4096;
    let x = vec![5u64; n];
    let xs = share3(&x, &mut rng);
    let run = || {
        let (out, _, _) = shares_of(run_protocol(async |ctx, net| {
            let i = ctx.id.index();
            mul(ctx, net, &xs[i], &xs[i]).await
        }));
        out
    };
    let (a, b) = (run(), run());
    assert_eq!(reconstruct(&a).unwrap(), vec![25; n]);
    assert_ne!(
        a[0].own, b[0].own,
        "components must be re-randomised per session"
    );
    for bit in 0..64 {
        let ones = a[0].own.iter().filter(|w| (*w >> bit) & 1 == 1).count() as f64;
        let (mean, sd) = (n as f64 / 2.0, (n as f64 / 4.0).sqrt());
        assert!(
            (ones - mean).abs() < 5.0 * sd,
            "bit {bit}: {ones} ones of {n}"
        );
    }
}
