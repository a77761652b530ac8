//! The executor's scratch memory: one 64-byte-aligned block holding every intermediate
//! buffer of a call at the offsets the memory plan chose, plus a pool of such blocks so
//! that concurrent calls each get their own without allocating in the steady state.

use std::sync::Mutex;

/// One cache line; the arena is a slice of these so its base is 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zero-initialized, 64-byte-aligned byte buffer.
///
/// ```
/// let mut a = kiln_jit::arena::Arena::new(100);
/// assert!(a.len() >= 100);
/// assert_eq!(a.as_mut_ptr() as usize % 64, 0);
/// ```
pub struct Arena {
    lines: Box<[Line]>,
}

impl Arena {
    /// An arena of at least `bytes` bytes; panics with the error of [`Arena::try_new`].
    pub fn new(bytes: usize) -> Arena {
        Arena::try_new(bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An arena of at least `bytes` bytes, or `Error::OutOfMemory` if the allocator
    /// refuses (a graph file may declare values no machine can hold).
    ///
    /// ```
    /// assert!(kiln_jit::arena::Arena::try_new(1 << 60).is_err());
    /// ```
    pub fn try_new(bytes: usize) -> kiln_ir::Result<Arena> {
        let n = bytes.div_ceil(64);
        let mut lines = kiln_ir::array::try_with_capacity("executor", n).map_err(|_| kiln_ir::Error::OutOfMemory {
            op: "executor",
            bytes,
            what: "the arena".into(),
        })?;
        lines.resize(n, Line([0; 64]));
        Ok(Arena { lines: lines.into_boxed_slice() })
    }

    /// Usable size in bytes.
    pub fn len(&self) -> usize {
        self.lines.len() * 64
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The base address; valid for [`Arena::len`] bytes while `self` is alive and not moved
    /// out of its box (the lines are heap-allocated, so moving the `Arena` itself is fine).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr() as *mut u8
    }
}

/// A free list of per-call states: take one (or make one), give it back when done.
pub struct Pool<T> {
    free: Mutex<Vec<Box<T>>>,
}

impl<T> Pool<T> {
    pub fn new() -> Pool<T> {
        Pool { free: Mutex::new(Vec::new()) }
    }

    /// A free item, or a new one from `make` if all are in use.
    pub fn take(&self, make: impl FnOnce() -> T) -> Box<T> {
        let made: Result<Box<T>, std::convert::Infallible> = self.try_take(|| Ok(make()));
        match made {
            Ok(item) => item,
        }
    }

    /// [`Pool::take`] with a `make` that may fail.
    pub fn try_take<E>(&self, make: impl FnOnce() -> Result<T, E>) -> Result<Box<T>, E> {
        let popped = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match popped {
            Some(item) => Ok(item),
            None => make().map(Box::new),
        }
    }

    /// Returns an item for reuse.
    pub fn give(&self, item: Box<T>) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    }

    /// Items currently free.
    pub fn free_count(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool::new()
    }
}
