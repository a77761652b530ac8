//! tf.function semantics of `kiln::function` and `#[kiln::trace]` (docs/SEMANTICS.md).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kiln::{Backend, DType, Error, Tensor, TensorSpec, Variable};

fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let c = Arc::new(AtomicUsize::new(0));
    (c.clone(), c)
}

#[test]
fn traces_once_per_signature() {
    let (runs, r) = counter();
    let f = kiln::function(move |x: &Tensor| {
        r.fetch_add(1, Ordering::SeqCst);
        x * 2.0
    });
    let a = Tensor::new(&[1.0f32, 2.0]);
    assert_eq!(f.call(&a).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
    f.call(&Tensor::new(&[5.0f32, 6.0])).unwrap();
    assert_eq!((runs.load(Ordering::SeqCst), f.trace_count()), (1, 1));
    f.call(&Tensor::new(&[1.0f32, 2.0, 3.0])).unwrap(); // new shape
    f.call(&Tensor::new(&[1.0f64, 2.0])).unwrap(); // new dtype
    assert_eq!((runs.load(Ordering::SeqCst), f.trace_count()), (3, 3));
    f.call(&a).unwrap();
    assert_eq!(f.trace_count(), 3);
}

#[test]
fn captured_tensors_become_constants_and_variables_stay_variables() {
    let c = Tensor::new(&[10.0f32, 20.0]);
    let v = Variable::new(Tensor::new(&[1.0f32, 1.0]));
    let v2 = v.clone();
    let f = kiln::function(move |x: &Tensor| x + &c + v2.read());
    let x = Tensor::new(&[1.0f32, 2.0]);
    assert_eq!(f.call(&x).unwrap().to_vec::<f32>().unwrap(), vec![12.0, 23.0]);
    v.assign(&Tensor::new(&[100.0f32, 100.0])).unwrap();
    assert_eq!(f.call(&x).unwrap().to_vec::<f32>().unwrap(), vec![111.0, 122.0]);
    assert_eq!(f.trace_count(), 1);
    let g = f.concrete_function(&x).unwrap();
    assert_eq!(g.traced().vars().len(), 1);
    let text = g.traced().to_text();
    assert!(text.contains("read_var"), "{text}");
    assert!(text.contains("const"), "{text}");
}

#[test]
fn assignments_happen_in_program_order() {
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let v = Variable::new(Tensor::scalar(1.0f32));
        let v2 = v.clone();
        // read 1, write 1+x, read again: the second read sees the write.
        let f = kiln::function(move |x: &Tensor| {
            let before = v2.read();
            v2.assign(&(&before + x)).unwrap();
            let after = v2.read();
            v2.assign_add(x).unwrap(); // unused result: a side effect that must still happen
            (before, after)
        })
        .with_backend(backend);
        let (before, after) = f.call(&Tensor::scalar(2.0f32)).unwrap();
        assert_eq!(before.to_scalar::<f32>().unwrap(), 1.0);
        assert_eq!(after.to_scalar::<f32>().unwrap(), 3.0);
        assert_eq!(v.read().to_scalar::<f32>().unwrap(), 5.0, "{backend:?}");
    }
}

#[test]
fn a_failed_call_writes_no_variable() {
    let v = Variable::new(Tensor::scalar(7i32));
    let v2 = v.clone();
    let f = kiln::function(move |x: &Tensor| {
        v2.assign_add(&x.scalar_like(1.0)).unwrap();
        v2.read() / x // integer division by zero fails at run time
    });
    assert!(f.call(&Tensor::scalar(1i32)).is_ok());
    assert_eq!(v.read().to_scalar::<i32>().unwrap(), 8);
    let err = f.call(&Tensor::scalar(0i32)).unwrap_err();
    assert!(err.to_string().contains("div"), "{err}");
    assert_eq!(v.read().to_scalar::<i32>().unwrap(), 8, "the failed call must not commit its write");
}

#[test]
fn variables_may_be_created_on_the_first_trace_only() {
    let slot: Arc<Mutex<Option<Variable>>> = Arc::default();
    let s = slot.clone();
    let f = kiln::function(move |x: &Tensor| {
        let v = Variable::new(Tensor::zeros(x.shape(), x.dtype()));
        *s.lock().unwrap() = Some(v.clone());
        x + v.read()
    });
    assert!(f.call(&Tensor::new(&[1.0f32])).is_ok());
    let err = f.call(&Tensor::new(&[1.0f32, 2.0])).unwrap_err();
    assert!(matches!(err, Error::Trace { .. }), "{err}");
    assert!(err.to_string().contains("first trace"), "{err}");
}

