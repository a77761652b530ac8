//! gemm's one-time set-up (its cache sizes, read from sysfs on its first product) starts
//! on a thread of its own when the process creates its first float matrix
//! (`kiln_ir::matmul::warm_up`), long before a first call multiplies. The only test in its
//! binary: nothing else in this process has created a matrix.

use kiln::{DType, Tensor};

#[test]
fn the_first_float_matrix_starts_gemms_set_up() {
    let _matrix = Tensor::zeros(&[2, 3], DType::F32);
    assert!(!kiln_ir::matmul::warm_up(), "creating a float matrix did not start gemm's set-up");
}
