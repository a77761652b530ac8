//! Custom training loops: the whole step (forward, loss with regularization, gradients,
//! optimizer update, constraints, metric updates) compiled as one `kiln::function` equals
//! the same step run eagerly, over 50 steps; and the loop learns.

use std::sync::Arc;

use kiln::losses::{Loss, SparseCategoricalCrossentropy};
use kiln::metrics::{LabelMetric, Mean, Metric, SparseCategoricalAccuracy};
use kiln::nn::{constraints, regularizers, BatchNormalization, Dense, Dropout, Layer, Sequential};
use kiln::optim::{Adam, Optimizer};
use kiln::{DType, GradientTape, Result, Tensor, Variable};

struct Setup {
    model: Arc<Sequential>,
    optimizer: Arc<Adam>,
    loss: Arc<Mean>,
    accuracy: Arc<SparseCategoricalAccuracy>,
}

fn setup() -> Setup {
    let model = Sequential::new()
        // No bias before batch norm (as in Keras practice): BN cancels it, so its exact
        // gradient is 0 and Adam would turn the rounding noise in it into lr-sized steps,
        // making that one variable differ between any two evaluation orders.
        .add(Dense::new(16).seed(1).use_bias(false).kernel_regularizer(regularizers::l2(1e-3)))
        .add(BatchNormalization::new())
        .add(kiln::nn::Lambda::new(|x| x.relu()))
        .add(Dropout::new(0.1).seed(2))
        .add(Dense::new(3).seed(3).kernel_constraint(constraints::max_norm(2.0, 0)));
    Setup {
        model: Arc::new(model),
        optimizer: Arc::new(Adam::new(0.02)),
        loss: Arc::new(Mean::new("loss")),
        accuracy: Arc::new(SparseCategoricalAccuracy::new()),
    }
}

fn train_step(s: &Setup, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let tape = GradientTape::new();
    let logits = s.model.call(x, true)?;
    let loss = SparseCategoricalCrossentropy::new(true)
        .call(y, &logits)?
        .try_add(&kiln::nn::total_loss(s.model.as_ref(), DType::F32)?)?;
    let vars = s.model.trainable_variables();
    let grads = tape.gradient(&loss, &vars.iter().collect::<Vec<_>>())?;
    let pairs: Vec<(Tensor, &Variable)> = grads.into_iter().zip(&vars).filter_map(|(g, v)| g.map(|g| (g, v))).collect();
    assert_eq!(pairs.len(), vars.len(), "every trainable variable gets a gradient");
    s.optimizer.apply_gradients(&pairs)?;
    s.model.apply_constraints()?;
    s.loss.update_state(&loss)?;
    s.accuracy.update_state(y, &logits)?;
    Ok(loss)
}

/// Three Gaussian blobs in 4-d, labelled by blob.
fn data() -> (Tensor, Tensor) {
    let n = 48;
    let noise = Tensor::random_normal(&[n, 4], DType::F32, 11) * 0.5;
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let centers: Vec<f32> =
        labels.iter().flat_map(|&l| (0..4).map(move |j| if j as i64 == l { 2.0 } else { -1.0 })).collect();
    let x = noise + Tensor::from_vec(centers, &[n, 4]).unwrap();
    (x, Tensor::from_vec(labels, &[n]).unwrap())
}

fn run(compiled: bool) -> (Vec<Vec<f32>>, Vec<f32>, f64) {
    let s = Arc::new(setup());
    let (x, y) = data();
    let step = {
        let s = s.clone();
        kiln::function(move |x: &Tensor, y: &Tensor| train_step(&s, x, y))
    };
    let mut losses = Vec::new();
    for _ in 0..50 {
        let l = if compiled { step.call((&x, &y)).unwrap() } else { train_step(&s, &x, &y).unwrap() };
        losses.push(l.to_scalar::<f32>().unwrap());
    }
    if compiled {
        assert_eq!(step.trace_count(), 1);
    }
    let mut state: Vec<Vec<f32>> = s
        .model
        .variables()
        .iter()
        .filter(|v| v.dtype() == DType::F32)
        .map(|v| v.read().to_vec::<f32>().unwrap())
        .collect();
    state.push(vec![s.loss.result().item().unwrap() as f32, s.accuracy.result().item().unwrap() as f32]);
    assert_eq!(s.optimizer.iterations().read().to_scalar::<i64>().unwrap(), 50);
    (state, losses, s.accuracy.result().item().unwrap())
}

#[test]
fn fifty_compiled_steps_equal_fifty_eager_steps() {
    let (eager, eager_losses, _) = run(false);
    let (compiled, compiled_losses, _) = run(true);
    // Same ops on the same values; the compiled graph may reassociate or fuse float ops, so
    // allow float32 rounding accumulated over 50 Adam steps.
    for (i, (a, b)) in eager_losses.iter().zip(&compiled_losses).enumerate() {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "step {i}: eager loss {a}, compiled {b}");
    }
    for (a, b) in eager.iter().zip(&compiled) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "eager {a:?}\ncompiled {b:?}");
        }
    }
}

#[test]
fn the_compiled_loop_learns_and_respects_constraints() {
    let (state, losses, accuracy) = run(true);
    assert!(losses[49] < 0.5 * losses[0], "loss {} -> {}", losses[0], losses[49]);
    assert!(accuracy > 0.8, "running accuracy {accuracy}");
    // The last Dense kernel [16, 3]: every column's norm at most 2 (MaxNorm after each update).
    let kernel = &state[state.len() - 3];
    for j in 0..3 {
        let norm: f32 = (0..16).map(|i| kernel[i * 3 + j].powi(2)).sum::<f32>().sqrt();
        assert!(norm <= 2.0 + 1e-4, "column {j} norm {norm}");
    }
}
