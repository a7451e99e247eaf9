//! Products of a vector with a block of rows that stays in L1 (a row-major `n x f` matrix `g`):
//! the dot product with every row (`g v`) and the weighted sum of the rows (`g^T w`). Written for
//! the short rows of factor models (32..256), where a matrix-vector product of a library spends
//! its time on setup and horizontal sums.

use crate::simd::{load_tail, prefetch, vdot, Arch, Lanes, WithSimd};

/// `d[k] = g_k . v` for every row `g_k` (of length `v.len()`) of `g` (`d.len()` rows).
#[inline(always)]
pub(crate) fn dots<S: Lanes>(simd: S, g: &[f32], v: &[f32], d: &mut [f32]) {
    let f = v.len();
    let g = &g[..d.len() * f];
    let (dq, dr) = d.split_at_mut(d.len() / 4 * 4);
    let (vh, vt) = S::as_simd_f32s(v);
    let nv = vh.len();
    let mut quads = g.chunks_exact(4 * f);
    for (quad, out) in quads.by_ref().zip(dq.chunks_exact_mut(4)) {
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
        out.copy_from_slice(&[
            finish(simd, a0, b0, &r0[tail..], vt),
            finish(simd, a1, b1, &r1[tail..], vt),
            finish(simd, a2, b2, &r2[tail..], vt),
            finish(simd, a3, b3, &r3[tail..], vt),
        ]);
    }
    for (row, out) in quads.remainder().chunks_exact(f).zip(dr) {
        *out = vdot(simd, row, v);
    }
}

/// `out += sum_k coef(k, g_k . v) g_k` over the first `n` rows `g_k` of `g` (of length
/// `v.len()`): [`dots`] followed by [`weighted_sum`] (the dot products through `w`), or the same
/// in one pass ([`one_pass`]) where two rows, `v` and the accumulators fit the vector registers:
/// rows of up to 6 whole vectors with AVX-512's 32 registers, 4 with 16 (AVX2); with 8 (AVX-512)
/// and 6 (AVX2) the one pass measured slower. The results are the same to the bit either way.
#[inline(always)]
pub(crate) fn dots_weighted_sum<S: Lanes>(
    simd: S,
    g: &[f32],
    v: &[f32],
    n: usize,
    out: &mut [f32],
    w: &mut Vec<f32>,
    coef: impl Fn(usize, f32) -> f32,
) {
    let most = if S::F32_LANES >= 16 { 6 } else { 4 };
    let nv = v.len() / S::F32_LANES;
    match nv {
        _ if nv > most => {}
        1 => return one_pass::<S, 1>(simd, g, v, n, out, coef),
        2 => return one_pass::<S, 2>(simd, g, v, n, out, coef),
        3 => return one_pass::<S, 3>(simd, g, v, n, out, coef),
        4 => return one_pass::<S, 4>(simd, g, v, n, out, coef),
        5 => return one_pass::<S, 5>(simd, g, v, n, out, coef),
        6 => return one_pass::<S, 6>(simd, g, v, n, out, coef),
        _ => {}
    }
    w.clear();
    w.resize(n, 0.0);
    dots(simd, g, v, w);
    for (k, wk) in w.iter_mut().enumerate() {
        *wk = coef(k, *wk);
    }
    weighted_sum(simd, g, w, out);
}

/// [`dots_weighted_sum`] in one pass over rows of `T` whole vectors (and a scalar tail). Two
/// rows at a time are loaded, their dot products reduced and their coefficients taken, and the
/// rows added into accumulators (even rows' and odd rows', as in [`weighted_sum`]) while they are
/// still in registers or L1: one read of each row instead of two, and the chains of dependent
/// reductions of successive pairs overlap (one row at a time, each update waiting for its
/// reduction, kept the vector units idle). Each dot product gets [`dots`]' arithmetic (a row in
/// the last `n % 4` [`vdot`]'s, as there), each lane of `out` [`weighted_sum`]'s.
#[inline(always)]
fn one_pass<S: Lanes, const T: usize>(
    simd: S,
    g: &[f32],
    v: &[f32],
    n: usize,
    out: &mut [f32],
    coef: impl Fn(usize, f32) -> f32,
) {
    let f = v.len();
    let quads = n / 4 * 4;
    let z = simd.splat_f32s(0.0);
    let (oh, ot) = S::as_mut_simd_f32s(out);
    let (vh, vt) = S::as_simd_f32s(v);
    let vv: [S::f32s; T] = core::array::from_fn(|j| vh[j]);
    let (mut even, mut odd) = ([z; T], [z; T]);
    let mut k = 0;
    while k + 2 <= n {
        let (r0, r1) = (&g[k * f..(k + 1) * f], &g[(k + 1) * f..(k + 2) * f]);
        let d0 = row_dot::<S, T>(simd, r0, &vv, vt, k >= quads);
        let d1 = row_dot::<S, T>(simd, r1, &vv, vt, k + 1 >= quads);
        let w0 = coef(k, d0);
        let w1 = coef(k + 1, d1);
        add_row::<S, T>(simd, w0, r0, &mut even, ot);
        add_row::<S, T>(simd, w1, r1, &mut odd, ot);
        k += 2;
    }
    if k < n {
        let r0 = &g[k * f..(k + 1) * f];
        let w0 = coef(k, row_dot::<S, T>(simd, r0, &vv, vt, k >= quads));
        add_row::<S, T>(simd, w0, r0, &mut even, ot);
    }
    for t in 0..T {
        oh[t] = simd.add_f32s(oh[t], simd.add_f32s(even[t], odd[t]));
    }
}

