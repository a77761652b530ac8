//! Random well-typed programs (proptest): each runs eagerly and as a traced function on every
//! backend; outputs and Variable states must agree. Programs include control flow: `cond`
//! (a branch may assign the Variable), `scan` (reading the Variable, possibly with a `cond`
//! inside) and `while_loop` with a data-dependent trip count (possibly assigning the
//! Variable every iteration). Several hundred cases run in CI; set
//! `PROPTEST_CASES` for a longer campaign.

mod common;

use kiln::{Backend, DType, Tensor, Variable};
use proptest::prelude::*;

/// One step of a program: reads values from the pool by index (modulo its length) and pushes
/// a result. Every value's shape broadcasts to `[a, b]`, so any two values combine.
#[derive(Clone, Debug)]
enum Step {
    Unary(u8, usize),
    Binary(u8, usize, usize),
    Select(usize, usize, usize),
    Reduce(u8, u8, usize),
    ReshapeRoundTrip(usize),
    TransposeRoundTrip(usize),
    MatMul(usize, usize),
    ReadVar,
    AssignVar(usize),
    Cast(usize),
    /// `cond` on the sign of a value's sum; the true branch may assign the Variable.
    Cond(usize, usize, usize, bool),
    /// `scan` over the rows of a value, the carry seeded by another; the body reads the
    /// Variable and may hold a `cond` of its own.
    Scan(usize, usize, bool),
    /// `while_loop` of at most `n` iterations that also stops when the value grows past a
    /// bound (a data-dependent trip count); the body may assign the Variable.
    While(usize, usize, u8, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..12, any::<usize>()).prop_map(|(o, i)| Step::Unary(o, i)),
        (0u8..6, any::<usize>(), any::<usize>()).prop_map(|(o, i, j)| Step::Binary(o, i, j)),
        (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(c, i, j)| Step::Select(c, i, j)),
        (0u8..4, 0u8..2, any::<usize>()).prop_map(|(o, a, i)| Step::Reduce(o, a, i)),
        any::<usize>().prop_map(Step::ReshapeRoundTrip),
        any::<usize>().prop_map(Step::TransposeRoundTrip),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Step::MatMul(i, j)),
        Just(Step::ReadVar),
        any::<usize>().prop_map(Step::AssignVar),
        any::<usize>().prop_map(Step::Cast),
        (any::<usize>(), any::<usize>(), any::<usize>(), any::<bool>()).prop_map(|(c, i, j, w)| Step::Cond(c, i, j, w)),
        (any::<usize>(), any::<usize>(), any::<bool>()).prop_map(|(i, j, n)| Step::Scan(i, j, n)),
        (any::<usize>(), any::<usize>(), 0u8..4, any::<bool>()).prop_map(|(i, j, n, w)| Step::While(i, j, n, w)),
    ]
}

fn pick(pool: &[Tensor], i: usize) -> &Tensor {
    &pool[i % pool.len()]
}

