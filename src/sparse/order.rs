//! Canonical order: `reorder` (sort, TF's `sparse.reorder`) and `coalesce` (sort and add up
//! repeated indices). Both move values with `gather`/`scatter_add`, so gradients reach them.

use kiln_ir::{DType, Op};

use super::{linear_strides, needs_values, SparseTensor};
use crate::context::apply;
use crate::ops::args::SliceArg;
use crate::{Result, Tensor};

/// The most entries a traced sort compares pairwise (`nnz²` comparisons, 2 MiB as i64); larger
/// ones are radix-sorted.
const PAIRWISE_SORT_MAX: usize = 512;

impl SparseTensor {
    /// The same entries in canonical row-major order (TF's `sparse.reorder`): a stable sort,
    /// so repeated indices stay, in their order. Eagerly the permutation is a host sort;
    /// inside a traced function the sort is written in graph ops: pairwise comparisons up to
    /// 512 entries, a radix sort above (about `nnz · log2(nnz) · log2(dense elements)` work,
    /// a graph of hundreds of nodes).
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64, 0], [0, 2]]), Tensor::new(&[1.0f32, 2.0]), &[2, 3]).unwrap();
    /// let r = s.reorder().unwrap();
    /// assert_eq!(r.indices().to_vec::<i64>().unwrap(), vec![0, 2, 1, 0]);
    /// assert_eq!(r.values().to_vec::<f32>().unwrap(), vec![2.0, 1.0]);
    /// ```
    pub fn reorder(&self) -> Result<SparseTensor> {
        let perm = match self.host_keys()? {
            Some(keys) => {
                let mut perm: Vec<i64> = (0..keys.len() as i64).collect();
                perm.sort_by_key(|&i| keys[i as usize]);
                Tensor::from_vec(perm, &[keys.len()])?
            }
            None => self.traced_sort_permutation()?,
        };
        self.permuted(&perm)
    }

    /// Canonical order with repeated indices added into one entry (what TF's sparse ops
    /// return, e.g. `sparse.add`). The number of entries depends on the indices' values, so
    /// this runs eagerly only; values are summed by `scatter_add`, so gradients reach them.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[2i64], [0], [2]]), Tensor::new(&[1.0f32, 2.0, 3.0]), &[3]).unwrap();
    /// let c = s.coalesce().unwrap();
    /// assert_eq!(c.indices().to_vec::<i64>().unwrap(), vec![0, 2]);
    /// assert_eq!(c.values().to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
    /// ```
    pub fn coalesce(&self) -> Result<SparseTensor> {
        let keys = self.host_keys()?.ok_or_else(|| needs_values("sparse.coalesce"))?;
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        // For each entry, the output entry it adds into; and each output entry's first input.
        let mut segment = vec![0i64; keys.len()];
        let mut firsts: Vec<i64> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            if pos == 0 || keys[order[pos - 1]] != keys[i] {
                firsts.push(i as i64);
            }
            segment[i] = firsts.len() as i64 - 1;
        }
        let n = firsts.len();
        let indices = self.indices.try_gather(&Tensor::from_vec(firsts, &[n])?, 0)?;
        let segment = Tensor::from_vec(segment, &[keys.len(), 1])?;
        let values = Tensor::try_zeros(&[n], self.dtype())?.try_tensor_scatter_nd_add(&segment, &self.values)?;
        Ok(SparseTensor::from_parts(indices, values, self.dense_shape.clone()))
    }

    /// The entries in the order `perm` (`[nnz]` i64) lists them.
    fn permuted(&self, perm: &Tensor) -> Result<SparseTensor> {
        Ok(SparseTensor::from_parts(
            self.indices.try_gather(perm, 0)?,
            self.values.try_gather(perm, 0)?,
            self.dense_shape.clone(),
        ))
    }

    /// Each entry's row-major position in the dense tensor, or `None` while tracing.
    fn host_keys(&self) -> Result<Option<Vec<i64>>> {
        let strides = linear_strides("sparse.reorder", &self.dense_shape)?;
        Ok(self
            .host_indices()?
            .map(|rows| rows.iter().map(|row| row.iter().zip(&strides).map(|(&i, &s)| i * s).sum()).collect()))
    }

    /// The row-major positions as a tensor `[nnz]` i64 (traces).
    pub(super) fn key_tensor(&self) -> Result<Tensor> {
        let strides = linear_strides("sparse.reorder", &self.dense_shape)?;
        let strides = Tensor::from_vec(strides, &[self.rank()])?;
        self.indices.try_mul(&strides)?.try_sum(&[1], false)
    }

    /// The stable sorting permutation, from graph ops. Up to [`PAIRWISE_SORT_MAX`] entries
    /// by comparing every pair (a graph of a dozen nodes); above, by a radix sort (a graph of
    /// hundreds of nodes, but `nnz` memory instead of `nnz²`).
    fn traced_sort_permutation(&self) -> Result<Tensor> {
        if self.nnz() <= PAIRWISE_SORT_MAX {
            self.pairwise_sort_permutation()
        } else {
            self.radix_sort_permutation()
        }
    }

    /// Entry `i` goes to place `#{j : key_j < key_i} + #{j < i : key_j == key_i}`, and
    /// `perm[place_i] = i`.
    fn pairwise_sort_permutation(&self) -> Result<Tensor> {
        let n = self.nnz();
        let key = self.key_tensor()?;
        let (ki, kj) = (key.try_expand_dims(1)?, key.try_expand_dims(0)?);
        let pos = Tensor::try_arange(0.0, n as f64, 1.0, DType::I64)?;
        let earlier = pos.try_expand_dims(0)?.try_less(&pos.try_expand_dims(1)?)?;
        let before = kj.try_less(&ki)?.try_logical_or(&kj.try_equal(&ki)?.try_logical_and(&earlier)?)?;
        let place = before.try_cast(DType::I64)?.try_sum(&[1], true)?;
        Tensor::try_zeros(&[n], DType::I64)?.try_tensor_scatter_nd_add(&place, &pos)
    }

    /// An LSD radix sort of the row-major positions: one stable partition per bit of the
    /// largest position, each placing entry `i` at the count of clear bits before it, or
    /// after all of those at the count of set bits before it (prefix sums by doubling).
    /// Work `nnz · log2(nnz) · bits`, memory `nnz`.
    fn radix_sort_permutation(&self) -> Result<Tensor> {
        let n = self.nnz();
        let numel: u64 = self.dense_shape.iter().map(|&d| d as u64).product();
        let bits = 64 - (numel.max(2) - 1).leading_zeros();
        let pos = Tensor::try_arange(0.0, n as f64, 1.0, DType::I64)?;
        // Column 0 the key, column 1 the entry it came from; permuted together.
        let mut moving = Tensor::try_stack(&[&self.key_tensor()?, &pos], 1)?;
        let one = Tensor::scalar(1i64);
        for bit in 0..bits {
            let key = moving.try_slice(&[SliceArg::all(1), SliceArg::Index(0)])?;
            let shifted = key.try_div(&Tensor::scalar(1i64 << bit))?;
            let set = shifted.try_sub(&shifted.try_div(&Tensor::scalar(2i64))?.try_mul(&Tensor::scalar(2i64))?)?;
            let clear = one.try_sub(&set)?;
            let clear_before = inclusive_prefix_sum(&clear)?.try_sub(&clear)?;
            let set_after_clears = clear.try_sum(&[0], false)?.try_add(&pos.try_sub(&clear_before)?)?;
            let dest = clear.try_equal(&one)?.try_select(&clear_before, &set_after_clears)?;
            moving = apply(Op::ScatterAdd { axis: 0, shape: [n, 2][..].into() }, &[&moving, &dest])?;
        }
        moving.try_slice(&[SliceArg::all(1), SliceArg::Index(1)])
    }
}

/// Running sums of a `[n]` tensor by doubling: after step `s`, element `i` holds the sum of
/// the `2s` elements ending at `i` (`log2(n)` shifted adds, all traceable).
fn inclusive_prefix_sum(x: &Tensor) -> Result<Tensor> {
    let n = x.shape()[0];
    let mut acc = x.clone();
    let mut s = 1;
    while s < n {
        let head = Tensor::try_zeros(&[s], x.dtype())?;
        let body = acc.try_slice(&[SliceArg::from(0..(n - s) as isize)])?;
        acc = acc.try_add(&Tensor::try_concat(&[&head, &body], 0)?)?;
        s *= 2;
    }
    Ok(acc)
}
