//! `while_loop`, `fori_loop` and `scan`.

use std::sync::Arc;

use kiln_ir::{DType, Op, ScanOp, TensorType, WhileOp};

use super::{check_carries, check_scalar, types};
use crate::context::body::{emit_region, trace_body};
use crate::context::recording::{record_many, Recorded};
use crate::context::trace::{add_input, run_in_trace, TraceState};
use crate::context::{is_tracing, without_tapes};
use crate::{Error, Result, Tensor};

/// Runs `body` on the loop variables while `cond` holds (TF's `tf.while_loop`, JAX's
/// `lax.while_loop`); returns the final loop variables.
///
/// `cond` returns a `bool` scalar; `body` returns new values of the same dtypes and shapes
/// (an `Err` names the variable otherwise). Traced, the trip count is decided when the graph
/// runs: a loop is one `while` node whatever it does. Gradients flow through it, also when
/// compiled (the backward pass replays the loop keeping each iteration's values).
///
/// ```
/// use kiln::Tensor;
/// // Newton's method for sqrt, compiled; the trip count depends on the data.
/// let sqrt = kiln::function(|a: &Tensor| -> kiln::Result<Tensor> {
///     let out = kiln::while_loop(
///         |v: &[Tensor]| Ok((&v[0] * &v[0] - a).abs().max_all().greater(&Tensor::scalar(1e-6f32))),
///         |v: &[Tensor]| Ok(vec![0.5 * (&v[0] + a / &v[0])]),
///         &[a.clone()],
///     )?;
///     Ok(out[0].clone())
/// });
/// let r = sqrt.call(&Tensor::new(&[4.0f32, 9.0])).unwrap();
/// assert_eq!(r.to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
/// ```
pub fn while_loop(
    cond: impl Fn(&[Tensor]) -> Result<Tensor>,
    body: impl Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    init: &[Tensor],
) -> Result<Vec<Tensor>> {
    let want = types(init);
    if !is_tracing() {
        let mut v = init.to_vec();
        loop {
            let c = cond(&v)?;
            check_scalar("while_loop", "the condition", &c, &[DType::Bool])?;
            if c.try_array("while_loop")?.get_f64(0) == 0.0 {
                return Ok(v);
            }
            let next = body(&v)?;
            check_carries("while_loop", &want, &types(&next))?;
            v = next;
        }
    }
    let c = trace_body("cond", &want, |v| {
        let c = cond(v)?;
        check_scalar("while_loop", "the condition", &c, &[DType::Bool])?;
        Ok(vec![c])
    })?;
    let b = trace_body("body", &want, |v| body(v))?;
    check_carries("while_loop", &want, &b.output_types())?;
    let carries = init.len();
    emit_region(
        |mut r| {
            let body = r.pop().expect("two bodies");
            let cond = r.pop().expect("two bodies");
            Op::While(Arc::new(WhileOp { cond, body, carries }))
        },
        vec![c, b],
        init,
    )
}

