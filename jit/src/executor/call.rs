//! One call of an [`Executable`]: bind inputs and variables, run the schedule, hand back
//! outputs and variable writes.

use kiln_ir::matmul::{gemm_batched, gemm_batched_update, MatMulShape, ParFor};
use kiln_ir::{with_data, Array, DType, Data, Error, Result, TensorType, Uninit};
use smallvec::SmallVec;

use super::rows::RowGroup;
use super::{interp_eval, Dest, Executable, Mode, OutSrc, Outcome, ScheduleStep};
use crate::arena::Arena;

/// A node's value during a call.
pub(crate) enum Val {
    None,
    /// Computed in a row group's block buffers and consumed there.
    Done,
    /// In the arena or in an output tensor of this call (type given by the step).
    Ptr(*const u8),
    Arr(Array),
    /// An array that outlives the call (an input, a constant, a variable's bound value):
    /// borrowed, so binding it costs no reference count.
    Ref(*const Array),
    /// A region op's results, read by its `get` steps.
    Tuple(Vec<Array>),
}

/// Everything one call needs besides the executable; reused across calls.
pub(crate) struct CallState {
    arena: Arena,
    vals: Vec<Val>,
    /// The current value of each variable written so far in this call.
    vars: Vec<Option<Array>>,
    /// Operand pointers handed to a kernel.
    ptrs: Vec<*const u8>,
    /// Which outputs were written in place this call.
    direct: Vec<bool>,
    /// Where each output is written this call, once chosen (null before).
    out_ptr: Vec<*mut u8>,
    /// Output buffers allocated this call: (output, step, buffer).
    fresh: Vec<(usize, usize, Fresh)>,
    /// Per step with `Dest::Fresh` (or an undonated `Dest::Var`): its buffer until the
    /// Variable write takes it.
    pending: Vec<Option<Fresh>>,
    /// Per variable: the buffer its new value is written over this call (`Dest::Var`), or
    /// null.
    donor: Vec<*mut u8>,
}

impl Val {
    fn is_set(&self) -> bool {
        !matches!(self, Val::None)
    }

    /// The value if it is a whole array (owned or borrowed).
    fn array(&self) -> Option<&Array> {
        match self {
            Val::Arr(a) => Some(a),
            // SAFETY: a `Ref` points to an array the caller of `run` keeps alive for the whole
            // call (`CallState::clear` drops every `Ref` before the call returns).
            Val::Ref(a) => Some(unsafe { &**a }),
            _ => None,
        }
    }
}

// SAFETY: the raw pointers in a `CallState` are only meaningful during one call, on the
// thread running it; `clear` drops them all before the state goes back to the free list.
unsafe impl Send for CallState {}

impl CallState {
    fn new(exe: &Executable) -> Result<CallState> {
        let n = exe.steps.len();
        let max_args = exe.steps.iter().map(|s| s.args.len()).max().unwrap_or(0);
        Ok(CallState {
            arena: Arena::try_new(exe.arena_bytes)?,
            vals: (0..n).map(|_| Val::None).collect(),
            vars: vec![None; exe.graph.vars().len()],
            ptrs: Vec::with_capacity(max_args),
            direct: vec![false; exe.outputs.len()],
            out_ptr: vec![std::ptr::null_mut(); exe.outputs.len()],
            fresh: Vec::with_capacity(exe.outputs.len()),
            pending: (0..n).map(|_| None).collect(),
            donor: vec![std::ptr::null_mut(); exe.graph.vars().len()],
        })
    }

    fn clear(&mut self) {
        self.vals.iter_mut().for_each(|v| *v = Val::None);
        self.vars.iter_mut().for_each(|v| *v = None);
        self.direct.iter_mut().for_each(|d| *d = false);
        self.out_ptr.iter_mut().for_each(|p| *p = std::ptr::null_mut());
        self.ptrs.clear();
        self.fresh.clear();
        self.pending.iter_mut().for_each(|p| *p = None);
        self.donor.iter_mut().for_each(|p| *p = std::ptr::null_mut());
    }
}

