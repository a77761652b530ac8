//! Index arithmetic shared by the kernels: which buffer element each output element reads.
//!
//! Every movement op (broadcast, transpose, slice) is "walk the output in row-major order and
//! read the input at `base + Σ index[i] * strides[i]`". Computing those offsets once, plainly,
//! keeps every kernel a one-line gather.

use crate::shape::{broadcast_strides, strides};

/// The buffer offset of each element of `shape` (row-major order), where moving one step
/// along axis `i` moves `strides[i]` elements (possibly negative or zero) from `base`.
pub(crate) fn offsets(shape: &[usize], strides: &[isize], base: isize) -> Vec<usize> {
    debug_assert_eq!(shape.len(), strides.len());
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut index = vec![0usize; shape.len()];
    let mut offset = base;
    for _ in 0..n {
        out.push(offset as usize);
        // Odometer step: bump the last axis, carrying into earlier axes.
        for ax in (0..shape.len()).rev() {
            index[ax] += 1;
            offset += strides[ax];
            if index[ax] < shape[ax] {
                break;
            }
            offset -= strides[ax] * shape[ax] as isize;
            index[ax] = 0;
        }
    }
    out
}

/// Offsets into an operand of shape `from` read as if it had shape `to` (numpy broadcasting).
pub(crate) fn broadcast_offsets(from: &[usize], to: &[usize]) -> Vec<usize> {
    let s: Vec<isize> = broadcast_strides(from, to).iter().map(|&s| s as isize).collect();
    offsets(to, &s, 0)
}

/// Where each output element of a broadcasting op reads one operand: the same index when
/// the operand already has the output's shape (no offset table needed), else a table.
pub(crate) enum Reads {
    Same,
    Offsets(Vec<usize>),
}

impl Reads {
    pub(crate) fn new(from: &[usize], to: &[usize]) -> Reads {
        if from == to {
            Reads::Same
        } else {
            Reads::Offsets(broadcast_offsets(from, to))
        }
    }

    /// The operand offset of output element `i`.
    pub(crate) fn at(&self, i: usize) -> usize {
        match self {
            Reads::Same => i,
            Reads::Offsets(o) => o[i],
        }
    }
}

/// Row-major strides of `shape` as signed numbers.
pub(crate) fn signed_strides(shape: &[usize]) -> Vec<isize> {
    strides(shape).iter().map(|&s| s as isize).collect()
}

/// Offsets that visit `shape` with its axes reordered as `perm` (output axis `i` is input
/// axis `perm[i]`): the element order of the transposed array.
pub(crate) fn permuted_offsets(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let own = signed_strides(shape);
    let dims: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let st: Vec<isize> = perm.iter().map(|&p| own[p]).collect();
    offsets(&dims, &st, 0)
}

/// Copies the elements of `v` at `offs`, in order.
pub(crate) fn take<T: Copy>(v: &[T], offs: &[usize]) -> Vec<T> {
    offs.iter().map(|&o| v[o]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_walk_row_major_with_negative_and_zero_strides() {
        assert_eq!(offsets(&[2, 3], &[3, 1], 0), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(offsets(&[2, 3], &[1, 2], 0), vec![0, 2, 4, 1, 3, 5]);
        assert_eq!(offsets(&[3], &[-2], 5), vec![5, 3, 1]);
        assert_eq!(offsets(&[2, 2], &[0, 1], 0), vec![0, 1, 0, 1]);
        assert_eq!(offsets(&[], &[], 0), vec![0]);
        assert!(offsets(&[2, 0, 3], &[0, 3, 1], 0).is_empty());
    }

    #[test]
    fn broadcast_and_permute() {
        assert_eq!(broadcast_offsets(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_offsets(&[2, 1], &[2, 2]), vec![0, 0, 1, 1]);
        assert_eq!(permuted_offsets(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }
}
