//! The executor: runs an optimized graph from its memory plan, with compiled kernels for
//! fused nodes, gemm for float matmuls and the reference interpreter for everything else.
//!
//! Built once per function signature ([`Executable::new`]), then called any number of
//! times, from any number of threads ([`Executable::run`]). Each call borrows a per-call
//! state (arena plus value table) from a free list, so the steady state allocates only the
//! result tensors, or nothing at all with [`Executable::run_into`].
//!
//! How each node runs (its *mode*, also printed by [`Executable::dump`]):
//!
//! | node | mode |
//! |---|---|
//! | `Fused` | `kernel`: the compiled function writes into the node's arena slot (or straight into the output tensor); big kernels are split across the thread pool |
//! | `Fused` that failed to compile | `INTERPRETER FALLBACK`: `interp::eval` of the kernel, listed by [`Executable::fallbacks`] |
//! | `MatMul` f32/f64 | `gemm`: written straight into its slot, or added into the destination of the optimizer update that is its only reader (`gemm_update.rs`; the update's step is then `computed by`) |
//! | `Reshape` | `view`: the same buffer with another shape (a copy only if the operand lives in the arena) |
//! | `Input`, `Const`, `ReadVar`, `AssignVar` | `source` / `var`: bound at call time |
//! | anything else (transpose, slice, concat, gather, random, unfused reductions, int matmul...) | `library`: `interp::eval` into a fresh array |

mod build;
mod call;
mod direct;
mod gemm_update;
mod in_place;
mod native_loop;
mod rows;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use kiln_ir::{Array, Graph, NodeId, Result, TensorType};
use smallvec::SmallVec;

use crate::arena::Pool;
use crate::pool::ThreadPool;
use kiln_ir::matmul::MatMulShape;

pub(crate) use crate::kernel::{CompiledKernel, KernelFn};
pub(crate) use kiln_ir::interp::eval as interp_eval;
pub use kiln_ir::interp::Outcome;

/// The reference interpreter the executor falls back on (re-exported for tests).
pub mod reference {
    pub use kiln_ir::interp::{eval, run, Outcome};
}

/// Kernels doing less work than this (elements × cost per element) run on the calling
/// thread: waking the pool costs a few µs, about what 64K simple elements take.
pub const PAR_MIN_WORK: usize = 1 << 18;

/// How an [`Executable`] runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Threads for kernels and gemm (the caller included). Default: `KILN_NUM_THREADS`,
    /// else the number of cores.
    pub threads: usize,
    /// Minimum work (elements × cost per element) for a kernel to be split across threads.
    pub par_min_work: usize,
    /// Whether chains of row-wise kernels run block of rows by block of rows (see the
    /// module docs). Default: on.
    pub row_groups: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { threads: crate::pool::default_threads(), par_min_work: PAR_MIN_WORK, row_groups: true }
    }
}

/// A node the executor runs in the interpreter because its kernel did not compile.
#[derive(Clone, Debug, PartialEq)]
pub struct Fallback {
    pub node: NodeId,
    /// The compile error.
    pub reason: String,
}

/// How one scheduled node is run.
pub(crate) enum Mode {
    Input(usize),
    Const(Array),
    ReadVar(usize),
    AssignVar(usize),
    Kernel {
        kernel: Arc<CompiledKernel>,
        number: usize,
    },
    Gemm(MatMulShape),
    /// A product added into the destination of the update kernel that was its only reader
    /// (`gemm_update.rs`); operands: lhs, rhs, then the value added to.
    GemmUpdate(Box<GemmUpdate>),
    /// A value computed by an earlier step (the update kernel a `GemmUpdate` replaced).
    Computed(usize),
    View,
    /// A transpose every reader takes through gemm's strides: nothing to compute.
    Elided,
    Library,
    Fallback(String),
    /// A region op: its bodies' executables, driven by `interp::region::run`.
    Region(Box<RegionExec>),
    /// Result `i` of a region step.
    Get(usize),
}

