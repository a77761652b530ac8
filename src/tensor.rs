//! `Tensor`: an immutable, cheaply cloned n-dimensional value that is either concrete (a
//! buffer), deferred (an eager elementwise op computed when first observed: `lazy.rs`) or,
//! while a function is being traced, symbolic (a node of the graph being built). The same
//! user code runs on all three.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kiln_ir::{Array, DType, Element, NodeId, TensorType};

use crate::lazy::Deferred;
use crate::{Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ids a thread takes from [`NEXT_ID`] at once: one shared atomic add per block instead of
/// one per tensor (an add on a shared counter costs ~10 ns, a fifth of a small call).
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's unused ids: `next..end`.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A fresh process-wide identity (tensors, variables and traces share the counter). Ids
/// are unique, not ordered: each thread hands out its own block.
pub(crate) fn fresh_id() -> u64 {
    let from_block = IDS.try_with(|ids| {
        let (next, end) = ids.get();
        if next < end {
            ids.set((next + 1, end));
            return next;
        }
        let start = NEXT_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
        ids.set((start + 1, start + ID_BLOCK));
        start
    });
    // A thread past its thread-locals' destruction takes ids one at a time.
    from_block.unwrap_or_else(|_| NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// An n-dimensional array of one [`DType`], row-major and contiguous.
///
/// Cloning is cheap (an `Arc`); tensors never change. Arithmetic follows numpy's
/// broadcasting with **no implicit dtype promotion**; a Rust `f64` literal next to a tensor
/// takes the tensor's dtype.
///
/// ```
/// use kiln::{DType, Tensor};
/// let a = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]]);
/// let b = (&a * 2.0 + 1.0).sum(&[1], false);
/// assert_eq!(b.to_vec::<f32>().unwrap(), vec![8.0, 16.0]);
/// assert_eq!(a.dtype(), DType::F32);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) value: Value,
}

#[derive(Clone)]
pub(crate) enum Value {
    Concrete(Array),
    Symbolic(Symbol),
    /// An eager elementwise op not computed yet (`lazy.rs`).
    Deferred(Arc<Deferred>),
}

/// A node of the graph being traced by trace `trace`.
#[derive(Clone)]
pub(crate) struct Symbol {
    pub(crate) trace: u64,
    pub(crate) node: NodeId,
    pub(crate) ty: TensorType,
}

impl Tensor {
    pub(crate) fn from_array(a: Array) -> Tensor {
        if a.rank() >= 2 && a.dtype().is_float() {
            // The process's first matrix: products are likely to follow, so gemm's one-time
            // set-up starts now on a thread of its own, long before a first call needs it.
            kiln_ir::matmul::warm_up();
        }
        Tensor(Arc::new(Inner { id: fresh_id(), value: Value::Concrete(a) }))
    }

    pub(crate) fn from_value(value: Value) -> Tensor {
        Tensor(Arc::new(Inner { id: fresh_id(), value }))
    }

    pub(crate) fn symbolic(trace: u64, node: NodeId, ty: TensorType) -> Tensor {
        Tensor(Arc::new(Inner { id: fresh_id(), value: Value::Symbolic(Symbol { trace, node, ty }) }))
    }

    /// A process-unique identity, stable across clones (used by tapes and traces).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The concrete value, or `None` for a symbolic tensor inside a trace. A deferred eager
    /// value (`kiln::set_lazy_eager`) is computed now; `None` also if that fails (out of
    /// memory), which the fallible accessors (`to_vec`, ops) report as an `Err`.
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[1.0f32, 2.0]);
    /// assert_eq!(t.array().unwrap().len(), 2);
    /// ```
    pub fn array(&self) -> Option<&Array> {
        match &self.0.value {
            Value::Concrete(a) => Some(a),
            Value::Deferred(d) => crate::lazy::value(self, d).as_ref().ok(),
            Value::Symbolic(_) => None,
        }
    }

    pub(crate) fn try_array(&self, op: &str) -> Result<&Array> {
        match &self.0.value {
            Value::Concrete(a) => Ok(a),
            Value::Deferred(d) => crate::lazy::value(self, d).as_ref().map_err(Clone::clone),
            Value::Symbolic(_) => Err(Error::Symbolic(format!(
                "`{op}` needs a concrete value, but this tensor is symbolic (inside a traced function, values exist only when the graph runs)"
            ))),
        }
    }

    pub(crate) fn symbol(&self) -> Option<&Symbol> {
        match &self.0.value {
            Value::Symbolic(s) => Some(s),
            Value::Concrete(_) | Value::Deferred(_) => None,
        }
    }

    /// True while tracing: the tensor is a node of a graph, not a value.
    pub fn is_symbolic(&self) -> bool {
        self.symbol().is_some()
    }

    /// The dims, e.g. `&[2, 3]`; `&[]` for a scalar.
    pub fn shape(&self) -> &[usize] {
        match &self.0.value {
            Value::Concrete(a) => a.shape(),
            Value::Symbolic(s) => &s.ty.shape,
            Value::Deferred(d) => &d.ty.shape,
        }
    }

    pub fn dtype(&self) -> DType {
        match &self.0.value {
            Value::Concrete(a) => a.dtype(),
            Value::Symbolic(s) => s.ty.dtype,
            Value::Deferred(d) => d.ty.dtype,
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// Dtype and shape together.
    pub fn tensor_type(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape())
    }

    /// Builds a tensor from a nested Rust array of 1 to 4 dims (or a scalar).
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[[1i32, 2], [3, 4]]);
    /// assert_eq!(t.shape(), &[2, 2]);
    /// ```
    pub fn new<A: NestedArray>(values: &A) -> Tensor {
        let mut flat = Vec::new();
        values.flatten_into(&mut flat);
        let array = Array::from_vec(flat, &A::type_shape()).expect("a nested array always fits its own shape");
        Tensor::from_array(array)
    }

    /// Builds a tensor from flat row-major data; `Err` if `data.len()` is not the product of `shape`.
    ///
    /// ```
    /// let t = kiln::Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(kiln::Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).is_err());
    /// ```
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_array(Array::from_vec(data, shape)?))
    }

    /// A rank-0 tensor.
    ///
    /// ```
    /// assert_eq!(kiln::Tensor::scalar(2.5f32).to_scalar::<f32>().unwrap(), 2.5);
    /// ```
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_array(Array::scalar(value))
    }

    /// Copies the elements out, row-major; `Err` if `T` is not the tensor's dtype or the tensor is symbolic.
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[1.0f32, 2.0]);
    /// assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    /// assert!(t.to_vec::<f64>().is_err());
    /// ```
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.try_array("to_vec")?.to_vec()
    }

    /// The single element of a tensor with one element (any rank).
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[[7i64]]);
    /// assert_eq!(t.to_scalar::<i64>().unwrap(), 7);
    /// ```
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        let v = self.to_vec::<T>()?;
        if v.len() != 1 {
            return Err(Error::invalid(
                "to_scalar",
                format!("tensor of shape {} has {} elements, not 1", kiln_ir::shape::fmt_shape(self.shape()), v.len()),
            ));
        }
        Ok(v[0])
    }

    /// The value as `f64`, whatever the dtype (for printing metrics and losses).
    ///
    /// ```
    /// assert_eq!(kiln::Tensor::scalar(3i32).item().unwrap(), 3.0);
    /// ```
    pub fn item(&self) -> Result<f64> {
        let a = self.try_array("item")?;
        if a.len() != 1 {
            return Err(Error::invalid("item", format!("tensor has {} elements, not 1", a.len())));
        }
        Ok(a.get_f64(0))
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.value {
            Value::Concrete(a) => fmt::Display::fmt(a, f),
            Value::Symbolic(s) => write!(f, "<symbolic %{} : {}>", s.node.index(), s.ty),
            Value::Deferred(_) => match self.try_array("display") {
                Ok(a) => fmt::Display::fmt(a, f),
                Err(e) => write!(f, "<not computed: {e}>"),
            },
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({}, {})", self.tensor_type(), self)
    }
}

