//! Keras's `StringLookup` (output mode `"int"`): vocabulary → ids, with out-of-vocabulary
//! (OOV) buckets and an optional mask token. Ids are laid out as Keras lays them out: the
//! mask token (if any) 0, then `num_oov_indices` OOV ids, then the vocabulary in order. With
//! more than one OOV id, an unknown string's OOV id is its `to_hash_bucket_fast` bucket.

use std::collections::HashMap;

use super::hash::fingerprint64;
use super::StringTensor;
use crate::ragged::{RaggedTensor, RaggedValues};
use crate::{Error, Result, Tensor};

/// A string → id table as Keras's `StringLookup` (defaults: one OOV id, 0; no mask token;
/// the vocabulary from 1).
///
/// ```
/// use kiln::strings::{StringLookup, StringTensor};
/// let lookup = StringLookup::new(&["a", "b"]);
/// let ids = lookup.call(&StringTensor::new(&["b", "zzz", "a"], &[3]).unwrap()).unwrap();
/// assert_eq!(ids.to_vec::<i64>().unwrap(), vec![2, 0, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct StringLookup {
    vocabulary: Vec<String>,
    index: HashMap<String, i64>,
    num_oov_indices: usize,
    mask_token: Option<String>,
    oov_token: String,
}

impl StringLookup {
    /// A lookup over `vocabulary` with Keras's defaults. Panics on a vocabulary
    /// [`StringLookup::try_new`] refuses.
    ///
    /// ```
    /// let lookup = kiln::strings::StringLookup::new(&["hello", "world"]);
    /// assert_eq!(lookup.vocabulary_size(), 3);
    /// ```
    #[track_caller]
    pub fn new(vocabulary: &[&str]) -> StringLookup {
        crate::ops::or_panic(Self::try_new(vocabulary))
    }

    /// A lookup over `vocabulary`; a repeated entry is an `Err` naming it (as Keras).
    ///
    /// ```
    /// assert!(kiln::strings::StringLookup::try_new(&["a", "a"]).is_err());
    /// ```
    pub fn try_new(vocabulary: &[&str]) -> Result<StringLookup> {
        let mut lookup = StringLookup {
            vocabulary: vocabulary.iter().map(|s| s.to_string()).collect(),
            index: HashMap::new(),
            num_oov_indices: 1,
            mask_token: None,
            oov_token: "[UNK]".to_string(),
        };
        if let Some(dup) = vocabulary.iter().enumerate().find(|(i, s)| vocabulary[..*i].contains(s)) {
            return Err(Error::invalid("StringLookup", format!("the vocabulary repeats {:?}", dup.1)));
        }
        lookup.reindex()?;
        Ok(lookup)
    }

    /// The same lookup with `n` OOV ids (Keras's `num_oov_indices`; 0 makes an unknown
    /// string an `Err`).
    ///
    /// ```
    /// let lookup = kiln::strings::StringLookup::new(&["a"]).with_num_oov_indices(3).unwrap();
    /// assert_eq!(lookup.vocabulary_size(), 4);
    /// ```
    pub fn with_num_oov_indices(mut self, n: usize) -> Result<StringLookup> {
        self.num_oov_indices = n;
        self.reindex()?;
        Ok(self)
    }

    /// The same lookup with a mask token (Keras's `mask_token`), which maps to 0 and moves
    /// every other id up by one; it must not be in the vocabulary.
    ///
    /// ```
    /// use kiln::strings::{StringLookup, StringTensor};
    /// let lookup = StringLookup::new(&["a"]).with_mask_token("").unwrap();
    /// let ids = lookup.call(&StringTensor::new(&["", "a", "b"], &[3]).unwrap()).unwrap();
    /// assert_eq!(ids.to_vec::<i64>().unwrap(), vec![0, 2, 1]);
    /// ```
    pub fn with_mask_token(mut self, token: &str) -> Result<StringLookup> {
        self.mask_token = Some(token.to_string());
        self.reindex()?;
        Ok(self)
    }

