//! `prefetch`: the upstream stages run ahead on a background thread, handing elements to
//! the consumer through a `queue::FifoQueue`.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::pipeline::{Element, Elements, Pipeline};
use crate::queue::FifoQueue;
use crate::{Error, Result};

impl Pipeline {
    /// Runs the stages so far on a background thread, up to `buffer_size` elements ahead of
    /// the consumer (`tf.data.Dataset.prefetch`), so input work overlaps with what the
    /// consumer does with each element (a training step). Each pass starts its own thread,
    /// named `kiln-prefetch`. An upstream `Err` reaches the consumer after the elements
    /// before it, and ends the pass. Dropping the pass's iterator closes the buffer and
    /// joins the thread (which stops at its next element): no thread outlives its pass.
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 100).batch(10, false).prefetch(2);
    /// assert_eq!(p.iter().count(), 10);
    /// let mut it = p.iter();
    /// it.next();
    /// drop(it);                                        // stops and joins its thread
    /// ```
    #[track_caller]
    pub fn prefetch(self, buffer_size: usize) -> Pipeline {
        assert!(buffer_size > 0, "prefetch buffer_size must be at least 1");
        let up = self;
        Pipeline::from_fn(move || match Prefetch::start(up.iter(), buffer_size) {
            Ok(p) => Box::new(p) as Elements,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
    }
}

/// One pass's consumer end.
struct Prefetch {
    queue: FifoQueue,
    /// The upstream error that ended the pass, handed out once the buffer is drained.
    failure: Arc<Mutex<Option<Error>>>,
    producer: Option<JoinHandle<()>>,
    done: bool,
}

impl Prefetch {
    fn start(mut up: Elements, buffer_size: usize) -> Result<Prefetch> {
        let queue = FifoQueue::untyped(buffer_size)?;
        let failure = Arc::new(Mutex::new(None));
        let (q, slot) = (queue.clone(), failure.clone());
        let producer = std::thread::Builder::new()
            .name("kiln-prefetch".into())
            .spawn(move || {
                for e in up.by_ref() {
                    let sent = match e {
                        Ok(e) => q.enqueue(&e),
                        Err(err) => {
                            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                            break;
                        }
                    };
                    // An enqueue fails only once the consumer has gone (closed the queue).
                    if sent.is_err() {
                        return;
                    }
                }
                q.close(false);
            })
            .map_err(|e| Error::runtime("Pipeline::prefetch", format!("cannot start its thread: {e}")))?;
        Ok(Prefetch { queue, failure, producer: Some(producer), done: false })
    }
}

impl Iterator for Prefetch {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if self.done {
            return None;
        }
        match self.queue.dequeue() {
            Ok(e) => Some(Ok(e)),
            // Closed and drained: the producer finished, or failed.
            Err(_) => {
                self.done = true;
                self.failure.lock().unwrap_or_else(|p| p.into_inner()).take().map(Err)
            }
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.queue.close(true);
        if let Some(t) = self.producer.take() {
            // A panic in an upstream stage already printed its message; nothing to add.
            let _ = t.join();
        }
    }
}
