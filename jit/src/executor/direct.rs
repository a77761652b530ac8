//! The direct path: a graph of inputs, constants and small kernels each writing a graph
//! output (`3*w1^2 + 2*w1*w2` on scalars, issue 18's W5) runs without a call state. No
//! arena, no value table, no pool hand-off: operand addresses live on the stack, outputs
//! are written in place or into fresh buffers, and the call costs little more than its
//! kernels and its output allocations.

use kiln_ir::{with_data, Array, Result};
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

/// One call of an eligible executable (inputs already checked against the signature).
pub(super) fn run(exe: &Executable, inputs: &[&Array], out: &mut Outcome) -> Result<()> {
    // `new`, not `with_capacity`: built in place, not moved (136 bytes) out of a call.
    let mut vals: SmallVec<[*const u8; 16]> = SmallVec::new();
    // Bit j: output j is in `out` already (written in place, or placed when computed).
    let mut placed = 0u64;
    // Fresh outputs computed before the outputs in front of them exist: placed at the end.
    let mut later: SmallVec<[(usize, Array); 2]> = SmallVec::new();
    let mut ptrs: SmallVec<[*const u8; 8]> = SmallVec::new();
    for step in &exe.steps {
        let val = match &step.mode {
            Mode::Input(k) => inputs[*k].data().as_bytes().as_ptr(),
            Mode::Const(a) => a.data().as_bytes().as_ptr(),
            Mode::Kernel { kernel, .. } => {
                let Dest::Output(j) = step.dest else { unreachable!("checked by `eligible`") };
                if let Some(p) = out_buffer(out, j, &step.ty) {
                    call_kernel(kernel, step, &vals, &mut ptrs, p);
                    placed |= 1 << j;
                    p as *const u8
                } else {
                    let mut buf = Fresh::try_new(&step.ty)?;
                    call_kernel(kernel, step, &vals, &mut ptrs, buf.as_mut_ptr());
                    // SAFETY: the kernel wrote every element of its output.
                    let a = Array::new(unsafe { buf.assume_init() }, &step.ty.shape)?;
                    let p = a.data().as_bytes().as_ptr();
                    if j <= out.outputs.len() {
                        place(out, j, a);
                        placed |= 1 << j;
                    } else {
                        later.push((j, a));
                    }
                    p
                }
            }
            _ => unreachable!("checked by `eligible`"),
        };
        vals.push(val);
    }
    for (j, src) in exe.outputs.iter().enumerate() {
        if placed & (1 << j) != 0 {
            continue;
        }
        let value = match *src {
            OutSrc::Step(i) => match &exe.steps[i].mode {
                Mode::Input(k) => inputs[*k].clone(),
                Mode::Const(a) => a.clone(),
                _ => {
                    let k = later.iter().position(|l| l.0 == j).expect("a kernel's output is placed or later");
                    later.swap_remove(k).1
                }
            },
            OutSrc::Same(j0) => out.outputs[j0].clone(),
        };
        place(out, j, value);
    }
    out.outputs.truncate(exe.outputs.len());
    out.writes.clear();
    Ok(())
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
        let p = if exe.computes_output(j) {
            let ty = &exe.graph.node(exe.graph.outputs()[j]).ty;
            if a.dtype() != ty.dtype || a.shape() != ty.shape.as_slice() {
                return false;
            }
            let Some(data) = a.data_mut() else { return false };
            with_data!(data, v => v.as_mut_ptr() as *mut u8)
        } else {
            std::ptr::null_mut()
        };
        bufs.push(p);
    }
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
    for (j, src) in exe.outputs.iter().enumerate() {
        if exe.computes_output(j) {
            continue;
        }
        *outs[j] = match *src {
            OutSrc::Step(i) => match &exe.steps[i].mode {
                Mode::Input(k) => inputs[*k].clone(),
                Mode::Const(a) => a.clone(),
                _ => unreachable!("a computed output"),
            },
            OutSrc::Same(j0) => outs[j0].clone(),
        };
    }
    true
}
