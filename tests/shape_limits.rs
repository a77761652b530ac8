//! Sizes that overflow or cannot be allocated, and slices with extreme steps
//! (docs/SEMANTICS.md, "Sizes"). Every case here once crashed, wrapped or aborted.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use kiln::{Backend, DType, Error, SliceArg, Tensor};

/// The message of the panic `f` raises (it must raise one).
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[track_caller]
fn assert_overflow<T: std::fmt::Debug>(r: kiln::Result<T>, op: &str) {
    match r {
        Err(e @ Error::Overflow { .. }) => assert!(e.to_string().starts_with(&format!("{op}: ")), "{e}"),
        other => panic!("expected an overflow error from {op}, got {other:?}"),
    }
}

#[track_caller]
fn assert_out_of_memory<T: std::fmt::Debug>(r: kiln::Result<T>) {
    match r {
        Err(e @ Error::OutOfMemory { .. }) => assert!(e.to_string().contains("cannot allocate"), "{e}"),
        other => panic!("expected an allocation error, got {other:?}"),
    }
}

#[test]
fn zeros_of_a_shape_whose_size_wraps_is_refused() {
    // (2^62 + 1) * 4096 wraps to 4096 elements: the sum used to read 2^62 rows past them.
    let shape = [(1usize << 62) + 1, 4096];
    assert_overflow(Tensor::try_zeros(&shape, DType::F32), "zeros");
    let msg = panic_message(|| {
        Tensor::zeros(&shape, DType::F32).sum(&[0], false);
    });
    assert!(msg.contains("zeros: f32[4611686018427387905,4096] is too large"), "{msg}");
    assert_overflow(Tensor::try_fill(&[1 << 32, 1 << 32], 1.0, DType::I32), "fill");
}

#[test]
fn reshape_to_a_shape_whose_size_wraps_is_refused() {
    let t = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0]);
    // (2^62 + 1) * 4 wraps to 4, the operand's size.
    assert!(t.try_reshape(&[(1usize << 62) + 1, 4]).is_err());
    assert!(t.try_reshape(&[-1i64, 1 << 62, 1 << 62]).is_err());
    assert_eq!(t.try_reshape(&[-1, 2]).unwrap().shape(), &[2, 2]);
}

#[test]
fn broadcast_to_a_shape_whose_size_wraps_is_refused() {
    // 2^32 * 2^32 wraps to 0 elements.
    assert_overflow(Tensor::scalar(1.0f32).try_broadcast_to(&[1 << 32, 1 << 32]), "broadcast_to");
}

#[test]
fn concat_whose_axis_overflows_is_refused() {
    let a = Tensor::zeros(&[usize::MAX, 0], DType::F32);
    assert_eq!(a.numel(), 0);
    assert_overflow(Tensor::try_concat(&[&a, &a], 0), "concat");
    // The same rule refuses it while tracing.
    let f = kiln::function(|x: &Tensor| Tensor::concat(&[x, x], 0));
    assert!(f.call(&a).is_err());
}

#[test]
fn arange_of_more_elements_than_memory_is_an_error() {
    // 1e19 elements used to panic with `capacity overflow`.
    assert!(Tensor::try_arange(0.0, 1e19, 1.0, DType::F32).is_err());
    assert!(Tensor::try_arange(0.0, 1e300, 1.0, DType::I64).is_err());
    assert_overflow(Tensor::try_arange(0.0, 4.0 * 2f64.powi(61), 1.0, DType::F32), "arange");
    let msg = panic_message(|| {
        Tensor::arange(0.0, 1e19, 1.0, DType::F64);
    });
    assert!(msg.starts_with("arange: "), "{msg}");
    assert_eq!(Tensor::arange(1.0, 4.0, 1.5, DType::F32).to_vec::<f32>().unwrap(), vec![1.0, 2.5]);
}

#[test]
fn eager_results_the_allocator_refuses_are_errors() {
    // 2^40 f32 = 4 TiB: a valid size that no test machine can map. It used to abort.
    assert_out_of_memory(Tensor::scalar(1.0f32).try_broadcast_to(&[1 << 20, 1 << 20]));
    // A broadcasting binary op whose result is as large (a one-op compiled kernel).
    let col = Tensor::zeros(&[1 << 20, 1], DType::F32);
    let row = Tensor::zeros(&[1, 1 << 20], DType::F32);
    assert_out_of_memory(col.try_add(&row));
    // Zeros, from the allocator's zeroed memory.
    assert_out_of_memory(Tensor::try_zeros(&[1 << 20, 1 << 20], DType::F64));
}

