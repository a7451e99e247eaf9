//! Runtime CPU-feature dispatch for the loops over factor vectors (ALS rows, SGD steps): kernels
//! are written once, generic over `FMA`, with independent partial sums so that they vectorise, and
//! [`dispatch!`] instantiates them for AVX2+FMA where the CPU has it (wheels target baseline
//! x86-64).

/// `a . b` with sixteen independent partial sums, so that it vectorises (and, with `FMA`, fuses
/// the multiply-adds; only instantiate `FMA = true` where the CPU has FMA, or it becomes a libm
/// call).
#[inline(always)]
pub(crate) fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    let mut s = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        s = madd::<FMA>(*x, *y, s);
    }
    let mut half = [0f32; 8];
    for l in 0..8 {
        half[l] = acc[l] + acc[l + 8];
    }
    s + ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7]))
}

#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `y += alpha * x`.
#[inline(always)]
pub(crate) fn axpy<const FMA: bool>(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = madd::<FMA>(alpha, *xi, *yi);
    }
}

/// The vector instructions the row kernels are compiled for, chosen once per call at run time
/// (wheels target baseline x86-64; the per-row loops over factor vectors need AVX2/FMA).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Simd {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Simd::Avx2Fma;
        }
        Simd::Baseline
    }
}

/// A hint to load the cache line holding `p` (no-op where unsupported).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = p;
}

/// Instantiates a row kernel (a generic `fn name<const FMA: bool>(args)`) for each [`Simd`] level
/// and dispatches to it. The kernel must be `#[inline(always)]`: a kernel that is not inlined
/// into the `target_feature` wrapper is compiled for baseline x86-64, where `FMA = true` turns
/// every multiply-add into a libm call.
macro_rules! dispatch {
    ($simd:expr, $kernel:ident, $avx2:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)] // as many as the kernel it forwards to
        unsafe fn $avx2($($arg: $ty),*) -> $ret {
            $kernel::<true>($($arg),*)
        }
        move |$($arg: $ty),*| -> $ret {
            match $simd {
                // SAFETY: the Avx2Fma level is only chosen when the CPU reports AVX2 and FMA.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Simd::Avx2Fma => unsafe { $avx2($($arg),*) },
                // aarch64 always has fused multiply-add
                $crate::simd::Simd::Baseline => $kernel::<{ cfg!(target_arch = "aarch64") }>($($arg),*),
            }
        }
    }};
}
pub(crate) use dispatch;

// ---- explicit vector kernels -------------------------------------------------------------------
// Kernels that the compiler does not vectorise well on its own (ALS: dot products feeding rank-1
// updates, several rows at a time; small Cholesky factorisations side by side, `linalg`) are
// written against pulp's `Simd` trait (faer's SIMD layer, so no new dependency): one generic body,
// run by `pulp::Arch::new().dispatch` as AVX-512 (x86-64-v4), AVX2+FMA (v3), NEON or scalar code,
// whichever the CPU has.

pub(crate) use pulp::{Arch, Simd as Lanes, WithSimd};

/// `a . b` in vector lanes, with two accumulators (the scalar tail is added last).
#[inline(always)]
pub(crate) fn vdot<S: Lanes>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ah, at) = S::as_simd_f32s(&a[..n]);
    let (bh, bt) = S::as_simd_f32s(&b[..n]);
    let mut acc = [simd.splat_f32s(0.0); 2];
    let (pa, pb) = (ah.chunks_exact(2), bh.chunks_exact(2));
    let (ra, rb) = (pa.remainder(), pb.remainder());
    for (x, y) in pa.zip(pb) {
        acc[0] = simd.mul_add_f32s(x[0], y[0], acc[0]);
        acc[1] = simd.mul_add_f32s(x[1], y[1], acc[1]);
    }
    if let (Some(&x), Some(&y)) = (ra.first(), rb.first()) {
        acc[0] = simd.mul_add_f32s(x, y, acc[0]);
    }
    let mut s = simd.reduce_sum_f32s(simd.add_f32s(acc[0], acc[1]));
    for (x, y) in at.iter().zip(bt) {
        s += x * y;
    }
    s
}

/// `y += alpha * x` in vector lanes.
#[inline(always)]
pub(crate) fn vaxpy<S: Lanes>(simd: S, alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (yh, yt) = S::as_mut_simd_f32s(&mut y[..n]);
    let (xh, xt) = S::as_simd_f32s(&x[..n]);
    let a = simd.splat_f32s(alpha);
    for (yv, &xv) in yh.iter_mut().zip(xh) {
        *yv = simd.mul_add_f32s(a, xv, *yv);
    }
    for (yv, xv) in yt.iter_mut().zip(xt) {
        *yv += alpha * xv;
    }
}
