//! Every op of docs/DESIGN.md §4, run eagerly and as a traced function on every backend
//! (`common::assert_equivalent`, tolerances stated in `common::tolerance`).

mod common;

use common::{assert_equivalent, rand_f32, rand_f64};
use kiln::{s, DType, Tensor, Variable};

type UnaryCase = (&'static str, fn(&Tensor) -> Tensor);

fn unary_ops() -> Vec<UnaryCase> {
    vec![
        ("neg", |x| x.neg()),
        ("abs", |x| x.abs()),
        ("exp", |x| x.exp()),
        ("log", |x| x.abs().log()),
        ("log1p", |x| x.abs().log1p()),
        ("expm1", |x| x.expm1()),
        ("sqrt", |x| x.abs().sqrt()),
        ("rsqrt", |x| (x.abs() + 0.1).rsqrt()),
        ("square", |x| x.square()),
        ("tanh", |x| x.tanh()),
        ("sigmoid", |x| x.sigmoid()),
        ("relu", |x| x.relu()),
        ("softplus", |x| x.softplus()),
        ("sin", |x| x.sin()),
        ("cos", |x| x.cos()),
        ("sign", |x| x.sign()),
        ("floor", |x| x.floor()),
        ("ceil", |x| x.ceil()),
        ("round", |x| (x * 2.0).round()),
    ]
}

#[test]
fn unary_ops_f32_and_f64() {
    for (_, op) in unary_ops() {
        for x in [rand_f32(&[3, 17], 1), rand_f64(&[3, 17], 2), rand_f32(&[0, 4], 3)] {
            assert_equivalent(move |a: &[Tensor]| vec![op(&a[0])], &[x], &[]);
        }
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let ops: Vec<fn(&Tensor, &Tensor) -> Tensor> = vec![
        |a, b| a + b,
        |a, b| a - b,
        |a, b| a * b,
        |a, b| a / b,
        |a, b| a.abs().pow(b),
        |a, b| a.maximum(b),
        |a, b| a.minimum(b),
        |a, b| a.equal(b),
        |a, b| a.not_equal(b),
        |a, b| a.less(b),
        |a, b| a.less_equal(b),
        |a, b| a.greater(b),
        |a, b| a.greater_equal(b),
        |a, b| a.greater(b).logical_and(&a.less(&(b + 1.0))),
        |a, b| a.greater(b).logical_or(&a.less(&(b - 1.0))).logical_not(),
    ];
    for op in ops {
        for (x, y) in [
            (rand_f32(&[4, 5], 1), rand_f32(&[5], 2)),
            (rand_f64(&[4, 1], 3), rand_f64(&[1, 6], 4)),
            (rand_f32(&[2, 0, 3], 5), rand_f32(&[3], 6)),
            (rand_f32(&[], 7), rand_f32(&[3, 2], 8)),
        ] {
            assert_equivalent(move |a: &[Tensor]| vec![op(&a[0], &a[1])], &[x, y], &[]);
        }
    }
}

#[test]
fn integer_arithmetic_is_exact() {
    let x = Tensor::new(&[[7i32, -7, 9], [0, 5, -1]]);
    let y = Tensor::new(&[2i32, 3, -4]);
    assert_equivalent(
        |a: &[Tensor]| {
            let (x, y) = (&a[0], &a[1]);
            vec![x + y, x - y, x * y, x / y, x.maximum(y), x.abs(), x.sign(), x.sum(&[0], false), x.prod(&[1], false)]
        },
        &[x.clone(), y.clone()],
        &[],
    );
    assert_equivalent(|a: &[Tensor]| vec![a[0].cast(DType::I64) * 3.0 - 1.0], &[x], &[]);
}

#[test]
fn select_and_casts() {
    let x = Tensor::new(&[-1.5f32, -0.5, 0.5, 2.5, f32::NAN, 3e9]);
    assert_equivalent(
        |a: &[Tensor]| {
            let x = &a[0];
            let c = x.greater(&x.scalar_like(0.0));
            vec![
                c.select(x, &x.neg()),
                x.cast(DType::I32),
                x.cast(DType::I64),
                x.cast(DType::F64),
                x.cast(DType::Bool),
                c.cast(DType::F32),
                x.cast(DType::I32).cast(DType::F32),
            ]
        },
        &[x],
        &[],
    );
}

#[test]
fn reductions_over_several_axes() {
    let x = rand_f32(&[3, 4, 5], 9);
    for keep in [false, true] {
        assert_equivalent(
            move |a: &[Tensor]| {
                let x = &a[0];
                vec![
                    x.sum(&[0, 2], keep),
                    x.mean(&[1], keep),
                    x.max(&[-1], keep),
                    x.min(&[0, 1, 2], keep),
                    x.prod(&[2], keep),
                    x.argmax(1, keep),
                    x.argmin(-1, keep),
                    x.sum_all(),
                ]
            },
            std::slice::from_ref(&x),
            &[],
        );
    }
    assert_equivalent(
        |a: &[Tensor]| vec![a[0].sum(&[0], false), a[0].max(&[1], false)],
        &[Tensor::zeros(&[0, 3], DType::F32)],
        &[],
    );
}

#[test]
fn movement_ops() {
    let x = rand_f32(&[2, 3, 4], 10);
    assert_equivalent(
        |a: &[Tensor]| {
            let x = &a[0];
            vec![
                x.reshape(&[6, -1]),
                x.transpose(&[2, 0, 1]),
                x.t(),
                x.slice(&s![.., 1.., ..;-2]),
                x.slice(&s![-1, ..2]),
                Tensor::concat(&[x, &x.exp()], 1),
                Tensor::stack(&[x, x], -1),
                x.gather(&Tensor::new(&[3i64, 0, 3]), 2),
                x.slice(&s![0]).broadcast_to(&[5, 3, 4]),
                x.expand_dims(1).squeeze(&[1]),
            ]
        },
        &[x],
        &[],
    );
}

#[test]
fn matmul_batched_and_broadcast() {
    for (x, y) in [
        (rand_f32(&[5, 7], 1), rand_f32(&[7, 3], 2)),
        (rand_f64(&[2, 4, 3], 3), rand_f64(&[3, 5], 4)),
        (rand_f32(&[2, 1, 4, 3], 5), rand_f32(&[3, 3, 2], 6)),
        (rand_f32(&[0, 3], 7), rand_f32(&[3, 2], 8)),
        // Large enough to be split over the executor's pool (kiln_ir::matmul::parts), along
        // n, along m, and with a broadcast batch.
        (rand_f32(&[300, 200], 9), rand_f32(&[200, 257], 10)),
        (rand_f64(&[520, 400], 11), rand_f64(&[400, 33], 12)),
        (rand_f32(&[2, 300, 200], 13), rand_f32(&[200, 129], 14)),
    ] {
        assert_equivalent(|a: &[Tensor]| vec![a[0].matmul(&a[1]), (a[0].matmul(&a[1]) + 1.0).relu()], &[x, y], &[]);
    }
}

#[test]
fn composites_and_creation() {
    let x = rand_f32(&[4, 6], 11) * 300.0;
    assert_equivalent(
        |a: &[Tensor]| {
            let x = &a[0];
            vec![
                x.softmax(-1),
                x.log_softmax(0),
                x.logsumexp(&[1], false),
                x + Tensor::arange(0.0, 6.0, 1.0, DType::F32),
                x.slice(&s![..4, ..4]).matmul(&Tensor::eye(4, DType::F32)),
                x + Tensor::random_uniform(&[6], DType::F32, 3),
                x * Tensor::random_normal(&[4, 1], DType::F32, 4),
            ]
        },
        &[x],
        &[],
    );
}

#[test]
fn variables_inside_functions() {
    let v = Variable::new(rand_f32(&[3], 12));
    let w = Variable::new(Tensor::zeros(&[3], DType::F32));
    let (v2, w2) = (v.clone(), w.clone());
    assert_equivalent(
        move |a: &[Tensor]| {
            let x = &a[0];
            w2.assign(&(v2.read() * x)).unwrap();
            v2.assign_sub(&w2.read()).unwrap();
            vec![v2.read() + w2.read()]
        },
        &[rand_f32(&[3], 13)],
        &[v, w],
    );
}

/// Large enough (≥ 4096 elements) that eager ops run as one-op compiled kernels
/// (`src/eager.rs`): eager must still agree with the interpreter backend.
#[test]
fn large_eager_ops_use_compiled_kernels_and_agree() {
    let x = rand_f32(&[64, 128], 14);
    let y = rand_f64(&[64, 128], 15);
    assert_equivalent(
        |a: &[Tensor]| {
            let x = &a[0];
            let gelu = 0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.797_884_6).tanh());
            vec![gelu, x.softmax(-1), x.sum(&[0], false), x.greater(&x.scalar_like(0.5)), x.cast(DType::I32)]
        },
        &[x],
        &[],
    );
    assert_equivalent(|a: &[Tensor]| vec![a[0].exp().log1p(), a[0].max(&[1], true)], &[y], &[]);
    let i = Tensor::arange(-4096.0, 4096.0, 1.0, DType::I32);
    assert_equivalent(|a: &[Tensor]| vec![&a[0] * 3.0 - 7.0, &a[0] / 7.0], &[i], &[]);
}
