//! The thread-local stack of live gradient tapes and what each records. `GradientTape`
//! (`autodiff/tape.rs`) owns a `TapeState` and walks its entries backwards; this file only
//! records, so `apply` can record without knowing how gradients are computed.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use kiln_ir::Op;

use super::trace;
use crate::{Result, Tensor, Variable};

/// The gradient closure of a `custom_gradient` call: output gradient → one gradient per input.
pub(crate) type GradFn = Rc<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>>>;

/// What produced a recorded tensor.
pub(crate) enum Recorded {
    Op(Op),
    Custom(GradFn),
    /// The input's rows along axis 0, one output each (an eager `scan`'s per-step inputs).
    /// One entry whose VJP stacks the rows' gradients: a gather per row would scatter each
    /// row's gradient into a zero tensor of the whole input's shape, and the tape would add
    /// those up, work quadratic in the sequence's length.
    Unstack,
}

/// One recorded step: `outputs = recorded(inputs)` (one output, except for region ops and
/// `Unstack`).
/// Shared by every tape that recorded it.
pub(crate) struct Entry {
    pub(crate) recorded: Recorded,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) outputs: Vec<Tensor>,
}

pub(crate) struct TapeState {
    pub(crate) persistent: bool,
    /// A non-persistent tape that has computed its gradient: it no longer records or answers.
    pub(crate) spent: bool,
    /// >0 while the tape computes its own gradient or runs `stop_recording`.
    pub(crate) paused: usize,
    /// The trace the tape was created in (`None`: eager). It records only that context's ops.
    pub(crate) context: Option<u64>,
    /// Ids of tensors the tape follows: watched ones and everything computed from them.
    pub(crate) tracked: HashSet<u64>,
    /// Non-trainable variables watched explicitly (trainable ones are watched anyway).
    pub(crate) watched_vars: HashSet<u64>,
    pub(crate) entries: Vec<Rc<Entry>>,
    /// Every recorded read of a variable, in order: the gradient w.r.t. a variable is the sum
    /// of the gradients w.r.t. all its reads.
    pub(crate) reads: Vec<(Variable, Tensor)>,
}

impl TapeState {
    fn records_in(&self, context: Option<u64>) -> bool {
        !self.spent && self.paused == 0 && self.context == context
    }
}

thread_local! {
    static TAPES: RefCell<Vec<Rc<RefCell<TapeState>>>> = const { RefCell::new(Vec::new()) };
    /// Depth of `without_tapes` (init_scope, custom_gradient forward passes).
    static PAUSED: Cell<usize> = const { Cell::new(0) };
}

/// The id of the trace being built (`None`: eager): a tape records only its own context's ops.
pub(crate) fn current_context() -> Option<u64> {
    trace::with_current(|t| t.map(|t| t.id))
}

/// Makes `tape` live: it records from now until [`remove`].
pub(crate) fn push(tape: &Rc<RefCell<TapeState>>) {
    TAPES.with(|t| t.borrow_mut().push(tape.clone()));
}

/// Stops `tape` recording (its owner is dropped).
pub(crate) fn remove(tape: &Rc<RefCell<TapeState>>) {
    // `try_with`: the thread-local may already be gone when a tape dies at thread exit.
    let _ = TAPES.try_with(|t| t.borrow_mut().retain(|s| !Rc::ptr_eq(s, tape)));
}

/// Runs `f` over the tapes recording in the current context; a no-op (one TLS read) when
/// there are none.
fn for_recording_tapes(mut f: impl FnMut(&mut TapeState)) {
    if PAUSED.with(Cell::get) > 0 {
        return;
    }
    TAPES.with(|tapes| {
        let tapes = tapes.borrow();
        if tapes.is_empty() {
            return;
        }
        let context = current_context();
        for tape in tapes.iter() {
            let mut s = tape.borrow_mut();
            if s.records_in(context) {
                f(&mut s);
            }
        }
    });
}

pub(crate) fn record(recorded: Recorded, args: &[&Tensor], out: &Tensor) {
    record_many(recorded, args, std::slice::from_ref(out));
}

/// Records a step with several results (a region op): the float ones become tracked.
pub(crate) fn record_many(recorded: Recorded, args: &[&Tensor], outs: &[Tensor]) {
    if !outs.iter().any(|o| o.dtype().is_float()) {
        return; // integer and boolean results carry no gradient
    }
    let mut recorded = Some(recorded);
    let mut entry: Option<Rc<Entry>> = None;
    for_recording_tapes(|s| {
        if !args.iter().any(|a| s.tracked.contains(&a.id())) {
            return;
        }
        let e = entry.get_or_insert_with(|| {
            Rc::new(Entry {
                recorded: recorded.take().expect("built once"),
                inputs: args.iter().map(|a| (*a).clone()).collect(),
                outputs: outs.to_vec(),
            })
        });
        s.tracked.extend(outs.iter().filter(|o| o.dtype().is_float()).map(Tensor::id));
        s.entries.push(e.clone());
    });
}

pub(crate) fn record_read(v: &Variable, t: &Tensor) {
    if !t.dtype().is_float() {
        return;
    }
    for_recording_tapes(|s| {
        if v.trainable() || s.watched_vars.contains(&v.uid()) {
            s.tracked.insert(t.id());
            s.reads.push((v.clone(), t.clone()));
        }
    });
}

pub(crate) fn is_recording() -> bool {
    let mut any = false;
    for_recording_tapes(|_| any = true);
    any
}

pub(crate) fn without_tapes<R>(f: impl FnOnce() -> R) -> R {
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            PAUSED.with(|p| p.set(p.get() - 1));
        }
    }
    PAUSED.with(|p| p.set(p.get() + 1));
    let _resume = Resume;
    f()
}
