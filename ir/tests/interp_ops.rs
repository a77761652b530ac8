//! Hand-written cases for what golden data cannot show: errors (from `infer` for bad
//! types, from `eval` at run time), identities of empty reductions, wrapping, stability.

use kiln_ir::{
    infer, interp, ArgOp, Array, BinaryOp, DType, Error, Op, ReduceOp, Shape, SliceDim, TensorType, UnaryOp,
};

fn ty(a: &Array) -> TensorType {
    TensorType::new(a.dtype(), a.shape())
}

/// Infers the result type, then evaluates.
fn apply(op: Op, args: &[&Array]) -> kiln_ir::Result<Array> {
    let tys: Vec<TensorType> = args.iter().map(|a| ty(a)).collect();
    let t = infer(&op, &tys)?;
    interp::eval(&op, args, &t)
}

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape).unwrap()
}

fn i32s(v: &[i32], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn type_errors_come_from_infer() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let b = Array::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    let c = f32s(&[1.0, 2.0, 3.0], &[3]);
    let i = i32s(&[1, 2], &[2]);
    assert!(matches!(apply(Op::Binary(BinaryOp::Add), &[&a, &b]), Err(Error::DTypeMismatch { .. })));
    assert!(matches!(apply(Op::Binary(BinaryOp::Add), &[&a, &c]), Err(Error::ShapeMismatch { .. })));
    let flags = Array::from_vec(vec![true, false], &[2]).unwrap();
    assert!(matches!(apply(Op::Binary(BinaryOp::Pow), &[&flags, &flags]), Err(Error::UnsupportedDType { .. })));
    assert!(apply(Op::Binary(BinaryOp::Pow), &[&i, &i]).is_ok(), "integer powers exist (TF's)");
    assert!(matches!(apply(Op::Unary(UnaryOp::Exp), &[&i]), Err(Error::UnsupportedDType { .. })));
    assert!(matches!(apply(Op::Reshape(Shape::from_slice(&[3])), &[&a]), Err(Error::Reshape { .. })));
    let sum = Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false };
    assert!(matches!(apply(sum, &[&a]), Err(Error::Axis { .. })));
    assert!(apply(Op::MatMul, &[&a, &a]).is_err());
    assert!(apply(Op::Gather { axis: 0 }, &[&a, &a]).is_err());
}

#[test]
fn eval_refuses_a_type_that_does_not_match_its_operands() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let wrong = TensorType::new(DType::F32, &[3]);
    assert!(interp::eval(&Op::Binary(BinaryOp::Add), &[&a, &a], &wrong).is_err());
    assert!(interp::eval(&Op::Binary(BinaryOp::Add), &[&a], &ty(&a)).is_err());
    assert!(interp::eval(&Op::Cast(DType::I32), &[&a], &ty(&a)).is_err());
    // Same element count, wrong shape: still refused.
    let keep = Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdims: true };
    assert!(interp::eval(&keep, &[&a], &TensorType::new(DType::F32, &[])).is_err());
    assert_eq!(interp::eval(&keep, &[&a], &TensorType::new(DType::F32, &[1])).unwrap().shape(), &[1]);
}

