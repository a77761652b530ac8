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
                        assert!(((m - v) / v).abs() < common::tolerance(d).0, "{what}: mean of {d}{shape:?} filled with {v:e} is {m:e}");
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
        common::assert_equivalent(|a: &[Tensor]| vec![a[0].mean(&[0], false), a[0].mean(&[-1], true), a[0].mean_all()], &[x], &[]);
    }
}