/// Runs one call; with `times`, also records each step's wall time (a row group's under
/// its first step, zero for the others).
pub(super) fn run(
    exe: &Executable,
    inputs: &[&Array],
    vars: &[Array],
    out: &mut Outcome,
    times: Option<&mut Vec<std::time::Duration>>,
) -> Result<()> {
    if vars.is_empty() {
        return run_donating(exe, inputs, &[], &[], out, times);
    }
    let vars: SmallVec<[&Array; 8]> = vars.iter().collect();
    run_donating(exe, inputs, &vars, &[], out, times)
}

/// [`run`] with the buffers of the Variables of `exe.in_place` handed over (`donors`, in
/// that order), or none of them (`donors` empty): `Dest::Var` steps write over them.
pub(super) fn run_donating(
    exe: &Executable,
    inputs: &[&Array],
    vars: &[&Array],
    donors: &[*mut u8],
    out: &mut Outcome,
    times: Option<&mut Vec<std::time::Duration>>,
) -> Result<()> {
    check_signature(exe, inputs, vars)?;
    if exe.direct && times.is_none() {
        return super::direct::run(exe, inputs, out);
    }
    let mut st = exe.states.try_take(|| CallState::new(exe))?;
    for (&v, &p) in exe.in_place.vars.iter().zip(donors) {
        st.donor[v] = p;
    }
    let r = early_outputs(exe, &mut st, out, donors)
        .and_then(|()| run_steps(exe, &mut st, inputs, vars, out, times))
        // SAFETY: `run_steps` returned, so every step it started has completed.
        .and_then(|()| unsafe { finish(exe, &mut st, out) });
    st.clear();
    exe.states.give(st);
    r
}

/// With the Variables handed over, the buffers of outputs written after the first in-place
/// update, chosen now: from then on nothing may fail (`in_place.rs`).
fn early_outputs(exe: &Executable, st: &mut CallState, out: &mut Outcome, donors: &[*mut u8]) -> Result<()> {
    if !donors.is_empty() {
        for &i in &exe.in_place.early_outputs {
            dest_ptr(st, out, i, &exe.steps[i])?;
        }
    }
    Ok(())
}

fn signature_error(exe: &Executable, msg: String) -> Error {
    Error::Signature { function: exe.graph.name().to_string(), msg }
}

pub(super) fn check_signature(exe: &Executable, inputs: &[&Array], vars: &[&Array]) -> Result<()> {
    let g = &exe.graph;
    if inputs.len() != g.inputs().len() {
        return Err(signature_error(exe, format!("expected {} inputs, got {}", g.inputs().len(), inputs.len())));
    }
    for (i, (&id, a)) in g.inputs().iter().zip(inputs).enumerate() {
        let ty = &g.node(id).ty;
        if ty.dtype != a.dtype() || ty.shape.as_slice() != a.shape() {
            return Err(signature_error(
                exe,
                format!("input {i} must be {}{:?}, got {}{:?}", ty.dtype, ty.shape.as_slice(), a.dtype(), a.shape()),
            ));
        }
    }
    if vars.len() < g.vars().len() {
        return Err(signature_error(exe, format!("expected {} variables, got {}", g.vars().len(), vars.len())));
    }
    for (decl, a) in g.vars().iter().zip(vars) {
        if decl.ty.dtype != a.dtype() || decl.ty.shape.as_slice() != a.shape() {
            return Err(Error::Variable {
                name: decl.name.clone(),
                msg: format!(
                    "declared {}{:?}, bound to {}{:?}",
                    decl.ty.dtype,
                    decl.ty.shape.as_slice(),
                    a.dtype(),
                    a.shape()
                ),
            });
        }
    }
    Ok(())
}

