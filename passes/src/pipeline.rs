//! The pipeline: passes in order, some repeated to a fixed point, with the verifier and
//! dumps after every pass.

use std::fmt;
use std::path::{Path, PathBuf};

use kiln_ir::{Error, Graph, Result};

use crate::const_fold::ConstFold;
use crate::cse::Cse;
use crate::dce::Dce;
use crate::fuse::Fuse;
use crate::hoist::HoistInvariants;
use crate::inline_case::InlineCase;
use crate::memory_plan::MemoryPlanner;
use crate::pass::{Changed, Pass};
use crate::regions::OptimizeRegions;
use crate::simplify::Simplify;

/// One entry of a pipeline.
pub enum Step {
    /// A pass run once.
    Once(Box<dyn Pass>),
    /// Passes run in order, round after round, until a whole round changes nothing or
    /// `max_iters` rounds have run.
    FixedPoint { passes: Vec<Box<dyn Pass>>, max_iters: usize },
}

/// What one pass did in one run.
#[derive(Clone, Debug)]
pub struct PassRun {
    /// The pass's name.
    pub pass: String,
    /// What it reported.
    pub stats: Changed,
    /// Node count of the graph before and after the pass (fused bodies count as one node).
    pub nodes_before: usize,
    pub nodes_after: usize,
}

impl fmt::Display for PassRun {
    /// `cse: changed nodes_merged=2 (nodes 10 -> 8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (nodes {} -> {})", self.pass, self.stats, self.nodes_before, self.nodes_after)
    }
}

/// Every pass run of a pipeline, in order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub runs: Vec<PassRun>,
}

impl Report {
    /// The sum of counter `name` over every run of pass `pass`.
    pub fn total(&self, pass: &str, name: &str) -> usize {
        self.runs.iter().filter(|r| r.pass == pass).map(|r| r.stats.get(name)).sum()
    }
}

/// Default cap on the rounds of the fold/simplify/cse/dce loop.
pub const DEFAULT_MAX_ITERS: usize = 8;

/// Passes in order, with verification and dumps.
///
/// The default pipeline is `[const_fold, inline_case, simplify, cse, dce]` repeated until no
/// pass changes the graph (at most [`DEFAULT_MAX_ITERS`] rounds), then `hoist`, `regions`
/// (the same pipeline inside every region body), `fuse`, `dce`,
/// `memory_plan`. The verifier runs after every pass in debug builds or when
/// [`Pipeline::verify`] is on. With a dump directory (the `KILN_DUMP` environment
/// variable, or [`Pipeline::dump_dir`]) every pass writes `<fn>.<nn>.<pass>.txt` and
/// `.dot` (`nn` counts from `00`, the input), and `<fn>.stats.txt` gets one line per pass.
///
/// ```
/// use kiln_ir::{Array, BinaryOp, DType, Graph, Op, TensorType, UnaryOp};
/// use kiln_passes::{Pipeline, Simplify};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[8]));
/// let one = g.add_const(Array::scalar(1.0f32));
/// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, one]).unwrap();
/// let z = g.add(Op::Unary(UnaryOp::Tanh), &[y]).unwrap();
/// g.set_outputs(vec![z]);
///
/// let mut p = Pipeline::default().verify(true);
/// assert!(p.remove("memory_plan"));
/// let report = p.run(&mut g).unwrap();
/// assert_eq!(report.total("simplify", "mul_one"), 1);
/// assert_eq!(report.total("fuse", "kernels_formed"), 1);
/// assert_eq!(g.len(), 2); // x and one kernel computing tanh(x)
///
/// // A custom pipeline: only simplification, then dead-node removal.
/// let mut only = Pipeline::empty();
/// only.push(Simplify).push(kiln_passes::Dce);
/// assert_eq!(only.names(), ["simplify", "dce"]);
/// ```
pub struct Pipeline {
    steps: Vec<Step>,
    verify: bool,
    dump_dir: Option<PathBuf>,
    dump_stem: Option<String>,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        let mut p = Pipeline::empty();
        p.push_fixed_point(
            vec![
                Box::new(ConstFold::default()),
                Box::new(InlineCase),
                Box::new(Simplify),
                Box::new(Cse),
                Box::new(Dce),
            ],
            DEFAULT_MAX_ITERS,
        );
        p.push(HoistInvariants).push(OptimizeRegions).push(Fuse::default()).push(Dce).push(MemoryPlanner);
        p
    }
}

impl Pipeline {
    /// No passes; verification as in [`Pipeline::default`], dumps from `KILN_DUMP`.
    pub fn empty() -> Pipeline {
        let dump_dir = kiln_ir::config::dump_dir();
        Pipeline { steps: Vec::new(), verify: cfg!(debug_assertions), dump_dir, dump_stem: None }
    }

