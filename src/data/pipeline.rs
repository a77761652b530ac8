//! `Pipeline`: a streaming dataset as a chain of iterator stages; its sources and the
//! element-wise stages (`map`, `filter`, `repeat`, `take`, `skip`, `shuffle`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::SplitMix;
use crate::function::Outputs;
use crate::{Error, Function, Result, Tensor};

/// One element of a pipeline: a tensor per component.
pub type Element = Vec<Tensor>;

/// One pass over a pipeline: its elements, each a `Result`.
pub type Elements = Box<dyn Iterator<Item = Result<Element>> + Send>;

/// A streaming dataset (`tf.data.Dataset`): a recipe for passes over its elements. Every
/// [`Pipeline::iter`] starts a new pass; stages are added by value (`p.map(..).batch(..)`)
/// and clones share the recipe.
///
/// ```
/// use kiln::data::Pipeline;
/// use kiln::Tensor;
/// let p = Pipeline::from_tensor_slices(&[Tensor::new(&[1.0f32, 2.0, 3.0])]).unwrap();
/// let double = kiln::function(|x: &Tensor| x * 2.0);
/// let out: Vec<f32> = p.map(&double).iter().map(|e| e.unwrap()[0].to_scalar::<f32>().unwrap()).collect();
/// assert_eq!(out, vec![2.0, 4.0, 6.0]);
/// ```
#[derive(Clone)]
pub struct Pipeline {
    make: Arc<dyn Fn() -> Elements + Send + Sync>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipeline")
    }
}

impl Pipeline {
    /// A pipeline whose passes `make` starts.
    ///
    /// ```
    /// use kiln::data::{Elements, Pipeline};
    /// use kiln::Tensor;
    /// let p = Pipeline::from_fn(|| Box::new((0..3).map(|i| Ok(vec![Tensor::scalar(i as f32)]))) as Elements);
    /// assert_eq!(p.iter().count(), 3);
    /// ```
    pub fn from_fn(make: impl Fn() -> Elements + Send + Sync + 'static) -> Pipeline {
        Pipeline { make: Arc::new(make) }
    }