/// `into`'s value as `acc + beta · (lhs @ rhs)`, written into `into`'s destination.
pub(crate) struct GemmUpdate {
    pub shape: MatMulShape,
    pub beta: f64,
    /// The schedule index of the kernel step replaced.
    pub into: usize,
}

/// A region op ready to run: the op (for the control flow) and one executable per body,
/// in [`kiln_ir::Op::regions`] order.
pub(crate) struct RegionExec {
    pub op: kiln_ir::Op,
    pub bodies: Vec<Executable>,
    /// The loop as a native loop over kernel calls, when its bodies allow it.
    pub native: Option<native_loop::NativeLoop>,
}

impl RegionExec {
    fn new(op: &kiln_ir::Op, options: &Options) -> Result<RegionExec> {
        let bodies: Vec<Executable> = op
            .regions()
            .into_iter()
            .map(|r| Executable::with_options(r.graph.clone(), options.clone()))
            .collect::<Result<_>>()?;
        let native = native_loop::NativeLoop::new(op, &bodies);
        Ok(RegionExec { op: op.clone(), bodies, native })
    }
}

/// Where a node computed into memory writes its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    None,
    /// Byte offset in the arena.
    Slot(usize),
    /// Straight into graph output `j`.
    Output(usize),
    /// In its row group's per-thread block buffer, at this offset (see `rows.rs`).
    Block(usize),
    /// In a buffer of its own, handed to the Variable write that reads it.
    Fresh,
    /// Over the buffer of Variable `v`'s old value when the caller hands it over
    /// ([`Executable::run_updating`], `in_place.rs`), else as `Fresh`.
    Var(usize),
}

/// One node of the schedule with everything a call needs precomputed.
pub(crate) struct ScheduleStep {
    pub node: NodeId,
    pub mode: Mode,
    /// Operands as indices into the schedule.
    pub args: Vec<usize>,
    pub dest: Dest,
    pub ty: TensorType,
}

/// Where output `j` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutSrc {
    /// The value of this step.
    Step(usize),
    /// The same node as an earlier output.
    Same(usize),
}

/// A graph ready to run: kernels compiled, schedule and buffers planned.
///
/// ```
/// use kiln_ir::{Array, BinaryOp, DType, Graph, Op, TensorType};
/// use kiln_jit::Executable;
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[2]));
/// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
/// g.set_outputs(vec![y]);
/// let exe = Executable::new(g).unwrap();
/// let out = exe.run(&[Array::from_vec(vec![3.0f32, 4.0], &[2]).unwrap()], &[]).unwrap();
/// assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![9.0, 16.0]);
/// assert!(exe.run(&[], &[]).is_err());
/// ```
pub struct Executable {
    graph: Graph,
    steps: Vec<ScheduleStep>,
    outputs: Vec<OutSrc>,
    arena_bytes: usize,
    fallbacks: Vec<Fallback>,
    groups: Vec<rows::RowGroup>,
    /// The Variables whose new value may be written over the old, and the outputs chosen
    /// before such a call starts (`in_place.rs`).
    in_place: Box<in_place::InPlace>,
    states: Pool<call::CallState>,
    /// Whether calls take the direct path (`direct.rs`): no call state needed.
    direct: bool,
    pool: Arc<ThreadPool>,
    options: Options,
}

impl Executable {
    /// Compiles `graph` with the default [`Options`].
    pub fn new(graph: Graph) -> Result<Executable> {
        Executable::with_options(graph, Options::default())
    }

    /// Compiles every fused node (a node whose kernel fails to compile runs in the
    /// interpreter and is listed by [`Executable::fallbacks`]) and lays out the schedule
    /// from `graph.plan`, or from a trivial plan if the graph has none.
    pub fn with_options(graph: Graph, options: Options) -> Result<Executable> {
        build::build(graph, options)
    }