/// `acc += w row` over the row's `T` whole vectors, and its scalar tail added into `out_tail`.
#[inline(always)]
fn add_row<S: Lanes, const T: usize>(
    simd: S,
    w: f32,
    row: &[f32],
    acc: &mut [S::f32s; T],
    out_tail: &mut [f32],
) {
    let rh = &S::as_simd_f32s(row).0[..T];
    let wv = simd.splat_f32s(w);
    for t in 0..T {
        acc[t] = simd.mul_add_e_f32s(wv, rh[t], acc[t]);
    }
    for (o, &y) in out_tail.iter_mut().zip(&row[T * S::F32_LANES..]) {
        *o += w * y;
    }
}

/// `row . v` (`v`: `T` whole vectors `vh`, then the scalar tail `vt`) as [`dots`] computes it
/// for a row in a group of four (the tail added term by term after the lanes' sum), or, for a
/// row after the groups (`last`), as [`vdot`] does (the tail as one more vector).
#[inline(always)]
fn row_dot<S: Lanes, const T: usize>(
    simd: S,
    row: &[f32],
    vh: &[S::f32s; T],
    vt: &[f32],
    last: bool,
) -> f32 {
    let (rh, rt) = S::as_simd_f32s(row);
    let rh = &rh[..T];
    let z = simd.splat_f32s(0.0);
    let (mut a, mut b) = (z, z);
    let mut j = 0;
    while j + 2 <= T {
        a = simd.mul_add_e_f32s(rh[j], vh[j], a);
        b = simd.mul_add_e_f32s(rh[j + 1], vh[j + 1], b);
        j += 2;
    }
    if j < T {
        a = simd.mul_add_e_f32s(rh[j], vh[j], a);
    }
    if rt.is_empty() {
        return simd.reduce_sum_f32s(simd.add_f32s(a, b));
    }
    if last {
        b = simd.mul_add_e_f32s(load_tail(simd, rt), load_tail(simd, vt), b);
        return simd.reduce_sum_f32s(simd.add_f32s(a, b));
    }
    add_tail(simd.reduce_sum_f32s(simd.add_f32s(a, b)), rt, vt)
}

/// Bytes ahead of the rows being read that [`streamed_dots`] requests from memory (16 rows of 64
/// factors). One thread reading a catalogue's factors once (1M items x 64 factors, Zen 5) with
/// the hardware prefetcher alone measured 14 GB/s, requesting 4 KiB ahead 30 GB/s (1 KiB: 24,
/// 2 KiB: 22, 8 KiB: 26, 16 KiB: 27), about what OpenBLAS's `sgemv` reaches (26).
const STREAM_AHEAD: usize = 4096;

/// [`dots`] of `v` with the first `d.len()` rows of `g`, for rows read from memory once (a
/// catalogue's item factors scored for one query): while each group of four rows is computed,
/// the cache lines [`STREAM_AHEAD`] bytes further on in `g` are requested. Runs with the CPU's
/// vector instructions (`arch`). Every row gets the arithmetic of a group of four in [`dots`]
/// (a last group of fewer is padded with copies of its last row), so a row's value does not
/// depend on its position: the rows left over after the groups would otherwise take `vdot`,
/// which rounds the factors beyond the last whole vector differently.
pub(crate) fn streamed_dots(arch: Arch, g: &[f32], v: &[f32], d: &mut [f32]) {
    struct Streamed<'a> {
        g: &'a [f32],
        v: &'a [f32],
        d: &'a mut [f32],
    }
    impl WithSimd for Streamed<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Lanes>(self, simd: S) {
            let Streamed { g, v, d } = self;
            let f = v.len();
            for (i, out) in d.chunks_mut(4).enumerate() {
                let at = i * 4 * f;
                let len = out.len() * f;
                let ahead = (at + STREAM_AHEAD / 4).min(g.len());
                for line in (ahead..(ahead + len).min(g.len())).step_by(16) {
                    prefetch(&g[line]);
                }
                let rows = &g[at..at + len];
                if out.len() == 4 {
                    dots(simd, rows, v, out);
                } else {
                    let last = &rows[len - f..];
                    let mut quad = rows.to_vec();
                    (out.len()..4).for_each(|_| quad.extend_from_slice(last));
                    let mut four = [0f32; 4];
                    dots(simd, &quad, v, &mut four);
                    out.copy_from_slice(&four[..out.len()]);
                }
            }
        }
    }
    arch.dispatch(Streamed { g, v, d })
}