    /// A new pass over the elements.
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 3);
    /// assert_eq!(p.iter().count(), 3);
    /// assert_eq!(p.iter().count(), 3);                 // each pass starts afresh
    /// ```
    pub fn iter(&self) -> Elements {
        (self.make)()
    }

    /// This pipeline with `stage` applied to each pass.
    pub(crate) fn then(self, stage: impl Fn(Elements) -> Elements + Send + Sync + 'static) -> Pipeline {
        let up = self.make;
        Pipeline::from_fn(move || stage(up()))
    }

    /// The elements a generator yields (`tf.data.Dataset.from_generator`): `generator` is
    /// called once per pass and its iterator's items become the elements (an `Err` item
    /// is passed on as an error).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// let p = Pipeline::from_generator(|| (1..=3).map(|n| Ok(vec![Tensor::zeros(&[n], kiln::DType::F32)])));
    /// let sizes: Vec<usize> = p.iter().map(|e| e.unwrap()[0].numel()).collect();
    /// assert_eq!(sizes, vec![1, 2, 3]);
    /// ```
    pub fn from_generator<I>(generator: impl Fn() -> I + Send + Sync + 'static) -> Pipeline
    where
        I: IntoIterator<Item = Result<Element>>,
        I::IntoIter: Send + 'static,
    {
        Pipeline::from_fn(move || Box::new(generator().into_iter()))
    }

    /// One element per slice along axis 0 of `tensors`, which must share their first
    /// dimension (`tf.data.Dataset.from_tensor_slices`).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// let p = Pipeline::from_tensor_slices(&[Tensor::new(&[[1i64, 2], [3, 4]]), Tensor::new(&[5.0f32, 6.0])]).unwrap();
    /// let first = p.iter().next().unwrap().unwrap();
    /// assert_eq!(first[0].to_vec::<i64>().unwrap(), vec![1, 2]);
    /// assert_eq!(first[1].to_scalar::<f32>().unwrap(), 5.0);
    /// assert!(Pipeline::from_tensor_slices(&[Tensor::new(&[1i64, 2]), Tensor::new(&[1i64])]).is_err());
    /// ```
    pub fn from_tensor_slices(tensors: &[Tensor]) -> Result<Pipeline> {
        let rows = tensors.first().and_then(|t| t.shape().first().copied());
        let ok = tensors.iter().all(|t| !t.is_symbolic() && t.shape().first().copied() == rows);
        let Some(rows) = rows.filter(|_| ok) else {
            let got: Vec<String> = tensors.iter().map(|t| t.tensor_type().to_string()).collect();
            return Err(Error::invalid(
                "from_tensor_slices",
                format!("needs concrete tensors sharing their first dimension, got ({})", got.join(", ")),
            ));
        };
        let tensors = tensors.to_vec();
        Ok(Pipeline::from_fn(move || {
            let tensors = tensors.clone();
            Box::new((0..rows).map(move |i| tensors.iter().map(|t| crate::queue::row(t, i)).collect()))
        }))
    }

    /// A single element: `tensors` whole (`tf.data.Dataset.from_tensors`).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// let p = Pipeline::from_tensors(&[Tensor::new(&[1.0f32, 2.0])]);
    /// assert_eq!(p.iter().count(), 1);
    /// ```
    pub fn from_tensors(tensors: &[Tensor]) -> Pipeline {
        let element = tensors.to_vec();
        Pipeline::from_fn(move || Box::new(std::iter::once(Ok(element.clone()))))
    }

    /// Scalars `start, start + 1, .., stop - 1` as `i64` (`tf.data.Dataset.range`).
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(2, 5);
    /// let v: Vec<i64> = p.iter().map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap()).collect();
    /// assert_eq!(v, vec![2, 3, 4]);
    /// ```
    pub fn range(start: i64, stop: i64) -> Pipeline {
        Pipeline::from_fn(move || Box::new((start..stop).map(|i| Ok(vec![Tensor::scalar(i)]))))
    }

    /// Each element through `f`, a traced and compiled [`Function`] taking the components
    /// as its arguments and returning the new components (a tensor, a tuple or a `Vec`).
    /// `f` traces once per distinct element signature (dtypes and shapes) and then runs
    /// compiled, as `tf.data`'s `map` traces its function into a graph.
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// let p = Pipeline::from_tensor_slices(&[Tensor::new(&[1.0f32, 2.0]), Tensor::new(&[3.0f32, 4.0])]).unwrap();
    /// let f = kiln::function(|x: &Tensor, y: &Tensor| (x + y, x * y));
    /// let e = p.map(&f).iter().last().unwrap().unwrap();
    /// assert_eq!((e[0].to_scalar::<f32>().unwrap(), e[1].to_scalar::<f32>().unwrap()), (6.0, 8.0));
    /// assert_eq!(f.trace_count(), 1);
    /// ```
    pub fn map<O: Outputs>(self, f: &Function<O>) -> Pipeline {
        let f = f.clone();
        self.map_with(move |e| call_flat(&f, e))
    }

    /// Each element through a plain closure, run eagerly on the pipeline's thread.
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 3).map_with(|e| Ok(vec![e[0].cast(kiln::DType::F32) * 0.5]));
    /// assert_eq!(p.iter().last().unwrap().unwrap()[0].to_scalar::<f32>().unwrap(), 1.0);
    /// ```
    pub fn map_with(self, f: impl Fn(Element) -> Result<Element> + Send + Sync + 'static) -> Pipeline {
        let f = Arc::new(f);
        self.then(move |up| {
            let f = f.clone();
            Box::new(up.map(move |e| e.and_then(|e| f(e))))
        })
    }

    /// The elements for which `predicate`, a compiled [`Function`] of the components
    /// returning a scalar `bool` tensor, is true (`tf.data.Dataset.filter`).
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// let small = kiln::function(|x: &Tensor| x.less(&x.scalar_like(2.0)));
    /// assert_eq!(Pipeline::range(0, 5).filter(&small).iter().count(), 2);
    /// ```
    pub fn filter(self, predicate: &Function<Tensor>) -> Pipeline {
        let f = predicate.clone();
        self.filter_with(move |e| {
            let keep = f.call(e)?;
            if keep.dtype() != kiln_ir::DType::Bool || keep.rank() != 0 {
                return Err(Error::invalid(
                    "Pipeline::filter",
                    format!("the predicate must return a scalar bool, got {}", keep.tensor_type()),
                ));
            }
            keep.to_scalar::<bool>()
        })
    }

    /// The elements for which a plain closure returns `Ok(true)`.
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 6).filter_with(|e| Ok(e[0].to_scalar::<i64>()? % 3 == 0));
    /// assert_eq!(p.iter().count(), 2);
    /// ```
    pub fn filter_with(self, predicate: impl Fn(&[Tensor]) -> Result<bool> + Send + Sync + 'static) -> Pipeline {
        let f = Arc::new(predicate);
        self.then(move |up| {
            let f = f.clone();
            Box::new(up.filter_map(move |e| match e {
                Ok(e) => match f(&e) {
                    Ok(true) => Some(Ok(e)),
                    Ok(false) => None,
                    Err(err) => Some(Err(err)),
                },
                Err(err) => Some(Err(err)),
            }))
        })
    }

    /// `count` passes over this pipeline in a row, or endlessly with `None`
    /// (`tf.data.Dataset.repeat`). A pass that yields nothing ends the repetition, so an
    /// empty pipeline repeated forever is empty (as in TF).
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 2);
    /// assert_eq!(p.clone().repeat(Some(3)).iter().count(), 6);
    /// assert_eq!(p.repeat(None).iter().take(7).count(), 7);
    /// ```
    pub fn repeat(self, count: Option<usize>) -> Pipeline {
        let up = self.make;
        Pipeline::from_fn(move || {
            let up = up.clone();
            let mut passes = 0usize;
            let mut current: Option<Elements> = None;
            let mut yielded = false;
            Box::new(std::iter::from_fn(move || loop {
                if let Some(it) = current.as_mut() {
                    if let Some(e) = it.next() {
                        yielded = true;
                        return Some(e);
                    }
                    current = None;
                    if !yielded {
                        return None;
                    }
                }
                if count.is_some_and(|n| passes >= n) {
                    return None;
                }
                passes += 1;
                yielded = false;
                current = Some(up());
            }))
        })
    }

    /// The first `n` elements (`tf.data.Dataset.take`).
    ///
    /// ```
    /// assert_eq!(kiln::data::Pipeline::range(0, 10).take(3).iter().count(), 3);
    /// ```
    pub fn take(self, n: usize) -> Pipeline {
        self.then(move |up| Box::new(up.take(n)))
    }

    /// All but the first `n` elements (`tf.data.Dataset.skip`).
    ///
    /// ```
    /// assert_eq!(kiln::data::Pipeline::range(0, 10).skip(3).iter().count(), 7);
    /// ```
    pub fn skip(self, n: usize) -> Pipeline {
        self.then(move |up| Box::new(up.skip(n)))
    }

    /// Shuffles through a buffer of `buffer_size` elements (`tf.data.Dataset.shuffle`):
    /// the buffer fills with the first elements, then each output is a uniformly chosen
    /// buffered element, replaced by the next input. Each pass draws a new order from
    /// `seed` and the pass number (TF's `reshuffle_each_iteration`); the same seed
    /// reproduces the same sequence of passes. `buffer_size` at least the number of
    /// elements gives a uniform permutation.
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 5).shuffle(5, 42);
    /// let mut v: Vec<i64> = p.iter().map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap()).collect();
    /// v.sort();
    /// assert_eq!(v, vec![0, 1, 2, 3, 4]);
    /// ```
    pub fn shuffle(self, buffer_size: usize, seed: u64) -> Pipeline {
        let buffer_size = buffer_size.max(1);
        let passes = Arc::new(AtomicU64::new(0));
        self.then(move |mut up| {
            let pass = passes.fetch_add(1, Ordering::Relaxed);
            let mut rng = SplitMix(seed ^ pass.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(0x632b_e59b_d9b4_e019));
            let mut buffer: Vec<Result<Element>> = Vec::with_capacity(buffer_size);
            Box::new(std::iter::from_fn(move || {
                while buffer.len() < buffer_size {
                    match up.next() {
                        Some(e) => buffer.push(e),
                        None => break,
                    }
                }
                if buffer.is_empty() {
                    return None;
                }
                let j = (rng.next() % buffer.len() as u64) as usize;
                Some(buffer.swap_remove(j))
            }))
        })
    }
}

/// Calls `f` on an element's components and returns its outputs as a flat list.
pub(crate) fn call_flat<O: Outputs>(f: &Function<O>, e: Element) -> Result<Element> {
    if e.iter().any(Tensor::is_symbolic) {
        return Err(Error::invalid("Pipeline::map", "elements must be concrete tensors"));
    }
    f.concrete_function(e.as_slice())?.run(&e)
}
