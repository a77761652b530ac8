//! The `tf.strings` ops on the host: lengths, case, split (→ ragged), joins, substrings,
//! and conversions to and from numbers.

use super::StringTensor;
use crate::ragged::RaggedTensor;
use crate::{DType, Error, Result, Tensor};

/// How `length` and `substr` count: bytes, or UTF-8 characters (TF's `unit=`).
///
/// ```
/// use kiln::strings::{StringTensor, Unit};
/// let t = StringTensor::scalar("héllo");
/// assert_eq!(t.length(Unit::Byte).to_scalar::<i32>().unwrap(), 6);
/// assert_eq!(t.length(Unit::Utf8Char).to_scalar::<i32>().unwrap(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes (TF's `"BYTE"`, the default).
    Byte,
    /// Unicode scalar values of the UTF-8 encoding (TF's `"UTF8_CHAR"`).
    Utf8Char,
}

impl Unit {
    fn len(self, s: &str) -> usize {
        match self {
            Unit::Byte => s.len(),
            Unit::Utf8Char => s.chars().count(),
        }
    }
}

impl StringTensor {
    /// Each string's length in `unit`s, an `I32` tensor of the same shape.
    ///
    /// ```
    /// use kiln::strings::{StringTensor, Unit};
    /// let t = StringTensor::new(&["kiln", ""], &[2]).unwrap();
    /// assert_eq!(t.length(Unit::Byte).to_vec::<i32>().unwrap(), vec![4, 0]);
    /// ```
    pub fn length(&self, unit: Unit) -> Tensor {
        let lens: Vec<i32> = self.data.iter().map(|s| unit.len(s) as i32).collect();
        Tensor::from_vec(lens, &self.shape).expect("same element count as the strings")
    }

    /// ASCII letters to lower case, other characters kept (TF's default `encoding=''`).
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::scalar("HeLLo É");
    /// assert_eq!(t.lower().as_slice(), &["hello É"]);
    /// ```
    pub fn lower(&self) -> StringTensor {
        self.map(|s| s.to_ascii_lowercase())
    }

    /// ASCII letters to upper case, other characters kept (TF's default `encoding=''`).
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::scalar("kiln é");
    /// assert_eq!(t.upper().as_slice(), &["KILN é"]);
    /// ```
    pub fn upper(&self) -> StringTensor {
        self.map(|s| s.to_ascii_uppercase())
    }

