//! `Trainer::fit`: epochs over a `Dataset` with one compiled train step, a progress bar,
//! a per-epoch history, optional validation, and a clean stop on a non-finite loss.

use std::sync::Arc;

use crate::losses::Loss;
use crate::metrics::{LabelMetric, Mean, Metric};
use crate::nn::Layer;
use crate::optim::Optimizer;
use crate::{data::Dataset, Array, DType, Error, Function, GradientTape, Result, Tensor, Variable};

/// Per-epoch logs: training loss and metrics, and validation ones when validation data is given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub loss: Vec<f64>,
    /// `(metric name, one value per epoch)`, in the order the metrics were given.
    pub metrics: Vec<(String, Vec<f64>)>,
    pub val_loss: Vec<f64>,
    pub val_metrics: Vec<(String, Vec<f64>)>,
}

/// A model, a loss, an optimizer and metrics, with the train step compiled once.
pub struct Trainer {
    model: Arc<dyn Layer>,
    loss: Arc<dyn Loss>,
    optimizer: Arc<dyn Optimizer>,
    metrics: Vec<Arc<dyn LabelMetric>>,
    loss_tracker: Arc<Mean>,
    step: Function<Result<Tensor>>,
}

impl Trainer {
    /// Builds the compiled step: forward, loss (+ layer losses), tape gradients, update,
    /// constraints, metric updates.
    pub fn new(
        model: Arc<dyn Layer>,
        loss: Arc<dyn Loss>,
        optimizer: Arc<dyn Optimizer>,
        metrics: Vec<Arc<dyn LabelMetric>>,
    ) -> Trainer {
        let loss_tracker = Arc::new(Mean::new("loss"));
        let step = {
            let (model, loss, optimizer, metrics, tracker) =
                (model.clone(), loss.clone(), optimizer.clone(), metrics.clone(), loss_tracker.clone());
            crate::function(move |x: &Tensor, y: &Tensor| -> Result<Tensor> {
                let tape = GradientTape::new();
                let pred = model.call(x, true)?;
                let l = loss.call(y, &pred)?;
                let l = l.try_add(&crate::nn::total_loss(model.as_ref(), l.dtype())?)?;
                let vars = model.trainable_variables();
                let grads = tape.gradient(&l, &vars.iter().collect::<Vec<_>>())?;
                let pairs: Vec<(Tensor, &Variable)> =
                    grads.into_iter().zip(&vars).filter_map(|(g, v)| g.map(|g| (g, v))).collect();
                optimizer.apply_gradients(&pairs)?;
                model.apply_constraints()?;
                tracker.update_state(&l)?;
                for m in &metrics {
                    m.update_state(y, &pred)?;
                }
                Ok(l)
            })
        };
        Trainer { model, loss, optimizer, metrics, loss_tracker, step }
    }

    /// Every Variable a step may write: model, optimizer, metrics.
    fn state(&self) -> Vec<Variable> {
        let mut v = self.model.variables();
        v.extend(self.optimizer.variables());
        v.push(self.optimizer.iterations().clone());
        v.extend(self.loss_tracker.variables());
        for m in &self.metrics {
            v.extend(m.variables());
        }
        v
    }

    /// Trains for `epochs` over `train` (its batches as `[x, y]`), evaluating on
    /// `validation` after each epoch. A step whose loss or any written Variable is not
    /// finite stops training with `Error::Training` naming it, the epoch and the step; every
    /// Variable is then as after the last good step. A dataset with no batches is an error.
    pub fn fit(&self, train: &Dataset, epochs: u64, validation: Option<&Dataset>) -> Result<History> {
        let mut h = History {
            metrics: self.metrics.iter().map(|m| (m.name(), Vec::new())).collect(),
            val_metrics: self.metrics.iter().map(|m| (m.name(), Vec::new())).collect(),
            ..History::default()
        };
        if train.batches_per_epoch() == 0 {
            return Err(Error::Training("fit: the training dataset has no batches".into()));
        }
        for epoch in 0..epochs {
            let mut steps = 0;
            self.reset()?;
            let bar = indicatif::ProgressBar::new(train.batches_per_epoch() as u64);
            bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            for (i, batch) in train.epoch(epoch).enumerate() {
                let batch = batch?;
                if batch.len() != 2 {
                    return Err(Error::Training(format!("fit needs batches of [x, y], got {} tensors", batch.len())));
                }
                let args = (&batch[0], &batch[1]);
                // Trace first (creating any lazy Variable), then snapshot, so a bad step can be undone.
                self.step.concrete_function(args)?;
                let vars = self.state();
                let snapshot: Vec<Array> = vars.iter().map(Variable::value).collect();
                let l = self.step.call(args)?.item()?;
                // A finite loss can still commit NaN weights (a NaN gradient), so the guard
                // looks at everything the step wrote.
                let bad = if l.is_finite() {
                    vars.iter()
                        .find(|v| !all_finite(&v.value()))
                        .map(|v| format!("variable `{}` is not finite", v.name()))
                } else {
                    Some(format!("loss is {l}"))
                };
                if let Some(what) = bad {
                    for (v, a) in vars.iter().zip(snapshot) {
                        v.assign(&Tensor::from_array(a))?;
                    }
                    bar.abandon();
                    return Err(Error::Training(format!(
                        "{what} after epoch {} step {}; every variable was restored to its value before that step",
                        epoch + 1,
                        i + 1
                    )));
                }
                steps += 1;
                bar.set_message(format!("loss {:.4}", self.loss_tracker.result().item()?));
                bar.inc(1);
            }
            bar.finish();
            if steps == 0 {
                return Err(Error::Training(format!(
                    "fit: epoch {} of the training dataset has no batches",
                    epoch + 1
                )));
            }
            h.loss.push(self.loss_tracker.result().item()?);
            for (m, (_, values)) in self.metrics.iter().zip(&mut h.metrics) {
                values.push(m.result().item()?);
            }
            if let Some(val) = validation {
                let (vl, vm) = self.evaluate(val)?;
                h.val_loss.push(vl);
                for (v, (_, values)) in vm.into_iter().zip(&mut h.val_metrics) {
                    values.push(v);
                }
            }
        }
        Ok(h)
    }

    fn reset(&self) -> Result<()> {
        self.loss_tracker.reset()?;
        self.metrics.iter().try_for_each(|m| m.reset())
    }

    /// The loss (mean over batches, weighted by batch size) and metrics over `data`, in
    /// inference mode; resets the metrics.
    pub fn evaluate(&self, data: &Dataset) -> Result<(f64, Vec<f64>)> {
        self.reset()?;
        for batch in data.epoch(0) {
            let batch = batch?;
            let pred = self.model.call(&batch[0], false)?;
            let l = self.loss.call(&batch[1], &pred)?;
            self.loss_tracker.update_state(&(Tensor::ones(&[batch[0].shape()[0]], DType::F64) * l.item()?))?;
            for m in &self.metrics {
                m.update_state(&batch[1], &pred)?;
            }
        }
        let out = (
            self.loss_tracker.result().item()?,
            self.metrics.iter().map(|m| m.result().item()).collect::<Result<_>>()?,
        );
        self.reset()?;
        Ok(out)
    }
}

/// Whether every element of a float array is finite (integer and bool arrays always are).
fn all_finite(a: &Array) -> bool {
    match a.data() {
        kiln_ir::Data::F32(v) => v.iter().all(|x| x.is_finite()),
        kiln_ir::Data::F64(v) => v.iter().all(|x| x.is_finite()),
        _ => true,
    }
}
