//! Register allocation for a loop body: one pass over the straight-line instructions,
//! each value given the lowest free register of its class when it is made and its register
//! freed after its last use. No spilling: a body that needs more registers than the ISA has
//! is left to Cranelift.

use super::vir::{Inst, Vir};

/// Registers each class may use.
pub(crate) struct Budget {
    /// Vector registers (AVX-512: zmm0–31; AVX2: ymm0–14, ymm15 holds the tail mask).
    pub vectors: usize,
    /// Mask registers (AVX-512: k2–k7, k1 holds the tail mask; AVX2: none, masks are vectors).
    pub masks: usize,
}

/// Each value's register: an index into its class (`k2 + r` for AVX-512 masks), or `None`
/// when the body needs more registers than `budget` allows.
pub(crate) fn allocate(vir: &Vir, budget: &Budget) -> Option<Vec<usize>> {
    let n = vir.insts.len();
    // Last reader of each value; the roots are read by the stores after the body.
    let mut last = (0..n).collect::<Vec<_>>();
    for (i, inst) in vir.insts.iter().enumerate() {
        for v in inst.operands() {
            last[v] = last[v].max(i);
        }
    }
    for &r in &vir.roots {
        last[r] = n;
    }
    let in_masks = |inst: &Inst| vir.avx512 && inst.is_mask();
    let mut free_vec: Vec<bool> = vec![true; budget.vectors];
    let mut free_mask: Vec<bool> = vec![true; budget.masks];
    let mut reg = vec![usize::MAX; n];
    for (i, inst) in vir.insts.iter().enumerate() {
        // Operands read for the last time free their registers first: the result may take
        // one (every instruction form reads its sources before it writes; `encode` orders
        // its moves so).
        let mut ops = inst.operands();
        ops.sort_unstable();
        ops.dedup();
        for v in ops {
            if last[v] == i {
                let pool = if in_masks(&vir.insts[v]) { &mut free_mask } else { &mut free_vec };
                pool[reg[v]] = true;
            }
        }
        let pool = if in_masks(inst) { &mut free_mask } else { &mut free_vec };
        let r = pool.iter().position(|&f| f)?;
        pool[r] = false;
        reg[i] = r;
        if last[i] == i {
            // Never read: the register is free again after the write.
            pool[r] = true;
        }
    }
    Some(reg)
}