    /// Splits each string of a rank-1 tensor at `sep` into a ragged `[n, None]` tensor of
    /// strings (TF's `tf.strings.split`): empty pieces are kept; an empty `sep` splits at
    /// runs of ASCII whitespace and drops empty pieces (TF's `sep=None`).
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["a b", "c  d"], &[2]).unwrap();
    /// assert_eq!(t.split(" ").unwrap().to_nested_strings().unwrap(), vec![vec!["a", "b"], vec!["c", "", "d"]]);
    /// assert_eq!(t.split("").unwrap().to_nested_strings().unwrap(), vec![vec!["a", "b"], vec!["c", "d"]]);
    /// ```
    pub fn split(&self, sep: &str) -> Result<RaggedTensor> {
        if self.shape.len() != 1 {
            return Err(Error::invalid(
                "strings::split",
                format!("needs a rank-1 tensor (one ragged dim), got shape {:?}", self.shape),
            ));
        }
        let rows: Vec<Vec<String>> = self
            .data
            .iter()
            .map(|s| match sep {
                "" => s.split(|c: char| c.is_ascii_whitespace()).filter(|p| !p.is_empty()).map(String::from).collect(),
                _ => s.split(sep).map(String::from).collect(),
            })
            .collect();
        let lengths: Vec<i64> = rows.iter().map(|r| r.len() as i64).collect();
        let flat: Vec<String> = rows.into_iter().flatten().collect();
        let n = flat.len();
        RaggedTensor::from_row_lengths(StringTensor::from_vec(flat, &[n])?, &lengths)
    }

    /// The elementwise concatenation of several tensors with `separator` between (TF's
    /// `tf.strings.join`); shapes must be equal, or rank 0 (broadcast).
    ///
    /// ```
    /// use kiln::strings::StringTensor;
    /// let a = StringTensor::new(&["a", "b"], &[2]).unwrap();
    /// let j = StringTensor::join(&[&a, &StringTensor::scalar("x")], "-").unwrap();
    /// assert_eq!(j.as_slice(), &["a-x", "b-x"]);
    /// ```
    pub fn join(parts: &[&StringTensor], separator: &str) -> Result<StringTensor> {
        let op = "strings::join";
        let shape = parts.iter().map(|p| &p.shape).find(|s| !s.is_empty()).cloned().unwrap_or_default();
        if let Some(p) = parts.iter().find(|p| !p.shape.is_empty() && p.shape != shape) {
            return Err(Error::invalid(
                op,
                format!("shapes must be equal (or scalars), got {shape:?} and {:?}", p.shape),
            ));
        }
        if parts.is_empty() {
            return Err(Error::invalid(op, "needs at least one tensor"));
        }
        let n: usize = shape.iter().product();
        let at = |p: &StringTensor, i: usize| if p.shape.is_empty() { p.data[0].clone() } else { p.data[i].clone() };
        let data = (0..n).map(|i| parts.iter().map(|p| at(p, i)).collect::<Vec<_>>().join(separator)).collect();
        StringTensor::from_vec(data, &shape)
    }

    /// Joins the strings along `axis` (all axes with `None`) with `separator` between (TF's
    /// `tf.strings.reduce_join`); `keepdims` keeps the joined axes as size 1.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["a", "b", "c", "d"], &[2, 2]).unwrap();
    /// assert_eq!(t.reduce_join(Some(1), false, "").unwrap().as_slice(), &["ab", "cd"]);
    /// assert_eq!(t.reduce_join(Some(0), false, "+").unwrap().as_slice(), &["a+c", "b+d"]);
    /// assert_eq!(t.reduce_join(None, false, "").unwrap().as_slice(), &["abcd"]);
    /// ```
    pub fn reduce_join(&self, axis: Option<i64>, keepdims: bool, separator: &str) -> Result<StringTensor> {
        let rank = self.shape.len();
        let Some(axis) = axis else {
            let shape = if keepdims { vec![1; rank] } else { vec![] };
            return StringTensor::from_vec(vec![self.data.join(separator)], &shape);
        };
        let ax = crate::ops::args::axis_of("strings::reduce_join", axis, rank)?;
        let outer: usize = self.shape[..ax].iter().product();
        let n = self.shape[ax];
        let inner: usize = self.shape[ax + 1..].iter().product();
        let data = (0..outer)
            .flat_map(|o| (0..inner).map(move |i| (o, i)))
            .map(|(o, i)| {
                (0..n).map(|k| self.data[(o * n + k) * inner + i].as_str()).collect::<Vec<_>>().join(separator)
            })
            .collect();
        let mut shape = self.shape.clone();
        if keepdims {
            shape[ax] = 1;
        } else {
            shape.remove(ax);
        }
        StringTensor::from_vec(data, &shape)
    }

    /// The substring of each string starting at `pos` (negative: from the end) with `len`
    /// units (fewer where the string ends first), TF's `tf.strings.substr`. `pos` past
    /// either end of a string, a negative `len`, or (with [`Unit::Byte`]) a byte range
    /// that cuts a UTF-8 character is an `Err` naming the string.
    ///
    /// ```
    /// use kiln::strings::{StringTensor, Unit};
    /// let t = StringTensor::new(&["hello", "kiln"], &[2]).unwrap();
    /// assert_eq!(t.substr(1, 3, Unit::Byte).unwrap().as_slice(), &["ell", "iln"]);
    /// assert_eq!(t.substr(-2, 5, Unit::Byte).unwrap().as_slice(), &["lo", "ln"]);
    /// assert!(StringTensor::scalar("é").substr(1, 1, Unit::Byte).is_err());
    /// ```
    pub fn substr(&self, pos: i64, len: i64, unit: Unit) -> Result<StringTensor> {
        let op = "strings::substr";
        if len < 0 {
            return Err(Error::invalid(op, format!("len must be >= 0, got {len}")));
        }
        self.try_map(|s| {
            let n = unit.len(s) as i64;
            if pos > n || pos < -n {
                return Err(Error::invalid(op, format!("pos {pos} out of range for {s:?} of length {n} ({unit:?})")));
            }
            let start = if pos < 0 { pos + n } else { pos } as usize;
            let end = (start + len as usize).min(n as usize);
            match unit {
                Unit::Utf8Char => Ok(s.chars().skip(start).take(end - start).collect()),
                Unit::Byte => s.get(start..end).map(String::from).ok_or_else(|| {
                    Error::invalid(
                        op,
                        format!("bytes {start}..{end} of {s:?} cut a UTF-8 character; use Unit::Utf8Char"),
                    )
                }),
            }
        })
    }

    /// The strings parsed as numbers of `dtype` (TF's `tf.strings.to_number`; surrounding
    /// ASCII whitespace allowed). A string that is not a number is an `Err` naming it.
    ///
    /// ```
    /// use kiln::{DType, strings::StringTensor};
    /// let t = StringTensor::new(&["1.5", " -2", "3e2"], &[3]).unwrap();
    /// assert_eq!(t.to_number(DType::F32).unwrap().to_vec::<f32>().unwrap(), vec![1.5, -2.0, 300.0]);
    /// assert!(StringTensor::scalar("abc").to_number(DType::F32).is_err());
    /// ```
    pub fn to_number(&self, dtype: DType) -> Result<Tensor> {
        fn parse<T: std::str::FromStr>(data: &[String], dtype: DType) -> Result<Vec<T>> {
            data.iter()
                .map(|s| {
                    s.trim_matches(|c: char| c.is_ascii_whitespace()).parse::<T>().map_err(|_| {
                        Error::invalid("strings::to_number", format!("cannot convert {s:?} to a {dtype} number"))
                    })
                })
                .collect()
        }
        let d = &self.data;
        match dtype {
            DType::F32 => Tensor::from_vec(parse::<f32>(d, dtype)?, &self.shape),
            DType::F64 => Tensor::from_vec(parse::<f64>(d, dtype)?, &self.shape),
            DType::I32 => Tensor::from_vec(parse::<i32>(d, dtype)?, &self.shape),
            DType::I64 => Tensor::from_vec(parse::<i64>(d, dtype)?, &self.shape),
            DType::Bool => Err(Error::invalid("strings::to_number", "dtype must be F32, F64, I32 or I64, got bool")),
        }
    }

    /// A numeric tensor's elements as strings (TF's `tf.strings.as_string` defaults):
    /// floats with 6 decimals (C's `%f`), integers in decimal, booleans `true`/`false`.
    /// Needs a tensor with values (not a traced one).
    ///
    /// ```
    /// use kiln::{Tensor, strings::StringTensor};
    /// let s = StringTensor::as_string(&Tensor::new(&[1.5f32, -0.25])).unwrap();
    /// assert_eq!(s.as_slice(), &["1.500000", "-0.250000"]);
    /// ```
    pub fn as_string(t: &Tensor) -> Result<StringTensor> {
        let data: Vec<String> = match t.dtype() {
            DType::F32 => t.to_vec::<f32>()?.iter().map(|&x| fixed6(x as f64)).collect(),
            DType::F64 => t.to_vec::<f64>()?.iter().map(|&x| fixed6(x)).collect(),
            DType::I32 => t.to_vec::<i32>()?.iter().map(i32::to_string).collect(),
            DType::I64 => t.to_vec::<i64>()?.iter().map(i64::to_string).collect(),
            DType::Bool => t.to_vec::<bool>()?.iter().map(bool::to_string).collect(),
        };
        StringTensor::from_vec(data, t.shape())
    }
}

/// C's `%f`: six decimals, and `nan`/`inf`/`-inf` as C spells them.
fn fixed6(x: f64) -> String {
    match x {
        x if x.is_nan() => "nan".to_string(),
        x if x.is_infinite() => if x > 0.0 { "inf" } else { "-inf" }.to_string(),
        x => format!("{x:.6}"),
    }
}
