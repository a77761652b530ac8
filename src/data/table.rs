//! `Dataset`: in-memory tensors sliced along their first axis into (shuffled) batches,
//! epoch by epoch (a small `tf.data.Dataset.from_tensor_slices(..).shuffle(..).batch(..)`).

use kiln_ir::DType;

use super::SplitMix;
use crate::{Error, Result, Tensor};

/// Rows of one or more tensors sharing their first dimension (e.g. features and labels).
///
/// With [`Dataset::shuffle`], each epoch visits the rows in a new order, determined by the
/// seed and the epoch number alone (TF's `reshuffle_each_iteration`), so runs reproduce.
///
/// ```
/// use kiln::data::Dataset;
/// use kiln::Tensor;
/// let x = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[5, 2]).unwrap();
/// let y = Tensor::new(&[0i64, 1, 2, 3, 4]);
/// let ds = Dataset::from_tensors(&[x, y]).unwrap().batch(2, false);
/// let batches: Vec<Vec<Tensor>> = ds.epoch(0).collect::<Result<_, _>>().unwrap();
/// assert_eq!(batches.len(), 3);                                  // 2 + 2 + 1
/// assert_eq!(batches[2][1].to_vec::<i64>().unwrap(), vec![4]);
/// let dropped = ds.clone().batch(2, true);
/// assert_eq!(dropped.epoch(0).count(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Dataset {
    tensors: Vec<Tensor>,
    rows: usize,
    shuffle_seed: Option<u64>,
    batch_size: usize,
    drop_remainder: bool,
}

