//! Fixed-point approximations, lowered to existing ops, each with its measured error bound:
//! e^x ([`Builder::exp_neg`]), the reciprocal and division (Goldschmidt after MSB
//! normalisation), the inverse square root (Newton), the sigmoid and row softmax.

use super::{Builder, Value};
use crate::error::ValidationError;
use crate::types::{ElemType, Fixed, FracBits, Shape};

/// Squarings in [`Builder::exp_neg`]: e^x ≈ (1 + x/2^m)^(2^m) with m = 8.
pub const EXP_NEG_SQUARINGS: u32 = 8;

/// Measured bound (with margin) on |`exp_neg`(x) − e^x| over x ∈ [−16, 0] at f = 16, plaintext.
pub const EXP_NEG_MAX_ABS_ERROR: f64 = 3e-3;

/// Goldschmidt iterations in [`Builder::reciprocal`] (and [`Builder::sigmoid`]).
pub const RECIPROCAL_ITERATIONS: u32 = 3;

/// Largest `f` accepted by [`Builder::reciprocal`], [`Builder::div`] and
/// [`Builder::inv_sqrt`]: the MSB normalisation's products reach 2^(2f+8) (2^40 at f = 16,
/// 2^48 at f = 20), and [`normalise_lanes`] must stay ≤ 64.
pub const NORMALISE_MAX_FRAC_BITS: u32 = 20;

/// Lanes of the `MsbOneHot` used to normalise a `Fixed(f)` operand: `2f + 8` (40 at f = 16),
/// so the normalising functions accept x ∈ [2^-f, 2^(f+8)).
pub const fn normalise_lanes(f: u32) -> u32 {
    2 * f + 8
}

/// Relative part of [`Builder::reciprocal`]'s error bound: at f = 16, plaintext, over the
/// whole domain x ∈ [2^-16, 2^24), |`reciprocal`(x) − 1/x| ≤ `RECIPROCAL_MAX_REL_ERROR`·(1/x)
/// + [`RECIPROCAL_MAX_ABS_ERROR`] (measured with margin).
pub const RECIPROCAL_MAX_REL_ERROR: f64 = 1e-4;

/// Absolute part of [`Builder::reciprocal`]'s error bound: 2^-15, two ulps at f = 16.
pub const RECIPROCAL_MAX_ABS_ERROR: f64 = 1.0 / 32768.0;

/// Newton steps in [`Builder::inv_sqrt`].
pub const INV_SQRT_ITERATIONS: u32 = 2;

/// Initial guess of [`Builder::inv_sqrt`] on v ∈ [0.5, 1): `y0 = INTERCEPT − SLOPE·v`
/// (minimax relative error 2.23%).
const INV_SQRT_INTERCEPT: f64 = 1.7877;
const INV_SQRT_SLOPE: f64 = 0.81;

/// Relative part of [`Builder::inv_sqrt`]'s error bound: at f = 16, plaintext, over the whole
/// domain x ∈ [2^-16, 2^24), |`inv_sqrt`(x) − 1/√x| ≤ `INV_SQRT_MAX_REL_ERROR`·(1/√x) +
/// [`INV_SQRT_MAX_ABS_ERROR`] (measured with margin).
pub const INV_SQRT_MAX_REL_ERROR: f64 = 1e-4;

/// Absolute part of [`Builder::inv_sqrt`]'s error bound: 2^-15, two ulps at f = 16.
pub const INV_SQRT_MAX_ABS_ERROR: f64 = 1.0 / 32768.0;

/// Measured bound (with margin) on |`sigmoid`(x) − σ(x)| over x ∈ [−16, 16] at f = 16,
/// plaintext.
pub const SIGMOID_MAX_ABS_ERROR: f64 = 2e-3;

/// Largest column count [`Builder::softmax_rows`] accepts (row sums must stay ≤ 256).
pub const SOFTMAX_MAX_COLS: usize = 256;

