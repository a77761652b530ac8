//! ONNX export and import (`kiln::onnx`, docs/SAVING.md):
//! - every exportable op: the exported model run by tract (a pure-Rust ONNX runtime) and by
//!   kiln again after import, both against kiln's own result;
//! - the digits MLP and the chapter's residual regressor, the same way;
//! - models made by the Python `onnx` package (tests/golden/onnx_models.py) against
//!   onnxruntime's outputs;
//! - ops ONNX cannot express and ops kiln does not import are errors naming them;
//! - hostile files (truncated, mutated, claiming more data than they hold) are errors.

#[allow(dead_code)]
#[path = "../examples/custom_models.rs"]
mod custom_models;

use std::sync::Arc;

use kiln::ir::{Graph, Op, SliceDim, TensorType};
use kiln::nn::{BatchNormalization, Dense, Dropout, Layer, Sequential};
use kiln::{DType, SliceArg, Tensor};
use tract_onnx::prelude::{Framework, InferenceModelExt};

/// A kiln tensor as a tract tensor.
fn to_tract(t: &Tensor) -> tract_onnx::prelude::Tensor {
    let shape = t.shape().to_vec();
    match t.dtype() {
        DType::F32 => tract_onnx::prelude::Tensor::from_shape(&shape, &t.to_vec::<f32>().unwrap()),
        DType::F64 => tract_onnx::prelude::Tensor::from_shape(&shape, &t.to_vec::<f64>().unwrap()),
        DType::I32 => tract_onnx::prelude::Tensor::from_shape(&shape, &t.to_vec::<i32>().unwrap()),
        DType::I64 => tract_onnx::prelude::Tensor::from_shape(&shape, &t.to_vec::<i64>().unwrap()),
        DType::Bool => tract_onnx::prelude::Tensor::from_shape(&shape, &t.to_vec::<bool>().unwrap()),
    }
    .unwrap()
}

/// Shape and values (as f64) of a tract result.
fn from_tract(t: &tract_onnx::prelude::Tensor) -> (Vec<usize>, Vec<f64>) {
    let values = if t.datum_type() == tract_onnx::prelude::DatumType::Bool {
        t.as_slice::<bool>().unwrap().iter().map(|&b| b as u8 as f64).collect()
    } else {
        t.cast_to::<f64>().unwrap().as_slice::<f64>().unwrap().to_vec()
    };
    (t.shape().to_vec(), values)
}

/// Runs an encoded model in tract.
fn run_tract(bytes: &[u8], args: &[Tensor]) -> Vec<(Vec<usize>, Vec<f64>)> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract cannot load the model: {e:?}"));
    let outs = plan.run(args.iter().map(|a| to_tract(a).into()).collect()).expect("tract runs the model");
    outs.iter().map(|t| from_tract(t)).collect()
}

fn values_of(t: &Tensor) -> (Vec<usize>, Vec<f64>) {
    (t.shape().to_vec(), t.cast(DType::F64).to_vec::<f64>().unwrap())
}

/// `got` equals `want` in shape and, elementwise, to a relative 1e-5 (f32 rounding across
/// two runtimes' kernels); NaNs must match NaNs.
fn assert_close(what: &str, want: &(Vec<usize>, Vec<f64>), got: &(Vec<usize>, Vec<f64>)) {
    assert_eq!(want.0, got.0, "{what}: shape");
    for (i, (w, g)) in want.1.iter().zip(&got.1).enumerate() {
        let ok = (w.is_nan() && g.is_nan()) || (w - g).abs() <= 1e-5 * (1.0 + w.abs());
        assert!(ok, "{what}: element {i}: want {w}, got {g}\n want {:?}\n got {:?}", want.1, got.1);
    }
}

/// One exportable op (or a few), traced over `x`.
struct Case {
    name: &'static str,
    f: fn(&Tensor) -> Tensor,
    /// tract has no `Loop`: while loops are checked by the kiln round trip only.
    tract: bool,
}

