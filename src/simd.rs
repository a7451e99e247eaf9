//! Runtime CPU-feature dispatch and the vector helpers every kernel shares, on pulp (faer's SIMD
//! layer, so no new dependency).
//!
//! One way to write a kernel: a struct holding its arguments implements [`WithSimd`], whose
//! `with_simd<S: Lanes>(self, simd: S)` calls a generic body written with `simd`'s vector
//! operations; `Arch::new().dispatch(op)` (or a stored [`Arch`]) compiles and runs that body as
//! AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3), NEON or scalar code, whichever the CPU has (wheels
//! target baseline x86-64, so the choice is made at run time); the SGD kernels take
//! [`sgd_arch`], which stops at AVX2. Dispatch once per unit of work that is long next to a
//! function call (a thread's share, a block, a row), never per element.
//!
//! Rules for the bodies:
//! - everything the body calls down to its loops is `#[inline(always)]`: a function that is not
//!   inlined into the dispatched one is compiled for baseline x86-64 (no AVX, no FMA), and pulp's
//!   operations are then calls, not instructions. Closures are such functions: a step applied to
//!   the full vectors and to the tail is an `#[inline(always)]` function or method, never a
//!   closure;
//! - loops over vectors get independent accumulators held in named variables (an array of them
//!   can be kept in memory), so that multiply-adds do not wait on each other;
//! - a tail shorter than a vector is one more vector, loaded and stored masked
//!   ([`load_tail`], [`store_tail`]): factor rows are short (LightFM's default is 11
//!   values), and with AVX-512's 16 lanes a scalar tail would be most of the work;
//! - multiply-adds use the `_e` forms (`mul_add_e_f32s`): fused where the CPU fuses (v3, v4,
//!   NEON), a multiply and an add in scalar code, where a fused one is a slow library call.
//!
//! The auto-vectoriser is not relied on for the loops over factor vectors: inside an AVX-512
//! function it still prefers 256-bit vectors.

use pulp::MemMask;
pub(crate) use pulp::{Arch, Simd as Lanes, WithSimd};

/// The instruction set of the SGD kernels (BPR, LMF, LightFM): the best the CPU has, but at most
/// AVX2+FMA on x86-64. Their work is one short factor row at a time, a few vectors between random
/// memory accesses, where AVX-512 adds no throughput and makes the horizontal sums and the masked
/// tails wider: measured against AVX2 here, all three were as fast or slower with it at every
/// width benchmarked (32 to 128 factors). Kernels over blocks (ALS, scoring) take `Arch::new()`.
pub(crate) fn sgd_arch() -> Arch {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = pulp::x86::V3::try_new() {
        return Arch::V3(v3);
    }
    Arch::new()
}

/// The number of `f32` lanes of the vectors `arch` runs kernels with.
pub(crate) fn f32_lanes(arch: Arch) -> usize {
    struct LaneCount;
    impl WithSimd for LaneCount {
        type Output = usize;
        #[inline(always)]
        fn with_simd<S: Lanes>(self, _: S) -> usize {
            S::F32_LANES
        }
    }
    arch.dispatch(LaneCount)
}

/// The elements of `t` (fewer than a vector has lanes) as a vector, the other lanes zero.
///
/// A masked load (one instruction on AVX-512 and AVX2). pulp's own `partial_load_f32s` jumps to
/// a small assembly routine per load, which costs more than the arithmetic on a short tail. A
/// tail of one element (a row of 64 factors and a bias) is a broadcast instead: AVX2's masked
/// load stalled the SGD kernels' random rows on AMD's Zen 5, where the broadcast did not
/// (benches/compare/RESULTS.md).
#[inline(always)]
pub(crate) fn load_tail<S: Lanes>(simd: S, t: &[f32]) -> S::f32s {
    debug_assert!(t.len() < S::F32_LANES.max(2));
    if t.len() == 1 {
        let one = simd.mask_between_m32s(0, 1).mask();
        return simd.select_f32s(one, simd.splat_f32s(t[0]), simd.splat_f32s(0.0));
    }
    let mask = MemMask::new(simd.mask_between_m32s(0, t.len() as u32).mask());
    // SAFETY: the mask selects the first `t.len()` lanes, which lie within `t`; the masked-off
    // lanes are neither read nor able to fault (masked loads suppress faults on them).
    unsafe { simd.mask_load_ptr_f32s(mask, t.as_ptr()) }
}

