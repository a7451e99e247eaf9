//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the item x item
//! weights `B = I - P diag(1 / diag(P))` with `P = (X^T X + lambda I)^-1`, so that `diag(B) = 0`,
//! and a scorer `score_u = x_u B` for the shared top-k driver.
//!
//! The fit is dense in the number of items: the Gram matrix `X^T X` is accumulated from the sparse
//! `X` in parallel (one column per task), factorised in place by faer's Cholesky (`L L^T`), and
//! inverted as `P = L^-T L^-1` (faer's triangular inverse and triangular product: n^3 flops in
//! all, two `n x n` buffers at the peak, as `(X^T X + lambda I)^-1` through LAPACK's potri).

use crate::error::{Error, Result};
use crate::parallel;
use crate::simd::{vaxpy, Arch, Lanes, WithSimd};
use crate::sparse::{transpose, Csr, CsrView};
use crate::topk::{BlockScorer, Candidates, TileLayout};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    cholesky_in_place, cholesky_in_place_scratch, LltRegularization,
};
use faer::linalg::matmul::triangular::BlockStructure;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// The floating point type the factorisation runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

crate::names::by_name! { Precision, "dtype",
    "float32" => F32,
    "float64" => F64,
}

impl Precision {
    fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }
}

/// Parameters of [`ease_fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EaseParams {
    /// `lambda`, added to the diagonal of the Gram matrix (Steck's default: 500, for
    /// MovieLens-20M-sized data).
    pub regularization: f64,
    pub precision: Precision,
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams {
            regularization: 500.0,
            precision: Precision::F32,
        }
    }
}

/// Bytes [`ease_fit`] holds at its peak for `n_items` items: two `n x n` matrices of the working
/// precision, plus the float32 result when that is float64 (`None` on overflow).
pub fn ease_peak_bytes(n_items: usize, precision: Precision) -> Option<usize> {
    let sq = n_items.checked_mul(n_items)?;
    let work = sq.checked_mul(2 * precision.bytes())?;
    match precision {
        Precision::F32 => Some(work),
        // the float64 inverse and the float32 result; the second float64 buffer is freed first
        Precision::F64 => work.max(sq.checked_mul(8 + 4)?).into(),
    }
}

fn alloc_zeroed<T: crate::error::Zeroable>(
    len: usize,
    n_items: usize,
    what: &str,
) -> Result<Vec<T>> {
    crate::error::try_zeroed(len, &format!("the EASE {what} matrix"), || {
        format!("{n_items} x {n_items} items (user_items' columns)")
    })
}

/// The arithmetic the fit needs from its working type (f32 or f64).
trait Real:
    faer::traits::RealField
    + crate::error::Zeroable
    + Copy
    + Default
    + Send
    + Sync
    + std::ops::AddAssign
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + PartialOrd
{
    fn of(v: f64) -> Self;
    fn to_f32(self) -> f32;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
}

/// `X^T X + lambda I` (items x items, symmetric, stored whole) in `g`, column by column in parallel.
fn gram<T: Real>(users: &CsrView<'_>, lambda: f64, g: &mut [T], num_threads: usize) -> Result<()> {
    let n = users.n_cols();
    let items = transpose(users, num_threads)?;
    let items = items.view();
    let lambda = T::of(lambda);
    parallel::install(num_threads, || {
        g.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, col)| {
            let (us, xs) = items.row(i);
            for (&u, &xu) in us.iter().zip(xs) {
                let (js, vs) = users.row(u as usize);
                let xu = T::of(xu as f64);
                for (&j, &v) in js.iter().zip(vs) {
                    col[j as usize] += xu * T::of(v as f64);
                }
            }
            col[i] += lambda;
        })
    })
}

