//! What region ops do, written once: which branch runs, when a loop stops, how a scan slices
//! and stacks, and how `while_grad` keeps its history. The interpreter and the executor both
//! call [`run`], each with its own way of running a body (`interp::run` on the body graph, or
//! the body's compiled executable), so the two backends cannot disagree on the control flow.

use std::cell::RefCell;

use crate::array::{Array, Data};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::infer::TensorType;
use crate::op::{BinaryOp, Op, VarId};
use crate::region::Region;

/// The current values of the enclosing graph's variables during one call, and which were
/// written. A body sees the values as they are when it starts; its writes land here, so the
/// next iteration reads them. The caller commits them only if the whole call succeeds.
pub struct VarState {
    pub current: Vec<Array>,
    pub written: Vec<bool>,
}

impl VarState {
    /// Fresh state over the values bound at call time.
    pub fn new(values: Vec<Array>) -> VarState {
        let written = vec![false; values.len()];
        VarState { current: values, written }
    }

    /// The values of `r`'s variables, in the body's numbering.
    pub fn enter(&self, r: &Region) -> Result<Vec<Array>> {
        r.vars
            .iter()
            .map(|&v| {
                self.current
                    .get(v as usize)
                    .cloned()
                    .ok_or_else(|| Error::Graph(format!("a body maps to variable @{v}, which is not bound")))
            })
            .collect()
    }

    /// Applies a body's writes (in the body's numbering).
    pub fn leave(&mut self, r: &Region, writes: Vec<(VarId, Array)>) {
        for (i, a) in writes {
            let v = r.vars[i as usize] as usize;
            self.current[v] = a;
            self.written[v] = true;
        }
    }
}

/// Runs body number `which` (an index into [`Op::regions`]) on `inputs`, putting its outputs
/// in `outputs`. The arrays already there are the previous outputs of the same body, which
/// nothing else holds any more: a runner may write the new values into them in place (the
/// executor does), so a loop's steady state allocates nothing.
pub type RunBody<'a> = dyn FnMut(usize, &[Array], &mut Vec<Array>) -> Result<()> + 'a;

/// Computes the results of region op `op` on `args`, running bodies with `body`.
///
/// ```
/// use kiln_ir::{interp, Array, BinaryOp, DType, Graph, Op, Region, ScanOp, TensorType};
/// use std::sync::Arc;
/// // A running sum over xs: carry + x, emitting the new carry each step.
/// let f = TensorType::new(DType::F32, &[]);
/// let mut b = Graph::new("body");
/// let _i = b.add_input(TensorType::new(DType::I64, &[]));
/// let c = b.add_input(f.clone());
/// let x = b.add_input(f.clone());
/// let s = b.add(Op::Binary(BinaryOp::Add), &[c, x]).unwrap();
/// b.set_outputs(vec![s, s]);
/// let op = Op::Scan(Arc::new(ScanOp { body: Region::new(b.clone()), length: 3, carries: 1, xs: 1, reverse: false }));
/// let xs = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
/// let out = interp::region::run(&op, &[Array::scalar(0.0f32), xs], &mut |_, ins: &[Array], out: &mut Vec<Array>| {
///     *out = interp::run(&b, ins, &[])?.outputs;
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![1.0, 3.0, 6.0]);
/// ```
pub fn run(op: &Op, args: &[Array], body: &mut RunBody) -> Result<Vec<Array>> {
    match op {
        Op::Case(c) => {
            let k = branch_index(&args[0], c.branches.len())?;
            let mut out = Vec::new();
            body(k, &args[1..], &mut out)?;
            Ok(out)
        }
        Op::While(w) => {
            let mut state = args.to_vec();
            let (mut next, mut flag) = (Vec::new(), Vec::new());
            while keep_going(body, &state, &mut flag)? {
                body(1, &state, &mut next)?;
                swap_carries(&mut state, &mut next, w.carries);
            }
            state.truncate(w.carries);
            Ok(state)
        }
        Op::Scan(s) => scan(s, args, body),
        Op::WhileGrad(w) => while_grad(w.carries, args, body),
        other => Err(Error::invalid(other.name(), "is not a region op")),
    }
}

