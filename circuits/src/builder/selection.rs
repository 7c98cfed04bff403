//! Oblivious indexing and selection: one-hot vectors, gathering a row, the best k (a
//! comparator network, [`Op::BestK`], or k argmax rounds that also give the indices) and
//! one-hot rows from low bits.

use super::{Builder, Value};
use crate::error::ValidationError;
use crate::program::Op;
use crate::selection::best_k_sentinel;
use crate::types::{ElemType, Shape};
use crate::validate::MAX_ELEMENTS;

impl Builder {
    /// Checks that `index` is a ring scalar (a placeholder passes); records the error otherwise.
    pub(super) fn check_index(&mut self, name: &'static str, index: Value) -> Result<(), Value> {
        let ty = index.ty;
        if ty.elem == ElemType::Ring && ty.shape == Shape::Scalar {
            Ok(())
        } else {
            Err(self.fail(|op| ValidationError::IndexNotRingScalar { op, name, ty }))
        }
    }

    /// Public ring constant `[0, 1, …, n−1]` (an oversized `n` gets no words, so the constant
    /// op itself records `ShapeTooLarge` instead of allocating).
    pub(super) fn iota(&mut self, n: usize) -> Value {
        let values = if n <= MAX_ELEMENTS {
            (0..n as u64).collect()
        } else {
            vec![]
        };
        self.constant(ElemType::Ring, Shape::Vector(n), values)
    }

    /// One-hot vector: `vector[n]` of ring 0/1 words with a 1 at position `index` (a ring
    /// scalar, secret or public) and 0 elsewhere; an index outside `0..n` gives all zeros.
    ///
    /// Lowering (no new op): a public constant `[0, 1, …, n−1]` and [`Builder::eq`] of `index`
    /// (broadcast) against it. A secret index gives a secret result, so no party learns which
    /// position is set. Cost with a secret index: one batched comparison of `2n` elements,
    /// [`LTZ_ROUNDS`](crate::cost::LTZ_ROUNDS) = 8 rounds and [`ltz_bytes`](crate::cost::ltz_bytes)`(2n)` bytes sent;
    /// free with a public index. An index that is not a ring scalar is a build error.
    pub fn onehot(&mut self, index: Value, n: usize) -> Value {
        if let Err(placeholder) = self.check_index("onehot", index) {
            return placeholder;
        }
        let iota = self.iota(n);
        self.eq(index, iota)
    }

    /// Row `index` of the matrix `m` (`matrix[rows×cols]`, ring or fixed point, secret or
    /// public) → `vector[cols]` of `m`'s element type; an index outside `0..rows` gives zeros.
    ///
    /// Lowering (no new op): [`Builder::onehot`]`(index, rows)` reshaped to `matrix[1×rows]`,
    /// [`Builder::matmul`] with `m` (ring·`Fixed(f)` → `Fixed(f)`, no rescale since the one-hot
    /// words are the integers 0/1), reshaped to `vector[cols]`. Oblivious: a secret index is
    /// never opened. Cost with a secret index and a secret `m`: 8 rounds (the `eq` of
    /// `2·rows` elements, `ltz_bytes(2·rows)` bytes) + 1 round (the matmul, `8·cols` bytes
    /// sent per party) = 9 rounds; with a public `m` the matmul is local (8 rounds); with a
    /// public index the one-hot is public and nothing is communicated. An `m` that is not a
    /// matrix, or an index that is not a ring scalar, is a build error.
    pub fn gather_row(&mut self, index: Value, m: Value) -> Value {
        let Shape::Matrix(rows, cols) = m.ty.shape else {
            let shape = m.ty.shape;
            return self.fail(|op| ValidationError::NotMatrix {
                op,
                name: "gather_row",
                shape,
            });
        };
        if let Err(placeholder) = self.check_index("gather_row", index) {
            return placeholder;
        }
        let h = self.onehot(index, rows);
        let h = self.reshape(h, Shape::Matrix(1, rows));
        let row = self.matmul(h, m);
        self.reshape(row, Shape::Vector(cols))
    }

