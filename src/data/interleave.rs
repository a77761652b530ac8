//! `interleave`: pipelines made from the input elements, read in turn.

use std::sync::Arc;

use super::pipeline::{Element, Elements, Pipeline};
use crate::Result;

impl Pipeline {
    /// Maps each element to a pipeline with `f` and interleaves their elements
    /// (`tf.data.Dataset.interleave`, deterministic): up to `cycle_length` of them are open at
    /// once; `block_length` consecutive elements are taken from one before moving to the
    /// next; an exhausted one is replaced by the pipeline of the next input element.
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// // Element i repeated i times, two at a time, in blocks of 1 (TF's docs example).
    /// let p = Pipeline::range(1, 4).interleave(
    ///     |e| Ok(Pipeline::from_tensors(&e).repeat(Some(e[0].to_scalar::<i64>()? as usize))),
    ///     2,
    ///     1,
    /// );
    /// let v: Vec<i64> = p.iter().map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap()).collect();
    /// assert_eq!(v, vec![1, 2, 2, 3, 3, 3]);
    /// ```
    #[track_caller]
    pub fn interleave(
        self,
        f: impl Fn(Element) -> Result<Pipeline> + Send + Sync + 'static,
        cycle_length: usize,
        block_length: usize,
    ) -> Pipeline {
        assert!(cycle_length > 0 && block_length > 0, "cycle_length and block_length must be at least 1");
        let f = Arc::new(f);
        self.then(move |up| Box::new(Interleave::new(up, f.clone(), cycle_length, block_length)))
    }
}

type MakeInner = Arc<dyn Fn(Element) -> Result<Pipeline> + Send + Sync>;

/// TF's `InterleaveDatasetOp` iterator: a cycle of open inner passes visited in turn.
struct Interleave {
    input: Elements,
    f: MakeInner,
    cycle: Vec<Option<Elements>>,
    current: usize,
    block_index: usize,
    block_length: usize,
    open: usize,
    end_of_input: bool,
}

impl Interleave {
    fn new(input: Elements, f: MakeInner, cycle_length: usize, block_length: usize) -> Interleave {
        let cycle = (0..cycle_length).map(|_| None).collect();
        Interleave { input, f, cycle, current: 0, block_index: 0, block_length, open: 0, end_of_input: false }
    }

    fn advance(&mut self) {
        self.block_index = 0;
        self.current = (self.current + 1) % self.cycle.len();
    }
}

impl Iterator for Interleave {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        while !self.end_of_input || self.open > 0 {
            if let Some(inner) = self.cycle[self.current].as_mut() {
                match inner.next() {
                    Some(e) => {
                        self.block_index += 1;
                        if self.block_index == self.block_length {
                            self.advance();
                        }
                        return Some(e);
                    }
                    None => {
                        self.cycle[self.current] = None;
                        self.open -= 1;
                        self.advance();
                    }
                }
            } else if !self.end_of_input {
                match self.input.next() {
                    None => self.end_of_input = true,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(e)) => match (self.f)(e) {
                        Ok(p) => {
                            self.cycle[self.current] = Some(p.iter());
                            self.open += 1;
                        }
                        Err(e) => return Some(Err(e)),
                    },
                }
            } else {
                self.advance();
            }
        }
        None
    }
}