/// Address of a value's first byte.
fn val_ptr(v: &Val) -> *const u8 {
    if let Some(a) = v.array() {
        return a.data().as_bytes().as_ptr();
    }
    match v {
        Val::Ptr(p) => *p,
        Val::Arr(_) | Val::Ref(_) => unreachable!("handled above"),
        Val::None | Val::Done => unreachable!("the schedule runs operands first (checked at build)"),
        Val::Tuple(_) => unreachable!("only `get` reads a region op (checked by the verifier)"),
    }
}

/// A value as an array: shared if it is one, copied out of the arena otherwise.
fn val_array(v: &Val, ty: &TensorType) -> Result<Array> {
    if let Some(a) = v.array() {
        return Ok(a.clone());
    }
    match v {
        Val::Arr(_) | Val::Ref(_) => unreachable!("handled above"),
        // SAFETY: a `Ptr` value points to a buffer of `ty` written earlier in this call.
        Val::Ptr(p) => unsafe { copy_out(*p, ty) },
        Val::None | Val::Done => unreachable!("the schedule runs operands first (checked at build)"),
        Val::Tuple(_) => unreachable!("only `get` reads a region op (checked by the verifier)"),
    }
}

/// A fresh array holding a copy of `ty.bytes()` bytes at `p`.
///
/// # Safety
/// `p` must be valid for reading `ty.bytes()` bytes holding valid elements of `ty.dtype`.
unsafe fn copy_out(p: *const u8, ty: &TensorType) -> Result<Array> {
    let n = ty.numel();
    macro_rules! copy {
        ($t:ty, $variant:ident) => {{
            let mut u = Uninit::<$t>::try_new("executor", n)?;
            // SAFETY: `u` has room for n elements; the source holds n valid elements.
            unsafe {
                std::ptr::copy_nonoverlapping(p, u.as_mut_ptr() as *mut u8, ty.bytes());
                Data::$variant(u.assume_init())
            }
        }};
    }
    let data = match ty.dtype {
        DType::F32 => copy!(f32, F32),
        DType::F64 => copy!(f64, F64),
        DType::I32 => copy!(i32, I32),
        DType::I64 => copy!(i64, I64),
        DType::Bool => copy!(bool, Bool),
    };
    Array::new(data, &ty.shape)
}

/// An output buffer allocated this call, not yet declared written.
pub(crate) enum Fresh {
    F32(Uninit<f32>),
    F64(Uninit<f64>),
    I32(Uninit<i32>),
    I64(Uninit<i64>),
    Bool(Uninit<bool>),
}

impl Fresh {
    pub(super) fn try_new(ty: &TensorType) -> Result<Fresh> {
        let n = ty.numel();
        let op = "executor";
        Ok(match ty.dtype {
            DType::F32 => Fresh::F32(Uninit::try_new(op, n)?),
            DType::F64 => Fresh::F64(Uninit::try_new(op, n)?),
            DType::I32 => Fresh::I32(Uninit::try_new(op, n)?),
            DType::I64 => Fresh::I64(Uninit::try_new(op, n)?),
            DType::Bool => Fresh::Bool(Uninit::try_new(op, n)?),
        })
    }

    pub(super) fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            Fresh::F32(u) => u.as_mut_ptr() as *mut u8,
            Fresh::F64(u) => u.as_mut_ptr() as *mut u8,
            Fresh::I32(u) => u.as_mut_ptr() as *mut u8,
            Fresh::I64(u) => u.as_mut_ptr() as *mut u8,
            Fresh::Bool(u) => u.as_mut_ptr() as *mut u8,
        }
    }

    /// # Safety
    /// Every element must have been written (bools with 0 or 1).
    pub(super) unsafe fn assume_init(self) -> Data {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Fresh::F32(u) => Data::F32(u.assume_init()),
                Fresh::F64(u) => Data::F64(u.assume_init()),
                Fresh::I32(u) => Data::I32(u.assume_init()),
                Fresh::I64(u) => Data::I64(u.assume_init()),
                Fresh::Bool(u) => Data::Bool(u.assume_init()),
            }
        }
    }
}

