//! Graphs far deeper than a thread's stack: every graph walk keeps its own stack, the fuse
//! pass caps a kernel's size, and compiled kernels probe their stack frames (issue 12,
//! item 3). Each case runs on a spawned thread with a 2 MiB stack, the size of a default
//! worker thread.

mod common;

use kiln::{GradientTape, Tensor, Variable};

const STACK: usize = 2 << 20;

/// Runs `f` on a fresh thread with a 2 MiB stack and returns its result (a stack overflow
/// would abort the whole test binary, a panic fails the test).
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new().stack_size(STACK).spawn(f).expect("spawn").join().expect("no panic")
}

#[test]
fn a_chain_of_100k_adds_traces_compiles_and_runs() {
    const N: usize = 100_000;
    let (y, kernels) = on_small_stack(|| {
        let f = kiln::function(|x: &Tensor| {
            let mut y = x.clone();
            for _ in 0..N {
                y = &y + x;
            }
            y
        });
        let x = Tensor::new(&[1.0f32, 2.0, -3.0, 0.5]);
        let y = f.call(&x).unwrap().to_vec::<f32>().unwrap();
        let c = f.concrete_function(&x).unwrap();
        (y, c.executable().unwrap().graph().len())
    });
    let n = (N + 1) as f32;
    assert_eq!(y, vec![n, 2.0 * n, -3.0 * n, 0.5 * n]);
    // One input and ceil(N / MAX_KERNEL_NODES) kernels: the chain is split, not one
    // 100k-op function.
    assert_eq!(kernels, 1 + N.div_ceil(kiln::passes::MAX_KERNEL_NODES));
}

/// `sum_i tanh(x + i/1000)`: thousands of live transcendental values fused together.
fn many_tanh(x: &Tensor, n: usize) -> Tensor {
    let mut acc = x.zeros_like();
    for i in 0..n {
        acc = &acc + (x + (i as f64 / 1000.0)).tanh();
    }
    acc
}

#[test]
fn six_thousand_live_tanh_values_in_one_function() {
    let (want, got) = on_small_stack(|| {
        let x = Tensor::from_vec((0..64).map(|i| i as f32 / 16.0 - 2.0).collect(), &[64]).unwrap();
        let f = kiln::function(|x: &Tensor| many_tanh(x, 6000));
        (many_tanh(&x, 6000), f.call(&x).unwrap())
    });
    common::assert_close(&want, &got, "sum of 6000 tanh");
}

/// The gradient of `sum(tanh^n(w * x))` with respect to `w`.
fn tanh_chain_grad(w: &Variable, x: &Tensor, n: usize) -> Tensor {
    let tape = GradientTape::new();
    let mut y = &w.read() * x;
    for _ in 0..n {
        y = y.tanh();
    }
    tape.gradient(&y.sum_all(), &[w]).unwrap()[0].clone().unwrap()
}

#[test]
fn a_traced_gradient_through_5000_tanh() {
    let (want, got) = on_small_stack(|| {
        let w = Variable::new(Tensor::new(&[0.5f32, -0.2, 1.5, 0.01]));
        let x = Tensor::new(&[1.0f32, 2.0, 0.5, -3.0]);
        let w2 = w.clone();
        let f = kiln::function(move |x: &Tensor| tanh_chain_grad(&w2, x, 5000));
        (tanh_chain_grad(&w, &x, 5000), f.call(&x).unwrap())
    });
    common::assert_close(&want, &got, "gradient through 5000 tanh");
}

/// Compile time is near-linear in graph size (issue 12, item 15). No timing assertion: with
/// the quadratic passes this took hours (CSE compared every pair of the 100k distinct
/// scalar constants, fusion rescanned a 100k-edge list per kernel), now about a second.
#[test]
fn a_function_with_100k_outputs_traces_and_optimizes() {
    const N: usize = 100_000;
    let f = kiln::function(|x: &Tensor| (0..N).map(|i| x * (i as f64)).collect::<Vec<_>>())
        .with_backend(kiln::Backend::Interpreter);
    let x = Tensor::new(&[1.0f32, -2.0]);
    let ys = f.call(&x).unwrap();
    assert_eq!(ys.len(), N);
    assert_eq!(ys[N - 1].to_vec::<f32>().unwrap(), vec![(N - 1) as f32, -2.0 * (N - 1) as f32]);
    let g = f.graph(&x).unwrap();
    assert_eq!(g.outputs().len(), N);
}