    /// Runs the verifier after every pass (on by default in debug builds).
    pub fn verify(mut self, on: bool) -> Pipeline {
        self.verify = on;
        self
    }

    /// Where to write dumps (`None`: no dumps). Overrides `KILN_DUMP`.
    pub fn dump_dir(mut self, dir: Option<PathBuf>) -> Pipeline {
        self.dump_dir = dir;
        self
    }

    /// The file-name stem of the dumps (default: the graph's name), e.g. `f.sig1` so that
    /// each traced signature of a function gets its own files.
    pub fn dump_stem(mut self, stem: Option<String>) -> Pipeline {
        self.dump_stem = stem;
        self
    }

    /// Appends a pass run once.
    pub fn push(&mut self, pass: impl Pass + 'static) -> &mut Pipeline {
        self.steps.push(Step::Once(Box::new(pass)));
        self
    }

    /// Appends passes repeated in order until a whole round changes nothing, or `max_iters` rounds.
    pub fn push_fixed_point(&mut self, passes: Vec<Box<dyn Pass>>, max_iters: usize) -> &mut Pipeline {
        self.steps.push(Step::FixedPoint { passes, max_iters });
        self
    }

    /// Inserts a pass run once before step `index` (clamped to the end).
    pub fn insert(&mut self, index: usize, pass: impl Pass + 'static) -> &mut Pipeline {
        let i = index.min(self.steps.len());
        self.steps.insert(i, Step::Once(Box::new(pass)));
        self
    }

    /// Removes every pass named `name` (inside fixed-point groups too); whether any was found.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.names().len();
        self.steps.retain_mut(|s| match s {
            Step::Once(p) => p.name() != name,
            Step::FixedPoint { passes, .. } => {
                passes.retain(|p| p.name() != name);
                !passes.is_empty()
            }
        });
        self.names().len() != before
    }

    /// The pass names in order (a fixed-point group's passes once each).
    pub fn names(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| match s {
                Step::Once(p) => vec![p.name().to_string()],
                Step::FixedPoint { passes, .. } => passes.iter().map(|p| p.name().to_string()).collect(),
            })
            .collect()
    }

    /// Runs every step on `g`. On a verifier failure the error names the pass.
    pub fn run(&self, g: &mut Graph) -> Result<Report> {
        let mut run = Run { report: Report::default(), seq: 0, pipeline: self };
        if self.verify {
            g.verify().map_err(|e| Error::Graph(format!("`{}` is invalid before any pass: {e}", g.name())))?;
        }
        run.dump(g, "input", None)?;
        for step in &self.steps {
            match step {
                Step::Once(p) => {
                    run.pass(p.as_ref(), g)?;
                }
                Step::FixedPoint { passes, max_iters } => {
                    for _ in 0..*max_iters {
                        let mut changed = false;
                        for p in passes {
                            changed |= run.pass(p.as_ref(), g)?;
                        }
                        if !changed {
                            break;
                        }
                    }
                }
            }
        }
        Ok(run.report)
    }
}

/// State of one pipeline run.
struct Run<'a> {
    report: Report,
    seq: usize,
    pipeline: &'a Pipeline,
}

impl Run<'_> {
    /// Runs one pass, then verifies, logs and dumps; whether it changed the graph.
    fn pass(&mut self, p: &dyn Pass, g: &mut Graph) -> Result<bool> {
        let nodes_before = g.len();
        let stats = p.run(g)?;
        if self.pipeline.verify {
            g.verify().map_err(|e| Error::Graph(format!("after pass `{}` on `{}`: {e}", p.name(), g.name())))?;
        }
        let run = PassRun { pass: p.name().to_string(), stats, nodes_before, nodes_after: g.len() };
        tracing::debug!(function = g.name(), "{run}");
        self.dump(g, p.name(), Some(&run))?;
        let changed = run.stats.changed;
        self.report.runs.push(run);
        Ok(changed)
    }

    fn dump(&mut self, g: &Graph, stage: &str, run: Option<&PassRun>) -> Result<()> {
        let Some(dir) = &self.pipeline.dump_dir else { return Ok(()) };
        std::fs::create_dir_all(dir)?;
        let base = kiln_ir::dump::file_stem(self.pipeline.dump_stem.as_deref().unwrap_or(g.name()));
        let stem = format!("{base}.{:02}.{stage}", self.seq);
        self.seq += 1;
        std::fs::write(dir.join(format!("{stem}.txt")), g.to_text_with_plan())?;
        std::fs::write(dir.join(format!("{stem}.dot")), g.to_dot())?;
        if let Some(run) = run {
            append_line(&dir.join(format!("{base}.stats.txt")), &format!("{stem}: {run}"))?;
        }
        Ok(())
    }
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(f, "{line}")?;
    Ok(())
}
