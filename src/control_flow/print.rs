//! `print`: TF's `tf.print`.

use kiln_ir::interp::region::{print_line, print_text};
use kiln_ir::Op;

use crate::context::trace;
use crate::{Result, Tensor};

/// Prints `message` and the values when they are computed: at once eagerly; each time the
/// graph runs when traced (a `print` node the optimizer never removes), so a print inside a
/// compiled loop prints every iteration. Prints of one graph run in the order they were traced.
///
/// ```
/// use kiln::Tensor;
/// let f = kiln::function(|x: &Tensor| {
///     kiln::print("x =", &[x])?;
///     Ok(x * 2.0)
/// });
/// f.call(&Tensor::scalar(3.0f32)).unwrap(); // prints `x = 3.0` (or similar)
/// ```
pub fn print(message: &str, values: &[&Tensor]) -> Result<()> {
    if values.iter().any(|v| v.is_symbolic()) || crate::context::is_tracing() {
        trace::add_effect(Op::Print(message.to_string()), values)?;
        return Ok(());
    }
    let arrays = values.iter().map(|v| v.try_array("print")).collect::<Result<Vec<_>>>()?;
    print_line(print_text(message, &arrays));
    Ok(())
}
