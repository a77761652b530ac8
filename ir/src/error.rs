//! The one error type of kiln (re-exported as `kiln::Error`). Every variant names what
//! went wrong with the values involved: the op, the shapes, the dtypes, the function.

use crate::dtype::DType;
use crate::shape::{fmt_shape, Shape};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the values involved.
///
/// ```
/// use kiln_ir::{DType, Error};
/// let e = Error::DTypeMismatch { op: "add", lhs: DType::F32, rhs: DType::F64 };
/// assert_eq!(e.to_string(), "add: dtype mismatch f32 vs f64 (kiln never promotes implicitly; use cast)");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{op}: dtype mismatch {lhs} vs {rhs} (kiln never promotes implicitly; use cast)")]
    DTypeMismatch { op: &'static str, lhs: DType, rhs: DType },

    #[error("{op}: not defined for dtype {dtype}{}", if expected.is_empty() { String::new() } else { format!(" (expected {expected})") })]
    UnsupportedDType { op: &'static str, dtype: DType, expected: &'static str },

    #[error("{op}: shapes {} and {} are not compatible", fmt_shape(.lhs), fmt_shape(.rhs))]
    ShapeMismatch { op: &'static str, lhs: Shape, rhs: Shape },

    #[error("{op}: axis {axis} is out of range for rank {rank}")]
    Axis { op: &'static str, axis: isize, rank: usize },

    #[error("reshape: cannot reshape {} ({} elements) into {}", fmt_shape(.from), count(.from), .to)]
    Reshape { from: Shape, to: String },

    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },

    #[error("data of length {len} does not fit shape {} ({} elements)", fmt_shape(.shape), count(.shape))]
    Length { len: usize, shape: Shape },

    #[error("expected dtype {expected}, found {found}")]
    WrongElement { expected: DType, found: DType },

    #[error("{op}: {msg}")]
    Runtime { op: &'static str, msg: String },

    #[error("variable `{name}`: {msg}")]
    Variable { name: String, msg: String },

    #[error("function `{function}`: {msg}")]
    Trace { function: String, msg: String },

    #[error("function `{function}`: {msg}")]
    Signature { function: String, msg: String },

    #[error("{0}")]
    Symbolic(String),

    #[error("graph: {0}")]
    Graph(String),

    #[error("parse error at line {line}: {msg}")]
    Parse { line: usize, msg: String },

    #[error("compile: {0}")]
    Compile(String),

    #[error("gradient: {0}")]
    Gradient(String),

    #[error("checkpoint: {0}")]
    Checkpoint(String),

    #[error("training: {0}")]
    Training(String),

    #[error("io: {0}")]
    Io(String),

    /// A shape whose element count or byte size overflows (more than `isize::MAX` bytes).
    #[error("{op}: {what} is too large (its size overflows isize::MAX bytes)")]
    Overflow { op: &'static str, what: String },

    /// The allocator refused a buffer.
    #[error("{op}: cannot allocate {bytes} bytes for {what}")]
    OutOfMemory { op: &'static str, bytes: usize, what: String },
}

/// A shape's element count for a message, which must not panic on an overflowing shape.
fn count(shape: &[usize]) -> String {
    crate::checked_numel(shape).map_or_else(|| "too many".to_string(), |n| n.to_string())
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Invalid { op, msg: msg.into() }
    }

    /// Shorthand for [`Error::Runtime`].
    pub fn runtime(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Runtime { op, msg: msg.into() }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}
