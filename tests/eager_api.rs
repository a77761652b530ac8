//! The eager API of issue 2: construction, interop, errors, Display, Variables.

use kiln::{s, DType, Error, Tensor, Variable};

#[test]
fn contract_program_from_the_foundation_issue() {
    let a = Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3]).unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(a.dtype(), DType::F32);
    let c = &a + &b;
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    let d = (&c * 2.0).exp().log();
    for (x, y) in d.to_vec::<f32>().unwrap().iter().zip(c.to_vec::<f32>().unwrap()) {
        assert!((x - 2.0 * y).abs() <= 1e-5 * x.abs());
    }
    let e = a.matmul(&a.transpose(&[1, 0]));
    assert_eq!(e.to_vec::<f32>().unwrap(), vec![14.0, 32.0, 32.0, 77.0]);
    assert_eq!(a.sum(&[1], false).to_vec::<f32>().unwrap(), vec![6.0, 15.0]);
    let all = a.mean(&[0, 1], true);
    assert_eq!((all.shape(), all.to_vec::<f32>().unwrap()), (&[1usize, 1][..], vec![3.5]));
    let x = a.cast(DType::F64);
    let err = a.try_add(&x).unwrap_err();
    assert!(matches!(err, Error::DTypeMismatch { .. }));
    assert!(err.to_string().contains("f32") && err.to_string().contains("f64"), "{err}");
    let v = Variable::new(Tensor::zeros(&[2, 3], DType::F32));
    v.assign_add(&a).unwrap();
    assert!(v.assign(&Tensor::zeros(&[3], DType::F32)).is_err());
    assert_eq!(v.read().to_vec::<f32>().unwrap(), a.to_vec::<f32>().unwrap());
}

#[test]
fn construction_and_interop() {
    assert_eq!(Tensor::new(&[[[1i64, 2], [3, 4]]]).shape(), &[1, 2, 2]);
    assert_eq!(Tensor::new(&[[[[true]]]]).shape(), &[1, 1, 1, 1]);
    assert_eq!(Tensor::new(&[[0.0f64; 3]; 0]).shape(), &[0, 3]);
    assert!(Tensor::from_vec(vec![1i32, 2, 3], &[2, 2]).is_err());
    assert_eq!(Tensor::from_vec(Vec::<f32>::new(), &[0, 5]).unwrap().numel(), 0);
    let t = Tensor::scalar(2.5f64);
    assert_eq!((t.rank(), t.to_scalar::<f64>().unwrap()), (0, 2.5));
    assert!(t.to_scalar::<f32>().is_err(), "wrong element type");
    assert!(Tensor::new(&[1.0f32, 2.0]).to_scalar::<f32>().is_err(), "two elements");
    assert_eq!(Tensor::arange(0.0, 1.0, 0.25, DType::F32).to_vec::<f32>().unwrap(), vec![0.0, 0.25, 0.5, 0.75]);
    assert_eq!(Tensor::eye(2, DType::I32).to_vec::<i32>().unwrap(), vec![1, 0, 0, 1]);
}

#[test]
fn scalar_literals_take_the_tensor_dtype() {
    let i = Tensor::new(&[1i32, 2]);
    assert_eq!((&i * 3.0).to_vec::<i32>().unwrap(), vec![3, 6]);
    assert_eq!((10.0 - &i).to_vec::<i32>().unwrap(), vec![9, 8]);
    assert!(i.try_scalar_like(0.5).is_err(), "0.5 is not an i32");
    let f = Tensor::new(&[1.0f64]);
    assert_eq!((2.0 / f).to_vec::<f64>().unwrap(), vec![2.0]);
}

