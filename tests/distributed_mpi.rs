//! `kiln::distributed` across processes. Run under MPI (`.ci/run` does):
//!
//! ```sh
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="mpirun -np 2 --oversubscribe" \
//!     cargo test --release --features mpi --test distributed_mpi
//! ```
//!
//! Not a libtest harness: every process must run the same collectives in the same order,
//! so the checks run one after another in `main`, which reports on rank 0 and fails every
//! process if a check failed on any. Alone (plain `cargo test --features mpi`) the same
//! checks run on a world of one process.

use std::sync::Arc;

use kiln::distributed::{self, DistributedOptimizer, ReduceOp, World};
use kiln::optim::{Adam, Optimizer, SGD};
use kiln::{s, DType, GradientTape, Tensor, Variable};

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn err(e: kiln::Error) -> String {
    e.to_string()
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

fn as_f64(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).to_vec::<f64>().unwrap()
}

/// Sum, mean, max, min and prod of `(rank + 1) * k`, broadcast from the last rank, and
/// gathers, on every numeric dtype, for a scalar, an empty tensor and a matrix.
fn collectives(w: &World) -> Check {
    let n = w.size() as f64;
    let r = w.rank() as f64;
    let ranks: Vec<f64> = (1..=w.size()).map(|v| v as f64).collect();
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64] {
        for shape in [&[][..], &[0][..], &[2, 3][..]] {
            let x = Tensor::fill(shape, r + 1.0, dtype);
            let numel = x.numel();
            let want = |v: f64| vec![v; numel];
            let sum: f64 = ranks.iter().sum();
            let mean = if dtype.is_int() { (sum / n).trunc() } else { sum / n };
            for (op, v) in [
                (ReduceOp::Sum, sum),
                (ReduceOp::Mean, mean),
                (ReduceOp::Max, n),
                (ReduceOp::Min, 1.0),
                (ReduceOp::Prod, ranks.iter().product()),
            ] {
                let y = distributed::all_reduce(&x, op).map_err(err)?;
                ensure(y.dtype() == dtype && y.shape() == shape && as_f64(&y) == want(v), || {
                    format!("all_reduce({op:?}) of {dtype:?}{shape:?}: {y:?}, expected {v}")
                })?;
            }
            let b = distributed::broadcast(&x, w.size() - 1).map_err(err)?;
            ensure(as_f64(&b) == want(n), || format!("broadcast of {dtype:?}{shape:?}: {b:?}"))?;
            let g = distributed::all_gather(&x).map_err(err)?;
            let mut stacked = vec![w.size()];
            stacked.extend_from_slice(shape);
            let rows: Vec<f64> = ranks.iter().flat_map(|&v| vec![v; numel]).collect();
            ensure(g.shape() == stacked.as_slice() && as_f64(&g) == rows, || format!("all_gather: {g:?}"))?;
        }
    }
    let flags = Tensor::new(&[w.rank() == 0, true]);
    let g = distributed::all_gather(&flags).map_err(err)?;
    let mut want = vec![true, true];
    for _ in 1..w.size() {
        want.extend([false, true]);
    }
    ensure(g.to_vec::<bool>().unwrap() == want, || format!("all_gather of bools: {g:?}"))?;
    let b = distributed::broadcast(&flags, 0).map_err(err)?;
    ensure(b.to_vec::<bool>().unwrap() == vec![true, true], || format!("broadcast of bools: {b:?}"))
}

/// A traced function of several collectives gives what the eager calls give, bit for bit.
fn compiled_equals_eager(w: &World) -> Check {
    let step = |x: &Tensor| -> kiln::Result<Tensor> {
        let mut acc = x.clone();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            acc = distributed::all_reduce(&(&acc * 1.5 + x), op)?;
        }
        let b = distributed::broadcast(&(&acc + x), 1 % w_size())?;
        let g = distributed::all_gather(&b)?;
        Ok(g.sum(&[0], false) + x)
    };
    let f = kiln::function(step);
    let x = Tensor::new(&[0.25f32, -1.0, 3.0]) * (w.rank() as f64 + 1.0);
    let eager = step(&x).map_err(err)?;
    let compiled = f.call(&x).map_err(err)?;
    ensure(eager.array().unwrap().bits_eq(compiled.array().unwrap()), || {
        format!("eager {eager:?} compiled {compiled:?}")
    })
}