fn x34() -> Tensor {
    Tensor::new(&[[0.5f32, -1.25, 2.0, -0.75], [1.5, 0.0, -2.5, 3.0], [-0.5, 0.25, 1.75, -3.5]])
}

fn cases() -> Vec<Case> {
    let c = |name, f| Case { name, f, tract: true };
    vec![
        // unary
        c("neg", |x| -x),
        c("abs", |x| x.abs()),
        c("exp", |x| x.exp()),
        c("log", |x| (x.abs() + 0.1).log()),
        c("log1p", |x| (x.abs() * 0.5).log1p()),
        c("expm1", |x| x.expm1()),
        c("sqrt", |x| x.abs().sqrt()),
        c("rsqrt", |x| (x.abs() + 0.5).rsqrt()),
        c("square", |x| x.square()),
        c("tanh", |x| x.tanh()),
        c("sigmoid", |x| x.sigmoid()),
        c("relu", |x| x.relu()),
        c("softplus", |x| x.softplus()),
        c("sin", |x| x.sin()),
        c("cos", |x| x.cos()),
        c("sign", |x| x.sign()),
        c("floor", |x| x.floor()),
        c("ceil", |x| x.ceil()),
        c("round", |x| (x * 2.0).round()),
        c("logical_not", |x| x.greater(&Tensor::scalar(0.0f32)).logical_not()),
        c("int_unary", |x| {
            let i = (x * 2.0).cast(DType::I32);
            (i.abs() + i.relu() + i.square() - (-&i)).cast(DType::F32)
        }),
        // tract's integer `Sign` gives 1 at 0 (it goes through f32::signum), against the ONNX
        // spec's 0: the kiln round trip checks it.
        Case { name: "int_sign", f: |x| (x * 2.0).cast(DType::I64).sign(), tract: false },
        // binary, numpy broadcasting
        c("add", |x| x + &Tensor::new(&[1.0f32, 2.0, 3.0, 4.0])),
        c("sub", |x| &Tensor::new(&[[1.0f32], [2.0], [3.0]]) - x),
        c("mul", |x| x * x),
        c("div", |x| x / &(x.abs() + 1.0)),
        c("int_div", |x| ((x * 4.0).cast(DType::I64) / Tensor::scalar(3i64)).cast(DType::F32)),
        c("pow", |x| (x.abs() + 0.5).pow(&Tensor::scalar(1.5f32))),
        c("maximum", |x| x.maximum(&Tensor::scalar(0.5f32))),
        c("minimum", |x| x.minimum(&x.t().reshape([3, 4]))),
        c("equal", |x| x.floor().equal(&x.ceil())),
        c("not_equal", |x| x.floor().not_equal(&x.ceil())),
        c("less", |x| x.less(&Tensor::scalar(0.5f32))),
        c("less_equal", |x| x.less_equal(&Tensor::scalar(0.5f32))),
        c("greater", |x| x.greater(&Tensor::scalar(0.5f32))),
        c("greater_equal", |x| x.greater_equal(&Tensor::scalar(0.5f32))),
        c("logical_and", |x| x.greater(&Tensor::scalar(0.0f32)).logical_and(&x.less(&Tensor::scalar(2.0f32)))),
        c("logical_or", |x| x.greater(&Tensor::scalar(1.0f32)).logical_or(&x.less(&Tensor::scalar(-1.0f32)))),
        c("select", |x| x.greater(&Tensor::scalar(0.0f32)).select(x, &(x * 3.0))),
        c("cast", |x| &(x * 3.0).cast(DType::I32).cast(DType::F64) + 0.5),
        // movement
        c("broadcast_to", |x| x.reshape([1, 3, 4]).broadcast_to(&[2, 3, 4])),
        c("reshape", |x| x.reshape([2, 6])),
        c("transpose", |x| x.reshape([3, 2, 2]).transpose([2, 0, 1])),
        c("slice", |x| {
            x.slice(&[
                SliceArg::Range { start: Some(1), stop: None, step: 1 },
                SliceArg::Range { start: None, stop: None, step: -2 },
            ])
        }),
        c("slice_index", |x| {
            x.slice(&[SliceArg::Index(-1), SliceArg::Range { start: Some(3), stop: Some(0), step: -1 }])
        }),
        c("concat", |x| Tensor::concat(&[x, &x.exp(), x], 1)),
        c("gather", |x| x.gather(&Tensor::new(&[2i64, 0, 2]), 0)),
        c("gather_axis1", |x| x.gather(&Tensor::new(&[[3i32, 1], [0, 0]]), 1)),
        c("one_hot", |x| (x.abs().floor().cast(DType::I64)).one_hot(4, DType::F32).sum(&[1], false)),
        // reductions
        c("sum", |x| x.sum(&[1], false)),
        c("sum_keepdims", |x| x.sum(&[0], true)),
        c("mean", |x| x.mean(&[0, 1], false)),
        c("max", |x| x.max(&[1], true)),
        c("min", |x| x.min(&[0], false)),
        c("prod", |x| x.prod(&[1], false)),
        c("argmax", |x| x.argmax(1, false)),
        c("argmin", |x| x.argmin(0, true)),
        // matmul and the softmax family
        c("matmul", |x| x.matmul(&x.t())),
        c("batched_matmul", |x| x.reshape([3, 2, 2]).matmul(&x.reshape([3, 2, 2]).exp())),
        c("softmax", |x| x.softmax(-1)),
        c("log_softmax", |x| x.log_softmax(0)),
        c("logsumexp", |x| x.logsumexp(&[1], false)),
        // control flow
        c("cond", |x| {
            kiln::cond(&x.sum_all().greater(&Tensor::scalar(0.0f32)), || Ok(x.exp()), || Ok(x * 2.0)).unwrap()
        }),
        c("cond_false", |x| {
            kiln::cond(&x.sum_all().greater(&Tensor::scalar(100.0f32)), || Ok(x.exp()), || Ok(x * 2.0)).unwrap()
        }),
        c("switch_case", |x| {
            let k = x.abs().sum_all().cast(DType::I32) - Tensor::scalar(12i32); // 1 for x34
            kiln::switch_case(&k, &[&|| Ok(x.exp()), &|| Ok(x * 2.0), &|| Ok(x.tanh())]).unwrap()
        }),
        c("scan", |x| {
            let (carry, ys) = kiln::scan(
                |c, xs| {
                    let next = &c[0] + &xs[0];
                    Ok((vec![next.clone()], vec![next.tanh()]))
                },
                &[Tensor::zeros(&[4], DType::F32)],
                std::slice::from_ref(x),
            )
            .unwrap();
            &ys[0] + &carry[0]
        }),
        c("fori_loop", |x| {
            kiln::fori_loop(0, 3, |i, v| Ok(vec![&v[0] * 2.0 + i.cast(DType::F32)]), std::slice::from_ref(x))
                .unwrap()
                .remove(0)
        }),
        Case {
            name: "while_loop",
            f: |x| {
                kiln::while_loop(
                    |v| Ok(v[0].sum_all().less(&Tensor::scalar(200.0f32))),
                    |v| Ok(vec![&v[0] * 2.0]),
                    &[x.abs() + 1.0],
                )
                .unwrap()
                .remove(0)
            },
            tract: false,
        },
    ]
}

