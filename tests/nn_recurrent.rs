//! SimpleRNN, GRU and LSTM against Keras 3 (jax backend): tests/golden/keras_rnn.json, made by
//! tests/golden/keras_rnn.py with Keras's weights set explicitly. Outputs (last step and whole
//! sequence) and the gradients of `sum(output_sequence * w_out)` with respect to the input and
//! every weight are checked eagerly and inside a compiled function, to 1e-5 (float32, a few
//! dozen roundings per value computed in a different order). The layers' own parts — the
//! orthogonal initializer, Keras's default LSTM bias, the errors — are tested here too.

use kiln::nn::initializers::{Initializer, Orthogonal};
use kiln::nn::{Layer, SimpleRNN, GRU, LSTM};
use kiln::{DType, GradientTape, Tensor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_rnn.json")).unwrap()
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap() as f32).collect();
    Tensor::from_vec(data, &shape).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{what}[{i}]: kiln {a:e}, keras {b:e}");
    }
}

/// A layer of each kind, built for the golden input and given Keras's weights.
fn layer(name: &str, return_sequences: bool, g: &Value) -> Box<dyn Layer> {
    let layer: Box<dyn Layer> = match name {
        "simple_rnn" => Box::new(SimpleRNN::new(4).return_sequences(return_sequences)),
        "gru" => Box::new(GRU::new(4).return_sequences(return_sequences)),
        "lstm" => Box::new(LSTM::new(4).return_sequences(return_sequences)),
        _ => unreachable!(),
    };
    layer.call(&tensor(&g["x"]), false).unwrap();
    for v in layer.variables() {
        let key = v.name().rsplit('/').next().unwrap().to_string();
        v.assign(&tensor(&g["layers"][name]["weights"][&key])).unwrap();
    }
    layer
}

const KINDS: [&str; 3] = ["simple_rnn", "gru", "lstm"];

#[test]
fn outputs_match_keras_eager_and_compiled() {
    let g = golden();
    let x = tensor(&g["x"]);
    for name in KINDS {
        for (seq, key) in [(false, "output_last"), (true, "output_sequence")] {
            let want = tensor(&g["layers"][name][key]);
            let l = layer(name, seq, &g);
            assert_close(&l.call(&x, false).unwrap(), &want, &format!("{name} {key} eager"));
            let f = kiln::function(move |x: &Tensor| l.call(x, false));
            assert_close(&f.call(&x).unwrap(), &want, &format!("{name} {key} compiled"));
        }
    }
}

/// The loss of the golden file and its gradients with respect to `x` and each weight.
fn loss_and_grads(l: &dyn Layer, x: &Tensor, w_out: &Tensor) -> kiln::Result<Vec<Tensor>> {
    let tape = GradientTape::persistent();
    tape.watch(x);
    let loss = (l.call(x, true)? * w_out).sum_all();
    let vars = l.variables();
    let mut out = vec![loss.clone(), tape.gradient_tensors(&loss, &[x])?[0].clone().unwrap()];
    out.extend(tape.gradient(&loss, &vars.iter().collect::<Vec<_>>())?.into_iter().map(Option::unwrap));
    Ok(out)
}

#[test]
fn gradients_match_keras_eager_and_compiled() {
    let g = golden();
    let (x, w_out) = (tensor(&g["x"]), tensor(&g["w_out"]));
    for name in KINDS {
        let l: std::sync::Arc<dyn Layer> = layer(name, true, &g).into();
        let want = &g["layers"][name];
        let keys: Vec<String> =
            l.variables().iter().map(|v| v.name().rsplit('/').next().unwrap().to_string()).collect();
        let eager = loss_and_grads(l.as_ref(), &x, &w_out).unwrap();
        let l2 = l.clone();
        let w2 = w_out.clone();
        let f = kiln::function(move |x: &Tensor| loss_and_grads(l2.as_ref(), x, &w2));
        let compiled = f.call(&x).unwrap();
        for (how, got) in [("eager", &eager), ("compiled", &compiled)] {
            let loss = got[0].to_scalar::<f32>().unwrap() as f64;
            let want_loss = want["loss"].as_f64().unwrap();
            assert!(
                (loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0),
                "{name} loss {how}: {loss} vs {want_loss}"
            );
            assert_close(&got[1], &tensor(&want["grad"]["x"]), &format!("{name} d/dx {how}"));
            for (key, grad) in keys.iter().zip(&got[2..]) {
                assert_close(grad, &tensor(&want["grad"][key]), &format!("{name} d/d{key} {how}"));
            }
        }
    }
}