/// The branch an index operand chooses: `false`/`true` are 0/1; an integer outside
/// `0..n` chooses the last branch (TF's `switch_case` default).
pub fn branch_index(index: &Array, n: usize) -> Result<usize> {
    let v = match index.dtype() {
        DType::Bool => return Ok(usize::from(index.get_f64(0) != 0.0)),
        DType::I32 => index.as_slice::<i32>().map(|s| s[0] as i64),
        DType::I64 => index.as_slice::<i64>().map(|s| s[0]),
        d => return Err(Error::invalid("case", format!("the index must be bool, i32 or i64, got {d}"))),
    };
    let v = v.ok_or_else(|| Error::invalid("case", "the index is not a scalar"))?;
    Ok(if v < 0 || v as u64 >= n as u64 { n - 1 } else { v as usize })
}

/// The new carries (the first `n` of `next`) become the state's; the old ones go to `next`,
/// to be overwritten by the next iteration.
fn swap_carries(state: &mut [Array], next: &mut [Array], n: usize) {
    for (s, x) in state.iter_mut().zip(next.iter_mut()).take(n) {
        std::mem::swap(s, x);
    }
}

/// Runs the condition (body 0) on the loop state.
fn keep_going(body: &mut RunBody, state: &[Array], flag: &mut Vec<Array>) -> Result<bool> {
    body(0, state, flag)?;
    match flag.first() {
        Some(a) if a.dtype() == DType::Bool && a.len() == 1 => Ok(a.get_f64(0) != 0.0),
        _ => Err(Error::invalid("while", "the condition must return one bool scalar")),
    }
}

/// Row `i` of `x` along its leading axis, written into `dst` when nothing else holds
/// `dst`'s buffer (so a scan's steady state reuses its row buffers), else into a new array.
fn take_row(dst: &mut Array, x: &Array, i: usize) -> Result<()> {
    let inner: usize = x.shape()[1..].iter().product();
    if dst.dtype() == x.dtype() && dst.len() == inner {
        if let Some(d) = dst.data_mut() {
            return d.copy_range(0, x.data(), i * inner, inner);
        }
    }
    *dst = Array::new(x.data().range(i * inner, inner), &x.shape()[1..])?;
    Ok(())
}

/// Per-step outputs being stacked into `[length, ...]`.
struct Stack {
    ty: TensorType,
    data: Data,
}

impl Stack {
    fn new(ty: TensorType) -> Result<Stack> {
        ty.checked_bytes().ok_or_else(|| Error::Overflow { op: "scan", what: ty.to_string() })?;
        let data = crate::recycle::try_take_zeroed("scan", ty.dtype, ty.numel())?;
        Ok(Stack { ty, data })
    }

    fn put(&mut self, i: usize, y: &Array) -> Result<()> {
        let step = self.data.len() / self.ty.shape[0].max(1);
        if y.len() != step || y.dtype() != self.ty.dtype {
            return Err(Error::invalid(
                "scan",
                format!("step {i} produced {}{:?}, not a row of {}", y.dtype(), y.shape(), self.ty),
            ));
        }
        self.data.copy_range(i * step, y.data(), 0, step)
    }

    fn finish(self) -> Result<Array> {
        Array::new(self.data, &self.ty.shape)
    }
}