#[test]
fn integer_division_truncates_and_zero_is_a_runtime_error() {
    let a = i32s(&[7, -7, 7, -7, i32::MIN], &[5]);
    let b = i32s(&[2, 2, -2, -2, -1], &[5]);
    let q = apply(Op::Binary(BinaryOp::Div), &[&a, &b]).unwrap();
    assert_eq!(q.to_vec::<i32>().unwrap(), vec![3, -3, -3, 3, i32::MIN]);
    let zero = Array::from_vec(vec![0i64], &[]).unwrap();
    let x = Array::from_vec(vec![1i64, 2], &[2]).unwrap();
    match apply(Op::Binary(BinaryOp::Div), &[&x, &zero]) {
        Err(Error::Runtime { op: "div", msg }) => assert!(msg.contains("division by zero"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // Float division by zero is IEEE.
    let f = apply(Op::Binary(BinaryOp::Div), &[&f32s(&[1.0, -1.0, 0.0], &[3]), &f32s(&[0.0], &[1])]).unwrap();
    let f = f.to_vec::<f32>().unwrap();
    assert_eq!((f[0], f[1]), (f32::INFINITY, f32::NEG_INFINITY));
    assert!(f[2].is_nan());
}

#[test]
fn integer_arithmetic_wraps() {
    let a = i32s(&[i32::MIN, i32::MAX], &[2]);
    assert_eq!(apply(Op::Unary(UnaryOp::Neg), &[&a]).unwrap().to_vec::<i32>().unwrap(), vec![i32::MIN, -i32::MAX]);
    assert_eq!(apply(Op::Unary(UnaryOp::Abs), &[&a]).unwrap().to_vec::<i32>().unwrap(), vec![i32::MIN, i32::MAX]);
    let s = apply(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[&a]).unwrap();
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![-1]);
    let big = Array::from_vec(vec![i64::MAX, i64::MAX, -1], &[3]).unwrap();
    let m = apply(Op::Reduce { op: ReduceOp::Mean, axes: vec![0], keepdims: false }, &[&big]).unwrap();
    // The mean is exact (no wrapping in the sum) and truncated: (2*MAX - 1) / 3.
    assert_eq!(m.to_vec::<i64>().unwrap(), vec![((2 * i64::MAX as i128 - 1) / 3) as i64]);
}

#[test]
fn empty_reductions_give_identities() {
    let reduce = |op, a: &Array| apply(Op::Reduce { op, axes: vec![1], keepdims: false }, &[a]).unwrap();
    let f = Array::zeros(&[2, 0], DType::F32);
    assert_eq!(reduce(ReduceOp::Max, &f).to_vec::<f32>().unwrap(), vec![f32::NEG_INFINITY; 2]);
    assert_eq!(reduce(ReduceOp::Min, &f).to_vec::<f32>().unwrap(), vec![f32::INFINITY; 2]);
    assert_eq!(reduce(ReduceOp::Sum, &f).to_vec::<f32>().unwrap(), vec![0.0; 2]);
    assert_eq!(reduce(ReduceOp::Prod, &f).to_vec::<f32>().unwrap(), vec![1.0; 2]);
    assert!(reduce(ReduceOp::Mean, &f).to_vec::<f32>().unwrap().iter().all(|x| x.is_nan()));
    let i = Array::zeros(&[2, 0], DType::I64);
    assert_eq!(reduce(ReduceOp::Max, &i).to_vec::<i64>().unwrap(), vec![i64::MIN; 2]);
    assert_eq!(reduce(ReduceOp::Min, &i).to_vec::<i64>().unwrap(), vec![i64::MAX; 2]);
    let i32z = Array::zeros(&[2, 0], DType::I32);
    assert_eq!(reduce(ReduceOp::Max, &i32z).to_vec::<i32>().unwrap(), vec![i32::MIN; 2]);
    // The integer mean of an empty axis: infer rejects it, and eval (given a type) errors too.
    let mean = Op::Reduce { op: ReduceOp::Mean, axes: vec![1], keepdims: false };
    assert!(infer(&mean, &[ty(&i)]).is_err());
    let err = interp::eval(&mean, &[&i], &TensorType::new(DType::I64, &[2]));
    assert!(err.is_err());
}

#[test]
fn argreduce_of_an_empty_axis_is_an_error() {
    let a = Array::zeros(&[3, 0], DType::F32);
    let op = Op::ArgReduce { op: ArgOp::ArgMax, axis: 1, keepdims: false };
    assert!(infer(&op, &[ty(&a)]).is_err());
    assert!(interp::eval(&op, &[&a], &TensorType::new(DType::I64, &[3])).is_err());
    // ... but an empty *other* axis just gives an empty result.
    let b = Array::zeros(&[0, 3], DType::F32);
    assert_eq!(apply(op, &[&b]).unwrap().shape(), &[0]);
}

#[test]
fn gather_and_scatter_reject_out_of_range_indices() {
    let p = f32s(&[1.0, 2.0, 3.0], &[3]);
    for bad in [vec![3i64], vec![-1i64], vec![0, 1, 7]] {
        let idx = Array::from_vec(bad.clone(), &[bad.len()]).unwrap();
        assert!(matches!(apply(Op::Gather { axis: 0 }, &[&p, &idx]), Err(Error::Runtime { op: "gather", .. })));
        let upd = Array::zeros(&[bad.len()], DType::F32);
        let op = Op::ScatterAdd { axis: 0, shape: Shape::from_slice(&[3]) };
        assert!(matches!(apply(op, &[&upd, &idx]), Err(Error::Runtime { op: "scatter_add", .. })));
    }
    let idx = i32s(&[2, 0, 2], &[3]);
    let g = apply(Op::Gather { axis: 0 }, &[&p, &idx]).unwrap();
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![3.0, 1.0, 3.0]);
    let s = apply(Op::ScatterAdd { axis: 0, shape: Shape::from_slice(&[3]) }, &[&g, &idx]).unwrap();
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 6.0]);
}