#[test]
fn errors_name_the_op_shapes_and_dtypes() {
    let a = Tensor::zeros(&[2, 3], DType::F32);
    let msg = a.try_add(&Tensor::zeros(&[4], DType::F32)).unwrap_err().to_string();
    assert!(msg.contains("add") && msg.contains("[2,3]") && msg.contains("[4]"), "{msg}");
    let msg = a.try_sum(&[2], false).unwrap_err().to_string();
    assert!(msg.contains("sum") && msg.contains('2'), "{msg}");
    assert!(matches!(a.try_reshape(&[4, 2]), Err(Error::Reshape { .. })));
    assert!(a.try_reshape(&[-1, -1]).is_err());
    assert!(a.try_transpose(&[0, 0]).is_err());
    assert!(a.try_exp().is_ok() && Tensor::new(&[1i32]).try_exp().is_err());
    assert!(a.try_gather(&Tensor::new(&[3i64]), 1).is_err(), "index out of range");
    assert!(Tensor::new(&[1i32]).try_div(&Tensor::new(&[0i32])).is_err(), "integer division by zero");
    assert!(a.try_slice(&s![.., ..;0]).is_err(), "zero step");
    assert!(Tensor::try_concat(&[], 0).is_err());
}

#[test]
#[should_panic(expected = "matmul")]
fn operators_panic_with_the_message() {
    let a = Tensor::zeros(&[2, 3], DType::F32);
    let _ = a.matmul(&a);
}

#[test]
fn nan_and_inf_follow_tf() {
    let x = Tensor::new(&[f32::NAN, 1.0, f32::INFINITY]);
    let m = x.maximum(&x.scalar_like(0.0)).to_vec::<f32>().unwrap();
    assert!(m[0].is_nan() && m[1] == 1.0 && m[2].is_infinite());
    assert!(x.max_all().to_scalar::<f32>().unwrap().is_nan());
    assert_eq!(x.argmax(0, false).to_scalar::<i64>().unwrap(), 0, "NaN counts as the maximum");
    assert!(Tensor::zeros(&[0], DType::F32).mean_all().to_scalar::<f32>().unwrap().is_nan());
    assert_eq!(Tensor::new(&[0.5f32, 1.5, 2.5, -0.5]).round().to_vec::<f32>().unwrap(), vec![0.0, 2.0, 2.0, -0.0]);
    assert_eq!(Tensor::new(&[-7i32]).div(&Tensor::new(&[2i32])).to_vec::<i32>().unwrap(), vec![-3]);
    assert_eq!(Tensor::new(&[-1.7f32, f32::NAN]).cast(DType::I32).to_vec::<i32>().unwrap(), vec![-1, 0]);
}

#[test]
fn display_looks_like_numpy() {
    let a = Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(a.to_string(), "[[1. 2. 3.]\n [4. 5. 6.]]");
    assert_eq!(Tensor::new(&[1i32, -2, 3]).to_string(), "[ 1 -2  3]");
    assert_eq!(Tensor::new(&[true, false]).to_string(), "[ True False]");
    let big = Tensor::zeros(&[2000], DType::F32).to_string();
    assert!(big.contains("...") && big.len() < 100, "{big}");
}

#[test]
fn random_ops_are_deterministic_per_seed() {
    let a = Tensor::random_normal(&[1000], DType::F64, 42).to_vec::<f64>().unwrap();
    let b = Tensor::random_normal(&[1000], DType::F64, 42).to_vec::<f64>().unwrap();
    let c = Tensor::random_normal(&[1000], DType::F64, 43).to_vec::<f64>().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mean = a.iter().sum::<f64>() / 1000.0;
    let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 1000.0;
    assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "mean {mean} var {var}");
    let u = Tensor::random_uniform(&[1000], DType::F32, 1).to_vec::<f32>().unwrap();
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
}

#[test]
fn variables_shared_across_threads_never_tear() {
    let v = Variable::new(Tensor::zeros(&[64], DType::I64));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let v = v.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    v.assign_add(&Tensor::ones(&[64], DType::I64)).unwrap();
                    v.assign(&v.read()).unwrap();
                    let seen = v.read().to_vec::<i64>().unwrap();
                    assert!(seen.iter().all(|&x| x == seen[0]), "thread {i} saw a torn value");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // assign(read()) can race with another thread's assign_add and undo it, so only
    // bounds are certain; every element is always equal (no tearing).
    let total = v.read().to_vec::<i64>().unwrap();
    assert!(total.iter().all(|&x| x == total[0] && x <= 1600 && x > 0));
    let err = v.assign(&Tensor::zeros(&[64], DType::F32)).unwrap_err();
    assert!(matches!(err, Error::Variable { .. }) && err.to_string().contains("i64"), "{err}");
    assert_eq!(v.read().to_vec::<i64>().unwrap(), total, "a failed assign changes nothing");
}