/// Exports `f` traced on `args`, runs the model in tract (when `tract`) and in kiln after
/// import, and compares both with kiln's own call.
fn check(name: &str, f: &kiln::ConcreteFunction, want: &[Tensor], args: &[Tensor], tract: bool) {
    let bytes = kiln::onnx::to_model_bytes(f).unwrap_or_else(|e| panic!("{name}: export: {e}"));
    let want: Vec<_> = want.iter().map(values_of).collect();
    // For checking the exports by hand with the reference tools (onnx.checker, onnxruntime):
    // `KILN_ONNX_DUMP=dir` writes each model and kiln's outputs there.
    if let Some(dir) = std::env::var_os("KILN_ONNX_DUMP") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.onnx")), &bytes).unwrap();
        let json = serde_json::json!({
            "inputs": args.iter().map(values_of).map(|(s, d)| serde_json::json!({"shape": s, "data": d})).collect::<Vec<_>>(),
            "outputs": want.iter().map(|(s, d)| serde_json::json!({"shape": s, "data": d})).collect::<Vec<_>>(),
        });
        std::fs::write(dir.join(format!("{name}.json")), json.to_string()).unwrap();
    }
    if tract {
        let got = run_tract(&bytes, args);
        assert_eq!(got.len(), want.len(), "{name}: tract's output count");
        for (w, g) in want.iter().zip(&got) {
            assert_close(&format!("{name} (tract)"), w, g);
        }
    }
    let model = kiln::onnx::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: import: {e}"));
    let got = model.call(args).unwrap_or_else(|e| panic!("{name}: imported call: {e}"));
    for (w, g) in want.iter().zip(&got) {
        assert_close(&format!("{name} (kiln round trip)"), w, &values_of(g));
    }
}