/// Writes the first `t.len()` lanes of `v` (fewer than a vector has lanes) to `t` by a masked
/// store, one lane by a plain store of it (see [`load_tail`]).
#[inline(always)]
pub(crate) fn store_tail<S: Lanes>(simd: S, t: &mut [f32], v: S::f32s) {
    debug_assert!(t.len() < S::F32_LANES.max(2));
    if t.len() == 1 {
        let mut buf = [0f32; 16];
        let (head, _) = S::as_mut_simd_f32s(&mut buf[..S::F32_LANES]);
        head[0] = v;
        t[0] = buf[0];
        return;
    }
    let mask = MemMask::new(simd.mask_between_m32s(0, t.len() as u32).mask());
    // SAFETY: the mask selects the first `t.len()` lanes, which lie within `t`; the masked-off
    // lanes are not written.
    unsafe { simd.mask_store_ptr_f32s(mask, t.as_mut_ptr(), v) }
}

/// `a . b` in vector lanes, with two accumulators; a tail shorter than a vector is one more
/// (masked) vector.
#[inline(always)]
pub(crate) fn vdot<S: Lanes>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ah, at) = S::as_simd_f32s(&a[..n]);
    let (bh, bt) = S::as_simd_f32s(&b[..n]);
    let z = simd.splat_f32s(0.0);
    let (mut acc0, mut acc1) = (z, z);
    // an index loop: a zip of `chunks_exact` iterators was left as a call (with a division)
    // where the crate is built in several codegen units
    let mut k = 0;
    while k + 2 <= ah.len() {
        acc0 = simd.mul_add_e_f32s(ah[k], bh[k], acc0);
        acc1 = simd.mul_add_e_f32s(ah[k + 1], bh[k + 1], acc1);
        k += 2;
    }
    if k < ah.len() {
        acc0 = simd.mul_add_e_f32s(ah[k], bh[k], acc0);
    }
    if !at.is_empty() {
        let (x, y) = (load_tail(simd, at), load_tail(simd, bt));
        acc1 = simd.mul_add_e_f32s(x, y, acc1);
    }
    simd.reduce_sum_f32s(simd.add_f32s(acc0, acc1))
}

/// `(x . a, x . b)` in one pass over `x` (two accumulators each; the tail as in [`vdot`]).
#[inline(always)]
pub(crate) fn vdot2<S: Lanes>(simd: S, x: &[f32], a: &[f32], b: &[f32]) -> (f32, f32) {
    let n = x.len().min(a.len()).min(b.len());
    let (xh, xt) = S::as_simd_f32s(&x[..n]);
    let (ah, at) = S::as_simd_f32s(&a[..n]);
    let (bh, bt) = S::as_simd_f32s(&b[..n]);
    let z = simd.splat_f32s(0.0);
    let (mut a0, mut a1, mut b0, mut b1) = (z, z, z, z);
    let mut k = 0;
    while k + 2 <= xh.len() {
        a0 = simd.mul_add_e_f32s(xh[k], ah[k], a0);
        b0 = simd.mul_add_e_f32s(xh[k], bh[k], b0);
        a1 = simd.mul_add_e_f32s(xh[k + 1], ah[k + 1], a1);
        b1 = simd.mul_add_e_f32s(xh[k + 1], bh[k + 1], b1);
        k += 2;
    }
    if k < xh.len() {
        a0 = simd.mul_add_e_f32s(xh[k], ah[k], a0);
        b0 = simd.mul_add_e_f32s(xh[k], bh[k], b0);
    }
    if !xt.is_empty() {
        let xv = load_tail(simd, xt);
        a1 = simd.mul_add_e_f32s(xv, load_tail(simd, at), a1);
        b1 = simd.mul_add_e_f32s(xv, load_tail(simd, bt), b1);
    }
    (
        simd.reduce_sum_f32s(simd.add_f32s(a0, a1)),
        simd.reduce_sum_f32s(simd.add_f32s(b0, b1)),
    )
}

/// `y += alpha * x` in vector lanes (the tail as one masked vector).
#[inline(always)]
pub(crate) fn vaxpy<S: Lanes>(simd: S, alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (yh, yt) = S::as_mut_simd_f32s(&mut y[..n]);
    let (xh, xt) = S::as_simd_f32s(&x[..n]);
    let a = simd.splat_f32s(alpha);
    for (yv, &xv) in yh.iter_mut().zip(xh) {
        *yv = simd.mul_add_e_f32s(a, xv, *yv);
    }
    if !yt.is_empty() {
        let v = simd.mul_add_e_f32s(a, load_tail(simd, xt), load_tail(simd, yt));
        store_tail(simd, yt, v);
    }
}