#[test]
fn input_signature_rejects_other_inputs() {
    let f = kiln::function_with_signature(&[TensorSpec::new(DType::F32, &[2])], |x: &Tensor| x.exp());
    assert!(f.call(&Tensor::new(&[0.0f32, 1.0])).is_ok());
    let err = f.call(&Tensor::new(&[0.0f64, 1.0])).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert_eq!(f.trace_count(), 1);
}

#[test]
fn wrong_number_of_arguments_is_an_error() {
    let f = kiln::function(|x: &Tensor, y: &Tensor| x + y);
    let a = Tensor::scalar(1.0f32);
    let err = f.call(&a).unwrap_err();
    assert!(err.to_string().contains("takes 2 arguments, got 1"), "{err}");
    assert!(f.call((&a, &a)).is_ok());
}

#[test]
fn a_panic_while_tracing_is_an_error_and_the_function_stays_usable() {
    let f = kiln::function(|x: &Tensor| {
        if x.shape() == [3] {
            panic!("three is not allowed");
        }
        x.square()
    });
    let err = f.call(&Tensor::new(&[1.0f32, 2.0, 3.0])).unwrap_err();
    assert!(matches!(err, Error::Trace { .. }));
    assert!(err.to_string().contains("three is not allowed"), "{err}");
    assert_eq!(f.call(&Tensor::new(&[3.0f32])).unwrap().to_vec::<f32>().unwrap(), vec![9.0]);
}

#[test]
fn an_op_error_while_tracing_names_the_op_and_the_function() {
    let f = kiln::function(|x: &Tensor, y: &Tensor| x.try_matmul(y)).with_name("bad_matmul");
    let err = f.call((&Tensor::zeros(&[2, 3], DType::F32), &Tensor::zeros(&[2, 3], DType::F32))).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("matmul") && msg.contains("bad_matmul"), "{msg}");
}

#[test]
fn nan_inf_and_zero_sized_inputs_behave_as_eagerly() {
    let program = |a: &[Tensor]| vec![(&a[0] * 2.0).exp().sum(&[-1], false), a[0].maximum(&a[0].scalar_like(0.0))];
    let x = Tensor::new(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0]);
    common::assert_equivalent(program, &[x], &[]);
    common::assert_equivalent(program, &[Tensor::zeros(&[0, 3], DType::F32)], &[]);
    common::assert_equivalent(program, &[Tensor::zeros(&[3, 0], DType::F64)], &[]);
}

#[test]
fn leaked_symbolic_tensors_are_an_error() {
    let leaked: Arc<Mutex<Option<Tensor>>> = Arc::default();
    let l = leaked.clone();
    let f = kiln::function(move |x: &Tensor| {
        *l.lock().unwrap() = Some(x.clone());
        x + 1.0
    });
    f.call(&Tensor::scalar(1.0f32)).unwrap();
    let t = leaked.lock().unwrap().clone().unwrap();
    assert!(t.is_symbolic());
    assert!(t.try_add(&Tensor::scalar(1.0f32)).is_err());
    assert!(t.to_vec::<f32>().is_err());
}

#[test]
fn nested_functions_inline_into_the_outer_graph() {
    let inner = kiln::function(|x: &Tensor| x.tanh());
    let outer = kiln::function(move |x: &Tensor| inner.call(x).unwrap() * 2.0);
    let y = outer.call(&Tensor::new(&[0.5f64])).unwrap();
    assert!((y.to_vec::<f64>().unwrap()[0] - 2.0 * 0.5f64.tanh()).abs() < 1e-15);
    assert!(outer.graph(&Tensor::new(&[0.5f64])).unwrap().to_text().contains("tanh"));
}

#[test]
fn tuple_vec_and_unit_outputs() {
    let f = kiln::function(|x: &Tensor| (x + 1.0, x - 1.0, x * 2.0));
    let (a, b, c) = f.call(&Tensor::scalar(1i64)).unwrap();
    assert_eq!((a.item().unwrap(), b.item().unwrap(), c.item().unwrap()), (2.0, 0.0, 2.0));
    let g = kiln::function(|x: &Tensor| vec![x.clone(); 3]);
    assert_eq!(g.call(&Tensor::scalar(1i64)).unwrap().len(), 3);
    let v = Variable::new(Tensor::scalar(0i64));
    let v2 = v.clone();
    let h = kiln::function(move |x: &Tensor| {
        v2.assign_add(x).unwrap();
    });
    h.call(&Tensor::scalar(5i64)).unwrap();
    h.call(&Tensor::scalar(5i64)).unwrap();
    assert_eq!(v.read().to_scalar::<i64>().unwrap(), 10);
    let zero_args = kiln::function(|| Tensor::scalar(4.0f32).sqrt());
    assert_eq!(zero_args.call(()).unwrap().to_scalar::<f32>().unwrap(), 2.0);
}