/// Where step `i` writes output `j`: the caller's previous output tensor if it is unshared
/// and of the right type, else a fresh uninitialized buffer (no zeroing: the step writes
/// all of it), which [`finish`] turns into the output once the schedule has run.
fn output_ptr(st: &mut CallState, out: &mut Outcome, j: usize, i: usize, ty: &TensorType) -> Result<*mut u8> {
    if let Some(p) = out_buffer(out, j, ty) {
        return Ok(p);
    }
    let mut fresh = Fresh::try_new(ty)?;
    let p = fresh.as_mut_ptr();
    st.fresh.push((j, i, fresh));
    Ok(p)
}

/// The caller's previous output `j`, if it is unshared and of type `ty`: its buffer, to be
/// overwritten in place.
pub(super) fn out_buffer(out: &mut Outcome, j: usize, ty: &TensorType) -> Option<*mut u8> {
    let fits = |a: &Array| a.dtype() == ty.dtype && a.shape() == ty.shape.as_slice();
    out.outputs.get_mut(j).filter(|a| fits(a)).and_then(|a| a.data_mut()).map(data_ptr)
}

/// The address of an unshared array's first byte, for writing over it.
pub(super) fn data_ptr(data: &mut Data) -> *mut u8 {
    with_data!(data, v => v.as_mut_ptr() as *mut u8)
}

/// Sets output `j`, appending it if `out` has fewer (outputs are placed in order).
pub(super) fn place(out: &mut Outcome, j: usize, value: Array) {
    if j < out.outputs.len() {
        out.outputs[j] = value;
    } else {
        out.outputs.push(value);
    }
}

/// Raw pointers a kernel job shares across the pool's threads.
struct KernelJob {
    func: super::KernelFn,
    inputs: *const *const u8,
    output: *mut u8,
    numel: usize,
    chunks: usize,
}

// SAFETY: the pointers stay valid for the whole `for_each` call that uses the job, and
// chunks write disjoint output ranges (the kernel ABI computes exactly `begin..end`).
unsafe impl Sync for KernelJob {}

impl KernelJob {
    fn chunk(&self, c: usize) {
        let (begin, end) = (c * self.numel / self.chunks, (c + 1) * self.numel / self.chunks);
        // SAFETY: `inputs` holds one valid pointer per kernel operand and `output` has room
        // for `numel` elements; `begin..end` is inside `0..numel`.
        unsafe { (self.func)(self.inputs, self.output, begin, end) };
    }
}

/// Elements per chunk below which splitting further is not worth a chunk hand-off.
const MIN_CHUNK: usize = 4096;

/// The address step `i` writes to.
fn dest_ptr(st: &mut CallState, out: &mut Outcome, i: usize, step: &ScheduleStep) -> Result<*mut u8> {
    Ok(match step.dest {
        // SAFETY: the slot lies inside the arena (checked at build: `offset + bytes <= arena_bytes`).
        Dest::Slot(off) => unsafe { st.arena.as_mut_ptr().add(off) },
        Dest::Output(j) => {
            if st.out_ptr[j].is_null() {
                st.direct[j] = true;
                st.out_ptr[j] = output_ptr(st, out, j, i, &step.ty)?;
            }
            st.out_ptr[j]
        }
        // SAFETY (of the kernel writing there): the caller handed the buffer over unshared,
        // and the plan runs every reader of the old value first (`in_place.rs`).
        Dest::Var(v) if !st.donor[v].is_null() => st.donor[v],
        Dest::Fresh | Dest::Var(_) => {
            let mut fresh = Fresh::try_new(&step.ty)?;
            let p = fresh.as_mut_ptr();
            st.pending[i] = Some(fresh);
            p
        }
        Dest::None | Dest::Block(_) => {
            unreachable!("nodes written to memory get a destination at build; block values only inside their row group")
        }
    })
}

