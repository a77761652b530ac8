//! Shape and dtype rules: for each op, the type of its result from its operands' types.
//! Eager execution, tracing and the verifier all call [`infer`], so the rules live once.

use smallvec::SmallVec;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{Op, ReduceOp, SliceDim};
use crate::shape::{broadcast_shapes, broadcasts_to, checked_bytes, checked_numel, numel, Shape};

/// The static type of a value: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    /// The type of a node that has no value of its own: a region op (its results are read
    /// by `get` nodes) or a `print`. An empty tensor, so nothing is ever allocated for it.
    ///
    /// ```
    /// use kiln_ir::TensorType;
    /// assert_eq!(TensorType::unit().bytes(), 0);
    /// ```
    pub fn unit() -> TensorType {
        TensorType::new(DType::Bool, &[0])
    }

    pub fn new(dtype: DType, shape: &[usize]) -> TensorType {
        TensorType { dtype, shape: SmallVec::from_slice(shape) }
    }

    #[inline]
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Size in bytes of a buffer of this type.
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size()
    }

    /// Size in bytes, or `None` if it overflows `isize::MAX` (no allocation can hold it).
    ///
    /// ```
    /// use kiln_ir::{DType, TensorType};
    /// assert_eq!(TensorType::new(DType::F64, &[2, 3]).checked_bytes(), Some(48));
    /// assert_eq!(TensorType::new(DType::F32, &[1 << 32, 1 << 32]).checked_bytes(), None);
    /// ```
    #[inline]
    pub fn checked_bytes(&self) -> Option<usize> {
        checked_bytes(&self.shape, self.dtype.size())
    }

    /// `Err(Error::Overflow)` naming `op` if a buffer of this type cannot exist.
    ///
    /// ```
    /// use kiln_ir::{DType, TensorType};
    /// assert!(TensorType::new(DType::F32, &[3]).check_size("zeros").is_ok());
    /// let e = TensorType::new(DType::F32, &[1 << 62]).check_size("zeros").unwrap_err();
    /// assert!(e.to_string().starts_with("zeros: f32[4611686018427387904] is too large"), "{e}");
    /// ```
    #[inline]
    pub fn check_size(&self, op: &'static str) -> Result<()> {
        match self.checked_bytes() {
            Some(_) => Ok(()),
            None => Err(Error::Overflow { op, what: self.to_string() }),
        }
    }
}

impl std::fmt::Display for TensorType {
    /// `f32[2,3]`, `i64[]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.dtype, crate::shape::fmt_shape(&self.shape))
    }
}

/// The operand count the op table allows for `op`.
fn arity(op: &Op, args: &[TensorType]) -> Result<()> {
    let a = op.kind().arity();
    if !a.allows(args.len()) {
        return Err(Error::invalid(op.name(), format!("expects {a} operand(s), got {}", args.len())));
    }
    Ok(())
}

fn same_dtype(op: &'static str, a: DType, b: DType) -> Result<()> {
    if a != b {
        return Err(Error::DTypeMismatch { op, lhs: a, rhs: b });
    }
    Ok(())
}

fn broadcast(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    broadcast_shapes(a, b).ok_or_else(|| Error::ShapeMismatch {
        op,
        lhs: SmallVec::from_slice(a),
        rhs: SmallVec::from_slice(b),
    })
}

fn check_axis(op: &'static str, axis: usize, rank: usize) -> Result<()> {
    if axis >= rank {
        return Err(Error::Axis { op, axis: axis as isize, rank });
    }
    Ok(())
}

fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Shape {
    let mut out = Shape::new();
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// The result type of `op` applied to operands of types `args`.
///
/// Source ops whose type is not in their attributes (`Input`, `ReadVar`, `Random`) take
/// it from the graph and are rejected here.
///
/// ```
/// use kiln_ir::{infer, BinaryOp, DType, Op, TensorType};
/// let a = TensorType::new(DType::F32, &[2, 3]);
/// let b = TensorType::new(DType::F32, &[3]);
/// let t = infer(&Op::Binary(BinaryOp::Add), &[a.clone(), b]).unwrap();
/// assert_eq!(t, a);
/// let c = TensorType::new(DType::F64, &[3]);
/// assert!(infer(&Op::Binary(BinaryOp::Add), &[a, c]).is_err());
/// ```
///
/// A result whose size overflows (more than `isize::MAX` bytes) is [`Error::Overflow`].
pub fn infer(op: &Op, args: &[TensorType]) -> Result<TensorType> {
    // Operands were checked when they were made (every result passes through here, and
    // parsed types are bounded by the parser): only the result needs the check.
    // The rule's result is returned as it is, not unwrapped and rewrapped: on the eager path
    // (one call per op) moving the type between two `Result` layouts took about 40% of the
    // function's samples in store-forwarding stalls (docs/PERFORMANCE.md, issue 13).
    let name = op.name();
    let ty = rule(op, name, args);
    if let Ok(t) = &ty {
        t.check_size(name)?;
    }
    ty
}

fn rule(op: &Op, name: &'static str, args: &[TensorType]) -> Result<TensorType> {
    arity(op, args)?;
    match op {
        Op::Input(_) | Op::ReadVar(_) | Op::Random { .. } => {
            Err(Error::invalid(name, "a source op takes its type from the graph, not from operands"))
        }
        Op::Const(a) => Ok(TensorType::new(a.dtype(), a.shape())),
        Op::AssignVar(_) => Ok(args[0].clone()),
        Op::Unary(u) => {
            let d = args[0].dtype;
            if !u.accepts(d) {
                return Err(Error::UnsupportedDType {
                    op: name,
                    dtype: d,
                    expected: if *u == crate::op::UnaryOp::LogicalNot {
                        "bool"
                    } else if u.accepts(DType::I32) {
                        "a numeric dtype"
                    } else {
                        "a float dtype"
                    },
                });
            }
            Ok(args[0].clone())
        }
        Op::Binary(b) => {
            same_dtype(name, args[0].dtype, args[1].dtype)?;
            let d = args[0].dtype;
            if !b.accepts(d) {
                return Err(Error::UnsupportedDType {
                    op: name,
                    dtype: d,
                    expected: if b.accepts(DType::Bool) {
                        "bool"
                    } else if b.accepts(DType::I32) {
                        "a numeric dtype"
                    } else {
                        "a float dtype"
                    },
                });
            }
            let shape = broadcast(name, &args[0].shape, &args[1].shape)?;
            Ok(TensorType { dtype: b.result_dtype(d), shape })
        }
        Op::Select => {
            if args[0].dtype != DType::Bool {
                return Err(Error::UnsupportedDType { op: name, dtype: args[0].dtype, expected: "bool condition" });
            }
            same_dtype(name, args[1].dtype, args[2].dtype)?;
            let s = broadcast(name, &args[0].shape, &args[1].shape)?;
            let s = broadcast(name, &s, &args[2].shape)?;
            Ok(TensorType { dtype: args[1].dtype, shape: s })
        }
        Op::Cast(d) => Ok(TensorType { dtype: *d, shape: args[0].shape.clone() }),
        Op::BroadcastTo(shape) => {
            if !broadcasts_to(&args[0].shape, shape) {
                return Err(Error::ShapeMismatch { op: name, lhs: args[0].shape.clone(), rhs: shape.clone() });
            }
            Ok(TensorType { dtype: args[0].dtype, shape: shape.clone() })
        }
        Op::Reshape(shape) => {
            if checked_numel(shape) != Some(args[0].numel()) {
                return Err(Error::Reshape { from: args[0].shape.clone(), to: crate::shape::fmt_shape(shape) });
            }
            Ok(TensorType { dtype: args[0].dtype, shape: shape.clone() })
        }
        Op::Transpose(perm) => {
            let rank = args[0].shape.len();
            let mut seen = vec![false; rank];
            if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
                return Err(Error::invalid(
                    name,
                    format!("{perm:?} is not a permutation of the {rank} axes of {}", args[0]),
                ));
            }
            let shape = perm.iter().map(|&p| args[0].shape[p]).collect();
            Ok(TensorType { dtype: args[0].dtype, shape })
        }
        Op::Slice(dims) => {
            check_slice(name, dims, &args[0].shape)?;
            Ok(TensorType { dtype: args[0].dtype, shape: dims.iter().map(|d| d.len).collect() })
        }
        Op::Unslice { dims, shape } => {
            check_slice(name, dims, shape)?;
            let sliced: Shape = dims.iter().map(|d| d.len).collect();
            if sliced != args[0].shape {
                return Err(Error::ShapeMismatch { op: name, lhs: args[0].shape.clone(), rhs: sliced });
            }
            Ok(TensorType { dtype: args[0].dtype, shape: shape.clone() })
        }
        Op::Concat { axis } => {
            let first = &args[0];
            check_axis(name, *axis, first.shape.len())?;
            let mut shape = first.shape.clone();
            shape[*axis] = 0;
            for a in args {
                same_dtype(name, first.dtype, a.dtype)?;
                let compatible = a.shape.len() == first.shape.len()
                    && a.shape.iter().zip(&first.shape).enumerate().all(|(i, (x, y))| i == *axis || x == y);
                if !compatible {
                    return Err(Error::ShapeMismatch { op: name, lhs: first.shape.clone(), rhs: a.shape.clone() });
                }
                shape[*axis] = shape[*axis].checked_add(a.shape[*axis]).ok_or_else(|| Error::Overflow {
                    op: name,
                    what: format!("the joined axis {axis} ({} + {})", shape[*axis], a.shape[*axis]),
                })?;
            }
            Ok(TensorType { dtype: first.dtype, shape })
        }
        Op::Gather { axis } => {
            let (p, i) = (&args[0], &args[1]);
            check_axis(name, *axis, p.shape.len())?;
            if !i.dtype.is_int() {
                return Err(Error::UnsupportedDType { op: name, dtype: i.dtype, expected: "integer indices" });
            }
            let mut shape: Shape = p.shape[..*axis].iter().copied().collect();
            shape.extend_from_slice(&i.shape);
            shape.extend_from_slice(&p.shape[axis + 1..]);
            Ok(TensorType { dtype: p.dtype, shape })
        }
        Op::ScatterAdd { axis, shape } => {
            let (u, i) = (&args[0], &args[1]);
            check_axis(name, *axis, shape.len())?;
            if !i.dtype.is_int() {
                return Err(Error::UnsupportedDType { op: name, dtype: i.dtype, expected: "integer indices" });
            }
            if !u.dtype.is_numeric() {
                return Err(Error::UnsupportedDType { op: name, dtype: u.dtype, expected: "a numeric dtype" });
            }
            let mut expect: Shape = shape[..*axis].iter().copied().collect();
            expect.extend_from_slice(&i.shape);
            expect.extend_from_slice(&shape[axis + 1..]);
            if expect != u.shape {
                return Err(Error::ShapeMismatch { op: name, lhs: u.shape.clone(), rhs: expect });
            }
            Ok(TensorType { dtype: u.dtype, shape: shape.clone() })
        }
        Op::Reduce { op: r, axes, keepdims } => {
            let a = &args[0];
            if !a.dtype.is_numeric() {
                return Err(Error::UnsupportedDType { op: name, dtype: a.dtype, expected: "a numeric dtype" });
            }
            let rank = a.shape.len();
            for (k, &ax) in axes.iter().enumerate() {
                check_axis(name, ax, rank)?;
                if k > 0 && axes[k - 1] >= ax {
                    return Err(Error::invalid(name, format!("axes {axes:?} must be sorted and unique")));
                }
            }
            let count: usize = axes.iter().map(|&ax| a.shape[ax]).product();
            if *r == ReduceOp::Mean && a.dtype.is_int() && count == 0 && !axes.is_empty() {
                return Err(Error::invalid(name, format!("mean of an empty integer axis of {a}")));
            }
            Ok(TensorType { dtype: a.dtype, shape: reduced_shape(&a.shape, axes, *keepdims) })
        }
        Op::ArgReduce { axis, keepdims, .. } => {
            let a = &args[0];
            if !a.dtype.is_numeric() {
                return Err(Error::UnsupportedDType { op: name, dtype: a.dtype, expected: "a numeric dtype" });
            }
            check_axis(name, *axis, a.shape.len())?;
            if a.shape[*axis] == 0 {
                return Err(Error::invalid(name, format!("empty axis {axis} of {a}")));
            }
            Ok(TensorType { dtype: DType::I64, shape: reduced_shape(&a.shape, &[*axis], *keepdims) })
        }
        Op::MatMul => {
            let (a, b) = (&args[0], &args[1]);
            same_dtype(name, a.dtype, b.dtype)?;
            if !a.dtype.is_numeric() {
                return Err(Error::UnsupportedDType { op: name, dtype: a.dtype, expected: "a numeric dtype" });
            }
            let shape = crate::matmul::MatMulShape::of(a.dtype, &a.shape, &b.shape)?.out;
            Ok(TensorType { dtype: a.dtype, shape })
        }
        Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) => {
            op.result_types(args).expect("a region op")?;
            Ok(TensorType::unit())
        }
        Op::Print(_) => Ok(TensorType::unit()),
        Op::AllReduce(_) => {
            let a = &args[0];
            if !a.dtype.is_numeric() {
                return Err(Error::UnsupportedDType { op: name, dtype: a.dtype, expected: "a numeric dtype" });
            }
            Ok(a.clone())
        }
        Op::Broadcast(_) => Ok(args[0].clone()),
        Op::AllGather(ranks) => {
            if *ranks == 0 {
                return Err(Error::invalid(name, "gathers from at least one process"));
            }
            let mut shape = Shape::from_slice(&[*ranks]);
            shape.extend_from_slice(&args[0].shape);
            Ok(TensorType { dtype: args[0].dtype, shape })
        }
        Op::Get(_) => Err(Error::invalid(name, "is added with Graph::add_region, which knows the region's results")),
        Op::Fused(k) => {
            let body = &k.body;
            if args.len() != body.inputs().len() {
                return Err(Error::invalid(
                    name,
                    format!("kernel takes {} operand(s), got {}", body.inputs().len(), args.len()),
                ));
            }
            for (i, (arg, &inp)) in args.iter().zip(body.inputs()).enumerate() {
                if &body.node(inp).ty != arg {
                    return Err(Error::invalid(
                        name,
                        format!("operand {i} is {arg} but the kernel expects {}", body.node(inp).ty),
                    ));
                }
            }
            match body.outputs() {
                [out] => Ok(body.node(*out).ty.clone()),
                outs => Err(Error::invalid(name, format!("a kernel has one output, this one has {}", outs.len()))),
            }
        }
    }
}

fn check_slice(op: &'static str, dims: &[SliceDim], shape: &[usize]) -> Result<()> {
    if dims.len() != shape.len() {
        return Err(Error::invalid(op, format!("{} slice dims for rank {}", dims.len(), shape.len())));
    }
    for (ax, (d, &n)) in dims.iter().zip(shape).enumerate() {
        if !slice_fits(d, n) {
            return Err(Error::invalid(op, format!("slice {d:?} does not fit axis {ax} of size {n}")));
        }
    }
    Ok(())
}

/// Whether the slice `d` reads only inside an axis of size `n` (in i128, so no step or
/// length can overflow the check).
pub(crate) fn slice_fits(d: &SliceDim, n: usize) -> bool {
    let last = d.start as i128 + (d.len as i128 - 1) * d.step as i128;
    d.step != 0 && (d.len == 0 || (d.start < n && last >= 0 && last < n as i128))
}
