//! Element types. kiln never promotes between them implicitly: `cast` is explicit.

use std::fmt;

use crate::array::Data;

/// The element type of a tensor.
///
/// ```
/// use kiln_ir::DType;
/// assert_eq!(DType::F32.name(), "f32");
/// assert!(DType::I64.is_int());
/// assert_eq!("bool".parse::<DType>().unwrap(), DType::Bool);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    I32,
    I64,
    Bool,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 5] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];

    /// The short name used in dumps and error messages (`f32`, `i64`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Bytes per element (`bool` is stored as one byte holding 0 or 1).
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }

    /// Floats and integers: the dtypes arithmetic is defined on.
    pub fn is_numeric(self) -> bool {
        self != DType::Bool
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DType::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| format!("unknown dtype `{s}`"))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for bool {}
}

/// A Rust type that can be the element of a tensor: `f32`, `f64`, `i32`, `i64`, `bool`.
///
/// ```
/// use kiln_ir::{DType, Element};
/// assert_eq!(<f64 as Element>::DTYPE, DType::F64);
/// assert_eq!(i32::from_f64(-2.9), -2); // truncates toward zero, like a cast
/// ```
pub trait Element: sealed::Sealed + Copy + Send + Sync + PartialEq + fmt::Debug + fmt::Display + 'static {
    const DTYPE: DType;
    /// The value converted like `cast` does (truncation toward zero, saturation, NaN → 0).
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// The typed slice of `data`, if it holds this element type.
    fn slice(data: &Data) -> Option<&[Self]>;
    /// Wraps a vector as untyped data.
    fn into_data(v: Vec<Self>) -> Data;
    /// The typed vector inside `data`, if it holds this element type.
    #[doc(hidden)]
    fn vec_mut(data: &mut Data) -> Option<&mut Vec<Self>>;
}

macro_rules! element {
    ($t:ty, $dt:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dt;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn slice(data: &Data) -> Option<&[Self]> {
                match data {
                    Data::$dt(v) => Some(v),
                    _ => None,
                }
            }
            fn into_data(v: Vec<Self>) -> Data {
                Data::$dt(v)
            }
            fn vec_mut(data: &mut Data) -> Option<&mut Vec<Self>> {
                match data {
                    Data::$dt(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(f64, F64);
element!(i32, I32);
element!(i64, I64);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    fn slice(data: &Data) -> Option<&[Self]> {
        match data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn into_data(v: Vec<Self>) -> Data {
        Data::Bool(v)
    }
    fn vec_mut(data: &mut Data) -> Option<&mut Vec<Self>> {
        match data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }
}
