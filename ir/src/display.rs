//! `Display` for [`Array`], printing exactly what numpy's `str()` prints with default options:
//! `[[1. 2. 3.]\n [4. 5. 6.]]`, `[1 2 3]`, `[ True False]`, scalars as `3.5`.
//!
//! The rules (numpy's `arrayprint`): floats use the shortest digits that identify the value,
//! at most 8 after the point, one common column width; scientific notation when the largest
//! magnitude is ≥ 1e8, the smallest nonzero < 1e-4, or their ratio > 1000. Rows wrap at 75
//! characters. Arrays of more than 1000 elements show 3 edge items per axis around `...`
//! (column widths then come from the shown items only). A 0-d array prints like a numpy
//! scalar (`1.0`, `1e+20`).

use std::fmt::{self, Display, LowerExp};

use crate::array::{Array, Data};
use crate::shape::strides;

const LINE_WIDTH: usize = 75;
const EDGE_ITEMS: usize = 3;
const THRESHOLD: usize = 1000;
const PRECISION: usize = 8;

/// Prints like numpy's `str(array)`.
///
/// ```
/// use kiln_ir::Array;
/// let a = Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.5], &[2, 3]).unwrap();
/// assert_eq!(a.to_string(), "[[1.  2.  3. ]\n [4.  5.  6.5]]");
/// assert_eq!(Array::from_vec(vec![true, false], &[2]).unwrap().to_string(), "[ True False]");
/// assert_eq!(Array::scalar(3.5f32).to_string(), "3.5");
/// ```
impl Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rank() == 0 {
            return f.write_str(&scalar(self.data()));
        }
        if self.is_empty() {
            return f.write_str("[]");
        }
        let summarize = self.len() > THRESHOLD;
        let shown = shown_indices(self.shape(), summarize);
        let format = ElementFormat::new(self.data(), &shown);
        let printer = Printer { array: self, strides: strides(self.shape()).to_vec(), format, summarize };
        f.write_str(&printer.recurse(&mut Vec::new(), " ", LINE_WIDTH))
    }
}