/// `P = A^-1` for the symmetric positive definite `A` held whole in `a` (column-major, replaced by
/// `P`, whole), using `scratch` (`n x n`).
fn spd_inverse<T: Real>(a: &mut [T], scratch: &mut [T], n: usize, par: Par) -> Result<()> {
    let mut am = MatMut::from_column_major_slice_mut(a, n, n);
    let req = cholesky_in_place_scratch::<T>(n, par, Default::default());
    let mut buf = MemBuffer::try_new(req).map_err(|_| {
        Error::invalid(
            "user_items",
            "EASE could not allocate the Cholesky workspace",
        )
    })?;
    cholesky_in_place(
        am.rb_mut(),
        LltRegularization::default(),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| {
        Error::invalid(
            "regularization",
            "X^T X + regularization * I is not positive definite in this precision: use a \
             larger regularization or dtype=float64",
        )
    })?;
    let mut linv = MatMut::from_column_major_slice_mut(scratch, n, n);
    faer::linalg::triangular_inverse::invert_lower_triangular(linv.rb_mut(), am.rb(), par);
    let linv = MatRef::from_column_major_slice(scratch, n, n);
    // P = L^-T L^-1, lower triangle, over L (no longer needed)
    faer::linalg::matmul::triangular::matmul(
        am.rb_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        linv.transpose(),
        BlockStructure::TriangularUpper,
        linv,
        BlockStructure::TriangularLower,
        T::of(1.0),
        par,
    );
    // mirror the lower triangle: column j of the column-major storage gets row j's upper part
    for j in 0..n {
        for i in j + 1..n {
            a[i * n + j] = a[j * n + i];
        }
    }
    Ok(())
}

/// Writes `B[i, j] = -P[i, j] / P[j, j]` (`B[j, j] = 0`) row-major into `out` from the symmetric
/// `p` (so `p[i * n + j] = P[i, j]` in either order).
fn weights_from_inverse<T: Real>(
    p: &[T],
    out: &mut [f32],
    n: usize,
    num_threads: usize,
) -> Result<()> {
    let diag: Vec<T> = (0..n).map(|j| p[j * n + j]).collect();
    parallel::install(num_threads, || {
        out.par_chunks_mut(n.max(1))
            .zip(p.par_chunks(n.max(1)))
            .enumerate()
            .for_each(|(i, (row, prow))| {
                for (j, (b, &pij)) in row.iter_mut().zip(prow).enumerate() {
                    *b = if i == j {
                        0.0
                    } else {
                        (-pij / diag[j]).to_f32()
                    };
                }
            })
    })
}

/// The same in place (float32).
fn weights_in_place(p: &mut [f32], n: usize, num_threads: usize) -> Result<()> {
    let diag: Vec<f32> = (0..n).map(|j| p[j * n + j]).collect();
    parallel::install(num_threads, || {
        p.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
            for (j, b) in row.iter_mut().enumerate() {
                *b = if i == j { 0.0 } else { -*b / diag[j] };
            }
        })
    })
}

/// `P = (X^T X + lambda I)^-1`, whole, column-major (= row-major: it is symmetric).
fn inverse_in<T: Real>(users: &CsrView<'_>, lambda: f64, num_threads: usize) -> Result<Vec<T>> {
    let n = users.n_cols();
    let len = n
        .checked_mul(n)
        .ok_or_else(|| Error::invalid("user_items", format!("{n} x {n} items overflow")))?;
    // Ctrl-C is noticed between the phases (faer's factorisation runs to its end)
    let stop = parallel::stop_flag();
    let mut a: Vec<T> = alloc_zeroed(len, n, "Gram")?;
    gram(users, lambda, &mut a, num_threads)?;
    stop.check()?;
    let mut scratch: Vec<T> = alloc_zeroed(len, n, "inverse")?;
    let threads = parallel::resolve_threads(num_threads);
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    parallel::install(num_threads, || spd_inverse(&mut a, &mut scratch, n, par))??;
    stop.check()?;
    Ok(a)
}