impl Dataset {
    /// A dataset over concrete tensors with equal first dimensions; one row per batch until
    /// [`Dataset::batch`] is set.
    pub fn from_tensors(tensors: &[Tensor]) -> Result<Dataset> {
        let first = tensors.first().ok_or_else(|| Error::invalid("Dataset", "needs at least one tensor"))?;
        for t in tensors {
            if t.is_symbolic() {
                return Err(Error::invalid(
                    "Dataset",
                    "tensors must be concrete (build the dataset outside traced functions)",
                ));
            }
            if t.rank() == 0 || t.shape()[0] != first.shape().first().copied().unwrap_or(0) {
                return Err(Error::invalid(
                    "Dataset",
                    format!(
                        "every tensor needs the same first dimension; got {}",
                        tensors.iter().map(|t| t.tensor_type().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(Dataset {
            tensors: tensors.to_vec(),
            rows: first.shape()[0],
            shuffle_seed: None,
            batch_size: 1,
            drop_remainder: false,
        })
    }

    /// Shuffles the rows every epoch, reproducibly from `seed`.
    pub fn shuffle(self, seed: u64) -> Dataset {
        Dataset { shuffle_seed: Some(seed), ..self }
    }

    /// Groups rows into batches of `size` (≥ 1); a smaller last batch is kept unless
    /// `drop_remainder`.
    #[track_caller]
    pub fn batch(self, size: usize, drop_remainder: bool) -> Dataset {
        assert!(size > 0, "batch size must be at least 1");
        Dataset { batch_size: size, drop_remainder, ..self }
    }

    /// Holds out the last `fraction` of the rows (taken before any shuffling, as Keras's
    /// `validation_split`): `(training rows, held-out rows)`, both keeping this dataset's
    /// shuffling and batching. `fraction` must be in `[0, 1)`.
    ///
    /// ```
    /// use kiln::data::Dataset;
    /// use kiln::Tensor;
    /// let ds = Dataset::from_tensors(&[Tensor::new(&[0i64, 1, 2, 3, 4])]).unwrap().batch(2, false);
    /// let (train, val) = ds.split_validation(0.4).unwrap();
    /// assert_eq!((train.len(), val.len()), (3, 2));
    /// assert_eq!(val.all()[0].to_vec::<i64>().unwrap(), vec![3, 4]);
    /// ```
    pub fn split_validation(&self, fraction: f64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(Error::invalid("validation_split", format!("must be in [0, 1), got {fraction}")));
        }
        let cut = self.rows - (self.rows as f64 * fraction).round() as usize;
        Ok((self.select(0..cut)?, self.select(cut..self.rows)?))
    }

    /// Rows `index, index + num_shards, index + 2 num_shards, ...` (TF's `shard`): process
    /// `index` of a data-parallel job of `num_shards` keeps its share of the rows, before
    /// shuffling and batching, which apply to the shard (`kiln::distributed`).
    ///
    /// ```
    /// use kiln::data::Dataset;
    /// use kiln::Tensor;
    /// let ds = Dataset::from_tensors(&[Tensor::new(&[0i64, 1, 2, 3, 4])]).unwrap();
    /// let shard = ds.shard(2, 1).unwrap();
    /// assert_eq!(shard.all()[0].to_vec::<i64>().unwrap(), vec![1, 3]);
    /// assert!(ds.shard(2, 2).is_err());
    /// ```
    pub fn shard(&self, num_shards: usize, index: usize) -> Result<Dataset> {
        if index >= num_shards {
            return Err(Error::invalid("Dataset::shard", format!("shard {index} of {num_shards} does not exist")));
        }
        self.select((index..self.rows).step_by(num_shards))
    }

    /// A dataset of the given rows, with this one's shuffling and batching.
    fn select(&self, rows: impl Iterator<Item = usize>) -> Result<Dataset> {
        let rows: Vec<i64> = rows.map(|r| r as i64).collect();
        let idx = Tensor::from_vec(rows.clone(), &[rows.len()])?;
        let tensors = self.tensors.iter().map(|t| t.try_gather(&idx, 0)).collect::<Result<Vec<_>>>()?;
        Ok(Dataset { tensors, rows: rows.len(), ..self.clone() })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The number of batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_remainder {
            self.rows / self.batch_size
        } else {
            self.rows.div_ceil(self.batch_size)
        }
    }

    /// The row order of epoch `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.rows).collect();
        if let Some(seed) = self.shuffle_seed {
            let mut rng =
                SplitMix(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(0x632b_e59b_d9b4_e019));
            // Fisher–Yates.
            for i in (1..self.rows).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                idx.swap(i, j);
            }
        }
        idx
    }

    /// The batches of epoch `epoch`, each a `Vec` with one tensor per dataset tensor.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Result<Vec<Tensor>>> + '_ {
        let order = self.order(epoch);
        let n = self.batches_per_epoch();
        (0..n).map(move |b| self.batch_of(&order, b))
    }

    /// Batch `b` of an epoch whose row order is `order`.
    fn batch_of(&self, order: &[usize], b: usize) -> Result<Vec<Tensor>> {
        let rows = &order[b * self.batch_size..((b + 1) * self.batch_size).min(self.rows)];
        let idx = Tensor::from_vec(rows.iter().map(|&r| r as i64).collect::<Vec<i64>>(), &[rows.len()])?;
        self.tensors.iter().map(|t| t.try_gather(&idx, 0)).collect()
    }

    /// This table as a streaming [`Pipeline`](super::Pipeline) of its batches: pass `n` of
    /// the pipeline yields the batches of epoch `n` (so shuffling changes every pass, as
    /// [`Dataset::epoch`] does), to be mapped, prefetched and so on.
    ///
    /// ```
    /// use kiln::data::Dataset;
    /// use kiln::Tensor;
    /// let ds = Dataset::from_tensors(&[Tensor::new(&[0i64, 1, 2, 3, 4])]).unwrap().shuffle(3).batch(2, false);
    /// let p = ds.pipeline().prefetch(2);
    /// let first: Vec<Vec<Tensor>> = p.iter().collect::<Result<_, _>>().unwrap();
    /// let epoch0: Vec<Vec<Tensor>> = ds.epoch(0).collect::<Result<_, _>>().unwrap();
    /// assert_eq!(first.len(), 3);
    /// assert_eq!(first[0][0].to_vec::<i64>().unwrap(), epoch0[0][0].to_vec::<i64>().unwrap());
    /// ```
    pub fn pipeline(&self) -> super::Pipeline {
        let table = self.clone();
        let passes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        super::Pipeline::from_fn(move || {
            let epoch = passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (table, order) = (table.clone(), table.order(epoch));
            Box::new((0..table.batches_per_epoch()).map(move |b| table.batch_of(&order, b)))
        })
    }

    /// Every row's tensors as one batch (for evaluation).
    pub fn all(&self) -> Vec<Tensor> {
        self.tensors.clone()
    }

    /// The dtypes of the tensors.
    pub fn dtypes(&self) -> Vec<DType> {
        self.tensors.iter().map(Tensor::dtype).collect()
    }
}