#[test]
fn traced_results_the_allocator_refuses_are_errors_on_both_backends() {
    for backend in [Backend::Compiled, Backend::Interpreter] {
        // An output of 2^40 f32 (a fused reduction of it would need no such buffer, and
        // rightly compute it).
        let f = kiln::function(|x: &Tensor| x.broadcast_to(&[1 << 20, 1 << 20]) + 1.0).with_backend(backend);
        let r = f.call(&Tensor::scalar(1.0f32));
        assert_out_of_memory(r);
        // The function stays usable.
        let g = kiln::function(|x: &Tensor| x + 1.0).with_backend(backend);
        assert_eq!(g.call(&Tensor::scalar(1.0f32)).unwrap().to_scalar::<f32>().unwrap(), 2.0);
    }
}

#[test]
fn eye_of_a_size_whose_square_wraps_is_refused() {
    // (2^32)^2 wraps to 0: the diagonal writes used to panic with an index error.
    assert_overflow(Tensor::try_eye(1 << 32, DType::F32), "eye");
    let msg = panic_message(|| {
        Tensor::eye(1 << 32, DType::F32);
    });
    assert!(msg.starts_with("eye: f32[4294967296,4294967296] is too large"), "{msg}");
    assert_out_of_memory(Tensor::try_eye(1 << 20, DType::F32));
    assert_eq!(Tensor::eye(2, DType::Bool).to_vec::<bool>().unwrap(), vec![true, false, false, true]);
}

#[test]
fn random_of_an_overflowing_shape_panics_clearly() {
    let msg = panic_message(|| {
        Tensor::random_uniform(&[1 << 62], DType::F32, 1);
    });
    assert!(msg.starts_with("random_uniform: f32[4611686018427387904] is too large"), "{msg}");
    let f = kiln::function(|x: &Tensor| x + Tensor::random_normal(&[1 << 32, 1 << 32], DType::F32, 3));
    assert!(f.call(&Tensor::scalar(1.0f32)).is_err());
}

/// `start`, `stop`, `step` and numpy's answer for `[1., 2., 3.][start:stop:step]`.
type SliceCase = (Option<isize>, Option<isize>, isize, &'static [f32]);

/// `[1, 2, 3][start:stop:step]` by `try_slice`.
fn slice3(start: Option<isize>, stop: Option<isize>, step: isize) -> Vec<f32> {
    let t = Tensor::new(&[1.0f32, 2.0, 3.0]);
    t.try_slice(&[SliceArg::Range { start, stop, step }]).unwrap().to_vec::<f32>().unwrap()
}

#[test]
fn slices_with_extreme_steps_match_numpy() {
    const MIN: isize = isize::MIN;
    const MAX: isize = isize::MAX;
    // Expected values are numpy 2's answers for `np.array([1., 2., 3.])[start:stop:step]`.
    let cases: &[SliceCase] = &[
        (None, None, MIN, &[3.0]),
        (None, None, MAX, &[1.0]),
        (None, None, MIN + 1, &[3.0]),
        (None, None, MIN + 2, &[3.0]),
        (None, None, MAX - 1, &[1.0]),
        (Some(1), None, MIN, &[2.0]),
        (None, Some(1), MIN, &[3.0]),
        (Some(MAX), None, MIN, &[3.0]),
        (Some(MIN), None, MAX, &[1.0]),
        (Some(MIN), Some(MAX), MAX, &[1.0]),
        (Some(MAX), Some(MIN), MIN, &[3.0]),
        (Some(MAX), Some(MIN), MIN + 1, &[3.0]),
        (Some(0), Some(MAX), MAX, &[1.0]),
        (Some(-1), None, MIN + 1, &[3.0]),
    ];
    for &(start, stop, step, want) in cases {
        assert_eq!(slice3(start, stop, step), want, "[{start:?}:{stop:?}:{step}]");
    }
}

#[test]
fn slices_with_extreme_steps_agree_on_every_backend() {
    let program = |xs: &[Tensor]| {
        vec![
            xs[0].slice(&[SliceArg::all(isize::MIN), SliceArg::all(isize::MAX)]),
            xs[0].slice(&[SliceArg::Range { start: Some(1), stop: None, step: isize::MIN + 1 }]),
        ]
    };
    common::assert_equivalent(program, &[common::rand_f32(&[3, 4], 5)], &[]);
}
