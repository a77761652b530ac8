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
    backing: Backing,
}

/// Where an arena's bytes live: small ones on the heap; on Linux, large ones in a mapping of
/// their own, aligned to and sized in whole huge pages.
enum Backing {
    Lines(Box<[Line]>),
    #[cfg(target_os = "linux")]
    Mapped(huge::Mapping),
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
        let refused = || kiln_ir::Error::OutOfMemory { op: "executor", bytes, what: "the arena".into() };
        #[cfg(target_os = "linux")]
        if bytes >= huge::MIN_BYTES {
            return huge::Mapping::new(bytes).map(|m| Arena { backing: Backing::Mapped(m) }).ok_or_else(refused);
        }
        let n = bytes.div_ceil(64);
        let mut lines = kiln_ir::array::try_with_capacity("executor", n).map_err(|_| refused())?;
        lines.resize(n, Line([0; 64]));
        Ok(Arena { backing: Backing::Lines(lines.into_boxed_slice()) })
    }

    /// Usable size in bytes.
    pub fn len(&self) -> usize {
        match &self.backing {
            Backing::Lines(lines) => lines.len() * 64,
            #[cfg(target_os = "linux")]
            Backing::Mapped(m) => m.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The base address; valid for [`Arena::len`] bytes while `self` is alive (the bytes
    /// are not inside the `Arena` value, so moving it is fine).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        match &mut self.backing {
            Backing::Lines(lines) => lines.as_mut_ptr() as *mut u8,
            #[cfg(target_os = "linux")]
            Backing::Mapped(m) => m.ptr,
        }
    }
}

/// Large arenas as anonymous mappings backed by transparent huge pages.
///
/// A fresh arena's first call touches every page of it. A heap allocation is aligned to
/// 4 KiB, so most of it faults in 4 KiB at a time (about 1.8–2.1 µs a fault on the VMs
/// measured: W4's first call, docs/PERFORMANCE.md), and it was then zeroed once more by
/// hand. A mapping of its own aligned to 2 MiB and sized in whole 2 MiB pages faults in a
/// few huge pages, and comes zeroed from the kernel. Where THP is off, it is an ordinary
/// mapping of 4 KiB pages, still zeroed.
#[cfg(target_os = "linux")]
mod huge {
    /// Arenas at least this large get a mapping of their own (so at most half of one is the
    /// rounding up to whole huge pages, which a call touches only if it writes there). At
    /// 2.7 MB, W3's arena as a heap block faulted in 4 KiB at a time: 1,056 first-call
    /// faults and W4 4.5 ms, against ~400 and 3.3 ms as two huge pages. Since the plan gives
    /// slots only to values the executor writes there, it is 1.6 MB: one huge page.
    pub(super) const MIN_BYTES: usize = 1 << 20;
    const HUGE: usize = 2 << 20;

    pub(super) struct Mapping {
        pub(super) ptr: *mut u8,
        pub(super) len: usize,
    }

    // SAFETY: a `Mapping` owns its pages exclusively, like a `Box<[u8]>`.
    unsafe impl Send for Mapping {}
    // SAFETY: `&Mapping` gives access to nothing but the address and length.
    unsafe impl Sync for Mapping {}

    impl Mapping {
        /// `bytes` rounded up to whole huge pages at a huge-page boundary, or `None` if the
        /// kernel refuses.
        pub(super) fn new(bytes: usize) -> Option<Mapping> {
            let len = bytes.checked_next_multiple_of(HUGE)?;
            let reserve = len.checked_add(HUGE)?;
            // SAFETY: a fresh private anonymous mapping aliases nothing.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    reserve,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return None;
            }
            let base = base as usize;
            let start = base.next_multiple_of(HUGE);
            // SAFETY: the head [base, start) and the tail [start + len, base + reserve) lie
            // inside the mapping just made and nothing points into them; what is left is
            // exactly [start, start + len). MADV_HUGEPAGE changes how those pages are backed,
            // never their contents (its failure leaves 4 KiB pages).
            unsafe {
                if start > base {
                    libc::munmap(base as *mut libc::c_void, start - base);
                }
                let tail = base + reserve - (start + len);
                if tail > 0 {
                    libc::munmap((start + len) as *mut libc::c_void, tail);
                }
                libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
            Some(Mapping { ptr: start as *mut u8, len })
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: [ptr, ptr + len) is the mapping `new` kept, and this is its only owner.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size class, on either side of the mapped threshold: at least the bytes asked
    /// for, aligned, zeroed, and writable to the last byte.
    #[test]
    fn arenas_are_zeroed_aligned_and_whole() {
        for bytes in [1, 64, 4095, (1 << 20) - 1, 1 << 20, (2 << 20) - 1, 2 << 20, (3 << 20) + 3, 9 << 20] {
            let mut a = Arena::try_new(bytes).unwrap();
            assert!(a.len() >= bytes);
            let p = a.as_mut_ptr();
            assert_eq!(p as usize % 64, 0);
            #[cfg(target_os = "linux")]
            if bytes >= huge::MIN_BYTES {
                assert_eq!(p as usize % (2 << 20), 0, "{bytes} bytes");
                assert_eq!(a.len() % (2 << 20), 0, "{bytes} bytes");
            }
            // SAFETY: the arena is valid for `len()` bytes and nothing else points into it.
            let s = unsafe { std::slice::from_raw_parts_mut(p, a.len()) };
            assert!(s.iter().step_by(4093).all(|&b| b == 0) && s[s.len() - 1] == 0);
            s[0] = 1;
            let last = s.len() - 1;
            s[last] = 2;
            let moved = a; // the bytes do not move with the value
            drop(moved);
        }
    }

    #[test]
    fn an_impossible_arena_is_refused() {
        for bytes in [1 << 60, usize::MAX - (1 << 20)] {
            assert!(matches!(Arena::try_new(bytes), Err(kiln_ir::Error::OutOfMemory { .. })));
        }
    }
}
