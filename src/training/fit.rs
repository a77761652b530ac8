//! `Trainer::fit`: epochs over a `Dataset` with one compiled train step, a progress bar,
//! a per-epoch history, optional validation (a dataset or a split of the training rows),
//! sample and class weights, callbacks, and a clean stop on a non-finite loss.

use std::sync::Arc;

use super::callbacks::{Callback, Context, Logs};
use crate::data::{Elements, Pipeline};
use crate::distributed::{self, ReduceOp, World, DEFAULT_BUCKET_BYTES};
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
    world: Option<World>,
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
        Trainer::build(model, loss, optimizer, metrics, None)
    }

    /// Makes `fit` data-parallel over `world`'s processes (Horovod's recipe, in one line):
    /// each process trains on its shard of the data (`Dataset::shard`; the batch size is
    /// per process), the step averages gradients across processes before the update
    /// (`distributed::average_gradients`), the Variables start from rank 0's values, the
    /// epoch's loss and metrics are averaged over the processes, a bad step stops every
    /// process, and only rank 0 shows the progress bar. Alone it changes nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kiln::{data::Dataset, losses::MeanSquaredError, nn::{Dense, Sequential}, optim::SGD, training::Trainer, Tensor};
    /// let world = kiln::distributed::init().unwrap();
    /// let model = Arc::new(Sequential::new().add(Dense::new(1).seed(0)));
    /// let trainer = Trainer::new(model, Arc::new(MeanSquaredError), Arc::new(SGD::new(0.1)), vec![])
    ///     .distributed(&world);
    /// let x = Tensor::new(&[[1.0f32], [2.0], [3.0], [4.0]]);
    /// let data = Dataset::from_tensors(&[x.clone(), x * 2.0]).unwrap().batch(2, false);
    /// let h = trainer.fit(&data, 3, None).unwrap();
    /// assert!(h.loss[2] < h.loss[0]);
    /// ```
    pub fn distributed(self, world: &World) -> Trainer {
        Trainer::build(self.model, self.loss, self.optimizer, self.metrics, Some(world.clone()))
    }

    fn build(
        model: Arc<dyn Layer>,
        loss: Arc<dyn Loss>,
        optimizer: Arc<dyn Optimizer>,
        metrics: Vec<Arc<dyn LabelMetric>>,
        world: Option<World>,
    ) -> Trainer {
        let average = world.is_some();
        let loss_tracker = Arc::new(Mean::new("loss"));
        let step = {
            let (model, loss, optimizer, metrics, tracker) =
                (model.clone(), loss.clone(), optimizer.clone(), metrics.clone(), loss_tracker.clone());
            // `[x, y]`, or `[x, y, sample_weight]`: one trace per form.
            crate::function(move |batch: &[Tensor]| -> Result<Tensor> {
                let (x, y) = (&batch[0], &batch[1]);
                let tape = GradientTape::new();
                let pred = model.call(x, true)?;
                let l = loss.call_weighted(y, &pred, batch.get(2))?;
                let l = l.try_add(&crate::nn::total_loss(model.as_ref(), l.dtype())?)?;
                let vars = model.trainable_variables();
                let grads = tape.gradient(&l, &vars.iter().collect::<Vec<_>>())?;
                let (grads, vars): (Vec<Tensor>, Vec<&Variable>) =
                    grads.into_iter().zip(&vars).filter_map(|(g, v)| g.map(|g| (g, v))).unzip();
                let grads = if average { distributed::average_gradients(&grads, DEFAULT_BUCKET_BYTES)? } else { grads };
                let pairs: Vec<(Tensor, &Variable)> = grads.into_iter().zip(vars).collect();
                optimizer.apply_gradients(&pairs)?;
                model.apply_constraints()?;
                tracker.update_state(&l)?;
                for m in &metrics {
                    m.update_state(y, &pred)?;
                }
                Ok(l)
            })
        };
        Trainer { model, loss, optimizer, metrics, loss_tracker, step, world }
    }

    /// Keras's `model.save` of a compiled model: the model, its loss, metrics and optimizer
    /// (with its state) in one file; [`crate::models::load_model`] rebuilds them and
    /// [`crate::models::Model::trainer`] gives a `Trainer` that continues where this one stopped.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let (loss, optimizer) = (Some(self.loss.as_ref()), Some(self.optimizer.as_ref()));
        crate::models::save_parts(self.model.as_ref(), loss, optimizer, &self.metrics, path.as_ref())
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
        self.fit_with(train, FitOptions { epochs, validation, ..FitOptions::default() })
    }

    /// [`Trainer::fit`] with Keras's other `fit` arguments ([`FitOptions`]): a validation
    /// split, class weights, callbacks, a silent mode. Batches of `[x, y, w]` give each
    /// sample the weight `w` (multiplied by its class weight, if any).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kiln::data::Dataset;
    /// use kiln::losses::MeanSquaredError;
    /// use kiln::nn::{Dense, Sequential};
    /// use kiln::optim::SGD;
    /// use kiln::training::{EarlyStopping, FitOptions, Mode, Trainer};
    /// use kiln::{DType, Tensor};
    /// let x = Tensor::random_normal(&[40, 2], DType::F32, 1);
    /// let y = x.sum(-1, true);
    /// let trainer = Trainer::new(Arc::new(Sequential::new().add(Dense::new(1))), Arc::new(MeanSquaredError), Arc::new(SGD::new(0.1)), vec![]);
    /// let options = FitOptions {
    ///     epochs: 50,
    ///     validation_split: 0.25,
    ///     callbacks: vec![Box::new(EarlyStopping::new("val_loss", Mode::Min, 3))],
    ///     verbose: false,
    ///     ..FitOptions::default()
    /// };
    /// let h = trainer.fit_with(&Dataset::from_tensors(&[x, y]).unwrap().batch(10, false), options).unwrap();
    /// assert!(h.val_loss.last().unwrap() < &h.val_loss[0]);
    /// ```
    pub fn fit_with(&self, train: &Dataset, options: FitOptions) -> Result<History> {
        let split;
        let (train, validation) = if options.validation_split > 0.0 {
            split = train.split_validation(options.validation_split)?;
            (&split.0, Some(&split.1))
        } else {
            (train, options.validation)
        };
        let shard;
        let train = match &self.world {
            Some(w) if w.size() > 1 => {
                shard = train.shard(w.size(), w.rank())?;
                &shard
            }
            _ => train,
        };
        if train.batches_per_epoch() == 0 {
            return Err(Error::Training("fit: the training dataset has no batches".into()));
        }
        // Shards differ by a row at most, and so can their batch counts: every process takes
        // the smallest, so all run the same steps (and the same collectives).
        let steps = self.job_min(train.batches_per_epoch())?;
        self.run(Batches::Table(train), steps, validation, options)
    }

    /// [`Trainer::fit_with`] over a streaming [`Pipeline`] of `[x, y]` (or `[x, y, w]`)
    /// batches: each epoch is `steps_per_epoch` steps (Keras's `steps_per_epoch`), drawn
    /// from passes over the pipeline, one continuing into the next (a pass that ends
    /// mid-epoch is followed by a new one; a pass with no batches is an error). A
    /// `validation_split` needs rows, so it is an error here; `validation` works as usual.
    /// Distributed, every process feeds its own pipeline (its shard) and runs
    /// `steps_per_epoch` steps.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kiln::data::Pipeline;
    /// use kiln::losses::MeanSquaredError;
    /// use kiln::nn::{Dense, Sequential};
    /// use kiln::optim::SGD;
    /// use kiln::training::{FitOptions, Trainer};
    /// use kiln::{DType, Tensor};
    /// let x = Tensor::random_normal(&[40, 2], DType::F32, 1);
    /// let y = x.sum(-1, true);
    /// let stream = Pipeline::from_tensor_slices(&[x, y]).unwrap().shuffle(40, 0).batch(10, true).prefetch(2);
    /// let trainer = Trainer::new(Arc::new(Sequential::new().add(Dense::new(1))), Arc::new(MeanSquaredError), Arc::new(SGD::new(0.1)), vec![]);
    /// let h = trainer.fit_stream(&stream, 4, FitOptions { epochs: 20, verbose: false, ..FitOptions::default() }).unwrap();
    /// assert!(h.loss.last().unwrap() < &(h.loss[0] * 0.1));
    /// ```
    pub fn fit_stream(&self, train: &Pipeline, steps_per_epoch: usize, options: FitOptions) -> Result<History> {
        if options.validation_split > 0.0 {
            return Err(Error::Training("fit_stream: validation_split needs a Dataset table; pass validation".into()));
        }
        if steps_per_epoch == 0 {
            return Err(Error::Training("fit_stream: steps_per_epoch must be at least 1".into()));
        }
        let validation = options.validation;
        self.run(Batches::Stream { pipeline: train, pass: None }, steps_per_epoch, validation, options)
    }

    /// The epochs of `fit`: `steps` batches each from `train`.
    fn run(
        &self,
        mut train: Batches,
        batches: usize,
        validation: Option<&Dataset>,
        mut options: FitOptions,
    ) -> Result<History> {
        let mut h = History {
            metrics: self.metrics.iter().map(|m| (m.name(), Vec::new())).collect(),
            val_metrics: self.metrics.iter().map(|m| (m.name(), Vec::new())).collect(),
            ..History::default()
        };
        let stop = std::cell::Cell::new(false);
        let chief = self.world.as_ref().is_none_or(World::is_root);
        let graph = std::cell::OnceCell::new();
        let ctx = Context {
            model: self.model.as_ref(),
            optimizer: self.optimizer.as_ref(),
            stop: &stop,
            chief,
            graph: &graph,
        };
        let callbacks = &mut options.callbacks;
        callbacks.iter_mut().try_for_each(|c| c.on_train_begin(&ctx))?;
        let epochs = options.epochs;
        let mut started = self.world.is_none();
        let show = options.verbose && chief;
        for epoch in 0..epochs {
            let mut steps = 0;
            self.reset()?;
            callbacks.iter_mut().try_for_each(|c| c.on_epoch_begin(epoch as usize, &ctx))?;
            let bar = progress_bar(batches, epoch + 1, epochs, show);
            for (i, batch) in train.epoch(epoch, batches).enumerate() {
                let batch = self.weighted(batch?, options.class_weight.as_deref())?;
                // Trace first (creating any lazy Variable), then snapshot, so a bad step can be undone.
                let traced = self.in_job(self.step.concrete_function(batch.as_slice()))?;
                if graph.get().is_none() {
                    let _ = graph.set(traced.optimized().clone());
                }
                let vars = self.state();
                if !started {
                    // The first trace created every Variable: start all processes from rank
                    // 0's weights. (Optimizer and metric state starts at zero everywhere;
                    // its list order, unlike the model's, is not the same in every process.)
                    distributed::broadcast_variables(&self.model.variables().iter().collect::<Vec<_>>(), 0)?;
                    started = true;
                }
                let snapshot: Vec<Array> = vars.iter().map(Variable::value).collect();
                let l = self.in_job(self.step.call(batch.as_slice()).and_then(|l| l.item()))?;
                // A finite loss can still commit NaN weights (a NaN gradient), so the guard
                // looks at everything the step wrote.
                let bad = if l.is_finite() {
                    vars.iter()
                        .find(|v| !all_finite(&v.value()))
                        .map(|v| format!("variable `{}` is not finite", v.name()))
                } else {
                    Some(format!("loss is {l}"))
                };
                let bad = self.job_verdict(bad)?;
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
                let logs = self.logs(false)?;
                bar.set_message(fmt_logs(&logs));
                bar.inc(1);
                callbacks.iter_mut().try_for_each(|c| c.on_batch_end(i, &logs, &ctx))?;
            }
            if steps == 0 {
                return Err(Error::Training(format!(
                    "fit: epoch {} of the training dataset has no batches",
                    epoch + 1
                )));
            }
            // The epoch's figures, averaged over the processes when distributed.
            let mut logs = self.logs(true)?;
            h.loss.push(logs[0].1);
            for ((_, values), (_, v)) in h.metrics.iter_mut().zip(&logs[1..]) {
                values.push(*v);
            }
            if let Some(val) = validation {
                let (vl, vm) = self.evaluate(val)?;
                h.val_loss.push(vl);
                logs.push(("val_loss".into(), vl));
                for (v, (name, values)) in vm.into_iter().zip(&mut h.val_metrics) {
                    values.push(v);
                    logs.push((format!("val_{name}"), v));
                }
            }
            bar.finish_with_message(fmt_logs(&logs));
            callbacks.iter_mut().try_for_each(|c| c.on_epoch_end(epoch as usize, &logs, &ctx))?;
            if stop.get() {
                break;
            }
        }
        callbacks.iter_mut().try_for_each(|c| c.on_train_end(&ctx))?;
        Ok(h)
    }

    /// `loss` and each metric now: this process's, or with `job` averaged over the processes.
    fn logs(&self, job: bool) -> Result<Logs> {
        let value = |t: Tensor| if job { self.job_mean(t) } else { t.item() };
        let mut logs = vec![("loss".to_string(), value(self.loss_tracker.result())?)];
        for m in &self.metrics {
            logs.push((m.name(), value(m.result())?));
        }
        Ok(logs)
    }

    /// A batch as the step takes it: `[x, y]`, or `[x, y, w]` where `w` is the batch's sample
    /// weights times the class weights of its labels.
    fn weighted(&self, batch: Vec<Tensor>, class_weight: Option<&[f64]>) -> Result<Vec<Tensor>> {
        if !(2..=3).contains(&batch.len()) {
            return Err(Error::Training(format!(
                "fit needs batches of [x, y] or [x, y, sample_weight], got {} tensors",
                batch.len()
            )));
        }
        let Some(cw) = class_weight else { return Ok(batch) };
        let y = &batch[1];
        // Class indices: integer labels, or the argmax of one-hot ones.
        let classes = if y.dtype().is_int() { y.clone() } else { y.try_argmax(-1, false)? };
        let table = Tensor::from_vec(cw.to_vec(), &[cw.len()])?;
        let w = crate::losses::checked_labels("class_weight", &classes, cw.len())
            .map_err(|e| Error::Training(format!("class_weight: {e}")))?;
        let w = table.try_gather(&w, 0)?.try_cast(DType::F32)?;
        let w = match batch.get(2) {
            Some(sw) => sw.try_cast(DType::F32)?.try_mul(&w)?,
            None => w,
        };
        Ok(vec![batch[0].clone(), batch[1].clone(), w])
    }

    /// `r`, except that in a job of several processes an error ends the whole job naming this
    /// rank: the other processes would otherwise wait forever in the step's collectives.
    fn in_job<T>(&self, r: Result<T>) -> Result<T> {
        match (&self.world, r) {
            (Some(w), Err(e)) if w.size() > 1 => w.abort(1, &format!("error in a training step: {e}")),
            (_, r) => r,
        }
    }

    /// The smallest of every process's `n` (`n` itself when not distributed).
    fn job_min(&self, n: usize) -> Result<usize> {
        if self.world.is_none() {
            return Ok(n);
        }
        Ok(distributed::all_reduce(&Tensor::scalar(n as i64), ReduceOp::Min)?.to_scalar::<i64>()? as usize)
    }

    /// A metric's value averaged over the processes (Horovod's metric averaging).
    fn job_mean(&self, value: Tensor) -> Result<f64> {
        if self.world.is_none() {
            return value.item();
        }
        distributed::all_reduce(&value.try_cast(DType::F64)?, ReduceOp::Mean)?.item()
    }

    /// Whether any process's step went bad: every process stops together, with the first
    /// bad rank named, so none is left waiting in the next step's collective.
    fn job_verdict(&self, mine: Option<String>) -> Result<Option<String>> {
        let Some(world) = &self.world else { return Ok(mine) };
        let flag = if mine.is_some() { world.rank() as i64 } else { i64::MAX };
        let first = distributed::all_reduce(&Tensor::scalar(flag), ReduceOp::Min)?.to_scalar::<i64>()?;
        Ok(match (mine, first) {
            (_, i64::MAX) => None,
            (Some(what), r) if r == world.rank() as i64 => Some(format!("rank {r}: {what}")),
            (_, r) => Some(format!("rank {r}'s step went bad")),
        })
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

/// Where `fit` takes each epoch's batches from.
enum Batches<'a> {
    Table(&'a Dataset),
    /// Passes over a pipeline, one continuing into the next.
    Stream {
        pipeline: &'a Pipeline,
        pass: Option<Elements>,
    },
}

impl Batches<'_> {
    /// The first `steps` batches of epoch `epoch`.
    fn epoch(&mut self, epoch: u64, steps: usize) -> Box<dyn Iterator<Item = Result<Vec<Tensor>>> + '_> {
        match self {
            Batches::Table(d) => Box::new(d.epoch(epoch).take(steps)),
            Batches::Stream { pipeline, pass } => {
                let mut fresh = false;
                Box::new(
                    std::iter::from_fn(move || loop {
                        let it = pass.get_or_insert_with(|| {
                            fresh = true;
                            pipeline.iter()
                        });
                        if let Some(b) = it.next() {
                            fresh = false;
                            return Some(b);
                        }
                        *pass = None;
                        if fresh {
                            return Some(Err(Error::Training(
                                "fit_stream: a pass over the pipeline has no batches".into(),
                            )));
                        }
                    })
                    .take(steps),
                )
            }
        }
    }
}