/// `d[k] = |g_k|` (the Euclidean norm, in f32) for the first `d.len()` rows of length `f` of
/// `g`, with the CPU's vector instructions (`arch`).
pub(crate) fn row_norms(arch: Arch, g: &[f32], f: usize, d: &mut [f32]) {
    struct Norms<'a> {
        g: &'a [f32],
        f: usize,
        d: &'a mut [f32],
    }
    impl WithSimd for Norms<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Lanes>(self, simd: S) {
            let Norms { g, f, d } = self;
            for (row, n) in g.chunks_exact(f).zip(d.iter_mut()) {
                *n = vdot(simd, row, row).sqrt();
            }
        }
    }
    arch.dispatch(Norms { g, f, d })
}

/// The sum of the lanes of `a + b`, plus `r . v` (the scalar tails).
#[inline(always)]
fn finish<S: Lanes>(simd: S, a: S::f32s, b: S::f32s, r: &[f32], v: &[f32]) -> f32 {
    add_tail(simd.reduce_sum_f32s(simd.add_f32s(a, b)), r, v)
}

/// `s` plus `r . v`, term by term (the scalar tails of a dot product).
#[inline(always)]
fn add_tail(mut s: f32, r: &[f32], v: &[f32]) -> f32 {
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
    let n = w.len().min(g.len() / f.max(1));
    weighted_sum_by(simd, |k| &g[k * f..(k + 1) * f], &w[..n], out)
}

/// [`weighted_sum`] over the rows `row(k)`, `k < w.len()`, wherever they are (rows of a factor
/// matrix read in place, by id): the same arithmetic, so the same bits as over a gathered copy.
/// The rows are visited once per group of up to eight vectors of `out` (once for up to 128
/// factors with AVX-512).
#[inline(always)]
pub(crate) fn weighted_sum_by<'g, S: Lanes>(
    simd: S,
    row: impl Fn(usize) -> &'g [f32] + Copy,
    w: &[f32],
    out: &mut [f32],
) {
    let (oh, ot) = S::as_mut_simd_f32s(out);
    let nv = oh.len();
    let mut j = 0;
    while j + 8 <= nv {
        weighted_tile::<S, 8>(simd, row, w, j, &mut oh[j..j + 8]);
        j += 8;
    }
    if j + 4 <= nv {
        // 64 factors in 16 lanes: one pass over the rows instead of two
        weighted_tile::<S, 4>(simd, row, w, j, &mut oh[j..j + 4]);
        j += 4;
    }
    while j + 2 <= nv {
        weighted_tile::<S, 2>(simd, row, w, j, &mut oh[j..j + 2]);
        j += 2;
    }
    if j < nv {
        weighted_tile::<S, 1>(simd, row, w, j, &mut oh[j..j + 1]);
    }
    let tail = nv * S::F32_LANES;
    if ot.is_empty() {
        return;
    }
    for (k, &wk) in w.iter().enumerate() {
        for (o, &y) in ot.iter_mut().zip(&row(k)[tail..]) {
            *o += wk * y;
        }
    }
}

