//! `GradientTape`: a live tape on the recording stack (`context::recording`), and the
//! backward walk that turns its recording into gradients.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use kiln_ir::TensorType;

use super::vjp;
use crate::context::recording::{self, Entry, Recorded, TapeState};
use crate::{Error, Result, Tensor, Variable};

/// Records operations for automatic differentiation (TensorFlow's `tf.GradientTape`).
///
/// A tape records from [`GradientTape::new`] until it is dropped. It follows trainable
/// [`Variable`]s read while it lives and tensors given to [`GradientTape::watch`], and
/// everything computed from them. Tapes nest: a tape alive while another computes its
/// gradient records those backward ops, which gives second derivatives.
///
/// ```
/// use kiln::{GradientTape, Tensor, Variable};
/// let (w1, w2) = (Variable::new(Tensor::scalar(5.0f32)), Variable::new(Tensor::scalar(3.0f32)));
/// let f = |a: &Tensor, b: &Tensor| 3.0 * a.square() + 2.0 * a * b;
/// let tape = GradientTape::new();
/// let z = f(&w1.read(), &w2.read());
/// let g = tape.gradient(&z, &[&w1, &w2]).unwrap();
/// assert_eq!(g[0].as_ref().unwrap().to_scalar::<f32>().unwrap(), 36.0);
/// assert_eq!(g[1].as_ref().unwrap().to_scalar::<f32>().unwrap(), 10.0);
/// assert!(tape.gradient(&z, &[&w1]).is_err()); // a plain tape answers once
/// ```
pub struct GradientTape {
    state: Rc<RefCell<TapeState>>,
}

impl Default for GradientTape {
    fn default() -> Self {
        GradientTape::new()
    }
}

impl GradientTape {
    /// A tape that computes gradients once (a second `gradient` call is an `Err`).
    pub fn new() -> GradientTape {
        GradientTape::create(false)
    }

    /// A tape that may compute gradients any number of times.
    ///
    /// ```
    /// use kiln::{GradientTape, Tensor};
    /// let x = Tensor::scalar(2.0f64);
    /// let tape = GradientTape::persistent();
    /// tape.watch(&x);
    /// let y = x.square();
    /// let z = y.square();
    /// let dz = tape.gradient_tensors(&z, &[&x]).unwrap()[0].clone().unwrap(); // 4x^3 = 32
    /// let dy = tape.gradient_tensors(&y, &[&x]).unwrap()[0].clone().unwrap(); // 2x = 4
    /// assert_eq!((dz.item().unwrap(), dy.item().unwrap()), (32.0, 4.0));
    /// ```
    pub fn persistent() -> GradientTape {
        GradientTape::create(true)
    }

    fn create(persistent: bool) -> GradientTape {
        let state = Rc::new(RefCell::new(TapeState {
            persistent,
            spent: false,
            paused: 0,
            context: recording::current_context(),
            tracked: HashSet::new(),
            watched_vars: HashSet::new(),
            entries: Vec::new(),
            reads: Vec::new(),
        }));
        recording::push(&state);
        GradientTape { state }
    }

    /// Follows `t` (and what is computed from it) so gradients with respect to it can be
    /// asked for. Tensors of integer or boolean dtype carry no gradient and are ignored.
    pub fn watch(&self, t: &Tensor) {
        if t.dtype().is_float() {
            self.state.borrow_mut().tracked.insert(t.id());
        }
    }

    /// Watches a variable that is not trainable (trainable ones are watched automatically):
    /// its reads from now on are recorded.
    pub fn watch_variable(&self, v: &Variable) {
        self.state.borrow_mut().watched_vars.insert(v.uid());
    }

    /// The distinct variables read on this tape, in order of first read.
    pub fn watched_variables(&self) -> Vec<Variable> {
        let s = self.state.borrow();
        let mut seen = HashSet::new();
        s.reads.iter().filter(|(v, _)| seen.insert(v.uid())).map(|(v, _)| v.clone()).collect()
    }

    /// Runs `f` without recording on this tape (other tapes still record).
    pub fn stop_recording<R>(&self, f: impl FnOnce() -> R) -> R {
        let _resume = Pause::new(&self.state);
        f()
    }

    /// Gradients of `target` with respect to the variables: `None` where the target does not
    /// depend on a variable (as TF). A non-scalar target is summed first; a variable read
    /// several times gets the sum of the gradients of all its reads.
    pub fn gradient(&self, target: &Tensor, sources: &[&Variable]) -> Result<Vec<Option<Tensor>>> {
        self.compute(target, None, &self.variable_sources(sources))
    }

