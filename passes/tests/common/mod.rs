//! Shared test helpers: a random-program generator and outcome comparison.
#![allow(dead_code)] // each test binary uses a different subset

use kiln_ir::interp::{self, Outcome};
use kiln_ir::{
    Array, BinaryOp, DType, Data, Distribution, Graph, NodeId, Op, ReduceOp, SliceDim, TensorType, UnaryOp, VarId,
};

/// splitmix64: a tiny deterministic generator, so a failing seed replays exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// A float element: mostly ordinary numbers, sometimes the values that break rewrites.
fn float_value(r: &mut Rng) -> f64 {
    match r.below(20) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 | 6 => -0.0,
        4 => 0.0,
        5 => 1.0,
        _ => (r.below(2001) as f64 - 1000.0) / 250.0,
    }
}

fn int_value(r: &mut Rng) -> f64 {
    match r.below(10) {
        0 => 0.0,
        1 => 1.0,
        _ => r.below(41) as f64 - 20.0,
    }
}

/// A random array of type `ty`.
pub fn random_array(r: &mut Rng, ty: &TensorType) -> Array {
    let n = ty.numel();
    let vals: Vec<f64> = (0..n)
        .map(|_| match ty.dtype {
            DType::F32 | DType::F64 => float_value(r),
            DType::Bool => r.below(2) as f64,
            _ => int_value(r),
        })
        .collect();
    let data = match ty.dtype {
        DType::F32 => Data::F32(vals.iter().map(|&v| v as f32).collect()),
        DType::F64 => Data::F64(vals),
        DType::I32 => Data::I32(vals.iter().map(|&v| v as i32).collect()),
        DType::I64 => Data::I64(vals.iter().map(|&v| v as i64).collect()),
        DType::Bool => Data::Bool(vals.iter().map(|&v| v != 0.0).collect()),
    };
    Array::new(data, &ty.shape).expect("length matches")
}

/// A constant that rewrites care about: all ones, all zeros (either sign), or random.
fn random_const(r: &mut Rng, ty: &TensorType) -> Array {
    match r.below(6) {
        0 => Array::full(&ty.shape, ty.dtype, 1.0),
        1 => Array::full(&ty.shape, ty.dtype, 0.0),
        2 if ty.dtype.is_float() => Array::full(&ty.shape, ty.dtype, -0.0),
        _ => random_array(r, ty),
    }
}

/// A random well-typed program, its inputs and its variables' values.
pub struct Program {
    pub graph: Graph,
    pub inputs: Vec<Array>,
    pub vars: Vec<Array>,
}

const SHAPES: &[&[usize]] = &[&[2, 3], &[3], &[1, 3], &[2, 1], &[], &[3, 2], &[2, 3, 2], &[0, 3]];

/// Builds a random program from `seed`: elementwise, broadcast, reshape, transpose,
/// reduce, matmul, slice, concat, select, cast, gather and random ops on values of one main
/// dtype (and the bools and casts that come with it), with constants, repeated
/// subexpressions, and variable reads and writes ordered as the tracer orders them.
/// Every node is added with `Graph::add`, so each is well typed; invalid picks are retried.
pub fn random_program(seed: u64) -> Program {
    let mut r = Rng::new(seed);
    let dtype = r.pick(&[DType::F32, DType::F64, DType::I32, DType::I64, DType::F32]);
    let mut g = Graph::new(format!("rand{seed}"));
    let mut pool: Vec<NodeId> = Vec::new();
    let mut inputs = Vec::new();
    for _ in 0..1 + r.below(3) {
        let ty = TensorType::new(dtype, r.pick(SHAPES));
        inputs.push(random_array(&mut r, &ty));
        pool.push(g.add_input(ty));
    }
    let mut vars = Vec::new();
    let mut last_effect: Vec<Option<NodeId>> = Vec::new();
    let mut reads_since: Vec<Vec<NodeId>> = Vec::new();
    for v in 0..r.below(3) {
        let ty = TensorType::new(dtype, r.pick(&[&[2, 3][..], &[3]]));
        vars.push(random_array(&mut r, &ty));
        g.declare_var(format!("v{v}"), ty);
        last_effect.push(None);
        reads_since.push(Vec::new());
    }
    let steps = 4 + r.below(20);
    let mut tries = 0;
    while g.len() < pool.len().max(1) + steps && tries < 400 {
        tries += 1;
        let added = match r.below(100) {
            0..=4 if !vars.is_empty() => {
                let v = r.below(vars.len()) as VarId;
                let id = g.add_read_var(v).expect("declared");
                if let Some(w) = last_effect[v as usize] {
                    g.add_order(w, id);
                }
                reads_since[v as usize].push(id);
                Some(id)
            }
            5..=8 if !vars.is_empty() => {
                let v = r.below(vars.len());
                let val = r.pick(&pool);
                let ok = g.node(val).ty == g.vars()[v].ty;
                ok.then(|| {
                    let id = g.add(Op::AssignVar(v as VarId), &[val]).expect("typed");
                    if let Some(w) = last_effect[v] {
                        g.add_order(w, id);
                    }
                    for rd in std::mem::take(&mut reads_since[v]) {
                        g.add_order(rd, id);
                    }
                    last_effect[v] = Some(id);
                    id
                })
            }
            9..=14 => {
                let ty = TensorType::new(dtype, r.pick(&[&[][..], &[1], &[3], &[2, 3], &[1, 3]]));
                Some(g.add_const(random_const(&mut r, &ty)))
            }
            15..=18 => {
                // Repeat an earlier node on the same operands (CSE material).
                let src = r.pick(&pool);
                let op = g.node(src).op.clone();
                let args = g.args(src);
                match op {
                    Op::Input(_) | Op::ReadVar(_) | Op::AssignVar(_) => None,
                    Op::Random { .. } => {
                        let ty = g.node(src).ty.clone();
                        let counter = args.first().copied();
                        if let Op::Random { dist, seed } = op {
                            g.add_random(dist, seed, ty, counter).ok()
                        } else {
                            None
                        }
                    }
                    _ => g.add(op, &args).ok(),
                }
            }
            19..=20 if dtype.is_float() => {
                let shape = r.pick(SHAPES);
                let dist = r.pick(&[Distribution::Uniform, Distribution::Normal]);
                g.add_random(dist, r.below(4) as u64, TensorType::new(dtype, shape), None).ok()
            }
            _ => random_op(&mut r, &mut g, &pool, dtype),
        };
        if let Some(id) = added {
            if !matches!(g.node(id).op, Op::AssignVar(_)) {
                pool.push(id);
            }
        }
    }
    // The last value and a few random ones, so most of the program is live.
    let mut outputs: Vec<NodeId> = vec![*pool.last().expect("inputs")];
    for _ in 0..r.below(5) {
        outputs.push(r.pick(&pool));
    }
    g.set_outputs(outputs);
    Program { graph: g, inputs, vars }
}