/// `body(i, v)` for `i` in `lower..upper`, threading the loop variables `v` (JAX's
/// `lax.fori_loop`); `i` is an `i64` scalar. Traced, it is one `scan` node however many
/// iterations it makes, and gradients flow through it (a reverse scan), to any order.
///
/// ```
/// use kiln::Tensor;
/// let add_n = kiln::function(|x: &Tensor| {
///     Ok(kiln::fori_loop(0, 10_000, |_i: &Tensor, v: &[Tensor]| Ok(vec![&v[0] + 1.0]), &[x.clone()])?[0].clone())
/// });
/// assert_eq!(add_n.call(&Tensor::scalar(0.0f32)).unwrap().to_scalar::<f32>().unwrap(), 10_000.0);
/// assert!(add_n.graph(&Tensor::scalar(0.0f32)).unwrap().to_text().lines().count() < 40);
/// ```
pub fn fori_loop(
    lower: i64,
    upper: i64,
    body: impl Fn(&Tensor, &[Tensor]) -> Result<Vec<Tensor>>,
    init: &[Tensor],
) -> Result<Vec<Tensor>> {
    let want = types(init);
    let length = usize::try_from(upper.saturating_sub(lower)).unwrap_or(0);
    if !is_tracing() {
        let mut v = init.to_vec();
        for i in lower..upper {
            let next = body(&Tensor::scalar(i), &v)?;
            check_carries("fori_loop", &want, &types(&next))?;
            v = next;
        }
        return Ok(v);
    }
    let mut inputs = vec![TensorType::new(DType::I64, &[])];
    inputs.extend(want.iter().cloned());
    let carries = init.len();
    let save = saves_carries(init);
    let b = trace_body("body", &inputs, |ins| {
        let i = if lower == 0 { ins[0].clone() } else { &ins[0] + &Tensor::scalar(lower) };
        let next = body(&i, &ins[1..])?;
        check_carries("fori_loop", &want, &types(&next))?;
        Ok(with_residuals(next, &ins[1..1 + carries], save))
    })?;
    let mut b = b;
    if save {
        b.save_variant_products(1 + carries, carries);
    }
    let mut results = emit_region(
        |mut r| Op::Scan(Arc::new(ScanOp { body: r.pop().expect("one body"), length, carries, xs: 0, reverse: false })),
        vec![b],
        init,
    )?;
    results.truncate(carries);
    Ok(results)
}

/// Whether a traced loop should also stack each step's incoming carries (and its matrix
/// products: `Body::save_variant_products`): when a tape records here and some carry is a
/// float, the gradient will need them, and keeping them now saves the backward pass a second
/// forward loop (`autodiff/region.rs` finds the carries by shape: the body's last outputs are
/// its carry inputs).
fn saves_carries(init: &[Tensor]) -> bool {
    crate::context::is_recording() && init.iter().any(|t| t.dtype().is_float())
}

/// The body's outputs, followed by its incoming carries when `save`.
fn with_residuals(mut outs: Vec<Tensor>, carried: &[Tensor], save: bool) -> Vec<Tensor> {
    if save {
        outs.extend_from_slice(carried);
    }
    outs
}

/// Scans `f` over the leading axis of `xs` (JAX's `lax.scan`, TF's `tf.scan`): step `i` gets
/// the carries and row `i` of each x and returns new carries and per-step outputs; the
/// result is the final carries and the per-step outputs stacked along a new axis 0.
///
/// ```
/// use kiln::{DType, Tensor};
/// let xs = Tensor::new(&[[1.0f32], [2.0], [3.0]]);
/// let (carry, ys) = kiln::scan(
///     |c: &[Tensor], x: &[Tensor]| {
///         let s = &c[0] + &x[0];
///         Ok((vec![s.clone()], vec![s]))
///     },
///     &[Tensor::zeros(&[1], DType::F32)],
///     &[xs],
/// )
/// .unwrap();
/// assert_eq!(carry[0].to_vec::<f32>().unwrap(), vec![6.0]);
/// assert_eq!(ys[0].to_vec::<f32>().unwrap(), vec![1.0, 3.0, 6.0]);
/// ```
pub fn scan(
    f: impl Fn(&[Tensor], &[Tensor]) -> Result<(Vec<Tensor>, Vec<Tensor>)>,
    init: &[Tensor],
    xs: &[Tensor],
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let length = scan_length(xs)?;
    let want = types(init);
    if !is_tracing() {
        let mut v = init.to_vec();
        let mut steps: Vec<Vec<Tensor>> = Vec::with_capacity(length);
        let per_x = xs.iter().map(|x| unstack(x, length)).collect::<Result<Vec<_>>>()?;
        for i in 0..length {
            let rows: Vec<Tensor> = per_x.iter().map(|r| r[i].clone()).collect();
            let (next, ys) = f(&v, &rows)?;
            check_carries("scan", &want, &types(&next))?;
            if let Some(first) = steps.first() {
                check_carries("scan", &types(first), &types(&ys))?;
            }
            v = next;
            steps.push(ys);
        }
        if length == 0 {
            let ys = ys_types(&f, init, xs)?;
            return Ok((v, ys.iter().map(|t| Tensor::zeros(&[&[0], &t.shape[..]].concat(), t.dtype)).collect()));
        }
        let count = steps.first().map_or(0, Vec::len);
        let ys = (0..count)
            .map(|j| Tensor::try_stack(&steps.iter().map(|s| &s[j]).collect::<Vec<_>>(), 0))
            .collect::<Result<Vec<_>>>()?;
        return Ok((v, ys));
    }
    let mut inputs = vec![TensorType::new(DType::I64, &[])];
    inputs.extend(want.iter().cloned());
    inputs.extend(xs.iter().map(|x| TensorType::new(x.dtype(), &x.shape()[1..])));
    let carries = init.len();
    let save = saves_carries(init);
    let mut user_ys = 0;
    let b = trace_body("body", &inputs, |ins| {
        let (c, ys) = f(&ins[1..1 + carries], &ins[1 + carries..1 + carries + xs.len()])?;
        check_carries("scan", &want, &types(&c))?;
        user_ys = ys.len();
        Ok(with_residuals(c.into_iter().chain(ys).collect(), &ins[1..1 + carries], save))
    })?;
    let mut b = b;
    if save {
        b.save_variant_products(1 + carries + xs.len(), carries);
    }
    let mut operands = init.to_vec();
    operands.extend(xs.iter().cloned());
    let nx = xs.len();
    let mut results = emit_region(
        |mut r| {
            Op::Scan(Arc::new(ScanOp { body: r.pop().expect("one body"), length, carries, xs: nx, reverse: false }))
        },
        vec![b],
        &operands,
    )?;
    let mut ys = results.split_off(carries);
    ys.truncate(user_ys);
    Ok((results, ys))
}