/// `out = a @ b`, or `out += beta · (a @ b)` with `update: Some(beta)`, as the products of
/// `shape`, split on the executor's pool (docs/JIT.md, *Threads*).
///
/// # Safety
/// `a` and `b` hold the full operands `shape` was built from, `out` has room for the result
/// (holding the values to add to, for an update) and overlaps neither operand.
unsafe fn product(
    exe: &Executable,
    shape: &MatMulShape,
    a: *const u8,
    b: *const u8,
    out: *mut u8,
    update: Option<f64>,
) {
    let for_each = |n: usize, f: &(dyn Fn(usize) + Sync)| exe.pool.for_each(n, f);
    let (threads, par): (usize, Option<ParFor>) = (exe.pool.threads(), Some(&for_each));
    // SAFETY: the caller's contract; `beta` read from an f32 constant converts back exactly.
    unsafe {
        match (shape.dtype, update) {
            (DType::F64, None) => gemm_batched::<f64>(shape, a.cast(), b.cast(), out.cast(), threads, par),
            (DType::F64, Some(beta)) => {
                gemm_batched_update::<f64>(shape, a.cast(), b.cast(), out.cast(), beta, threads, par)
            }
            (DType::F32, None) => gemm_batched::<f32>(shape, a.cast(), b.cast(), out.cast(), threads, par),
            (DType::F32, Some(beta)) => {
                gemm_batched_update::<f32>(shape, a.cast(), b.cast(), out.cast(), beta as f32, threads, par)
            }
            (other, _) => unreachable!("products are built for floats only, not {other}"),
        }
    }
}

