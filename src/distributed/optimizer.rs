//! `DistributedOptimizer`: averages gradients across processes, a few buckets at a time
//! (Horovod's tensor fusion), then lets the wrapped optimizer apply them.

use kiln_ir::interp::collective;
use kiln_ir::DType;

use super::{all_reduce, ReduceOp};
use crate::optim::{Optimizer, OptimizerBase};
use crate::{Result, SliceArg, Tensor, Variable};

/// The default bucket size: 64 MiB, Horovod's default fusion threshold
/// (`HOROVOD_FUSION_THRESHOLD`).
pub const DEFAULT_BUCKET_BYTES: usize = 64 << 20;

/// Wraps an optimizer so that `apply_gradients` first averages each gradient over every
/// process (Horovod's `DistributedOptimizer`); the wrapped optimizer's rule, slots and step
/// counter are used unchanged. Gradients are fused into buckets of at most
/// [`DistributedOptimizer::bucket_bytes`] (one dtype each, in the order given; a larger
/// gradient is a bucket of its own), so a step makes one all-reduce per bucket, not one
/// per Variable. With one process it averages nothing and adds no op.
///
/// ```
/// use kiln::distributed::DistributedOptimizer;
/// use kiln::optim::{Optimizer, SGD};
/// use kiln::{Tensor, Variable};
/// let w = Variable::new(Tensor::new(&[1.0f32, 2.0]));
/// let opt = DistributedOptimizer::new(SGD::new(0.1));
/// opt.apply_gradients(&[(Tensor::new(&[1.0f32, -1.0]), &w)]).unwrap();
/// assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![0.9, 2.1]); // alone: the gradient itself
/// ```
pub struct DistributedOptimizer<O: Optimizer> {
    inner: O,
    bucket_bytes: usize,
}

impl<O: Optimizer> DistributedOptimizer<O> {
    /// `inner`, with gradients averaged across processes in buckets of
    /// [`DEFAULT_BUCKET_BYTES`].
    pub fn new(inner: O) -> DistributedOptimizer<O> {
        DistributedOptimizer { inner, bucket_bytes: DEFAULT_BUCKET_BYTES }
    }

    /// Fuses gradients into buckets of at most `bytes` (0: one all-reduce per gradient).
    ///
    /// ```
    /// let opt = kiln::distributed::DistributedOptimizer::new(kiln::optim::SGD::new(0.1)).bucket_bytes(1 << 20);
    /// assert_eq!(opt.buckets(&[(kiln::DType::F32, 1000)]).len(), 1);
    /// ```
    pub fn bucket_bytes(mut self, bytes: usize) -> DistributedOptimizer<O> {
        self.bucket_bytes = bytes;
        self
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// How gradients of these dtypes and element counts are grouped: each bucket lists the
    /// positions it reduces together, in order.
    ///
    /// ```
    /// use kiln::distributed::DistributedOptimizer;
    /// use kiln::DType::{F32, F64};
    /// let opt = DistributedOptimizer::new(kiln::optim::SGD::new(0.1)).bucket_bytes(64);
    /// // 8 + 8 f32 fit in 64 bytes; 20 f32 do not; an f64 starts a bucket of its own dtype.
    /// let b = opt.buckets(&[(F32, 8), (F32, 8), (F32, 20), (F64, 2)]);
    /// assert_eq!(b, vec![vec![0, 1], vec![2], vec![3]]);
    /// ```
    pub fn buckets(&self, grads: &[(DType, usize)]) -> Vec<Vec<usize>> {
        buckets(grads, self.bucket_bytes)
    }

    /// Every process's gradients averaged, bucket by bucket, in the order given (eagerly or,
    /// inside a traced step, as graph ops).
    pub fn average(&self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
        average_gradients(grads, self.bucket_bytes)
    }
}

/// Every process's `grads` averaged, fused into buckets of at most `bucket_bytes`
/// ([`DistributedOptimizer::buckets`]); alone, the gradients themselves and no op.
///
/// ```
/// let g = kiln::Tensor::new(&[1.0f32, 2.0]);
/// let avg = kiln::distributed::average_gradients(&[g], 1 << 20).unwrap();
/// assert_eq!(avg[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// ```
pub fn average_gradients(grads: &[Tensor], bucket_bytes: usize) -> Result<Vec<Tensor>> {
    if collective::size() == 1 {
        return Ok(grads.to_vec());
    }
    let plan: Vec<(DType, usize)> = grads.iter().map(|g| (g.dtype(), g.numel())).collect();
    let mut out: Vec<Option<Tensor>> = vec![None; grads.len()];
    for bucket in buckets(&plan, bucket_bytes) {
        let members: Vec<&Tensor> = bucket.iter().map(|&i| &grads[i]).collect();
        for (i, avg) in bucket.iter().zip(average_bucket(&members)?) {
            out[*i] = Some(avg);
        }
    }
    Ok(out.into_iter().map(|g| g.expect("every gradient is in a bucket")).collect())
}

fn buckets(grads: &[(DType, usize)], limit: usize) -> Vec<Vec<usize>> {
    let mut buckets: Vec<Vec<usize>> = Vec::new();
    let mut open: Option<(DType, usize)> = None; // dtype and bytes of the last bucket
    for (i, &(dtype, numel)) in grads.iter().enumerate() {
        let bytes = numel * dtype.size();
        match open {
            Some((d, used)) if d == dtype && used + bytes <= limit => {
                buckets.last_mut().expect("an open bucket").push(i);
                open = Some((d, used + bytes));
            }
            _ => {
                buckets.push(vec![i]);
                open = Some((dtype, bytes));
            }
        }
    }
    buckets
}

/// One all-reduce for the whole bucket: flattened, joined, averaged, cut apart again.
fn average_bucket(grads: &[&Tensor]) -> Result<Vec<Tensor>> {
    if let [g] = grads {
        return Ok(vec![all_reduce(g, ReduceOp::Mean)?]);
    }
    let flat = grads.iter().map(|g| g.try_reshape([g.numel()])).collect::<Result<Vec<_>>>()?;
    let joined = Tensor::try_concat(&flat.iter().collect::<Vec<_>>(), 0)?;
    let mean = all_reduce(&joined, ReduceOp::Mean)?;
    let mut start = 0;
    grads
        .iter()
        .map(|g| {
            let stop = start + g.numel();
            let range = SliceArg::Range { start: Some(start as isize), stop: Some(stop as isize), step: 1 };
            start = stop;
            mean.try_slice(&[range])?.try_reshape(g.shape().to_vec())
        })
        .collect()
}

impl<O: Optimizer> Optimizer for DistributedOptimizer<O> {
    fn base(&self) -> &OptimizerBase {
        self.inner.base()
    }

    fn update_step(&self, gradient: &Tensor, variable: &Variable, learning_rate: &Tensor) -> Result<()> {
        self.inner.update_step(gradient, variable, learning_rate)
    }

    fn before_step(&self, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
        self.inner.before_step(grads_and_vars)
    }

    /// Averages the gradients across processes, then applies them with the wrapped
    /// optimizer's `apply_gradients`.
    fn apply_gradients(&self, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
        let grads: Vec<Tensor> = grads_and_vars.iter().map(|(g, _)| g.clone()).collect();
        let averaged = self.average(&grads)?;
        let pairs: Vec<(Tensor, &Variable)> =
            averaged.into_iter().zip(grads_and_vars.iter().map(|(_, v)| *v)).collect();
        self.inner.apply_gradients(&pairs)
    }
}
