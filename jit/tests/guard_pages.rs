//! Kernels never touch memory past their buffers: every operand and the output end exactly
//! at a page boundary followed by an inaccessible guard page (mmap + mprotect), at odd
//! lengths, so an overrun by even one element crashes this test with SIGSEGV.

mod common;

use common::*;
use kiln_ir::{Array, BinaryOp, DType, Kernel, Op, ReduceOp, UnaryOp};

/// `bytes` of memory that end right before a PROT_NONE page.
struct Guarded {
    base: *mut libc::c_void,
    total: usize,
    data: *mut u8,
}

impl Guarded {
    fn new(bytes: usize) -> Guarded {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_pages = bytes.div_ceil(page).max(1);
        let total = (data_pages + 1) * page;
        // SAFETY: a fresh anonymous private mapping; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // SAFETY: the last page lies inside the mapping just made.
        let guard = unsafe { (base as *mut u8).add(data_pages * page) };
        // SAFETY: `guard` is page aligned and inside the mapping.
        assert_eq!(unsafe { libc::mprotect(guard as *mut libc::c_void, page, libc::PROT_NONE) }, 0);
        // SAFETY: `bytes <= data_pages * page`, so the data starts inside the mapping.
        let data = unsafe { guard.sub(bytes) };
        Guarded { base, total, data }
    }

    fn holding(a: &Array) -> Guarded {
        let bytes = a.data().as_bytes();
        let g = Guarded::new(bytes.len());
        // SAFETY: `g.data` has room for exactly `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), g.data, bytes.len()) };
        g
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base, self.total) };
    }
}

/// Runs `k` with guarded operands and output; the result must equal an ordinary run's bits.
fn check(k: &Kernel, inputs: &[Array]) {
    let compiled = kiln_jit::compile(k).unwrap();
    let out_ty = &k.body.node(k.body.outputs()[0]).ty;
    let guarded: Vec<Guarded> = inputs.iter().map(Guarded::holding).collect();
    let ptrs: Vec<*const u8> = guarded.iter().map(|g| g.data as *const u8).collect();
    let out = Guarded::new(out_ty.bytes());
    // SAFETY: the kernel reads each operand within its type's bytes and writes `numel`
    // outputs; the buffers hold exactly that much (an overrun hits a guard page).
    unsafe { (compiled.func())(ptrs.as_ptr(), out.data, 0, out_ty.numel()) };
    // SAFETY: the output buffer holds `out_ty.bytes()` initialized bytes now.
    let got = unsafe { std::slice::from_raw_parts(out.data, out_ty.bytes()) };
    let want = run_compiled(k, inputs);
    assert_eq!(got, want.data().as_bytes(), "{}", k.body.to_text());
}

#[test]
fn kernels_stay_inside_their_buffers() {
    let mut rng = Rng(7);
    for n in [1usize, 3, 5, 7, 9, 13, 17, 1031] {
        for d in [DType::F32, DType::F64] {
            // A routine on an operand, straight into the output (the wide path's shortcuts
            // for f32), and one staged through tile buffers (x * sigmoid(x)).
            let k = kernel(&[ty(d, &[n])], |g, x| add(g, Op::Unary(UnaryOp::Tanh), &[x[0]]));
            check(&k, &[random(&mut rng, d, &[n])]);
            let k = kernel(&[ty(d, &[n])], |g, x| {
                let s = add(g, Op::Unary(UnaryOp::Sigmoid), &[x[0]]);
                add(g, Op::Binary(BinaryOp::Mul), &[x[0], s])
            });
            check(&k, &[random(&mut rng, d, &[n])]);
            // A row broadcast against a matrix.
            let k = kernel(&[ty(d, &[n]), ty(d, &[3, n])], |g, x| add(g, Op::Binary(BinaryOp::Mul), &[x[0], x[1]]));
            check(&k, &[random(&mut rng, d, &[n]), random(&mut rng, d, &[3, n])]);
            // Row reductions and column reductions.
            for axes in [vec![1], vec![0]] {
                let k = kernel(&[ty(d, &[3, n])], |g, x| {
                    let e = add(g, Op::Unary(UnaryOp::Exp), &[x[0]]);
                    add(g, Op::Reduce { op: ReduceOp::Sum, axes: axes.clone(), keepdims: false }, &[e])
                });
                check(&k, &[random(&mut rng, d, &[3, n])]);
            }
        }
        let k = kernel(&[ty(DType::I32, &[n]), ty(DType::I32, &[n])], |g, x| {
            let c = add(g, Op::Binary(BinaryOp::Less), &[x[0], x[1]]);
            add(g, Op::Select, &[c, x[0], x[1]])
        });
        check(&k, &[random(&mut rng, DType::I32, &[n]), random(&mut rng, DType::I32, &[n])]);
    }
}