/// Keras's `fit` arguments besides the data: see [`Trainer::fit_with`].
pub struct FitOptions<'a> {
    pub epochs: u64,
    /// Data evaluated after each epoch (`val_loss`, `val_<metric>`).
    pub validation: Option<&'a Dataset>,
    /// Hold out this fraction of the training rows (the last ones, before shuffling) as the
    /// validation data instead (Keras's `validation_split`); 0 for none.
    pub validation_split: f64,
    /// Weight of each class index (Keras's `class_weight`), multiplying the sample weights.
    pub class_weight: Option<Vec<f64>>,
    pub callbacks: Vec<Box<dyn Callback + 'a>>,
    /// Show a progress bar per epoch (default true).
    pub verbose: bool,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            validation: None,
            validation_split: 0.0,
            class_weight: None,
            callbacks: Vec::new(),
            verbose: true,
        }
    }
}

/// Keras's progress line: `Epoch 3/10 [=====>    ] 12/40 ETA 1s loss: 0.4213 - accuracy: 0.88`.
fn progress_bar(steps: usize, epoch: u64, epochs: u64, verbose: bool) -> indicatif::ProgressBar {
    if !verbose {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps as u64);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
    bar
}

fn fmt_logs(logs: &Logs) -> String {
    logs.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect::<Vec<_>>().join(" - ")
}

#[cfg(test)]
mod tests {
    /// The progress line ends with Keras's `name: value - name: value`.
    #[test]
    fn progress_line_lists_every_log_as_keras_does() {
        let logs = vec![("loss".to_string(), 0.42131), ("accuracy".to_string(), 0.88)];
        assert_eq!(super::fmt_logs(&logs), "loss: 0.4213 - accuracy: 0.8800");
        let bar = super::progress_bar(40, 3, 10, true);
        assert_eq!(bar.prefix(), "Epoch 3/10");
        assert_eq!(bar.length(), Some(40));
        assert!(super::progress_bar(40, 3, 10, false).is_hidden());
    }
}