/// Collectives inside a compiled loop and a `cond` run every iteration, in order, and their
/// gradient flows through the loop.
fn collectives_in_control_flow(w: &World) -> Check {
    let n = w.size() as f64;
    let looped = |x: &Tensor| -> kiln::Result<Tensor> {
        let out = kiln::fori_loop(
            0,
            3,
            |_i: &Tensor, v: &[Tensor]| Ok(vec![distributed::all_reduce(&(&v[0] * 1.0), ReduceOp::Sum)?]),
            std::slice::from_ref(x),
        )?;
        let big = out[0].sum(&[0], false).greater(&Tensor::scalar(0.0f64));
        kiln::cond(&big, || distributed::all_reduce(&out[0], ReduceOp::Max), || Ok(out[0].clone()))
    };
    let x = Tensor::new(&[1.0f64, 2.0]);
    let compiled = kiln::function(looped).call(&x).map_err(err)?.to_vec::<f64>().unwrap();
    let want: Vec<f64> = [1.0, 2.0].iter().map(|v| v * n * n * n).collect();
    ensure(compiled == want, || format!("compiled loop of all_reduce: {compiled:?}, expected {want:?}"))?;
    let grad = kiln::function(move |x: &Tensor| -> kiln::Result<Tensor> {
        let tape = GradientTape::new();
        tape.watch(x);
        let l = looped(x)?.sum(&[0], false);
        Ok(tape.gradient_tensors(&l, &[x])?.remove(0).expect("a gradient"))
    });
    // Each process's loss is sum(n² Σ_r x_r) (the max of equal values passes the gradient
    // through), so the global loss is n³ Σ_r x_r: d/dx_r = n³.
    let g = grad.call(&x).map_err(err)?.to_vec::<f64>().unwrap();
    ensure(g == vec![n.powi(3); 2], || format!("gradient through the loop: {g:?}, expected {}", n.powi(3)))
}

fn w_size() -> usize {
    kiln::ir::interp::collective::size()
}

/// Each process's loss is a term of the global loss; the gradient of its operand sums the
/// cotangents of all processes.
fn gradients(w: &World) -> Check {
    let (n, r) = (w.size() as f64, w.rank() as f64);
    let c = r + 1.0; // this process's loss weight
    let sum_c: f64 = (1..=w.size()).map(|v| v as f64).sum();
    let x = Tensor::new(&[0.5f64, -2.0]) + r * 10.0; // distinct per process: rank n-1 holds the max
    type Loss = fn(&Tensor, f64) -> kiln::Result<Tensor>;
    type Expected = Box<dyn Fn(f64) -> f64>;
    let cases: [(&str, Loss, Expected); 5] = [
        ("sum of squares", |x, c| Ok((distributed::all_reduce(&(x * x), ReduceOp::Sum)? * c).sum(&[0], false)), {
            Box::new(move |xv| 2.0 * xv * sum_c)
        }),
        (
            "mean",
            |x, c| Ok((distributed::all_reduce(x, ReduceOp::Mean)? * c).sum(&[0], false)),
            Box::new(move |_| sum_c / n),
        ),
        (
            "max",
            |x, c| Ok((distributed::all_reduce(x, ReduceOp::Max)? * c).sum(&[0], false)),
            Box::new(move |_| if r == n - 1.0 { sum_c } else { 0.0 }),
        ),
        (
            "broadcast",
            |x, c| Ok((distributed::broadcast(x, 0)? * c).sum(&[0], false)),
            Box::new(move |_| if r == 0.0 { sum_c } else { 0.0 }),
        ),
        ("all_gather", |x, c| Ok((distributed::all_gather(x)? * c).sum(&[0, 1], false)), Box::new(move |_| sum_c)),
    ];
    for (name, loss, expect) in cases {
        let grad = move |x: &Tensor| -> kiln::Result<Tensor> {
            let tape = GradientTape::new();
            tape.watch(x);
            let l = loss(x, c)?;
            Ok(tape.gradient_tensors(&l, &[x])?.remove(0).expect("a gradient"))
        };
        let want: Vec<f64> = x.to_vec::<f64>().unwrap().into_iter().map(&expect).collect();
        let eager = grad(&x).map_err(err)?.to_vec::<f64>().unwrap();
        let compiled = kiln::function(grad).call(&x).map_err(err)?.to_vec::<f64>().unwrap();
        ensure(close(&eager, &want, 1e-12) && close(&compiled, &want, 1e-12), || {
            format!("gradient of {name}: eager {eager:?} compiled {compiled:?}, expected {want:?}")
        })?;
    }
    Ok(())
}

/// The global batch: 8 rows of a linear regression with 3 targets.
fn global_batch() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..40).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    let y: Vec<f32> = (0..24).map(|i| ((i * 11 % 7) as f32 - 3.0) / 3.0).collect();
    (Tensor::from_vec(x, &[8, 5]).unwrap(), Tensor::from_vec(y, &[8, 3]).unwrap())
}

