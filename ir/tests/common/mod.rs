//! Helpers shared by the integration tests: reading golden JSON and comparing arrays.
#![allow(dead_code)]

use kiln_ir::{Array, DType, Data};
use serde_json::Value;

/// The repository's `tests/golden/<name>`, parsed.
pub fn golden(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden json")
}

fn float(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().expect("a number"),
    }
}

/// An array from `{"dtype", "shape", "data"}`.
pub fn array(v: &Value) -> Array {
    let dtype: DType = v["dtype"].as_str().unwrap().parse().unwrap();
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap();
    let data = match dtype {
        DType::F32 => Data::F32(data.iter().map(|x| float(x) as f32).collect()),
        DType::F64 => Data::F64(data.iter().map(float).collect()),
        DType::I32 => Data::I32(data.iter().map(|x| x.as_i64().unwrap() as i32).collect()),
        DType::I64 => Data::I64(data.iter().map(|x| x.as_i64().unwrap()).collect()),
        DType::Bool => Data::Bool(data.iter().map(|x| x.as_bool().unwrap()).collect()),
    };
    Array::new(data, &shape).unwrap()
}

/// `Err(description)` unless `got` matches `want`: same dtype and shape; integers and
/// bools exactly; floats with `|got - want| <= rtol * |want| + atol`, NaN matching NaN and
/// infinities exactly (with `rtol == atol == 0`, plain equality).
pub fn compare(got: &Array, want: &Array, rtol: f64, atol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!("got {}{:?}, want {}{:?}", got.dtype(), got.shape(), want.dtype(), want.shape()));
    }
    for i in 0..want.len() {
        let (g, w) = (got.get_f64(i), want.get_f64(i));
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() || !want.dtype().is_float() || (rtol == 0.0 && atol == 0.0) {
            g == w
        } else {
            (g - w).abs() <= rtol * w.abs() + atol
        };
        if !ok {
            return Err(format!("element {i}: got {g:e}, want {w:e} (rtol {rtol:e}, atol {atol:e})"));
        }
    }
    Ok(())
}