#[test]
fn every_exportable_op_runs_in_tract_and_round_trips() {
    let x = x34();
    for case in cases() {
        let body = case.f;
        let f = kiln::function(move |x: &Tensor| body(x));
        let want = f.call(&x).unwrap();
        let c = f.concrete_function(&x).unwrap();
        check(case.name, &c, &[want], std::slice::from_ref(&x), case.tract);
    }
}

/// The digits MLP of examples/train_digits.rs (with its batch norm and dropout variants in
/// one model), in inference mode: its Variables become initializers.
#[test]
fn the_digits_mlp_exports() {
    let model = Arc::new(
        Sequential::new()
            .add(Dense::new(64).seed(3))
            .add(BatchNormalization::new())
            .add(kiln::nn::Lambda::new(|x| x.relu()))
            .add(Dropout::new(0.2).seed(4))
            .add(Dense::new(10).seed(5)),
    );
    let m = model.clone();
    let f = kiln::function(move |x: &Tensor| m.call(x, false).unwrap().softmax(-1));
    let x = Tensor::random_normal(&[8, 64], DType::F32, 7);
    let want = f.call(&x).unwrap();
    let c = f.concrete_function(&x).unwrap();
    assert!(!c.variables().is_empty());
    check("digits mlp", &c, std::slice::from_ref(&want), std::slice::from_ref(&x), true);
    // The optimized graph too: its fused kernels export as their bodies.
    let optimized = c.optimized();
    assert!(optimized.node_ids().any(|id| matches!(optimized.node(id).op, Op::Fused(_))));
    let values: Vec<kiln::Array> = c.variables().iter().map(kiln::Variable::value).collect();
    let bytes = kiln::onnx::graph_to_model_bytes(optimized, &values).unwrap();
    assert_close("digits mlp, optimized (tract)", &values_of(&want), &run_tract(&bytes, std::slice::from_ref(&x))[0]);
    let back = kiln::onnx::from_bytes(&bytes).unwrap().call(&[x]).unwrap();
    assert_close("digits mlp, optimized (kiln round trip)", &values_of(&want), &values_of(&back[0]));
}

#[test]
fn the_residual_regressor_exports() {
    let model = Arc::new(custom_models::ResidualRegressor::new(1));
    let m = model.clone();
    let f = kiln::function(move |x: &Tensor| m.call(x, false).unwrap());
    let x = Tensor::random_normal(&[5, 8], DType::F32, 11);
    let want = f.call(&x).unwrap();
    let c = f.concrete_function(&x).unwrap();
    check("residual regressor", &c, &[want], &[x], true);
}

