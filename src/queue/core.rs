//! The queue every kind shares: storage, the element spec, blocking and closing. The kinds
//! differ only in which element a dequeue takes ([`Order`]) and how a batch is assembled
//! (padded or not).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kiln_ir::DType;

use crate::data::SplitMix;
use crate::{Error, Result, Tensor};

/// An element: one tensor per component.
pub(crate) type Element = Vec<Tensor>;

/// The dtypes and shapes elements must have. `None` dims are unknown (any size); `shapes`
/// of `None` accepts any shape; `dtypes` of `None` accepts anything (prefetch's buffer).
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub kind: &'static str,
    pub dtypes: Option<Vec<DType>>,
    pub shapes: Option<Vec<Vec<Option<usize>>>>,
    /// Whether `dequeue_many` pads components to the largest in the batch.
    pub pad: bool,
}

/// Which element a dequeue takes.
pub(crate) enum Order {
    Fifo,
    /// Uniformly at random among the stored elements, keeping at least `min_after_dequeue`
    /// behind until the queue closes.
    Shuffle {
        min_after_dequeue: usize,
        rng: SplitMix,
    },
}

struct State {
    items: VecDeque<Element>,
    closed: bool,
    /// Closed with `cancel_pending`: blocked enqueues give up too.
    cancelled: bool,
    order: Order,
}

impl State {
    /// How many elements must stay behind while the queue is open.
    fn kept_behind(&self) -> usize {
        match &self.order {
            Order::Shuffle { min_after_dequeue, .. } => *min_after_dequeue,
            Order::Fifo => 0,
        }
    }

    /// How many elements a dequeue may take now.
    fn available(&self) -> usize {
        if self.closed {
            self.items.len()
        } else {
            self.items.len().saturating_sub(self.kept_behind())
        }
    }

    fn take(&mut self, n: usize) -> Vec<Element> {
        (0..n)
            .map(|_| match &mut self.order {
                Order::Fifo => self.items.pop_front(),
                Order::Shuffle { rng, .. } => {
                    let j = (rng.next() % self.items.len() as u64) as usize;
                    self.items.swap_remove_back(j)
                }
            })
            .map(|e| e.expect("take is called with n <= len"))
            .collect()
    }
}

struct Shared {
    spec: Spec,
    capacity: usize,
    state: Mutex<State>,
    /// Signalled when elements arrive or the queue closes.
    readable: Condvar,
    /// Signalled when room frees up or the queue closes.
    writable: Condvar,
}

/// A queue of elements shared by every clone of its handle: the operations of
/// [`FifoQueue`](super::FifoQueue), [`PaddingFifoQueue`](super::PaddingFifoQueue) and
/// [`RandomShuffleQueue`](super::RandomShuffleQueue).
///
/// ```
/// use kiln::{DType, Tensor};
/// let q = kiln::queue::FifoQueue::new(4, &[DType::I64], &[&[]]).unwrap();
/// q.enqueue_many(&[Tensor::new(&[1i64, 2, 3])]).unwrap();
/// assert_eq!(q.size(), 3);
/// let two = q.dequeue_many(2).unwrap();
/// assert_eq!(two[0].to_vec::<i64>().unwrap(), vec![1, 2]);
/// q.close(false);
/// assert_eq!(q.dequeue().unwrap()[0].to_scalar::<i64>().unwrap(), 3); // drains after close
/// assert!(q.dequeue().is_err());
/// ```
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}(size {} of {}", self.shared.spec.kind, self.size(), self.shared.capacity)?;
        if self.is_closed() {
            write!(f, ", closed")?;
        }
        write!(f, ")")
    }
}

/// What the queue's dimension list reads like in messages: `f32[2,?]`.
fn fmt_spec(dtype: Option<DType>, shape: Option<&[Option<usize>]>) -> String {
    let dt = dtype.map_or("?".to_string(), |d| d.to_string());
    match shape {
        None => format!("{dt}[any shape]"),
        Some(s) => {
            let dims: Vec<String> = s.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
            format!("{dt}[{}]", dims.join(","))
        }
    }
}

