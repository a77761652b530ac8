//! Streaming metrics against Keras 3 (jax backend, float32): tests/golden/keras_metrics.json,
//! made by tests/golden/keras_metrics.py. Each metric is fed two batches, eagerly and through
//! a compiled update step, and its result compared to 2e-6 relative; Precision and Recall keep
//! the state Keras keeps (true positives and false positives, or false negatives).

use std::sync::Arc;

use kiln::metrics::{
    Curve, LabelMetric, MeanAbsoluteError, MeanMetricWrapper, MeanSquaredError, Metric, Precision, Recall,
    RootMeanSquaredError, AUC,
};
use kiln::Tensor;
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_metrics.json")).unwrap()
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap() as f32).collect();
    Tensor::from_vec(data, &shape).unwrap()
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 2e-6 * want.abs().max(1.0), "{what}: kiln {got}, keras {want}");
}

/// A metric's update with optional weights, as a closure over the batch's tensors.
type Update = Arc<dyn Fn(&[Tensor]) -> kiln::Result<()> + Send + Sync>;

/// Feeds both batches (`keys` name the tensors, `weighted` adds the weight) eagerly, or
/// through one compiled update step, and returns the result.
fn feed(g: &Value, keys: [&str; 2], weighted: bool, compiled: bool, update: Update) -> Vec<Tensor> {
    let step = kiln::function({
        let update = update.clone();
        move |a: &[Tensor]| -> kiln::Result<()> { update(a) }
    });
    let mut args = Vec::new();
    for b in g["batches"].as_array().unwrap() {
        let mut a: Vec<Tensor> = keys.iter().map(|k| tensor(&b[*k])).collect();
        if weighted {
            a.push(tensor(&b["weight"]));
        }
        if compiled {
            step.call(a.as_slice()).unwrap();
        } else {
            update(&a).unwrap();
        }
        args.push(a);
    }
    args.into_iter().flatten().collect()
}

#[test]
fn regression_metrics_and_wrappers_match_keras() {
    let g = golden();
    for compiled in [false, true] {
        for weighted in [false, true] {
            let mae = Arc::new(MeanAbsoluteError::new());
            let mse = Arc::new(MeanSquaredError::new());
            let rmse = Arc::new(RootMeanSquaredError::new());
            let custom = Arc::new(MeanMetricWrapper::new("max_abs_error", |t: &Tensor, p: &Tensor| {
                p.try_sub(t)?.try_abs()?.try_max(-1, false)
            }));
            let (a, b, c, d) = (mae.clone(), mse.clone(), rmse.clone(), custom.clone());
            let update: Update = Arc::new(move |x: &[Tensor]| {
                let w = x.get(2);
                a.update_state_weighted(&x[0], &x[1], w)?;
                b.update_state_weighted(&x[0], &x[1], w)?;
                c.update_state_weighted(&x[0], &x[1], w)?;
                d.update_state_weighted(&x[0], &x[1], w)
            });
            feed(&g, ["y_reg", "p_reg"], weighted, compiled, update);
            let suffix = if weighted { "_weighted" } else { "" };
            let results: [(&str, &dyn Metric); 4] = [
                ("mae", mae.as_ref()),
                ("mse", mse.as_ref()),
                ("rmse", rmse.as_ref()),
                ("max_abs_error", custom.as_ref()),
            ];
            for (name, m) in results {
                let want = g["results"][format!("{name}{suffix}")].as_f64().unwrap();
                close(m.result().item().unwrap(), want, &format!("{name}{suffix} compiled={compiled}"));
            }
        }
    }
}

#[test]
fn auc_precision_and_recall_match_keras() {
    let g = golden();
    for compiled in [false, true] {
        let metrics: Vec<(&str, Arc<dyn LabelMetric>)> = vec![
            ("auc_roc_200", Arc::new(AUC::new())),
            ("auc_roc_7", Arc::new(AUC::with_options(7, Curve::Roc).unwrap())),
            ("auc_pr_200", Arc::new(AUC::with_options(200, Curve::Pr).unwrap())),
            ("precision", Arc::new(Precision::new())),
            ("recall", Arc::new(Recall::new())),
        ];
        let ms: Vec<Arc<dyn LabelMetric>> = metrics.iter().map(|(_, m)| m.clone()).collect();
        let update: Update = Arc::new(move |x: &[Tensor]| ms.iter().try_for_each(|m| m.update_state(&x[0], &x[1])));
        feed(&g, ["y_bin", "p_score"], false, compiled, update);
        for (name, m) in &metrics {
            let want = g["results"][*name].as_f64().unwrap();
            close(m.result().item().unwrap(), want, &format!("{name} compiled={compiled}"));
        }
        for (name, m) in &metrics[3..] {
            let state = &g["state"][*name];
            let vars = m.variables();
            assert_eq!(vars.len(), 2, "{name} keeps two counts, as Keras");
            for v in vars {
                let key = v.name().rsplit('/').next().unwrap().to_string();
                assert_eq!(
                    v.read().reshape([1]).to_vec::<f32>().unwrap(),
                    tensor(&state[&key]).to_vec::<f32>().unwrap(),
                    "{name} {key}"
                );
            }
        }
    }
    assert!(AUC::with_options(1, Curve::Roc).is_err());
    assert!(AUC::new().update_state(&Tensor::new(&[1.0f32]), &Tensor::new(&[0.5f32, 0.2])).is_err());
}
