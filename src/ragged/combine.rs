//! Joining and picking rows: `concat` along rows (axis 0) or within rows (axis 1), and
//! `gather` of rows. Axis 0 offsets the splits by the (static) value counts; axis 1 sends
//! every value to its place with one `scatter_add`, so both trace with traced splits.

use kiln_ir::Op;

use super::{RaggedTensor, RaggedValues};
use crate::context::apply;
use crate::strings::StringTensor;
use crate::{DType, Error, Result, Tensor};

impl RaggedTensor {
    /// Concatenation as TF's `tf.concat` of ragged tensors: `axis` 0 stacks the rows of
    /// each, `axis` 1 (or -1) joins row `i` of each into row `i` (same `nrows`). The flat
    /// values must agree in kind, dtype and inner dims.
    ///
    /// ```
    /// use kiln::ragged::RaggedTensor;
    /// let a = RaggedTensor::from_nested(&[vec![1i32, 2], vec![3]]).unwrap();
    /// let b = RaggedTensor::from_nested(&[vec![4i32], vec![]]).unwrap();
    /// let rows = RaggedTensor::concat(&[&a, &b], 0).unwrap();
    /// assert_eq!(rows.to_nested::<i32>().unwrap(), vec![vec![1, 2], vec![3], vec![4], vec![]]);
    /// let within = RaggedTensor::concat(&[&a, &b], 1).unwrap();
    /// assert_eq!(within.to_nested::<i32>().unwrap(), vec![vec![1, 2, 4], vec![3]]);
    /// ```
    pub fn concat(parts: &[&RaggedTensor], axis: i64) -> Result<RaggedTensor> {
        let op = "RaggedTensor::concat";
        if parts.is_empty() {
            return Err(Error::invalid(op, "needs at least one ragged tensor"));
        }
        match axis {
            0 => concat_rows(parts),
            1 | -1 => concat_within_rows(parts),
            _ => Err(Error::invalid(op, format!("axis must be 0 or 1 (the ragged axis), got {axis}"))),
        }
    }

    /// The rows at `indices` (TF's `tf.gather(r, indices)`), repeats allowed; needs host
    /// splits. Differentiable in the flat values.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32, 2], vec![], vec![3]]).unwrap();
    /// let g = r.gather(&[2, 0, 2]).unwrap();
    /// assert_eq!(g.to_nested::<i32>().unwrap(), vec![vec![3], vec![1, 2], vec![3]]);
    /// assert!(r.gather(&[3]).is_err());
    /// ```
    pub fn gather(&self, indices: &[i64]) -> Result<RaggedTensor> {
        let op = "RaggedTensor::gather";
        let s = self.host_splits(op)?;
        let nrows = self.nrows() as i64;
        if let Some(i) = indices.iter().find(|&&i| i < 0 || i >= nrows) {
            return Err(Error::invalid(op, format!("row index {i} out of range for {nrows} rows")));
        }
        let picked: Vec<i64> = indices.iter().flat_map(|&i| s[i as usize]..s[i as usize + 1]).collect();
        let lengths: Vec<i64> = indices.iter().map(|&i| s[i as usize + 1] - s[i as usize]).collect();
        let values = gather_values(&self.values, &picked)?;
        RaggedTensor::from_row_lengths(values, &lengths)
    }
}

/// The flat values at host positions `picked`.
fn gather_values(values: &RaggedValues, picked: &[i64]) -> Result<RaggedValues> {
    Ok(match values {
        RaggedValues::Numeric(t) => {
            RaggedValues::Numeric(t.try_gather(&Tensor::from_vec(picked.to_vec(), &[picked.len()])?, 0)?)
        }
        RaggedValues::Strings(st) => {
            let flat = st.as_slice();
            let rest: Vec<usize> = st.shape()[1..].to_vec();
            let slab: usize = rest.iter().product();
            let data =
                picked.iter().flat_map(|&i| flat[i as usize * slab..(i as usize + 1) * slab].iter().cloned()).collect();
            RaggedValues::Strings(StringTensor::from_vec(data, &[&[picked.len()][..], &rest].concat())?)
        }
    })
}

fn concat_rows(parts: &[&RaggedTensor]) -> Result<RaggedTensor> {
    let mut splits = vec![Tensor::scalar(0i64).try_reshape([1])?];
    let mut offset = 0i64;
    for p in parts {
        let n = p.row_splits.shape()[0] as isize;
        splits.push(p.row_splits.try_slice(&[(1..n).into()])?.try_add(&Tensor::scalar(offset))?);
        offset += p.nvalues() as i64;
    }
    let splits = Tensor::try_concat(&splits.iter().collect::<Vec<_>>(), 0)?;
    RaggedTensor::from_row_splits(concat_values(parts)?, &splits)
}

fn concat_within_rows(parts: &[&RaggedTensor]) -> Result<RaggedTensor> {
    let nrows = parts[0].nrows();
    if let Some(p) = parts.iter().find(|p| p.nrows() != nrows) {
        return Err(Error::invalid(
            "RaggedTensor::concat",
            format!("axis 1 needs the same number of rows in each part, got {nrows} and {}", p.nrows()),
        ));
    }
    let mut splits = parts[0].row_splits.clone();
    for p in &parts[1..] {
        splits = splits.try_add(&p.row_splits)?;
    }
    // Value `c` of row `r` of part `k` goes to splits[r] + (lengths of row r in parts < k) + c.
    let mut before = Tensor::zeros(&[nrows], DType::I64);
    let mut dest = Vec::with_capacity(parts.len());
    for p in parts {
        let (row, col) = p.positions()?;
        dest.push(splits.try_gather(&row, 0)?.try_add(&before.try_gather(&row, 0)?)?.try_add(&col)?);
        before = before.try_add(&p.row_lengths()?)?;
    }
    let dest = Tensor::try_concat(&dest.iter().collect::<Vec<_>>(), 0)?;
    let values = match concat_values(parts)? {
        RaggedValues::Numeric(v) => {
            let shape = v.shape().to_vec();
            RaggedValues::Numeric(apply(Op::ScatterAdd { axis: 0, shape: shape.into() }, &[&v, &dest])?)
        }
        RaggedValues::Strings(st) => {
            // Host splits (strings never trace): `dest` is a permutation on the host.
            let mut order: Vec<(i64, usize)> = dest.to_vec::<i64>()?.into_iter().zip(0..).collect();
            order.sort_unstable();
            gather_values(&RaggedValues::Strings(st), &order.iter().map(|&(_, i)| i as i64).collect::<Vec<_>>())?
        }
    };
    RaggedTensor::from_row_splits(values, &splits)
}

/// The flat values of every part, concatenated (all numbers or all strings).
fn concat_values(parts: &[&RaggedTensor]) -> Result<RaggedValues> {
    let op = "RaggedTensor::concat";
    match &parts[0].values {
        RaggedValues::Numeric(_) => {
            let vs = parts.iter().map(|p| p.numeric(op)).collect::<Result<Vec<_>>>()?;
            Ok(RaggedValues::Numeric(Tensor::try_concat(&vs, 0)?))
        }
        RaggedValues::Strings(_) => {
            let vs = parts.iter().map(|p| p.string_values()).collect::<Result<Vec<_>>>()?;
            Ok(RaggedValues::Strings(StringTensor::concat(&vs)?))
        }
    }
}
