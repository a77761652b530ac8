//! Recycled large buffers. A fresh `Vec` of hundreds of KiB or more costs a page fault per 4 KiB page
//! the first time it is written, because the allocator hands such sizes straight from (and
//! back to) the kernel; eager code that makes one temporary per op pays that on every op.
//! When the last array holding a large buffer drops, the buffer waits here instead, and the
//! next [`Uninit`](crate::Uninit) of a similar size takes it back, already mapped.
//!
//! Bounded: buffers of at least [`MIN_BYTES`], at most [`MAX_BUFFERS`] of them and
//! [`MAX_BYTES`] in all; a buffer is reused for a request of at least half its size, so a
//! small request never pins a huge buffer.

use std::sync::Mutex;

use crate::array::Data;
use crate::dtype::{DType, Element};

/// Smaller buffers are left to the allocator, which recycles them well. (glibc hands out
/// blocks from 128 KiB up as fresh mappings; a loop's per-step stacks of 256 KiB and more were
/// faulting in on every call: W7 took 10% less CPU time with this bound at 256 KiB than at 1 MiB.)
pub const MIN_BYTES: usize = 256 << 10;
pub const MAX_BUFFERS: usize = 32;
pub const MAX_BYTES: usize = 256 << 20;

/// Shelved buffers (emptied, capacity kept) and their total capacity in bytes.
static SHELF: Mutex<(Vec<Data>, usize)> = Mutex::new((Vec::new(), 0));

fn capacity_bytes(d: &Data) -> usize {
    match d {
        Data::F32(v) => v.capacity() * 4,
        Data::F64(v) => v.capacity() * 8,
        Data::I32(v) => v.capacity() * 4,
        Data::I64(v) => v.capacity() * 8,
        Data::Bool(v) => v.capacity(),
    }
}

/// An empty vector with room for `n` elements: a recycled buffer when one fits. Panics
/// with the error of [`try_take`].
pub fn take<T: Element>(n: usize) -> Vec<T> {
    try_take("alloc", n).unwrap_or_else(|e| panic!("{e}"))
}

/// [`take`], or [`Error::OutOfMemory`](crate::Error::OutOfMemory) naming `op` if there is
/// no recycled buffer and the allocator refuses.
pub fn try_take<T: Element>(op: &'static str, n: usize) -> crate::Result<Vec<T>> {
    let want = n.saturating_mul(std::mem::size_of::<T>());
    if want >= MIN_BYTES {
        let mut shelf = SHELF.lock().unwrap_or_else(|e| e.into_inner());
        let fits = |d: &Data| d.dtype() == T::DTYPE && (want..=2 * want).contains(&capacity_bytes(d));
        if let Some(i) = shelf.0.iter().position(fits) {
            let mut d = shelf.0.swap_remove(i);
            shelf.1 -= capacity_bytes(&d);
            drop(shelf);
            // `d` drops empty, so it is not shelved again.
            return Ok(std::mem::take(T::vec_mut(&mut d).expect("dtype checked")));
        }
    }
    crate::array::try_with_capacity(op, n)
}

/// `n` zeros of `dtype` in a recycled buffer when one fits (zeroing mapped memory costs
/// less than faulting fresh pages in), else freshly allocated zeroed memory.
pub fn try_take_zeroed(op: &'static str, dtype: DType, n: usize) -> crate::Result<Data> {
    fn zeros<T: Element>(op: &'static str, n: usize) -> crate::Result<Data> {
        let mut v: Vec<T> = try_take(op, n)?;
        v.resize(n, T::from_f64(0.0));
        Ok(T::into_data(v))
    }
    if n.saturating_mul(dtype.size()) < MIN_BYTES {
        return Data::try_zeros(op, dtype, n);
    }
    match dtype {
        DType::F32 => zeros::<f32>(op, n),
        DType::F64 => zeros::<f64>(op, n),
        DType::I32 => zeros::<i32>(op, n),
        DType::I64 => zeros::<i64>(op, n),
        DType::Bool => zeros::<bool>(op, n),
    }
}

/// Called when a [`Data`] drops: keeps its buffer if it is large and there is room.
pub(crate) fn give(d: &mut Data) {
    let bytes = capacity_bytes(d);
    if bytes < MIN_BYTES {
        return;
    }
    let mut shelf = SHELF.lock().unwrap_or_else(|e| e.into_inner());
    if shelf.0.len() < MAX_BUFFERS && shelf.1 + bytes <= MAX_BYTES {
        let mut kept = std::mem::replace(d, Data::Bool(Vec::new()));
        crate::with_data!(&mut kept, v => v.clear());
        shelf.0.push(kept);
        shelf.1 += bytes;
    }
}

/// Bytes currently waiting for reuse.
pub fn shelved_bytes() -> usize {
    SHELF.lock().unwrap_or_else(|e| e.into_inner()).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_large_buffer_is_taken_back_by_a_similar_request() {
        let n = MIN_BYTES + 12_345; // f32: about 1 MiB, a size no other test uses
        let v: Vec<f32> = vec![1.0; n];
        let ptr = v.as_ptr();
        drop(Data::F32(v));
        let again: Vec<f32> = take(n - 3);
        assert_eq!(again.as_ptr(), ptr, "the same buffer comes back");
        assert!(again.is_empty() && again.capacity() >= n - 3);
        // A much smaller request does not take a large buffer.
        drop(Data::F32(again));
        let small: Vec<f32> = take(n / 4);
        assert_ne!(small.as_ptr(), ptr);
        // Small buffers are not kept.
        let before = shelved_bytes();
        drop(Data::F32(vec![0.0; 16]));
        assert_eq!(shelved_bytes(), before);
    }
}
