//! TEMPORARY stand-in for `kiln_ir::interp` until the reference interpreter lands on main.
//! Same signatures (`eval`, `run`, `Outcome`); covers the ops the executor tests use by
//! computing in f64 (exact for f32/i32 `+ - * /` and comparisons). Ops it does not cover
//! return `Err`. Delete this file and re-export `kiln_ir::interp` once it exists.

use std::collections::HashMap;

use kiln_ir::{
    broadcast_strides, strides, Array, BinaryOp, DType, Data, Error, Graph, NodeId, Op, ReduceOp, Result, TensorType,
    UnaryOp, VarId,
};

/// What one call returns: the outputs, and the final value of each written variable.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub outputs: Vec<Array>,
    pub writes: Vec<(VarId, Array)>,
}

fn to_f64(a: &Array) -> Vec<f64> {
    (0..a.len()).map(|i| a.get_f64(i)).collect()
}

fn from_f64(v: Vec<f64>, ty: &TensorType) -> Result<Array> {
    let data = match ty.dtype {
        DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F64 => Data::F64(v),
        DType::I32 => Data::I32(v.iter().map(|&x| x as i32).collect()),
        DType::I64 => Data::I64(v.iter().map(|&x| x as i64).collect()),
        DType::Bool => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
    };
    Array::new(data, &ty.shape)
}

/// Element `i` of the output read from an operand broadcast to `out` shape.
fn bcast_index(i: usize, out: &[usize], bstrides: &[usize]) -> usize {
    let mut rem = i;
    let mut idx = 0;
    for d in (0..out.len()).rev() {
        let c = rem % out[d];
        rem /= out[d];
        idx += c * bstrides[d];
    }
    idx
}

fn unary(u: UnaryOp, x: f64, dt: DType) -> f64 {
    let f32r = |v: f64| if dt == DType::F32 { (v as f32) as f64 } else { v };
    match u {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => f32r(if dt == DType::F32 { (x as f32).exp() as f64 } else { x.exp() }),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Square => x * x,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::LogicalNot => (x == 0.0) as u8 as f64,
        _ => f64::NAN,
    }
}

fn binary(b: BinaryOp, x: f64, y: f64) -> f64 {
    match b {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Maximum => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.max(y)
            }
        }
        BinaryOp::Minimum => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.min(y)
            }
        }
        BinaryOp::Less => (x < y) as u8 as f64,
        BinaryOp::Greater => (x > y) as u8 as f64,
        BinaryOp::Equal => (x == y) as u8 as f64,
        _ => f64::NAN,
    }
}

fn elementwise(args: &[&Array], ty: &TensorType, f: impl Fn(&[f64]) -> f64) -> Result<Array> {
    let vals: Vec<Vec<f64>> = args.iter().map(|a| to_f64(a)).collect();
    let bs: Vec<_> = args.iter().map(|a| broadcast_strides(a.shape(), &ty.shape)).collect();
    let mut out = Vec::with_capacity(ty.numel());
    let mut xs = vec![0.0; args.len()];
    for i in 0..ty.numel() {
        for (k, v) in vals.iter().enumerate() {
            xs[k] = v[bcast_index(i, &ty.shape, &bs[k])];
        }
        out.push(f(&xs));
    }
    from_f64(out, ty)
}

fn reduce(op: ReduceOp, a: &Array, axes: &[usize], ty: &TensorType) -> Result<Array> {
    let shape = a.shape();
    let kept: Vec<usize> = shape.iter().enumerate().map(|(d, &n)| if axes.contains(&d) { 1 } else { n }).collect();
    let kstr = strides(&kept);
    let n_out = kept.iter().product::<usize>();
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0.0,
        ReduceOp::Prod => 1.0,
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
    };
    let mut acc = vec![init; n_out];
    let x = to_f64(a);
    let sstr = strides(shape);
    for (i, &v) in x.iter().enumerate() {
        let mut o = 0;
        for d in 0..shape.len() {
            let c = (i / sstr[d]) % shape[d];
            if !axes.contains(&d) {
                o += c * kstr[d];
            }
        }
        acc[o] = match op {
            ReduceOp::Sum | ReduceOp::Mean => acc[o] + v,
            ReduceOp::Prod => acc[o] * v,
            ReduceOp::Max => binary(BinaryOp::Maximum, acc[o], v),
            ReduceOp::Min => binary(BinaryOp::Minimum, acc[o], v),
        };
    }
    if op == ReduceOp::Mean {
        let cnt: usize = axes.iter().map(|&d| shape[d]).product();
        acc.iter_mut().for_each(|v| *v /= cnt as f64);
    }
    from_f64(acc, ty)
}