/// Flat indices of the elements that will be printed (all, or the edges when summarizing).
fn shown_indices(shape: &[usize], summarize: bool) -> Vec<usize> {
    let per_axis: Vec<Vec<usize>> = shape
        .iter()
        .map(|&n| {
            if summarize && n > 2 * EDGE_ITEMS {
                (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
            } else {
                (0..n).collect()
            }
        })
        .collect();
    let st = strides(shape);
    let mut out = vec![0usize];
    for (ax, idx) in per_axis.iter().enumerate() {
        let step = st[ax];
        out = out.iter().flat_map(|&base| idx.iter().map(move |&i| base + i * step)).collect();
    }
    out
}

/// Shortest positional digits (at most 8 after the point): `(integer part, fraction)`.
fn positional<T: Display>(x: T) -> (String, String) {
    let s = x.to_string();
    let (int, frac) = s.split_once('.').map_or((s.clone(), String::new()), |(i, f)| (i.into(), f.into()));
    if frac.len() <= PRECISION {
        return (int, frac);
    }
    let s = format!("{x:.PRECISION$}");
    let (int, frac) = s.split_once('.').expect("fixed format has a point");
    (int.into(), frac.trim_end_matches('0').into())
}

/// Shortest scientific digits (at most 8 after the point): `(integer digit, fraction, exponent)`.
fn scientific<T: LowerExp>(x: T) -> (String, String, i32) {
    let split = |s: &str| -> (String, String, i32) {
        let (mant, exp) = s.split_once('e').expect("exponent");
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        (int.into(), frac.into(), exp.parse().expect("integer exponent"))
    };
    let (int, frac, exp) = split(&format!("{x:e}"));
    if frac.len() <= PRECISION {
        return (int, frac, exp);
    }
    let (int, frac, exp) = split(&format!("{x:.PRECISION$e}"));
    (int, frac.trim_end_matches('0').into(), exp)
}

/// `e+05`, `e-100`: sign always, at least `digits` digits.
fn exponent(exp: i32, digits: usize) -> String {
    format!("e{}{:0digits$}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
}

/// A numpy scalar's `str`: positional between 1e-4 and 1e16 (and for zero), else scientific.
fn float_scalar<T: Display + LowerExp + Into<f64> + Copy>(x: T) -> String {
    let v: f64 = x.into();
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 || (1e-4..1e16).contains(&v.abs()) {
        let s = x.to_string();
        return if s.contains('.') { s } else { s + ".0" };
    }
    let s = format!("{x:e}");
    let (mant, exp) = s.split_once('e').expect("exponent");
    format!("{mant}{}", exponent(exp.parse().expect("integer exponent"), 2))
}

fn scalar(d: &Data) -> String {
    match d {
        Data::F32(v) => float_scalar(v[0]),
        Data::F64(v) => float_scalar(v[0]),
        Data::I32(v) => v[0].to_string(),
        Data::I64(v) => v[0].to_string(),
        Data::Bool(v) => if v[0] { "True" } else { "False" }.into(),
    }
}

/// How every element of one array is printed: all share one width.
enum ElementFormat {
    Bool,
    Int { width: usize },
    Float(FloatFormat),
}

struct FloatFormat {
    exp_format: bool,
    pad_left: usize,
    pad_right: usize,
    /// Scientific mode: digits after the point, and exponent digits.
    precision: usize,
    exp_size: usize,
}

impl ElementFormat {
    fn new(d: &Data, shown: &[usize]) -> ElementFormat {
        match d {
            Data::Bool(_) => ElementFormat::Bool,
            Data::I32(v) => ElementFormat::Int { width: int_width(shown.iter().map(|&i| v[i] as i64)) },
            Data::I64(v) => ElementFormat::Int { width: int_width(shown.iter().map(|&i| v[i])) },
            Data::F32(v) => ElementFormat::Float(FloatFormat::new(&shown.iter().map(|&i| v[i]).collect::<Vec<_>>())),
            Data::F64(v) => ElementFormat::Float(FloatFormat::new(&shown.iter().map(|&i| v[i]).collect::<Vec<_>>())),
        }
    }

    fn format(&self, d: &Data, i: usize) -> String {
        match (self, d) {
            (ElementFormat::Bool, Data::Bool(v)) => if v[i] { " True" } else { "False" }.into(),
            (ElementFormat::Int { width }, Data::I32(v)) => format!("{:>width$}", v[i]),
            (ElementFormat::Int { width }, Data::I64(v)) => format!("{:>width$}", v[i]),
            (ElementFormat::Float(f), Data::F32(v)) => f.format(v[i]),
            (ElementFormat::Float(f), Data::F64(v)) => f.format(v[i]),
            _ => unreachable!("the format is built from the same data"),
        }
    }
}

fn int_width(vals: impl Iterator<Item = i64>) -> usize {
    let (lo, hi) = vals.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    lo.to_string().len().max(hi.to_string().len())
}

impl FloatFormat {
    fn new<T: Display + LowerExp + Into<f64> + Copy>(vals: &[T]) -> FloatFormat {
        let finite: Vec<T> = vals.iter().copied().filter(|&x| x.into().is_finite()).collect();
        let nonzero: Vec<f64> = finite.iter().map(|&x| x.into().abs()).filter(|&x| x != 0.0).collect();
        let exp_format = !nonzero.is_empty() && {
            let max = nonzero.iter().copied().fold(0.0, f64::max);
            let min = nonzero.iter().copied().fold(f64::INFINITY, f64::min);
            max >= 1e8 || min < 1e-4 || max / min > 1e3
        };
        let mut f = FloatFormat { exp_format, pad_left: 0, pad_right: 0, precision: 0, exp_size: 0 };
        if finite.is_empty() {
        } else if exp_format {
            let parts: Vec<(String, String, i32)> = finite.iter().map(|&x| scientific(x)).collect();
            f.precision = parts.iter().map(|p| p.1.len()).max().unwrap_or(0);
            f.exp_size = parts.iter().map(|p| p.2.unsigned_abs().to_string().len().max(2)).max().unwrap_or(2);
            f.pad_left = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
            f.pad_right = f.exp_size + 2 + f.precision;
        } else {
            let parts: Vec<(String, String)> = finite.iter().map(|&x| positional(x)).collect();
            f.pad_left = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
            f.pad_right = parts.iter().map(|p| p.1.len()).max().unwrap_or(0);
        }
        if finite.len() != vals.len() {
            let neginf = vals.iter().any(|&x| x.into() == f64::NEG_INFINITY) as usize;
            let offset = f.pad_right + 1;
            f.pad_left = f.pad_left.max((3 + neginf).saturating_sub(offset));
        }
        f
    }

    fn format<T: Display + LowerExp + Into<f64> + Copy>(&self, x: T) -> String {
        let v: f64 = x.into();
        let width = self.pad_left + self.pad_right + 1;
        if v.is_nan() {
            return format!("{:>width$}", "nan");
        }
        if v.is_infinite() {
            return format!("{:>width$}", if v > 0.0 { "inf" } else { "-inf" });
        }
        if self.exp_format {
            // Every value gets `precision` digits: past its shortest digits come the true
            // digits of its binary value (numpy's `min_digits`), i.e. the correctly rounded form.
            let s = format!("{x:.p$e}", p = self.precision);
            let (mant, exp) = s.split_once('e').expect("exponent");
            let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
            let exp = exponent(exp.parse().expect("integer exponent"), self.exp_size);
            format!("{int:>pl$}.{frac}{exp}", pl = self.pad_left)
        } else {
            let (int, frac) = positional(x);
            format!("{int:>pl$}.{frac:<pr$}", pl = self.pad_left, pr = self.pad_right)
        }
    }
}

struct Printer<'a> {
    array: &'a Array,
    strides: Vec<usize>,
    format: ElementFormat,
    summarize: bool,
}

/// numpy's `_extendLine`: wrap before `word` if the line would pass `width`, unless the
/// line holds nothing but its indent.
fn extend_line(s: &mut String, line: &mut String, word: &str, width: usize, indent: &str) {
    if line.len() + word.len() > width && line.len() > indent.len() {
        s.push_str(line.trim_end());
        s.push('\n');
        line.clear();
        line.push_str(indent);
    }
    line.push_str(word);
}

impl Printer<'_> {
    /// numpy's `_formatArray` recursion, for the sub-array at `index`.
    fn recurse(&self, index: &mut Vec<usize>, indent: &str, width: usize) -> String {
        let shape = self.array.shape();
        let axis = index.len();
        let axes_left = shape.len() - axis;
        if axes_left == 0 {
            let flat: usize = index.iter().zip(&self.strides).map(|(i, s)| i * s).sum();
            return self.format.format(self.array.data(), flat);
        }
        let next_indent = format!("{indent} ");
        let next_width = width - 1;
        let n = shape[axis];
        let summary = self.summarize && 2 * EDGE_ITEMS < n;
        let items: Vec<Option<usize>> = if summary {
            (0..EDGE_ITEMS).map(Some).chain([None]).chain((n - EDGE_ITEMS..n).map(Some)).collect()
        } else {
            (0..n).map(Some).collect()
        };
        let mut sub = |i: usize| {
            index.push(i);
            let s = self.recurse(index, &next_indent, next_width);
            index.pop();
            s
        };
        let mut s = String::new();
        if axes_left == 1 {
            let elem_width = width - 1;
            let mut line = indent.to_string();
            for (k, item) in items.iter().enumerate() {
                let word = item.map_or_else(|| "...".to_string(), &mut sub);
                extend_line(&mut s, &mut line, &word, elem_width, indent);
                if k + 1 < items.len() {
                    line.push(' ');
                }
            }
            s.push_str(&line);
        } else {
            let sep = "\n".repeat(axes_left - 1);
            for (k, item) in items.iter().enumerate() {
                s.push_str(indent);
                s.push_str(&item.map_or_else(|| "...".to_string(), &mut sub));
                if k + 1 < items.len() {
                    s.push_str(&sep);
                }
            }
        }
        format!("[{}]", &s[indent.len()..])
    }
}