    /// [`GradientTape::gradient`] with respect to tensors (watched, or computed on the tape).
    pub fn gradient_tensors(&self, target: &Tensor, sources: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
        self.compute(target, None, &tensor_sources(sources))
    }

    /// [`GradientTape::gradient`] seeded with `output_gradient` (the gradient of some outer
    /// loss with respect to `target`, of the target's shape and dtype) instead of ones.
    ///
    /// ```
    /// use kiln::{GradientTape, Tensor, Variable};
    /// let w = Variable::new(Tensor::new(&[1.0f64, 2.0]));
    /// let tape = GradientTape::new();
    /// let y = w.read().square();
    /// let g = tape.gradient_with(&y, &[&w], &Tensor::new(&[10.0f64, 100.0])).unwrap();
    /// assert_eq!(g[0].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![20.0, 400.0]);
    /// ```
    pub fn gradient_with(
        &self,
        target: &Tensor,
        sources: &[&Variable],
        output_gradient: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        self.compute(target, Some(output_gradient), &self.variable_sources(sources))
    }

    /// [`GradientTape::gradient_tensors`] seeded with `output_gradient`.
    pub fn gradient_tensors_with(
        &self,
        target: &Tensor,
        sources: &[&Tensor],
        output_gradient: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        self.compute(target, Some(output_gradient), &tensor_sources(sources))
    }

    /// The Jacobian of `target` with respect to each variable (TF's `tape.jacobian`): per
    /// source a tensor `target.shape ++ source.shape`, `None` where the target does not depend
    /// on it. One backward pass per element of the target (TF vectorizes them with `pfor`);
    /// traced, each pass is part of the graph, so keep the target small.
    ///
    /// ```
    /// use kiln::{GradientTape, Tensor, Variable};
    /// let w = Variable::new(Tensor::new(&[1.0f64, 2.0]));
    /// let tape = GradientTape::new();
    /// let y = Tensor::stack(&[&w.read().prod_all(), &w.read().sum_all()], 0); // [w0 w1, w0 + w1]
    /// let j = tape.jacobian(&y, &[&w]).unwrap().remove(0).unwrap();
    /// assert_eq!(j.shape(), &[2, 2]);
    /// assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 1.0, 1.0, 1.0]);
    /// ```
    pub fn jacobian(&self, target: &Tensor, sources: &[&Variable]) -> Result<Vec<Option<Tensor>>> {
        let shapes: Vec<Vec<usize>> = sources.iter().map(|v| v.shape().to_vec()).collect();
        self.jacobian_of(target, &self.variable_sources(sources), &shapes)
    }

    /// [`GradientTape::jacobian`] with respect to tensors (watched, or computed on the tape).
    pub fn jacobian_tensors(&self, target: &Tensor, sources: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
        let shapes: Vec<Vec<usize>> = sources.iter().map(|t| t.shape().to_vec()).collect();
        self.jacobian_of(target, &tensor_sources(sources), &shapes)
    }

    /// The Jacobian of each example's output with respect to its own input (TF's
    /// `batch_jacobian`): `target` `[b, ...]` and `source` `[b, ...]` share the leading batch
    /// dim, and example `i` of the target must depend only on example `i` of the source; the
    /// result is `[b, ...target dims, ...source dims]`. One backward pass per element of one
    /// example's output.
    ///
    /// ```
    /// use kiln::{GradientTape, Tensor};
    /// let x = Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0]]);
    /// let tape = GradientTape::new();
    /// tape.watch(&x);
    /// let y = x.square(); // per example: diag(2 x)
    /// let j = tape.batch_jacobian(&y, &x).unwrap();
    /// assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 4.0, 6.0, 0.0, 0.0, 8.0]);
    /// ```
    pub fn batch_jacobian(&self, target: &Tensor, source: &Tensor) -> Result<Tensor> {
        let (b, rest) = match (target.shape().split_first(), source.shape().first()) {
            (Some((&b, rest)), Some(&sb)) if b == sb => (b, rest.to_vec()),
            _ => {
                return Err(Error::Gradient(format!(
                    "batch_jacobian needs a target and a source with the same leading batch dim, got {} and {}",
                    target.tensor_type(),
                    source.tensor_type()
                )))
            }
        };
        let entries = self.take_entries()?;
        let per_example: usize = rest.iter().product();
        let mut rows = Vec::with_capacity(per_example);
        for j in 0..per_example {
            // Element j of every example at once: examples are independent.
            let mut seed = vec![0.0; b * per_example];
            (0..b).for_each(|i| seed[i * per_example + j] = 1.0);
            let seed = Tensor::from_vec(seed, target.shape())?.try_cast(target.dtype())?;
            let g = self.backward_from(&entries, target, seed, &tensor_sources(&[source]))?.remove(0);
            rows.push(g.map_or_else(|| Ok(source.zeros_like()), Ok::<_, Error>)?);
        }
        let stacked = Tensor::try_stack(&rows.iter().collect::<Vec<_>>(), 1)?;
        let shape: Vec<i64> = [&[b][..], &rest, &source.shape()[1..]].concat().iter().map(|&d| d as i64).collect();
        stacked.try_reshape(shape)
    }

