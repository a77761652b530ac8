//! `RandomShuffleQueue`: dequeues a uniformly random stored element (TF's
//! `tf.queue.RandomShuffleQueue`).

use std::ops::Deref;

use kiln_ir::DType;

use super::core::{Order, Spec};
use super::Queue;
use crate::data::SplitMix;
use crate::{Error, Result};

/// A queue that hands out its elements in random order: each dequeue takes one uniformly
/// among those stored, and (until the queue closes) waits while no more than
/// `min_after_dequeue` are stored, so that many stay behind to mix with later ones. The
/// order is a function of the seed and the sequence of operations: reproducible for a given
/// seed when one thread drives the queue (not TF's order: its generator differs).
///
/// ```
/// use kiln::{DType, Tensor};
/// let q = kiln::queue::RandomShuffleQueue::new(10, 2, &[DType::I64], &[&[]], 7).unwrap();
/// q.enqueue_many(&[Tensor::new(&[0i64, 1, 2, 3, 4])]).unwrap();
/// q.close(false);                                  // now the last two may leave as well
/// let mut out: Vec<i64> = (0..5).map(|_| q.dequeue().unwrap()[0].to_scalar::<i64>().unwrap()).collect();
/// out.sort();
/// assert_eq!(out, vec![0, 1, 2, 3, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct RandomShuffleQueue(Queue);

impl RandomShuffleQueue {
    /// A queue of at most `capacity` elements of the given dtypes and shapes, keeping
    /// `min_after_dequeue` (< `capacity`) behind until closed, shuffling from `seed`.
    ///
    /// ```
    /// use kiln::DType;
    /// assert!(kiln::queue::RandomShuffleQueue::new(4, 4, &[DType::F32], &[&[]], 0).is_err());
    /// ```
    pub fn new(
        capacity: usize,
        min_after_dequeue: usize,
        dtypes: &[DType],
        shapes: &[&[usize]],
        seed: u64,
    ) -> Result<RandomShuffleQueue> {
        if min_after_dequeue >= capacity {
            return Err(Error::invalid(
                "RandomShuffleQueue",
                format!("min_after_dequeue ({min_after_dequeue}) must be below the capacity ({capacity})"),
            ));
        }
        let shapes = shapes.iter().map(|s| s.iter().map(|&d| Some(d)).collect()).collect();
        let spec = Spec { kind: "RandomShuffleQueue", dtypes: Some(dtypes.to_vec()), shapes: Some(shapes), pad: false };
        let order = Order::Shuffle { min_after_dequeue, rng: SplitMix(seed) };
        Ok(RandomShuffleQueue(Queue::build(spec, capacity, order)?))
    }
}

impl Deref for RandomShuffleQueue {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.0
    }
}