    /// One compiled kernel as an executable: its operands are the inputs, its value the one
    /// output. The single path by which eager mode compiles an op (`Kernel::of_op`). `Err` if
    /// the kernel does not compile (no interpreter fallback hides behind it).
    ///
    /// ```
    /// use kiln_ir::{Array, DType, Kernel, Op, TensorType, UnaryOp};
    /// let k = Kernel::of_op(&Op::Unary(UnaryOp::Neg), &[TensorType::new(DType::F32, &[2])]).unwrap();
    /// let exe = kiln_jit::Executable::for_kernel(k).unwrap();
    /// let out = exe.run(&[Array::from_vec(vec![1.0f32, -2.0], &[2]).unwrap()], &[]).unwrap();
    /// assert_eq!(out.outputs[0].as_slice::<f32>().unwrap(), &[-1.0, 2.0]);
    /// ```
    pub fn for_kernel(kernel: kiln_ir::Kernel) -> Result<Executable> {
        let operands: Vec<TensorType> = kernel.body.inputs().iter().map(|&i| kernel.body.node(i).ty.clone()).collect();
        let mut g = Graph::new("kernel");
        let args: Vec<_> = operands.into_iter().map(|t| g.add_input(t)).collect();
        // `add` checks the kernel (one output, operands of its inputs' types) and types the node.
        let node = g.add(kiln_ir::Op::Fused(Arc::new(kernel)), &args)?;
        g.set_outputs(vec![node]);
        let exe = Executable::new(g)?;
        match exe.fallbacks().first() {
            None => Ok(exe),
            Some(f) => Err(kiln_ir::Error::Compile(f.reason.clone())),
        }
    }

    /// Runs one call with `interp::run`'s semantics: inputs checked against the graph's
    /// signature, variables bound to `vars` (indexed by `VarId`), reads after a write in the
    /// same call see it, and `writes` returned for the caller to commit on success.
    pub fn run(&self, inputs: &[Array], vars: &[Array]) -> Result<Outcome> {
        let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
        self.run_into(inputs, vars, &mut out)?;
        Ok(out)
    }

    /// [`Executable::run`] into an existing outcome: output tensors that the caller no
    /// longer shares (and that have the right type) are overwritten in place, so a steady
    /// state of calls allocates nothing. On `Err` the contents of `out` are unspecified.
    pub fn run_into(&self, inputs: &[Array], vars: &[Array], out: &mut Outcome) -> Result<()> {
        let inputs: SmallVec<[&Array; 8]> = inputs.iter().collect();
        call::run(self, &inputs, vars, out, None)
    }

    /// [`Executable::run_into`] on borrowed inputs: a caller holding its arguments behind
    /// other handles (kiln's `Tensor`s) binds them without cloning a single array.
    ///
    /// ```
    /// use kiln_ir::{interp::Outcome, Array, BinaryOp, DType, Graph, Op, TensorType};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[]));
    /// let y = g.add(Op::Binary(BinaryOp::Add), &[x, x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// let exe = kiln_jit::Executable::new(g).unwrap();
    /// let a = Array::scalar(2.0f32);
    /// let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
    /// exe.run_borrowed(&[&a], &[], &mut out).unwrap();
    /// assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![4.0]);
    /// ```
    pub fn run_borrowed(&self, inputs: &[&Array], vars: &[Array], out: &mut Outcome) -> Result<()> {
        call::run(self, inputs, vars, out, None)
    }