    fn jacobian_of(&self, target: &Tensor, sources: &[Vec<u64>], shapes: &[Vec<usize>]) -> Result<Vec<Option<Tensor>>> {
        let entries = self.take_entries()?;
        let n = target.shape().iter().product::<usize>();
        let mut rows: Vec<Vec<Option<Tensor>>> = Vec::with_capacity(n);
        for i in 0..n {
            let mut seed = vec![0.0; n];
            seed[i] = 1.0;
            let seed = Tensor::from_vec(seed, target.shape())?.try_cast(target.dtype())?;
            rows.push(self.backward_from(&entries, target, seed, sources)?);
        }
        (0..sources.len())
            .map(|k| {
                if rows.iter().all(|r| r[k].is_none()) {
                    return Ok(None);
                }
                let zeros = Tensor::zeros(&shapes[k], target.dtype());
                let parts: Vec<&Tensor> = rows.iter().map(|r| r[k].as_ref().unwrap_or(&zeros)).collect();
                let shape: Vec<i64> = target.shape().iter().chain(&shapes[k]).map(|&d| d as i64).collect();
                Tensor::try_stack(&parts, 0)?.try_reshape(shape).map(Some)
            })
            .collect()
    }

    /// Each variable stands for the ids of all its recorded reads.
    fn variable_sources(&self, sources: &[&Variable]) -> Vec<Vec<u64>> {
        let s = self.state.borrow();
        sources.iter().map(|v| s.reads.iter().filter(|(r, _)| r.same_as(v)).map(|(_, t)| t.id()).collect()).collect()
    }

    /// The recorded entries for one answer: all of them (a non-persistent tape is spent).
    fn take_entries(&self) -> Result<Vec<Rc<Entry>>> {
        let mut s = self.state.borrow_mut();
        if s.spent {
            return Err(Error::Gradient(
                "this GradientTape has already computed a gradient; a non-persistent tape answers once \
                 (use GradientTape::persistent() to ask several times)"
                    .into(),
            ));
        }
        if s.persistent {
            return Ok(s.entries.clone());
        }
        s.spent = true;
        s.reads.clear();
        s.tracked.clear();
        Ok(std::mem::take(&mut s.entries))
    }

    fn compute(&self, target: &Tensor, seed: Option<&Tensor>, sources: &[Vec<u64>]) -> Result<Vec<Option<Tensor>>> {
        let entries = self.take_entries()?;
        let seed = match seed {
            Some(g) if g.tensor_type() != target.tensor_type() => {
                return Err(Error::Gradient(format!(
                    "output_gradient is {} but the target is {}",
                    g.tensor_type(),
                    target.tensor_type()
                )))
            }
            Some(g) => g.clone(),
            None => Tensor::ones(target.shape(), target.dtype()),
        };
        self.backward_from(&entries, target, seed, sources)
    }

    fn backward_from(
        &self,
        entries: &[Rc<Entry>],
        target: &Tensor,
        seed: Tensor,
        sources: &[Vec<u64>],
    ) -> Result<Vec<Option<Tensor>>> {
        if !target.dtype().is_float() {
            return Err(Error::Gradient(format!("the target must be a float tensor, got {}", target.tensor_type())));
        }
        // This tape's own backward ops are not recorded on it; outer tapes record them.
        let _resume = Pause::new(&self.state);
        backward(entries, target, seed, sources)
    }
}

fn tensor_sources(sources: &[&Tensor]) -> Vec<Vec<u64>> {
    sources.iter().map(|t| vec![t.id()]).collect()
}

/// Pauses one tape for its lifetime.
struct Pause<'a>(&'a Rc<RefCell<TapeState>>);

impl<'a> Pause<'a> {
    fn new(state: &'a Rc<RefCell<TapeState>>) -> Pause<'a> {
        state.borrow_mut().paused += 1;
        Pause(state)
    }
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().paused -= 1;
    }
}