#[kiln::trace]
fn gelu(x: &Tensor) -> Tensor {
    0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.797_884_6).tanh())
}

#[kiln::trace(jit = false, name = "checked_div")]
fn checked_div(x: &Tensor, y: &Tensor) -> kiln::Result<Tensor> {
    x.try_div(y)
}

#[test]
fn trace_attribute_keeps_the_signature_and_is_thread_safe() {
    let x = Tensor::new(&[-1.0f32, 0.0, 1.0, 2.0]);
    let eager = 0.5 * &x * (1.0 + ((&x + 0.044715 * &x * &x * &x) * 0.797_884_6).tanh());
    common::assert_close(&eager, &gelu(&x), "gelu");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let x = Tensor::fill(&[16], i as f64 * 0.25, DType::F32);
                gelu(&x).to_vec::<f32>().unwrap()[0]
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let v = i as f32 * 0.25;
        let want = 0.5 * v * (1.0 + ((v + 0.044715 * v * v * v) * 0.797_884_6).tanh());
        assert!((h.join().unwrap() - want).abs() < 1e-5);
    }
    assert!(checked_div(&Tensor::scalar(1i32), &Tensor::scalar(0i32)).is_err());
    assert_eq!(checked_div(&Tensor::scalar(7i32), &Tensor::scalar(2i32)).unwrap().to_scalar::<i32>().unwrap(), 3);
    assert!(checked_div(&Tensor::scalar(1i32), &Tensor::scalar(1.0f32)).is_err());
}