    /// [`Executable::run_borrowed`] with the Variables' arrays handed over: if every
    /// Variable of [`Executable::updates_in_place`] has an unshared array, their new values
    /// are written over the old buffers, and the writes in `out` are those same arrays.
    /// Otherwise the call runs as `run_borrowed` does. Either way `vars` is unchanged if the
    /// call fails, and the caller commits the writes on success.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kiln_ir::{interp::Outcome, Array, BinaryOp, DType, Graph, Kernel, Op, TensorType};
    /// // w <- w * w, as one compiled kernel.
    /// let ty = TensorType::new(DType::F32, &[2]);
    /// let mut g = Graph::new("step");
    /// let v = g.declare_var("w", ty.clone());
    /// let w = g.add_read_var(v).unwrap();
    /// let k = Kernel::of_op(&Op::Binary(BinaryOp::Mul), &[ty.clone(), ty]).unwrap();
    /// let w2 = g.add(Op::Fused(Arc::new(k)), &[w, w]).unwrap();
    /// g.add(Op::AssignVar(v), &[w2]).unwrap();
    /// let exe = kiln_jit::Executable::new(g).unwrap();
    /// assert_eq!(exe.updates_in_place(), &[0]);
    ///
    /// let mut a = Array::from_vec(vec![3.0f32, 4.0], &[2]).unwrap();
    /// let before = a.as_slice::<f32>().unwrap().as_ptr();
    /// let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
    /// exe.run_updating(&[], &mut [&mut a], &mut out).unwrap();
    /// let new = &out.writes[0].1;
    /// assert_eq!(new.to_vec::<f32>().unwrap(), vec![9.0, 16.0]);
    /// assert_eq!(new.as_slice::<f32>().unwrap().as_ptr(), before); // the same buffer
    ///
    /// // A shared array is left alone: the new value goes to a fresh buffer.
    /// let mut b = Array::from_vec(vec![3.0f32, 4.0], &[2]).unwrap();
    /// let held = b.clone();
    /// exe.run_updating(&[], &mut [&mut b], &mut out).unwrap();
    /// assert_eq!(out.writes[0].1.to_vec::<f32>().unwrap(), vec![9.0, 16.0]);
    /// assert_eq!(held.to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    /// ```
    pub fn run_updating(&self, inputs: &[&Array], vars: &mut [&mut Array], out: &mut Outcome) -> Result<()> {
        let donors: SmallVec<[*mut u8; 4]> = self
            .in_place
            .vars
            .iter()
            .map_while(|&v| vars.get_mut(v).and_then(|a| a.data_mut()).map(call::data_ptr))
            .collect();
        let shared: SmallVec<[&Array; 8]> = vars.iter().map(|a| &**a).collect();
        let donors = if donors.len() == self.in_place.vars.len() { &donors[..] } else { &[] };
        call::run_donating(self, inputs, &shared, donors, out, None)
    }

    /// The Variables (by `VarId`) whose new value [`Executable::run_updating`] may write
    /// over the old one, ascending (`in_place.rs` says when).
    pub fn updates_in_place(&self) -> &[usize] {
        &self.in_place.vars
    }

