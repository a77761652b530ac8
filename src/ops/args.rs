//! Argument conventions shared by tensor methods: lists of axes or dims written as
//! literals (`&[1]`, `[0, 1]`, `-1`, `vec![2, 3]`), and numpy-style slices (`s![.., 1..;2]`).

use kiln_ir::{Error, Result, SliceDim};

/// A list of integers given as a single int, an array, a slice or a `Vec`; used for axes
/// (negative counts from the end, numpy style) and for `reshape` dims (`-1` inferred).
///
/// ```
/// use kiln::IntList;
/// assert_eq!((&[0, -1]).to_i64s(), vec![0, -1]);
/// assert_eq!(2usize.to_i64s(), vec![2]);
/// ```
pub trait IntList {
    fn to_i64s(&self) -> Vec<i64>;
}

macro_rules! int_list {
    ($($t:ty),*) => {$(
        impl IntList for $t {
            fn to_i64s(&self) -> Vec<i64> {
                vec![*self as i64]
            }
        }
        impl IntList for [$t] {
            fn to_i64s(&self) -> Vec<i64> {
                self.iter().map(|&x| x as i64).collect()
            }
        }
        impl<const N: usize> IntList for [$t; N] {
            fn to_i64s(&self) -> Vec<i64> {
                self.iter().map(|&x| x as i64).collect()
            }
        }
        impl IntList for Vec<$t> {
            fn to_i64s(&self) -> Vec<i64> {
                self.iter().map(|&x| x as i64).collect()
            }
        }
    )*};
}
int_list!(i32, i64, isize, usize, u32);

impl<T: IntList + ?Sized> IntList for &T {
    fn to_i64s(&self) -> Vec<i64> {
        (**self).to_i64s()
    }
}

/// Normalizes axes (negative from the end) for a tensor of `rank`; sorted, duplicates are an error.
pub(crate) fn axes_of(op: &'static str, axes: &(impl IntList + ?Sized), rank: usize) -> Result<Vec<usize>> {
    let a: Vec<isize> = axes.to_i64s().into_iter().map(|x| x as isize).collect();
    kiln_ir::normalize_axes(op, &a, rank)
}

pub(crate) fn axis_of(op: &'static str, axis: i64, rank: usize) -> Result<usize> {
    kiln_ir::normalize_axis(op, axis as isize, rank)
}

/// One dim of a slice: an index (drops the dim) or a range with a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceArg {
    /// A single position (negative from the end); the dim is removed, as numpy does.
    Index(isize),
    /// `start..stop` with `step` (negative steps walk backwards; `None` ends are open).
    Range { start: Option<isize>, stop: Option<isize>, step: isize },
    /// A new axis of size 1 here (numpy's `np.newaxis`, TF's `tf.newaxis`); write [`NewAxis`].
    NewAxis,
    /// As many whole dims as the other items leave (numpy's `...`); write [`Ellipsis`].
    Ellipsis,
}

/// `s![.., NewAxis]`: a new axis of size 1 (numpy's `np.newaxis`).
///
/// ```
/// use kiln::{s, Ellipsis, NewAxis, Tensor};
/// let t = Tensor::new(&[[1i32, 2, 3], [4, 5, 6]]);
/// assert_eq!(t.slice(&s![Ellipsis, 1, NewAxis]).shape(), &[2, 1]); // t[..., 1, tf.newaxis]
/// assert_eq!(t.slice(&s![NewAxis, .., 0]).to_vec::<i32>().unwrap(), vec![1, 4]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct NewAxis;

/// `s![Ellipsis, 0]`: every dim not otherwise named (numpy's `...`); at most one per slice.
#[derive(Clone, Copy, Debug)]
pub struct Ellipsis;

impl From<NewAxis> for SliceArg {
    fn from(_: NewAxis) -> SliceArg {
        SliceArg::NewAxis
    }
}

impl From<Ellipsis> for SliceArg {
    fn from(_: Ellipsis) -> SliceArg {
        SliceArg::Ellipsis
    }
}