#[test]
fn concurrent_calls_from_many_threads() {
    let v = Variable::new(Tensor::scalar(0i64));
    let v2 = v.clone();
    let f = kiln::function(move |x: &Tensor| {
        v2.assign_add(x).unwrap();
        x * 3.0
    });
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in 0..50i64 {
                    let y = f.call(&Tensor::scalar(i)).unwrap();
                    assert_eq!(y.to_scalar::<i64>().unwrap(), 3 * i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(f.trace_count(), 1);
    // Calls race on the variable as in TF (each call reads, then commits), so the total is
    // at most the sum; it is exact when calls do not overlap.
    assert!(v.read().to_scalar::<i64>().unwrap() <= 8 * (0..50).sum::<i64>());
}

#[test]
fn kiln_dump_writes_the_traced_graph() {
    let dir = std::env::temp_dir().join(format!("kiln-dump-test-{}", std::process::id()));
    let f = kiln::function(|x: &Tensor| x.exp() + 1.0).with_name("dumped").with_dump_dir(&dir);
    f.call(&Tensor::new(&[1.0f32])).unwrap();
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.starts_with("dumped") && n.ends_with(".txt")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("dumped") && n.ends_with(".dot")), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Function names become file names in one place: nothing is written outside the dump
/// directory, and a name with a path separator still dumps (and the call succeeds).
#[test]
fn dump_names_stay_inside_the_dump_directory() {
    let root = std::env::temp_dir().join(format!("kiln-dump-names-{}", std::process::id()));
    let dir = root.join("dumps");
    let x = Tensor::new(&[1.0f32, 2.0]);
    for name in ["../escaped", "model/step", "/abs/path", ""] {
        // exp makes a kernel, so the executor's writers (kernel IR, schedule) run too.
        let f = kiln::function(|x: &Tensor| x.exp() + 1.0).with_name(name).with_dump_dir(&dir);
        f.call(&x).unwrap_or_else(|e| panic!("name {name:?}: {e}"));
    }
    let outside: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("dumps")], "files written beside the dump directory");
    let inside: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(inside.iter().any(|n| n.starts_with("model_step") && n.ends_with(".exec.txt")), "{inside:?}");
    assert!(inside.iter().any(|n| n.starts_with("_.._escaped") && n.ends_with(".clif")), "{inside:?}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Counts WARN events: enough of a `tracing` subscriber to see the retracing warning.
struct WarnCounter(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for WarnCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0 += &format!("{}={:?} ", field.name(), value);
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn retracing_more_than_five_times_in_a_row_warns() {
    let warnings: Arc<Mutex<Vec<String>>> = Arc::default();
    let subscriber = WarnCounter(warnings.clone());
    tracing::subscriber::with_default(subscriber, || {
        let f = kiln::function(|x: &Tensor| x + 1.0).with_name("retraced");
        for n in 1..=5 {
            f.call(&Tensor::zeros(&[n], DType::F32)).unwrap();
        }
        assert!(warnings.lock().unwrap().is_empty(), "five traces are fine");
        f.call(&Tensor::zeros(&[6], DType::F32)).unwrap();
    });
    let w = warnings.lock().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("retraced") && w[0].contains("f32[6]") && w[0].contains("f32[1]"), "{}", w[0]);
}

/// The address of a concrete tensor's buffer.
fn buffer(t: &Tensor) -> *const u8 {
    t.array().unwrap().data().as_bytes().as_ptr()
}

/// `call_into` gives what `call` gives: in place when the call is tiny and `out`'s tensors
/// are unshared and of the outputs' types (each a new tensor, with a new id), as new tensors
/// otherwise.
#[test]
fn call_into_writes_in_place_or_assigns() {
    let f = kiln::function(|a: &Tensor, b: &Tensor| (3.0 * a.square() + 2.0 * a * b, b.clone()));
    let (a, b) = (Tensor::new(&[1.0f32, 2.0]), Tensor::new(&[4.0f32, 8.0]));
    let mut out = f.call((&a, &b)).unwrap();
    let (buf, ids) = (buffer(&out.0), [out.0.id(), out.1.id()]);
    let a2 = Tensor::new(&[3.0f32, -1.0]);
    f.call_into((&a2, &b), &mut out).unwrap();
    assert_eq!(out.0.to_vec::<f32>().unwrap(), f.call((&a2, &b)).unwrap().0.to_vec::<f32>().unwrap());
    assert_eq!(buffer(&out.0), buf, "written in place");
    assert_eq!(buffer(&out.1), buffer(&b), "an output that is an argument is that argument's value");
    assert!(ids[0] != out.0.id() && ids[1] != out.1.id());

    // A tensor held elsewhere keeps its value: `out` gets a new one.
    let kept = out.0.clone();
    f.call_into((&a, &b), &mut out).unwrap();
    assert_eq!(kept.to_vec::<f32>().unwrap(), vec![51.0, -13.0]);
    assert_eq!(out.0.to_vec::<f32>().unwrap(), vec![11.0, 44.0]);
    assert_ne!(buffer(&out.0), buffer(&kept));

    // Tensors of other types are replaced.
    let g = kiln::function(|x: &Tensor| x.exp());
    let mut y = Tensor::new(&[1i32, 2, 3]);
    g.call_into(&Tensor::new(&[0.0f64]), &mut y).unwrap();
    assert_eq!((y.dtype(), y.to_vec::<f64>().unwrap()), (DType::F64, vec![1.0]));

    // A call that is not tiny (two kernels over the same rows run as a row group).
    let h = kiln::function(|a: &Tensor, b: &Tensor| vec![a * b, a - b]);
    let mut v = h.call((&a, &b)).unwrap();
    h.call_into((&a2, &b), &mut v).unwrap();
    assert_eq!((v[0].to_vec::<f32>().unwrap(), v[1].to_vec::<f32>().unwrap()), (vec![12.0, -8.0], vec![-1.0, -9.0]));
}

/// A failed `call_into` leaves `out` as it was; inside a trace or under a tape it runs the
/// closure, as `call` does.
#[test]
fn call_into_errors_and_nesting() {
    let f = kiln::function_with_signature(&[TensorSpec::new(DType::F32, &[2])], |x: &Tensor| x * 2.0);
    let mut y = f.call(&Tensor::new(&[1.0f32, 2.0])).unwrap();
    assert!(f.call_into(&Tensor::new(&[1.0f64, 2.0]), &mut y).is_err());
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
    let mut v = vec![y.clone()];
    let many = kiln::function(|x: &Tensor| vec![x + 1.0]);
    assert!(many.call_into((&y, &y), &mut v).is_err(), "wrong arity");
    assert_eq!(v[0].to_vec::<f32>().unwrap(), vec![2.0, 4.0]);

    let x = kiln::Variable::new(Tensor::new(&[3.0f32, 4.0]));
    let tape = kiln::GradientTape::new();
    let mut y = Tensor::new(&[0.0f32, 0.0]);
    f.call_into(&x.read(), &mut y).unwrap();
    let dy = tape.gradient(&y.sum_all(), &[&x]).unwrap();
    assert_eq!(dy[0].as_ref().unwrap().to_vec::<f32>().unwrap(), vec![2.0, 2.0]);

    let outer = kiln::function(move |x: &Tensor| {
        let mut y = x.clone();
        f.call_into(x, &mut y)?;
        Ok(y + 1.0)
    });
    assert_eq!(outer.call(&Tensor::new(&[1.0f32, 2.0])).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
}