/// Vectors `j..j + T` of [`weighted_sum_by`]; even and odd rows go to separate accumulators
/// (twice the independent chains: a tile of one or two vectors would otherwise wait on its own
/// sums).
#[inline(always)]
fn weighted_tile<'g, S: Lanes, const T: usize>(
    simd: S,
    row: impl Fn(usize) -> &'g [f32],
    w: &[f32],
    j: usize,
    out: &mut [S::f32s],
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; T]; 2];
    let n = w.len();
    let mut k = 0;
    while k + 2 <= n {
        let r0 = &S::as_simd_f32s(row(k)).0[j..j + T];
        let r1 = &S::as_simd_f32s(row(k + 1)).0[j..j + T];
        let (w0, w1) = (simd.splat_f32s(w[k]), simd.splat_f32s(w[k + 1]));
        for t in 0..T {
            acc[0][t] = simd.mul_add_e_f32s(w0, r0[t], acc[0][t]);
            acc[1][t] = simd.mul_add_e_f32s(w1, r1[t], acc[1][t]);
        }
        k += 2;
    }
    if k < n {
        let rh = &S::as_simd_f32s(row(k)).0[j..j + T];
        let wv = simd.splat_f32s(w[k]);
        for t in 0..T {
            acc[0][t] = simd.mul_add_e_f32s(wv, rh[t], acc[0][t]);
        }
    }
    for t in 0..T {
        out[t] = simd.add_f32s(out[t], simd.add_f32s(acc[0][t], acc[1][t]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::tests::archs;

    /// One pass and two passes give the same bits, on every instruction set, for factor
    /// counts with and without a tail, rows in and after the groups of four, and every count
    /// of whole vectors the one pass takes.
    #[test]
    fn one_pass_equals_two_passes_to_the_bit() {
        struct Run<'a> {
            g: &'a [f32],
            v: &'a [f32],
            n: usize,
        }
        impl WithSimd for Run<'_> {
            type Output = (Vec<f32>, Vec<f32>);
            #[inline(always)]
            fn with_simd<S: Lanes>(self, simd: S) -> Self::Output {
                let Run { g, v, n } = self;
                let coef = |k: usize, d: f32| d * (1.0 + (k % 3) as f32) - 0.25;
                let start: Vec<f32> = (0..v.len()).map(|i| (i as f32 * 0.37).sin()).collect();
                let mut one = start.clone();
                dots_weighted_sum(simd, g, v, n, &mut one, &mut Vec::new(), coef);
                let mut two = start;
                let mut w = vec![0f32; n];
                dots(simd, &g[..n * v.len()], v, &mut w);
                for (k, wk) in w.iter_mut().enumerate() {
                    *wk = coef(k, *wk);
                }
                weighted_sum(simd, &g[..n * v.len()], &w, &mut two);
                (one, two)
            }
        }
        for arch in archs() {
            for f in [
                1usize, 3, 8, 9, 16, 17, 24, 32, 40, 48, 64, 65, 80, 96, 100, 128,
            ] {
                let v: Vec<f32> = (0..f).map(|i| ((i as f32) * 1.37).cos() + 1e-3).collect();
                for n in [0usize, 1, 2, 3, 4, 5, 6, 7, 8, 9, 33] {
                    let g: Vec<f32> = (0..(n + 1) * f)
                        .map(|i| ((i as f32) * 0.731).sin() * 3.0)
                        .collect();
                    let (one, two) = arch.dispatch(Run { g: &g, v: &v, n });
                    let bits = |x: &[f32]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&one), bits(&two), "{arch:?} f={f} n={n}");
                }
            }
        }
    }

    /// A row's value does not depend on where it is: identical rows, values that round, factor
    /// counts that leave a tail after the whole vectors, and row counts that leave 1-3 rows
    /// after the groups of four.
    #[test]
    fn streamed_dots_of_identical_rows_are_identical() {
        for arch in archs() {
            for f in [7usize, 17, 33, 70] {
                let row: Vec<f32> = (0..f).map(|i| ((i as f32) * 0.731).sin() * 1e3).collect();
                let v: Vec<f32> = (0..f).map(|i| ((i as f32) * 1.37).cos() + 1e-3).collect();
                for n in 1..=9 {
                    let g: Vec<f32> = (0..n).flat_map(|_| row.iter().copied()).collect();
                    let mut d = vec![f32::NAN; n];
                    streamed_dots(arch, &g, &v, &mut d);
                    for (k, x) in d.iter().enumerate() {
                        assert_eq!(x.to_bits(), d[0].to_bits(), "{arch:?} f={f} n={n} row {k}");
                    }
                }
            }
        }
    }

    /// `streamed_dots` (hence `dots`, in groups of four and the rest) against float64 dot
    /// products, for every instruction set, row counts around the groups and past the distance
    /// it requests ahead, and factor counts around the vector widths.
    #[test]
    fn streamed_dots_are_the_dot_products() {
        for arch in archs() {
            for f in [1usize, 3, 16, 17, 64, 100] {
                for n in [0usize, 1, 3, 4, 5, 17, 1030] {
                    let g: Vec<f32> = (0..n * f)
                        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 16.0)
                        .collect();
                    let v: Vec<f32> = (0..f).map(|i| ((i * 13 % 7) as f32 - 3.0) / 4.0).collect();
                    let mut d = vec![f32::NAN; n];
                    streamed_dots(arch, &g, &v, &mut d);
                    for (k, &got) in d.iter().enumerate() {
                        let want: f64 = (0..f).map(|i| g[k * f + i] as f64 * v[i] as f64).sum();
                        // the values are multiples of 1/64 well inside f32's range: exact
                        assert_eq!(got as f64, want, "{arch:?} f={f} n={n} row {k}");
                    }
                }
            }
        }
    }
}
