//! Queues shared across threads (TensorFlow's `tf.queue`): [`FifoQueue`],
//! [`PaddingFifoQueue`] and [`RandomShuffleQueue`]. Each is a clonable handle to one queue
//! (an `Arc` inside); every operation is on [`Queue`], which the three deref to.
//!
//! An element is a `Vec<Tensor>`, one tensor per component, checked against the queue's
//! dtypes and shapes when enqueued. Blocking is a `Mutex` and two `Condvar`s (no busy
//! waiting); every blocking call has a `_timeout` variant that gives up with an `Err`.
//! Queues hold concrete tensors and are host objects: they do not trace (a symbolic tensor
//! is an `Err`), as in TF 2 where queues are eager-only.
//!
//! ```
//! use kiln::{DType, Tensor};
//! let q = kiln::queue::FifoQueue::new(8, &[DType::F32], &[&[2]]).unwrap();
//! let producer = {
//!     let q = q.clone();
//!     std::thread::spawn(move || q.enqueue(&[Tensor::new(&[1.0f32, 2.0])]))
//! };
//! let item = q.dequeue().unwrap();                 // blocks until the producer enqueues
//! producer.join().unwrap().unwrap();
//! assert_eq!(item[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
//! ```

mod core;
mod fifo;
mod padding;
mod shuffle;

pub use self::core::Queue;
pub(crate) use self::core::{row, unstack};
pub use fifo::FifoQueue;
pub use padding::PaddingFifoQueue;
pub(crate) use padding::{stack_elements, stack_padded};
pub use shuffle::RandomShuffleQueue;
