//! Custom layers written Keras's way (issue 15, items 1-4): a `LayerState` tracks weights,
//! sublayers, regularization and `add_loss` losses and constraints; `build` runs once from
//! the first input's shape (also when that first call is traced); layers take and return
//! several tensors. The chapter's `MyDense`, its two-input/two-output layer, a composite
//! layer that writes no `losses`/`apply_constraints`, and `ReconstructingRegressor`.

use std::sync::{Arc, OnceLock};

use kiln::losses::{Loss, MeanSquaredError};
use kiln::nn::{constraints, regularizers, Dense, Layer, LayerState, WeightSpec};
use kiln::optim::{Optimizer, SGD};
use kiln::{DType, GradientTape, Result, Tensor, Variable};

/// The chapter's `MyDense`: the input size is learned from the first call.
struct MyDense {
    state: LayerState,
    units: usize,
    kernel: OnceLock<Variable>,
    bias: OnceLock<Variable>,
}

impl MyDense {
    fn new(units: usize) -> MyDense {
        MyDense { state: LayerState::new("my_dense"), units, kernel: OnceLock::new(), bias: OnceLock::new() }
    }
}

impl Layer for MyDense {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn build(&self, shapes: &[&[usize]]) -> Result<()> {
        let input = *shapes[0].last().expect("rank >= 1");
        let kernel = WeightSpec::new("kernel", &[input, self.units]).regularizer(regularizers::l2(0.01));
        let _ = self.kernel.set(self.state.add_weight(kernel)?);
        let bias = WeightSpec::new("bias", &[self.units]).initializer(kiln::nn::initializers::Zeros);
        let _ = self.bias.set(self.state.add_weight(bias)?);
        Ok(())
    }

    fn forward(&self, x: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let (k, b) = (self.kernel.get().expect("built"), self.bias.get().expect("built"));
        Ok(vec![x[0].try_matmul(&k.read())?.try_add(&b.read())?])
    }
}

#[test]
fn my_dense_builds_from_its_first_input_even_inside_a_trace() {
    let layer = Arc::new(MyDense::new(3));
    assert!(layer.variables().is_empty());
    let l2 = layer.clone();
    let f = kiln::function(move |x: &Tensor| l2.call(x, true));
    let x = Tensor::random_normal(&[4, 5], DType::F32, 1);
    let y = f.call(&x).unwrap();
    assert_eq!(y.shape(), &[4, 3]);
    let names: Vec<String> = layer.variables().iter().map(|v| v.name().to_string()).collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].starts_with("my_dense") && names[0].ends_with("/kernel"), "{names:?}");
    assert_eq!(layer.variables()[0].shape(), &[5, 3]);
    // Eager gives the same, and the L2 penalty is tracked without a `losses` method.
    let eager = layer.call(&x, true).unwrap();
    assert!((&eager - &y).abs().max_all().to_scalar::<f32>().unwrap() < 1e-6);
    let penalty = layer.losses()[0].to_scalar::<f32>().unwrap();
    let want = layer.variables()[0].read().square().sum_all().to_scalar::<f32>().unwrap() * 0.01;
    assert!((penalty - want).abs() < 1e-6);
    // Built once: a later call with another width is the matmul's error, not a rebuild.
    assert!(layer.call(&Tensor::ones(&[1, 7], DType::F32), true).is_err());
    assert_eq!(layer.variables().len(), 2);
}

/// A layer that holds a regularized, constrained `Dense` and writes none of `variables`,
/// `losses`, `apply_constraints` or `set_trainable`.
struct Composite {
    state: LayerState,
    inner: Arc<Dense>,
    head: Arc<MyDense>,
}

impl Composite {
    fn new() -> Composite {
        let state = LayerState::new("composite");
        let inner = state.track(
            Dense::new(4).seed(3).kernel_regularizer(regularizers::l2(1.0)).kernel_constraint(constraints::non_neg()),
        );
        let head = state.track(MyDense::new(1));
        Composite { state, inner, head }
    }
}