/// Graph ops no user method makes directly (gradients make them): `unslice`, `scatter_add`.
#[test]
fn gradient_ops_export() {
    let mut g = Graph::new("grads");
    let x = g.add_input(TensorType::new(DType::F32, &[2, 3]));
    let dims = vec![SliceDim { start: 1, step: 1, len: 2 }, SliceDim { start: 0, step: 1, len: 3 }];
    let u = g.add(Op::Unslice { dims, shape: [4, 4].as_slice().into() }, &[x]).unwrap();
    let idx = g.add_const(kiln::Array::from_vec(vec![1i64, 0, 1], &[3]).unwrap());
    // Updates [2, 3] scattered along axis 1 of a [2, 2] (both indices 1 add up), and along
    // axis 0 of a [2, 3] from a transposed [3, 3]... kept to the two-axis case.
    let s = g.add(Op::ScatterAdd { axis: 1, shape: [2, 2].as_slice().into() }, &[x, idx]).unwrap();
    let t = g.add(Op::Transpose(vec![1, 0]), &[x]).unwrap();
    let s0 = g.add(Op::ScatterAdd { axis: 0, shape: [2, 2].as_slice().into() }, &[t, idx]).unwrap();
    g.set_outputs(vec![u, s, s0]);
    let x = Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let outcome = kiln::ir::interp::run(&g, &[x.array().unwrap().clone()], &[]).unwrap();
    let want: Vec<Tensor> = outcome.outputs.into_iter().map(Tensor::from).collect();
    let bytes = kiln::onnx::graph_to_model_bytes(&g, &[]).unwrap();
    let got = run_tract(&bytes, std::slice::from_ref(&x));
    for (w, t) in want.iter().zip(&got) {
        assert_close("gradient ops (tract)", &values_of(w), t);
    }
    let back = kiln::onnx::from_bytes(&bytes).unwrap().call(&[x]).unwrap();
    for (w, b) in want.iter().zip(&back) {
        assert_close("gradient ops (kiln round trip)", &values_of(w), &values_of(b));
    }
}

#[test]
fn what_onnx_cannot_express_is_an_error_naming_it() {
    let v = kiln::Variable::new(Tensor::new(&[1.0f32, 2.0]));
    let w = v.clone();
    let step = kiln::function(move |x: &Tensor| {
        w.assign_add(x).unwrap();
        w.read()
    });
    let x = Tensor::new(&[1.0f32, 1.0]);
    let e = kiln::onnx::to_model_bytes(&step.concrete_function(&x).unwrap()).unwrap_err().to_string();
    assert!(e.contains("assign_var"), "{e}");
    let noisy = kiln::function(|x: &Tensor| x + &Tensor::random_normal(&[2], DType::F32, 3));
    let e = kiln::onnx::to_model_bytes(&noisy.concrete_function(&x).unwrap()).unwrap_err().to_string();
    assert!(e.contains("random_normal"), "{e}");
}

// ---- models made by the Python `onnx` package ----

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/golden/onnx/{name}.onnx", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn json_tensor(v: &serde_json::Value) -> (Vec<usize>, Vec<f64>) {
    let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    (shape, v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect())
}