    /// The best `k` with their indices: the `k` largest elements of a non-empty `vector[n]`
    /// (ring or fixed point, secret or public) in descending order, and their indices:
    /// `(vector[k]` of `x`'s element type, `vector[k]` ring`)`. For the values alone (largest
    /// or smallest) [`Builder::best_k`] is the comparator network, in far fewer rounds. Equal elements come out lowest index first, i.e. the order is
    /// (value descending, index ascending). For `k = n` this is a full descending sort (with
    /// the permutation), by a fully oblivious if slow method.
    ///
    /// Lowering (no new op; the ops emitted depend only on `n` and `k`), `k` rounds of
    /// selection on a working copy `w` (initially `x`):
    /// `i = argmax(w)`, `h = onehot(i, n)`, value `dot(h, w)` (ring·`Fixed(f)` → `Fixed(f)`,
    /// exact), then, except after the last round, the chosen element is masked with
    /// `w = select(h, S, w) = w + h·(S − w)` where `S` = [`best_k_sentinel`]`(true)` (−2^62 as a
    /// word of `x`'s element type). Values and indices are reshaped to `vector[1]` and concatenated.
    ///
    /// **Range**: every element must lie in (−2^62, 2^62) as a signed word: strictly above the
    /// sentinel (an element equal to it could tie with a masked one and lose to it), and below
    /// 2^62 so that every comparison against the sentinel stays within the range of
    /// [`Op::Lt`] (|a − b| < 2^63). Outside it the result follows the wrapping semantics and is
    /// not the top k.
    ///
    /// **Cost** (secret `x`, `L = ⌈log2 n⌉` tournament levels): each round is an `ArgMax`
    /// (`8·L` rounds), the one-hot `eq` (8) and then the dot product and the masking select,
    /// which are independent and run in the same round (1). Rounds do not overlap (each needs
    /// the previous `w`), so the ASAP depth is `k·(8·L + 9)`. Bytes sent per party:
    /// `k·(tournament_bytes(n, 2) + ltz_bytes(2n) + 8) + (k−1)·8n` (see [`crate::cost`]).
    /// Free for a public `x`.
    ///
    /// `x` not a non-empty vector, a bit vector, `k = 0` or `k > n` is a build error.
    pub fn best_k_with_indices(&mut self, x: Value, k: usize) -> (Value, Value) {
        let n = match x.ty.shape {
            Shape::Vector(n) if n > 0 => n,
            shape => {
                let v = self.fail(|op| ValidationError::NotNonEmptyVector {
                    op,
                    name: "best_k_with_indices",
                    shape,
                });
                return (v, v);
            }
        };
        if n > MAX_ELEMENTS {
            let v = self.fail(|op| ValidationError::ShapeTooLarge {
                op,
                name: "best_k_with_indices",
                shape: Shape::Vector(n),
            });
            return (v, v);
        }
        if x.ty.elem == ElemType::Bit {
            let v = self.fail(|op| ValidationError::BitUnsupported {
                op,
                name: "best_k_with_indices",
            });
            return (v, v);
        }
        if k == 0 || k > n {
            let v = self.fail(|op| ValidationError::CountRange {
                op,
                name: "best_k_with_indices",
                k,
                len: n,
            });
            return (v, v);
        }
        let iota = self.iota(n);
        let sentinel =
            (k > 1).then(|| self.constant(x.ty.elem, Shape::Scalar, vec![best_k_sentinel(true)]));
        let mut w = x;
        let (mut values, mut indices) = (vec![], vec![]);
        for round in 0..k {
            let i = self.argmax(w);
            let h = self.eq(i, iota);
            let v = self.dot(h, w);
            values.push(self.reshape(v, Shape::Vector(1)));
            indices.push(self.reshape(i, Shape::Vector(1)));
            if let Some(s) = sentinel
                && round + 1 < k
            {
                w = self.select(h, s, w);
            }
        }
        (self.concat(&values), self.concat(&indices))
    }

    /// The `k` largest (`largest`) or smallest elements of a non-empty vector, best first, by
    /// the oblivious comparator network of [`crate::selection`] ([`Op::BestK`]). Values only
    /// (for the indices too, largest first, see [`Builder::best_k_with_indices`]);
    /// exact for elements in [−2^62, 2^62). Cost with a secret operand: `11·layers` rounds,
    /// about `5.5·n` comparisons for k = 8 (see [`crate::cost`]).
    pub fn best_k(&mut self, a: Value, k: usize, largest: bool) -> Value {
        self.best_k_ranked(a, k, largest, None)
    }

    /// [`Builder::best_k`] with the plan chosen for `link` by the cost model
    /// ([`crate::cost::best_k_groups_for`]): the comparator network (fewest bytes, the same op
    /// as [`Builder::best_k`]) unless rank selection in all-pairs groups is estimated faster
    /// on this link — as on a WAN, where it takes RAG's 10,000 keys to the best 8 in 48
    /// rounds instead of 204. Same result either way. A non-vector or out-of-range `k` is
    /// left to the op's validation (the network op is emitted).
    pub fn best_k_for_link(
        &mut self,
        a: Value,
        k: usize,
        largest: bool,
        link: &crate::cost::LinkProfile,
    ) -> Value {
        let groups = match (a.ty.shape, a.ty.vis) {
            (Shape::Vector(n), crate::types::Visibility::Secret) if (1..=n).contains(&k) => {
                crate::cost::best_k_groups_for(n, k, link)
            }
            _ => None,
        };
        self.best_k_ranked(a, k, largest, groups)
    }

    /// [`Builder::best_k`] with an explicit plan: `None` is the comparator network, `Some`
    /// the group size of each rank-selection stage (checked by validation:
    /// [`crate::selection::check_rank_groups`]). Cost with a secret operand:
    /// [`crate::cost::best_k_cost`].
    pub fn best_k_ranked(
        &mut self,
        a: Value,
        k: usize,
        largest: bool,
        groups: Option<Vec<usize>>,
    ) -> Value {
        self.push(Op::BestK {
            a: a.id,
            k,
            largest,
            groups,
        })
    }

    /// One-hot rows of `a mod 2^bits` over `n` columns ([`Op::OneHotLow`]): `matrix[m×n]` of
    /// ring 0/1 words. Cost with a secret operand: a decomposition of the low `bits` bits of the
    /// m elements (`2 + ⌈log2(bits − 1)⌉` rounds, at least 3) and `⌈log2 bits⌉` multiplication rounds of about `2·n` products per row.
    pub fn onehot_low(&mut self, a: Value, bits: u32, n: usize) -> Value {
        self.onehot_bits(a, 0, bits, n)
    }

    /// One-hot rows of bits `skip..skip + bits` of `a`, i.e. of `⌊a / 2^skip⌋ mod 2^bits`, over
    /// `n` columns ([`Op::OneHotLow`] with `skip`): `matrix[m×n]` of ring 0/1 words. Cost with
    /// a secret operand: [`crate::cost::onehot_low_rounds`]`(skip, bits)` rounds (the adder
    /// must reach bit `skip + bits`) and [`crate::cost::onehot_low_bytes`].
    pub fn onehot_bits(&mut self, a: Value, skip: u32, bits: u32, n: usize) -> Value {
        self.push(Op::OneHotLow {
            a: a.id,
            bits,
            n,
            skip,
        })
    }
}
