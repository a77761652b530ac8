// cargo run --release --features mpi --example digits_mpi   (one process)
// mpirun -np 2 target/release/examples/digits_mpi           (two)
//! Issue 19's program (collectives eagerly and inside a compiled function), then the
//! digits MLP trained data-parallel: each global batch of 64 is split across the processes,
//! gradients are averaged by a `DistributedOptimizer`, and the whole step (forward,
//! gradients, all-reduce, Adam update) is one `kiln::function`. Every process ends with the
//! same weights, and the held-out accuracy matches one process's run on whole batches.

#[path = "data/digits.rs"]
mod digits_data;

use std::sync::Arc;

use kiln::data::Dataset;
use kiln::distributed::{self, DistributedOptimizer, ReduceOp};
use kiln::losses::{Loss, SparseCategoricalCrossentropy};
use kiln::metrics::{LabelMetric, Metric, SparseCategoricalAccuracy};
use kiln::nn::{Dense, Layer, Sequential};
use kiln::optim::{Adam, Optimizer};
use kiln::{s, DType, GradientTape, Tensor};

fn main() -> kiln::Result<()> {
    let world = distributed::init()?; // size 1 when not started by mpirun
    let (rank, size) = (world.rank(), world.size());
    let t = Tensor::fill(&[4], rank as f64 + 1.0, DType::F32);
    let s = world.all_reduce(&t, ReduceOp::Sum)?; // every rank gets sum_r (r+1)
    let f = kiln::function(move |x: &Tensor| distributed::all_reduce(x, ReduceOp::Mean));
    let m = f.call(&t)?; // the collective inside a compiled graph
    println!("rank {rank}/{size}: {s} {m}");

    train(&world)
}

const GLOBAL_BATCH: usize = 64;
const EPOCHS: u64 = 10;

fn train(world: &distributed::World) -> kiln::Result<()> {
    let (rank, size) = (world.rank(), world.size());
    if GLOBAL_BATCH % size != 0 {
        world.abort(2, &format!("the global batch of {GLOBAL_BATCH} does not split across {size} processes"));
    }
    let local = GLOBAL_BATCH / size;
    let (x, y) = digits_data::load()?;
    let ((x_train, y_train), (x_test, y_test)) = digits_data::split(&x, &y, 0.2, 0)?;
    // Every process walks the same global batches (same seed) and keeps its rows of each.
    let train = Dataset::from_tensors(&[x_train, y_train])?.shuffle(0).batch(GLOBAL_BATCH, true);

    let model = Arc::new(
        Sequential::new().add(Dense::new(64).seed(rank as u64 * 7).activation("relu")).add(Dense::new(10).seed(2)),
    );
    model.call(&x_test.slice(&s![0..1]), false)?; // builds the Variables
    let vars = model.trainable_variables();
    // Different seeds on purpose: broadcasting rank 0's weights is what makes them equal.
    distributed::broadcast_variables(&vars.iter().collect::<Vec<_>>(), 0)?;

    let optimizer = Arc::new(DistributedOptimizer::new(Adam::new(0.005)));
    let step = {
        let (model, optimizer) = (model.clone(), optimizer.clone());
        kiln::function(move |x: &Tensor, y: &Tensor| -> kiln::Result<Tensor> {
            let tape = GradientTape::new();
            let logits = model.call(x, true)?;
            let loss = SparseCategoricalCrossentropy::new(true).call(y, &logits)?;
            optimizer.minimize(&loss, &model.trainable_variables(), &tape)?;
            // The global batch's mean loss, for the log.
            distributed::all_reduce(&loss, ReduceOp::Mean)
        })
    };
    for epoch in 0..EPOCHS {
        let mut total = 0.0;
        let mut batches = 0;
        for batch in train.epoch(epoch) {
            let batch = batch?;
            let rows = s![(rank * local) as isize..((rank + 1) * local) as isize];
            let loss = step.call((&batch[0].slice(&rows), &batch[1].slice(&rows)))?;
            total += loss.item()?;
            batches += 1;
        }
        if world.is_root() {
            println!("epoch {:>2}: loss {:.4}", epoch + 1, total / batches as f64);
        }
    }
    let accuracy = SparseCategoricalAccuracy::new();
    accuracy.update_state(&y_test, &model.call(&x_test, false)?)?;
    // Every process must hold the same weights: gather them and compare bit for bit.
    let mut identical = true;
    for v in &vars {
        let all = distributed::all_gather(&v.read())?;
        let mine = all.slice(&s![0]).to_vec::<f32>()?;
        for r in 1..size {
            let theirs = all.slice(&s![r as isize]).to_vec::<f32>()?;
            identical &= mine.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits());
        }
    }
    if world.is_root() {
        println!(
            "{size} process(es), global batch {GLOBAL_BATCH}: held-out accuracy {:.4}, weights identical on every rank: {identical}",
            accuracy.result().item()?
        );
    }
    if !identical {
        return Err(kiln::Error::Training(format!("rank {rank}: the processes ended with different weights")));
    }
    Ok(())
}
