//! Stages that join or split passes: `concatenate`, `zip`, `flat_map`, `unbatch`.

use super::pipeline::{Element, Pipeline};
use crate::Result;

impl Pipeline {
    /// This pipeline's elements, then `other`'s (`tf.data.Dataset.concatenate`).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// let p = Pipeline::range(0, 2).concatenate(&Pipeline::range(5, 7));
    /// let v: Vec<i64> = p.iter().map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap()).collect();
    /// assert_eq!(v, vec![0, 1, 5, 6]);
    /// ```
    pub fn concatenate(self, other: &Pipeline) -> Pipeline {
        let other = other.clone();
        self.then(move |up| Box::new(up.chain(other.iter())))
    }

    /// Elements whose components are those of this pipeline's element followed by each of
    /// `others`' (`tf.data.Dataset.zip`, flattened); the pass ends with the shortest input.
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// let p = Pipeline::range(0, 3).zip(&[Pipeline::range(10, 12)]);
    /// let e = p.iter().last().unwrap().unwrap();
    /// assert_eq!((e[0].to_scalar::<i64>().unwrap(), e[1].to_scalar::<i64>().unwrap()), (1, 11));
    /// assert_eq!(p.iter().count(), 2);
    /// ```
    pub fn zip(self, others: &[Pipeline]) -> Pipeline {
        let others = others.to_vec();
        self.then(move |first| {
            let mut passes = vec![first];
            passes.extend(others.iter().map(Pipeline::iter));
            Box::new(std::iter::from_fn(move || {
                let parts: Option<Vec<Result<Element>>> = passes.iter_mut().map(Iterator::next).collect();
                let parts = parts?;
                Some(parts.into_iter().try_fold(Vec::new(), |mut all, p| {
                    all.extend(p?);
                    Ok(all)
                }))
            }))
        })
    }

    /// Each element mapped to a pipeline whose elements follow in order
    /// (`tf.data.Dataset.flat_map`: an `interleave` with a cycle of one).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// let p = Pipeline::range(1, 3).flat_map(|e| {
    ///     let n = e[0].to_scalar::<i64>()?;
    ///     Ok(Pipeline::range(0, n))
    /// });
    /// assert_eq!(p.iter().count(), 3);                 // 0 | 0 1
    /// ```
    pub fn flat_map(self, f: impl Fn(Element) -> Result<Pipeline> + Send + Sync + 'static) -> Pipeline {
        self.interleave(f, 1, 1)
    }

    /// Each element split along axis 0 of its components, which must share that
    /// dimension (`tf.data.Dataset.unbatch`).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// let p = Pipeline::range(0, 5).batch(2, false).unbatch();
    /// assert_eq!(p.iter().count(), 5);
    /// ```
    pub fn unbatch(self) -> Pipeline {
        self.then(|up| {
            Box::new(up.flat_map(|e| -> Box<dyn Iterator<Item = Result<Element>> + Send> {
                match e.and_then(|e| crate::queue::unstack("Pipeline::unbatch", "unbatch", &e)) {
                    Ok(rows) => Box::new(rows.into_iter().map(Ok)),
                    Err(err) => Box::new(std::iter::once(Err(err))),
                }
            }))
        })
    }
}
