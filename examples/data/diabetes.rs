//! Loads scikit-learn's diabetes regression data (examples/data/diabetes.csv, BSD 3-clause),
//! standardized. Shared (via `#[path]`) by examples/custom_models.rs and its test.

use kiln::data::Dataset;
use kiln::{DType, Error, Result, Tensor};

/// The features as `f32 [442, 10]` and the target as `f32 [442, 1]`, each column scaled to
/// zero mean and unit variance.
pub fn load() -> Result<(Tensor, Tensor)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/diabetes.csv");
    let text = std::fs::read_to_string(path).map_err(|e| Error::invalid("diabetes", format!("{path}: {e}")))?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row: Vec<&str> = line.split(',').collect();
        if row.len() != 11 {
            return Err(Error::invalid("diabetes", format!("line {}: {} fields, not 11", i + 1, row.len())));
        }
        for v in row {
            values
                .push(v.trim().parse::<f64>().map_err(|e| Error::invalid("diabetes", format!("line {}: {e}", i + 1)))?);
        }
    }
    let n = values.len() / 11;
    let all = Tensor::from_vec(values, &[n, 11])?;
    let standard =
        (&all - &all.mean(0, true)) / all.square().mean(0, true).try_sub(&all.mean(0, true).square())?.sqrt();
    let standard = standard.cast(DType::F32);
    Ok((standard.slice(&kiln::s![.., ..10]), standard.slice(&kiln::s![.., 10..])))
}

/// A seeded split into training and held-out rows (the last `fraction` of a shuffled order).
pub fn split(x: &Tensor, y: &Tensor, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    let order: Vec<i64> =
        Dataset::from_tensors(std::slice::from_ref(y))?.shuffle(seed).order(0).iter().map(|&i| i as i64).collect();
    let idx = Tensor::from_vec(order.clone(), &[order.len()])?;
    Dataset::from_tensors(&[x.try_gather(&idx, 0)?, y.try_gather(&idx, 0)?])?.split_validation(fraction)
}