impl Queue {
    pub(crate) fn build(spec: Spec, capacity: usize, order: Order) -> Result<Queue> {
        if capacity == 0 {
            return Err(Error::invalid(spec.kind, "capacity must be at least 1"));
        }
        if let (Some(d), Some(s)) = (&spec.dtypes, &spec.shapes) {
            if d.len() != s.len() {
                return Err(Error::invalid(
                    spec.kind,
                    format!("{} dtypes but {} shapes (one shape per component)", d.len(), s.len()),
                ));
            }
        }
        if spec.dtypes.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid(spec.kind, "needs at least one component"));
        }
        let state = State { items: VecDeque::new(), closed: false, cancelled: false, order };
        Ok(Queue {
            shared: Arc::new(Shared {
                spec,
                capacity,
                state: Mutex::new(state),
                readable: Condvar::new(),
                writable: Condvar::new(),
            }),
        })
    }

    fn kind(&self) -> &'static str {
        self.shared.spec.kind
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every mutation is a
        // single push or pop), so a poisoned lock is still usable.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `cv` until notified or `deadline`; an `Err` once the deadline has passed.
    fn wait<'a>(
        &self,
        cv: &Condvar,
        g: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        what: &str,
    ) -> Result<MutexGuard<'a, State>> {
        let Some(deadline) = deadline else {
            return Ok(cv.wait(g).unwrap_or_else(|e| e.into_inner()));
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::runtime(self.kind(), format!("{what}: timed out")));
        }
        Ok(cv.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0)
    }

    /// Checks one element against the spec: an `Err` names the component, expected and got.
    fn check(&self, what: &str, element: &[Tensor]) -> Result<()> {
        let spec = &self.shared.spec;
        if let Some(dtypes) = &spec.dtypes {
            if element.len() != dtypes.len() {
                return Err(Error::invalid(
                    self.kind(),
                    format!("{what}: expected {} components, got {}", dtypes.len(), element.len()),
                ));
            }
        }
        for (i, t) in element.iter().enumerate() {
            if t.is_symbolic() {
                return Err(Error::invalid(
                    self.kind(),
                    format!("{what}: component {i} is symbolic; queues hold concrete tensors and do not trace"),
                ));
            }
            let dtype = spec.dtypes.as_ref().map(|d| d[i]);
            let shape = spec.shapes.as_ref().map(|s| s[i].as_slice());
            let dtype_ok = dtype.is_none_or(|d| d == t.dtype());
            let shape_ok = shape.is_none_or(|s| {
                s.len() == t.rank() && s.iter().zip(t.shape()).all(|(want, got)| want.is_none_or(|w| w == *got))
            });
            if !dtype_ok || !shape_ok {
                return Err(Error::invalid(
                    self.kind(),
                    format!("{what}: component {i}: expected {}, got {}", fmt_spec(dtype, shape), t.tensor_type()),
                ));
            }
        }
        Ok(())
    }

    /// Enqueues `elements` in order, waiting for room as needed. A closed queue refuses new
    /// enqueues; one already waiting completes unless the close cancelled pending enqueues.
    fn put(&self, what: &str, elements: Vec<Element>, deadline: Option<Instant>) -> Result<()> {
        for e in &elements {
            self.check(what, e)?;
        }
        let mut g = self.lock();
        if g.closed {
            return Err(Error::runtime(self.kind(), format!("{what}: the queue is closed")));
        }
        for e in elements {
            loop {
                // Checked even when room has freed up: a cancelled enqueue never lands.
                if g.cancelled {
                    return Err(Error::runtime(self.kind(), format!("{what}: cancelled (the queue was closed)")));
                }
                if g.items.len() < self.shared.capacity {
                    break;
                }
                g = self.wait(&self.shared.writable, g, deadline, what)?;
            }
            g.items.push_back(e);
            // Waiters want different counts (dequeue vs dequeue_many): wake them all.
            self.shared.readable.notify_all();
        }
        Ok(())
    }

    /// Dequeues `n` elements at once, waiting until they are available. After a close,
    /// what is left is handed out; `up_to` then accepts fewer than `n` (but not none).
    fn take(&self, what: &str, n: usize, up_to: bool, deadline: Option<Instant>) -> Result<Vec<Element>> {
        let mut g = self.lock();
        let keep = g.kept_behind();
        if n == 0 || n + keep > self.shared.capacity {
            return Err(Error::invalid(
                self.kind(),
                format!(
                    "{what}: cannot take {n} elements from a queue of capacity {} (keeping {keep} behind)",
                    self.shared.capacity
                ),
            ));
        }
        loop {
            if g.available() >= n {
                break;
            }
            if g.closed {
                let left = g.items.len();
                if up_to && left > 0 {
                    let items = g.take(left.min(n));
                    self.shared.writable.notify_all();
                    return Ok(items);
                }
                return Err(Error::runtime(
                    self.kind(),
                    format!("{what}: the queue is closed and has {left} of the {n} elements requested"),
                ));
            }
            g = self.wait(&self.shared.readable, g, deadline, what)?;
        }
        let items = g.take(n);
        self.shared.writable.notify_all();
        Ok(items)
    }

    /// Stacks (or pads and stacks) dequeued elements along a new axis 0.
    fn batch(&self, what: &str, items: Vec<Element>) -> Result<Element> {
        let pad = self.shared.spec.pad.then(|| vec![0.0; items[0].len()]);
        super::stack_elements(self.kind(), what, &items, pad.as_deref())
    }

    /// Adds one element, waiting while the queue is full.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(1, &[DType::F32], &[&[2]]).unwrap();
    /// q.enqueue(&[Tensor::new(&[1.0f32, 2.0])]).unwrap();
    /// let e = q.enqueue(&[Tensor::new(&[1.0f32, 2.0, 3.0])]).unwrap_err();
    /// assert!(e.to_string().contains("component 0: expected f32[2], got f32[3]"), "{e}");
    /// ```
    pub fn enqueue(&self, element: &[Tensor]) -> Result<()> {
        self.put("enqueue", vec![element.to_vec()], None)
    }

    /// [`Queue::enqueue`], giving up with an `Err` after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(1, &[DType::F32], &[&[]]).unwrap();
    /// q.enqueue(&[Tensor::scalar(1.0f32)]).unwrap();
    /// assert!(q.enqueue_timeout(&[Tensor::scalar(2.0f32)], Duration::from_millis(10)).is_err()); // full
    /// ```
    pub fn enqueue_timeout(&self, element: &[Tensor], timeout: Duration) -> Result<()> {
        self.put("enqueue", vec![element.to_vec()], Some(Instant::now() + timeout))
    }

    /// Enqueues each slice along axis 0 of `components` (which share their first dimension)
    /// as one element, in order, waiting for room as needed.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(4, &[DType::F32, DType::I64], &[&[2], &[]]).unwrap();
    /// q.enqueue_many(&[Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]]), Tensor::new(&[7i64, 8])]).unwrap();
    /// assert_eq!(q.dequeue().unwrap()[1].to_scalar::<i64>().unwrap(), 7);
    /// ```
    pub fn enqueue_many(&self, components: &[Tensor]) -> Result<()> {
        self.put("enqueue_many", unstack(self.kind(), "enqueue_many", components)?, None)
    }

    /// Takes the next element, waiting until there is one. A closed, empty queue is an `Err`.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(2, &[DType::F32], &[&[]]).unwrap();
    /// q.enqueue(&[Tensor::scalar(5.0f32)]).unwrap();
    /// assert_eq!(q.dequeue().unwrap()[0].to_scalar::<f32>().unwrap(), 5.0);
    /// ```
    pub fn dequeue(&self) -> Result<Element> {
        Ok(self.take("dequeue", 1, false, None)?.remove(0))
    }

    /// [`Queue::dequeue`], giving up with an `Err` after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kiln::DType;
    /// let q = kiln::queue::FifoQueue::new(2, &[DType::F32], &[&[]]).unwrap();
    /// let e = q.dequeue_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(e.to_string().contains("timed out"));
    /// ```
    pub fn dequeue_timeout(&self, timeout: Duration) -> Result<Element> {
        Ok(self.take("dequeue", 1, false, Some(Instant::now() + timeout))?.remove(0))
    }

    /// Takes `n` elements at once, stacked along a new axis 0 (a [`PaddingFifoQueue`]
    /// first pads unknown dims to the largest in the batch). Waits until `n` are available;
    /// a closed queue with fewer left is an `Err` and keeps them.
    ///
    /// [`PaddingFifoQueue`]: super::PaddingFifoQueue
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(4, &[DType::F32], &[&[2]]).unwrap();
    /// q.enqueue(&[Tensor::new(&[1.0f32, 2.0])]).unwrap();
    /// q.enqueue(&[Tensor::new(&[3.0f32, 4.0])]).unwrap();
    /// assert_eq!(q.dequeue_many(2).unwrap()[0].shape(), &[2, 2]);
    /// ```
    pub fn dequeue_many(&self, n: usize) -> Result<Element> {
        let items = self.take("dequeue_many", n, false, None)?;
        self.batch("dequeue_many", items)
    }

    /// [`Queue::dequeue_many`], giving up with an `Err` after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(4, &[DType::F32], &[&[]]).unwrap();
    /// q.enqueue(&[Tensor::scalar(1.0f32)]).unwrap();
    /// assert!(q.dequeue_many_timeout(2, Duration::from_millis(10)).is_err());
    /// assert_eq!(q.size(), 1);                        // nothing was taken
    /// ```
    pub fn dequeue_many_timeout(&self, n: usize, timeout: Duration) -> Result<Element> {
        let items = self.take("dequeue_many", n, false, Some(Instant::now() + timeout))?;
        self.batch("dequeue_many", items)
    }

    /// [`Queue::dequeue_many`], except that once the queue is closed it returns what is
    /// left (fewer than `n`, at least one) instead of an `Err`.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(4, &[DType::F32], &[&[]]).unwrap();
    /// q.enqueue_many(&[Tensor::new(&[1.0f32, 2.0, 3.0])]).unwrap();
    /// q.close(false);
    /// assert_eq!(q.dequeue_up_to(2).unwrap()[0].shape(), &[2]);
    /// assert_eq!(q.dequeue_up_to(2).unwrap()[0].shape(), &[1]);
    /// assert!(q.dequeue_up_to(2).is_err());
    /// ```
    pub fn dequeue_up_to(&self, n: usize) -> Result<Element> {
        let items = self.take("dequeue_up_to", n, true, None)?;
        self.batch("dequeue_up_to", items)
    }

    /// Closes the queue: enqueues fail from now on, dequeues drain what is left and then
    /// fail, and waiting dequeues that can no longer be served wake with an `Err`. With
    /// `cancel_pending`, enqueues already waiting for room wake with an `Err` too (without,
    /// they complete as room frees up, as in TF).
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let q = kiln::queue::FifoQueue::new(2, &[DType::F32], &[&[]]).unwrap();
    /// let waiter = { let q = q.clone(); std::thread::spawn(move || q.dequeue()) };
    /// q.close(false);
    /// assert!(waiter.join().unwrap().is_err());
    /// assert!(q.is_closed());
    /// assert!(q.enqueue(&[Tensor::scalar(1.0f32)]).is_err());
    /// ```
    pub fn close(&self, cancel_pending: bool) {
        let mut g = self.lock();
        g.closed = true;
        g.cancelled |= cancel_pending;
        self.shared.readable.notify_all();
        self.shared.writable.notify_all();
    }

    /// Whether [`Queue::close`] was called.
    ///
    /// ```
    /// let q = kiln::queue::FifoQueue::new(1, &[kiln::DType::F32], &[&[]]).unwrap();
    /// assert!(!q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The number of elements in the queue now.
    ///
    /// ```
    /// let q = kiln::queue::FifoQueue::new(1, &[kiln::DType::F32], &[&[]]).unwrap();
    /// assert_eq!(q.size(), 0);
    /// ```
    pub fn size(&self) -> usize {
        self.lock().items.len()
    }

    /// The most elements the queue holds.
    ///
    /// ```
    /// let q = kiln::queue::FifoQueue::new(3, &[kiln::DType::F32], &[&[]]).unwrap();
    /// assert_eq!(q.capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// The components' dtypes.
    ///
    /// ```
    /// use kiln::DType;
    /// let q = kiln::queue::FifoQueue::new(3, &[DType::F32, DType::I64], &[&[], &[]]).unwrap();
    /// assert_eq!(q.dtypes(), vec![DType::F32, DType::I64]);
    /// ```
    pub fn dtypes(&self) -> Vec<DType> {
        self.shared.spec.dtypes.clone().unwrap_or_default()
    }
}

/// The elements of `components` along axis 0 (which they must share).
pub(crate) fn unstack(op: &'static str, what: &str, components: &[Tensor]) -> Result<Vec<Element>> {
    let n = components.first().and_then(|t| t.shape().first().copied());
    let Some(n) = n.filter(|&n| components.iter().all(|t| t.shape().first() == Some(&n))) else {
        let got: Vec<String> = components.iter().map(|t| t.tensor_type().to_string()).collect();
        return Err(Error::invalid(
            op,
            format!("{what}: components need the same first dimension, got ({})", got.join(", ")),
        ));
    };
    (0..n).map(|i| components.iter().map(|t| row(t, i)).collect()).collect()
}

/// Slice `i` of `t` along axis 0.
pub(crate) fn row(t: &Tensor, i: usize) -> Result<Tensor> {
    let idx = Tensor::from_vec(vec![i as i64], &[1])?;
    t.try_gather(&idx, 0)?.try_reshape(&t.shape()[1..])
}
