//! Products added into a Variable's update. An optimizer step writes `w - lr · g` for each
//! weight, and a dense layer's weight gradient `g` is a product (`xᵀ @ dz`): computed as a
//! product into the arena and then a kernel reading `w` and `g` and writing the new `w`, the
//! update is a pass over three weight-sized buffers of its own. gemm can add its product
//! into the destination as it stores it (`kiln_ir::matmul::gemm_batched_update`), so the
//! product step writes `w + beta · (xᵀ @ dz)` straight into the update's destination and the
//! kernel has nothing left to do.
//!
//! The plan fuses a product step `j` into a kernel step `i` when:
//! - the kernel computes `acc ± c · p` or `acc ± p` (either operand order) from two operands,
//!   with `p` the product, `c` a scalar constant and `acc`, `p` and the result of one type
//!   (no broadcast);
//! - the kernel is the product's only reader, and the kernel's own value goes to a Variable
//!   write (`Dest::Fresh`, or later `Dest::Var` in place): a buffer no other step touches
//!   between `j` and `i`;
//! - `acc` is computed before `j`. Its buffer stays live until `i`, its last reader.
//!
//! The memory plan gives neither the product nor the update a slot (it recognizes the same
//! kernels, `kiln_ir::matmul::added_product`); a product the plan here declines gets a slot
//! of its own past the arena.
//!
//! The product then runs at `j`, into the kernel's destination (copying `acc` there first
//! unless it is already there: a Variable updated in place), and the kernel step `i` takes
//! that value (`Mode::Computed`). Rounding: gemm forms `acc + beta · p` from the unrounded
//! sum `p`, where the kernel rounded `p` first (`an_update_adds_beta_times_the_product`).

use kiln_ir::matmul::added_product;
use kiln_ir::{Graph, Op};

use super::{Dest, GemmUpdate, Mode, ScheduleStep};

/// Fuses every product the module docs allow into its update kernel.
pub(super) fn plan(g: &Graph, steps: &mut [ScheduleStep]) {
    for i in 0..steps.len() {
        let Some((acc, product, beta)) = update_of(g, steps, i) else { continue };
        let Mode::Gemm(shape) = &steps[product].mode else { continue };
        let readers = steps.iter().filter(|s| s.args.contains(&product)).count();
        // A product written to a graph output has a reader the schedule does not list.
        let only_reader = readers == 1 && matches!(steps[product].dest, Dest::Slot(_));
        if !only_reader || steps[i].dest != Dest::Fresh || acc >= product || shape.dtype != steps[i].ty.dtype {
            continue;
        }
        let shape = shape.clone();
        let mut args = steps[product].args.clone();
        args.push(acc);
        steps[product].mode = Mode::GemmUpdate(Box::new(GemmUpdate { shape, beta, into: i }));
        steps[product].args = args;
        steps[product].dest = Dest::None;
        steps[i].mode = Mode::Computed(product);
        steps[i].args = vec![product];
    }
}

/// For a kernel step computing `acc + beta · p` from a product `p`: the schedule indices of
/// `acc` and of the product step, and `beta`.
fn update_of(g: &Graph, steps: &[ScheduleStep], i: usize) -> Option<(usize, usize, f64)> {
    let step = &steps[i];
    let Mode::Kernel { .. } = step.mode else { return None };
    let Op::Fused(kernel) = &g.node(step.node).op else { return None };
    let is_product = |k: usize| step.args.get(k).is_some_and(|&a| matches!(steps[a].mode, Mode::Gemm(_)));
    let (acc, p, beta) = added_product(kernel, is_product)?;
    Some((step.args[acc], step.args[p], beta))
}