impl SliceArg {
    /// The whole dim with the given step (`s![..;-1]` reverses).
    pub fn all(step: isize) -> SliceArg {
        SliceArg::Range { start: None, stop: None, step }
    }

    #[doc(hidden)]
    pub fn with_step(self, step: isize) -> SliceArg {
        match self {
            SliceArg::Range { start, stop, .. } => SliceArg::Range { start, stop, step },
            SliceArg::Index(_) | SliceArg::NewAxis | SliceArg::Ellipsis => self,
        }
    }

    /// Resolves against a dim of size `n`: the slice and whether the dim is kept. (`NewAxis`
    /// and `Ellipsis` consume no dim; `Tensor::try_slice` expands them first.)
    pub(crate) fn resolve(self, n: usize, axis: usize) -> Result<(SliceDim, bool)> {
        match self {
            SliceArg::NewAxis | SliceArg::Ellipsis => unreachable!("expanded by try_slice"),
            SliceArg::Index(i) => {
                let j = if i < 0 { i + n as isize } else { i };
                if j < 0 || j >= n as isize {
                    return Err(Error::invalid("slice", format!("index {i} out of range for axis {axis} of size {n}")));
                }
                Ok((SliceDim { start: j as usize, step: 1, len: 1 }, false))
            }
            SliceArg::Range { start, stop, step } => {
                let d = SliceDim::from_python(start, stop, step, n)
                    .ok_or_else(|| Error::invalid("slice", format!("step must not be zero (axis {axis})")))?;
                Ok((d, true))
            }
        }
    }
}

impl From<isize> for SliceArg {
    fn from(i: isize) -> SliceArg {
        SliceArg::Index(i)
    }
}
impl From<i32> for SliceArg {
    fn from(i: i32) -> SliceArg {
        SliceArg::Index(i as isize)
    }
}
impl From<std::ops::RangeFull> for SliceArg {
    fn from(_: std::ops::RangeFull) -> SliceArg {
        SliceArg::all(1)
    }
}
macro_rules! range_from {
    ($($t:ty),*) => {$(
        impl From<std::ops::Range<$t>> for SliceArg {
            fn from(r: std::ops::Range<$t>) -> SliceArg {
                SliceArg::Range { start: Some(r.start as isize), stop: Some(r.end as isize), step: 1 }
            }
        }
        impl From<std::ops::RangeFrom<$t>> for SliceArg {
            fn from(r: std::ops::RangeFrom<$t>) -> SliceArg {
                SliceArg::Range { start: Some(r.start as isize), stop: None, step: 1 }
            }
        }
        impl From<std::ops::RangeTo<$t>> for SliceArg {
            fn from(r: std::ops::RangeTo<$t>) -> SliceArg {
                SliceArg::Range { start: None, stop: Some(r.end as isize), step: 1 }
            }
        }
    )*};
}
range_from!(i32, isize);

/// numpy-style slice list: `s![.., 1..3, -1, ..;-1, 2..;2]`. Each item is an index
/// (drops the dim), a range, or a range with `;step`.
///
/// ```
/// use kiln::{s, Tensor};
/// let t = Tensor::new(&[[1i32, 2, 3], [4, 5, 6]]);
/// assert_eq!(t.slice(&s![.., ..;-1]).to_vec::<i32>().unwrap(), vec![3, 2, 1, 6, 5, 4]);
/// assert_eq!(t.slice(&s![-1, 1..]).to_vec::<i32>().unwrap(), vec![5, 6]);
/// ```
#[macro_export]
macro_rules! s {
    (@item $r:expr ; $step:expr) => { $crate::SliceArg::from($r).with_step($step) };
    (@item $r:expr) => { $crate::SliceArg::from($r) };
    ($($r:expr $(; $step:expr)?),* $(,)?) => {
        [$( $crate::s!(@item $r $(; $step)?) ),*]
    };
}
