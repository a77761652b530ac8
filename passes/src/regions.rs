//! Optimizing inside region bodies: every body of every `case`, `while`, `scan` and
//! `while_grad` goes through the whole default pipeline (folding, simplification, CSE,
//! DCE, hoisting, fusion and a memory plan of its own), bodies of bodies included.

use kiln_ir::{Graph, NodeId, Region, Result};

use crate::pass::{Changed, Pass};
use crate::pipeline::Pipeline;

/// Runs [`Pipeline::default`] on each region body (without dumps: the body shows inside the
/// enclosing graph's dump).
///
/// ```
/// use kiln_ir::{Graph, Op};
/// use kiln_passes::{OptimizeRegions, Pass};
/// let mut g = Graph::from_text(
///     "graph @f(%0: f32[]) -> (%2)
///        %1 = while %0 {carries=1} : bool[0] {
///          graph @c(%0: f32[]) -> (%2)
///            %1 = const [10.0] : f32[]
///            %2 = less %0, %1 : bool[]
///        } {
///          graph @b(%0: f32[]) -> (%3)
///            %1 = const [1.0] : f32[]
///            %2 = mul %0, %1 : f32[]
///            %3 = add %2, %1 : f32[]
///        }
///        %2 = get %1 {index=0} : f32[]",
/// )
/// .unwrap();
/// let c = OptimizeRegions.run(&mut g).unwrap();
/// assert_eq!(c.get("bodies_optimized"), 1);
/// assert!(c.get("body_nodes_removed") >= 1); // x * 1 is gone
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OptimizeRegions;

impl Pass for OptimizeRegions {
    fn name(&self) -> &str {
        "regions"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let mut c = Changed::none();
        let regions: Vec<NodeId> = g.node_ids().filter(|&id| !g.node(id).op.regions().is_empty()).collect();
        for id in regions {
            let mut before = 0;
            let mut after = 0;
            let op = g.node(id).op.map_regions(|r| {
                let mut graph = r.graph.clone();
                before += graph.len();
                Pipeline::default().dump_dir(None).run(&mut graph)?;
                after += graph.len();
                Ok(Region { graph, vars: r.vars.clone() })
            })?;
            g.node_mut(id).op = op;
            c.count("bodies_optimized", 1);
            c.count("body_nodes_removed", before.saturating_sub(after));
        }
        Ok(c)
    }
}