fn model() -> (Variable, Variable) {
    let w: Vec<f32> = (0..15).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
    (Variable::new(Tensor::from_vec(w, &[5, 3]).unwrap()), Variable::new(Tensor::new(&[0.1f32, -0.2, 0.05])))
}

/// `steps` compiled steps of mean-squared-error regression on (x, y) with `opt`.
fn train(
    opt: std::sync::Arc<dyn Optimizer>,
    x: &Tensor,
    y: &Tensor,
    steps: usize,
) -> kiln::Result<(Variable, Variable)> {
    let (w, b) = model();
    let step = {
        let (w, b) = (w.clone(), b.clone());
        kiln::function(move |x: &Tensor, y: &Tensor| -> kiln::Result<Tensor> {
            let tape = GradientTape::new();
            let err = x.matmul(&w.read()) + b.read() - y;
            let loss = (&err * &err).mean(&[0, 1], false);
            let grads = tape.gradient(&loss, &[&w, &b])?;
            let mut grads = grads.into_iter().map(|g| g.expect("a gradient"));
            opt.apply_gradients(&[(grads.next().unwrap(), &w), (grads.next().unwrap(), &b)])?;
            Ok(loss)
        })
    };
    for _ in 0..steps {
        step.call((x, y))?;
    }
    Ok((w, b))
}

/// N data-parallel steps on a global batch split across the processes equal N steps of one
/// process on the whole batch, and every process ends with the same weights, bit for bit.
fn data_parallel_equals_one_process(w: &World) -> Check {
    let (x, y) = global_batch();
    if 8 % w.size() != 0 {
        return Err(format!("the global batch of 8 does not split across {} processes", w.size()));
    }
    let local = 8 / w.size();
    let rows = s![(w.rank() * local) as isize..((w.rank() + 1) * local) as isize];
    let (xl, yl) = (x.slice(&rows), y.slice(&rows));
    type Make = fn() -> std::sync::Arc<dyn Optimizer>;
    let optimizers: [(&str, Make, Make); 3] = [
        (
            "SGD",
            || std::sync::Arc::new(SGD::new(0.1)),
            || std::sync::Arc::new(DistributedOptimizer::new(SGD::new(0.1))),
        ),
        (
            "SGD, one bucket per gradient",
            || std::sync::Arc::new(SGD::new(0.1).momentum(0.9)),
            || std::sync::Arc::new(DistributedOptimizer::new(SGD::new(0.1).momentum(0.9)).bucket_bytes(0)),
        ),
        (
            "Adam",
            || std::sync::Arc::new(Adam::new(0.05)),
            || std::sync::Arc::new(DistributedOptimizer::new(Adam::new(0.05))),
        ),
    ];
    for (name, plain, wrapped) in optimizers {
        let (w1, b1) = train(plain(), &x, &y, 5).map_err(err)?;
        let (wn, bn) = train(wrapped(), &xl, &yl, 5).map_err(err)?;
        for (one, many) in [(&w1, &wn), (&b1, &bn)] {
            let (a, b) = (as_f64(&one.read()), as_f64(&many.read()));
            ensure(close(&b, &a, 1e-5), || format!("{name}: one process {a:?}, {} processes {b:?}", w.size()))?;
            let all = distributed::all_gather(&many.read()).map_err(err)?;
            for rank in 0..w.size() {
                let theirs = all.slice(&s![rank as isize]);
                ensure(theirs.array().unwrap().bits_eq(many.read().array().unwrap()), || {
                    format!("{name}: rank {rank}'s weights differ from rank {}'s", w.rank())
                })?;
            }
        }
    }
    Ok(())
}

