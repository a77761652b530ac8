//! `ndarray` conversions (run with `--features ndarray`; `.ci/run` does).
#![cfg(feature = "ndarray")]

use kiln::{DType, Tensor};
use ndarray::{ArrayD, IxDyn};

#[test]
fn round_trips_through_ndarray() {
    let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), (0..6).map(|i| i as f64).collect()).unwrap();
    let t = Tensor::from(&a);
    assert_eq!((t.shape(), t.dtype()), (&[2usize, 3][..], DType::F64));
    assert_eq!(t.to_ndarray::<f64>().unwrap(), a);
    // A transposed (non-contiguous) view is copied in logical order.
    let tt = Tensor::from_ndarray(&a.t().to_owned().into_dyn());
    assert_eq!(tt.to_vec::<f64>().unwrap(), t.transpose(&[1, 0]).to_vec::<f64>().unwrap());
    assert!(t.to_ndarray::<f32>().is_err());
    let empty = ArrayD::<i32>::zeros(IxDyn(&[0, 4]));
    assert_eq!(Tensor::from(&empty).shape(), &[0, 4]);
}