    fn reindex(&mut self) -> Result<()> {
        if let Some(m) = self.mask_token.as_ref().filter(|m| self.vocabulary.contains(m)) {
            return Err(Error::invalid("StringLookup", format!("the mask token {m:?} is in the vocabulary")));
        }
        let first = self.oov_start() + self.num_oov_indices as i64;
        self.index = self.vocabulary.iter().cloned().zip(first..).collect();
        Ok(())
    }

    fn oov_start(&self) -> i64 {
        i64::from(self.mask_token.is_some())
    }

    /// The number of ids: mask token, OOV ids and vocabulary (Keras's `vocabulary_size`).
    ///
    /// ```
    /// let lookup = kiln::strings::StringLookup::new(&["a", "b"]).with_mask_token("").unwrap();
    /// assert_eq!(lookup.vocabulary_size(), 4);
    /// ```
    pub fn vocabulary_size(&self) -> usize {
        self.oov_start() as usize + self.num_oov_indices + self.vocabulary.len()
    }

    /// The token of every id in order (Keras's `get_vocabulary`): the mask token, the OOV
    /// token `"[UNK]"` once per OOV id, then the vocabulary.
    ///
    /// ```
    /// let lookup = kiln::strings::StringLookup::new(&["a"]);
    /// assert_eq!(lookup.get_vocabulary(), vec!["[UNK]", "a"]);
    /// ```
    pub fn get_vocabulary(&self) -> Vec<String> {
        let oov = std::iter::repeat_n(self.oov_token.clone(), self.num_oov_indices);
        self.mask_token.iter().cloned().chain(oov).chain(self.vocabulary.iter().cloned()).collect()
    }

    /// The id of one string.
    fn id(&self, s: &str) -> Result<i64> {
        if self.mask_token.as_deref() == Some(s) {
            return Ok(0);
        }
        if let Some(&i) = self.index.get(s) {
            return Ok(i);
        }
        match self.num_oov_indices {
            0 => {
                Err(Error::invalid("StringLookup", format!("{s:?} is not in the vocabulary and num_oov_indices is 0")))
            }
            1 => Ok(self.oov_start()),
            n => Ok(self.oov_start() + (fingerprint64(s) % n as u64) as i64),
        }
    }

    fn ids(&self, t: &StringTensor) -> Result<Tensor> {
        let ids = t.as_slice().iter().map(|s| self.id(s)).collect::<Result<Vec<_>>>()?;
        Tensor::from_vec(ids, t.shape())
    }

    /// The ids of a [`StringTensor`] (an `I64` tensor of its shape) or of a ragged tensor of
    /// strings (a ragged `I64` tensor with the same row splits).
    ///
    /// ```
    /// use kiln::strings::{StringLookup, StringTensor};
    /// let words = StringTensor::new(&["hello world", "kiln"], &[2]).unwrap().split(" ").unwrap();
    /// let ids = StringLookup::new(&["hello", "world", "kiln"]).call(&words).unwrap();
    /// assert_eq!(ids.to_nested::<i64>().unwrap(), vec![vec![1, 2], vec![3]]);
    /// ```
    pub fn call<I: LookupInput>(&self, input: &I) -> Result<I::Output> {
        input.lookup(self)
    }
}

/// What [`StringLookup::call`] takes: a [`StringTensor`] or a [`RaggedTensor`] of strings.
///
/// ```
/// use kiln::strings::{LookupInput, StringLookup, StringTensor};
/// let t = StringTensor::scalar("a");
/// assert_eq!(t.lookup(&StringLookup::new(&["a"])).unwrap().to_scalar::<i64>().unwrap(), 1);
/// ```
pub trait LookupInput {
    /// The ids, shaped as the input.
    type Output;
    /// The ids of `self` under `lookup`.
    fn lookup(&self, lookup: &StringLookup) -> Result<Self::Output>;
}

impl LookupInput for StringTensor {
    type Output = Tensor;
    fn lookup(&self, lookup: &StringLookup) -> Result<Tensor> {
        lookup.ids(self)
    }
}

impl LookupInput for RaggedTensor {
    type Output = RaggedTensor;
    fn lookup(&self, lookup: &StringLookup) -> Result<RaggedTensor> {
        let ids = lookup.ids(self.string_values()?)?;
        self.with_values("StringLookup", RaggedValues::Numeric(ids))
    }
}