fn run_steps(
    exe: &Executable,
    st: &mut CallState,
    inputs: &[&Array],
    vars: &[&Array],
    out: &mut Outcome,
    mut times: Option<&mut Vec<std::time::Duration>>,
) -> Result<()> {
    let mut groups = exe.groups.iter().peekable();
    for (i, step) in exe.steps.iter().enumerate() {
        let start = times.as_ref().map(|_| std::time::Instant::now());
        if let Some(t) = times.as_deref_mut() {
            t.push(std::time::Duration::ZERO);
        }
        if let Some(g) = groups.next_if(|g| g.start == i) {
            run_group(exe, st, out, g)?;
        }
        if st.vals[i].is_set() {
            // Computed by its row group (the whole group's time goes to its first step).
            if let (Some(t), Some(start)) = (times.as_deref_mut(), start) {
                t[i] = start.elapsed();
            }
            continue;
        }
        let val = match &step.mode {
            Mode::Input(k) => Val::Ref(inputs[*k]),
            Mode::Const(a) => Val::Ref(a),
            // A value written earlier in this call is cloned: a later write replaces it.
            Mode::ReadVar(v) => match &st.vars[*v] {
                Some(a) => Val::Arr(a.clone()),
                None => Val::Ref(vars[*v]),
            },
            Mode::AssignVar(v) => {
                let a = match st.pending[step.args[0]].take() {
                    // SAFETY: the step that owns this buffer ran to completion before us (the
                    // schedule runs operands first) and wrote all of it.
                    Some(fresh) => Array::new(unsafe { fresh.assume_init() }, &step.ty.shape)?,
                    // Written over the Variable's old buffer: the array handed over.
                    None if !st.donor[*v].is_null() && exe.steps[step.args[0]].dest == Dest::Var(*v) => {
                        vars[*v].clone()
                    }
                    // Materialized now: the operand's arena slot may be reused by later nodes.
                    None => val_array(&st.vals[step.args[0]], &step.ty)?,
                };
                st.vars[*v] = Some(a.clone());
                Val::Arr(a)
            }
            Mode::Kernel { kernel, .. } => {
                st.ptrs.clear();
                for &a in &step.args {
                    st.ptrs.push(val_ptr(&st.vals[a]));
                }
                let numel = step.ty.numel();
                let work = numel.saturating_mul(kernel.cost_per_element().max(1));
                let threads = exe.pool.threads();
                let chunks = if threads > 1 && work >= exe.options.par_min_work {
                    (threads * 4).min(numel / MIN_CHUNK).max(2)
                } else {
                    1
                };
                let output = dest_ptr(st, out, i, step)?;
                let job = KernelJob { func: kernel.func(), inputs: st.ptrs.as_ptr(), output, numel, chunks };
                if numel > 0 {
                    if chunks == 1 {
                        job.chunk(0);
                    } else {
                        exe.pool.for_each(chunks, &|c| job.chunk(c));
                    }
                }
                Val::Ptr(output)
            }
            Mode::Gemm(shape) => {
                let (a, b) = (val_ptr(&st.vals[step.args[0]]), val_ptr(&st.vals[step.args[1]]));
                let output = dest_ptr(st, out, i, step)?;
                // SAFETY: operands hold the full shapes `shape` was built from (types are
                // checked at build and at the signature), `output` has room for the result,
                // and a node's destination never overlaps its live operands.
                unsafe { product(exe, shape, a, b, output, None) };
                Val::Ptr(output)
            }
            Mode::GemmUpdate(u) => {
                let (a, b, acc) =
                    (val_ptr(&st.vals[step.args[0]]), val_ptr(&st.vals[step.args[1]]), val_ptr(&st.vals[step.args[2]]));
                let into = &exe.steps[u.into];
                let output = dest_ptr(st, out, u.into, into)?;
                if output.cast_const() != acc {
                    // SAFETY: `acc` and the destination both hold `into.ty` (checked at
                    // build), and do not overlap: the destination is a fresh buffer or the
                    // Variable's handed over, and `acc` starting elsewhere is not the
                    // Variable's value (`in_place.rs` lets only that share its buffer).
                    unsafe { std::ptr::copy_nonoverlapping(acc, output, into.ty.bytes()) };
                }
                // SAFETY: as for `Mode::Gemm`; the destination, which holds `acc` now, is
                // the update's own buffer (fresh, or the Variable's handed over after its
                // every other reader ran: `in_place.rs`), never an operand of the product.
                unsafe { product(exe, &u.shape, a, b, output, Some(u.beta)) };
                st.vals[u.into] = Val::Ptr(output);
                Val::None
            }
            Mode::Computed(_) => {
                unreachable!("a computed step's value is set by the step computing it, which runs first")
            }
            Mode::View => match &st.vals[step.args[0]] {
                Val::Arr(_) | Val::Ref(_) => {
                    let a = st.vals[step.args[0]].array().expect("matched an array");
                    Val::Arr(a.reshaped(&step.ty.shape)?)
                }
                Val::Ptr(src) => {
                    // Copied: the plan may reuse the operand's slot while the view lives on.
                    let src = *src;
                    let output = dest_ptr(st, out, i, step)?;
                    // SAFETY: both buffers hold `ty.bytes()` bytes (same element count);
                    // `copy` tolerates an in-place plan giving both the same address.
                    unsafe { std::ptr::copy(src, output, step.ty.bytes()) };
                    Val::Ptr(output)
                }
                Val::None | Val::Done => unreachable!("the schedule runs operands first (checked at build)"),
                Val::Tuple(_) => unreachable!("only `get` reads a region op (checked by the verifier)"),
            },
            Mode::Elided => Val::None,
            Mode::Region(r) => Val::Tuple(run_region(exe, st, vars, r, &step.args)?),
            Mode::Get(k) => match &st.vals[step.args[0]] {
                Val::Tuple(t) => Val::Arr(t[*k].clone()),
                _ => unreachable!("`get` reads a region step (checked by the verifier)"),
            },
            Mode::Library | Mode::Fallback(_) => {
                let args: SmallVec<[Array; 4]> =
                    step.args.iter().map(|&a| val_array(&st.vals[a], &exe.steps[a].ty)).collect::<Result<_>>()?;
                let refs: SmallVec<[&Array; 4]> = args.iter().collect();
                Val::Arr(interp_eval(&exe.graph.node(step.node).op, &refs, &step.ty)?)
            }
        };
        st.vals[i] = val;
        if let (Some(t), Some(start)) = (times.as_deref_mut(), start) {
            t[i] = start.elapsed();
        }
    }
    Ok(())
}

