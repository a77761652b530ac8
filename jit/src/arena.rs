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
    /// An arena of at least `bytes` bytes.
    pub fn new(bytes: usize) -> Arena {
        Arena { lines: vec![Line([0; 64]); bytes.div_ceil(64)].into_boxed_slice() }
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
        let popped = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        popped.unwrap_or_else(|| Box::new(make()))
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