impl Layer for Composite {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let h = self.inner.call(&x[0], training)?.try_relu()?;
        Ok(vec![self.head.call(&h, training)?])
    }
}

#[test]
fn a_composite_layer_tracks_its_parts_losses_constraints_and_trainability() {
    let model = Composite::new();
    model.call(&Tensor::ones(&[2, 3], DType::F32), true).unwrap();
    assert_eq!(model.variables().len(), 4, "Dense kernel and bias, MyDense kernel and bias");
    // Both L2 penalties, the sublayer's included.
    let losses = model.losses();
    assert_eq!(losses.len(), 2);
    let kernel = model.inner.kernel().unwrap();
    let want = kernel.read().square().sum_all().to_scalar::<f32>().unwrap();
    assert!((losses[0].to_scalar::<f32>().unwrap() - want).abs() < 1e-5);
    assert!(kiln::nn::total_loss(&model, DType::F32).unwrap().to_scalar::<f32>().unwrap() > want);
    // The sublayer's constraint runs through the composite.
    kernel.assign(&(kernel.read() - 10.0)).unwrap();
    model.apply_constraints().unwrap();
    assert!(kernel.read().to_vec::<f32>().unwrap().iter().all(|&w| w >= 0.0));
    // Freezing the composite freezes its parts.
    model.set_trainable(false);
    assert!(model.trainable_variables().is_empty() && !model.inner.is_trainable());
    model.set_trainable(true);
    assert_eq!(model.trainable_variables().len(), 4);
}

/// The chapter's layer with two inputs and two outputs.
struct SumAndProduct {
    state: LayerState,
}

impl Layer for SumAndProduct {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        if x.len() != 2 {
            return Err(kiln::Error::invalid("sum_and_product", format!("takes 2 inputs, got {}", x.len())));
        }
        Ok(vec![x[0].try_add(&x[1])?, x[0].try_mul(&x[1])?])
    }
}

#[test]
fn a_layer_takes_and_returns_several_tensors() {
    let layer = Arc::new(SumAndProduct { state: LayerState::new("sum_and_product") });
    let (a, b) = (Tensor::new(&[1.0f32, 2.0]), Tensor::new(&[3.0f32, 4.0]));
    let out = layer.call_many(&[a.clone(), b.clone()], false).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![4.0, 6.0]);
    assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![3.0, 8.0]);
    let l2 = layer.clone();
    let f = kiln::function(move |x: &[Tensor]| l2.call_many(x, false));
    let compiled = f.call(&[a.clone(), b][..]).unwrap();
    assert_eq!(compiled[1].to_vec::<f32>().unwrap(), vec![3.0, 8.0]);
    // `call` on a one-in layer that needs two is that layer's error; on a two-out layer, ours.
    assert!(layer.call(&a, false).unwrap_err().to_string().contains("takes 2 inputs"));
}

/// The chapter's `ReconstructingRegressor`: hidden layers, an output, and a reconstruction
/// of the inputs whose error (`0.05 * mse`) is added with `add_loss` during the call.
struct ReconstructingRegressor {
    state: LayerState,
    hidden: Arc<Dense>,
    out: Arc<Dense>,
    reconstruct: Arc<Dense>,
}

impl ReconstructingRegressor {
    fn new(inputs: usize) -> ReconstructingRegressor {
        let state = LayerState::new("reconstructing_regressor");
        let hidden = state.track(Dense::new(8).activation("selu").seed(4));
        let out = state.track(Dense::new(1).seed(5));
        let reconstruct = state.track(Dense::new(inputs).seed(6));
        ReconstructingRegressor { state, hidden, out, reconstruct }
    }
}

impl Layer for ReconstructingRegressor {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let z = self.hidden.call(&x[0], training)?;
        let reconstruction = self.reconstruct.call(&z, training)?;
        let recon_loss = MeanSquaredError.call(&x[0], &reconstruction)?;
        self.state.add_loss(recon_loss.try_mul(&recon_loss.scalar_like(0.05))?);
        Ok(vec![self.out.call(&z, training)?])
    }
}