/// One random op on values from `pool`; `None` if the pick was ill-typed.
fn random_op(r: &mut Rng, g: &mut Graph, pool: &[NodeId], dtype: DType) -> Option<NodeId> {
    let a = r.pick(pool);
    let b = r.pick(pool);
    let ta = g.node(a).ty.clone();
    let rank = ta.shape.len();
    let op = match r.below(16) {
        0..=3 => {
            let ops: Vec<BinaryOp> = BinaryOp::ALL
                .into_iter()
                .filter(|o| o.accepts(ta.dtype) && !(*o == BinaryOp::Div && ta.dtype.is_int()))
                .collect();
            Op::Binary(r.pick(&ops))
        }
        4..=6 => {
            let ops: Vec<UnaryOp> = UnaryOp::ALL.into_iter().filter(|o| o.accepts(ta.dtype)).collect();
            if ops.is_empty() {
                return None;
            }
            Op::Unary(r.pick(&ops))
        }
        7 => {
            let c = r.pick(pool);
            return g.add(Op::Select, &[c, a, b]).ok();
        }
        8 => Op::Cast(r.pick(&[dtype, DType::F64, DType::I32, DType::Bool])),
        9 => Op::BroadcastTo(r.pick(&[&[2, 3][..], &[2, 2, 3], &[3, 3]]).into()),
        10 => {
            let mut dims: Vec<usize> = ta.shape.to_vec();
            if r.chance(50) {
                dims.reverse();
            } else {
                dims = vec![ta.numel()];
            }
            Op::Reshape(dims.into())
        }
        11 => {
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.rotate_left(if rank > 0 { r.below(rank) } else { 0 });
            if r.chance(30) {
                perm.reverse();
            }
            Op::Transpose(perm)
        }
        12 => {
            if rank == 0 {
                return None;
            }
            let axes: Vec<usize> = (0..rank).filter(|_| r.chance(60)).collect();
            let op = r.pick(&ReduceOp::ALL);
            Op::Reduce { op, axes, keepdims: r.chance(50) }
        }
        13 => {
            // matmul of two reshaped values: an outer product, or a dot product when sizes agree.
            let nb = g.node(b).ty.numel();
            let (ls, rs) =
                if ta.numel() == nb && r.chance(50) { ([1, nb], [nb, 1]) } else { ([ta.numel(), 1], [1, nb]) };
            let lhs = g.add(Op::Reshape(ls[..].into()), &[a]).ok()?;
            let rhs = g.add(Op::Reshape(rs[..].into()), &[b]).ok()?;
            return g.add(Op::MatMul, &[lhs, rhs]).ok();
        }
        14 => {
            if rank == 0 {
                return None;
            }
            let dims = ta
                .shape
                .iter()
                .map(|&d| {
                    if d == 0 {
                        SliceDim::full(0)
                    } else if r.chance(50) {
                        SliceDim { start: d - 1, step: -1, len: d }
                    } else {
                        SliceDim { start: r.below(d), step: 1, len: 1 }
                    }
                })
                .collect();
            Op::Slice(dims)
        }
        _ => {
            if rank == 0 {
                return None;
            }
            return g.add(Op::Concat { axis: r.below(rank) }, &[a, b]).ok();
        }
    };
    // Half the binary ops get a constant operand: the material of the algebraic rules.
    let b = if matches!(op, Op::Binary(_)) && r.chance(50) {
        let shape = if r.chance(50) { ta.shape.clone() } else { Default::default() };
        let c = g.add_const(random_const(r, &TensorType { dtype: ta.dtype, shape }));
        if r.chance(50) {
            return g.add(op, &[c, a]).ok();
        }
        c
    } else {
        b
    };
    let args: &[NodeId] = if matches!(op, Op::Binary(_)) { &[a, b] } else { &[a] };
    g.add(op, args).ok()
}

