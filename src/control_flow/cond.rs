//! `cond` and `switch_case`.

use std::sync::Arc;

use kiln_ir::{CaseOp, DType, Op};

use super::check_scalar;
use crate::context::body::{emit_region, trace_body};
use crate::{Error, Result, Tensor};

/// `true_fn()` if `pred` is true, else `false_fn()` (TF's `tf.cond`, JAX's `lax.cond`).
///
/// `pred` is a `bool` scalar. Eagerly, or while tracing with a concrete `pred`, only the
/// taken branch runs. With a symbolic `pred` both branches are traced into one `case` node
/// and the taken one runs when the graph does; they must return the same dtypes and shapes.
///
/// ```
/// use kiln::Tensor;
/// let f = kiln::function(|x: &Tensor| {
///     kiln::cond(&x.sum_all().greater(&Tensor::scalar(0.0f32)), || Ok(x * 2.0), || Ok(x.neg()))
/// });
/// let x = Tensor::new(&[1.0f32, -2.0, 3.0]);
/// assert_eq!(f.call(&x).unwrap().to_vec::<f32>().unwrap(), vec![2.0, -4.0, 6.0]);
/// assert_eq!(f.call(&x.neg()).unwrap().to_vec::<f32>().unwrap(), vec![1.0, -2.0, 3.0]);
/// ```
pub fn cond(
    pred: &Tensor,
    true_fn: impl FnOnce() -> Result<Tensor>,
    false_fn: impl FnOnce() -> Result<Tensor>,
) -> Result<Tensor> {
    check_scalar("cond", "the predicate", pred, &[DType::Bool])?;
    if !pred.is_symbolic() {
        return if pred.try_array("cond")?.get_f64(0) != 0.0 { true_fn() } else { false_fn() };
    }
    let no = trace_body("false_fn", &[], |_| Ok(vec![false_fn()?]))?;
    let yes = trace_body("true_fn", &[], |_| Ok(vec![true_fn()?]))?;
    same_results("cond", &["false_fn", "true_fn"], &[no.output_types(), yes.output_types()])?;
    let out =
        emit_region(|branches| Op::Case(Arc::new(CaseOp { branches })), vec![no, yes], std::slice::from_ref(pred))?;
    Ok(out.into_iter().next().expect("one result"))
}

/// `branches[index]()` (TF's `tf.switch_case`; JAX's `lax.switch`). `index` is an `i32` or
/// `i64` scalar; an index outside `0..branches.len()` runs the last branch, as TF runs its
/// default. Traced with a symbolic index, every branch is traced into one `case` node.
///
/// ```
/// use kiln::Tensor;
/// let pick = |i: i32| {
///     kiln::switch_case(&Tensor::scalar(i), &[&|| Ok(Tensor::scalar(10.0f32)), &|| Ok(Tensor::scalar(20.0f32))])
/// };
/// assert_eq!(pick(0).unwrap().to_scalar::<f32>().unwrap(), 10.0);
/// assert_eq!(pick(7).unwrap().to_scalar::<f32>().unwrap(), 20.0);
/// ```
pub fn switch_case(index: &Tensor, branches: &[&dyn Fn() -> Result<Tensor>]) -> Result<Tensor> {
    check_scalar("switch_case", "the index", index, &[DType::I32, DType::I64])?;
    if branches.is_empty() {
        return Err(Error::invalid("switch_case", "needs at least one branch"));
    }
    if !index.is_symbolic() {
        let k = kiln_ir::interp::region::branch_index(index.try_array("switch_case")?, branches.len())?;
        return branches[k]();
    }
    let bodies = branches
        .iter()
        .enumerate()
        .map(|(k, b)| trace_body(&format!("branch_{k}"), &[], |_| Ok(vec![b()?])))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = (0..bodies.len()).map(|k| format!("branch {k}")).collect();
    same_results("switch_case", &names, &bodies.iter().map(|b| b.output_types()).collect::<Vec<_>>())?;
    let out = emit_region(|branches| Op::Case(Arc::new(CaseOp { branches })), bodies, std::slice::from_ref(index))?;
    Ok(out.into_iter().next().expect("one result"))
}

/// `Err` naming `op` and the branches unless every branch returns the types of the first.
fn same_results(op: &'static str, names: &[impl AsRef<str>], outs: &[Vec<kiln_ir::TensorType>]) -> Result<()> {
    let show = |ts: &[kiln_ir::TensorType]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    for (k, o) in outs.iter().enumerate().skip(1) {
        if *o != outs[0] {
            return Err(Error::invalid(
                op,
                format!(
                    "{} returns {} but {} returns {}; branches must agree in dtype and shape",
                    names[k].as_ref(),
                    show(o),
                    names[0].as_ref(),
                    show(&outs[0])
                ),
            ));
        }
    }
    Ok(())
}