    /// A call on the direct path (see [`Executable::is_direct`]) writing output `j` into
    /// `outs[j]` in place: a computed output into its array's buffer, which must be unshared
    /// and of the output's type; an output that is an input or a constant by replacing the
    /// array. `Ok(false)`, with nothing written, if the executable is not direct or some
    /// computed output's array does not fit; `Err` if the inputs do not match the signature.
    ///
    /// ```
    /// use kiln_ir::{Array, DType, Kernel, Op, TensorType, UnaryOp};
    /// let k = Kernel::of_op(&Op::Unary(UnaryOp::Square), &[TensorType::new(DType::F32, &[])]).unwrap();
    /// let exe = kiln_jit::Executable::for_kernel(k).unwrap();
    /// let mut y = Array::scalar(0.0f32);
    /// assert!(exe.run_in_place(&[&Array::scalar(2.0f32)], &mut [&mut y]).unwrap());
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![4.0]);
    /// let shared = y.clone();
    /// assert!(!exe.run_in_place(&[&Array::scalar(3.0f32)], &mut [&mut y]).unwrap());
    /// assert_eq!(shared.to_vec::<f32>().unwrap(), vec![4.0]);
    /// ```
    pub fn run_in_place(&self, inputs: &[&Array], outs: &mut [&mut Array]) -> Result<bool> {
        if !self.direct {
            return Ok(false);
        }
        call::check_signature(self, inputs, &[])?;
        Ok(direct::run_in_place(self, inputs, outs))
    }

    /// Runs one call like [`Executable::run`] and reports where its time went: the
    /// schedule of [`Executable::schedule_text`] with each node's wall time, slowest first
    /// in a summary (a row group's time is under its first node).
    ///
    /// ```
    /// use kiln_ir::{Array, DType, Graph, Op, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[3]));
    /// let y = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// let exe = kiln_jit::Executable::new(g).unwrap();
    /// let report = exe.profile(&[Array::from_vec(vec![0.0f32, 1.0, 2.0], &[3]).unwrap()], &[]).unwrap();
    /// assert!(report.contains("%1 = exp"));
    /// ```
    pub fn profile(&self, inputs: &[Array], vars: &[Array]) -> Result<String> {
        let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
        let mut times = Vec::with_capacity(self.steps.len());
        let inputs: SmallVec<[&Array; 8]> = inputs.iter().collect();
        call::run(self, &inputs, vars, &mut out, Some(&mut times))?;
        let total: std::time::Duration = times.iter().sum();
        let text = self.schedule_text();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('%')).collect();
        let mut s = format!("# {}: {:.3} ms in {} nodes\n", self.graph.name(), total.as_secs_f64() * 1e3, lines.len());
        let mut order: Vec<usize> = (0..times.len()).collect();
        order.sort_by(|&a, &b| times[b].cmp(&times[a]));
        for &i in order.iter().take_while(|&&i| !times[i].is_zero()) {
            let share = times[i].as_secs_f64() / total.as_secs_f64().max(1e-12) * 100.0;
            let _ = writeln!(s, "{:>9.1} us {share:>5.1}%  {}", times[i].as_secs_f64() * 1e6, lines[i]);
        }
        Ok(s)
    }

    /// Whether calls take the direct path: the graph is only inputs, constants and kernels
    /// each writing an output, all small enough to run on the calling thread, so a call
    /// needs no per-call state and takes well under a microsecond plus its kernels' work.
    ///
    /// ```
    /// use kiln_ir::{BinaryOp, DType, Graph, Kernel, Op, TensorType, UnaryOp};
    /// let small = TensorType::new(DType::F32, &[4]);
    /// let k = Kernel::of_op(&Op::Unary(UnaryOp::Exp), &[small.clone()]).unwrap();
    /// assert!(kiln_jit::Executable::for_kernel(k).unwrap().is_direct());
    ///
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(small);
    /// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap(); // unfused: a library node
    /// g.set_outputs(vec![y]);
    /// assert!(!kiln_jit::Executable::new(g).unwrap().is_direct());
    /// ```
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Whether output `j` is computed into a buffer of its own: `false` for an output that
    /// is an input, a constant or the same node as an earlier output (it shares that
    /// value), or if there is no output `j`.
    ///
    /// ```
    /// use kiln_ir::{DType, Graph, Op, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[3]));
    /// let y = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    /// g.set_outputs(vec![y, x]);
    /// let exe = kiln_jit::Executable::new(g).unwrap();
    /// assert_eq!((exe.computes_output(0), exe.computes_output(1)), (true, false));
    /// ```
    pub fn computes_output(&self, j: usize) -> bool {
        match self.outputs.get(j) {
            Some(&OutSrc::Step(i)) => !matches!(self.steps[i].mode, Mode::Input(_) | Mode::Const(_)),
            Some(OutSrc::Same(_)) | None => false,
        }
    }

    /// Fused nodes running in the interpreter, with why.
    pub fn fallbacks(&self) -> &[Fallback] {
        &self.fallbacks
    }

    /// The graph being run.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Bytes of one call's arena.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Writes each kernel's Cranelift IR as `<fn_name>.kernelNN.clif` (and its disassembly
    /// as `<fn_name>.kernelNN.disasm` where available) and the schedule, with each node's
    /// mode, as `<fn_name>.exec.txt`, into `dir` (created if missing).
    pub fn dump(&self, dir: impl AsRef<Path>, fn_name: &str) -> Result<()> {
        crate::dump::write(dir.as_ref(), fn_name, self)
    }

    /// The schedule as text, one node per line with its mode (the `.exec.txt` dump).
    pub fn schedule_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# {}: {} nodes, arena {} bytes, {} threads",
            self.graph.name(),
            self.steps.len(),
            self.arena_bytes,
            self.pool.threads()
        );
        for (i, st) in self.steps.iter().enumerate() {
            let node = self.graph.node(st.node);
            let args: Vec<String> = st.args.iter().map(|a| format!("%{a}")).collect();
            let mode = match &st.mode {
                Mode::Input(i) => format!("source input {i}"),
                Mode::Const(_) => "source const".into(),
                Mode::ReadVar(v) => format!("var read @{v}"),
                Mode::AssignVar(v) => format!("var write @{v}"),
                Mode::Kernel { number, kernel } => {
                    format!("kernel{number:02} (cost {}/element)", kernel.cost_per_element())
                }
                Mode::Gemm(m) => gemm_mode(m),
                Mode::GemmUpdate(u) => {
                    // beta as the product's type holds it (an f32 0.01 is not f64's).
                    let beta = if u.shape.dtype == kiln_ir::DType::F32 {
                        (u.beta as f32).to_string()
                    } else {
                        u.beta.to_string()
                    };
                    format!("{}, computing %{} = %{} + {beta}·product", gemm_mode(&u.shape), u.into, st.args[2])
                }
                Mode::Computed(j) => format!("computed by %{j}"),
                Mode::Elided => "elided (read transposed by gemm)".into(),
                Mode::View => "view".into(),
                Mode::Library => "library (interp::eval)".into(),
                Mode::Fallback(why) => format!("INTERPRETER FALLBACK ({why})"),
                Mode::Region(r) => {
                    let sizes: Vec<String> = r.bodies.iter().map(|b| format!("{} steps", b.steps.len())).collect();
                    let how = if r.native.is_some() { "native loop" } else { "region" };
                    format!("{how} ({})", sizes.join(", "))
                }
                Mode::Get(i) => format!("result {i}"),
            };
            let dest = match st.dest {
                Dest::None => String::new(),
                Dest::Slot(o) => format!(" -> arena+{o}"),
                Dest::Output(j) => format!(" -> output {j}"),
                Dest::Block(o) => format!(" -> block+{o}"),
                Dest::Fresh => " -> fresh buffer".into(),
                Dest::Var(v) => format!(" -> over var @{v} when handed over, else fresh buffer"),
            };
            if let Some(g) = self.groups.iter().find(|g| g.start == i) {
                let _ = writeln!(
                    s,
                    "# row group %{}..%{}: {} rows in blocks of {}, block buffers {} bytes per thread",
                    g.start,
                    g.end - 1,
                    g.rows,
                    g.block_rows,
                    g.scratch_per_thread
                );
            }
            let _ = writeln!(
                s,
                "%{i} = {}({}) : {}{:?} [{}]{dest}",
                node.op.name(),
                args.join(", "),
                st.ty.dtype,
                st.ty.shape.as_slice(),
                mode
            );
        }
        let outs: Vec<String> = self
            .outputs
            .iter()
            .map(|o| match o {
                OutSrc::Step(i) => format!("%{i}"),
                OutSrc::Same(j) => format!("output {j}"),
            })
            .collect();
        let _ = writeln!(s, "outputs: {}", outs.join(", "));
        s
    }

    /// The compiled kernels, in schedule order.
    pub(crate) fn kernels(&self) -> impl Iterator<Item = (usize, &CompiledKernel)> {
        self.steps.iter().filter_map(|s| match &s.mode {
            Mode::Kernel { kernel, number } => Some((*number, &**kernel)),
            _ => None,
        })
    }
}

/// A product's mode in the dump: `gemm MxKxN batch B`, and which operand gemm reads transposed.
fn gemm_mode(m: &MatMulShape) -> String {
    let t = |on: bool, side: &str| if on { format!(", {side} transposed") } else { String::new() };
    format!(
        "gemm {}x{}x{} batch {}{}{}",
        m.m,
        m.k,
        m.n,
        m.batch,
        t(m.lhs_transposed, "lhs"),
        t(m.rhs_transposed, "rhs")
    )
}