#[test]
fn add_loss_is_per_call_correct_when_compiled_and_never_stale() {
    let model = Arc::new(ReconstructingRegressor::new(3));
    let x = Tensor::random_normal(&[16, 3], DType::F32, 7);
    let y = x.sum(-1, true);
    // Eagerly: one added loss per call, replaced by the next call.
    model.call(&x, true).unwrap();
    model.call(&x, true).unwrap();
    assert_eq!(model.losses().len(), 1);
    let eager_added = model.losses()[0].to_scalar::<f32>().unwrap();
    assert!(eager_added > 0.0);
    // Compiled: the step's loss includes the added loss of that very call.
    let (m, opt) = (model.clone(), Arc::new(SGD::new(0.01)));
    let o = opt.clone();
    let step = kiln::function(move |x: &Tensor, y: &Tensor| -> Result<Vec<Tensor>> {
        let tape = GradientTape::new();
        let pred = m.call(x, true)?;
        let main = MeanSquaredError.call(y, &pred)?;
        let added = kiln::nn::total_loss(m.as_ref(), DType::F32)?;
        let loss = main.try_add(&added)?;
        o.minimize(&loss, &m.trainable_variables(), &tape)?;
        Ok(vec![main, added])
    });
    let first = step.call((&x, &y)).unwrap();
    assert!((first[1].to_scalar::<f32>().unwrap() - eager_added).abs() < 1e-5, "the same added loss as eagerly");
    let total = |out: &[Tensor]| out[0].to_scalar::<f32>().unwrap() + out[1].to_scalar::<f32>().unwrap();
    let mut last = first.clone();
    for _ in 0..20 {
        last = step.call((&x, &y)).unwrap();
    }
    assert!(total(&last) < total(&first), "training reduced the whole loss");
    // After the compiled steps, no symbolic tensor is left behind: the eager call's loss is
    // the one listed (the traced one belonged to the trace).
    for l in model.losses() {
        l.item().unwrap();
    }
    model.call(&x, true).unwrap();
    let after = model.losses()[0].to_scalar::<f32>().unwrap();
    let by_hand = {
        let r = model.reconstruct.call(&model.hidden.call(&x, true).unwrap(), true).unwrap();
        (r - &x).square().mean_all().to_scalar::<f32>().unwrap() * 0.05
    };
    assert!((after - by_hand).abs() < 1e-6, "the added loss of the latest call: {after} vs {by_hand}");
}

/// A layer that implements neither `forward` nor `call` fails with a message, not a stack
/// overflow; a failed build runs again on the next call.
#[test]
fn missing_forward_and_failing_build_are_clear_errors() {
    struct Empty(LayerState);
    impl Layer for Empty {
        fn state(&self) -> Option<&LayerState> {
            Some(&self.0)
        }
    }
    let e = Empty(LayerState::new("empty")).call(&Tensor::ones(&[1], DType::F32), false).unwrap_err();
    assert!(e.to_string().contains("implements neither"), "{e}");

    struct NeedsMatrix(LayerState);
    impl Layer for NeedsMatrix {
        fn state(&self) -> Option<&LayerState> {
            Some(&self.0)
        }
        fn build(&self, shapes: &[&[usize]]) -> Result<()> {
            if shapes[0].len() != 2 {
                return Err(kiln::Error::invalid("needs_matrix", "wants rank 2"));
            }
            self.0.add_weight(WeightSpec::new("w", &[shapes[0][1], 1])).map(|_| ())
        }
        fn forward(&self, x: &[Tensor], _: bool) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].clone()])
        }
    }
    let layer = NeedsMatrix(LayerState::new("needs_matrix"));
    assert!(layer.call(&Tensor::ones(&[3], DType::F32), false).is_err());
    assert!(!layer.state().unwrap().is_built());
    layer.call(&Tensor::ones(&[2, 3], DType::F32), false).unwrap();
    assert!(layer.state().unwrap().is_built() && layer.variables().len() == 1);
}
