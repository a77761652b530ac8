//! Loops whose bodies are nothing but compiled kernels (the common case for a recurrence on
//! small tensors, such as `x = x * 0.999 + 1`) run here: a plain Rust loop calling the
//! kernels' machine code, with the loop variables in two preallocated buffers used in turn
//! and the body's intermediates in one arena. No allocation, no signature check and no
//! interpreter per iteration. Other loops take the general path (`call.rs::run_region`),
//! which runs each body as an executable.

use kiln_ir::{Array, Data, Op, Result, TensorType};

use super::{Dest, Executable, KernelFn, Mode};
use crate::arena::Arena;

/// Where a body value comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    /// Body input `k`.
    Input(usize),
    /// Constant number `k` of the body.
    Const(usize),
    /// The result of kernel call `k`.
    Step(usize),
}

struct Step {
    func: KernelFn,
    args: Vec<Src>,
    /// Arena offset of the result.
    dest: usize,
    numel: usize,
}

/// One body as a list of kernel calls.
struct Body {
    steps: Vec<Step>,
    consts: Vec<Array>,
    outputs: Vec<Src>,
    arena_bytes: usize,
}

/// Largest total work (elements × cost) a body may have to run here: bigger bodies want the
/// thread pool, which the general path uses.
const MAX_WORK: usize = super::PAR_MIN_WORK;

impl Body {
    /// The body of `exe` as kernel calls, if it is only inputs, constants, views of those
    /// and single-threaded kernels.
    fn of(exe: &Executable) -> Option<Body> {
        let mut srcs: Vec<Src> = Vec::with_capacity(exe.steps.len());
        let mut consts = Vec::new();
        let mut steps = Vec::new();
        let mut extra = exe.arena_bytes.next_multiple_of(super::build::ALIGN);
        for st in &exe.steps {
            let src = match &st.mode {
                Mode::Input(k) => Src::Input(*k),
                Mode::Const(a) => {
                    consts.push(a.clone());
                    Src::Const(consts.len() - 1)
                }
                Mode::View => match srcs[st.args[0]] {
                    s @ (Src::Input(_) | Src::Const(_)) => s,
                    Src::Step(_) => return None,
                },
                Mode::Kernel { kernel, .. } => {
                    let numel = st.ty.numel();
                    if numel.saturating_mul(kernel.cost_per_element().max(1)) > MAX_WORK {
                        return None;
                    }
                    let dest = match st.dest {
                        Dest::Slot(off) => off,
                        // Outputs get room of their own past the planned arena.
                        Dest::Output(_) | Dest::None => {
                            let off = extra;
                            extra = (off + st.ty.bytes()).next_multiple_of(super::build::ALIGN);
                            off
                        }
                        Dest::Block(_) | Dest::Fresh | Dest::Var(_) => return None,
                    };
                    let args = st.args.iter().map(|&a| srcs[a]).collect();
                    steps.push(Step { func: kernel.func(), args, dest, numel });
                    Src::Step(steps.len() - 1)
                }
                _ => return None,
            };
            srcs.push(src);
        }
        let outputs = exe
            .outputs
            .iter()
            .map(|o| match *o {
                super::OutSrc::Step(i) => srcs[i],
                super::OutSrc::Same(j) => match exe.outputs[j] {
                    super::OutSrc::Step(i) => srcs[i],
                    super::OutSrc::Same(_) => unreachable!("`Same` names a `Step` output"),
                },
            })
            .collect();
        Some(Body { steps, consts, outputs, arena_bytes: extra })
    }

    /// The body's calls with every address resolved, for inputs at `inputs` and the arena at
    /// `arena`. With `into`, output `j` is written straight to `into[j]` when a kernel makes
    /// it (once); the other outputs are left for the caller to copy (`Planned::copies`).
    fn plan(&self, inputs: &[*const u8], arena: *mut u8, into: Option<&[(*mut u8, usize)]>) -> Planned {
        let mut dests: Vec<*mut u8> = self
            .steps
            .iter()
            // SAFETY (of the `add`): offsets lie inside the arena, sized from them.
            .map(|s| unsafe { arena.add(s.dest) })
            .collect();
        let mut copies = Vec::new();
        if let Some(into) = into {
            let mut redirected = vec![false; self.steps.len()];
            for (&o, &(to, bytes)) in self.outputs.iter().zip(into) {
                match o {
                    Src::Step(k) if !redirected[k] => {
                        redirected[k] = true;
                        dests[k] = to;
                    }
                    other => copies.push((other, to, bytes)),
                }
            }
        }
        let addr = |s: Src, dests: &[*mut u8]| -> *const u8 {
            match s {
                Src::Input(k) => inputs[k],
                Src::Const(k) => self.consts[k].data().as_bytes().as_ptr(),
                Src::Step(k) => dests[k],
            }
        };
        let calls = self
            .steps
            .iter()
            .zip(&dests)
            .map(|(s, &d)| Call {
                func: s.func,
                args: s.args.iter().map(|&a| addr(a, &dests)).collect(),
                dest: d,
                numel: s.numel,
            })
            .collect();
        let outputs = self.outputs.iter().map(|&o| addr(o, &dests)).collect();
        let copies = copies.into_iter().map(|(s, to, bytes)| (addr(s, &dests), to, bytes)).collect();
        Planned { calls, outputs, copies }
    }
}

/// A kernel call with its addresses.
struct Call {
    func: KernelFn,
    args: Vec<*const u8>,
    dest: *mut u8,
    numel: usize,
}