/// `y = alpha * x` in vector lanes (the tail as one masked vector).
#[inline(always)]
pub(crate) fn vscale<S: Lanes>(simd: S, alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (yh, yt) = S::as_mut_simd_f32s(&mut y[..n]);
    let (xh, xt) = S::as_simd_f32s(&x[..n]);
    let a = simd.splat_f32s(alpha);
    for (yv, &xv) in yh.iter_mut().zip(xh) {
        *yv = simd.mul_f32s(a, xv);
    }
    if !yt.is_empty() {
        store_tail(simd, yt, simd.mul_f32s(a, load_tail(simd, xt)));
    }
}

/// `1 / sqrt(a)` to about single precision (relative error ~1e-7): the CPU's reciprocal square
/// root estimate (AVX-512: 14 bits, AVX: 12 bits) refined by one Newton step, several times
/// faster than a square root and a division, which it replaces in adagrad's update. Where no
/// estimate is available here (scalar code, NEON), the exact `1 / sqrt(a)`.
#[inline(always)]
pub(crate) fn rsqrt<S: Lanes>(simd: S, a: S::f32s) -> S::f32s {
    let Some(y) = rsqrt_estimate(simd, a) else {
        return simd.div_f32s(simd.splat_f32s(1.0), simd.sqrt_f32s(a));
    };
    // y (1.5 - 0.5 a y^2)
    let half_a = simd.mul_f32s(simd.splat_f32s(0.5), a);
    let t = simd.negate_mul_add_e_f32s(half_a, simd.mul_f32s(y, y), simd.splat_f32s(1.5));
    simd.mul_f32s(y, t)
}

/// The CPU's reciprocal square root estimate of `a`, when `S` is an instruction set that has one.
/// `S` is matched by type (the checks fold away once `S` is known), so the estimate comes from
/// pulp's safe intrinsic wrappers of that instruction set.
#[inline(always)]
fn rsqrt_estimate<S: Lanes>(simd: S, a: S::f32s) -> Option<S::f32s> {
    #[cfg(target_arch = "x86_64")]
    {
        use pulp::x86::{V3, V4};
        use pulp::{cast, f32x16, f32x8};
        use std::any::Any;
        let (simd, a): (&dyn Any, &dyn Any) = (&simd, &a);
        if let (Some(v4), Some(&x)) = (simd.downcast_ref::<V4>(), a.downcast_ref::<f32x16>()) {
            let y: f32x16 = cast(v4.avx512f._mm512_rsqrt14_ps(cast(x)));
            return (&y as &dyn Any).downcast_ref::<S::f32s>().copied();
        }
        if let (Some(v3), Some(&x)) = (simd.downcast_ref::<V3>(), a.downcast_ref::<f32x8>()) {
            let y: f32x8 = cast(v3.avx._mm256_rsqrt_ps(cast(x)));
            return (&y as &dyn Any).downcast_ref::<S::f32s>().copied();
        }
    }
    let _ = (simd, a);
    None
}

/// A hint to load the cache line holding `p` into the first-level cache (no-op where
/// unsupported).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    prefetch_to::<L1, T>(p)
}

/// [`prefetch_to`]'s levels: the first-level cache (and the levels below it), the second-level
/// cache only. Their values are x86's hints (`_MM_HINT_T0`, `_MM_HINT_T1`).
pub(crate) const L1: i32 = 3;
pub(crate) const L2: i32 = 2;

/// A hint to load the cache line holding `p` into cache level `LEVEL` ([`L1`] or [`L2`]).
/// Into the second level for a kernel that requests many lines well ahead of use: requested
/// into the first, they appear to hold its few miss buffers, and its own loads wait (the LightFM
/// epoch and kNN `recommend` took 5-28% less CPU into the second; RESULTS.md, "rows requested
/// ahead go into the second-level cache").
#[inline(always)]
pub(crate) fn prefetch_to<const LEVEL: i32, T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<LEVEL>(p as *const i8);
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = p;
}

/// The bytes of the last-level cache that a core shares with the others of its complex, as the
/// machine reports it (Linux sysfs, else cpuid or `lscpu`; read once, by faer's GEMM layer), 1 MiB
/// where it reports none or its report cannot be read (the reader unwraps what `lscpu` prints).
pub(crate) fn last_level_cache_bytes() -> usize {
    std::panic::catch_unwind(|| gemm_common::cache::CACHE_INFO[2].cache_bytes).unwrap_or(1 << 20)
}

