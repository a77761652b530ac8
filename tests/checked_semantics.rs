//! Results that must agree exactly (or both fail) eagerly, on the interpreter backend and
//! compiled: exact integer means, finite float means, checked class labels, dead failing
//! ops, and Variable creation on retrace (issue 12, items 7, 8, 10, 11).

mod common;

use kiln::{Backend, DType, Tensor};

const BACKENDS: [Backend; 2] = [Backend::Interpreter, Backend::Compiled];

/// `f(x)` eagerly and traced on each backend.
fn everywhere(x: &Tensor, f: fn(&Tensor) -> Tensor) -> Vec<(String, Tensor)> {
    let mut out = vec![("eager".to_string(), f(x))];
    for b in BACKENDS {
        let g = kiln::function(move |x: &Tensor| f(x)).with_backend(b);
        out.push((format!("{b:?}"), g.call(x).unwrap_or_else(|e| panic!("{b:?}: {e}"))));
    }
    out
}

/// The truncated exact mean of each row of `rows`.
fn exact_means(rows: &[Vec<i64>]) -> Vec<i64> {
    rows.iter().map(|r| (r.iter().map(|&v| v as i128).sum::<i128>() / r.len() as i128) as i64).collect()
}

fn assert_int_means(x: &Tensor, rows: &[Vec<i64>], f: fn(&Tensor) -> Tensor) {
    let want = exact_means(rows);
    for (what, got) in everywhere(x, f) {
        let got = got.cast(DType::I64).to_vec::<i64>().unwrap();
        assert_eq!(got, want, "{what}: mean of {:?}", x.tensor_type());
    }
}

#[test]
fn i32_mean_is_exact_small_and_large() {
    // 4 elements: the graph kernel; 4096: also the eager one-op kernel.
    for n in [4usize, 4096] {
        let x = Tensor::fill(&[n], 2e9, DType::I32);
        assert_int_means(&x, &[vec![2_000_000_000; n]], |x| x.mean_all());
    }
}

/// Values near both ends of the dtype, mixed signs, so that sums overflow either way and a
/// negative mean truncates toward zero.
fn extreme(n: usize, max: i64) -> Vec<i64> {
    (0..n).map(|i| if i % 3 == 2 { -(max - i as i64 % 7) } else { max - i as i64 % 5 }).collect()
}

#[test]
fn integer_means_are_exact_over_inner_and_outer_axes() {
    for (d, max) in [(DType::I32, i32::MAX as i64), (DType::I64, i64::MAX)] {
        let (r, c) = (5usize, 1024usize);
        let v = extreme(r * c, max);
        let x = match d {
            DType::I32 => Tensor::from_vec(v.iter().map(|&a| a as i32).collect(), &[r, c]).unwrap(),
            _ => Tensor::from_vec(v.clone(), &[r, c]).unwrap(),
        };
        let rows: Vec<Vec<i64>> = v.chunks(c).map(<[i64]>::to_vec).collect();
        assert_int_means(&x, &rows, |x| x.mean(&[1], false));
        let cols: Vec<Vec<i64>> = (0..c).map(|j| (0..r).map(|i| v[i * c + j]).collect()).collect();
        assert_int_means(&x, &cols, |x| x.mean(&[0], false));
        let all = vec![v.clone()];
        assert_int_means(&x, &all, |x| x.mean_all());
        // A negative mean truncates toward zero: -7/2 is -3.
        let neg = Tensor::from_vec(vec![-3i64, -4], &[2]).unwrap().cast(d);
        assert_int_means(&neg, &[vec![-3, -4]], |x| x.mean_all());
        // Through a fused producer: the negation is inside the kernel.
        assert_int_means(&x, &[v.iter().map(|a| a.wrapping_neg()).collect()], |x| x.neg().mean_all());
    }
}

#[test]
fn integer_sums_wrap_on_every_backend() {
    let x = Tensor::fill(&[4], 2e9, DType::I32);
    let want = 2_000_000_000i32.wrapping_mul(4);
    for (what, got) in everywhere(&x, |x| x.sum_all()) {
        assert_eq!(got.to_vec::<i32>().unwrap(), vec![want], "{what}");
    }
}

