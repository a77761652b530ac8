//! Loads scikit-learn's 8x8 digits (examples/data/digits.csv, BSD 3-clause) and splits it.
//! Shared (via `#[path]`) by examples/train_digits.rs and tests/train_digits.rs.

use kiln::data::Dataset;
use kiln::{Error, Result, Tensor};

/// The images as `f32 [1797, 64]` scaled to `[0, 1]`, and the labels as `i64 [1797]`.
pub fn load() -> Result<(Tensor, Tensor)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits.csv");
    let text = std::fs::read_to_string(path).map_err(|e| Error::invalid("digits", format!("{path}: {e}")))?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != 65 {
            return Err(Error::invalid("digits", format!("line {}: {} fields, not 65", i + 1, values.len())));
        }
        let parse =
            |s: &str| s.trim().parse::<i64>().map_err(|e| Error::invalid("digits", format!("line {}: {e}", i + 1)));
        for v in &values[..64] {
            pixels.push(parse(v)? as f32 / 16.0);
        }
        labels.push(parse(values[64])?);
    }
    let n = labels.len();
    Ok((Tensor::from_vec(pixels, &[n, 64])?, Tensor::from_vec(labels, &[n])?))
}

/// A seeded split: `(train, test)` with the last `test_fraction` of a shuffled order held out.
pub fn split(x: &Tensor, y: &Tensor, test_fraction: f64, seed: u64) -> Result<((Tensor, Tensor), (Tensor, Tensor))> {
    let order = Dataset::from_tensors(std::slice::from_ref(y))?.shuffle(seed).order(0);
    let n_test = (order.len() as f64 * test_fraction).round() as usize;
    let (train, test) = order.split_at(order.len() - n_test);
    let pick = |rows: &[usize]| -> Result<(Tensor, Tensor)> {
        let idx = Tensor::from_vec(rows.iter().map(|&r| r as i64).collect::<Vec<i64>>(), &[rows.len()])?;
        Ok((x.try_gather(&idx, 0)?, y.try_gather(&idx, 0)?))
    };
    Ok((pick(train)?, pick(test)?))
}