/// Asks the kernel to back `v`'s memory with transparent huge pages (honoured where the system
/// leaves them to `madvise`, the common default), for arrays read at random positions: one
/// 2 MiB page in the translation cache instead of 512 small ones. Effective only on memory not
/// yet touched (call it right after allocating); the 2 MiB-aligned part of `v` is what gains. A
/// hint: failures are ignored, and it does nothing off Linux.
pub(crate) fn advise_huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => return,
        };
        let start = v.as_ptr() as usize;
        let end = start + std::mem::size_of_val(v);
        let (a, b) = (start.next_multiple_of(page), end / page * page);
        if b >= a + HUGE {
            // SAFETY: [a, b) lies within `v`'s allocation and is page-aligned; MADV_HUGEPAGE only
            // changes how the kernel backs the pages, never their contents.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every instruction set this CPU has.
    pub(crate) fn archs() -> Vec<Arch> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut, clippy::useless_vec))]
        let mut archs = vec![Arch::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                archs.push(Arch::V3(v3));
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                archs.push(Arch::V4(v4));
            }
        }
        archs
    }

    struct Rsqrt<'a>(&'a mut [f32]);

    impl WithSimd for Rsqrt<'_> {
        type Output = bool;
        #[inline(always)]
        fn with_simd<S: Lanes>(self, simd: S) -> bool {
            let (head, tail) = S::as_mut_simd_f32s(self.0);
            for v in head.iter_mut() {
                *v = rsqrt(simd, *v);
            }
            let v = rsqrt(simd, load_tail(simd, tail));
            store_tail(simd, tail, v);
            rsqrt_estimate(simd, simd.splat_f32s(1.0)).is_some()
        }
    }

    #[test]
    fn rsqrt_is_accurate_to_single_precision_on_every_instruction_set() {
        let xs: Vec<f32> = (0..4096)
            .map(|k| 1.0 + k as f32 * 0.37 + (k % 7) as f32 * 1e3)
            .chain([1e-6, 1.0, 4.0, 1e6, 3.3e9])
            .collect();
        for arch in archs() {
            let mut got = xs.clone();
            let estimated = arch.dispatch(Rsqrt(&mut got));
            #[cfg(target_arch = "x86_64")]
            assert_eq!(estimated, !matches!(arch, Arch::Scalar));
            #[cfg(not(target_arch = "x86_64"))]
            assert!(!estimated, "only the x86-64 estimates are used");
            for (&x, &y) in xs.iter().zip(&got) {
                let want = 1.0 / (x as f64).sqrt();
                let err = ((y as f64 - want) / want).abs();
                assert!(err < 3e-7, "{arch:?} 1/sqrt({x}) = {y}, want {want}: {err}");
            }
        }
    }

    #[test]
    fn dots_and_axpy_match_plain_loops() {
        for arch in archs() {
            for n in [0usize, 1, 7, 16, 33, 65, 130] {
                let a: Vec<f32> = (0..n).map(|k| (k as f32 * 0.7).sin()).collect();
                let b: Vec<f32> = (0..n).map(|k| (k as f32 * 1.3).cos()).collect();
                let c: Vec<f32> = (0..n).map(|k| 0.5 - (k % 5) as f32 * 0.25).collect();
                let plain = |p: &[f32], q: &[f32]| -> f64 {
                    p.iter().zip(q).map(|(x, y)| *x as f64 * *y as f64).sum()
                };
                struct Run<'a>(&'a [f32], &'a [f32], &'a [f32], &'a mut Vec<f32>);
                impl WithSimd for Run<'_> {
                    type Output = (f32, (f32, f32));
                    #[inline(always)]
                    fn with_simd<S: Lanes>(self, simd: S) -> Self::Output {
                        vaxpy(simd, 2.0, self.0, self.3);
                        let mut scaled = vec![0f32; self.0.len()];
                        vscale(simd, 3.0, self.0, &mut scaled);
                        for (s, x) in scaled.iter().zip(self.0) {
                            assert_eq!(*s, 3.0 * x);
                        }
                        (
                            vdot(simd, self.0, self.1),
                            vdot2(simd, self.0, self.1, self.2),
                        )
                    }
                }
                let mut y = c.clone();
                let (d, (d1, d2)) = arch.dispatch(Run(&a, &b, &c, &mut y));
                let close =
                    |got: f32, want: f64| (got as f64 - want).abs() < 1e-5 * (1.0 + n as f64);
                assert!(close(d, plain(&a, &b)), "{arch:?} n={n}");
                assert!(close(d1, plain(&a, &b)), "{arch:?} n={n}");
                assert!(close(d2, plain(&a, &c)), "{arch:?} n={n}");
                for k in 0..n {
                    assert!((y[k] - (c[k] + 2.0 * a[k])).abs() < 1e-6, "{arch:?} n={n}");
                }
            }
        }
    }
}