/// `Trainer::fit(..).distributed(world)` on a per-process batch of 2 equals one process's
/// `fit` on batches of 2 × size (unshuffled shards interleave rows, so a global batch holds
/// the same rows), and reports the same per-epoch loss.
fn fit_data_parallel_equals_one_process(w: &World) -> Check {
    use kiln::{data::Dataset, losses::MeanSquaredError, nn::Dense, nn::Layer, nn::Sequential};
    let (x, y) = global_batch();
    let trainer = |world: Option<&World>| {
        let model =
            Arc::new(Sequential::new().add(Dense::new(4).seed(3).activation("tanh")).add(Dense::new(3).seed(4)));
        let t =
            kiln::training::Trainer::new(model.clone(), Arc::new(MeanSquaredError), Arc::new(Adam::new(0.05)), vec![]);
        (
            model,
            match world {
                Some(w) => t.distributed(w),
                None => t,
            },
        )
    };
    let (one_model, one) = trainer(None);
    let h1 = one
        .fit(&Dataset::from_tensors(&[x.clone(), y.clone()]).unwrap().batch(2 * w.size(), false), 3, None)
        .map_err(err)?;
    let (many_model, many) = trainer(Some(w));
    let hn = many.fit(&Dataset::from_tensors(&[x, y]).unwrap().batch(2, false), 3, None).map_err(err)?;
    ensure(close(&hn.loss, &h1.loss, 1e-5), || {
        format!("loss per epoch: one {:?}, distributed {:?}", h1.loss, hn.loss)
    })?;
    for (a, b) in one_model.variables().iter().zip(many_model.variables()) {
        let (a, b) = (as_f64(&a.read()), as_f64(&b.read()));
        ensure(close(&b, &a, 1e-5), || format!("fit: one process {a:?}, {} processes {b:?}", w.size()))?;
    }
    Ok(())
}

/// A process passing another shape or dtype, or calling another collective, makes every
/// process fail with an error that names the ranks; the job goes on afterwards.
fn mismatches_are_reported(w: &World) -> Check {
    if w.size() == 1 {
        return Ok(());
    }
    let shape = [w.rank() + 1];
    let e = distributed::all_reduce(&Tensor::zeros(&shape, DType::F32), ReduceOp::Sum).unwrap_err().to_string();
    ensure(e.contains("disagree") && e.contains("rank 1: all_reduce(sum) of f32[2]"), || format!("shape: {e}"))?;
    let dtype = if w.rank() == 0 { DType::F32 } else { DType::F64 };
    let e = distributed::all_reduce(&Tensor::zeros(&[2], dtype), ReduceOp::Sum).unwrap_err().to_string();
    ensure(e.contains("rank 1: all_reduce(sum) of f64[2]"), || format!("dtype: {e}"))?;
    let x = Tensor::zeros(&[2], DType::F32);
    let e = if w.rank() == 0 { distributed::broadcast(&x, 0) } else { distributed::all_gather(&x) };
    let e = e.unwrap_err().to_string();
    ensure(e.contains("rank 0: broadcast(root 0)") && e.contains("rank 1: all_gather"), || format!("call: {e}"))?;
    let ok = distributed::all_reduce(&Tensor::scalar(1i64), ReduceOp::Sum).map_err(err)?;
    ensure(ok.to_scalar::<i64>().unwrap() == w.size() as i64, || format!("after the errors: {ok:?}"))
}

/// `--fault panic` / `--fault error`: rank 1 fails while rank 0 waits in an all-reduce; the
/// job must end (not hang) with an error naming rank 1. `.ci/run` checks both.
fn fault(world: &World, kind: &str) {
    if world.rank() == 1 {
        match kind {
            "panic" => panic!("rank 1 fails in its step"),
            _ => {
                let failed: kiln::Result<()> = Err(kiln::Error::Training("rank 1 fails in its step".into()));
                world.or_abort(failed)
            }
        }
    }
    let _ = distributed::all_reduce(&Tensor::scalar(1.0f32), ReduceOp::Sum);
    unreachable!("rank 0 waits for rank 1 until the job is ended");
}

fn main() {
    let world = distributed::init().expect("MPI starts");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--fault") {
        fault(&world, args.get(i + 1).map_or("panic", |s| s.as_str()));
    }
    type Named = (&'static str, fn(&World) -> Check);
    let checks: [Named; 7] = [
        ("collectives", collectives),
        ("compiled_equals_eager", compiled_equals_eager),
        ("gradients", gradients),
        ("collectives_in_control_flow", collectives_in_control_flow),
        ("data_parallel_equals_one_process", data_parallel_equals_one_process),
        ("fit_data_parallel_equals_one_process", fit_data_parallel_equals_one_process),
        ("mismatches_are_reported", mismatches_are_reported),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        let outcome = check(&world);
        if let Err(why) = &outcome {
            eprintln!("rank {}: {name} FAILED: {why}", world.rank());
        }
        // Every process learns whether the check failed anywhere.
        let bad = distributed::all_reduce(&Tensor::scalar(outcome.is_err() as i32), ReduceOp::Sum).expect("all_reduce");
        let bad = bad.to_scalar::<i32>().unwrap();
        if world.is_root() {
            println!("{name} on {} process(es): {}", world.size(), if bad == 0 { "ok" } else { "FAILED" });
        }
        failed += (bad > 0) as i32;
    }
    drop(world); // finalizes MPI before exiting
    if failed > 0 {
        std::process::exit(1);
    }
}
