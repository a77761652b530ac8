//! Input data (TensorFlow's `tf.data`), in two forms:
//!
//! - [`Dataset`]: an in-memory table (tensors sharing their first dimension) cut into
//!   shuffled batches epoch by epoch, with a known number of batches per epoch. It is what
//!   `training::Trainer::fit` consumes (validation splits and sharding need the rows).
//! - [`Pipeline`]: a streaming dataset, a chain of iterator stages with tf.data's
//!   operations (`map` through a compiled [`kiln::function`](crate::function), `filter`,
//!   `repeat`, `take`/`skip`, `interleave`/`flat_map`, `concatenate`, `zip`,
//!   `batch`/`padded_batch`/`unbatch`, `shuffle`, `prefetch`
//!   on a background thread) over sources: tensor slices, generators, ranges, a `Dataset`'s
//!   batches ([`Dataset::pipeline`]), CSV lines ([`TextLineDataset`] + [`decode_csv`]).
//!
//! A pipeline is a recipe, not a cursor: cloning is cheap and every [`Pipeline::iter`]
//! starts a fresh pass (as iterating a `tf.data.Dataset` again does). Elements are
//! `Vec<Tensor>` (one tensor per component); each item is a `kiln::Result`, and an `Err`
//! passes through the stages in its place (a stage does not stop at it, as TF's iterator
//! can be called again after an error), except `prefetch`, which ends its pass there.
//! Design notes and op coverage: `docs/DATA.md`.
//!
//! ```
//! use kiln::data::Pipeline;
//! let evens = Pipeline::range(0, 10).filter_with(|e| Ok(e[0].to_scalar::<i64>()? % 2 == 0)).batch(2, false);
//! let batches: Vec<Vec<i64>> = evens.iter().map(|b| b.unwrap()[0].to_vec::<i64>().unwrap()).collect();
//! assert_eq!(batches, vec![vec![0, 2], vec![4, 6], vec![8]]);
//! ```

mod batch;
mod combine;
mod interleave;
mod pipeline;
mod prefetch;
mod table;
mod text;

pub use pipeline::{Element, Elements, Pipeline};
pub use table::Dataset;
pub use text::{decode_csv, CsvColumn, TextLineDataset};

/// splitmix64: a small, well-mixed generator for shuffling.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