#[test]
fn lstm_default_bias_is_keras_unit_forget_bias() {
    let g = golden();
    let l = LSTM::new(4);
    l.call(&tensor(&g["x"]), false).unwrap();
    assert_close(&l.bias().unwrap().read(), &tensor(&g["layers"]["lstm"]["default_bias"]), "default bias");
    let plain = LSTM::new(4).unit_forget_bias(false);
    plain.call(&tensor(&g["x"]), false).unwrap();
    assert_eq!(plain.bias().unwrap().read().sum_all().to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn orthogonal_initializer_is_orthonormal_and_seeded() {
    for shape in [[6usize, 6], [4, 12], [12, 4]] {
        let w = Orthogonal::new(9).init(&shape, DType::F64).unwrap();
        // Orthonormal rows for a wide matrix, columns for a tall one.
        let gram = if shape[0] <= shape[1] { w.matmul(&w.t()) } else { w.t().matmul(&w) };
        let n = shape[0].min(shape[1]);
        let err = (&gram - &Tensor::eye(n, DType::F64)).abs().max_all().to_scalar::<f64>().unwrap();
        assert!(err < 1e-12, "{shape:?}: {err}");
        let again = Orthogonal::new(9).init(&shape, DType::F64).unwrap();
        assert_eq!(w.to_vec::<f64>().unwrap(), again.to_vec::<f64>().unwrap());
    }
    let other = Orthogonal::new(10).init(&[6, 6], DType::F64).unwrap();
    assert_ne!(
        other.to_vec::<f64>().unwrap(),
        Orthogonal::new(9).init(&[6, 6], DType::F64).unwrap().to_vec::<f64>().unwrap()
    );
    assert!(Orthogonal::new(1).init(&[3], DType::F32).is_err());
    assert!(Orthogonal::new(1).init(&[3, 3], DType::I32).is_err());
}

#[test]
fn default_weights_have_keras_shapes_and_names() {
    let x = Tensor::ones(&[2, 3, 5], DType::F32);
    let gru = GRU::new(4).with_name("enc");
    gru.call(&x, false).unwrap();
    let shapes: Vec<(String, Vec<usize>)> =
        gru.variables().iter().map(|v| (v.name().to_string(), v.shape().to_vec())).collect();
    let want = [("enc/kernel", vec![5, 12]), ("enc/recurrent_kernel", vec![4, 12]), ("enc/bias", vec![2, 12])];
    assert_eq!(shapes, want.map(|(n, s)| (n.to_string(), s)));
    let lstm = LSTM::new(3).use_bias(false);
    lstm.call(&x, false).unwrap();
    assert_eq!(lstm.variables().len(), 2);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let gru = GRU::new(4);
    let e = gru.call(&Tensor::ones(&[2, 5], DType::F32), false).unwrap_err().to_string();
    assert!(e.contains("[batch, time, features]"), "{e}");
    let e = gru.call(&Tensor::ones(&[2, 5, 3], DType::F64), false).unwrap_err().to_string();
    assert!(e.contains("f32"), "{e}");
    gru.call(&Tensor::ones(&[2, 5, 3], DType::F32), false).unwrap();
    let e = gru.call(&Tensor::ones(&[2, 5, 7], DType::F32), false).unwrap_err().to_string();
    assert!(e.contains("built for 3 features, got 7"), "{e}");
}

#[test]
fn a_gru_step_traces_to_one_scan_and_its_gradient_to_one_more() {
    let gru = std::sync::Arc::new(GRU::new(8).seed(3));
    let x = Tensor::random_normal(&[4, 6, 5], DType::F32, 2);
    gru.call(&x, false).unwrap();
    let g2 = gru.clone();
    let step = kiln::function(move |x: &Tensor| -> kiln::Result<Vec<Tensor>> {
        let tape = GradientTape::new();
        let loss = g2.call(x, true)?.square().mean_all();
        let vars = g2.variables();
        let grads = tape.gradient(&loss, &vars.iter().collect::<Vec<_>>())?;
        Ok(grads.into_iter().map(Option::unwrap).collect())
    });
    let text = step.graph(&x).unwrap().to_text();
    let scans = text.lines().filter(|l| l.contains("= scan")).count();
    assert_eq!(scans, 2, "forward scan and its reverse:\n{text}");
    // More time steps, same graph size.
    let longer = step.graph(&Tensor::random_normal(&[4, 60, 5], DType::F32, 2)).unwrap().to_text();
    assert_eq!(longer.lines().count(), text.lines().count());
}

#[test]
fn simple_rnn_in_f64_matches_finite_differences() {
    let rnn = SimpleRNN::new(3).dtype(DType::F64).return_sequences(true).seed(4);
    let x = Tensor::random_normal(&[2, 4, 3], DType::F64, 5);
    let loss = |rnn: &SimpleRNN| rnn.call(&x, false).unwrap().sin().sum_all().to_scalar::<f64>().unwrap();
    loss(&rnn);
    let tape = GradientTape::new();
    let l = rnn.call(&x, false).unwrap().sin().sum_all();
    let vars = rnn.variables();
    let grads = tape.gradient(&l, &vars.iter().collect::<Vec<_>>()).unwrap();
    let eps = 1e-6;
    for (v, g) in vars.iter().zip(grads) {
        let g = g.unwrap().to_vec::<f64>().unwrap();
        let base = v.read().to_vec::<f64>().unwrap();
        for i in 0..base.len() {
            let shifted = |d: f64| {
                let mut w = base.clone();
                w[i] += d;
                v.assign(&Tensor::from_vec(w, v.shape()).unwrap()).unwrap();
                loss(&rnn)
            };
            let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            v.assign(&Tensor::from_vec(base.clone(), v.shape()).unwrap()).unwrap();
            assert!((fd - g[i]).abs() < 1e-7 * fd.abs().max(1.0), "{}[{i}]: fd {fd}, tape {}", v.name(), g[i]);
        }
    }
}