impl Drop for GradientTape {
    fn drop(&mut self) {
        recording::remove(&self.state);
    }
}

/// The reverse walk: seeds `target`, then visits the entries newest first, applying each
/// op's VJP to the gradient of its output and adding the results into its inputs'.
/// Only entries on a path from a source to the target are differentiated.
fn backward(entries: &[Rc<Entry>], target: &Tensor, seed: Tensor, sources: &[Vec<u64>]) -> Result<Vec<Option<Tensor>>> {
    let source_ids: HashSet<u64> = sources.iter().flatten().copied().collect();
    let mut reachable = source_ids.clone();
    for e in entries {
        if e.inputs.iter().any(|i| reachable.contains(&i.id())) {
            reachable.extend(e.outputs.iter().map(Tensor::id));
        }
    }
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    if reachable.contains(&target.id()) {
        grads.insert(target.id(), seed);
    }
    for e in entries.iter().rev() {
        let gs: Vec<Option<Tensor>> = e
            .outputs
            .iter()
            .map(|o| {
                let out = o.id();
                if source_ids.contains(&out) {
                    grads.get(&out).cloned()
                } else {
                    grads.remove(&out)
                }
            })
            .collect();
        if gs.iter().all(Option::is_none) {
            continue;
        }
        let needed: Vec<bool> = e.inputs.iter().map(|i| reachable.contains(&i.id())).collect();
        let input_grads = vjp::of_entry(e, &gs, &needed)?;
        for ((input, ig), needed) in e.inputs.iter().zip(input_grads).zip(needed) {
            let (Some(ig), true) = (ig, needed) else { continue };
            check_grad_type(e, input, &ig)?;
            accumulate(&mut grads, input.id(), ig)?;
        }
    }
    sources
        .iter()
        .map(|ids| {
            let mut total: Option<Tensor> = None;
            for id in ids {
                if let Some(g) = grads.get(id) {
                    total = Some(match total {
                        None => g.clone(),
                        Some(t) => t.try_add(g)?,
                    });
                }
            }
            Ok(total)
        })
        .collect()
}

fn accumulate(grads: &mut HashMap<u64, Tensor>, id: u64, g: Tensor) -> Result<()> {
    let sum = match grads.remove(&id) {
        Some(prev) => prev.try_add(&g)?,
        None => g,
    };
    grads.insert(id, sum);
    Ok(())
}

/// A VJP must give each operand a gradient of the operand's own type.
fn check_grad_type(e: &Entry, input: &Tensor, g: &Tensor) -> Result<()> {
    let (want, got): (TensorType, TensorType) = (input.tensor_type(), g.tensor_type());
    if want != got {
        let what = match &e.recorded {
            Recorded::Op(op) => format!("the VJP of `{}`", op.name()),
            Recorded::Custom(_) => "a custom_gradient function".to_string(),
            Recorded::Unstack => "the VJP of a scan's per-step inputs".to_string(),
        };
        return Err(Error::Gradient(format!("{what} returned a gradient of type {got} for an operand of type {want}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    /// An eager `scan` records its per-step inputs as one `Unstack` entry, whose VJP stacks
    /// the steps' gradients, not as a gather per step (each of whose VJPs would fill a zero
    /// tensor of the whole input's shape): and the gradient is the same.
    #[test]
    fn an_eager_scan_records_its_inputs_as_one_step() {
        let tape = GradientTape::new();
        let xs = Tensor::random_normal(&[64, 4], DType::F32, 0);
        tape.watch(&xs);
        let body = |c: &[Tensor], x: &[Tensor]| Ok((vec![&c[0] + &x[0]], vec![&x[0] * 2.0]));
        let (last, ys) = crate::scan(body, &[Tensor::zeros(&[4], DType::F32)], std::slice::from_ref(&xs)).unwrap();
        let loss = last[0].sum_all() + ys[0].sum_all();
        {
            let st = tape.state.borrow();
            let count = |f: &dyn Fn(&Recorded) -> bool| st.entries.iter().filter(|e| f(&e.recorded)).count();
            assert_eq!(count(&|r| matches!(r, Recorded::Unstack)), 1);
            assert_eq!(count(&|r| matches!(r, Recorded::Op(kiln_ir::Op::Gather { .. }))), 0);
        }
        let g = tape.gradient_tensors(&loss, &[&xs]).unwrap().remove(0).unwrap();
        assert_eq!(g.shape(), &[64, 4]);
        assert!(g.to_vec::<f32>().unwrap().iter().all(|&v| v == 3.0));
    }
}