/// The EASE weights `B` of `user_items` (users x items) as a row-major `n_items x n_items` float32
/// matrix (`B[i, j]`: what item `i` in a user's row adds to item `j`'s score; `B[j, j] = 0`).
/// Items nobody has get zero rows and columns. Fails (instead of aborting) when the matrices
/// cannot be allocated, and when `X^T X + lambda I` is not numerically positive definite.
pub fn ease_fit(
    user_items: &CsrView<'_>,
    params: &EaseParams,
    num_threads: usize,
) -> Result<Vec<f32>> {
    if !(params.regularization.is_finite() && params.regularization > 0.0) {
        return Err(Error::invalid(
            "regularization",
            format!("must be a positive number, got {}", params.regularization),
        ));
    }
    let n = user_items.n_cols();
    match params.precision {
        Precision::F32 => {
            let mut p = inverse_in::<f32>(user_items, params.regularization, num_threads)?;
            weights_in_place(&mut p, n, num_threads)?;
            Ok(p)
        }
        Precision::F64 => {
            let p = inverse_in::<f64>(user_items, params.regularization, num_threads)?;
            let mut out: Vec<f32> = alloc_zeroed(p.len(), n, "weight")?;
            weights_from_inverse(&p, &mut out, n, num_threads)?;
            Ok(out)
        }
    }
}

/// Columns per parallel task of [`sparsify_columns`] (copied out of the row-major weights
/// together, so that each row of the weights is read a few cache lines at a time).
const SPARSIFY_COLUMNS: usize = 32;

/// The sparse EASE model: of every column `j` of `weights` (`n x n`, row-major: `B[i, j]` is what
/// item `i` in a user's row adds to item `j`'s score), the `k` entries of largest magnitude
/// (ties to the lower row; zeros are never kept), as a CSR matrix by rows (row `i`: the items `j`
/// whose column kept `B[i, j]`, ascending), the form the kNN scorer reads. A column keeps what
/// predicts its item best, negative weights included (Steck 2019 shows EASE's negative weights
/// carry much of its accuracy). The result does not depend on the thread count.
pub fn sparsify_columns(weights: &[f32], n: usize, k: usize, num_threads: usize) -> Result<Csr> {
    if n.checked_mul(n) != Some(weights.len()) {
        return Err(Error::shape(
            "EASE weights (items x items)",
            format!("{n} x {n}"),
            format!("{} values", weights.len()),
        ));
    }
    if i32::try_from(n).is_err() {
        return Err(Error::invalid(
            "weights",
            format!("{n} items exceed i32 indices"),
        ));
    }
    let k = k.min(n);
    // per column: its kept (row, value) pairs, rows ascending
    let columns: Vec<(Vec<i32>, Vec<f32>)> = parallel::install(num_threads, || {
        (0..n.div_ceil(SPARSIFY_COLUMNS))
            .into_par_iter()
            .map_init(
                || (vec![0f32; SPARSIFY_COLUMNS * n], Vec::<(f32, u32)>::new()),
                |(buf, cand), b| {
                    let (j0, j1) = (b * SPARSIFY_COLUMNS, ((b + 1) * SPARSIFY_COLUMNS).min(n));
                    let w = j1 - j0;
                    for (i, row) in weights.chunks_exact(n).enumerate() {
                        for (c, &v) in row[j0..j1].iter().enumerate() {
                            buf[c * n + i] = v;
                        }
                    }
                    (0..w)
                        .map(|c| {
                            cand.clear();
                            cand.extend(
                                buf[c * n..(c + 1) * n]
                                    .iter()
                                    .enumerate()
                                    .filter(|&(_, &v)| v != 0.0)
                                    .map(|(i, &v)| (v, i as u32)),
                            );
                            // larger magnitude first, then the lower row
                            let order = |a: &(f32, u32), b: &(f32, u32)| {
                                b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1))
                            };
                            if cand.len() > k {
                                if k > 0 {
                                    cand.select_nth_unstable_by(k - 1, order);
                                }
                                cand.truncate(k);
                            }
                            cand.sort_unstable_by_key(|&(_, i)| i);
                            cand.iter().map(|&(v, i)| (i as i32, v)).unzip()
                        })
                        .collect::<Vec<(Vec<i32>, Vec<f32>)>>()
                },
            )
            .flatten_iter()
            .collect()
    })?;
    // the columns are the rows of B^T; its transpose is B by rows
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0i64);
    let nnz: usize = columns.iter().map(|c| c.0.len()).sum();
    let (mut indices, mut data) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (rows, vals) in columns {
        indices.extend(rows);
        data.extend(vals);
        indptr.push(indices.len() as i64);
    }
    let bt = CsrView::new("sparse EASE weights", n, n, &indptr, &indices, &data)?;
    transpose(&bt, num_threads)
}

