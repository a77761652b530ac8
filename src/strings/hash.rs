//! `to_hash_bucket_fast`: TF's bucket of a string is FarmHash's `Fingerprint64` of its
//! bytes modulo the number of buckets. The `farmhash` crate's `fingerprint64` is that
//! function (farmhashna's `Hash64`), stable across versions and machines; the goldens in
//! tests/golden/ragged_strings.json check it against TF.

use super::StringTensor;
use crate::{Error, Result, Tensor};

/// TF's `Fingerprint64` of a string's bytes.
pub(crate) fn fingerprint64(s: &str) -> u64 {
    farmhash::fingerprint64(s.as_bytes())
}

impl StringTensor {
    /// Each string's bucket in `0..num_buckets` (TF's `tf.strings.to_hash_bucket_fast`):
    /// `Fingerprint64(bytes) % num_buckets`, an `I64` tensor of the same shape.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["hello", "world"], &[2]).unwrap();
    /// assert_eq!(t.to_hash_bucket_fast(10).unwrap().to_vec::<i64>().unwrap(), vec![6, 8]);
    /// ```
    pub fn to_hash_bucket_fast(&self, num_buckets: u64) -> Result<Tensor> {
        if num_buckets == 0 {
            return Err(Error::invalid("strings::to_hash_bucket_fast", "num_buckets must be >= 1, got 0"));
        }
        let b: Vec<i64> = self.data.iter().map(|s| (fingerprint64(s) % num_buckets) as i64).collect();
        Tensor::from_vec(b, &self.shape)
    }
}
