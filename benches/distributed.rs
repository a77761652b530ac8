//! Data-parallel steps and all-reduce on 1 and N processes (docs/DISTRIBUTED.md, "Measured").
//!
//! ```sh
//! cargo bench --features mpi --bench distributed                        # one process
//! cargo build --release --features mpi --bench distributed
//! mpirun -np 2 target/release/deps/distributed-<hash> --bench           # two
//! ```
//!
//! Each figure is the slowest process's mean over the timed repetitions (a step ends for
//! the job when its last process ends it). The global batch is fixed: N processes share it.

use std::time::Instant;

use kiln::distributed::{self, DistributedOptimizer, ReduceOp, World};
use kiln::optim::{Optimizer, SGD};
use kiln::{DType, GradientTape, Tensor, Variable};

/// Mean seconds per call of `f` over `reps` calls after `warm` untimed ones, the slowest
/// process's.
fn time(world: &World, warm: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        f();
    }
    world.barrier().unwrap();
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    let mine = Tensor::scalar(start.elapsed().as_secs_f64() / reps as f64);
    world.all_reduce(&mine, ReduceOp::Max).unwrap().to_scalar::<f64>().unwrap()
}

/// An MLP of `dims` with ReLU between layers, its parameters broadcast from rank 0.
fn mlp(dims: &[usize]) -> Vec<Variable> {
    let mut params = Vec::new();
    for (i, w) in dims.windows(2).enumerate() {
        let scale = (2.0 / w[0] as f64).sqrt();
        params.push(Variable::new(Tensor::random_normal(&[w[0], w[1]], DType::F32, i as u64) * scale));
        params.push(Variable::new(Tensor::zeros(&[w[1]], DType::F32)));
    }
    distributed::broadcast_variables(&params.iter().collect::<Vec<_>>(), 0).unwrap();
    params
}

/// Milliseconds per compiled data-parallel SGD step of `dims` on a global batch of `batch`;
/// with `average` false the gradients are not averaged (each process's own compute, for
/// telling contention for the cores from communication).
fn step_ms(world: &World, dims: &[usize], batch: usize, reps: usize, average: bool) -> f64 {
    let params = mlp(dims);
    let local = batch / world.size();
    let seed = 100 + world.rank() as u64;
    let x = Tensor::random_uniform(&[local, dims[0]], DType::F32, seed);
    let classes = *dims.last().unwrap();
    let labels = (Tensor::random_uniform(&[local], DType::F32, seed + 50) * classes as f64).floor().cast(DType::I64);
    let y = labels.one_hot(classes, DType::F32);
    let opt: Box<dyn Optimizer> =
        if average { Box::new(DistributedOptimizer::new(SGD::new(0.01))) } else { Box::new(SGD::new(0.01)) };
    let layers = params.len() / 2;
    let step = kiln::function(move |x: &Tensor, y: &Tensor| -> kiln::Result<Tensor> {
        let tape = GradientTape::new();
        let mut h = x.clone();
        for (i, pair) in params.chunks(2).enumerate() {
            h = h.matmul(&pair[0].read()) + pair[1].read();
            if i + 1 < layers {
                h = h.relu();
            }
        }
        let loss = -(h.log_softmax(-1) * y).sum(&[-1], false).mean_all();
        let refs: Vec<&Variable> = params.iter().collect();
        let grads = tape.gradient(&loss, &refs)?;
        let pairs: Vec<(Tensor, &Variable)> = grads.into_iter().map(|g| g.expect("a gradient")).zip(refs).collect();
        opt.apply_gradients(&pairs)?;
        Ok(loss)
    });
    time(world, 5, reps, || {
        step.call((&x, &y)).unwrap();
    }) * 1e3
}

fn main() {
    let world = distributed::init().unwrap();
    let n = world.size();
    let mut rows = Vec::new();
    for (name, dims, batch, reps) in [
        ("W3 step, MLP 784-512-512-10, global batch 256, SGD", &[784usize, 512, 512, 10][..], 256, 30),
        ("digits step, MLP 64-64-10, global batch 64, SGD", &[64, 64, 10][..], 64, 300),
    ] {
        let with = step_ms(&world, dims, batch, reps, true);
        let without = step_ms(&world, dims, batch, reps, false);
        rows.push(format!("| {name} | {n} | {with:.3} ms (without averaging: {without:.3} ms) |"));
    }
    for bytes in [4usize << 10, 256 << 10, 4 << 20, 16 << 20] {
        let x = Tensor::ones(&[bytes / 4], DType::F32);
        let reps = if bytes > 1 << 20 { 10 } else { 200 };
        let s = time(&world, 2, reps, || {
            distributed::all_reduce(&x, ReduceOp::Sum).unwrap();
        });
        rows.push(format!(
            "| all_reduce(sum), {} KiB f32 | {n} | {:.1} µs ({:.2} GB/s of buffer) |",
            bytes >> 10,
            s * 1e6,
            bytes as f64 / s / 1e9
        ));
    }
    if world.is_root() {
        println!("| what | processes | time |\n|---|---|---|");
        for r in rows {
            println!("{r}");
        }
    }
}