/// Queries per block: about 256 KiB of scores (one whole row of positions per query), 1 to 16.
fn rows_per_block(n_positions: usize) -> usize {
    ((1usize << 16) / n_positions.max(1)).clamp(1, 16)
}

/// Scores `x_u B` for users' rows: each query's row of scores is the sum of the rows `B[i, :]` of
/// its items weighted by its values (vectorised, query-major tiles).
pub struct EaseScorer<'a> {
    queries: CsrView<'a>,
    weights: &'a [f32],
    n_items: usize,
    subset: Option<Vec<u32>>,
    n_positions: usize,
}

impl<'a> EaseScorer<'a> {
    /// Recommendations for `queries` (one row per query over the items) from the row-major
    /// `n_items x n_items` `weights`.
    pub fn new(queries: CsrView<'a>, weights: &'a [f32], candidates: &Candidates) -> Result<Self> {
        let n = candidates.n_items();
        if n.checked_mul(n) != Some(weights.len()) {
            return Err(Error::shape(
                "EASE weights (items x items)",
                format!("{n} x {n}"),
                format!("{} values", weights.len()),
            ));
        }
        if queries.n_cols() != n {
            return Err(Error::shape(
                "user_items columns (items)",
                n,
                queries.n_cols(),
            ));
        }
        Ok(EaseScorer {
            queries,
            weights,
            n_items: n,
            subset: candidates.subset().map(<[u32]>::to_vec),
            n_positions: candidates.n_positions(),
        })
    }
}

struct Accumulate<'a> {
    items: &'a [i32],
    values: &'a [f32],
    weights: &'a [f32],
    n: usize,
    scores: &'a mut [f32],
}

impl WithSimd for Accumulate<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        for (&i, &r) in self.items.iter().zip(self.values) {
            let row = &self.weights[i as usize * self.n..(i as usize + 1) * self.n];
            vaxpy(simd, r, row, self.scores);
        }
    }
}

impl BlockScorer for EaseScorer<'_> {
    type Scratch = Vec<f32>;

    fn n_queries(&self) -> usize {
        self.queries.n_rows()
    }

    fn n_positions(&self) -> usize {
        self.n_positions
    }

    fn tile_shape(&self) -> (usize, usize) {
        (rows_per_block(self.n_positions), self.n_positions)
    }

    fn make_scratch(&self) -> Vec<f32> {
        if self.subset.is_some() {
            vec![0.0; self.n_items]
        } else {
            Vec::new()
        }
    }

    fn layout(&self) -> TileLayout {
        TileLayout::QueryMajor
    }

    fn score_tile(
        &self,
        q0: usize,
        m: usize,
        p0: usize,
        nt: usize,
        out: &mut [f32],
        full: &mut Vec<f32>,
    ) {
        debug_assert!(p0 == 0 && nt == self.n_positions, "rows are scored whole");
        let arch = Arch::new();
        for (q, scores) in out[..m * nt].chunks_exact_mut(nt).enumerate() {
            let (items, values) = self.queries.row(q0 + q);
            let target: &mut [f32] = if self.subset.is_some() { full } else { scores };
            target.fill(0.0);
            arch.dispatch(Accumulate {
                items,
                values,
                weights: self.weights,
                n: self.n_items,
                scores: target,
            });
            if let Some(ids) = &self.subset {
                for (s, &i) in scores.iter_mut().zip(ids) {
                    *s = full[i as usize];
                }
            }
        }
    }
}