#[test]
fn stable_forms_do_not_overflow() {
    let x = f32s(&[-1000.0, -100.0, 0.0, 100.0, 1000.0, f32::NAN], &[6]);
    // e^-100 is an f32 subnormal: the stable forms keep it instead of flushing to 0 or NaN.
    let tiny = (-100f64).exp() as f32;
    assert!(tiny > 0.0);
    let s = apply(Op::Unary(UnaryOp::Sigmoid), &[&x]).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(&s[..5], &[0.0, tiny, 0.5, 1.0, 1.0]);
    assert!(s[5].is_nan());
    let p = apply(Op::Unary(UnaryOp::Softplus), &[&x]).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(&p[..5], &[0.0, tiny, std::f32::consts::LN_2, 100.0, 1000.0]);
    assert!(p[5].is_nan());
    let r = apply(Op::Unary(UnaryOp::Relu), &[&x]).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(&r[..5], &[0.0, 0.0, 0.0, 100.0, 1000.0]);
    assert!(r[5].is_nan());
}

#[test]
fn f32_sums_accumulate_in_f64() {
    // A naive f32 loop loses every 1e-8 against 1.0 and returns exactly 1.0.
    let mut v = vec![1e-8f32; 1001];
    v[0] = 1.0;
    let a = f32s(&v, &[1001]);
    let s = apply(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdims: true }, &[&a]).unwrap();
    assert_eq!(s.shape(), &[1]);
    let want = (1.0f64 + 1000.0 * 1e-8f32 as f64) as f32;
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![want]);
    assert!(want > 1.0);
}

#[test]
fn casts_truncate_saturate_and_wrap() {
    let f = f32s(&[2.9, -2.9, f32::NAN, 1e10, -1e10, f32::INFINITY], &[6]);
    let i = apply(Op::Cast(DType::I32), &[&f]).unwrap();
    assert_eq!(i.to_vec::<i32>().unwrap(), vec![2, -2, 0, i32::MAX, i32::MIN, i32::MAX]);
    let b = apply(Op::Cast(DType::Bool), &[&f]).unwrap();
    assert_eq!(b.to_vec::<bool>().unwrap(), vec![true; 6]);
    let l = Array::from_vec(vec![(1i64 << 32) + 5, -1], &[2]).unwrap();
    assert_eq!(apply(Op::Cast(DType::I32), &[&l]).unwrap().to_vec::<i32>().unwrap(), vec![5, -1]);
    let t = Array::from_vec(vec![true, false], &[2]).unwrap();
    assert_eq!(apply(Op::Cast(DType::F64), &[&t]).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0]);
}

#[test]
fn slices_with_negative_steps_and_unslice_round_trip() {
    let a = i32s(&(0..12).collect::<Vec<_>>(), &[3, 4]);
    let dims = vec![
        SliceDim::from_python(None, None, -1, 3).unwrap(),
        SliceDim::from_python(Some(3), Some(0), -2, 4).unwrap(),
    ];
    let s = apply(Op::Slice(dims.clone()), &[&a]).unwrap();
    assert_eq!(s.shape(), &[3, 2]);
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![11, 9, 7, 5, 3, 1]);
    let u = apply(Op::Unslice { dims, shape: Shape::from_slice(&[3, 4]) }, &[&s]).unwrap();
    assert_eq!(u.to_vec::<i32>().unwrap(), vec![0, 1, 0, 3, 0, 5, 0, 7, 0, 9, 0, 11]);
    let bad = vec![SliceDim { start: 3, step: 1, len: 1 }, SliceDim::full(4)];
    assert!(apply(Op::Slice(bad.clone()), &[&a]).is_err());
    assert!(interp::eval(&Op::Slice(bad), &[&a], &TensorType::new(DType::I32, &[1, 4])).is_err());
}

#[test]
fn zero_sized_operands_everywhere() {
    let e = Array::zeros(&[0, 3], DType::F32);
    let row = f32s(&[1.0, 2.0, 3.0], &[3]);
    assert_eq!(apply(Op::Binary(BinaryOp::Mul), &[&e, &row]).unwrap().shape(), &[0, 3]);
    assert_eq!(apply(Op::Transpose(vec![1, 0]), &[&e]).unwrap().shape(), &[3, 0]);
    let k0a = Array::zeros(&[2, 0], DType::F64);
    let k0b = Array::zeros(&[0, 4], DType::F64);
    let m = apply(Op::MatMul, &[&k0a, &k0b]).unwrap();
    assert_eq!(m.shape(), &[2, 4]);
    assert!(m.to_vec::<f64>().unwrap().iter().all(|&x| x == 0.0));
    let s = apply(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[&e]).unwrap();
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![0.0; 3]);
}
