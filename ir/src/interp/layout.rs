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

/// The same walk as [`offsets`] in runs of consecutive elements: when the last axis has
/// stride 1 (a slice or transpose that keeps it), one offset per run of the whole last axis,
/// so the kernels copy slices of memory instead of single elements by a table.
pub(crate) struct Runs {
    pub(crate) starts: Vec<usize>,
    pub(crate) len: usize,
}

pub(crate) fn runs(shape: &[usize], strides: &[isize], base: isize) -> Runs {
    match (shape.split_last(), strides.split_last()) {
        (Some((&n, outer)), Some((&1, outer_strides))) if n > 1 => {
            Runs { starts: offsets(outer, outer_strides, base), len: n }
        }
        _ => Runs { starts: offsets(shape, strides, base), len: 1 },
    }
}

impl Runs {
    /// The elements of `v` the walk visits, in order.
    pub(crate) fn take<T: Copy>(&self, v: &[T]) -> Vec<T> {
        if self.len == 1 {
            return take(v, &self.starts);
        }
        let mut out = Vec::with_capacity(self.starts.len() * self.len);
        for &s in &self.starts {
            out.extend_from_slice(&v[s..s + self.len]);
        }
        out
    }

    /// Writes `v`'s elements, in order, where the walk visits `out`.
    pub(crate) fn place<T: Copy>(&self, v: &[T], out: &mut [T]) {
        for (chunk, &s) in v.chunks_exact(self.len).zip(&self.starts) {
            out[s..s + self.len].copy_from_slice(chunk);
        }
    }

    /// How many elements the walk visits.
    pub(crate) fn count(&self) -> usize {
        self.starts.len() * self.len
    }
}

/// `shape` with its axes reordered as `perm` (output axis `i` is input axis `perm[i]`), and
/// the strides that walk the original buffer in that order.
fn permuted(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<isize>) {
    let own = signed_strides(shape);
    (perm.iter().map(|&p| shape[p]).collect(), perm.iter().map(|&p| own[p]).collect())
}

/// Offsets in the element order of the transposed array.
pub(crate) fn permuted_offsets(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let (dims, st) = permuted(shape, perm);
    offsets(&dims, &st, 0)
}

/// [`permuted_offsets`] in runs.
pub(crate) fn permuted_runs(shape: &[usize], perm: &[usize]) -> Runs {
    let (dims, st) = permuted(shape, perm);
    runs(&dims, &st, 0)
}

/// Copies the elements of `v` at `offs`, in order.
pub(crate) fn take<T: Copy>(v: &[T], offs: &[usize]) -> Vec<T> {
    offs.iter().map(|&o| v[o]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_visit_what_offsets_visit() {
        let v: Vec<usize> = (0..24).collect();
        for (shape, strides, base) in [
            (vec![2, 3, 4], vec![12isize, 4, 1], 0isize),
            (vec![2, 2], vec![12, 1], 5),
            (vec![3, 2], vec![1, 3], 0),
            (vec![4], vec![1], 2),
            (vec![2, 0], vec![3, 1], 0),
        ] {
            let r = runs(&shape, &strides, base);
            assert_eq!(r.take(&v), take(&v, &offsets(&shape, &strides, base)), "{shape:?} {strides:?}");
            let mut placed = vec![usize::MAX; 24];
            r.place(&r.take(&v), &mut placed);
            for o in offsets(&shape, &strides, base) {
                assert_eq!(placed[o], o);
            }
        }
    }

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
