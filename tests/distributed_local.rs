//! `kiln::distributed` in one process (no MPI transport installed, with or without the `mpi`
//! feature): the collectives give their operand back, eagerly and compiled alike; the
//! optimizer never removes, merges or reorders them; their gradients; the optimizer wrapper.
//! The same ops across two processes are tested by `tests/distributed_mpi.rs` under mpirun.

use kiln::distributed::{self, DistributedOptimizer, ReduceOp};
use kiln::ir::{Op, OpKind};
use kiln::optim::{Adam, Optimizer, SGD};
use kiln::{DType, GradientTape, Tensor, Variable};

fn samples() -> Vec<Tensor> {
    vec![
        Tensor::new(&[1.5f32, -2.0, 3.25]).reshape([3, 1]),
        Tensor::new(&[1e300f64, -0.0, f64::INFINITY]),
        Tensor::new(&[i32::MAX, -7, 0, 3]).reshape([2, 2]),
        Tensor::new(&[i64::MIN, 9]),
        Tensor::scalar(4.0f32),
        Tensor::zeros(&[0, 3], DType::F64),
    ]
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.dtype() == b.dtype() && a.shape() == b.shape() && a.array().unwrap().bits_eq(b.array().unwrap())
}

#[test]
fn alone_every_collective_gives_its_operand_back() {
    for x in samples() {
        for op in ReduceOp::ALL {
            assert!(same(&distributed::all_reduce(&x, op).unwrap(), &x), "{op:?} of {x:?}");
        }
        assert!(same(&distributed::broadcast(&x, 0).unwrap(), &x));
        let g = distributed::all_gather(&x).unwrap();
        let mut stacked = vec![1];
        stacked.extend_from_slice(x.shape());
        assert_eq!(g.shape(), stacked.as_slice());
        assert!(same(&g.reshape(x.shape().to_vec()), &x));
    }
    let flags = Tensor::new(&[true, false]);
    assert!(same(&distributed::broadcast(&flags, 0).unwrap(), &flags));
    assert_eq!(distributed::all_gather(&flags).unwrap().shape(), &[1, 2]);
}

#[test]
fn bad_collectives_are_clear_errors() {
    let e = distributed::all_reduce(&Tensor::new(&[true]), ReduceOp::Sum).unwrap_err().to_string();
    assert!(e.contains("all_reduce") && e.contains("bool"), "{e}");
    let e = distributed::broadcast(&Tensor::scalar(1.0f32), 1).unwrap_err().to_string();
    assert!(e.contains("broadcast") && e.contains("root rank 1"), "{e}");
    // Compiled too: the error comes from the call, not the trace.
    let f = kiln::function(|x: &Tensor| distributed::broadcast(x, 3));
    let e = f.call(&Tensor::scalar(1.0f32)).unwrap_err().to_string();
    assert!(e.contains("root rank 3"), "{e}");
}

#[test]
fn world_alone() {
    let world = distributed::init().unwrap();
    assert_eq!((world.rank(), world.size(), world.is_root(), world.is_mpi()), (0, 1, true, false));
    world.barrier().unwrap();
    let t = Tensor::fill(&[4], 1.0, DType::F32);
    assert!(same(&world.all_reduce(&t, ReduceOp::Sum).unwrap(), &t));
}

/// Every collective, traced and compiled, gives what the eager calls give, bit for bit.
#[test]
fn compiled_collectives_equal_eager() {
    let step = |x: &Tensor| -> kiln::Result<Tensor> {
        let mut acc = x.clone();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            acc = distributed::all_reduce(&(&acc * 2.0), op)?;
        }
        let b = distributed::broadcast(&acc, 0)?;
        let g = distributed::all_gather(&b)?;
        Ok(g.sum(&[0], false) + 1.0)
    };
    let f = kiln::function(step);
    for x in [Tensor::new(&[1.0f32, -3.0, 0.5]), Tensor::new(&[2.0f64]), Tensor::zeros(&[0], DType::F32)] {
        assert!(same(&f.call(&x).unwrap(), &step(&x).unwrap()), "{x:?}");
    }
}

