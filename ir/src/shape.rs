//! Shapes, numpy broadcasting and axis normalization.

use smallvec::SmallVec;

use crate::error::{Error, Result};

/// Dimensions of a tensor, row-major. Rank 0 is a scalar; zero-sized dims are legal.
pub type Shape = SmallVec<[usize; 4]>;

/// Number of elements of a shape (1 for a scalar, 0 if any dim is 0).
///
/// Panics if the count overflows `usize`: every shape that reaches a value or a verified
/// graph passed [`checked_numel`] first, so an overflow here is a bug, never a wrapped size.
///
/// ```
/// assert_eq!(kiln_ir::numel(&[2, 3]), 6);
/// assert_eq!(kiln_ir::numel(&[]), 1);
/// ```
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    checked_numel(shape)
        .unwrap_or_else(|| panic!("numel: shape {} has more elements than usize counts", fmt_shape(shape)))
}

/// Number of elements of a shape, or `None` if it overflows `usize`. A shape with a zero
/// dim has 0 elements however large its other dims (as in numpy).
///
/// ```
/// use kiln_ir::checked_numel;
/// assert_eq!(checked_numel(&[2, 3]), Some(6));
/// assert_eq!(checked_numel(&[1 << 32, 1 << 32]), None);
/// assert_eq!(checked_numel(&[usize::MAX, usize::MAX, 0]), Some(0));
/// ```
#[inline]
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Bytes of a buffer of `shape` with elements of `elem_size` bytes, or `None` past
/// `isize::MAX`, the most any Rust allocation can hold.
///
/// ```
/// assert_eq!(kiln_ir::shape::checked_bytes(&[2, 3], 4), Some(24));
/// assert_eq!(kiln_ir::shape::checked_bytes(&[1 << 62], 4), None);
/// ```
#[inline]
pub fn checked_bytes(shape: &[usize], elem_size: usize) -> Option<usize> {
    checked_numel(shape)?.checked_mul(elem_size).filter(|&b| b <= isize::MAX as usize)
}

/// Row-major strides in elements.
pub fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = SmallVec::from_elem(1, shape.len());
    for i in (0..shape.len().saturating_sub(1)).rev() {
        // Only a shape with a zero dim can overflow here, and its strides are never used
        // to address an element.
        s[i] = s[i + 1].wrapping_mul(shape[i + 1]);
    }
    s
}

/// numpy broadcasting of two shapes, or `None` if they are incompatible.
///
/// ```
/// use kiln_ir::broadcast_shapes;
/// assert_eq!(broadcast_shapes(&[2, 3], &[3]).unwrap().as_slice(), &[2, 3]);
/// assert_eq!(broadcast_shapes(&[4, 1], &[1, 5]).unwrap().as_slice(), &[4, 5]);
/// assert!(broadcast_shapes(&[2], &[3]).is_none());
/// ```
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out: Shape = SmallVec::with_capacity(rank);
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out.push(match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        });
    }
    Some(out)
}

/// Whether `from` broadcasts to exactly `to` (numpy rules, `to` fixed).
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len() && from.iter().rev().zip(to.iter().rev()).all(|(&f, &t)| f == t || f == 1)
}

/// Strides for reading an operand of shape `from` as if it had shape `to`:
/// broadcast dims get stride 0. `from` must broadcast to `to`.
pub fn broadcast_strides(from: &[usize], to: &[usize]) -> Shape {
    let own = strides(from);
    let lead = to.len() - from.len();
    (0..to.len()).map(|i| if i < lead || from[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// A numpy-style axis (negative counts from the end) as an index in `0..rank`.
pub fn normalize_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::Axis { op, axis, rank });
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// Normalizes, sorts and de-duplicates a list of axes; a repeated axis is an error.
pub fn normalize_axes(op: &'static str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = normalize_axis(op, a, rank)?;
        if out.contains(&n) {
            return Err(Error::invalid(op, format!("axis {a} is repeated in {axes:?}")));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// `[2, 3]` style formatting used in dumps and messages.
pub fn fmt_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}
