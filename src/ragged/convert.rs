//! Ragged ↔ dense: `to_tensor` places every flat value at (row, column) with one
//! `scatter_add` (so its gradient is a `gather` back to the values), `from_tensor` reads the
//! rows of a dense tensor, stripping trailing padding as TF's `from_tensor(padding=)`.

use kiln_ir::Op;

use super::{splits_of_lengths, RaggedTensor};
use crate::context::apply;
use crate::{DType, Error, Result, Tensor};

impl RaggedTensor {
    /// The dense tensor `[nrows, max row length, ...inner]`, short rows filled with `pad`
    /// (TF's `to_tensor(default_value)`). Needs host splits (the width depends on them);
    /// differentiable in the flat values.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![], vec![3.0]]).unwrap();
    /// let d = r.to_tensor(-1.0).unwrap();
    /// assert_eq!(d.shape(), &[3, 2]);
    /// assert_eq!(d.to_vec::<f32>().unwrap(), vec![1.0, 2.0, -1.0, -1.0, 3.0, -1.0]);
    /// ```
    pub fn to_tensor(&self, pad: f64) -> Result<Tensor> {
        let width = self.bounding_shape()?[1];
        self.to_tensor_with_width(pad, width)
    }

    /// [`RaggedTensor::to_tensor`] with a fixed width (TF's `to_tensor(shape=[None, width])`):
    /// longer rows are cut, shorter ones padded. Traces with traced row splits too.
    ///
    /// ```
    /// use kiln::ragged::RaggedTensor;
    /// let f = kiln::function(|r: &RaggedTensor| r.to_tensor_with_width(0.0, 2));
    /// let r = RaggedTensor::from_nested(&[vec![1.0f32, 2.0, 3.0], vec![4.0]]).unwrap();
    /// let d = f.call(r.as_args().unwrap()).unwrap();
    /// assert_eq!(d.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 4.0, 0.0]);
    /// ```
    pub fn to_tensor_with_width(&self, pad: f64, width: usize) -> Result<Tensor> {
        let values = self.numeric("RaggedTensor::to_tensor")?;
        self.padded(&values.try_scalar_like(pad)?, width)
    }

    /// The dense `[nrows, width, ...inner]` form, filled with the scalar `pad`.
    pub(crate) fn padded(&self, pad: &Tensor, width: usize) -> Result<Tensor> {
        let values = self.numeric("RaggedTensor::to_tensor")?;
        let inner = &values.shape()[1..];
        let (row, col) = self.positions()?;
        let cells = self.nrows() * width;
        // Values past the width go to one extra cell, sliced off below.
        let inside = col.try_less(&Tensor::scalar(width as i64))?;
        let cell = row.try_mul(&Tensor::scalar(width as i64))?.try_add(&col)?;
        let cell = inside.try_select(&cell, &Tensor::scalar(cells as i64))?;
        let scatter = |t: &Tensor, inner: &[usize]| {
            let shape = [&[cells + 1][..], inner].concat();
            let placed = apply(Op::ScatterAdd { axis: 0, shape: shape.into() }, &[t, &cell])?;
            let dims: Vec<i64> = [&[self.nrows(), width][..], inner].concat().iter().map(|&d| d as i64).collect();
            placed.try_slice(&[(0..cells as isize).into()])?.try_reshape(dims)
        };
        let placed = scatter(values, inner)?;
        let ones = Tensor::fill(&[self.nvalues()], 1.0, DType::I32);
        let hit = scatter(&ones, &[])?.try_greater(&Tensor::scalar(0i32))?;
        let hit = hit.try_reshape(
            [&[self.nrows(), width][..], &vec![1; inner.len()]].concat().iter().map(|&d| d as i64).collect::<Vec<_>>(),
        )?;
        hit.try_select(&placed, pad)
    }

    /// The rows of a dense tensor `[nrows, ncols, ...]` (TF's `RaggedTensor.from_tensor`):
    /// without `padding` every row keeps all `ncols` (traces); with it, each row drops its
    /// trailing elements equal to `padding` (an inner slab counts when all of it equals
    /// `padding`), which needs the tensor's values on the host.
    ///
    /// ```
    /// use kiln::{ragged::RaggedTensor, Tensor};
    /// let t = Tensor::new(&[[1.0f32, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]]);
    /// let r = RaggedTensor::from_tensor(&t, Some(0.0)).unwrap();
    /// assert_eq!(r.to_nested::<f32>().unwrap(), vec![vec![1.0, 0.0, 2.0], vec![]]);
    /// assert_eq!(RaggedTensor::from_tensor(&t, None).unwrap().nvalues(), 8);
    /// ```
    pub fn from_tensor(t: &Tensor, padding: Option<f64>) -> Result<RaggedTensor> {
        let op = "RaggedTensor::from_tensor";
        if t.rank() < 2 {
            return Err(Error::invalid(
                op,
                format!("needs a tensor of rank >= 2 [nrows, ncols, ...], got {}", t.tensor_type()),
            ));
        }
        let (nrows, ncols) = (t.shape()[0], t.shape()[1]);
        let inner = &t.shape()[2..];
        let flat_dims: Vec<i64> = [&[nrows * ncols][..], inner].concat().iter().map(|&d| d as i64).collect();
        let flat = t.try_reshape(flat_dims)?;
        let Some(pad) = padding else {
            return Self::from_row_lengths(flat, &vec![ncols as i64; nrows]);
        };
        if t.is_symbolic() {
            return Err(Error::invalid(
                op,
                "with padding, the row lengths depend on the tensor's values, which a traced function does not know",
            ));
        }
        let slab: usize = inner.iter().product();
        let data = t.try_cast(DType::F64)?.to_vec::<f64>()?;
        let is_pad = |cell: usize| data[cell * slab..(cell + 1) * slab].iter().all(|&x| x == pad);
        let lengths: Vec<i64> = (0..nrows)
            .map(|r| (0..ncols).rev().find(|&c| !is_pad(r * ncols + c)).map_or(0, |c| c as i64 + 1))
            .collect();
        let keep: Vec<i64> = (0..nrows).flat_map(|r| (0..lengths[r]).map(move |c| (r * ncols) as i64 + c)).collect();
        let n = keep.len();
        let values = flat.try_gather(&Tensor::from_vec(keep, &[n])?, 0)?;
        Self::from_row_splits(values, &Tensor::from_vec(splits_of_lengths(&lengths), &[nrows + 1])?)
    }
}