#[test]
fn float_means_of_huge_values_stay_finite() {
    for (d, v) in [(DType::F32, 3e38), (DType::F64, 1e308)] {
        for shape in [vec![5usize], vec![4096], vec![7, 8], vec![8, 7]] {
            let x = Tensor::fill(&shape, v, d);
            for f in [|x: &Tensor| x.mean_all(), |x: &Tensor| x.mean(&[0], false), |x: &Tensor| x.mean(&[-1], true)] {
                let results = everywhere(&x, f);
                for (what, got) in &results {
                    let a = got.array().unwrap();
                    for i in 0..a.len() {
                        let m = a.get_f64(i);
                        assert!(
                            ((m - v) / v).abs() < common::tolerance(d).0,
                            "{what}: mean of {d}{shape:?} filled with {v:e} is {m:e}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn float_means_agree_within_tolerance() {
    for shape in [vec![3usize, 4097], vec![4097, 3], vec![33, 2, 65]] {
        // Positive (no cancellation): the tolerance is relative.
        let x = (common::rand_f32(&shape, 7) + 3.0) * 1e30;
        common::assert_equivalent(
            |a: &[Tensor]| vec![a[0].mean(&[0], false), a[0].mean(&[-1], true), a[0].mean_all()],
            &[x],
            &[],
        );
    }
}

// ---- Item 8: out-of-range class labels fail compiled code too.

fn logits() -> Tensor {
    Tensor::new(&[[2.0f32, 0.0, 1.0], [0.0, 2.0, 1.0]])
}

#[test]
fn out_of_range_labels_fail_on_every_backend() {
    for bad in [7i64, -1, 3] {
        let labels = Tensor::new(&[0i64, bad]);
        let e = kiln::sparse_softmax_cross_entropy_with_logits(&logits(), &labels).unwrap_err();
        assert!(e.to_string().contains("out of range"), "eager: {e}");
        for b in BACKENDS {
            let nn = kiln::function(|p: &Tensor, y: &Tensor| kiln::sparse_softmax_cross_entropy_with_logits(p, y))
                .with_backend(b);
            let e = nn.call((&logits(), &labels)).expect_err("nn loss with a bad label");
            assert!(e.to_string().contains("out of range"), "{b:?}: {e}");
            let loss = kiln::losses::SparseCategoricalCrossentropy::new(true);
            let keras = kiln::function(move |y: &Tensor, p: &Tensor| {
                use kiln::losses::Loss;
                loss.call(y, p)
            })
            .with_backend(b);
            assert!(keras.call((&labels, &logits())).is_err(), "{b:?}: SparseCategoricalCrossentropy");
            // Valid labels still give the eager values.
            let good = Tensor::new(&[0i64, 2]);
            let want = kiln::sparse_softmax_cross_entropy_with_logits(&logits(), &good).unwrap();
            common::assert_close(&want, &nn.call((&logits(), &good)).unwrap(), &format!("{b:?}"));
        }
    }
}

#[test]
fn out_of_range_labels_leave_metric_state_unchanged() {
    use kiln::metrics::{LabelMetric, Metric, SparseCategoricalAccuracy};
    use std::sync::Arc;
    for b in BACKENDS {
        let acc = Arc::new(SparseCategoricalAccuracy::new());
        let a = acc.clone();
        let update = kiln::function(move |y: &Tensor, p: &Tensor| a.update_state(y, p)).with_backend(b);
        update.call((&Tensor::new(&[0i64, 1]), &logits())).unwrap();
        let before: Vec<Vec<f32>> = acc.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect();
        assert!(update.call((&Tensor::new(&[0i64, 9]), &logits())).is_err(), "{b:?}");
        let after: Vec<Vec<f32>> = acc.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect();
        assert_eq!(before, after, "{b:?}: a failed update must not count");
        assert!(acc.update_state(&Tensor::new(&[0i64, 9]), &logits()).is_err(), "eager");
    }
}

#[test]
fn a_compiled_training_step_with_a_bad_label_fails_and_keeps_the_weights() {
    use kiln::data::Dataset;
    use kiln::losses::SparseCategoricalCrossentropy;
    use kiln::metrics::SparseCategoricalAccuracy;
    use kiln::nn::{Dense, Layer, Sequential};
    use kiln::optim::SGD;
    use kiln::training::Trainer;
    use std::sync::Arc;
    let model = Arc::new(Sequential::new().add(Dense::new(3).seed(1)));
    let trainer = Trainer::new(
        model.clone(),
        Arc::new(SparseCategoricalCrossentropy::new(true)),
        Arc::new(SGD::new(0.1)),
        vec![Arc::new(SparseCategoricalAccuracy::new())],
    );
    let x = Tensor::random_normal(&[8, 4], DType::F32, 3);
    let good = Dataset::from_tensors(&[x.clone(), Tensor::new(&[0i64, 1, 2, 0, 1, 2, 0, 1])]).unwrap().batch(8, false);
    trainer.fit(&good, 1, None).unwrap();
    let weights =
        |m: &Sequential| -> Vec<Vec<f32>> { m.variables().iter().map(|v| v.read().to_vec().unwrap()).collect() };
    let before = weights(&model);
    let bad = Dataset::from_tensors(&[x, Tensor::new(&[0i64, 1, 2, 0, 7, 2, 0, 1])]).unwrap().batch(8, false);
    let e = trainer.fit(&bad, 1, None).expect_err("a label of 7 for 3 classes");
    assert!(e.to_string().contains("out of range"), "{e}");
    assert_eq!(weights(&model), before, "the failed step must not commit");
}

// ---- Item 10: a dead op that would fail is pruned by both graph backends.

#[test]
fn dead_failing_ops_are_pruned_on_both_backends() {
    for b in BACKENDS {
        let v = kiln::Variable::new(Tensor::new(&[0.0f32, 0.0]));
        let w = v.clone();
        let f = kiln::function(move |x: &Tensor, i: &Tensor| -> kiln::Result<Tensor> {
            let _unused_gather = x.try_gather(&Tensor::new(&[5i64]), 0)?;
            let _unused_div = i.try_div(&i.zeros_like())?;
            w.assign(&(x * 2.0))?;
            Ok(x + 1.0)
        })
        .with_backend(b);
        let x = Tensor::new(&[1.0f32, 2.0]);
        let i = Tensor::new(&[1i32, 2]);
        let y = f.call((&x, &i)).unwrap_or_else(|e| panic!("{b:?}: {e}"));
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 3.0], "{b:?}");
        assert_eq!(v.read().to_vec::<f32>().unwrap(), vec![2.0, 4.0], "{b:?}: the write commits");
        // Eagerly every op runs when called, so the same ops fail at once.
        assert!(x.try_gather(&Tensor::new(&[5i64]), 0).is_err());
        assert!(i.try_div(&i.zeros_like()).is_err());
    }
}

#[test]
fn live_failing_ops_fail_on_both_backends_and_commit_nothing() {
    for b in BACKENDS {
        let v = kiln::Variable::new(Tensor::new(&[0i32, 0]));
        let w = v.clone();
        let f = kiln::function(move |i: &Tensor| -> kiln::Result<Tensor> {
            w.assign(&(i + i))?;
            i.try_div(&i.zeros_like())
        })
        .with_backend(b);
        assert!(f.call(&Tensor::new(&[1i32, 2])).is_err(), "{b:?}");
        assert_eq!(v.read().to_vec::<i32>().unwrap(), vec![0, 0], "{b:?}");
    }
}

// ---- Item 11: Variables may be created on a function's first trace only, init_scope too.

thread_local! {
    static PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts panics on this thread (a test's own), still printing them as usual.
fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            default(info);
        }));
    });
}

