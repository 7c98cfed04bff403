//! Multiplication, dot products and matrix products of replicated shares over Z_2^64.
//!
//! Construction: Araki, Furukawa, Lindell, Nof, Ohara, "High-Throughput Semi-Honest Secure
//! Three-Party Computation with an Honest Majority", CCS 2016 (eprint 2016/768), §2.2; the dot
//! product and matrix forms are ABY3 (Mohassel & Rindal, CCS 2018, eprint 2018/403) §5.
//!
//! P_i holds (x_i, x_{i+1}) and (y_i, y_{i+1}). Since xy = Σ_{j,k} x_j y_k, the cross terms
//! z_i = x_i·y_i + x_i·y_{i+1} + x_{i+1}·y_i = x_i·(y_i + y_{i+1}) + x_{i+1}·y_i
//! cover all nine products exactly once over the three parties, so z_0 + z_1 + z_2 = xy.
//! P_i adds α_i of a fresh zero-sharing (α_0 + α_1 + α_2 = 0, from the pairwise PRFs) and sends
//! z_i to P_{i−1}; it receives z_{i+1} from P_{i+1} and holds (z_i, z_{i+1}).
//!
//! Dot product: the cross terms are linear in each row, so P_i sums them over the whole row
//! before masking: one word per output **whatever the length**. Matrix product: Z_i =
//! X_i·(Y_i + Y_{i+1}) + X_{i+1}·Y_i, two local u64 GEMMs, one word per output entry.
//!
//! Security: semi-honest, honest majority (any single corrupted party). The word P_{i−1}
//! receives is z_i + α_i, and α_i = F_{k_{i,i+1}} − F_{k_{i−1,i}} contains the stream of the key
//! k_{i,i+1} that P_{i−1} does not hold, so it is uniformly random to P_{i−1}.
//!
//! Cost per party: 1 round; 8 bytes per output element (mul: per element; dot: per dot
//! product; matmul m×k·k×n: 8·m·n).
//!
//! Over Z_2^32 ([`MulRound::matmul32`], compact operands of [`crate::sharing::compact`]) the
//! same construction runs mod 2^32: the terms are u32 ([`kernels::rep3_matmul32_add_assign`],
//! which streams seeded components), the mask is α_i mod 2^32 (the low half of the usual
//! zero-sharing, itself a zero-sharing mod 2^32 that looks uniform to any other single party),
//! and each output is sent as one u64 word below 2^32: 1 round, 8·m·n bytes.

use super::{check_len, hot, run_round};
use crate::error::ProtocolError;
use crate::kernels;
use crate::party::PartyCtx;
use crate::sharing::{Shares, Shares32};
use crate::transport::Transport;
use crate::verify::tape::Form;
use std::sync::{Arc, OnceLock};

/// One party's state of a multiplication-type protocol: its masked cross terms z_i.
pub type MulRound = super::Reshare;

impl MulRound {
    /// Elementwise product of two equal-length shared vectors.
    pub fn mul(ctx: &mut PartyCtx, x: &Shares, y: &Shares) -> Result<Self, ProtocolError> {
        check_len("mul", x.len(), y.len())?;
        let form = Form::Dot {
            rows: x.len(),
            cols: 1,
        };
        let (mut z, record) = masks(ctx, form, x, y);
        hot::rep3_cross_add_assign(&mut z, &x.own, &x.next, &y.own, &y.next);
        Ok(super::Reshare::recorded(z, record))
    }

    /// Row-wise dot products of two `rows × cols` shared matrices (a vector is one row).
    pub fn dot(
        ctx: &mut PartyCtx,
        x: &Shares,
        y: &Shares,
        rows: usize,
        cols: usize,
    ) -> Result<Self, ProtocolError> {
        check_len("dot", x.len(), y.len())?;
        check_len("dot", x.len(), rows * cols)?;
        let (mut z, record) = masks(ctx, Form::Dot { rows, cols }, x, y);
        hot::rep3_dot_rows_add_assign(cols, &mut z, &x.own, &x.next, &y.own, &y.next);
        Ok(super::Reshare::recorded(z, record))
    }

