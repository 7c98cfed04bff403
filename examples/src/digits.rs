//! The 8×8 handwritten digits data set (UCI, as bundled in scikit-learn; see
//! `assets/digits/LICENSE`) and the small MLP and CNN trained on it
//! (`tools/train_digits_mlp.py`, `tools/train_digits_cnn.py`), compiled into the example so it
//! runs with nothing to download.

/// The trained 64-32-10 classifier as an ONNX file (`pixels` → `logits`, `class`).
pub const MODEL_ONNX: &[u8] = include_bytes!("../assets/digits/digits_mlp.onnx");

/// The trained CNN (`pixels` [N, 1, 8, 8] → conv 3×3 × 8, ReLU, max pool 2×2, dense 128 → 10 →
/// `logits`, `class`) as an ONNX file; it reads the same 64 pixels per image as the MLP.
pub const CNN_ONNX: &[u8] = include_bytes!("../assets/digits/digits_cnn.onnx");

/// The data set: `split,label,p0..p63` per line.
const CSV: &str = include_str!("../assets/digits/digits.csv");

/// Pixels are 0..=16; the model expects `pixel / INPUT_SCALE` ∈ [0, 1].
pub const INPUT_SCALE: f64 = 16.0;

/// Pixels per image.
pub const FEATURES: usize = 64;

/// One labelled image.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Row in the CSV (0-based, header excluded).
    pub row: usize,
    /// The digit.
    pub label: usize,
    /// The 64 pixels scaled to [0, 1], as the model expects.
    pub pixels: Vec<f64>,
}

/// The fixed train/test split of the data set.
#[derive(Clone, Debug)]
pub struct Digits {
    /// 1,438 training images.
    pub train: Vec<Sample>,
    /// 359 test images (a stratified 20 %).
    pub test: Vec<Sample>,
}

/// Parses the bundled CSV.
pub fn load() -> Result<Digits, String> {
    let mut digits = Digits {
        train: Vec::new(),
        test: Vec::new(),
    };
    for (row, line) in CSV.lines().skip(1).enumerate() {
        let bad = |what: &str| format!("digits.csv line {}: {what}", row + 2);
        let mut fields = line.split(',');
        let split = fields.next().ok_or_else(|| bad("empty"))?;
        let label: usize = fields
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("bad label"))?;
        let pixels: Vec<f64> = fields
            .map(|p| p.parse::<f64>().map(|v| v / INPUT_SCALE))
            .collect::<Result<_, _>>()
            .map_err(|_| bad("bad pixel"))?;
        if pixels.len() != FEATURES || label > 9 {
            return Err(bad("expected a label 0-9 and 64 pixels"));
        }
        let sample = Sample { row, label, pixels };
        match split {
            "train" => digits.train.push(sample),
            "test" => digits.test.push(sample),
            _ => return Err(bad("split must be train or test")),
        }
    }
    Ok(digits)
}

/// The samples' pixels as one row-major `n × 64` batch.
pub fn batch(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .flat_map(|s| s.pixels.iter().copied())
        .collect()
}

/// The image as 8 lines of text (darker pixels are denser glyphs), for terminal output.
pub fn ascii_art(sample: &Sample) -> Vec<String> {
    const SHADES: [char; 5] = [' ', '·', '+', '#', '@'];
    sample
        .pixels
        .chunks(8)
        .map(|row| {
            row.iter()
                .map(|&p| SHADES[((p * 4.0).round() as usize).min(4)])
                .flat_map(|c| [c, c])
                .collect()
        })
        .collect()
}