#[test]
fn variables_created_in_init_scope_on_a_retrace_are_refused_without_a_panic() {
    count_panics();
    let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = created.clone();
    let f = kiln::function(move |x: &Tensor| {
        let v = kiln::init_scope(|| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            kiln::Variable::new(Tensor::ones(&[], DType::F32))
        });
        x * &v.read()
    });
    f.call(&Tensor::new(&[1.0f32])).unwrap();
    let e = f.call(&Tensor::new(&[1.0f32, 2.0])).expect_err("a Variable created on the second trace");
    assert!(e.to_string().contains("first trace"), "{e}");
    assert_eq!(PANICS.with(|p| p.get()), 0, "the refusal must not panic");
    // The first signature still works, and the failed trace cached nothing.
    assert_eq!(f.call(&Tensor::new(&[3.0f32])).unwrap().to_vec::<f32>().unwrap(), vec![3.0]);
    assert_eq!(f.trace_count(), 1);
}

#[test]
fn variables_created_directly_on_a_retrace_are_refused_without_a_panic() {
    count_panics();
    let f = kiln::function(|x: &Tensor| {
        let v = kiln::Variable::with_options(Tensor::ones(&[], DType::F32), "scale", true);
        x * &v.read()
    });
    f.call(&Tensor::new(&[1.0f32])).unwrap();
    let e = f.call(&Tensor::new(&[1.0f32, 2.0])).expect_err("a Variable created on the second trace");
    assert!(e.to_string().contains("first trace"), "{e}");
    assert_eq!(PANICS.with(|p| p.get()), 0, "the refusal must not panic");
}
