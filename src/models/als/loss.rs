//! implicit 0.7's training loss of a factorisation.

use super::{check_shapes, gram};
use crate::error::Result;
use crate::parallel;
use crate::simd::{axpy, dispatch, dot, Simd};
use crate::sparse::CsrView;
use rayon::prelude::*;

/// `out = A x` for a symmetric row-major `f x f` matrix, as `sum_j x_j A[j, :]` (row j of a
/// symmetric matrix is its column j): vector multiply-adds without horizontal sums.
#[inline(always)]
fn symv<const FMA: bool>(a: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    out.fill(0.0);
    for (&xj, row) in x.iter().zip(a.chunks_exact(f)) {
        axpy::<FMA>(xj, row, out);
    }
}

/// One row's `(loss terms, confidence, |x_u|^2)`: `(A x - 2 b) . x` without forming A.
#[inline(always)]
fn loss_row<const FMA: bool>(
    items: &[i32],
    conf: &[f32],
    xu: &[f32],
    y: &[f32],
    yty: &[f32],
    r: &mut [f32],
) -> (f64, f64, f64) {
    let f = xu.len();
    symv::<FMA>(yty, xu, r);
    let (mut loss, mut total) = (0f64, 0f64);
    for (&i, &cv) in items.iter().zip(conf) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let (pref, cv) = if cv > 0.0 {
            (-2.0 * cv, cv)
        } else {
            (0.0, -cv)
        };
        axpy::<FMA>(pref + (cv - 1.0) * dot::<FMA>(yi, xu), yi, r);
        total += cv as f64;
        loss += cv as f64;
    }
    loss += dot::<FMA>(r, xu) as f64;
    (loss, total, dot::<FMA>(xu, xu) as f64)
}

/// implicit 0.7's training loss: `(sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2)) /
/// (sum of confidences + number of missing entries)`, missing entries having confidence 1 and
/// preference 0. Like implicit, a stored negative entry adds its confidence to the numerator as if
/// its preference were 1 (the exact objective would not); kept so that losses compare with
/// implicit's. Summed per row, then in row order (independent of the thread count).
pub fn loss(
    c: &CsrView<'_>,
    x: &[f32],
    y: &[f32],
    f: usize,
    reg: f32,
    num_threads: usize,
) -> Result<f64> {
    check_shapes(c, x, y, f)?;
    let yty = gram(y, f, 0.0)?;
    let row_loss = dispatch!(Simd::detect(), loss_row, loss_row_avx2,
        (items: &[i32], conf: &[f32], xu: &[f32], y: &[f32], yty: &[f32], r: &mut [f32])
        -> (f64, f64, f64));
    let per_row: Vec<(f64, f64, f64)> = parallel::install(num_threads, || {
        x.par_chunks(f)
            .enumerate()
            .map_init(
                || vec![0f32; f],
                |r, (u, xu)| {
                    let (items, conf) = c.row(u);
                    row_loss(items, conf, xu, y, &yty, r)
                },
            )
            .collect()
    })?;
    let item_norm: f64 = y.chunks(f).map(|v| dot::<false>(v, v) as f64).sum();
    let (mut loss, mut total, mut user_norm) = (0f64, 0f64, 0f64);
    for (l, t, n) in per_row {
        loss += l;
        total += t;
        user_norm += n;
    }
    loss += reg as f64 * (item_norm + user_norm);
    let missing = (c.n_rows() * c.n_cols() - c.nnz()) as f64;
    Ok(loss / (total + missing))
}
