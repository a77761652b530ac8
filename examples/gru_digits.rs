//! Trains a GRU on scikit-learn's 8x8 digits read as sequences of 8 rows of 8 pixels: a
//! `GRU(64)` over the rows, then `Dense(10)`. The whole training step (forward through the
//! loop, loss, the reverse loop for the gradients, Adam, metrics) is one compiled
//! `kiln::function`; the example prints the GRU's loop as the compiled step holds it (one
//! `scan` node whose body is three matmuls and one fused kernel), the loss and accuracy per epoch and the held-out accuracy.
//! Run: `cargo run --release --example gru_digits`.

#[path = "data/digits.rs"]
mod digits_data;

use std::sync::Arc;

use kiln::data::Dataset;
use kiln::losses::{Loss, SparseCategoricalCrossentropy};
use kiln::metrics::{LabelMetric, Mean, Metric, SparseCategoricalAccuracy};
use kiln::nn::{Dense, Layer, Sequential, GRU};
use kiln::optim::{Adam, Optimizer};
use kiln::{Result, Tensor};

/// Images `[n, 64]` as sequences `[n, 8 rows, 8 pixels]`.
fn as_rows(x: &Tensor) -> Result<Tensor> {
    x.try_reshape([x.shape()[0] as i64, 8, 8])
}

/// The first `scan` node of a graph's text, with its body.
fn first_scan(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.contains(" = scan ")) else { return String::new() };
    let close = format!("{}}}", &lines[start][..lines[start].len() - lines[start].trim_start().len()]);
    let end = lines[start..].iter().position(|l| *l == close).map_or(lines.len(), |e| start + e + 1);
    lines[start..end].join("\n")
}

/// One seeded training run; returns the held-out accuracy. With `verbose`, prints the
/// compiled step's graph and per-epoch figures.
pub fn run(epochs: u64, seed: u64, verbose: bool) -> Result<f64> {
    let (x, y) = digits_data::load()?;
    let ((x_train, y_train), (x_test, y_test)) = digits_data::split(&as_rows(&x)?, &y, 0.2, seed)?;
    let train = Dataset::from_tensors(&[x_train, y_train])?.shuffle(seed).batch(32, true);

    let model = Arc::new(Sequential::new().add(GRU::new(64).seed(seed)).add(Dense::new(10).seed(seed + 2)));
    let optimizer = Arc::new(Adam::new(0.005));
    let loss_metric = Arc::new(Mean::new("loss"));
    let accuracy = Arc::new(SparseCategoricalAccuracy::new());
    let step = {
        let (model, optimizer, loss_metric, accuracy) =
            (model.clone(), optimizer.clone(), loss_metric.clone(), accuracy.clone());
        kiln::function(move |x: &Tensor, y: &Tensor| -> Result<Tensor> {
            let tape = kiln::GradientTape::new();
            let logits = model.call(x, true)?;
            let loss = SparseCategoricalCrossentropy::new(true).call(y, &logits)?;
            optimizer.minimize(&loss, &model.trainable_variables(), &tape)?;
            loss_metric.update_state(&loss)?;
            accuracy.update_state(y, &logits)?;
            Ok(loss)
        })
    };
    for epoch in 0..epochs {
        for (i, batch) in train.epoch(epoch).enumerate() {
            let batch = batch?;
            if verbose && epoch == 0 && i == 0 {
                // Tracing builds the layers' weights (inside `init_scope`), so the graph is
                // printed from the first real batch.
                let text = step.graph((&batch[0], &batch[1]))?.to_text();
                println!(
                    "the GRU's loop in the compiled step (one of its {} lines):\n{}",
                    text.lines().count(),
                    first_scan(&text)
                );
            }
            step.call((&batch[0], &batch[1]))?;
        }
        if verbose {
            let (loss, acc) = (loss_metric.result().item()?, accuracy.result().item()?);
            println!("  epoch {:>2}: loss {loss:.4}  accuracy {acc:.4}", epoch + 1);
        }
        loss_metric.reset()?;
        accuracy.reset()?;
    }
    let test_accuracy = SparseCategoricalAccuracy::new();
    test_accuracy.update_state(&y_test, &model.call(&x_test, false)?)?;
    test_accuracy.result().item()
}

#[allow(dead_code)]
fn main() -> Result<()> {
    println!("digits as 8 rows of 8 pixels (scikit-learn, BSD licence), 20% held out; GRU(64) -> Dense(10), Adam 0.005, batch 32");
    let accuracy = run(10, 0, true)?;
    println!("held-out accuracy {accuracy:.4}");
    Ok(())
}
