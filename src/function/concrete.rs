//! One traced signature of a function: its graph as traced, the optimized graph, the
//! Variables it binds, and how it runs.

use kiln_ir::{interp, Array, Graph};

use crate::trace::TraceState;
use crate::variable::Variable;
use crate::{Result, Tensor};

/// How a traced graph runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter on the graph as traced (no passes): slow, obviously right.
    Interpreter,
    /// The optimized graph, compiled by the Cranelift JIT.
    Compiled,
}

impl Backend {
    /// `KILN_BACKEND=interpreter` selects the interpreter for every function by default.
    pub(crate) fn from_env() -> Backend {
        match std::env::var("KILN_BACKEND") {
            Ok(v) if v.eq_ignore_ascii_case("interpreter") => Backend::Interpreter,
            _ => Backend::Compiled,
        }
    }
}

/// Where and under which name a trace writes its dumps.
pub(crate) struct Dump<'a> {
    pub(crate) dir: &'a std::path::Path,
    pub(crate) stem: &'a str,
}

impl Dump<'_> {
    fn write(&self, stage: &str, g: &Graph) -> Result<()> {
        std::fs::create_dir_all(self.dir)?;
        let path = |ext: &str| self.dir.join(format!("{}.{stage}.{ext}", self.stem));
        std::fs::write(path("txt"), g.to_text())?;
        std::fs::write(path("dot"), g.to_dot())?;
        Ok(())
    }
}

/// A function specialized to one input signature.
pub struct ConcreteFunction {
    traced: Graph,
    optimized: Graph,
    vars: Vec<Variable>,
    backend: Backend,
}

impl ConcreteFunction {
    pub(crate) fn new(
        mut state: TraceState,
        outputs: Vec<Tensor>,
        backend: Backend,
        dump: Option<Dump>,
    ) -> Result<ConcreteFunction> {
        let nodes = outputs.iter().map(|t| state.node_of(t)).collect::<Result<Vec<_>>>()?;
        state.graph.set_outputs(nodes);
        let traced = state.graph;
        traced.verify()?;
        if let Some(d) = &dump {
            d.write("00.traced", &traced)?;
        }
        let optimized = traced.clone();
        Ok(ConcreteFunction { traced, optimized, vars: state.vars, backend })
    }

    /// The graph exactly as traced.
    pub fn traced(&self) -> &Graph {
        &self.traced
    }

    /// The graph after the optimization passes.
    pub fn optimized(&self) -> &Graph {
        &self.optimized
    }

    /// The Variables the graph reads or writes, in `VarId` order.
    pub fn variables(&self) -> &[Variable] {
        &self.vars
    }

    /// Runs with concrete arguments; commits Variable writes only on success.
    pub(crate) fn run(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        let inputs = args.iter().map(|t| t.try_array("call").cloned()).collect::<Result<Vec<Array>>>()?;
        let values: Vec<Array> = self.vars.iter().map(Variable::value).collect();
        let outcome = match self.backend {
            Backend::Interpreter => interp::run(&self.traced, &inputs, &values),
            Backend::Compiled => interp::run(&self.optimized, &inputs, &values),
        }?;
        for (id, value) in outcome.writes {
            self.vars[id as usize].commit(value);
        }
        Ok(outcome.outputs.into_iter().map(Tensor::from_array).collect())
    }
}
