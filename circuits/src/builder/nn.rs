//! Neural-network layers: convolution (patches and one fused matrix product), max and
//! average pooling.

use super::{Builder, Value};
use crate::conv::Conv2dGeometry;
use crate::error::ValidationError;
use crate::program::Op;
use crate::types::{ElemType, Fixed, FracBits, Shape};
use crate::validate::MAX_ELEMENTS;

impl Builder {
    /// Patches of a batch of images (`x`: `Matrix(batch, h·w·c)`) for a convolution or a
    /// pooling layer: `Matrix(batch·oh·ow, kh·kw·c)` (see [`Op::Im2Col`] and [`crate::conv`]).
    pub fn im2col(&mut self, x: Value, geometry: Conv2dGeometry) -> Value {
        self.push(Op::Im2Col { a: x.id, geometry })
    }

    /// 2-D convolution of a batch of fixed-point images (`x`: `Matrix(batch, h·w·c)`, layout
    /// per `g`) with `weights` (`Matrix(kh·kw·c, out_channels)`, rows in patch order
    /// `(i, j, c)`) plus an optional `bias` (`vector[out_channels]` of the output's type):
    /// `Matrix(batch, oh·ow·out_channels)`, channels-last, at `x`'s fractional bits.
    ///
    /// Lowering: [`Builder::im2col`] (local), one [`Op::MatMulRescale`] of the patches with
    /// the weights (one round when both are secret: the product's reshare and the truncation
    /// share it; a local product and one truncation round with public weights), and the bias
    /// broadcast to every output pixel by a local product with a public column of ones.
    pub fn conv2d(
        &mut self,
        x: Value,
        weights: Value,
        bias: Option<Value>,
        g: Conv2dGeometry,
    ) -> Value {
        let patches = self.im2col(x, g);
        let y = match (x.ty.elem, weights.ty.elem) {
            (ElemType::Fixed(f), ElemType::Fixed(w)) if f.0.min(w.0) > 0 => {
                self.matmul_rescale(patches, weights, f.0.min(w.0))
            }
            _ => self.matmul(patches, weights),
        };
        let Shape::Matrix(pixels, out_channels) = y.ty.shape else {
            return y; // the product recorded the error
        };
        let y = match bias {
            None => y,
            Some(bias) => {
                let ones = self.constant(
                    ElemType::Ring,
                    Shape::Matrix(pixels, 1),
                    if pixels <= MAX_ELEMENTS {
                        vec![1; pixels]
                    } else {
                        vec![]
                    },
                );
                let row = self.reshape(bias, Shape::Matrix(1, out_channels));
                let per_pixel = self.matmul(ones, row);
                self.add(y, per_pixel)
            }
        };
        let batch = match x.ty.shape {
            Shape::Matrix(b, _) => b.max(1),
            _ => 1,
        };
        self.reshape(y, Shape::Matrix(batch, pixels / batch * out_channels))
    }

    /// The `kh·kw` window elements of every output pixel and channel, as `kh·kw` values of
    /// shape `Matrix(c, batch·oh·ow)` (window position `(i, j)` in row-major order).
    pub(super) fn pool_windows(&mut self, x: Value, g: Conv2dGeometry) -> Vec<Value> {
        let patches = self.im2col(x, g);
        let by_column = self.transpose(patches); // rows (i, j, c), columns the output pixels
        let c = g.channels;
        (0..g.kernel_h * g.kernel_w)
            .map(|k| self.slice(by_column, k * c, (k + 1) * c))
            .collect()
    }

    /// Back from `Matrix(c, batch·oh·ow)` to `Matrix(batch, oh·ow·c)` (channels-last).
    pub(super) fn pool_output(&mut self, pooled: Value, x: Value) -> Value {
        let (Shape::Matrix(c, pixels), Shape::Matrix(batch, _)) = (pooled.ty.shape, x.ty.shape)
        else {
            return pooled;
        };
        let t = self.transpose(pooled);
        self.reshape(t, Shape::Matrix(batch.max(1), pixels / batch.max(1) * c))
    }

    /// Max pooling of a batch of images (`x`: `Matrix(batch, h·w·c)`, layout per `g`; no
    /// padding): `Matrix(batch, oh·ow·c)`, channels-last, the largest element of every
    /// `kh × kw` window taken every `stride`.
    ///
    /// Lowering: the windows by [`Builder::im2col`] and a transpose (local), then a tournament
    /// of elementwise [`Op::Max`] over the `kh·kw` window positions: `⌈log2(kh·kw)⌉` levels of
    /// one batched comparison-and-select each. Padding is refused (a padded max would need
    /// −∞, not 0).
    pub fn max_pool2d(&mut self, x: Value, g: Conv2dGeometry) -> Value {
        if g.pad != 0 {
            return self.fail(|op| ValidationError::Im2Col {
                op,
                name: "max_pool2d",
                what: format!("max pooling takes no padding (got {})", g.pad),
            });
        }
        let mut level = self.pool_windows(x, g);
        if level.is_empty() {
            return self.const_ring(0); // an empty window: im2col recorded the error
        }
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                next.push(match pair {
                    [a, b] => self.max(*a, *b),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                });
            }
            level = next;
        }
        self.pool_output(level[0], x)
    }

    /// Average pooling of a batch of fixed-point images (`x` and `g` as for
    /// [`Builder::max_pool2d`]; zero padding counts in the average, as ONNX's
    /// `count_include_pad = 1`): `Matrix(batch, oh·ow·c)`, channels-last.
    ///
    /// Lowering: the window sums are local; the division is a product with the public
    /// constant `1/K` (`K = kh·kw`) and one truncation round. The constant carries
    /// `f + ⌈log2 K⌉` fractional bits, so its rounding adds at most half an ulp of the mean
    /// (at `f` bits it would be `K/2` ulps); the product then holds `2f + ⌈log2 K⌉` bits, as a
    /// linear layer's `2f` with a `K` times larger bound.
    pub fn avg_pool2d(&mut self, x: Value, g: Conv2dGeometry) -> Value {
        let ElemType::Fixed(f) = x.ty.elem else {
            let elem = x.ty.elem;
            return self.fail(|op| ValidationError::Im2Col {
                op,
                name: "avg_pool2d",
                what: format!("average pooling needs fixed-point images, got {elem}"),
            });
        };
        let windows = self.pool_windows(x, g);
        let Some((&first, rest)) = windows.split_first() else {
            return self.const_ring(0); // an empty window: im2col recorded the error
        };
        let mut sum = first;
        for w in rest {
            sum = self.add(sum, *w);
        }
        let k = windows.len();
        let bits = f.0 + k.next_power_of_two().trailing_zeros();
        let scale = self.const_fixed(1.0 / k as f64, Fixed(FracBits(bits)));
        let product = self.mul(sum, scale);
        let mean = self.rescale(product, bits);
        self.pool_output(mean, x)
    }
}