    /// Matrix product of a shared m×k and a shared k×n matrix.
    pub fn matmul(
        ctx: &mut PartyCtx,
        x: &Shares,
        y: &Shares,
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Self, ProtocolError> {
        check_len("matmul", x.len(), m * k)?;
        check_len("matmul", y.len(), k * n)?;
        let (mut z, record) = masks(ctx, Form::MatMul { m, k, n }, x, y);
        hot::rep3_matmul_add_assign((m, k, n), &x.own, &x.next, &y.own, &y.next, &mut z);
        Ok(super::Reshare::recorded(z, record))
    }

    /// Matrix product mod 2^32 of a shared m×k and a shared k×n compact matrix (seeded
    /// components are streamed, never expanded whole). The result's words are below 2^32:
    /// [`Shares32::narrow`] turns the finished shares into Z_2^32 shares.
    pub fn matmul32(
        ctx: &mut PartyCtx,
        x: &Shares32,
        y: &Shares32,
        (m, k, n): (usize, usize, usize),
    ) -> Result<Self, ProtocolError> {
        let shape = |len: usize, rows: usize, cols: usize| rows.checked_mul(cols) == Some(len);
        for (s, rows, cols) in [(x, m, k), (y, k, n)] {
            for c in [&s.own, &s.next] {
                if !shape(c.len(), rows, cols) {
                    return Err(ProtocolError::Shape {
                        op: "matmul32",
                        left: c.len(),
                        right: rows.saturating_mul(cols),
                    });
                }
            }
        }
        let out = m.checked_mul(n).ok_or(ProtocolError::Argument {
            op: "matmul32",
            what: "the product has more elements than memory can address".into(),
        })?;
        let (domain, alpha) = ctx.zero_share_in(out);
        let mut z: Vec<u32> = alpha.into_iter().map(|w| w as u32).collect();
        kernels::rep3_matmul32_add_assign(
            (m, k, n),
            x.own.src(),
            x.next.src(),
            y.own.src(),
            y.next.src(),
            &mut z,
        );
        // Malicious mode proves the words mod 2^32 as the Z_2^64 relation times 2^32: the left
        // operand is recorded widened (x·2^32), the right one as is.
        let record = ctx.tape.as_mut().map(|t| {
            t.product_mod(
                Form::MatMul { m, k, n },
                &x.widen(),
                &y.to_u64(),
                domain,
                32,
            )
        });
        Ok(super::Reshare {
            z: z.into_iter().map(u64::from).collect(),
            record,
            ring32_from: Some(ctx.id.next()),
        })
    }
}

/// The zero-sharing α_i that masks a product's cross terms and, in malicious mode, the tape
/// slot that records the product for the session's verification ([`crate::verify`]).
fn masks(
    ctx: &mut PartyCtx,
    form: Form,
    x: &Shares,
    y: &Shares,
) -> (Vec<u64>, Option<Arc<OnceLock<Shares>>>) {
    let (domain, z) = ctx.zero_share_in(form.outputs());
    let record = ctx.tape.as_mut().map(|t| t.product(form, x, y, domain));
    (z, record)
}

/// Elementwise product of shared vectors (1 round, 8 bytes per element).
pub async fn mul<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    x: &Shares,
    y: &Shares,
) -> Result<Shares, ProtocolError> {
    let p = MulRound::mul(ctx, x, y)?;
    run_round(ctx, net, p).await
}

/// Row-wise dot products of shared `rows × cols` matrices (1 round, 8 bytes per row).
pub async fn dot<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    x: &Shares,
    y: &Shares,
    rows: usize,
    cols: usize,
) -> Result<Shares, ProtocolError> {
    let p = MulRound::dot(ctx, x, y, rows, cols)?;
    run_round(ctx, net, p).await
}

/// Product mod 2^32 of compact shared m×k and k×n matrices (1 round, 8·m·n bytes).
pub async fn matmul32<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    x: &Shares32,
    y: &Shares32,
    dims: (usize, usize, usize),
) -> Result<Shares32, ProtocolError> {
    let p = MulRound::matmul32(ctx, x, y, dims)?;
    Ok(Shares32::narrow(&run_round(ctx, net, p).await?))
}

/// Product of shared m×k and k×n matrices (1 round, 8·m·n bytes).
pub async fn matmul<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    x: &Shares,
    y: &Shares,
    (m, k, n): (usize, usize, usize),
) -> Result<Shares, ProtocolError> {
    let p = MulRound::matmul(ctx, x, y, m, k, n)?;
    run_round(ctx, net, p).await
}
