//! Products of a vector with a block of rows that stays in L1 (a row-major `n x f` matrix `g`):
//! the dot product with every row (`g v`) and the weighted sum of the rows (`g^T w`). Written for
//! the short rows of factor models (32..256), where a matrix-vector product of a library spends
//! its time on setup and horizontal sums.

use crate::simd::{vdot, Lanes};

/// Appends `g_k . v` for every row `g_k` (of length `v.len()`) of `g` to `d`.
#[inline(always)]
pub(crate) fn dots<S: Lanes>(simd: S, g: &[f32], v: &[f32], d: &mut Vec<f32>) {
    let f = v.len();
    let (vh, vt) = S::as_simd_f32s(v);
    let nv = vh.len();
    let mut quads = g.chunks_exact(4 * f);
    for quad in quads.by_ref() {
        // named accumulators (an array of them was kept in memory, not in registers)
        let (r0, r1, r2, r3) = (
            &quad[..f],
            &quad[f..2 * f],
            &quad[2 * f..3 * f],
            &quad[3 * f..],
        );
        let h0 = &S::as_simd_f32s(r0).0[..nv];
        let h1 = &S::as_simd_f32s(r1).0[..nv];
        let h2 = &S::as_simd_f32s(r2).0[..nv];
        let h3 = &S::as_simd_f32s(r3).0[..nv];
        let z = simd.splat_f32s(0.0);
        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
        let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
        let mut j = 0;
        while j + 2 <= nv {
            let (x, y) = (vh[j], vh[j + 1]);
            a0 = simd.mul_add_e_f32s(h0[j], x, a0);
            a1 = simd.mul_add_e_f32s(h1[j], x, a1);
            a2 = simd.mul_add_e_f32s(h2[j], x, a2);
            a3 = simd.mul_add_e_f32s(h3[j], x, a3);
            b0 = simd.mul_add_e_f32s(h0[j + 1], y, b0);
            b1 = simd.mul_add_e_f32s(h1[j + 1], y, b1);
            b2 = simd.mul_add_e_f32s(h2[j + 1], y, b2);
            b3 = simd.mul_add_e_f32s(h3[j + 1], y, b3);
            j += 2;
        }
        if j < nv {
            let x = vh[j];
            a0 = simd.mul_add_e_f32s(h0[j], x, a0);
            a1 = simd.mul_add_e_f32s(h1[j], x, a1);
            a2 = simd.mul_add_e_f32s(h2[j], x, a2);
            a3 = simd.mul_add_e_f32s(h3[j], x, a3);
        }
        let tail = nv * S::F32_LANES;
        d.extend([
            finish(simd, a0, b0, &r0[tail..], vt),
            finish(simd, a1, b1, &r1[tail..], vt),
            finish(simd, a2, b2, &r2[tail..], vt),
            finish(simd, a3, b3, &r3[tail..], vt),
        ]);
    }
    for row in quads.remainder().chunks_exact(f) {
        d.push(vdot(simd, row, v));
    }
}

/// The sum of the lanes of `a + b`, plus `r . v` (the scalar tails).
#[inline(always)]
fn finish<S: Lanes>(simd: S, a: S::f32s, b: S::f32s, r: &[f32], v: &[f32]) -> f32 {
    let mut s = simd.reduce_sum_f32s(simd.add_f32s(a, b));
    for (x, y) in r.iter().zip(v) {
        s += x * y;
    }
    s
}

/// `out += sum_k w_k g_k` over the rows `g_k` (of length `out.len()`) of `g`: `out` is held in
/// registers, eight (then four, two, one) vectors at a time.
#[inline(always)]
pub(crate) fn weighted_sum<S: Lanes>(simd: S, g: &[f32], w: &[f32], out: &mut [f32]) {
    let f = out.len();
    let (oh, ot) = S::as_mut_simd_f32s(out);
    let nv = oh.len();
    let mut j = 0;
    while j + 8 <= nv {
        weighted_tile::<S, 8>(simd, g, w, f, j, &mut oh[j..j + 8]);
        j += 8;
    }
    if j + 4 <= nv {
        // 64 factors in 16 lanes: one pass over the rows instead of two
        weighted_tile::<S, 4>(simd, g, w, f, j, &mut oh[j..j + 4]);
        j += 4;
    }
    while j + 2 <= nv {
        weighted_tile::<S, 2>(simd, g, w, f, j, &mut oh[j..j + 2]);
        j += 2;
    }
    if j < nv {
        weighted_tile::<S, 1>(simd, g, w, f, j, &mut oh[j..j + 1]);
    }
    let tail = nv * S::F32_LANES;
    for (row, &wk) in g.chunks_exact(f).zip(w) {
        for (o, &y) in ot.iter_mut().zip(&row[tail..]) {
            *o += wk * y;
        }
    }
}

/// Vectors `j..j + T` of [`weighted_sum`]; even and odd rows go to separate accumulators (twice
/// the independent chains: a tile of one or two vectors would otherwise wait on its own sums).
#[inline(always)]
fn weighted_tile<S: Lanes, const T: usize>(
    simd: S,
    g: &[f32],
    w: &[f32],
    f: usize,
    j: usize,
    out: &mut [S::f32s],
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; T]; 2];
    let mut pairs = g.chunks_exact(2 * f).zip(w.chunks_exact(2));
    for (pair, wk) in pairs.by_ref() {
        let r0 = &S::as_simd_f32s(&pair[..f]).0[j..j + T];
        let r1 = &S::as_simd_f32s(&pair[f..]).0[j..j + T];
        let (w0, w1) = (simd.splat_f32s(wk[0]), simd.splat_f32s(wk[1]));
        for t in 0..T {
            acc[0][t] = simd.mul_add_e_f32s(w0, r0[t], acc[0][t]);
            acc[1][t] = simd.mul_add_e_f32s(w1, r1[t], acc[1][t]);
        }
    }
    let n = w.len().min(g.len() / f);
    if n % 2 == 1 {
        let rh = &S::as_simd_f32s(&g[(n - 1) * f..n * f]).0[j..j + T];
        let wv = simd.splat_f32s(w[n - 1]);
        for t in 0..T {
            acc[0][t] = simd.mul_add_e_f32s(wv, rh[t], acc[0][t]);
        }
    }
    for t in 0..T {
        out[t] = simd.add_f32s(out[t], simd.add_f32s(acc[0][t], acc[1][t]));
    }
}