fn scan(s: &crate::region::ScanOp, args: &[Array], body: &mut RunBody) -> Result<Vec<Array>> {
    let (carries, rest) = args.split_at(s.carries);
    let (xs, captures) = rest.split_at(s.xs);
    let outs = s.body.output_types();
    let mut stacks = outs[s.carries..]
        .iter()
        .map(|y| {
            let mut shape = vec![s.length];
            shape.extend_from_slice(&y.shape);
            Stack::new(TensorType::new(y.dtype, &shape))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut inputs: Vec<Array> = Vec::with_capacity(1 + args.len());
    inputs.push(Array::scalar(0i64));
    inputs.extend_from_slice(carries);
    inputs.extend(xs.iter().map(|x| Array::zeros(&x.shape()[1..], x.dtype())));
    inputs.extend_from_slice(captures);
    let mut out = Vec::new();
    for step in 0..s.length {
        let i = if s.reverse { s.length - 1 - step } else { step };
        match inputs[0].data_mut() {
            Some(Data::I64(v)) => v[0] = i as i64,
            _ => inputs[0] = Array::scalar(i as i64),
        }
        for (j, x) in xs.iter().enumerate() {
            take_row(&mut inputs[1 + s.carries + j], x, i)?;
        }
        body(0, &inputs, &mut out)?;
        for (j, y) in out[s.carries..].iter().enumerate() {
            stacks[j].put(i, y)?;
        }
        swap_carries(&mut inputs[1..], &mut out, s.carries);
    }
    let mut results: Vec<Array> = inputs.drain(1..1 + s.carries).collect();
    for st in stacks {
        results.push(st.finish()?);
    }
    Ok(results)
}

/// Forward again keeping every iteration's carries, then the body VJP (body 2) from the
/// last iteration back, summing the captures' cotangents.
fn while_grad(carries: usize, args: &[Array], body: &mut RunBody) -> Result<Vec<Array>> {
    let (start, rest) = args.split_at(carries);
    let (cts, captures) = rest.split_at(carries);
    let mut state: Vec<Array> = start.iter().chain(captures).cloned().collect();
    let mut history: Vec<Vec<Array>> = Vec::new();
    let (mut next, mut flag) = (Vec::new(), Vec::new());
    while keep_going(body, &state, &mut flag)? {
        body(1, &state, &mut next)?;
        history.try_reserve(1).map_err(|_| Error::OutOfMemory {
            op: "while_grad",
            bytes: state.iter().map(|a| a.data().as_bytes().len()).sum(),
            what: "one more iteration of the loop history".into(),
        })?;
        history.push(state[..carries].to_vec());
        state.splice(..carries, next.drain(..));
    }
    let mut ct: Vec<Array> = cts.to_vec();
    let mut ct_captures: Vec<Array> = captures.iter().map(|c| Array::zeros(c.shape(), c.dtype())).collect();
    let mut inputs: Vec<Array> = Vec::with_capacity(args.len());
    for carried in history.into_iter().rev() {
        inputs.clear();
        inputs.extend(carried);
        inputs.append(&mut ct);
        inputs.extend_from_slice(captures);
        body(2, &inputs, &mut next)?;
        let mut out = next.drain(..);
        ct = out.by_ref().take(carries).collect();
        for (acc, g) in ct_captures.iter_mut().zip(out) {
            if acc.dtype().is_float() {
                *acc = super::elementwise::binary(BinaryOp::Add, acc, &g)?;
            }
        }
    }
    ct.extend(ct_captures);
    Ok(ct)
}

thread_local! {
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Writes one `print` line: to stdout, or to the capture of [`capture_prints`] when one is
/// active on this thread.
pub fn print_line(line: String) {
    let line = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(v) => {
            v.push(line);
            None
        }
        None => Some(line),
    });
    if let Some(l) = line {
        println!("{l}");
    }
}

/// Runs `f`, collecting the lines `print` ops write on this thread instead of printing them.
///
/// ```
/// use kiln_ir::interp::region::{capture_prints, print_line};
/// let ((), lines) = capture_prints(|| print_line("k = 1".into()));
/// assert_eq!(lines, vec!["k = 1".to_string()]);
/// ```
pub fn capture_prints<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    struct Restore(Option<Vec<String>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CAPTURED.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CAPTURED.with(|c| c.borrow_mut().replace(Vec::new()));
    let guard = Restore(prev);
    let r = f();
    let lines = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    drop(guard);
    (r, lines)
}

/// The line a `print` op writes: its message then each operand.
pub fn print_text(message: &str, values: &[&Array]) -> String {
    let mut s = message.to_string();
    for v in values {
        s.push(' ');
        s.push_str(&v.to_string());
    }
    s
}
