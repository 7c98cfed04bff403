//! Geometry of 2-D convolutions and pooling, and the patch extraction (im2col) behind
//! [`Op::Im2Col`](crate::Op::Im2Col).
//!
//! A batch of images is a `Matrix(batch, height·width·channels)`, one image per row. Within a
//! row the elements are in channels-last order (`(y, x, c)`, "NHWC") unless the geometry says
//! `channels_first` (`(c, y, x)`, "NCHW", the order of a flattened ONNX tensor). Patches always
//! come out channels-last: row `(b, oy, ox)` of the result holds, in column order `(i, j, c)`,
//! the input element at `(b, oy·stride + i − pad, ox·stride + j − pad, c)`, or 0 where that
//! position lies in the zero padding. A convolution is then one matrix product of the patches
//! with a `(kernel_h·kernel_w·channels) × out_channels` weight matrix, and its output rows are
//! the channels-last pixels of the output images.
//!
//! Patch extraction only copies and zero-fills elements at public positions, so on replicated
//! shares each party applies it to its own components: no communication, and 0 is a valid
//! sharing of zero.

use serde::{Deserialize, Serialize};

/// Input size, window and stride of a 2-D convolution or pooling layer (square padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2dGeometry {
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Step between windows, both axes (≥ 1).
    pub stride: usize,
    /// Zero rows/columns added on every side.
    pub pad: usize,
    /// Input rows are `(c, y, x)` ordered (NCHW) instead of `(y, x, c)` (NHWC).
    #[serde(default)]
    pub channels_first: bool,
}

impl Conv2dGeometry {
    /// A channels-last geometry with stride 1 and no padding.
    pub fn new(height: usize, width: usize, channels: usize, kernel: usize) -> Self {
        Conv2dGeometry {
            height,
            width,
            channels,
            kernel_h: kernel,
            kernel_w: kernel,
            stride: 1,
            pad: 0,
            channels_first: false,
        }
    }

    /// Elements of one input image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Elements of one patch (`kernel_h · kernel_w · channels`).
    pub fn patch_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.channels
    }

    /// Output height and width, or why the geometry is unusable.
    pub fn output_size(&self) -> Result<(usize, usize), String> {
        if self.stride == 0 {
            return Err("stride must be at least 1".into());
        }
        if self.kernel_h == 0 || self.kernel_w == 0 || self.channels == 0 {
            return Err("kernel and channels must be at least 1".into());
        }
        if self.pad >= self.kernel_h.max(self.kernel_w) {
            return Err(format!(
                "padding {} must be smaller than the kernel {}×{}",
                self.pad, self.kernel_h, self.kernel_w
            ));
        }
        let padded = |n: usize| n.checked_add(2 * self.pad);
        let (ph, pw) = match (padded(self.height), padded(self.width)) {
            (Some(h), Some(w)) if h >= self.kernel_h && w >= self.kernel_w => (h, w),
            _ => {
                return Err(format!(
                    "kernel {}×{} does not fit the {}×{} input with padding {}",
                    self.kernel_h, self.kernel_w, self.height, self.width, self.pad
                ));
            }
        };
        Ok((
            (ph - self.kernel_h) / self.stride + 1,
            (pw - self.kernel_w) / self.stride + 1,
        ))
    }

    /// Offset of input element `(y, x, c)` within one image row.
    fn offset(&self, y: usize, x: usize, c: usize) -> usize {
        if self.channels_first {
            (c * self.height + y) * self.width + x
        } else {
            (y * self.width + x) * self.channels + c
        }
    }
}

