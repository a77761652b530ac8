//! `TensorArray`: TF's list of same-shaped tensors that loops write into.

use kiln_ir::DType;

use crate::{Error, Result, Tensor};

/// A fixed-size array of tensors of one dtype and shape (TF's `tf.TensorArray`), kept as
/// one stacked tensor `[size, ...]` so it can be a loop variable and is differentiable.
/// Like TF's, it is a value: [`TensorArray::write`] returns the new array.
///
/// An element never written reads as zeros; the element shape is fixed by the first write
/// (or by [`TensorArray::with_element_shape`]).
///
/// ```
/// use kiln::{DType, Tensor, TensorArray};
/// let ta = TensorArray::new(DType::F32, 3)
///     .write(0, &Tensor::new(&[1.0f32, 2.0]))
///     .unwrap()
///     .write(2, &Tensor::new(&[5.0f32, 6.0]))
///     .unwrap();
/// assert_eq!(ta.size(), 3);
/// assert_eq!(ta.read(2).unwrap().to_vec::<f32>().unwrap(), vec![5.0, 6.0]);
/// assert_eq!(ta.stack().unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 0.0, 0.0, 5.0, 6.0]);
/// ```
#[derive(Clone, Debug)]
pub struct TensorArray {
    dtype: DType,
    size: usize,
    stacked: Option<Tensor>,
}

impl TensorArray {
    /// An empty array of `size` elements of `dtype`.
    pub fn new(dtype: DType, size: usize) -> TensorArray {
        TensorArray { dtype, size, stacked: None }
    }

    /// An array of zeros of `size` elements of shape `shape`.
    pub fn with_element_shape(dtype: DType, size: usize, shape: &[usize]) -> Result<TensorArray> {
        let mut full = vec![size];
        full.extend_from_slice(shape);
        Ok(TensorArray { dtype, size, stacked: Some(Tensor::try_zeros(&full, dtype)?) })
    }

    /// The array whose elements are the rows of `t` (TF's `unstack`).
    pub fn unstack(t: &Tensor) -> Result<TensorArray> {
        let size =
            *t.shape().first().ok_or_else(|| Error::invalid("TensorArray::unstack", "needs a tensor of rank >= 1"))?;
        Ok(TensorArray { dtype: t.dtype(), size, stacked: Some(t.clone()) })
    }

    /// The number of elements.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The array with element `index` set to `value`.
    pub fn write(&self, index: usize, value: &Tensor) -> Result<TensorArray> {
        self.check_index(index)?;
        self.write_at(&Tensor::scalar(index as i64), value)
    }

    /// [`TensorArray::write`] at an index given as an `i64` scalar tensor (a loop counter,
    /// say). An index outside `0..size` changes nothing.
    pub fn write_at(&self, index: &Tensor, value: &Tensor) -> Result<TensorArray> {
        if value.dtype() != self.dtype {
            return Err(Error::invalid(
                "TensorArray::write",
                format!("the array holds {}, got {}", self.dtype, value.tensor_type()),
            ));
        }
        let stacked = match &self.stacked {
            Some(s) => {
                if &s.shape()[1..] != value.shape() {
                    return Err(Error::invalid(
                        "TensorArray::write",
                        format!("elements are {:?}, got {}", &s.shape()[1..], value.tensor_type()),
                    ));
                }
                s.clone()
            }
            None => {
                let mut full = vec![self.size];
                full.extend_from_slice(value.shape());
                Tensor::try_zeros(&full, self.dtype)?
            }
        };
        let mut mask_shape = vec![self.size];
        mask_shape.extend(std::iter::repeat_n(1, value.rank()));
        let mask =
            Tensor::try_arange(0.0, self.size as f64, 1.0, DType::I64)?.try_equal(index)?.try_reshape(mask_shape)?;
        let stacked = mask.try_select(&value.try_expand_dims(0)?, &stacked)?;
        Ok(TensorArray { dtype: self.dtype, size: self.size, stacked: Some(stacked) })
    }

    /// Element `index`.
    pub fn read(&self, index: usize) -> Result<Tensor> {
        self.check_index(index)?;
        self.read_at(&Tensor::scalar(index as i64))
    }

    /// Element at an `i64` scalar index (an index out of range is a runtime error).
    pub fn read_at(&self, index: &Tensor) -> Result<Tensor> {
        self.stack()?.try_gather(index, 0)
    }

    /// All elements stacked into `[size, ...]`.
    pub fn stack(&self) -> Result<Tensor> {
        self.stacked.clone().ok_or_else(|| {
            Error::invalid("TensorArray::stack", "nothing was written yet, so the element shape is unknown")
        })
    }

    fn check_index(&self, index: usize) -> Result<()> {
        if index >= self.size {
            return Err(Error::invalid("TensorArray", format!("index {index} is out of range for size {}", self.size)));
        }
        Ok(())
    }
}