#[test]
fn python_made_models_match_onnxruntime() {
    let text =
        std::fs::read_to_string(format!("{}/tests/golden/onnx/expected.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 9);
    for (name, case) in cases {
        let model = kiln::onnx::from_bytes(&golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let args: Vec<Tensor> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let (shape, data) = json_tensor(i);
                Tensor::from_vec(data.iter().map(|&v| v as f32).collect::<Vec<_>>(), &shape).unwrap()
            })
            .collect();
        let got = model.call(&args).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = case["outputs"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (w, g) in want.iter().zip(&got) {
            assert_close(name, &json_tensor(w), &values_of(g));
        }
    }
}

#[test]
fn a_symbolic_batch_dim_compiles_per_batch_size() {
    let model = kiln::onnx::from_bytes(&golden("mlp")).unwrap();
    for n in [1, 3, 4] {
        let x = Tensor::random_normal(&[n, 8], DType::F32, n as u64);
        let p = model.call(&[x]).unwrap().remove(0);
        assert_eq!(p.shape(), &[n, 3]);
        let rows = p.sum(&[1], false).to_vec::<f32>().unwrap();
        assert!(rows.iter().all(|r| (r - 1.0).abs() < 1e-5), "{rows:?}");
    }
    let e = model.call(&[Tensor::zeros(&[2, 7], DType::F32)]).err().unwrap().to_string();
    assert!(e.contains("input `x`"), "{e}");
}

#[test]
fn an_unsupported_op_is_an_error_naming_op_and_node() {
    // The relu model with its op renamed: same length, so the bytes stay well-formed.
    let mut bytes = golden("relu");
    let at = bytes.windows(4).position(|w| w == b"Relu").unwrap();
    bytes[at..at + 4].copy_from_slice(b"Elu\0");
    let e = kiln::onnx::from_bytes(&bytes).err().unwrap().to_string();
    assert!(e.contains("Elu") && e.contains("`relu`"), "{e}");
}

// ---- hostile files ----

/// Every prefix and thousands of deterministic byte mutations of every committed model:
/// each is a model or an `Err`, never a panic or an abort.
#[test]
fn mutated_and_truncated_files_are_errors_not_panics() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut loaded = 0;
    for name in ["gemm", "relu", "softmax", "mlp", "broadcast", "reshape", "if", "loop", "scan"] {
        let bytes = golden(name);
        for cut in 0..bytes.len() {
            let _ = kiln::onnx::from_bytes(&bytes[..cut]);
        }
        for _ in 0..400 {
            let mut m = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = match next() % 3 {
                    0 => m[i] ^ (1 << (next() % 8)),
                    1 => (next() % 256) as u8,
                    _ => 0xff,
                };
            }
            if let Ok(model) = kiln::onnx::from_bytes(&m) {
                loaded += 1;
                // A model that still loads must also be safe to call.
                let _ = model.call(&[Tensor::zeros(&[2, 5], DType::F32)]);
            }
        }
    }
    assert!(loaded > 0, "no mutation left a loadable model: the loop tests nothing but the decoder");
}

/// Decodes a committed model, lets `edit` doctor it, and imports the re-encoded bytes.
fn doctored(name: &str, edit: impl FnOnce(&mut kiln::onnx::proto::ModelProto)) -> kiln::Result<kiln::onnx::OnnxModel> {
    use prost::Message;
    let mut m = kiln::onnx::proto::ModelProto::decode(golden(name).as_slice()).unwrap();
    edit(&mut m);
    kiln::onnx::from_bytes(&m.encode_to_vec())
}

#[test]
fn size_claims_are_checked_before_allocating() {
    // Dims claiming 2^60 elements of a 5-element tensor.
    let e = doctored("gemm", |m| m.graph.as_mut().unwrap().initializer[1].dims = vec![1 << 30, 1 << 30])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("too many elements"), "{e}");
    // Dims claiming more elements than the data holds.
    let e = doctored("gemm", |m| m.graph.as_mut().unwrap().initializer[1].dims = vec![6]).err().unwrap().to_string();
    assert!(e.contains("20 bytes of data for 6"), "{e}");
    // A negative dim, an unknown element type, a missing graph, an old opset.
    let e = doctored("gemm", |m| m.graph.as_mut().unwrap().initializer[1].dims = vec![-5]).err().unwrap().to_string();
    assert!(e.contains("negative dim"), "{e}");
    let e =
        doctored("gemm", |m| m.graph.as_mut().unwrap().initializer[1].data_type = Some(99)).err().unwrap().to_string();
    assert!(e.contains("unknown element type 99"), "{e}");
    let e = doctored("gemm", |m| m.graph = None).err().unwrap().to_string();
    assert!(e.contains("no graph"), "{e}");
    let e = doctored("gemm", |m| m.opset_import[0].version = Some(9)).err().unwrap().to_string();
    assert!(e.contains("opset 9"), "{e}");
    // A node reading a value nothing defines.
    let e =
        doctored("relu", |m| m.graph.as_mut().unwrap().node[0].input[0] = "nowhere".into()).err().unwrap().to_string();
    assert!(e.contains("`nowhere`"), "{e}");
}
