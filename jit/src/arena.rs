//! The executor's scratch memory: one 64-byte-aligned block holding every intermediate
//! buffer of a call at the offsets the memory plan chose, plus a pool of such blocks so
//! that concurrent calls each get their own without allocating in the steady state.

use std::sync::atomic::{AtomicPtr, Ordering};
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
        huge_pages(lines.as_mut_ptr() as *mut u8, n * 64);
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

/// Arenas at least this large ask for transparent huge pages.
const HUGE_MIN: usize = 4 << 20;

/// Asks Linux to back the 2 MiB-aligned part of a large, not yet touched allocation with
/// huge pages: zeroing a fresh arena then takes a few 2 MiB faults instead of one fault per
/// 4 KiB page (on a VM about 1.8 µs each: W4's first call, docs/PERFORMANCE.md). Where THP
/// is off, or elsewhere than Linux, nothing changes.
fn huge_pages(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if len >= HUGE_MIN {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + len) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside this allocation (rounded inwards to 2 MiB), and
            // MADV_HUGEPAGE only changes how its pages are backed, never their contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len, HUGE_MIN);
}

/// A free list of per-call states: take one (or make one), give it back when done.
///
/// One item sits in a lock-free slot: a function called from one thread at a time (the
/// common case) takes and gives it back with one atomic swap each, never touching the
/// mutex that holds the items concurrent calls need.
///
/// ```
/// let pool = kiln_jit::arena::Pool::new();
/// let a = pool.take(|| vec![1u8]);
/// let b = pool.take(|| vec![2u8]); // `a` is in use: a second item is made
/// pool.give(a);
/// pool.give(b);
/// assert_eq!(pool.free_count(), 2);
/// assert_eq!(*pool.take(|| vec![3u8]), vec![1u8]); // the slot's item comes back first
/// ```
pub struct Pool<T> {
    /// A free item (`Box::into_raw`), or null.
    slot: AtomicPtr<T>,
    free: Mutex<Vec<Box<T>>>,
}

impl<T> Pool<T> {
    pub fn new() -> Pool<T> {
        Pool { slot: AtomicPtr::new(std::ptr::null_mut()), free: Mutex::new(Vec::new()) }
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
        let p = self.slot.swap(std::ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null slot holds a pointer from `Box::into_raw` in `give`, and the
            // swap made this thread its only owner.
            return Ok(unsafe { Box::from_raw(p) });
        }
        let popped = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match popped {
            Some(item) => Ok(item),
            None => make().map(Box::new),
        }
    }

    /// Returns an item for reuse.
    pub fn give(&self, item: Box<T>) {
        let p = Box::into_raw(item);
        if self.slot.compare_exchange(std::ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed).is_err() {
            // SAFETY: the exchange failed, so `p` (from `Box::into_raw` above) is still ours.
            let item = unsafe { Box::from_raw(p) };
            self.free.lock().unwrap_or_else(|e| e.into_inner()).push(item);
        }
    }

    /// Items currently free.
    pub fn free_count(&self) -> usize {
        let in_slot = usize::from(!self.slot.load(Ordering::Acquire).is_null());
        in_slot + self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        let p = *self.slot.get_mut();
        if !p.is_null() {
            // SAFETY: a non-null slot holds a pointer from `Box::into_raw` that nobody else
            // can take any more (`&mut self`).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool::new()
    }
}