/// The types of the per-step outputs of a scan's `f`, found by tracing it once into a graph
/// that is thrown away (nothing runs, no Variable changes): what an eager scan over zero rows
/// stacks, as the traced one does.
fn ys_types(
    f: &impl Fn(&[Tensor], &[Tensor]) -> Result<(Vec<Tensor>, Vec<Tensor>)>,
    init: &[Tensor],
    xs: &[Tensor],
) -> Result<Vec<TensorType>> {
    let (ys, _) = run_in_trace(TraceState::new("scan_types", false), || -> Result<Vec<TensorType>> {
        let carries: Vec<Tensor> = init.iter().map(|t| add_input(t.tensor_type())).collect();
        let rows: Vec<Tensor> = xs.iter().map(|x| add_input(TensorType::new(x.dtype(), &x.shape()[1..]))).collect();
        Ok(types(&f(&carries, &rows)?.1))
    });
    ys
}

/// `x`'s first `length` rows along axis 0, recorded on gradient tapes as one step
/// (`Recorded::Unstack`, whose VJP stacks the rows' gradients) rather than a gather per row.
fn unstack(x: &Tensor, length: usize) -> Result<Vec<Tensor>> {
    let rows =
        without_tapes(|| (0..length).map(|i| x.try_gather(&Tensor::scalar(i as i64), 0)).collect::<Result<Vec<_>>>())?;
    record_many(Recorded::Unstack, &[x], &rows);
    Ok(rows)
}

/// The common leading size of the `xs`.
fn scan_length(xs: &[Tensor]) -> Result<usize> {
    let first = xs
        .first()
        .ok_or_else(|| Error::invalid("scan", "needs at least one x to scan over (fori_loop loops without)"))?;
    let n = *first
        .shape()
        .first()
        .ok_or_else(|| Error::invalid("scan", format!("x 0 is a scalar ({})", first.tensor_type())))?;
    for (i, x) in xs.iter().enumerate() {
        if x.shape().first() != Some(&n) {
            return Err(Error::invalid(
                "scan",
                format!("x {i} is {}; every x needs the leading size {n}", x.tensor_type()),
            ));
        }
    }
    Ok(n)
}
