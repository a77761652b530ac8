//! The direct path: a graph of inputs, constants and small kernels each writing a graph
//! output (`3*w1^2 + 2*w1*w2` on scalars, issue 18's W5) runs without a call state. No
//! arena, no value table, no pool hand-off: operand addresses live on the stack, outputs
//! are written in place or into fresh buffers, and the call costs little more than its
//! kernels and its output allocations.

use kiln_ir::{Array, Result};
use smallvec::SmallVec;

use super::call::{out_buffer, place, Fresh};
use super::{Dest, Executable, Mode, OutSrc, Outcome};

/// Whether `exe` can run directly: only inputs, constants and kernels, every kernel
/// writing an output and too small to be split across threads.
pub(super) fn eligible(exe: &Executable) -> bool {
    exe.groups.is_empty()
        && exe.steps.iter().all(|s| match &s.mode {
            Mode::Input(_) | Mode::Const(_) => true,
            Mode::Kernel { kernel, .. } => {
                let work = s.ty.numel().saturating_mul(kernel.cost_per_element().max(1));
                matches!(s.dest, Dest::Output(_)) && (exe.pool.threads() == 1 || work < exe.options.par_min_work)
            }
            _ => false,
        })
}

/// One call of an eligible executable (inputs already checked against the signature).
pub(super) fn run(exe: &Executable, inputs: &[&Array], out: &mut Outcome) -> Result<()> {
    let mut vals: SmallVec<[*const u8; 16]> = SmallVec::with_capacity(exe.steps.len());
    let mut fresh: SmallVec<[(usize, usize, Fresh); 4]> = SmallVec::new();
    let mut in_place: SmallVec<[bool; 4]> = SmallVec::from_elem(false, exe.outputs.len());
    let mut ptrs: SmallVec<[*const u8; 8]> = SmallVec::new();
    for (i, step) in exe.steps.iter().enumerate() {
        let val = match &step.mode {
            Mode::Input(k) => inputs[*k].data().as_bytes().as_ptr(),
            Mode::Const(a) => a.data().as_bytes().as_ptr(),
            Mode::Kernel { kernel, .. } => {
                let Dest::Output(j) = step.dest else { unreachable!("checked by `eligible`") };
                ptrs.clear();
                ptrs.extend(step.args.iter().map(|&a| vals[a]));
                let output = match out_buffer(out, j, &step.ty) {
                    Some(p) => {
                        in_place[j] = true;
                        p
                    }
                    None => {
                        let mut buf = Fresh::try_new(&step.ty)?;
                        let p = buf.as_mut_ptr();
                        fresh.push((j, i, buf));
                        p
                    }
                };
                let numel = step.ty.numel();
                if numel > 0 {
                    // SAFETY: `ptrs` holds one address per operand, each a whole buffer of
                    // the operand's static type (inputs are checked against the signature,
                    // constants and earlier outputs have their nodes' types); `output` has
                    // room for `numel` elements of the step's type.
                    unsafe { (kernel.func())(ptrs.as_ptr(), output, 0, numel) };
                }
                output as *const u8
            }
            _ => unreachable!("checked by `eligible`"),
        };
        vals.push(val);
    }
    fresh.sort_unstable_by_key(|f| f.0);
    let mut fresh = fresh.into_iter().peekable();
    for (j, src) in exe.outputs.iter().enumerate() {
        let value = match fresh.next_if(|f| f.0 == j) {
            // SAFETY: the kernel of step `i` ran and wrote every element of its output.
            Some((_, i, buf)) => Array::new(unsafe { buf.assume_init() }, &exe.steps[i].ty.shape)?,
            None => match *src {
                OutSrc::Step(_) if in_place[j] => continue,
                OutSrc::Step(i) => match &exe.steps[i].mode {
                    Mode::Input(k) => inputs[*k].clone(),
                    Mode::Const(a) => a.clone(),
                    _ => unreachable!("a kernel's output is fresh or written in place"),
                },
                OutSrc::Same(j0) => out.outputs[j0].clone(),
            },
        };
        place(out, j, value);
    }
    out.outputs.truncate(exe.outputs.len());
    out.writes.clear();
    Ok(())
}