impl From<Array> for Tensor {
    fn from(a: Array) -> Tensor {
        Tensor::from_array(a)
    }
}

/// Nested Rust arrays (`[T; N]`, `[[T; N]; M]`, ... up to 4 dims, or a scalar) that
/// [`Tensor::new`] accepts. The shape comes from the type, so empty arrays keep their inner dims.
pub trait NestedArray {
    type Elem: Element;
    fn type_shape() -> Vec<usize>;
    fn flatten_into(&self, out: &mut Vec<Self::Elem>);
}

macro_rules! scalar_nested {
    ($($t:ty),*) => {$(
        impl NestedArray for $t {
            type Elem = $t;
            fn type_shape() -> Vec<usize> {
                vec![]
            }
            fn flatten_into(&self, out: &mut Vec<$t>) {
                out.push(*self);
            }
        }
    )*};
}
scalar_nested!(f32, f64, i32, i64, bool);

impl<A: NestedArray, const N: usize> NestedArray for [A; N] {
    type Elem = A::Elem;
    fn type_shape() -> Vec<usize> {
        let mut s = vec![N];
        s.extend(A::type_shape());
        s
    }
    fn flatten_into(&self, out: &mut Vec<A::Elem>) {
        for a in self {
            a.flatten_into(out);
        }
    }
}
