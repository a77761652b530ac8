//! `batch` and `padded_batch`: consecutive elements stacked along a new axis 0.

use super::pipeline::{Element, Elements, Pipeline};
use crate::queue::stack_padded;
use crate::{Error, Result};

/// How `padded_batch` pads: a value per component and, optionally, target shapes.
#[derive(Clone)]
struct Padding {
    values: Option<Vec<f64>>,
    shapes: Option<Vec<Vec<Option<usize>>>>,
}

impl Pipeline {
    /// Groups `size` consecutive elements into one, each component stacked along a new
    /// axis 0 (`tf.data.Dataset.batch`); components must have equal shapes within a batch.
    /// A shorter last batch is kept unless `drop_remainder`. An `Err` element is passed on
    /// in its place; the batch being gathered goes on.
    ///
    /// ```
    /// let p = kiln::data::Pipeline::range(0, 5).batch(2, true);
    /// let shapes: Vec<Vec<usize>> = p.iter().map(|b| b.unwrap()[0].shape().to_vec()).collect();
    /// assert_eq!(shapes, vec![vec![2], vec![2]]);
    /// ```
    #[track_caller]
    pub fn batch(self, size: usize, drop_remainder: bool) -> Pipeline {
        assert!(size > 0, "batch size must be at least 1");
        self.then(move |up| batches(up, size, drop_remainder, None))
    }

    /// [`Pipeline::batch`] for elements whose shapes differ (`tf.data.Dataset.padded_batch`):
    /// each component is padded at the end of each axis to the largest size in the batch,
    /// or to `padded_shapes[i][d]` where that is `Some` (an element larger than it is an
    /// `Err`), with `padding_values[i]` (zero by default). Ranks must agree within a
    /// component.
    ///
    /// ```
    /// use kiln::data::Pipeline;
    /// use kiln::Tensor;
    /// let p = Pipeline::range(1, 4).map_with(|e| {
    ///     let n = e[0].to_scalar::<i64>()? as usize;
    ///     Ok(vec![Tensor::from_vec(vec![n as f32; n], &[n])?])
    /// });
    /// let b = p.padded_batch(3, None, Some(&[-1.0]), false).iter().next().unwrap().unwrap();
    /// assert_eq!(b[0].shape(), &[3, 3]);
    /// assert_eq!(b[0].to_vec::<f32>().unwrap(), vec![1.0, -1.0, -1.0, 2.0, 2.0, -1.0, 3.0, 3.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn padded_batch(
        self,
        size: usize,
        padded_shapes: Option<&[&[Option<usize>]]>,
        padding_values: Option<&[f64]>,
        drop_remainder: bool,
    ) -> Pipeline {
        assert!(size > 0, "batch size must be at least 1");
        let padding = Padding {
            values: padding_values.map(<[f64]>::to_vec),
            shapes: padded_shapes.map(|s| s.iter().map(|d| d.to_vec()).collect()),
        };
        self.then(move |up| batches(up, size, drop_remainder, Some(padding.clone())))
    }
}

fn batches(mut up: Elements, size: usize, drop_remainder: bool, padding: Option<Padding>) -> Elements {
    Box::new(std::iter::from_fn(move || {
        let mut items: Vec<Element> = Vec::with_capacity(size);
        while items.len() < size {
            match up.next() {
                Some(Ok(e)) => items.push(e),
                Some(Err(e)) => return Some(Err(e)),
                None => break,
            }
        }
        if items.is_empty() || (drop_remainder && items.len() < size) {
            return None;
        }
        Some(stack(&items, padding.as_ref()))
    }))
}

fn stack(items: &[Element], padding: Option<&Padding>) -> Result<Element> {
    let Some(p) = padding else {
        return stack_padded("Pipeline::batch", "batch", items, None, None);
    };
    let width = items[0].len();
    let values = p.values.clone().unwrap_or_else(|| vec![0.0; width]);
    for (what, n) in [("padding_values", Some(values.len())), ("padded_shapes", p.shapes.as_ref().map(Vec::len))] {
        if n.is_some_and(|n| n != width) {
            return Err(Error::invalid(
                "Pipeline::padded_batch",
                format!("{what} has {} entries for elements of {width} components", n.unwrap_or(0)),
            ));
        }
    }
    stack_padded("Pipeline::padded_batch", "padded_batch", items, Some(&values), p.shapes.as_deref())
}