/// A row group's call: full-size destinations and outside operands resolved once, then
/// each thread walks its share of the rows block by block through every kernel.
fn run_group(exe: &Executable, st: &mut CallState, out: &mut Outcome, g: &RowGroup) -> Result<()> {
    let mut dest: SmallVec<[*mut u8; 8]> = SmallVec::new();
    for i in g.start..g.end {
        let step = &exe.steps[i];
        dest.push(match step.dest {
            Dest::Block(_) => std::ptr::null_mut(),
            _ => dest_ptr(st, out, i, step)?,
        });
    }
    st.ptrs.clear();
    for i in g.start..g.end {
        for &a in &exe.steps[i].args {
            st.ptrs.push(if g.contains(a) { std::ptr::null() } else { val_ptr(&st.vals[a]) });
        }
    }
    let threads = exe.pool.threads();
    let parts =
        if threads > 1 && g.work >= exe.options.par_min_work { threads.min(g.rows.div_ceil(g.block_rows)) } else { 1 };
    // SAFETY: the block buffers lie inside the arena (placed at build past every slot).
    let scratch = unsafe { st.arena.as_mut_ptr().add(g.scratch) };
    let job = GroupJob { exe, g, dest: &dest, outside: &st.ptrs, scratch, parts };
    if parts == 1 {
        job.part(0);
    } else {
        exe.pool.for_each(parts, &|p| job.part(p));
    }
    for (k, i) in (g.start..g.end).enumerate() {
        st.vals[i] = if dest[k].is_null() { Val::Done } else { Val::Ptr(dest[k]) };
    }
    Ok(())
}

/// What the threads of a row group share.
struct GroupJob<'a> {
    exe: &'a Executable,
    g: &'a RowGroup,
    /// Each step's full-size destination, or null for a block-buffer value.
    dest: &'a [*mut u8],
    /// Operand pointers of every step in order, null for operands from inside the group.
    outside: &'a [*const u8],
    scratch: *mut u8,
    parts: usize,
}

// SAFETY: the pointers stay valid for the whole `for_each` that uses the job; parts write
// disjoint rows of the full-size destinations and their own block buffers.
unsafe impl Sync for GroupJob<'_> {}

impl GroupJob<'_> {
    /// Rows `p*R/parts .. (p+1)*R/parts`, with block buffer area `p`.
    fn part(&self, p: usize) {
        let g = self.g;
        let (lo, hi) = (p * g.rows / self.parts, (p + 1) * g.rows / self.parts);
        let area = self.scratch.wrapping_add(p * g.scratch_per_thread);
        // Where row 0 of step `i`'s value would be, so that rows r0.. land at the block
        // buffer's start: kernels address element `e` as `base + e * size`.
        let base = |i: usize, r0: usize| -> *mut u8 {
            let step = &self.exe.steps[i];
            match step.dest {
                Dest::Block(off) => area.wrapping_add(off).wrapping_sub(r0 * (step.ty.bytes() / g.rows)),
                _ => self.dest[i - g.start],
            }
        };
        let mut r0 = lo;
        while r0 < hi {
            let r1 = (r0 + g.block_rows).min(hi);
            let mut next_arg = 0;
            for i in g.start..g.end {
                let step = &self.exe.steps[i];
                let Mode::Kernel { kernel, .. } = &step.mode else { unreachable!("row groups hold kernels only") };
                let mut ptrs: SmallVec<[*const u8; 8]> = SmallVec::new();
                for &a in &step.args {
                    let outside = self.outside[next_arg];
                    next_arg += 1;
                    ptrs.push(if outside.is_null() { base(a, r0) as *const u8 } else { outside });
                }
                let per_row = step.ty.numel() / g.rows;
                // SAFETY: operand pointers address whole buffers of their static types, or
                // (block values) buffers whose rows r0..r1 were just written at the shifted
                // base; the kernel touches only rows r0..r1 of row-wise operands (`rows.rs`)
                // and writes only elements r0*per_row .. r1*per_row of its output.
                unsafe { (kernel.func())(ptrs.as_ptr(), base(i, r0), r0 * per_row, r1 * per_row) };
            }
            r0 = r1;
        }
    }
}

