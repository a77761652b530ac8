//! Issue 17's program, as written there: TensorFlow's other data structures in kiln —
//! sparse, ragged and string tensors, sets and queues (`docs/DATA.md`).
//! Run: `cargo run --release --example data_structures`.

use kiln::ragged::RaggedTensor;
use kiln::sparse::SparseTensor;
use kiln::strings::StringTensor;
use kiln::{DType, Tensor};

pub fn main() -> kiln::Result<()> {
    // Sparse (COO, TF's SparseTensor): indices [nnz, rank] i64, values [nnz], dense_shape.
    let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 0]]), Tensor::new(&[3.0f32, 4.0]), &[2, 3])?;
    let d = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    let p = kiln::sparse::matmul(&s, &d)?; // [[9, 12], [4, 8]]
    assert_eq!(s.to_dense()?.shape(), &[2, 3]);
    // Ragged (values + row_splits).
    let r = RaggedTensor::from_row_lengths(Tensor::new(&[1.0f32, 2.0, 3.0, 4.0, 5.0]), &[2, 0, 3])?;
    assert_eq!(r.sum_rows()?.to_vec::<f32>()?, vec![3.0, 0.0, 12.0]);
    let padded = r.to_tensor(0.0)?; // [3, 3]
                                    // Strings.
    let t = StringTensor::new(&["hello world", "kiln"], &[2])?;
    let words: RaggedTensor = t.split(" ")?; // ragged [2, None] of strings
    let ids = kiln::strings::StringLookup::new(&["hello", "world", "kiln"]).call(&words)?;
    // Sets along the last axis (tf.sets).
    let a = Tensor::new(&[[1i64, 2, 3]]);
    let b = Tensor::new(&[[2i64, 3, 4]]);
    let i = kiln::sets::intersection(&a, &b)?; // sparse [[2, 3]]
                                               // Queues, shared across threads.
    let q = kiln::queue::FifoQueue::new(8, &[DType::F32], &[&[2]])?;
    q.enqueue(&[Tensor::new(&[1.0f32, 2.0])])?;
    let item = q.dequeue()?;
    println!("{p} {padded} {ids:?} {i:?} {item:?}");
    Ok(())
}