/// Runs the program with kiln ops; the same code runs eagerly and traced.
fn run(steps: &[Step], inputs: &[Tensor], var: &Variable, a: usize, b: usize) -> Vec<Tensor> {
    let mut pool: Vec<Tensor> = inputs.to_vec();
    for s in steps {
        let t = match *s {
            Step::Unary(o, i) => {
                let x = pick(&pool, i);
                match o {
                    0 => x.tanh(),
                    1 => x.tanh().exp(),
                    2 => (x.square() + 1.0).log(),
                    3 => x.abs().sqrt(),
                    4 => x.sigmoid(),
                    5 => x.relu(),
                    6 => x.neg(),
                    7 => x.sin(),
                    8 => x.softplus(),
                    9 => x.floor(),
                    10 => x.round(),
                    _ => x.abs(),
                }
            }
            Step::Binary(o, i, j) => {
                let (x, y) = (pick(&pool, i), pick(&pool, j));
                match o {
                    0 => x + y,
                    1 => x - y,
                    2 => x.tanh() * y,
                    3 => x / &(y.square() + 1.0),
                    4 => x.maximum(y),
                    _ => x.minimum(y),
                }
            }
            Step::Select(c, i, j) => {
                let cond = pick(&pool, c).greater(&pick(&pool, i).scalar_like(0.0));
                cond.select(pick(&pool, i), pick(&pool, j))
            }
            Step::Reduce(o, axis, i) => {
                let x = pick(&pool, i).broadcast_to(&[a, b]);
                let ax = axis as i64;
                match o {
                    0 => x.sum(ax, true),
                    1 => x.mean(ax, true),
                    2 => x.max(ax, true),
                    _ => x.min(ax, true),
                }
            }
            Step::ReshapeRoundTrip(i) => pick(&pool, i).broadcast_to(&[a, b]).reshape(&[-1]).reshape(&[a, b]),
            Step::TransposeRoundTrip(i) => {
                pick(&pool, i).broadcast_to(&[a, b]).transpose(&[1, 0]).tanh().transpose(&[1, 0])
            }
            Step::MatMul(i, j) => {
                let x = pick(&pool, i).broadcast_to(&[a, b]).tanh();
                let y = pick(&pool, j).broadcast_to(&[a, b]).tanh();
                x.matmul(&y.transpose(&[1, 0])).matmul(&y) * (1.0 / (a * b) as f64)
            }
            Step::ReadVar => var.read(),
            Step::AssignVar(i) => {
                let x = pick(&pool, i).broadcast_to(&[a, b]).tanh();
                var.assign(&(var.read() * 0.5 + x)).unwrap();
                var.read()
            }
            Step::Cast(i) => pick(&pool, i).cast(DType::F64).cast(DType::F32),
            Step::Cond(c, i, j, write) => {
                let (x, y) = (pick(&pool, i).broadcast_to(&[a, b]), pick(&pool, j));
                kiln::cond(
                    &positive(pick(&pool, c)),
                    || {
                        let t = x.tanh() * y;
                        if write {
                            var.assign(&(var.read() * 0.5 + &t))?;
                        }
                        Ok(t)
                    },
                    || Ok((&x - y).sin()),
                )
                .unwrap()
            }
            Step::Scan(i, j, nested) => {
                let xs = pick(&pool, i).broadcast_to(&[a, b]);
                let h0 = pick(&pool, j).broadcast_to(&[a, b]).mean(&[0], false);
                let (c, ys) = kiln::scan(
                    |c: &[Tensor], x: &[Tensor]| {
                        let mut h = (&c[0] * 0.5 + &x[0] + var.read().sum_all() * 0.1).tanh();
                        if nested {
                            h = kiln::cond(&positive(&x[0]), || Ok(h.sin()), || Ok(&h * &x[0]))?;
                        }
                        Ok((vec![h.clone()], vec![&h * &x[0]]))
                    },
                    &[h0],
                    &[xs],
                )
                .unwrap();
                &ys[0] + &c[0]
            }
            Step::While(i, j, n, write) => {
                let step = pick(&pool, j).tanh();
                let out = kiln::while_loop(
                    |v: &[Tensor]| {
                        let more = v[1].less(&Tensor::scalar(n as i64));
                        Ok(more.logical_and(&v[0].abs().max_all().less(&Tensor::scalar(1.5f32))))
                    },
                    |v: &[Tensor]| {
                        let next = &v[0] * 0.5 + &step;
                        if write {
                            var.assign(&(var.read() * 0.5 + next.tanh()))?;
                        }
                        Ok(vec![next, &v[1] + &Tensor::scalar(1i64)])
                    },
                    &[pick(&pool, i).broadcast_to(&[a, b]), Tensor::scalar(0i64)],
                )
                .unwrap();
                &out[0] + &out[1].cast(DType::F32)
            }
        };
        pool.push(t);
    }
    let n = pool.len();
    pool[n.saturating_sub(3)..].to_vec()
}

fn positive(x: &Tensor) -> Tensor {
    x.sum_all().greater(&Tensor::scalar(0.0f32))
}

/// Compares normwise: |got - want| <= 1e-4 * (1 + max|want|), NaN where NaN. Elementwise
/// relative checks are too strict for random programs, where an output may be a difference of
/// large nearly equal values each carrying a few ULP from polynomial transcendentals.
fn assert_normwise(want: &Tensor, got: &Tensor, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(want.shape(), got.shape(), "{}", what);
    let (w, g) = (want.to_vec::<f32>().unwrap(), got.to_vec::<f32>().unwrap());
    let scale = 1.0 + w.iter().filter(|x| x.is_finite()).fold(0.0f32, |m, x| m.max(x.abs()));
    for (i, (x, y)) in w.iter().zip(&g).enumerate() {
        let ok = if x.is_nan() {
            y.is_nan()
        } else if x.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= 1e-4 * scale
        };
        prop_assert!(ok, "{}: element {} want {} got {}", what, i, x, y);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_agree(a in 1usize..5, b in 1usize..6, seed in any::<u32>(), steps in prop::collection::vec(step(), 1..14)) {
        let seed = seed as u64;
        let inputs = vec![
            common::rand_f32(&[a, b], seed),
            common::rand_f32(&[b], seed + 1),
            common::rand_f32(&[a, 1], seed + 2),
            common::rand_f32(&[], seed + 3),
        ];
        let init = common::rand_f32(&[a, b], seed + 4);
        let var = Variable::new(init.clone());
        let want = run(&steps, &inputs, &var, a, b);
        let want_var = Tensor::from(var.value());
        for backend in [Backend::Interpreter, Backend::Compiled] {
            var.assign(&init).unwrap();
            let (s, v) = (steps.clone(), var.clone());
            let f = kiln::function(move |x: &Tensor, y: &Tensor, z: &Tensor, w: &Tensor| {
                run(&s, &[x.clone(), y.clone(), z.clone(), w.clone()], &v, a, b)
            }).with_backend(backend);
            let got = f.call((&inputs[0], &inputs[1], &inputs[2], &inputs[3])).unwrap();
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                assert_normwise(w, g, &format!("{backend:?} output {i}"))?;
            }
            assert_normwise(&want_var, &Tensor::from(var.value()), &format!("{backend:?} variable"))?;
        }
    }
}