/// Collectives are effects: an unused one stays in the optimized graph, two equal ones are
/// not merged, and they keep their traced order.
#[test]
fn optimizer_keeps_collectives_in_order() {
    let f = kiln::function(|x: &Tensor| -> kiln::Result<Tensor> {
        distributed::all_reduce(x, ReduceOp::Sum)?; // unused
        distributed::all_reduce(x, ReduceOp::Sum)?; // the same again
        distributed::broadcast(&Tensor::scalar(1i64), 0)?; // a constant operand
        let y = distributed::all_reduce(x, ReduceOp::Max)?;
        Ok(&y + 1.0)
    });
    let x = Tensor::new(&[1.0f32, 2.0]);
    let c = f.concrete_function(&x).unwrap();
    for g in [c.traced(), c.optimized()] {
        let kinds: Vec<Op> = g
            .topo_order()
            .unwrap()
            .into_iter()
            .map(|n| g.node(n).op.clone())
            .filter(|op| matches!(op.kind(), OpKind::AllReduce | OpKind::Broadcast))
            .collect();
        assert_eq!(
            kinds,
            vec![
                Op::AllReduce(ReduceOp::Sum),
                Op::AllReduce(ReduceOp::Sum),
                Op::Broadcast(0),
                Op::AllReduce(ReduceOp::Max)
            ],
            "{}",
            g.to_text()
        );
    }
    assert_eq!(f.call(&x).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
}

/// Alone, each collective's gradient is the identity's (all_gather's drops the new axis),
/// eagerly and compiled.
#[test]
fn gradients_of_collectives_alone() {
    let loss = |w: &Tensor| -> kiln::Result<Tensor> {
        let a = distributed::all_reduce(&(w * w), ReduceOp::Sum)?;
        let m = distributed::all_reduce(&(w * 3.0), ReduceOp::Mean)?;
        let mx = distributed::all_reduce(w, ReduceOp::Max)?;
        let b = distributed::broadcast(&w.exp(), 0)?;
        let g = distributed::all_gather(&(w * 5.0))?;
        Ok((a + m + mx + b).sum(&[0], false) + g.sum(&[0, 1], false))
    };
    let grad = move |w: &Tensor| -> kiln::Result<Tensor> {
        let tape = GradientTape::new();
        tape.watch(w);
        let l = loss(w)?;
        Ok(tape.gradient_tensors(&l, &[w])?.remove(0).expect("a gradient"))
    };
    let w = Tensor::new(&[0.5f64, -1.0, 2.0]);
    let expected: Vec<f64> = w.to_vec::<f64>().unwrap().iter().map(|v| 2.0 * v + 3.0 + 1.0 + v.exp() + 5.0).collect();
    let eager = grad(&w).unwrap().to_vec::<f64>().unwrap();
    let compiled = kiln::function(grad).call(&w).unwrap().to_vec::<f64>().unwrap();
    for (e, (a, b)) in expected.iter().zip(eager.iter().zip(&compiled)) {
        assert!((e - a).abs() < 1e-12 && (e - b).abs() < 1e-12, "{expected:?} {eager:?} {compiled:?}");
    }
    let e = {
        let tape = GradientTape::new();
        tape.watch(&w);
        let p = distributed::all_reduce(&w, ReduceOp::Prod).unwrap();
        tape.gradient_tensors(&p.sum(&[0], false), &[&w]).unwrap_err().to_string()
    };
    assert!(e.contains("all_reduce(prod)"), "{e}");
}

#[test]
fn distributed_optimizer_alone_is_its_inner_optimizer() {
    let make = || (Variable::new(Tensor::new(&[1.0f32, -2.0, 0.5])), Variable::new(Tensor::scalar(3.0f64)));
    let (a1, b1) = make();
    let (a2, b2) = make();
    let plain = Adam::new(0.01);
    let wrapped = DistributedOptimizer::new(Adam::new(0.01)).bucket_bytes(8);
    for step in 0..3 {
        let ga = Tensor::new(&[0.1f32, -0.2, 0.3]) * (step as f64 + 1.0);
        let gb = Tensor::scalar(-0.5f64);
        plain.apply_gradients(&[(ga.clone(), &a1), (gb.clone(), &b1)]).unwrap();
        wrapped.apply_gradients(&[(ga, &a2), (gb, &b2)]).unwrap();
    }
    assert!(same(&a1.read(), &a2.read()) && same(&b1.read(), &b2.read()));
    assert_eq!(wrapped.iterations().read().to_scalar::<i64>().unwrap(), 3);
    // A mismatched gradient is still the inner optimizer's clear error.
    let e = DistributedOptimizer::new(SGD::new(0.1)).apply_gradients(&[(Tensor::scalar(1.0f64), &a1)]).unwrap_err();
    assert!(e.to_string().contains("apply_gradients"), "{e}");
}

#[test]
fn buckets_fuse_small_gradients_of_one_dtype() {
    let opt = DistributedOptimizer::new(SGD::new(0.1)).bucket_bytes(40);
    let plan = [(DType::F32, 4), (DType::F32, 6), (DType::F32, 1), (DType::F64, 100), (DType::F64, 1), (DType::F64, 2)];
    assert_eq!(opt.buckets(&plan), vec![vec![0, 1], vec![2], vec![3], vec![4, 5]]);
    let unfused = DistributedOptimizer::new(SGD::new(0.1)).bucket_bytes(0);
    assert_eq!(unfused.buckets(&plan).len(), plan.len());
    let default = DistributedOptimizer::new(SGD::new(0.1));
    assert_eq!(default.buckets(&plan), vec![vec![0, 1, 2], vec![3, 4, 5]]);
}
