//! GradientTape behaviour: the seed example, None gradients, stop_gradient, persistent and
//! plain tapes, nested tapes (second derivatives vs closed forms), Variables assigned during
//! the taped computation, NaN/Inf propagation, custom_gradient, the stable built-ins, the
//! functional form, and a whole training step traced into one `kiln::function`.
//!
//! Closed forms are compared at 1e-12 relative in f64 (a handful of roundings each); the
//! seed's f32 values are exact.

use kiln::{Backend, DType, GradientTape, Result, Tensor, Variable};

fn scalar(t: &Option<Tensor>) -> f64 {
    t.as_ref().expect("a gradient").item().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

#[test]
fn seed_example() -> Result<()> {
    let (w1, w2) = (Variable::new(Tensor::scalar(5.0f32)), Variable::new(Tensor::scalar(3.0f32)));
    let f = |a: &Tensor, b: &Tensor| 3.0 * a.square() + 2.0 * a * b;
    let tape = GradientTape::new();
    let z = f(&w1.read(), &w2.read());
    let g = tape.gradient(&z, &[&w1, &w2])?; // [Some(36.0), Some(10.0)]
    assert_eq!(g[0].as_ref().unwrap().to_scalar::<f32>()?, 36.0);
    assert_eq!(g[1].as_ref().unwrap().to_scalar::<f32>()?, 10.0);
    Ok(())
}

#[test]
fn unconnected_sources_get_none() -> Result<()> {
    let (w1, w2) = (Variable::new(Tensor::scalar(5.0f64)), Variable::new(Tensor::scalar(3.0f64)));
    let unread = Variable::new(Tensor::scalar(1.0f64));
    let tape = GradientTape::persistent();
    let a = w1.read();
    let _b = w2.read(); // read but unused by the target
    let z = a.square();
    let g = tape.gradient(&z, &[&w1, &w2, &unread])?;
    assert_eq!(scalar(&g[0]), 10.0);
    assert!(g[1].is_none() && g[2].is_none());
    // A watched tensor the target does not depend on, and a target that depends on nothing watched.
    let x = Tensor::scalar(1.0f64);
    tape.watch(&x);
    assert!(tape.gradient_tensors(&z, &[&x])?[0].is_none());
    let c = Tensor::scalar(2.0f64).exp();
    assert!(tape.gradient(&c, &[&w1])?[0].is_none());
    // Integer results carry no gradient.
    let tape = GradientTape::new();
    let y = w1.read().cast(DType::I32).cast(DType::F64) * 2.0;
    assert!(tape.gradient(&y, &[&w1])?[0].is_none());
    Ok(())
}

#[test]
fn non_trainable_variables_need_watching() -> Result<()> {
    let v = Variable::with_options(Tensor::scalar(2.0f64), "frozen", false);
    let tape = GradientTape::new();
    let y = v.read().square();
    assert!(tape.gradient(&y, &[&v])?[0].is_none());
    let tape = GradientTape::new();
    tape.watch_variable(&v);
    let y = v.read().square();
    assert_eq!(tape.watched_variables().len(), 1);
    assert_eq!(scalar(&tape.gradient(&y, &[&v])?[0]), 4.0);
    Ok(())
}

#[test]
fn stop_gradient_cuts_the_path() -> Result<()> {
    let w = Variable::new(Tensor::scalar(3.0f64));
    let tape = GradientTape::new();
    let a = w.read();
    let y = &a * &a.stop_gradient() + a.stop_gradient().exp();
    assert_eq!(scalar(&tape.gradient(&y, &[&w])?[0]), 3.0);
    Ok(())
}

/// A product's VJP computes only the operand gradients that lead to a source: the gradient
/// of `x @ w` with respect to `w` alone multiplies once backward, not twice (eagerly the
/// other product would run and be thrown away). Counted in the traced graph, where every
/// product the tape computes is a node before dead-code removal.
#[test]
fn a_product_differentiates_only_the_operands_that_lead_to_a_source() -> Result<()> {
    let w = Variable::new(Tensor::random_normal(&[8, 4], DType::F32, 1));
    let w2 = w.clone();
    let f = kiln::function(move |x: &Tensor| {
        let tape = GradientTape::new();
        let loss = x.matmul(&w2.read()).sum_all();
        tape.gradient(&loss, &[&w2]).unwrap().remove(0).unwrap()
    });
    let x = Tensor::random_normal(&[16, 8], DType::F32, 2);
    let products = |g: &kiln_ir::Graph| g.node_ids().filter(|&n| matches!(g.node(n).op, kiln_ir::Op::MatMul)).count();
    assert_eq!(products(f.concrete_function(&x)?.traced()), 2, "forward and d/dw only");
    // The gradient itself is unchanged: xᵀ · ones.
    let tape = GradientTape::new();
    let loss = x.matmul(&w.read()).sum_all();
    let g = tape.gradient(&loss, &[&w])?.remove(0).unwrap();
    let want = x.transpose(&[1, 0]).matmul(&Tensor::ones(&[16, 4], DType::F32));
    assert_eq!(g.to_vec::<f32>()?, want.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn persistent_tape_answers_twice_plain_tape_once() -> Result<()> {
    let x = Tensor::scalar(3.0f64);
    let tape = GradientTape::persistent();
    tape.watch(&x);
    let y = x.square();
    let z = y.square();
    assert_eq!(scalar(&tape.gradient_tensors(&z, &[&x])?[0]), 108.0); // 4x^3
    assert_eq!(scalar(&tape.gradient_tensors(&y, &[&x])?[0]), 6.0);
    assert_eq!(scalar(&tape.gradient_tensors(&z, &[&y])?[0]), 18.0); // w.r.t. an intermediate: 2y
    let plain = GradientTape::new();
    plain.watch(&x);
    let y = x.square();
    assert_eq!(scalar(&plain.gradient_tensors(&y, &[&x])?[0]), 6.0);
    let err = plain.gradient_tensors(&y, &[&x]).unwrap_err();
    assert!(matches!(err, kiln::Error::Gradient(_)), "{err}");
    assert!(err.to_string().contains("persistent"), "{err}");
    Ok(())
}

#[test]
fn bad_targets_and_seeds_are_errors() -> Result<()> {
    let x = Tensor::new(&[1.0f64, 2.0]);
    let tape = GradientTape::persistent();
    tape.watch(&x);
    let y = x.square();
    assert!(tape.gradient_tensors(&x.greater(&x.scalar_like(1.5)), &[&x]).is_err());
    assert!(tape.gradient_tensors_with(&y, &[&x], &Tensor::new(&[1.0f64, 2.0, 3.0])).is_err());
    assert!(tape.gradient_tensors_with(&y, &[&x], &Tensor::new(&[1.0f32, 2.0])).is_err());
    // A non-scalar target is summed; a seed weights it.
    assert_eq!(tape.gradient_tensors(&y, &[&x])?[0].as_ref().unwrap().to_vec::<f64>()?, vec![2.0, 4.0]);
    let seeded = tape.gradient_tensors_with(&y, &[&x], &Tensor::new(&[3.0f64, -1.0]))?;
    assert_eq!(seeded[0].as_ref().unwrap().to_vec::<f64>()?, vec![6.0, -4.0]);
    Ok(())
}

/// The rule (TF's): the gradient w.r.t. a Variable is the sum of the gradients w.r.t. every
/// read of it on the tape, before and after an assignment; the assignment itself is not
/// differentiated (the new value is not a function of the old one for the tape).
#[test]
fn variable_assigned_during_the_taped_computation() -> Result<()> {
    let w = Variable::new(Tensor::scalar(2.0f64));
    let tape = GradientTape::new();
    let y1 = w.read().square(); // d/dw = 2w = 4, at the value read (2)
    w.assign(&Tensor::scalar(3.0f64))?;
    let y2 = w.read() * 5.0; // d/dw = 5
    w.assign_add(&Tensor::scalar(1.0f64))?; // an eager update reads no tensor for the tape
    let y3 = w.read().square(); // d/dw = 2 * 4 = 8
    let z = y1 + y2 + y3;
    assert_eq!(scalar(&tape.gradient(&z, &[&w])?[0]), 4.0 + 5.0 + 8.0);
    Ok(())
}

#[test]
fn second_derivatives_match_closed_forms() -> Result<()> {
    for &x0 in &[-1.7f64, 0.3, 2.5] {
        let x = Tensor::scalar(x0);
        // x^3: 3x^2 then 6x (pow with a literal exponent and a product chain).
        for cube in [|x: &Tensor| x.powf(3.0), |x: &Tensor| x * x * x] {
            let outer = GradientTape::new();
            outer.watch(&x);
            let inner = GradientTape::new();
            inner.watch(&x);
            let y = cube(&x);
            let dy = inner.gradient_tensors(&y, &[&x])?.remove(0).unwrap();
            assert!(close(dy.item()?, 3.0 * x0 * x0));
            let d2y = outer.gradient_tensors(&dy, &[&x])?.remove(0).unwrap();
            assert!(close(d2y.item()?, 6.0 * x0), "{} vs {}", d2y.item()?, 6.0 * x0);
        }
        // tanh'' = -2 tanh (1 - tanh^2)
        let outer = GradientTape::new();
        outer.watch(&x);
        let inner = GradientTape::new();
        inner.watch(&x);
        let dy = inner.gradient_tensors(&x.tanh(), &[&x])?.remove(0).unwrap();
        let d2y = outer.gradient_tensors(&dy, &[&x])?.remove(0).unwrap();
        let t = x0.tanh();
        assert!(close(d2y.item()?, -2.0 * t * (1.0 - t * t)));
    }
    Ok(())
}

/// The Hessian of softmax cross-entropy w.r.t. the logits is diag(p) - p pᵀ (per row);
/// checked as Hessian-vector products from nested tapes.
#[test]
fn second_derivative_of_softmax_cross_entropy() -> Result<()> {
    let z = Tensor::new(&[[0.5f64, -1.0, 2.0], [3.0, 0.0, -2.0]]);
    let labels = Tensor::new(&[[0.0f64, 0.0, 1.0], [0.2, 0.3, 0.5]]);
    let v = Tensor::new(&[[1.0f64, -2.0, 0.5], [0.3, 0.7, -1.1]]);
    let outer = GradientTape::new();
    outer.watch(&z);
    let inner = GradientTape::new();
    inner.watch(&z);
    let loss = kiln::softmax_cross_entropy_with_logits(&z, &labels)?.sum_all();
    let g = inner.gradient_tensors(&loss, &[&z])?.remove(0).unwrap();
    let p = z.softmax(-1).to_vec::<f64>()?;
    let (gv, lv) = (g.to_vec::<f64>()?, labels.to_vec::<f64>()?);
    for i in 0..6 {
        assert!(close(gv[i], p[i] - lv[i]), "first derivative {i}");
    }
    let hv = outer.gradient_tensors(&(&g * &v).sum_all(), &[&z])?.remove(0).unwrap().to_vec::<f64>()?;
    let vv = v.to_vec::<f64>()?;
    for r in 0..2 {
        let row = |a: &[f64], j: usize| a[r * 3 + j];
        let pv: f64 = (0..3).map(|j| row(&p, j) * row(&vv, j)).sum();
        for j in 0..3 {
            let want = row(&p, j) * row(&vv, j) - row(&p, j) * pv;
            assert!(close(hv[r * 3 + j], want), "H v at ({r},{j}): {} vs {want}", hv[r * 3 + j]);
        }
    }
    Ok(())
}

#[test]
fn nan_and_inf_propagate() -> Result<()> {
    let x = Tensor::new(&[f64::NAN, 0.0, 4.0]);
    let tape = GradientTape::persistent();
    tape.watch(&x);
    let g = |y: &Tensor| tape.gradient_tensors(y, &[&x]).unwrap().remove(0).unwrap().to_vec::<f64>().unwrap();
    let sq = g(&x.square());
    assert!(sq[0].is_nan() && sq[1] == 0.0 && sq[2] == 8.0);
    let rt = g(&x.sqrt());
    assert!(rt[0].is_nan() && rt[1] == f64::INFINITY && rt[2] == 0.25);
    // relu at NaN and at 0: no gradient (TF tests the output > 0).
    assert_eq!(g(&x.relu())[..2], [0.0, 0.0]);
    // A NaN in a max reduction: the max is NaN, no element equals it, the gradient is NaN.
    assert!(g(&x.max_all()).iter().all(|v| v.is_nan()));
    // 2x does not look at x: the gradient is 2 even at NaN.
    assert_eq!(g(&(&x * 2.0)), vec![2.0, 2.0, 2.0]);
    Ok(())
}

/// The book's stable softplus: the forward is `ln(e^z + 1)`, which is inf at z = 1000 in
/// f32, but the custom gradient `1 - 1/(1 + e^z)` stays finite (1); the naive gradient of the
/// same forward is NaN there.
#[test]
fn custom_gradient_softplus_is_finite_at_1000() -> Result<()> {
    fn my_softplus(z: &Tensor) -> Tensor {
        kiln::custom_gradient(&[z], |x| {
            let z = x[0].clone();
            let value = (z.exp() + 1.0).log();
            (value, move |dy: &Tensor| vec![dy * (1.0 - 1.0 / (z.exp() + 1.0))])
        })
    }
    let z = Tensor::new(&[1000.0f32, 0.0, -3.0]);
    let tape = GradientTape::persistent();
    tape.watch(&z);
    let y = my_softplus(&z);
    let g = tape.gradient_tensors(&y, &[&z])?.remove(0).unwrap().to_vec::<f32>()?;
    assert_eq!(g[0], 1.0);
    assert_eq!(g[1], 0.5);
    assert!((g[2] - 1.0 / (1.0 + 3f32.exp())).abs() < 1e-7);
    let naive = tape.gradient_tensors(&(z.exp() + 1.0).log(), &[&z])?.remove(0).unwrap().to_vec::<f32>()?;
    assert!(naive[0].is_nan());
    // The built-in softplus is stable in both directions.
    let builtin = z.softplus();
    assert_eq!(builtin.to_vec::<f32>()?[0], 1000.0);
    assert_eq!(tape.gradient_tensors(&builtin, &[&z])?.remove(0).unwrap().to_vec::<f32>()?[0], 1.0);
    Ok(())
}

#[test]
fn custom_gradient_has_second_derivatives_and_checks_arity() -> Result<()> {
    // f(x) = x^2 with a hand-written gradient 2x computed from the input: d2 = 2.
    let square = |x: &Tensor| {
        kiln::custom_gradient(&[x], |a| {
            let x = a[0].clone();
            (x.square(), move |dy: &Tensor| vec![dy * &x * 2.0])
        })
    };
    let x = Tensor::scalar(3.0f64);
    let outer = GradientTape::new();
    outer.watch(&x);
    let inner = GradientTape::new();
    inner.watch(&x);
    let dy = inner.gradient_tensors(&square(&x), &[&x])?.remove(0).unwrap();
    assert_eq!(dy.item()?, 6.0);
    assert_eq!(scalar(&outer.gradient_tensors(&dy, &[&x])?[0]), 2.0);
    // A gradient closure returning the wrong number of gradients is an Err, not a panic.
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = kiln::custom_gradient(&[&x], |a| (a[0].exp(), |dy: &Tensor| vec![dy.clone(), dy.clone()]));
    assert!(tape.gradient_tensors(&y, &[&x]).is_err());
    Ok(())
}

#[test]
fn stable_builtins_have_finite_gradients_at_large_inputs() -> Result<()> {
    let z = Tensor::new(&[[1000.0f32, 0.0, -1000.0]]);
    let tape = GradientTape::persistent();
    tape.watch(&z);
    let grad = |y: &Tensor| tape.gradient_tensors(y, &[&z]).unwrap().remove(0).unwrap().to_vec::<f32>().unwrap();
    let all_finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    let lse = z.logsumexp(&[-1], false);
    assert_eq!(lse.to_vec::<f32>()?, vec![1000.0]);
    assert_eq!(grad(&lse), vec![1.0, 0.0, 0.0]);
    assert!(all_finite(&grad(&z.log_softmax(-1).slice(&kiln::s![.., 1]))));
    let labels = Tensor::new(&[[0.0f32, 0.0, 1.0]]);
    let ce = kiln::softmax_cross_entropy_with_logits(&z, &labels)?;
    assert_eq!(ce.to_vec::<f32>()?, vec![2000.0]);
    assert_eq!(grad(&ce), vec![1.0, 0.0, -1.0]); // softmax - labels
    let sparse = kiln::sparse_softmax_cross_entropy_with_logits(&z, &Tensor::new(&[2i64]))?;
    assert_eq!(sparse.to_vec::<f32>()?, vec![2000.0]);
    assert_eq!(grad(&sparse), vec![1.0, 0.0, -1.0]);
    // The naive formula overflows: -ln(exp(z) / sum(exp(z))) has a NaN gradient.
    let e = z.exp();
    let naive = -((&e / &e.sum(-1, true)).log() * &labels).sum_all();
    assert!(!all_finite(&grad(&naive)));
    // Bad labels are errors.
    assert!(kiln::sparse_softmax_cross_entropy_with_logits(&z, &Tensor::new(&[3i64])).is_err());
    assert!(kiln::sparse_softmax_cross_entropy_with_logits(&z, &Tensor::new(&[0.0f32])).is_err());
    assert!(kiln::softmax_cross_entropy_with_logits(&z, &Tensor::new(&[1.0f32])).is_err());
    Ok(())
}

#[test]
fn functional_grad_and_value_and_grad() -> Result<()> {
    let f = |a: &Tensor, b: &Tensor| 3.0 * a.square() + 2.0 * a * b;
    let g = kiln::grad(f).call((&Tensor::scalar(5.0f32), &Tensor::scalar(3.0f32)))?;
    assert_eq!((g[0].to_scalar::<f32>()?, g[1].to_scalar::<f32>()?), (36.0, 10.0));
    let (v, g) = kiln::value_and_grad(|x: &[Tensor]| x[0].sin().sum_all()).call(vec![Tensor::new(&[0.0f64, 1.0])])?;
    assert!(close(v.item()?, 1f64.sin()));
    assert_eq!(g[0].to_vec::<f64>()?, vec![1.0, 1f64.cos()]);
    // An unused argument gets zeros (JAX), and the wrong number of arguments is an Err.
    let g =
        kiln::grad(|x: &Tensor, _y: &Tensor| x.exp()).call((&Tensor::scalar(0.0f64), &Tensor::new(&[1.0f64, 2.0])))?;
    assert_eq!(g[1].to_vec::<f64>()?, vec![0.0, 0.0]);
    assert!(kiln::grad(|x: &Tensor| x.exp()).call((&Tensor::scalar(0.0f64), &Tensor::scalar(1.0f64))).is_err());
    // grad of grad: d2/dx2 tanh.
    let d2 = kiln::grad(|x: &Tensor| kiln::grad(|x: &Tensor| x.tanh()).call(x).unwrap().remove(0));
    let t = 0.7f64.tanh();
    assert!(close(d2.call(&Tensor::scalar(0.7f64))?[0].item()?, -2.0 * t * (1.0 - t * t)));
    Ok(())
}

fn mlp_params() -> Vec<Variable> {
    vec![
        Variable::new(Tensor::new(&[[0.5f64, -0.3, 0.8], [0.1, 0.9, -0.6]])),
        Variable::new(Tensor::new(&[0.05f64, -0.02, 0.1])),
        Variable::new(Tensor::new(&[[0.7f64, -0.4], [0.2, 0.6], [-0.5, 0.3]])),
    ]
}

/// One SGD step: forward, `tape.gradient`, `assign_sub`. Returns the loss.
fn train_step(params: &[Variable], x: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let tape = GradientTape::new();
    let h = (x.matmul(&params[0].read()) + params[1].read()).tanh();
    let logits = h.matmul(&params[2].read());
    let loss = kiln::sparse_softmax_cross_entropy_with_logits(&logits, labels)?.mean_all();
    let refs: Vec<&Variable> = params.iter().collect();
    let grads = tape.gradient(&loss, &refs)?;
    for (p, g) in params.iter().zip(grads) {
        p.assign_sub(&(g.expect("every parameter is used") * 0.1))?;
    }
    Ok(loss)
}

/// A whole training step traced into one `kiln::function` (tape, backward ops and updates in
/// one graph) gives the eager step's losses and parameters, for three steps, with both backends.
#[test]
fn traced_training_step_equals_eager() -> Result<()> {
    let x = Tensor::new(&[[1.0f64, 2.0], [-1.0, 0.5], [0.3, -0.7], [2.0, 1.0]]);
    let labels = Tensor::new(&[0i64, 1, 1, 0]);
    let eager = mlp_params();
    let eager_losses: Vec<f64> = (0..3).map(|_| train_step(&eager, &x, &labels).unwrap().item().unwrap()).collect();
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let params = mlp_params();
        let captured = params.clone();
        let step = kiln::function(move |x: &Tensor, y: &Tensor| train_step(&captured, x, y)).with_backend(backend);
        for (i, want) in eager_losses.iter().enumerate() {
            let got = step.call((&x, &labels))?.item()?;
            assert!(close(got, *want), "{backend:?} step {i}: loss {got} vs eager {want}");
        }
        assert_eq!(step.trace_count(), 1);
        let graph = step.graph((&x, &labels))?.to_text();
        assert!(graph.contains("assign_var") && graph.contains("matmul"), "{graph}");
        for (p, e) in params.iter().zip(&eager) {
            let (a, b) = (p.value(), e.value());
            for i in 0..a.len() {
                assert!(close(a.get_f64(i), b.get_f64(i)), "{backend:?}: parameter {} element {i}", p.name());
            }
        }
    }
    Ok(())
}

/// A compiled function called under a recording tape runs its closure eagerly, so the tape
/// sees its ops (TF records the call as one op; here its ops are inlined).
#[test]
fn tape_records_through_a_function_call() -> Result<()> {
    let f = kiln::function(|x: &Tensor| x.sin() * 2.0);
    let x = Tensor::scalar(0.4f64);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = f.call(&x)?;
    assert!(close(scalar(&tape.gradient_tensors(&y, &[&x])?[0]), 2.0 * 0.4f64.cos()));
    Ok(())
}

/// Nested tapes inside a traced function: the second derivative is part of the graph.
#[test]
fn second_derivative_inside_a_traced_function() -> Result<()> {
    let f = kiln::function(|x: &Tensor| -> Result<Tensor> {
        let outer = GradientTape::new();
        outer.watch(x);
        let inner = GradientTape::new();
        inner.watch(x);
        let y = x.powf(3.0).sum_all();
        let dy = inner.gradient_tensors(&y, &[x])?.remove(0).unwrap();
        Ok(outer.gradient_tensors(&dy.sum_all(), &[x])?.remove(0).unwrap())
    })
    .with_backend(Backend::Interpreter);
    let got = f.call(&Tensor::new(&[1.0f64, -2.0, 0.5]))?.to_vec::<f64>()?;
    assert_eq!(got, vec![6.0, -12.0, 3.0]);
    Ok(())
}

/// The gradients of `sum((a @ b)²)`.
fn product_grads(a: &Variable, b: &Variable) -> Result<Vec<Tensor>> {
    let tape = GradientTape::new();
    let y = a.read().matmul(&b.read());
    let loss = (&y * &y).sum_all();
    Ok(tape.gradient(&loss, &[a, b])?.into_iter().map(Option::unwrap).collect())
}

/// A product's gradients eagerly read the operands transposed in one gemm instead of
/// copying a transpose: the same values as the explicit `g @ bᵀ` and `aᵀ @ g` (batched and
/// broadcast shapes, f32, f64 and i64), and as the traced gradient.
#[test]
fn matmul_gradients_read_operands_transposed() -> Result<()> {
    let cases: [(&[usize], &[usize]); 4] =
        [(&[3, 4], &[4, 5]), (&[2, 3, 4], &[4, 5]), (&[3, 4], &[2, 4, 5]), (&[2, 1, 3, 4], &[3, 4, 2])];
    for dtype in [DType::F32, DType::F64] {
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let a = Variable::new(Tensor::random_normal(sa, dtype, 2 * i as u64));
            let b = Variable::new(Tensor::random_normal(sb, dtype, 2 * i as u64 + 1));
            let got = product_grads(&a, &b)?;
            // The explicit products on materialized transposes, with the broadcast summed away.
            let g = a.read().matmul(&b.read()) * 2.0;
            let ga = g.matmul(&b.read().t());
            let gb = a.read().t().matmul(&g);
            let sum_to = |x: &Tensor, shape: &[usize]| -> Result<Tensor> {
                let lead = x.rank() - shape.len();
                let axes: Vec<usize> =
                    (0..x.rank()).filter(|&d| d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)).collect();
                let s = if axes.is_empty() { x.clone() } else { x.try_sum(axes, true)? };
                s.try_reshape(shape.to_vec())
            };
            let want = [sum_to(&ga, sa)?, sum_to(&gb, sb)?];
            let (a2, b2) = (a.clone(), b.clone());
            let compiled: Vec<Tensor> = kiln::function(move || product_grads(&a2, &b2)).call(())?;
            for k in 0..2 {
                let f64s = |t: &Tensor| t.cast(DType::F64).to_vec::<f64>();
                let (g, w, c) = (f64s(&got[k])?, f64s(&want[k])?, f64s(&compiled[k])?);
                assert_eq!(got[k].shape(), want[k].shape(), "case {i} {dtype} operand {k}");
                let tol = if dtype == DType::F32 { 1e-4 } else { 1e-12 };
                for ((g, w), c) in g.iter().zip(&w).zip(&c) {
                    assert!((g - w).abs() <= tol * (1.0 + w.abs()), "case {i} {dtype} operand {k}: {g} vs {w}");
                    assert!(
                        (g - c).abs() <= tol * (1.0 + c.abs()),
                        "case {i} {dtype} operand {k}: eager {g}, traced {c}"
                    );
                }
            }
        }
    }
    let a = Tensor::new(&[[1i64, 2], [3, 4], [5, 6]]);
    let b = Tensor::new(&[[1i64, 0, 2], [0, 1, 3]]);
    assert_eq!(
        kiln::ir::interp::matmul_transposed(a.array().unwrap(), true, b.array().unwrap(), true)?.to_vec::<i64>()?,
        a.t().matmul(&b.t()).to_vec::<i64>()?
    );
    Ok(())
}