fn matmul(a: &Array, b: &Array, ty: &TensorType) -> Result<Array> {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    let batch = &ty.shape[..ty.shape.len() - 2];
    let sa = broadcast_strides(&a.shape()[..ra - 2], batch);
    let sb = broadcast_strides(&b.shape()[..rb - 2], batch);
    let (xa, xb) = (to_f64(a), to_f64(b));
    let nb: usize = batch.iter().product();
    let mut out = vec![0.0; ty.numel()];
    for bi in 0..nb {
        let (oa, ob) = (bcast_index(bi, batch, &sa) * m * k, bcast_index(bi, batch, &sb) * k * n);
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    s += xa[oa + i * k + p] * xb[ob + p * n + j];
                }
                out[bi * m * n + i * n + j] = s;
            }
        }
    }
    from_f64(out, ty)
}

/// Evaluates one op on concrete operands.
pub fn eval(op: &Op, args: &[&Array], ty: &TensorType) -> Result<Array> {
    match op {
        Op::Const(a) => Ok(a.clone()),
        Op::Unary(u) => elementwise(args, ty, |x| unary(*u, x[0], ty.dtype)),
        Op::Binary(b) => elementwise(args, ty, |x| binary(*b, x[0], x[1])),
        Op::Select => elementwise(args, ty, |x| if x[0] != 0.0 { x[1] } else { x[2] }),
        Op::Cast(_) | Op::BroadcastTo(_) => elementwise(args, ty, |x| x[0]),
        Op::Reshape(s) => args[0].reshaped(s),
        Op::Reduce { op, axes, .. } => reduce(*op, args[0], axes, ty),
        Op::MatMul => matmul(args[0], args[1], ty),
        Op::Random { seed, .. } => {
            let mut s = *seed | 1;
            let v = (0..ty.numel())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 11) as f64 / (1u64 << 53) as f64
                })
                .collect();
            from_f64(v, ty)
        }
        Op::Fused(k) => {
            let owned: Vec<Array> = args.iter().map(|a| (*a).clone()).collect();
            Ok(run(&k.body, &owned, &[])?.outputs.remove(0))
        }
        other => Err(Error::invalid(other.name(), "not supported by the stand-in interpreter")),
    }
}

/// Runs a whole graph (commit-on-success is the caller's job).
pub fn run(g: &Graph, inputs: &[Array], vars: &[Array]) -> Result<Outcome> {
    if inputs.len() != g.inputs().len() {
        return Err(Error::Signature {
            function: g.name().to_string(),
            msg: format!("expected {} inputs, got {}", g.inputs().len(), inputs.len()),
        });
    }
    for (i, (&id, a)) in g.inputs().iter().zip(inputs).enumerate() {
        let ty = &g.node(id).ty;
        if ty.dtype != a.dtype() || ty.shape.as_slice() != a.shape() {
            return Err(Error::Signature { function: g.name().to_string(), msg: format!("input {i} mismatch") });
        }
    }
    let mut cur: Vec<Array> = vars.to_vec();
    let mut written: Vec<VarId> = Vec::new();
    let mut vals: HashMap<NodeId, Array> = HashMap::new();
    for id in g.topo_order()? {
        let node = g.node(id);
        let args: Vec<&Array> = g.args(id).iter().map(|a| &vals[a]).collect();
        let v = match &node.op {
            Op::Input(i) => inputs[*i].clone(),
            Op::ReadVar(v) => cur[*v as usize].clone(),
            Op::AssignVar(v) => {
                cur[*v as usize] = args[0].clone();
                if !written.contains(v) {
                    written.push(*v);
                }
                args[0].clone()
            }
            op => eval(op, &args, &node.ty)?,
        };
        vals.insert(id, v);
    }
    written.sort_unstable();
    Ok(Outcome {
        outputs: g.outputs().iter().map(|o| vals[o].clone()).collect(),
        writes: written.into_iter().map(|v| (v, cur[v as usize].clone())).collect(),
    })
}
