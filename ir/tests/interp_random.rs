//! The counter-based RNG: pinned against an independent Python implementation of the
//! documented algorithm (tests/golden/random.json), plus its statistical sanity.

mod common;

use common::{array, compare, golden};
use kiln_ir::{interp, Array, DType, Distribution, Op, TensorType};

fn sample(dist: Distribution, seed: u64, counter: Option<i64>, dtype: DType, shape: &[usize]) -> Array {
    let c = counter.map(Array::scalar);
    let args: Vec<&Array> = c.iter().collect();
    interp::eval(&Op::Random { dist, seed }, &args, &TensorType::new(dtype, shape)).unwrap()
}

#[test]
fn values_are_pinned() {
    let g = golden("random.json");
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for c in cases {
        let want = array(&c["out"]);
        let dist = if c["dist"] == "uniform" { Distribution::Uniform } else { Distribution::Normal };
        let seed: u64 = c["seed"].as_str().unwrap().parse().unwrap();
        let got = sample(dist, seed, c["counter"].as_i64(), want.dtype(), want.shape());
        compare(&got, &want, c["rtol"].as_f64().unwrap(), 0.0).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
}

#[test]
fn uniform_is_in_unit_interval_and_looks_uniform() {
    for dtype in [DType::F32, DType::F64] {
        let a = sample(Distribution::Uniform, 7, None, dtype, &[100_000]);
        let v: Vec<f64> = (0..a.len()).map(|i| a.get_f64(i)).collect();
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        // Standard error of the mean is sqrt(1/12/1e5) ≈ 0.0009: 5 sigma bounds.
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.003, "{var}");
    }
}

#[test]
fn normal_has_unit_moments() {
    let a = sample(Distribution::Normal, 11, Some(3), DType::F64, &[200_000]);
    let v = a.to_vec::<f64>().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert!(mean.abs() < 0.012, "{mean}");
    assert!((var - 1.0).abs() < 0.02, "{var}");
}

#[test]
fn seeds_and_counters_select_independent_streams() {
    let a = sample(Distribution::Uniform, 1, Some(0), DType::F32, &[64]);
    assert!(a.bits_eq(&sample(Distribution::Uniform, 1, Some(0), DType::F32, &[64])));
    // No counter is the same as counter 0 (documented).
    assert!(a.bits_eq(&sample(Distribution::Uniform, 1, None, DType::F32, &[64])));
    assert!(!a.bits_eq(&sample(Distribution::Uniform, 1, Some(1), DType::F32, &[64])));
    assert!(!a.bits_eq(&sample(Distribution::Uniform, 2, Some(0), DType::F32, &[64])));
    // Element i does not depend on the shape: a prefix of a longer draw.
    let long = sample(Distribution::Uniform, 1, Some(0), DType::F32, &[2, 64]);
    assert_eq!(&long.to_vec::<f32>().unwrap()[..64], &a.to_vec::<f32>().unwrap()[..]);
}

#[test]
fn random_rejects_integer_dtypes_and_bad_counters() {
    let op = Op::Random { dist: Distribution::Uniform, seed: 0 };
    assert!(interp::eval(&op, &[], &TensorType::new(DType::I32, &[2])).is_err());
    let bad = Array::scalar(1i32);
    assert!(interp::eval(&op, &[&bad], &TensorType::new(DType::F32, &[2])).is_err());
}
