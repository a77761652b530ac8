//! `PaddingFifoQueue` (TF's `tf.queue.PaddingFIFOQueue`) and the padding and stacking that
//! it, `Queue::dequeue_many` and `data::Pipeline::padded_batch` share.

use std::ops::Deref;

use kiln_ir::DType;

use super::core::{Element, Order, Spec};
use super::Queue;
use crate::{Error, Result, Tensor};

/// A first-in first-out queue whose shapes may have unknown dims (`None`): elements of
/// different sizes along them are accepted, and `dequeue_many`/`dequeue_up_to` pad each
/// component with zeros to the largest in the batch. The rank of each component is fixed.
///
/// ```
/// use kiln::{DType, Tensor};
/// let q = kiln::queue::PaddingFifoQueue::new(4, &[DType::F32], &[&[None]]).unwrap();
/// q.enqueue(&[Tensor::new(&[1.0f32])]).unwrap();
/// q.enqueue(&[Tensor::new(&[2.0f32, 3.0, 4.0])]).unwrap();
/// let b = q.dequeue_many(2).unwrap();
/// assert_eq!(b[0].shape(), &[2, 3]);
/// assert_eq!(b[0].to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 2.0, 3.0, 4.0]);
/// ```
#[derive(Clone, Debug)]
pub struct PaddingFifoQueue(Queue);

impl PaddingFifoQueue {
    /// A queue of at most `capacity` elements whose component `i` has `dtypes[i]` and a
    /// shape matching `shapes[i]` (`None` dims: any size).
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::PaddingFifoQueue::new(4, &[DType::I64], &[&[None, Some(2)]]).unwrap();
    /// assert!(q.enqueue(&[Tensor::new(&[[1i64, 2], [3, 4], [5, 6]])]).is_ok());
    /// assert!(q.enqueue(&[Tensor::new(&[[1i64, 2, 3]])]).is_err()); // second dim is 2
    /// ```
    pub fn new(capacity: usize, dtypes: &[DType], shapes: &[&[Option<usize>]]) -> Result<PaddingFifoQueue> {
        let shapes = shapes.iter().map(|s| s.to_vec()).collect();
        let spec = Spec { kind: "PaddingFifoQueue", dtypes: Some(dtypes.to_vec()), shapes: Some(shapes), pad: true };
        Ok(PaddingFifoQueue(Queue::build(spec, capacity, Order::Fifo)?))
    }
}

impl Deref for PaddingFifoQueue {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.0
    }
}

/// `t` padded at the end of each axis with `value` up to `shape` (same rank, no dim
/// smaller than `t`'s).
pub(crate) fn pad_to(op: &'static str, t: &Tensor, shape: &[usize], value: f64) -> Result<Tensor> {
    if t.rank() != shape.len() || t.shape().iter().zip(shape).any(|(have, want)| have > want) {
        return Err(Error::invalid(
            op,
            format!("cannot pad {} to shape {shape:?} (ranks must agree and no dim may shrink)", t.tensor_type()),
        ));
    }
    let mut out = t.clone();
    for (axis, &want) in shape.iter().enumerate() {
        let have = out.shape()[axis];
        if have < want {
            let mut fill_shape = out.shape().to_vec();
            fill_shape[axis] = want - have;
            let fill = Tensor::try_fill(&fill_shape, value, t.dtype())?;
            out = Tensor::try_concat(&[&out, &fill], axis as i64)?;
        }
    }
    Ok(out)
}

/// Each component of `items` stacked along a new axis 0. With `pad` (a value per
/// component), components are first padded to the largest shape in the batch (given the
/// rank they all share); otherwise their shapes must be equal. `shapes` overrides the
/// target shape of component `i` where `shapes[i][d]` is `Some`.
pub(crate) fn stack_elements(op: &'static str, what: &str, items: &[Element], pad: Option<&[f64]>) -> Result<Element> {
    stack_padded(op, what, items, pad, None)
}

/// [`stack_elements`] with fixed target dims where `shapes` says so.
pub(crate) fn stack_padded(
    op: &'static str,
    what: &str,
    items: &[Element],
    pad: Option<&[f64]>,
    shapes: Option<&[Vec<Option<usize>>]>,
) -> Result<Element> {
    let width = items.first().map_or(0, Vec::len);
    if let Some(bad) = items.iter().find(|e| e.len() != width) {
        return Err(Error::invalid(
            op,
            format!("{what}: elements have {width} and {} components; they must agree", bad.len()),
        ));
    }
    (0..width)
        .map(|c| {
            let parts: Vec<&Tensor> = items.iter().map(|e| &e[c]).collect();
            let describe = || parts.iter().map(|t| t.tensor_type().to_string()).collect::<Vec<_>>().join(", ");
            let stacked = match pad {
                None => Tensor::try_stack(&parts, 0),
                Some(values) => {
                    let rank = parts[0].rank();
                    if parts.iter().any(|t| t.rank() != rank) {
                        return Err(Error::invalid(
                            op,
                            format!("{what}: component {c} has different ranks in one batch: {}", describe()),
                        ));
                    }
                    let mut target: Vec<usize> =
                        (0..rank).map(|d| parts.iter().map(|t| t.shape()[d]).max().unwrap_or(0)).collect();
                    if let Some(fixed) = shapes.and_then(|s| s.get(c)) {
                        if fixed.len() != rank {
                            return Err(Error::invalid(
                                op,
                                format!(
                                    "{what}: component {c} has rank {rank} but its padded shape has {}",
                                    fixed.len()
                                ),
                            ));
                        }
                        for (t, f) in target.iter_mut().zip(fixed) {
                            *t = f.unwrap_or(*t);
                        }
                    }
                    let padded = parts.iter().map(|t| pad_to(op, t, &target, values[c])).collect::<Result<Vec<_>>>()?;
                    Tensor::try_stack(&padded.iter().collect::<Vec<_>>(), 0)
                }
            };
            stacked.map_err(|e| Error::invalid(op, format!("{what}: component {c} ({}): {e}", describe())))
        })
        .collect()
}
