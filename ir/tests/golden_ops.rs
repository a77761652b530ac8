//! Every op against numpy golden values (tests/golden/ops.json, made by make_golden.py).
//! Each case carries its tolerance; the script's docstring justifies them (exact for
//! integer, bool and shape ops; f32 math rtol 1e-6 ≈ 8 ulp; f64 rtol 1e-12).

mod common;

use common::{array, compare, golden};
use kiln_ir::{infer, interp, ArgOp, Array, BinaryOp, DType, Error, Op, ReduceOp, SliceDim, TensorType, UnaryOp};
use serde_json::Value;

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

fn py_dims(spec: &Value, shape: &[usize]) -> Vec<SliceDim> {
    let opt = |v: &Value| v.as_i64().map(|x| x as isize);
    spec.as_array()
        .unwrap()
        .iter()
        .zip(shape)
        .map(|(s, &n)| {
            let s = s.as_array().unwrap();
            SliceDim::from_python(opt(&s[0]), opt(&s[1]), s[2].as_i64().unwrap() as isize, n).unwrap()
        })
        .collect()
}

fn op_of(v: &Value, args: &[Array]) -> Op {
    let name = v["name"].as_str().unwrap_or("");
    match v["kind"].as_str().unwrap() {
        "unary" => Op::Unary(*UnaryOp::ALL.iter().find(|u| u.name() == name).expect(name)),
        "binary" => Op::Binary(*BinaryOp::ALL.iter().find(|u| u.name() == name).expect(name)),
        "select" => Op::Select,
        "cast" => Op::Cast(v["to"].as_str().unwrap().parse().unwrap()),
        "broadcast_to" => Op::BroadcastTo(usizes(&v["shape"]).into()),
        "reshape" => Op::Reshape(usizes(&v["shape"]).into()),
        "transpose" => Op::Transpose(usizes(&v["perm"])),
        "slice" => Op::Slice(py_dims(&v["py"], args[0].shape())),
        "unslice" => {
            let shape = usizes(&v["shape"]);
            Op::Unslice { dims: py_dims(&v["py"], &shape), shape: shape.into() }
        }
        "concat" => Op::Concat { axis: v["axis"].as_u64().unwrap() as usize },
        "gather" => Op::Gather { axis: v["axis"].as_u64().unwrap() as usize },
        "scatter_add" => {
            Op::ScatterAdd { axis: v["axis"].as_u64().unwrap() as usize, shape: usizes(&v["shape"]).into() }
        }
        "reduce" => Op::Reduce {
            op: *ReduceOp::ALL.iter().find(|r| r.name() == name).expect(name),
            axes: usizes(&v["axes"]),
            keepdims: v["keepdims"].as_bool().unwrap(),
        },
        "arg" => Op::ArgReduce {
            op: if name == "argmax" { ArgOp::ArgMax } else { ArgOp::ArgMin },
            axis: v["axis"].as_u64().unwrap() as usize,
            keepdims: v["keepdims"].as_bool().unwrap(),
        },
        "matmul" => Op::MatMul,
        k => panic!("unknown op kind {k}"),
    }
}

fn check(c: &Value) -> Result<(), String> {
    let args: Vec<Array> = c["args"].as_array().unwrap().iter().map(array).collect();
    let op = op_of(&c["op"], &args);
    let tys: Vec<TensorType> = args.iter().map(|a| TensorType::new(a.dtype(), a.shape())).collect();
    let ty = infer(&op, &tys).map_err(|e| format!("infer: {e}"))?;
    let refs: Vec<&Array> = args.iter().collect();
    let got = interp::eval(&op, &refs, &ty);
    if c.get("error").is_some() {
        return match got {
            Err(Error::Runtime { .. }) => Ok(()),
            other => Err(format!("expected a runtime error, got {other:?}")),
        };
    }
    let got = got.map_err(|e| format!("eval: {e}"))?;
    compare(&got, &array(&c["out"]), c["rtol"].as_f64().unwrap(), c["atol"].as_f64().unwrap())
}

#[test]
fn every_op_matches_numpy() {
    let g = golden("ops.json");
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() > 1000, "golden file has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (i, c) in cases.iter().enumerate() {
        kinds.insert(c["op"]["name"].as_str().or(c["op"]["kind"].as_str()).unwrap().to_string());
        if let Err(e) = check(c) {
            failures.push(format!("case {i} {} {}: {e}", c["op"], c.get("note").map_or("", |n| n.as_str().unwrap())));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(30)].join("\n")
    );
    // Every op of the op set has golden coverage.
    for u in UnaryOp::ALL {
        assert!(kinds.contains(u.name()), "no golden case for {}", u.name());
    }
    for b in BinaryOp::ALL {
        assert!(kinds.contains(b.name()), "no golden case for {}", b.name());
    }
    for r in ReduceOp::ALL {
        assert!(kinds.contains(r.name()), "no golden case for {}", r.name());
    }
    for k in [
        "select",
        "cast",
        "broadcast_to",
        "reshape",
        "transpose",
        "slice",
        "unslice",
        "concat",
        "gather",
        "scatter_add",
        "argmax",
        "argmin",
        "matmul",
    ] {
        assert!(kinds.contains(k), "no golden case for {k}");
    }
    let _ = DType::F32;
}