/// Exact comparison of two values: same dtype, shape and bits, except that any NaN
/// equals any NaN (a NaN's payload is not part of kiln's semantics).
pub fn same_array(x: &Array, y: &Array) -> bool {
    if x.dtype() != y.dtype() || x.shape() != y.shape() {
        return false;
    }
    match (x.data(), y.data()) {
        (Data::F32(a), Data::F32(b)) => {
            a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        }
        (Data::F64(a), Data::F64(b)) => {
            a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        }
        _ => x.bits_eq(y),
    }
}

/// Panics with both values if two outcomes differ.
pub fn assert_same_outcome(before: &Outcome, after: &Outcome, what: &str) {
    assert_eq!(before.outputs.len(), after.outputs.len(), "{what}: number of outputs");
    for (i, (x, y)) in before.outputs.iter().zip(&after.outputs).enumerate() {
        assert!(same_array(x, y), "{what}: output {i} differs:\nbefore {x:?}\nafter  {y:?}");
    }
    let mut wb = before.writes.clone();
    let mut wa = after.writes.clone();
    wb.sort_by_key(|w| w.0);
    wa.sort_by_key(|w| w.0);
    assert_eq!(wb.len(), wa.len(), "{what}: number of variable writes");
    for ((vb, xb), (va, xa)) in wb.iter().zip(&wa) {
        assert_eq!(vb, va, "{what}: written variables");
        assert!(same_array(xb, xa), "{what}: write of variable {vb} differs:\nbefore {xb:?}\nafter  {xa:?}");
    }
}

/// Runs `g` on the program's inputs and variables.
pub fn run(g: &Graph, p: &Program) -> kiln_ir::Result<Outcome> {
    interp::run(g, &p.inputs, &p.vars)
}

/// Checks the fused-body contract of every kernel: inputs, constants, elementwise ops,
/// and at most one reduction, which must be the single output.
pub fn check_kernels(g: &Graph) {
    for id in g.node_ids() {
        let Op::Fused(k) = &g.node(id).op else { continue };
        let body = &k.body;
        assert_eq!(body.outputs().len(), 1, "a kernel has one output");
        let out = body.outputs()[0];
        for n in body.node_ids() {
            let op = &body.node(n).op;
            let ok = match op {
                Op::Input(_) | Op::Const(_) => true,
                Op::Reduce { .. } | Op::ArgReduce { .. } => n == out,
                _ => op.is_elementwise(),
            };
            assert!(ok, "kernel {} holds a `{}` that is not allowed there", body.name(), op.name());
        }
        for (i, (&arg, &inp)) in g.args(id).iter().zip(body.inputs()).enumerate() {
            assert_eq!(g.node(arg).ty, body.node(inp).ty, "kernel input {i} type");
        }
    }
}

/// Checks that no two arena values live at the same time overlap, except an in-place pair.
pub fn check_plan(g: &Graph) {
    let plan = g.plan.as_ref().expect("memory planning ran");
    let step: std::collections::HashMap<NodeId, usize> =
        plan.schedule.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    assert_eq!(plan.schedule.len(), g.len(), "the schedule holds every node");
    let end = plan.schedule.len();
    let live_range = |id: NodeId| {
        let def = step[&id];
        let last = g
            .users(id)
            .iter()
            .map(|(u, _)| if g.node(*u).op.has_side_effect() { end } else { step[u] })
            .max()
            .unwrap_or(def);
        (def, last.max(def))
    };
    let slots: Vec<_> = plan.slots.iter().collect();
    for (i, (a, sa)) in slots.iter().enumerate() {
        assert_eq!(sa.offset % 64, 0, "aligned slot");
        assert!(sa.offset + sa.bytes <= plan.arena_bytes, "slot inside the arena");
        for (b, sb) in &slots[i + 1..] {
            if sa.bytes == 0 || sb.bytes == 0 {
                continue;
            }
            let (da, la) = live_range(**a);
            let (db, lb) = live_range(**b);
            let overlap_time = da <= lb && db <= la;
            let overlap_space = sa.offset < sb.offset + sb.bytes && sb.offset < sa.offset + sa.bytes;
            let in_place = plan.in_place.get(*a) == Some(*b) || plan.in_place.get(*b) == Some(*a);
            // An in-place kernel and its donor share a slot at the one step where the donor dies.
            let touching = in_place && (la == db || lb == da);
            assert!(!(overlap_time && overlap_space) || touching, "slots of {a:?} and {b:?} overlap while both live");
        }
    }
    assert!(plan.arena_bytes <= plan.naive_bytes, "arena {} > naive {}", plan.arena_bytes, plan.naive_bytes);
}