/// Patches of `batch` images (`words` is `batch × image_len` row-major, the geometry checked by
/// validation): `batch·oh·ow` rows of `patch_len` words, laid out as the module describes.
pub fn im2col(words: &[u64], batch: usize, g: &Conv2dGeometry) -> Vec<u64> {
    let (oh, ow) = g.output_size().expect("validated geometry");
    let image = g.image_len();
    let mut out = Vec::with_capacity(batch * oh * ow * g.patch_len());
    for b in 0..batch {
        let img = &words[b * image..(b + 1) * image];
        for oy in 0..oh {
            for ox in 0..ow {
                for i in 0..g.kernel_h {
                    // Position in the unpadded input; outside it is zero padding.
                    let y = (oy * g.stride + i)
                        .checked_sub(g.pad)
                        .filter(|&y| y < g.height);
                    for j in 0..g.kernel_w {
                        let x = (ox * g.stride + j)
                            .checked_sub(g.pad)
                            .filter(|&x| x < g.width);
                        match (y, x) {
                            (Some(y), Some(x)) if !g.channels_first => {
                                let at = g.offset(y, x, 0);
                                out.extend_from_slice(&img[at..at + g.channels]);
                            }
                            (Some(y), Some(x)) => {
                                out.extend((0..g.channels).map(|c| img[g.offset(y, x, c)]))
                            }
                            _ => out.extend(std::iter::repeat_n(0, g.channels)),
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition: the element of patch row (b, oy, ox), column (i, j, c).
    fn naive(words: &[u64], batch: usize, g: &Conv2dGeometry) -> Vec<u64> {
        let (oh, ow) = g.output_size().unwrap();
        let mut out = Vec::new();
        for b in 0..batch {
            for oy in 0..oh {
                for ox in 0..ow {
                    for i in 0..g.kernel_h {
                        for j in 0..g.kernel_w {
                            for c in 0..g.channels {
                                let y = (oy * g.stride + i) as i64 - g.pad as i64;
                                let x = (ox * g.stride + j) as i64 - g.pad as i64;
                                let inside = (0..g.height as i64).contains(&y)
                                    && (0..g.width as i64).contains(&x);
                                out.push(if inside {
                                    let (y, x) = (y as usize, x as usize);
                                    let idx = if g.channels_first {
                                        c * g.height * g.width + y * g.width + x
                                    } else {
                                        (y * g.width + x) * g.channels + c
                                    };
                                    words[b * g.image_len() + idx]
                                } else {
                                    0
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn im2col_matches_the_definition() {
        for (h, w, c, kh, kw, stride, pad) in [
            (5, 5, 1, 3, 3, 1, 0),
            (6, 4, 3, 3, 2, 2, 1),
            (4, 4, 2, 2, 2, 2, 0),
            (7, 5, 2, 3, 3, 2, 2),
            (3, 3, 4, 3, 3, 1, 1),
            (1, 1, 1, 1, 1, 1, 0),
        ] {
            for channels_first in [false, true] {
                let g = Conv2dGeometry {
                    height: h,
                    width: w,
                    channels: c,
                    kernel_h: kh,
                    kernel_w: kw,
                    stride,
                    pad,
                    channels_first,
                };
                let batch = 2;
                let words: Vec<u64> = (0..(batch * g.image_len()) as u64)
                    .map(|v| v * 7 + 1)
                    .collect();
                let got = im2col(&words, batch, &g);
                let (oh, ow) = g.output_size().unwrap();
                assert_eq!(got.len(), batch * oh * ow * g.patch_len(), "{g:?}");
                assert_eq!(got, naive(&words, batch, &g), "{g:?}");
            }
        }
    }

    #[test]
    fn output_size_and_refusals() {
        let g = Conv2dGeometry::new(28, 28, 1, 5);
        assert_eq!(g.output_size(), Ok((24, 24)));
        let pooled = Conv2dGeometry {
            stride: 2,
            ..Conv2dGeometry::new(24, 24, 8, 2)
        };
        assert_eq!(pooled.output_size(), Ok((12, 12)));
        let same = Conv2dGeometry {
            pad: 1,
            ..Conv2dGeometry::new(8, 8, 3, 3)
        };
        assert_eq!(same.output_size(), Ok((8, 8)));
        let bad = |g: Conv2dGeometry| g.output_size().unwrap_err();
        assert!(bad(Conv2dGeometry { stride: 0, ..g }).contains("stride"));
        assert!(bad(Conv2dGeometry::new(2, 2, 1, 3)).contains("does not fit"));
        assert!(bad(Conv2dGeometry { pad: 5, ..g }).contains("padding"));
        assert!(bad(Conv2dGeometry::new(4, 4, 0, 3)).contains("channels"));
    }
}