/// Moves results into `out`: outputs not written in place, and the variable writes.
/// Fills `out` in output order: this call's fresh buffers, the values of the arena or of
/// other outputs; outputs written in place are already there. In order, so no placeholder
/// is ever allocated for an output filled later.
///
/// # Safety
/// Every step writing a fresh buffer has run to completion.
unsafe fn finish(exe: &Executable, st: &mut CallState, out: &mut Outcome) -> Result<()> {
    st.fresh.sort_unstable_by_key(|f| f.0);
    let mut fresh = st.fresh.drain(..).peekable();
    for (j, src) in exe.outputs.iter().enumerate() {
        let value = match fresh.next_if(|f| f.0 == j) {
            Some((_, i, buf)) => {
                // SAFETY: kernels, gemm and copies write every element of their destination,
                // and they have all run (the caller's contract).
                let data = unsafe { buf.assume_init() };
                Array::new(data, &exe.steps[i].ty.shape)?
            }
            None => match *src {
                OutSrc::Step(_) if st.direct[j] => continue,
                OutSrc::Step(i) => val_array(&st.vals[i], &exe.steps[i].ty)?,
                OutSrc::Same(j0) => out.outputs[j0].clone(),
            },
        };
        place(out, j, value);
    }
    out.outputs.truncate(exe.outputs.len());
    out.writes.clear();
    for (v, a) in st.vars.iter_mut().enumerate() {
        if let Some(a) = a.take() {
            out.writes.push((v as u32, a));
        }
    }
    Ok(())
}

/// A region step: its operands as arrays, the variables as they stand in this call, the
/// control flow of `interp::region::run` with each body run by its own executable; the
/// bodies' variable writes become this call's (committed only if the whole call succeeds).
fn run_region(
    exe: &Executable,
    st: &mut CallState,
    vars: &[&Array],
    r: &super::RegionExec,
    args: &[usize],
) -> Result<Vec<Array>> {
    use kiln_ir::interp::region::{self, VarState};
    let operands: Vec<Array> = args.iter().map(|&a| val_array(&st.vals[a], &exe.steps[a].ty)).collect::<Result<_>>()?;
    if let Some(native) = &r.native {
        return native.run(&operands);
    }
    let now: Vec<Array> = st.vars.iter().zip(vars).map(|(w, &v)| w.clone().unwrap_or_else(|| v.clone())).collect();
    let mut state = VarState::new(now);
    let regions = r.op.regions();
    let mut scratch = Outcome { outputs: Vec::new(), writes: Vec::new() };
    let out = region::run(&r.op, &operands, &mut |k, ins: &[Array], outs: &mut Vec<Array>| {
        let body = regions[k];
        // The previous outputs, unshared now, are overwritten in place by `run_into`.
        scratch.outputs = std::mem::take(outs);
        r.bodies[k].run_into(ins, &state.enter(body)?, &mut scratch)?;
        *outs = std::mem::take(&mut scratch.outputs);
        state.leave(body, std::mem::take(&mut scratch.writes));
        Ok(())
    })?;
    for (v, a) in state.current.into_iter().enumerate() {
        if state.written[v] {
            st.vars[v] = Some(a);
        }
    }
    Ok(out)
}
