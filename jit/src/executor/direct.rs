//! The direct path: a graph of inputs, constants and small kernels each writing a graph
//! output (`3*w1^2 + 2*w1*w2` on scalars, issue 18's W5) runs without a call state. No
//! arena, no value table, no pool hand-off: operand addresses live on the stack, outputs
//! are written in place or into fresh buffers, and the call costs little more than its
//! kernels and its output allocations.

use kiln_ir::{with_data, Array, Result, TensorType};
use smallvec::SmallVec;

use super::call::{out_buffer, place, Fresh};
use super::{Dest, Executable, Mode, OutSrc, Outcome, ScheduleStep};
use crate::kernel::CompiledKernel;

/// Whether `exe` can run directly: only inputs, constants and kernels, every kernel
/// writing an output and below the work that would split it across threads (with one
/// thread too: a direct call must stay short, see `Executable::is_direct`), at most 64
/// outputs.
pub(super) fn eligible(exe: &Executable) -> bool {
    exe.groups.is_empty()
        && exe.outputs.len() <= 64
        && exe.steps.iter().all(|s| match &s.mode {
            Mode::Input(_) | Mode::Const(_) => true,
            Mode::Kernel { kernel, .. } => {
                let work = s.ty.numel().saturating_mul(kernel.cost_per_element().max(1));
                matches!(s.dest, Dest::Output(_)) && work < exe.options.par_min_work
            }
            _ => false,
        })
}

/// One call of an eligible executable (inputs already checked against the signature):
/// each computed output is written into the caller's previous output when that is unshared
/// and of its type, else into a fresh buffer allocated before any kernel runs.
pub(super) fn run(exe: &Executable, inputs: &[&Array], out: &mut Outcome) -> Result<()> {
    let mut bufs: SmallVec<[*mut u8; 8]> = SmallVec::new();
    let mut fresh: SmallVec<[(usize, Fresh); 2]> = SmallVec::new();
    for j in 0..exe.outputs.len() {
        let p = match computed_type(exe, j) {
            None => std::ptr::null_mut(),
            Some(ty) => match out_buffer(out, j, ty) {
                Some(p) => p,
                None => {
                    let mut buf = Fresh::try_new(ty)?;
                    let p = buf.as_mut_ptr();
                    fresh.push((j, buf));
                    p
                }
            },
        };
        bufs.push(p);
    }
    run_kernels(exe, inputs, &bufs);
    // Placed in output order, so `out` has every output before `j` when `j` is placed.
    let mut fresh = fresh.into_iter().peekable();
    for j in 0..exe.outputs.len() {
        let value = match (fresh.next_if(|(k, _)| *k == j), computed_type(exe, j)) {
            // SAFETY: the output's kernel wrote every element.
            (Some((_, buf)), Some(ty)) => Array::new(unsafe { buf.assume_init() }, &ty.shape)?,
            (None, Some(_)) => continue, // written in place
            (_, None) => shared_output(exe, j, inputs, |j0| out.outputs[j0].clone()),
        };
        place(out, j, value);
    }
    out.outputs.truncate(exe.outputs.len());
    out.writes.clear();
    Ok(())
}

/// One call writing each output into `outs[j]` (inputs already checked against the
/// signature): a computed output into its array's buffer, an input or constant output by
/// replacing the array. `false`, with nothing written, unless every computed output's array
/// is unshared and of the output's type; so once a buffer is written, nothing can fail.
pub(super) fn run_in_place(exe: &Executable, inputs: &[&Array], outs: &mut [&mut Array]) -> bool {
    if outs.len() != exe.outputs.len() {
        return false;
    }
    let mut bufs: SmallVec<[*mut u8; 8]> = SmallVec::new();
    for (j, a) in outs.iter_mut().enumerate() {
        let p = match computed_type(exe, j) {
            None => std::ptr::null_mut(),
            Some(ty) => {
                if a.dtype() != ty.dtype || a.shape() != ty.shape.as_slice() {
                    return false;
                }
                let Some(data) = a.data_mut() else { return false };
                with_data!(data, v => v.as_mut_ptr() as *mut u8)
            }
        };
        bufs.push(p);
    }
    run_kernels(exe, inputs, &bufs);
    for j in 0..outs.len() {
        if computed_type(exe, j).is_none() {
            let value = shared_output(exe, j, inputs, |j0| outs[j0].clone());
            *outs[j] = value;
        }
    }
    true
}

/// The type of output `j` if a kernel computes it (`None`: it is an input, a constant or
/// an earlier output).
fn computed_type(exe: &Executable, j: usize) -> Option<&TensorType> {
    match exe.outputs[j] {
        OutSrc::Step(i) if matches!(exe.steps[i].mode, Mode::Kernel { .. }) => Some(&exe.steps[i].ty),
        _ => None,
    }
}

/// Output `j` when no kernel computes it: an input's or a constant's value, or that of the
/// earlier output it repeats (`earlier(j0)`).
fn shared_output(exe: &Executable, j: usize, inputs: &[&Array], earlier: impl FnOnce(usize) -> Array) -> Array {
    match exe.outputs[j] {
        OutSrc::Step(i) => match &exe.steps[i].mode {
            Mode::Input(k) => inputs[*k].clone(),
            Mode::Const(a) => a.clone(),
            _ => unreachable!("a kernel's output is computed"),
        },
        OutSrc::Same(j0) => earlier(j0),
    }
}

/// Runs the kernels in schedule order, the one computing output `j` into `bufs[j]`.
fn run_kernels(exe: &Executable, inputs: &[&Array], bufs: &[*mut u8]) {
    // `new`, not `with_capacity`: built in place, not moved (136 bytes) out of a call.
    let mut vals: SmallVec<[*const u8; 16]> = SmallVec::new();
    let mut ptrs: SmallVec<[*const u8; 8]> = SmallVec::new();
    for step in &exe.steps {
        let val = match &step.mode {
            Mode::Input(k) => inputs[*k].data().as_bytes().as_ptr(),
            Mode::Const(a) => a.data().as_bytes().as_ptr(),
            Mode::Kernel { kernel, .. } => {
                let Dest::Output(j) = step.dest else { unreachable!("checked by `eligible`") };
                call_kernel(kernel, step, &vals, &mut ptrs, bufs[j]);
                bufs[j] as *const u8
            }
            _ => unreachable!("checked by `eligible`"),
        };
        vals.push(val);
    }
}

/// Runs `step`'s kernel on the operands `vals` names into `output`.
fn call_kernel(
    kernel: &CompiledKernel,
    step: &ScheduleStep,
    vals: &[*const u8],
    ptrs: &mut SmallVec<[*const u8; 8]>,
    output: *mut u8,
) {
    ptrs.clear();
    ptrs.extend(step.args.iter().map(|&a| vals[a]));
    let numel = step.ty.numel();
    if numel > 0 {
        // SAFETY: `ptrs` holds one address per operand, each a whole buffer of the
        // operand's static type (inputs are checked against the signature, constants and
        // earlier outputs have their nodes' types); `output` has room for `numel` elements
        // of the step's type.
        unsafe { (kernel.func())(ptrs.as_ptr(), output, 0, numel) };
    }
}
