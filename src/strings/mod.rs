//! String tensors (TF's `tf.string` tensors and `tf.strings`): a dense tensor of any rank
//! whose elements are UTF-8 strings, held on the host as a `Vec<String>` and a shape. kiln's
//! graphs have no string dtype, so string ops run eagerly on the host, never inside a traced
//! function: the preprocessing (strings → ids or numbers with [`StringLookup`],
//! [`StringTensor::to_number`] or [`StringTensor::to_hash_bucket_fast`]) runs first, and its
//! numeric tensors feed the traced function. A [`crate::ragged::RaggedTensor`] of strings
//! passed where a traced value is needed is an `Err` that says so.
//!
//! ```
//! use kiln::strings::{StringLookup, StringTensor};
//! let t = StringTensor::new(&["hello world", "kiln"], &[2]).unwrap();
//! let words = t.split(" ").unwrap();
//! let ids = StringLookup::new(&["hello", "world", "kiln"]).call(&words).unwrap();
//! assert_eq!(ids.values().unwrap().to_vec::<i64>().unwrap(), vec![1, 2, 3]);
//! ```

mod hash;
mod lookup;
mod ops;
mod regex;

pub use lookup::{LookupInput, StringLookup};
pub use ops::Unit;

use crate::{Error, Result};

/// A dense tensor of strings, row-major, of any rank (rank 0 holds one string).
///
/// ```
/// use kiln::strings::StringTensor;
/// let t = StringTensor::new(&["a", "b", "c", "d"], &[2, 2]).unwrap();
/// assert_eq!(t.shape(), &[2, 2]);
/// assert_eq!(t.as_slice()[3], "d");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringTensor {
    data: Vec<String>,
    shape: Vec<usize>,
}

impl StringTensor {
    /// From strings in row-major order and a shape holding exactly that many.
    ///
    /// ```
    /// use kiln::strings::StringTensor;
    /// assert!(StringTensor::new(&["a", "b"], &[2]).is_ok());
    /// assert!(StringTensor::new(&["a", "b"], &[3]).is_err());
    /// ```
    pub fn new(data: &[&str], shape: &[usize]) -> Result<StringTensor> {
        Self::from_vec(data.iter().map(|s| s.to_string()).collect(), shape)
    }

    /// From owned strings and a shape.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::from_vec(vec!["x".to_string()], &[1, 1]).unwrap();
    /// assert_eq!(t.shape(), &[1, 1]);
    /// ```
    pub fn from_vec(data: Vec<String>, shape: &[usize]) -> Result<StringTensor> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::invalid(
                "StringTensor::new",
                format!("shape {shape:?} holds {n} strings, got {}", data.len()),
            ));
        }
        Ok(StringTensor { data, shape: shape.to_vec() })
    }

    /// A rank-0 tensor holding `s`.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::scalar("kiln");
    /// assert_eq!((t.shape(), t.as_slice()), (&[][..], &["kiln".to_string()][..]));
    /// ```
    pub fn scalar(s: &str) -> StringTensor {
        StringTensor { data: vec![s.to_string()], shape: vec![] }
    }

    /// The shape.
    ///
    /// ```
    /// assert_eq!(kiln::strings::StringTensor::new(&["a"], &[1]).unwrap().shape(), &[1]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strings, row-major.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["a", "b"], &[2]).unwrap();
    /// assert_eq!(t.as_slice(), &["a", "b"]);
    /// ```
    pub fn as_slice(&self) -> &[String] {
        &self.data
    }

    /// The strings, row-major, owned.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["a"], &[1]).unwrap();
    /// assert_eq!(t.to_vec(), vec!["a".to_string()]);
    /// ```
    pub fn to_vec(&self) -> Vec<String> {
        self.data.clone()
    }

    /// Concatenation along axis 0 (the other dims must agree).
    ///
    /// ```
    /// use kiln::strings::StringTensor;
    /// let a = StringTensor::new(&["a"], &[1]).unwrap();
    /// let b = StringTensor::new(&["b", "c"], &[2]).unwrap();
    /// assert_eq!(StringTensor::concat(&[&a, &b]).unwrap().as_slice(), &["a", "b", "c"]);
    /// ```
    pub fn concat(parts: &[&StringTensor]) -> Result<StringTensor> {
        let op = "StringTensor::concat";
        let first = parts.first().ok_or_else(|| Error::invalid(op, "needs at least one tensor"))?;
        if first.shape.is_empty() {
            return Err(Error::invalid(op, "cannot concatenate scalars (rank 0)"));
        }
        let rest = &first.shape[1..];
        if let Some(p) = parts.iter().find(|p| p.shape.is_empty() || &p.shape[1..] != rest) {
            return Err(Error::invalid(op, format!("shapes {:?} and {:?} differ past axis 0", first.shape, p.shape)));
        }
        let n = parts.iter().map(|p| p.shape[0]).sum::<usize>();
        let data = parts.iter().flat_map(|p| p.data.iter().cloned()).collect();
        Self::from_vec(data, &[&[n][..], rest].concat())
    }

    /// `f` applied to every string, same shape.
    fn map(&self, f: impl FnMut(&String) -> String) -> StringTensor {
        StringTensor { data: self.data.iter().map(f).collect(), shape: self.shape.clone() }
    }

    /// `f` applied to every string, same shape, failing on the first `Err`.
    fn try_map(&self, f: impl FnMut(&String) -> Result<String>) -> Result<StringTensor> {
        Ok(StringTensor { data: self.data.iter().map(f).collect::<Result<_>>()?, shape: self.shape.clone() })
    }
}

impl std::fmt::Display for StringTensor {
    /// `["hello world", "kiln"]` (nested by shape as numpy prints).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn nest(f: &mut std::fmt::Formatter<'_>, data: &[String], shape: &[usize]) -> std::fmt::Result {
            let Some((&n, rest)) = shape.split_first() else {
                return write!(f, "{:?}", data[0]);
            };
            let step: usize = rest.iter().product();
            write!(f, "[")?;
            for i in 0..n {
                if i > 0 {
                    write!(f, ", ")?;
                }
                nest(f, &data[i * step..(i + 1) * step], rest)?;
            }
            write!(f, "]")
        }
        nest(f, &self.data, &self.shape)
    }
}
