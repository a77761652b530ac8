//! `FifoQueue`: first in, first out (TF's `tf.queue.FIFOQueue`).

use std::ops::Deref;

use kiln_ir::DType;

use super::core::{Order, Spec};
use super::Queue;
use crate::Result;

/// A first-in first-out queue of elements with fixed dtypes and shapes. A clonable handle:
/// clones share one queue. Operations: [`Queue`].
///
/// ```
/// use kiln::{DType, Tensor};
/// let q = kiln::queue::FifoQueue::new(8, &[DType::F32], &[&[2]]).unwrap();
/// q.enqueue(&[Tensor::new(&[1.0f32, 2.0])]).unwrap();
/// q.enqueue(&[Tensor::new(&[3.0f32, 4.0])]).unwrap();
/// assert_eq!(q.dequeue().unwrap()[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// ```
#[derive(Clone, Debug)]
pub struct FifoQueue(Queue);

impl FifoQueue {
    /// A queue of at most `capacity` elements whose component `i` has `dtypes[i]` and
    /// `shapes[i]` (`&[]` is a scalar).
    ///
    /// ```
    /// use kiln::DType;
    /// assert!(kiln::queue::FifoQueue::new(0, &[DType::F32], &[&[]]).is_err());
    /// assert!(kiln::queue::FifoQueue::new(2, &[DType::F32], &[&[], &[3]]).is_err());
    /// ```
    pub fn new(capacity: usize, dtypes: &[DType], shapes: &[&[usize]]) -> Result<FifoQueue> {
        let shapes = shapes.iter().map(|s| s.iter().map(|&d| Some(d)).collect()).collect();
        let spec = Spec { kind: "FifoQueue", dtypes: Some(dtypes.to_vec()), shapes: Some(shapes), pad: false };
        Ok(FifoQueue(Queue::build(spec, capacity, Order::Fifo)?))
    }

    /// A queue that takes elements of any dtypes and shapes (prefetch's buffer).
    pub(crate) fn untyped(capacity: usize) -> Result<FifoQueue> {
        let spec = Spec { kind: "FifoQueue", dtypes: None, shapes: None, pad: false };
        Ok(FifoQueue(Queue::build(spec, capacity, Order::Fifo)?))
    }
}

impl Deref for FifoQueue {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.0
    }
}
