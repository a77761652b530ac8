//! A compiled step writes its Variables' new values over their old buffers when nothing else
//! holds them (docs/JIT.md, *Variables updated in place*): the values are those of an
//! eager step, a tensor read before the step keeps its value, and a reader on another
//! thread never sees half a step.

use kiln::{DType, Tensor, Variable};

const N: usize = 1 << 16;

fn address(v: &Variable) -> usize {
    v.value().as_slice::<f32>().unwrap().as_ptr() as usize
}

fn sgd_step(w: &Variable) -> kiln::Function<kiln::Result<Tensor>> {
    let w = w.clone();
    kiln::function(move |g: &Tensor| {
        w.assign_sub(&(g * 0.5))?;
        Ok(g.sum_all())
    })
}

/// A Variable of zeros, an SGD step by a gradient of ones, and the step taken once.
fn zeros_after_one_step() -> (Tensor, Variable, kiln::Function<kiln::Result<Tensor>>) {
    let g = Tensor::ones(&[N], DType::F32);
    let w = Variable::new(Tensor::zeros(&[N], DType::F32));
    let step = sgd_step(&w);
    step.call(&g).unwrap();
    (g, w, step)
}

#[test]
fn a_compiled_step_updates_its_variable_in_place() {
    let init = Tensor::random_normal(&[N], DType::F32, 1);
    let g = Tensor::random_normal(&[N], DType::F32, 2);
    let w = Variable::new(&init * 1.0);
    let step = sgd_step(&w);
    let before = address(&w);
    let mut want = init.to_vec::<f32>().unwrap();
    for _ in 0..3 {
        step.call(&g).unwrap();
        for (x, d) in want.iter_mut().zip(g.to_vec::<f32>().unwrap()) {
            *x -= d * 0.5;
        }
        assert_eq!(address(&w), before, "written over the old buffer");
        assert_eq!(w.read().to_vec::<f32>().unwrap(), want);
    }
    let exe = step.concrete_function(&g).unwrap();
    assert_eq!(exe.executable().unwrap().updates_in_place(), &[0]);
}

#[test]
fn a_tensor_read_before_the_step_keeps_its_value() {
    let (g, w, step) = zeros_after_one_step();
    let held = w.read();
    let address_held = address(&w);
    step.call(&g).unwrap();
    assert_eq!(held.to_vec::<f32>().unwrap(), vec![-0.5; N], "the held tensor is unchanged");
    assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![-1.0; N]);
    assert_ne!(address(&w), address_held, "a new buffer while the old one is held");
    drop(held);
    let address_now = address(&w);
    step.call(&g).unwrap();
    assert_eq!(address(&w), address_now, "in place again once nothing holds it");
    assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![-1.5; N]);
}

#[test]
fn readers_on_other_threads_never_see_half_a_step() {
    let (g, w, step) = zeros_after_one_step();
    let steps = 200;
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seen = 0;
            loop {
                let v = w.read().to_vec::<f32>().unwrap();
                assert!(v.iter().all(|&x| x == v[0]), "a torn value: {} .. {}", v[0], v[N - 1]);
                seen += 1;
                if v[0] == -0.5 * (steps + 1) as f32 {
                    return seen;
                }
            }
        });
        for _ in 0..steps {
            step.call(&g).unwrap();
        }
        assert!(reader.join().unwrap() > 0);
    });
}