/// A body ready to run for one placement of its inputs and outputs.
struct Planned {
    calls: Vec<Call>,
    /// Where each output is after a run.
    outputs: Vec<*const u8>,
    /// Outputs not written in place: (from, to, bytes), copied after the calls.
    copies: Vec<(*const u8, *mut u8, usize)>,
}

impl Planned {
    /// # Safety
    /// The addresses the plan was made from are valid and hold values of their types.
    unsafe fn run(&self) {
        for c in &self.calls {
            // SAFETY: the arguments address values of the kernel's operand types, and the
            // destination has room for `numel` elements and overlaps no live operand (the
            // memory plan's guarantee, or a carry buffer of the other half).
            unsafe { (c.func)(c.args.as_ptr(), c.dest, 0, c.numel) };
        }
        for &(from, to, bytes) in &self.copies {
            // SAFETY: `from` holds `bytes` bytes of the value; `to` is the other half's slot.
            unsafe { std::ptr::copy_nonoverlapping(from, to, bytes) };
        }
    }
}

/// A `scan` without xs or ys (a `fori_loop`), or a `while`, whose bodies all run natively.
pub(crate) struct NativeLoop {
    kind: Kind,
    carries: Vec<TensorType>,
}

enum Kind {
    Fori { body: Body, length: usize },
    While { cond: Body, body: Body },
}

impl NativeLoop {
    /// The native form of loop `op` with body executables `bodies`, if it has one.
    pub(crate) fn new(op: &Op, bodies: &[Executable]) -> Option<NativeLoop> {
        let (kind, carries) = match op {
            Op::Scan(s) if s.xs == 0 && s.body.graph.outputs().len() == s.carries && !s.reverse => {
                let types = s.body.input_types()[1..1 + s.carries].to_vec();
                (Kind::Fori { body: Body::of(&bodies[0])?, length: s.length }, types)
            }
            Op::While(w) => {
                let types = w.body.input_types()[..w.carries].to_vec();
                (Kind::While { cond: Body::of(&bodies[0])?, body: Body::of(&bodies[1])? }, types)
            }
            _ => return None,
        };
        Some(NativeLoop { kind, carries })
    }

    /// Runs the loop on `args` (carries then captures); returns the final carries.
    pub(crate) fn run(&self, args: &[Array]) -> Result<Vec<Array>> {
        let n = self.carries.len();
        let sizes: Vec<usize> = self.carries.iter().map(TensorType::bytes).collect();
        // Two buffers per carry, used in turn: an iteration reads one half and writes the other.
        let mut offsets = Vec::with_capacity(n);
        let mut half = 0;
        for &b in &sizes {
            offsets.push(half);
            half = (half + b).next_multiple_of(super::build::ALIGN);
        }
        let mut state = Arena::try_new(2 * half)?;
        let base = state.as_mut_ptr();
        // SAFETY (of every `add` below): `h * half + offsets[j]` lies inside the state buffer.
        let slot = |h: usize, j: usize| unsafe { base.add(h * half + offsets[j]) };
        for (j, a) in args[..n].iter().enumerate() {
            let src = a.data().as_bytes();
            // SAFETY: the slot has room for the carry's bytes.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), slot(0, j), src.len()) };
        }
        let captures: Vec<*const u8> = args[n..].iter().map(|a| a.data().as_bytes().as_ptr()).collect();
        let counter = Box::new(std::cell::Cell::new(0i64));
        let arena_bytes = match &self.kind {
            Kind::Fori { body, .. } => body.arena_bytes,
            Kind::While { cond, body } => cond.arena_bytes.max(body.arena_bytes),
        };
        let mut arena = Arena::try_new(arena_bytes)?;
        let scratch = arena.as_mut_ptr();
        // Inputs and plans for each half: reading half h, writing half 1 - h.
        let inputs = |h: usize, with_counter: bool| -> Vec<*const u8> {
            let mut v: Vec<*const u8> = Vec::with_capacity(1 + args.len());
            if with_counter {
                v.push(counter.as_ptr() as *const u8);
            }
            v.extend((0..n).map(|j| slot(h, j) as *const u8));
            v.extend_from_slice(&captures);
            v
        };
        let into = |h: usize| -> Vec<(*mut u8, usize)> { (0..n).map(|j| (slot(1 - h, j), sizes[j])).collect() };
        let mut cur = 0usize;
        match &self.kind {
            Kind::Fori { body, length } => {
                let plans = [0, 1].map(|h| body.plan(&inputs(h, true), scratch, Some(&into(h))));
                for i in 0..*length {
                    counter.set(i as i64);
                    // SAFETY: the plan's addresses are the buffers above, alive and typed.
                    unsafe { plans[cur].run() };
                    cur = 1 - cur;
                }
            }
            Kind::While { cond, body } => {
                let conds = [0, 1].map(|h| cond.plan(&inputs(h, false), scratch, None));
                let plans = [0, 1].map(|h| body.plan(&inputs(h, false), scratch, Some(&into(h))));
                loop {
                    // SAFETY: as above; the condition's output is one bool byte.
                    let go = unsafe {
                        conds[cur].run();
                        *conds[cur].outputs[0] != 0
                    };
                    if !go {
                        break;
                    }
                    // SAFETY: as above.
                    unsafe { plans[cur].run() };
                    cur = 1 - cur;
                }
            }
        }
        self.carries
            .iter()
            .enumerate()
            .map(|(j, t)| {
                // SAFETY: the current half holds the final carry j.
                let bytes = unsafe { std::slice::from_raw_parts(slot(cur, j), sizes[j]) };
                Array::new(Data::from_bytes(t.dtype, bytes)?, &t.shape)
            })
            .collect()
    }
}