/// Measured bound (with margin) on |`softmax_rows` − softmax| for rows in [−8, 8] at f = 16,
/// plaintext.
pub const SOFTMAX_MAX_ABS_ERROR: f64 = 3e-3;

impl Builder {
    /// The fractional bits of a fixed-point operand; records the error otherwise.
    pub(super) fn check_fixed(&mut self, name: &'static str, x: Value) -> Result<u32, Value> {
        match x.ty.elem {
            ElemType::Fixed(f) => Ok(f.0),
            elem => Err(self.fail(|op| ValidationError::RescaleNotFixed { op, name, elem })),
        }
    }

    /// e^x elementwise for a fixed-point `x` (`Fixed(f)`, any shape, secret or public) →
    /// same type.
    ///
    /// Lowering (no new op), the limit method e^x ≈ (1 + x/2^8)^(2^8) (CrypTen's `exp`):
    /// `y = 1 + x·2^-8` computed exactly in `Fixed(f+8)` ([`Builder::mul`] of `x` by the
    /// `Fixed(8)` constant word 1, plus the constant `1 + 2^-(f+1)`) and rounded to nearest
    /// by one [`Builder::rescale`] of 8 bits, then 8 squarings with [`Builder::fixmul`]. The
    /// rounding matters: an error δ in `y` becomes about `256·e^x·δ` in the result.
    ///
    /// **Range**: x ∈ [−16, 0]; below −16 the true value is < 1.2·10^-7 (under one ulp at
    /// f = 16) and the result stays ≈ 0 (measured exactly 0 on a grid of step 1/16) down to x = −256. **No clamping**:
    /// below −256 the base `1 + x/256` is negative and the result is garbage (≥ 0, reaching
    /// 1 at x = −512 and growing beyond); above 0 it under-estimates e^x and overflows for
    /// large x.
    ///
    /// **Error** (plaintext evaluator, f = 16, grid of step 1/256 over [−16, 0] plus every
    /// 7th ulp near 0): measured max |result − e^x| = 2.42·10^-3 (near x = −0.2), asserted ≤
    /// [`EXP_NEG_MAX_ABS_ERROR`] = 3·10^-3. It is dominated by the rounding of `y` to
    /// `Fixed(16)` (≤ 2^-17, times 256·e^x) and the floors of the squarings; the method's own
    /// error, ≈ e^x·x²/512, is at most 1.1·10^-3 (x = −2). Under MPC each secret rescale may add one
    /// ulp, which the squarings amplify (the first one by up to 256·2^-f ≈ 0.004 at f = 16).
    ///
    /// **Cost** (secret `x`): 1 + 8·2 = 17 rounds; bytes as 1 rescale + 8 fixmuls.
    /// A non-fixed-point `x` is a build error; so is `f > 54` (the `Fixed(f+8)` step).
    pub fn exp_neg(&mut self, x: Value) -> Value {
        let f = match self.check_fixed("exp_neg", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let inv256 = self.constant(Fixed::with_frac_bits(8), Shape::Scalar, vec![1]);
        let scaled = self.mul(x, inv256); // Fixed(f+8), exactly x/256
        // 1 + 2^-(f+1) in Fixed(f+8): adding half an ulp of Fixed(f) makes the floor a rounding.
        let one_half = 1u64
            .checked_shl(f + 8)
            .map_or(0, |one| one.wrapping_add(1 << 7));
        let one = self.constant(Fixed::with_frac_bits(f + 8), Shape::Scalar, vec![one_half]);
        let y = self.add(scaled, one);
        let mut y = self.rescale(y, 8);
        for _ in 0..EXP_NEG_SQUARINGS {
            y = self.fixmul(y, y);
        }
        y
    }

    /// Checks that `x` is fixed point with at most [`NORMALISE_MAX_FRAC_BITS`] fractional
    /// bits (the MSB normalisation's limit); records the error otherwise.
    pub(super) fn check_normalisable(
        &mut self,
        name: &'static str,
        x: Value,
    ) -> Result<u32, Value> {
        let f = self.check_fixed(name, x)?;
        if f > NORMALISE_MAX_FRAC_BITS {
            return Err(self.fail(|op| ValidationError::SizeLimit {
                op,
                name,
                what: "fractional bits",
                got: f as usize,
                max: NORMALISE_MAX_FRAC_BITS as usize,
            }));
        }
        Ok(f)
    }

    /// `a·b·2^-extra` for fixed-point `a`, `b` (`Fixed(f)`): the product, an exact public
    /// multiplication by 2^-extra (a `Fixed(extra)` word 1) and **one** rescale by
    /// `f + extra` → `Fixed(f)`. Halving inside the rescale keeps the element type and costs
    /// nothing beyond a plain [`Builder::fixmul`] (2 rounds with secret operands).
    pub(super) fn fixmul_shr(&mut self, a: Value, b: Value, extra: u32) -> Value {
        if extra == 0 {
            return self.fixmul(a, b);
        }
        let p = self.mul(a, b);
        let f = match (a.ty.elem, b.ty.elem) {
            (ElemType::Fixed(f), ElemType::Fixed(g)) => f.0.min(g.0),
            _ => 0,
        };
        let half = self.constant(Fixed::with_frac_bits(extra), Shape::Scalar, vec![1]);
        let p = self.mul(p, half);
        self.rescale(p, f + extra)
    }

    /// MSB normalisation of a positive `Fixed(f)` operand `x` (raw word `x_raw`), the shared
    /// first step of [`Builder::reciprocal`] and [`Builder::inv_sqrt`]. Returns the one-hot
    /// `e = msb_onehot(x, L)` (`Matrix(n, L)`, [`normalise_lanes`]`(f) = L = 2f + 8`) of
    /// `i = ⌊log2 x_raw⌋`, and `v = x·2^-(i+1-f)` ∈ [0.5, 1) in `Fixed(f)` (x's shape).
    ///
    /// The factor `c = 2^(f-1-i)` is the **local** product of `e` with a public column of
    /// `Fixed(K)` words `2^(L-1-i)` (K = L − f = f + 8, so every factor, down to 2^-K, is an
    /// exact word ≥ 1); `v = rescale(x·c, K)`, i.e. `⌊x_raw·2^(f-1-i)⌋` — exact for `i < f`,
    /// a floor (≤ 1 ulp, relative 2^(1-f)) above. The product is below 2^(f+K) = 2^(2f+8)
    /// (2^40 at f = 16), so a secret truncation fails with probability ≤ 2^(2f+9-64).
    /// Outside the domain (`x ≤ 0` or `x_raw ≥ 2^L`) `e` is all zeros, so `c = v = 0`.
    /// Cost (secret `x`): 14 rounds (`MsbOneHot`) + 2 (mul, rescale).
    pub(super) fn msb_normalise(&mut self, x: Value, f: u32) -> (Value, Value) {
        let lanes = normalise_lanes(f);
        let k = lanes - f;
        let e = self.msb_onehot(x, lanes);
        let words = (0..lanes).map(|i| 1u64 << (lanes - 1 - i)).collect();
        let table = self.constant(
            Fixed::with_frac_bits(k),
            Shape::Matrix(lanes as usize, 1),
            words,
        );
        let c = self.matmul(e, table);
        let c = self.reshape(c, x.ty.shape);
        let p = self.mul(x, c);
        let v = self.rescale(p, k);
        (e, v)
    }

    /// `y·g_i` elementwise, where `i` is the position given by the one-hot rows `e` of
    /// [`Builder::msb_normalise`] and `g_i = factor(i)` is public (0 for an all-zero row).
    ///
    /// The table is split so that no product exceeds the truncation budget: factors ≥ 1 go to
    /// a column of `hi` words (`Ring` when they are integers — exact, no rescale — or
    /// `Fixed(h)`, then rescaled by `h`), factors < 1 to a column of `Fixed(K)` words
    /// (K = f + 8, rescaled by K). Both are local matmuls; the two products with `y` and their
    /// rescales run in parallel (2 rounds for a secret `y`), then are added.
    pub(super) fn scale_by_msb(
        &mut self,
        y: Value,
        e: Value,
        f: u32,
        hi: ElemType,
        factor: impl Fn(u32) -> f64,
    ) -> Value {
        let lanes = normalise_lanes(f);
        let k = lanes - f;
        let column = Shape::Matrix(lanes as usize, 1);
        let g: Vec<f64> = (0..lanes).map(factor).collect();
        let hi_vals: Vec<f64> = g.iter().map(|&g| if g >= 1.0 { g } else { 0.0 }).collect();
        let lo_vals: Vec<f64> = g.iter().map(|&g| if g < 1.0 { g } else { 0.0 }).collect();
        let hi_table = match hi {
            ElemType::Fixed(h) => self.const_fixed_shaped(&hi_vals, Fixed(h), column),
            _ => {
                // Integer factors (powers of two): exact ring words.
                let words = hi_vals.iter().map(|&g| g as u64).collect();
                self.constant(ElemType::Ring, column, words)
            }
        };
        let lo_table = self.const_fixed_shaped(&lo_vals, Fixed::with_frac_bits(k), column);
        let a = self.matmul(e, hi_table);
        let a = self.reshape(a, y.ty.shape);
        let b = self.matmul(e, lo_table);
        let b = self.reshape(b, y.ty.shape);
        let ya = self.mul(y, a);
        let ya = match hi {
            ElemType::Fixed(h) => self.rescale(ya, h.0),
            _ => ya,
        };
        let yb = self.mul(y, b);
        let yb = self.rescale(yb, k);
        self.add(ya, yb)
    }

    /// Goldschmidt's iteration for `1/v` with `v = d·2^-shift` ∈ [0.5, 1] (`d` in `Fixed(f)`,
    /// `shift` ∈ {0, 1}), returning `w·2^-shift ≈ 1/d` in `Fixed(f)`.
    ///
    /// `w0 = 2.9142 − 2v` (free: a public constant minus a ring multiple of `d`), so
    /// `e0 = 1 − v·w0` has |e0| ≤ 0.0858 on [0.5, 1]; then [`RECIPROCAL_ITERATIONS`] times
    /// `w ← w·(1 + e)`, `e ← e²` (independent products, same rounds), so `1 − v·w = e0^(2^k)`.
    /// The `2^-shift` is folded into the rescales of `v·w0` and of the last `w` product.
    /// Cost (secret `d`): 2 + 2·[`RECIPROCAL_ITERATIONS`] rounds.
    pub(super) fn goldschmidt(&mut self, d: Value, f: u32, shift: u32) -> Value {
        let t = Fixed::with_frac_bits(f);
        let c = self.const_fixed(2.9142, t);
        // 2v = d·2^(1-shift): ring multiple 2 or 1.
        let two_v = if shift == 0 {
            let two = self.const_ring(2);
            self.mul(d, two)
        } else {
            d
        };
        let mut w = self.sub(c, two_v);
        let vw = self.fixmul_shr(d, w, shift);
        let one = self.const_fixed(1.0, t);
        let mut e = self.sub(one, vw);
        for it in 0..RECIPROCAL_ITERATIONS {
            let r = self.add(one, e);
            if it + 1 == RECIPROCAL_ITERATIONS {
                w = self.fixmul_shr(w, r, shift);
            } else {
                w = self.fixmul(w, r);
                e = self.fixmul(e, e);
            }
        }
        w
    }

    /// 1/x elementwise for a positive fixed-point `x` (`Fixed(f)`, any shape, secret or
    /// public) → same type.
    ///
    /// Lowering (no new op): **Goldschmidt after MSB normalisation** (Goldschmidt 1964; as in
    /// Catrina & Saxena, FC 2010, and ABY3 §5.2). With `i = ⌊log2 x_raw⌋` from
    /// [`Builder::msb_onehot`] (L = [`normalise_lanes`]`(f)` = 2f + 8 lanes), `v =
    /// x·2^(f-1-i)` ∈ [0.5, 1) (a local one-hot matmul with public power-of-two weights, one
    /// mul and one rescale); `w0 = 2.9142 − 2v`, `e = 1 − v·w0`, then
    /// [`RECIPROCAL_ITERATIONS`] = 3 iterations `w ← w·(1 + e)`, `e ← e²` (|e| ≤ 0.0858 →
    /// 7.4·10^-3 → 5.4·10^-5 → 3·10^-9, below the `Fixed(16)` floor: 2 measure
    /// 5.6·10^-5 for x ≤ 1 against 4.5·10^-5 for 3); result `w·2^(f-1-i)`, the same one-hot
    /// times public weights, split into ring words (factors ≥ 1) and `Fixed(f+8)` words
    /// (factors < 1) so every product stays below 2^(2f+8) (2^40 at f = 16: a secret truncation fails with probability ≤ 2^-23).
    ///
    /// **Domain**: x ∈ [2^-f, 2^(f+8)) real (`x_raw` ∈ [1, 2^L)), i.e. [2^-16, 2^24) at
    /// f = 16. Outside it — x ≤ 0 or x ≥ 2^(f+8) — the result is exactly **0** (the one-hot
    /// row is empty). For x above 2^8 at f = 16 the true 1/x is below 2^-8 (256 ulps), so
    /// the output resolution 2^-16 dominates: there the error is bounded absolutely.
    ///
    /// **Error** (plaintext evaluator, f = 16, 67 506 points: every raw word in
    /// [2^-16, 2^-12), 64 log-spaced points per octave over [2^-16, 2^24) and every 1/256 over
    /// [1, 256]): max relative error 4.50·10^-5 for x ≤ 1, 3.92·10^-3 for x ≤ 2^8 (one ulp of
    /// 1/256), max absolute error 1.53·10^-5 (one ulp) for x ≥ 2^8; overall
    /// |result − 1/x| ≤ 10^-4·(1/x) + 1.00 ulp, asserted as ≤ [`RECIPROCAL_MAX_REL_ERROR`]
    /// `·(1/x) +` [`RECIPROCAL_MAX_ABS_ERROR`] (10^-4 relative + 2 ulps). Under MPC every secret
    /// rescale may add one ulp (Goldschmidt does not self-correct).
    ///
    /// **Cost** (secret `x`, [`crate::cost::program_cost`]): 14 (`MsbOneHot`) + 2 (`v`) + 2
    /// (`e0`) + 2·3 (iterations) + 2 (scale back) = **26 rounds**. A non-fixed-point `x`, or
    /// `f >` [`NORMALISE_MAX_FRAC_BITS`], is a build error.
    pub fn reciprocal(&mut self, x: Value) -> Value {
        let f = match self.check_normalisable("reciprocal", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let (e, v) = self.msb_normalise(x, f);
        let w = self.goldschmidt(v, f, 0);
        let f = f as i32;
        self.scale_by_msb(w, e, f as u32, ElemType::Ring, |i| {
            2f64.powi(f - 1 - i as i32)
        })
    }

    /// a / b elementwise: [`Builder::fixmul`]`(a, `[`Builder::reciprocal`]`(b))`. `a` and
    /// `b` are fixed point (secret or public, shapes as for [`Builder::mul`]); the result is
    /// `Fixed(max(f_a, f_b))`.
    ///
    /// **Domain**: `b` as for [`Builder::reciprocal`] (b ∈ [2^-16, 2^24) at f = 16; b ≤ 0 or
    /// larger gives 0). The product needs |a| · |1/b| · 2^(f_a + f_b) well below 2^63 (see
    /// the [`fixed`](crate::fixed) error budget): at f = 16 keep |a/b| ≲ 2^14 for a
    /// truncation failure rate ≤ 2^-17. Error: |a| times the reciprocal's error plus one ulp.
    ///
    /// **Cost** (secret `a`, `b`): 26 + 2 = **28 rounds**. Non-fixed-point operands are a
    /// build error.
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        if let Err(placeholder) = self.check_fixed("div", a) {
            return placeholder;
        }
        if let Err(placeholder) = self.check_normalisable("div", b) {
            return placeholder;
        }
        let r = self.reciprocal(b);
        self.fixmul(a, r)
    }

    /// 1/√x elementwise for a positive fixed-point `x` (`Fixed(f)`, any shape, secret or
    /// public) → same type.
    ///
    /// Lowering (no new op): the MSB normalisation of [`Builder::reciprocal`] gives `v =
    /// x·2^(f-1-i)` ∈ [0.5, 1); the fitted line `y0 = 1.7877 − 0.81·v` (relative error ≤ 2.23%
    /// on [0.5, 1]; `0.81·v` comes from a second public column multiplied in the same round
    /// as `v`) and [`INV_SQRT_ITERATIONS`] = 2 Newton steps `y ← y·(3 − v·y²)/2`
    /// (2.2·10^-2 → 7.4·10^-4 → 8·10^-7), each computed as `v·y` and `y²` in parallel, then
    /// `(3y·2^f − (v·y)·y²)·2^-1` rescaled once (4 rounds per step); result `y·g_i` with
    /// `g_i = 2^((f-1-i)/2)`, public weights that carry the √2 of odd exponents (`Fixed(f)`
    /// words for g ≥ 1, `Fixed(f+8)` words below 1, relative rounding ≤ 2^-13 at the smallest
    /// g). Products stay below 2^41 at f = 16.
    ///
    /// **Domain**: x ∈ [2^-f, 2^(f+8)) real, i.e. [2^-16, 2^24) at f = 16; outside it
    /// (x ≤ 0 or too large) the result is **0**. 1/√x ranges over (2^-12, 2^8]; for x above
    /// 2^8 the result is below 1/16 (4096 ulps) and resolution dominates, so the error is
    /// bounded absolutely there.
    ///
    /// **Error** (plaintext evaluator, f = 16, same 67 506 points as [`Builder::reciprocal`]):
    /// max relative error 1.62·10^-5 for x ≤ 1, 2.44·10^-4 for x ≤ 2^8 (one ulp of 1/16), max
    /// absolute error 1.55·10^-5 for x ≥ 2^8; overall |result − 1/√x| ≤ 10^-4·(1/√x) +
    /// 1.01 ulps, asserted as ≤ [`INV_SQRT_MAX_REL_ERROR`]`·(1/√x) +`
    /// [`INV_SQRT_MAX_ABS_ERROR`] (10^-4 relative + 2 ulps). Newton self-corrects, so under MPC
    /// the truncation ulps of the iterations are damped; those of the normalisation and final
    /// scaling remain.
    ///
    /// **Cost** (secret `x`): 14 + 2 + 4·2 + 2 = **26 rounds**. A non-fixed-point `x`, or
    /// `f >` [`NORMALISE_MAX_FRAC_BITS`], is a build error.
    pub fn inv_sqrt(&mut self, x: Value) -> Value {
        let f = match self.check_normalisable("inv_sqrt", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let t = Fixed::with_frac_bits(f);
        let (e, v) = self.msb_normalise(x, f);
        // 0.81·v in the same round as v: a second column 0.81·2^(f-1-i) at Fixed(K).
        let lanes = normalise_lanes(f);
        let k = lanes - f;
        let slope: Vec<f64> = (0..lanes)
            .map(|i| INV_SQRT_SLOPE * 2f64.powi(f as i32 - 1 - i as i32))
            .collect();
        let slope = self.const_fixed_shaped(
            &slope,
            Fixed::with_frac_bits(k),
            Shape::Matrix(lanes as usize, 1),
        );
        let c = self.matmul(e, slope);
        let c = self.reshape(c, x.ty.shape);
        let bv = self.mul(x, c);
        let bv = self.rescale(bv, k);
        let a = self.const_fixed(INV_SQRT_INTERCEPT, t);
        let mut y = self.sub(a, bv);
        let three = self.const_ring(3);
        let one = self.constant(Fixed::with_frac_bits(f), Shape::Scalar, vec![1 << f]);
        let half = self.constant(Fixed::with_frac_bits(1), Shape::Scalar, vec![1]);
        for _ in 0..INV_SQRT_ITERATIONS {
            let vy = self.fixmul(v, y);
            let y2 = self.fixmul(y, y);
            let z = self.mul(vy, y2); // Fixed(2f)
            let y3 = self.mul(y, three);
            let y3 = self.mul(y3, one); // Fixed(2f), exact 3y
            let num = self.sub(y3, z);
            let num = self.mul(num, half); // Fixed(2f+1), exact halving
            y = self.rescale(num, f + 1);
        }
        let hi = ElemType::Fixed(FracBits(f));
        let f = f as i32;
        self.scale_by_msb(y, e, f as u32, hi, |i| {
            2f64.powf((f - 1 - i as i32) as f64 / 2.0)
        })
    }

    /// The logistic function σ(x) = 1/(1 + e^-x) elementwise for a fixed-point `x`
    /// (`Fixed(f)`, any shape, secret or public) → same type.
    ///
    /// Lowering (no new op): `n = ltz(x)`, `m = select(n, x, −x) = −|x|`, `d = 1 +`
    /// [`Builder::exp_neg`]`(m)` ∈ [1, 2], `s = 1/d` by the Goldschmidt iteration of
    /// [`Builder::reciprocal`] — the normalisation is known (`v = d/2` ∈ [0.5, 1], folded into
    /// the rescales), so no `MsbOneHot` is needed — and `σ = select(n, 1 − s, s)`.
    ///
    /// **Range**: x ∈ [−16, 16] for the bound below. Beyond it σ saturates: for
    /// 16 < |x| ≤ 256 `exp_neg(−|x|)` stays ≈ 0 (see [`Builder::exp_neg`]) and the result is
    /// within one ulp of 0 or 1 (measured max |result − σ(x)| = 1.53·10^-5 every 1/16 over
    /// 16 ≤ |x| ≤ 256); beyond ±256 `exp_neg` is garbage and so is the result.
    ///
    /// **Error** (plaintext evaluator, f = 16, every 1/256 over [−16, 16]): measured max
    /// |result − σ(x)| = 1.22·10^-3 (near |x| = 1.73), asserted ≤ [`SIGMOID_MAX_ABS_ERROR`]
    /// = 2·10^-3. It is inherited from `exp_neg` (≤ 2.4·10^-3, passed on with the factor
    /// 1/(1 + e)² ∈ [1/4, 1]); the Goldschmidt step adds ≈ 10^-5.
    ///
    /// **Cost** (secret `x`): 8 (`ltz`) + 1 (select) + 17 (`exp_neg`) + 2 + 2·3
    /// (Goldschmidt) + 1 (select) = **35 rounds**. A non-fixed-point `x` is a build error.
    pub fn sigmoid(&mut self, x: Value) -> Value {
        let f = match self.check_fixed("sigmoid", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let t = Fixed::with_frac_bits(f);
        let n = self.ltz(x);
        let nx = self.neg(x);
        let m = self.select(n, x, nx);
        let ez = self.exp_neg(m);
        let one = self.const_fixed(1.0, t);
        let d = self.add(one, ez);
        let s = self.goldschmidt(d, f, 1);
        let s1 = self.sub(one, s);
        self.select(n, s1, s)
    }

    /// Row-wise softmax of a fixed-point `matrix[r×c]` (secret or public) → same type:
    /// `out[i][j] = e^(x[i][j] − m_i) / Σ_k e^(x[i][k] − m_i)` with `m_i` the row maximum.
    ///
    /// Lowering (no new op): per row `i`, [`Builder::slice`] → [`Builder::reshape`] to
    /// `vector[c]` → [`Builder::max_all`] (the `r` tournaments are independent and run in the
    /// same rounds); the maxima are concatenated into `matrix[r×1]` and broadcast across the
    /// columns by a local [`Builder::matmul`] with a public ring `matrix[1×c]` of ones;
    /// `d = x − m` ∈ [−spread, 0]; `e = `[`Builder::exp_neg`]`(d)`; `s = `[`Builder::sum_rows`]
    /// `(e)` ∈ [1, c] (the maximum contributes e^0 = 1); `inv = `[`Builder::reciprocal`]`(s)`,
    /// broadcast the same way; `out = fixmul(e, inv)`.
    ///
    /// **Range**: `c ≤ 256` (so `s` ∈ [1, 256], well within the reciprocal's domain). Entries
    /// more than 16 below their row maximum underflow to ≈ 0 (their true weight is < e^-16, fine for
    /// softmax). A row spread (max − min) above 256 is **not** supported: `exp_neg` is garbage
    /// below −256 (no clamping).
    ///
    /// **Error** (plaintext evaluator, f = 16, random rows with values in [−8, 8]): measured
    /// max |out − softmax| = 2.09·10^-3 (shapes up to 16×100 and 4×256), asserted ≤
    /// [`SOFTMAX_MAX_ABS_ERROR`] = 3·10^-3. Under MPC the truncations add up to one ulp each
    /// (see [`Builder::exp_neg`]).
    ///
    /// **Cost** (secret `x`, `L = ⌈log2 c⌉`): `8·L` (max_all) + 17 (exp_neg) + 26
    /// (reciprocal) + 2 (final fixmul) rounds, independent of `r` (101 for c = 128);
    /// [`crate::cost::program_cost`] gives the exact figure for a program.
    ///
    /// A non-matrix or non-fixed-point `x`, or `c > 256`, is a build error.
    pub fn softmax_rows(&mut self, x: Value) -> Value {
        let Shape::Matrix(rows, cols) = x.ty.shape else {
            let shape = x.ty.shape;
            return self.fail(|op| ValidationError::NotMatrix {
                op,
                name: "softmax_rows",
                shape,
            });
        };
        if let Err(placeholder) = self.check_fixed("softmax_rows", x) {
            return placeholder;
        }
        if cols > SOFTMAX_MAX_COLS {
            return self.fail(|op| ValidationError::SizeLimit {
                op,
                name: "softmax_rows",
                what: "column count",
                got: cols,
                max: SOFTMAX_MAX_COLS,
            });
        }
        let ones = self.constant(ElemType::Ring, Shape::Matrix(1, cols), vec![1; cols]);
        let maxes: Vec<Value> = (0..rows)
            .map(|i| {
                let row = self.slice(x, i, i + 1);
                let row = self.reshape(row, Shape::Vector(cols));
                let m = self.max_all(row);
                self.reshape(m, Shape::Vector(1))
            })
            .collect();
        let m = self.concat(&maxes);
        let m = self.reshape(m, Shape::Matrix(rows, 1));
        let m = self.matmul(m, ones);
        let d = self.sub(x, m);
        let e = self.exp_neg(d);
        let s = self.sum_rows(e);
        let inv = self.reciprocal(s);
        let inv = self.reshape(inv, Shape::Matrix(rows, 1));
        let inv = self.matmul(inv, ones);
        self.fixmul(e, inv)
    }
}
