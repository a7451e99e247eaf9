//! Graph spectral filters for collaborative filtering on the normalised interaction graph
//! `R~ = D_U^-a R D_I^-b`: GF-CF (Shen et al., CIKM 2021), BSPM (Choi et al., SIGIR 2023) and
//! ChebyCF (Kim et al., SIGIR 2025). Every filter is a polynomial in the linear filter
//! `P = R~^T R~`, applied per user batch as two sparse products (`(X R~^T) R~`, never
//! materialised), plus an ideal low-pass term `x D^-b V V^T D^b` from the `k` leading right
//! singular vectors `V` of `R~` (`crate::linalg::svd`). Memory: O(nnz + items x k), plus a few
//! `items x 64` blocks per thread when scoring (`items x 16` for calls of up to 16 users).
//!
//! Scoring is bound by memory traffic: each product gathers a row of the block's state (64
//! floats, or 16) per stored entry. The products therefore run on the graph cut into column
//! ranges whose rows of the state fit in a core's L2 cache ([`GraphTiles`], two more copies of
//! the graph's entries, built on the first call and kept with the model), summing each output row
//! in registers.

use crate::error::{try_with_capacity, try_zeroed, Error, Result};
use crate::simd::{Arch, Lanes, WithSimd};
use crate::sparse::CsrView;
use crate::topk::{BlockScorer, Candidates};
use faer::{Accum, MatMut, MatRef, Par};

/// Explicit fixed-step solvers of the papers' ODEs (torchdiffeq's `euler` and `rk4` on a uniform
/// grid). On the linear ODEs here every 4-stage 4th-order method (torchdiffeq's 3/8 rule
/// included) gives the same step polynomial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    Euler,
    Rk4,
}

crate::names::by_name! { Solver, "solver",
    "euler" => Euler,
    "rk4" => Rk4,
}

/// `steps` steps of `solver` from time 0 to `time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ode {
    pub solver: Solver,
    pub time: f64,
    pub steps: usize,
}

impl Ode {
    fn h(&self) -> f32 {
        (self.time / self.steps.max(1) as f64) as f32
    }
}

/// Which filter, with its published options.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `x P + w x D^-b V V^T D^b`.
    GfCf { ideal_weight: f32 },
    /// Blurring `dx/dt = x P - x`, the ideal low-pass ODE `dx/dt = x D^-b V V^T D^b - x`,
    /// sharpening `dx/dt = -x P`, merged early (the sharpening starts from `blur + w ideal`) or
    /// late (`sharpened + w ideal`), optionally averaging the states at every time point, as in
    /// the authors' `BSPM.getUsersRating`.
    Bspm {
        ideal_weight: f32,
        blur: Ode,
        ideal: Ode,
        sharpen: Option<Ode>,
        final_sharpening: bool,
        t_point_combination: bool,
    },
    /// `D^b (sum_n c_n T_n(L) + w V V^T) D^-b x` with `L = I - 2P` and Chebyshev polynomials
    /// `T_n` (coefficients from the paper's interpolation, computed by the caller).
    ChebyCf { coeffs: Vec<f32>, ideal_weight: f32 },
}

// the papers' settings (ChebyCF's coefficients are computed by the caller from its order and
// flatness)
crate::names::by_name! { Filter, "method",
    "gf-cf" => GfCf { ideal_weight: 0.3 },
    "bspm" => Bspm {
        ideal_weight: 0.2,
        blur: Ode { solver: Solver::Euler, time: 1.0, steps: 1 },
        ideal: Ode { solver: Solver::Euler, time: 1.0, steps: 1 },
        sharpen: Some(Ode { solver: Solver::Rk4, time: 2.5, steps: 1 }),
        final_sharpening: true,
        t_point_combination: false,
    },
    "chebycf" => ChebyCf { coeffs: Vec::new(), ideal_weight: 0.2 },
}

impl Filter {
    fn check(&self) -> Result<()> {
        let ode_ok = |what: &str, o: &Ode| {
            if o.steps == 0 || !(o.time.is_finite() && o.time > 0.0) {
                Err(Error::invalid(
                    what,
                    format!("needs at least one step and a positive time, got {o:?}"),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Filter::GfCf { ideal_weight } | Filter::ChebyCf { ideal_weight, .. }
                if !ideal_weight.is_finite() =>
            {
                Err(Error::invalid("ideal_weight", "must be finite"))
            }
            Filter::ChebyCf { coeffs, .. } if coeffs.is_empty() => Err(Error::invalid(
                "order",
                "ChebyCF needs at least one coefficient",
            )),
            Filter::Bspm {
                ideal_weight,
                blur,
                ideal,
                sharpen,
                ..
            } => {
                if !ideal_weight.is_finite() {
                    return Err(Error::invalid("ideal_weight", "must be finite"));
                }
                ode_ok("blur", blur)?;
                ode_ok("ideal", ideal)?;
                if let Some(s) = sharpen {
                    ode_ok("sharpen", s)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The number of `n x m` state buffers the filter needs.
    fn buffers(&self) -> usize {
        match self {
            Filter::GfCf { .. } => 2,
            Filter::ChebyCf { .. } => 5,
            Filter::Bspm { .. } => 7,
        }
    }
}

/// Queries per block: the state is `items x BLOCK` per buffer (a partial last block is padded
/// with zero columns, so that every product runs on whole vectors).
const BLOCK: usize = 64;

/// The state's width for calls of at most this many queries (one AVX-512 vector): a call of one
/// user then moves a quarter of the bytes of a 64-wide state through every product.
const NARROW: usize = 16;

/// Rows of `V` per product in the ideal term: their scores (at most 256 KiB) stay in L2 until
/// they are scaled into the state.
const IDEAL_ROWS: usize = 1024;

/// Bytes of the dense operand one tile of a sparse product gathers from (its rows are `BLOCK`
/// floats): about a core's L2 cache, so that the tile's rows mostly stay cached while its entries
/// are streamed. Wider tiles mean fewer (row, tile) pairs, each a read-modify-write of an output
/// row from beyond L2; with popular items and users taking most entries, their rows stay cached
/// even when the tile is a little larger than L2 (benches/compare/RESULTS.md).
const TILE_BYTES: usize = 2 << 20;

/// A sparse matrix cut into ranges of its columns (tiles), each stored as the rows that have
/// entries in that range: `out = A X` then gathers, per tile, only from the rows of `X` in that
/// range, which stay cached, instead of from all of `X`.
struct Tiles {
    n_rows: usize,
    /// the rows with entries, tile after tile
    rows: Vec<u32>,
    /// `rows.len() + 1` offsets: row `rows[j]`'s entries are `indptr[j]..indptr[j + 1]`
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl Tiles {
    /// `a` cut into column ranges of `width`, entries in their order within each row.
    fn new(a: &CsrView<'_>, width: usize) -> Tiles {
        let width = width.max(1);
        let n_tiles = a.n_cols().div_ceil(width).max(1);
        let (mut counts, mut row_counts) = (vec![0usize; n_tiles], vec![0usize; n_tiles]);
        let mut seen = vec![usize::MAX; n_tiles];
        for r in 0..a.n_rows() {
            for &c in a.row(r).0 {
                let t = c as usize / width;
                counts[t] += 1;
                if seen[t] != r {
                    seen[t] = r;
                    row_counts[t] += 1;
                }
            }
        }
        // where each tile's rows and entries start
        let mut tile_rows = vec![0usize; n_tiles + 1];
        let mut start = vec![0usize; n_tiles];
        let mut at = 0;
        for (t, (&n_rows, &n)) in row_counts.iter().zip(&counts).enumerate() {
            tile_rows[t + 1] = tile_rows[t] + n_rows;
            start[t] = at;
            at += n;
        }
        let n_entries = at;
        let mut rows = vec![0u32; tile_rows[n_tiles]];
        let mut indptr = vec![0usize; tile_rows[n_tiles] + 1];
        let mut indices = vec![0u32; n_entries];
        let mut data = vec![0f32; n_entries];
        let mut next_row: Vec<usize> = tile_rows[..n_tiles].to_vec();
        let mut next = start;
        seen.fill(usize::MAX);
        for r in 0..a.n_rows() {
            let (cols, vals) = a.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let t = c as usize / width;
                if seen[t] != r {
                    seen[t] = r;
                    rows[next_row[t]] = r as u32;
                    indptr[next_row[t]] = next[t];
                    next_row[t] += 1;
                }
                indices[next[t]] = c as u32;
                data[next[t]] = v;
                next[t] += 1;
            }
        }
        // tiles follow each other in `rows` and in the entries, so a row's entries end where the
        // next row's (in its tile or the next) begin
        indptr[tile_rows[n_tiles]] = n_entries;
        Tiles {
            n_rows: a.n_rows(),
            rows,
            indptr,
            indices,
            data,
        }
    }
}

/// One vector of `x` that starts at `at`.
#[inline(always)]
fn load<S: Lanes>(x: &[f32], at: usize) -> S::f32s {
    S::as_simd_f32s(&x[at..at + S::F32_LANES]).0[0]
}

/// `out[..4 vectors] += sum_e vals[e] * x[cols[e] * width + c0..][..4 vectors]`, summed in
/// registers with two sets of accumulators (even and odd entries: consecutive entries do not
/// wait on each other).
#[inline(always)]
fn gather_add4<S: Lanes, const W: usize>(
    simd: S,
    (cols, vals): (&[u32], &[f32]),
    x: &[f32],
    c0: usize,
    out: &mut [f32],
) {
    let l = S::F32_LANES;
    let zero = simd.splat_f32s(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
    let (mut b0, mut b1, mut b2, mut b3) = (zero, zero, zero, zero);
    let (mut cs, mut vs) = (cols.chunks_exact(2), vals.chunks_exact(2));
    for (c, v) in (&mut cs).zip(&mut vs) {
        let (i, j) = (c[0] as usize * W + c0, c[1] as usize * W + c0);
        let (vi, vj) = (simd.splat_f32s(v[0]), simd.splat_f32s(v[1]));
        a0 = simd.mul_add_e_f32s(vi, load::<S>(x, i), a0);
        a1 = simd.mul_add_e_f32s(vi, load::<S>(x, i + l), a1);
        a2 = simd.mul_add_e_f32s(vi, load::<S>(x, i + 2 * l), a2);
        a3 = simd.mul_add_e_f32s(vi, load::<S>(x, i + 3 * l), a3);
        b0 = simd.mul_add_e_f32s(vj, load::<S>(x, j), b0);
        b1 = simd.mul_add_e_f32s(vj, load::<S>(x, j + l), b1);
        b2 = simd.mul_add_e_f32s(vj, load::<S>(x, j + 2 * l), b2);
        b3 = simd.mul_add_e_f32s(vj, load::<S>(x, j + 3 * l), b3);
    }
    if let (Some(&c), Some(&v)) = (cs.remainder().first(), vs.remainder().first()) {
        let (i, vi) = (c as usize * W + c0, simd.splat_f32s(v));
        a0 = simd.mul_add_e_f32s(vi, load::<S>(x, i), a0);
        a1 = simd.mul_add_e_f32s(vi, load::<S>(x, i + l), a1);
        a2 = simd.mul_add_e_f32s(vi, load::<S>(x, i + 2 * l), a2);
        a3 = simd.mul_add_e_f32s(vi, load::<S>(x, i + 3 * l), a3);
    }
    let (o, _) = S::as_mut_simd_f32s(&mut out[..4 * l]);
    o[0] = simd.add_f32s(o[0], simd.add_f32s(a0, b0));
    o[1] = simd.add_f32s(o[1], simd.add_f32s(a1, b1));
    o[2] = simd.add_f32s(o[2], simd.add_f32s(a2, b2));
    o[3] = simd.add_f32s(o[3], simd.add_f32s(a3, b3));
}

/// [`gather_add4`] for one vector, for states narrower than four vectors. Every lane sums its
/// entries in the same order as there, so a query's scores do not depend on the state's width.
#[inline(always)]
fn gather_add1<S: Lanes, const W: usize>(
    simd: S,
    (cols, vals): (&[u32], &[f32]),
    x: &[f32],
    c0: usize,
    out: &mut [f32],
) {
    let zero = simd.splat_f32s(0.0);
    let (mut a, mut b) = (zero, zero);
    let (mut cs, mut vs) = (cols.chunks_exact(2), vals.chunks_exact(2));
    for (c, v) in (&mut cs).zip(&mut vs) {
        let (i, j) = (c[0] as usize * W + c0, c[1] as usize * W + c0);
        a = simd.mul_add_e_f32s(simd.splat_f32s(v[0]), load::<S>(x, i), a);
        b = simd.mul_add_e_f32s(simd.splat_f32s(v[1]), load::<S>(x, j), b);
    }
    if let (Some(&c), Some(&v)) = (cs.remainder().first(), vs.remainder().first()) {
        let i = c as usize * W + c0;
        a = simd.mul_add_e_f32s(simd.splat_f32s(v), load::<S>(x, i), a);
    }
    let (o, _) = S::as_mut_simd_f32s(&mut out[..S::F32_LANES]);
    o[0] = simd.add_f32s(o[0], simd.add_f32s(a, b));
}

/// `out = A X` for `A` cut into [`Tiles`], `X` and `out` row-major with `W` columns (a
/// multiple of [`NARROW`]; a constant, so that the gathers' addresses are shifts).
struct TiledProduct<'a, const W: usize> {
    a: &'a Tiles,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl<const W: usize> WithSimd for TiledProduct<'_, W> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        let a = self.a;
        let (l, l4) = (S::F32_LANES, 4 * S::F32_LANES);
        debug_assert_eq!(W % l4.min(W), 0, "a row is whole groups of vectors");
        let out = &mut self.out[..a.n_rows * W];
        out.fill(0.0);
        for (j, &r) in a.rows.iter().enumerate() {
            let entries = (
                &a.indices[a.indptr[j]..a.indptr[j + 1]],
                &a.data[a.indptr[j]..a.indptr[j + 1]],
            );
            let row = &mut out[r as usize * W..(r as usize + 1) * W];
            if W >= l4 {
                for c0 in (0..W).step_by(l4) {
                    gather_add4::<S, W>(simd, entries, self.x, c0, &mut row[c0..c0 + l4]);
                }
            } else {
                for c0 in (0..W).step_by(l) {
                    gather_add1::<S, W>(simd, entries, self.x, c0, &mut row[c0..c0 + l]);
                }
            }
        }
    }
}

/// `out = A X` with `width` ([`NARROW`] or [`BLOCK`]) columns: [`TiledProduct`] of that width.
fn tiled_product(arch: Arch, a: &Tiles, x: &[f32], out: &mut [f32], width: usize) {
    if width == NARROW {
        arch.dispatch(TiledProduct::<NARROW> { a, x, out })
    } else {
        debug_assert_eq!(width, BLOCK);
        arch.dispatch(TiledProduct::<BLOCK> { a, x, out })
    }
}

/// `R~` cut by items and `R~^T` cut by users, for `P x = R~^T (R~ x)`: built once per graph
/// (two more copies of its entries) and kept with the model between calls.
pub struct GraphTiles {
    by_items: Tiles,
    by_users: Tiles,
    /// the graph's users, items and entries, to check that a call passes the same graph
    shape: (usize, usize, usize),
}

impl GraphTiles {
    /// The tiles of `graph` (users x items) and its transpose `graph_t`.
    pub fn new(graph: &CsrView<'_>, graph_t: &CsrView<'_>) -> Result<GraphTiles> {
        check_transposed(graph, graph_t)?;
        let rows_per_tile = TILE_BYTES / (BLOCK * std::mem::size_of::<f32>());
        Ok(GraphTiles {
            by_items: Tiles::new(graph, rows_per_tile),
            by_users: Tiles::new(graph_t, rows_per_tile),
            shape: (graph.n_rows(), graph.n_cols(), graph.nnz()),
        })
    }
}

fn check_transposed(graph: &CsrView<'_>, graph_t: &CsrView<'_>) -> Result<()> {
    let (nu, n) = (graph.n_rows(), graph.n_cols());
    if graph_t.n_rows() != n || graph_t.n_cols() != nu || graph_t.nnz() != graph.nnz() {
        return Err(Error::shape(
            "graph (users x items) and its transpose",
            format!("{nu} x {n} and {n} x {nu}, {} entries each", graph.nnz()),
            format!(
                "{} x {} ({} entries) and {} x {} ({} entries)",
                nu,
                n,
                graph.nnz(),
                graph_t.n_rows(),
                graph_t.n_cols(),
                graph_t.nnz()
            ),
        ));
    }
    Ok(())
}

/// Scores of a spectral filter for users' rows, a block of users at a time, for the shared top-k
/// driver (position-major tiles: the item-major state is what the scan reads).
pub struct SpectralScorer<'a> {
    queries: CsrView<'a>,
    graph: CsrView<'a>,
    graph_t: CsrView<'a>,
    tiles: &'a GraphTiles,
    /// `V` (items x k, row-major) and the item scalings `D^-b` (`pre`) and `D^b` (`post`) of the
    /// ideal term `x D^-b V V^T D^b`; ChebyCF also scales its signal and output by them.
    factors: &'a [f32],
    pre: &'a [f32],
    post: &'a [f32],
    k: usize,
    filter: Filter,
    subset: Option<Vec<u32>>,
    n_positions: usize,
    /// queries per block and columns of the state: [`NARROW`] for calls of a few queries,
    /// [`BLOCK`] otherwise
    width: usize,
    arch: Arch,
}

impl<'a> SpectralScorer<'a> {
    /// `graph` is `R~` (users x items), `graph_t` its transpose and `tiles` theirs; `factors`
    /// the row-major `items x k` right singular vectors; `pre`/`post` the item scalings (`D^-b`,
    /// `D^b`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queries: CsrView<'a>,
        graph: CsrView<'a>,
        graph_t: CsrView<'a>,
        tiles: &'a GraphTiles,
        factors: &'a [f32],
        k: usize,
        pre: &'a [f32],
        post: &'a [f32],
        filter: Filter,
        candidates: &Candidates,
    ) -> Result<Self> {
        filter.check()?;
        let n = candidates.n_items();
        check_transposed(&graph, &graph_t)?;
        if graph.n_cols() != n {
            return Err(Error::shape("graph columns (items)", n, graph.n_cols()));
        }
        if tiles.shape != (graph.n_rows(), n, graph.nnz()) {
            return Err(Error::invalid(
                "tiles",
                "must be built from this graph (these were built from another one)",
            ));
        }
        if queries.n_cols() != n {
            return Err(Error::shape(
                "user_items columns (items)",
                n,
                queries.n_cols(),
            ));
        }
        if factors.len() != n * k {
            return Err(Error::shape(
                "factors (items x k)",
                format!("{n} x {k}"),
                format!("{} values", factors.len()),
            ));
        }
        if pre.len() != n || post.len() != n {
            return Err(Error::shape("item scalings", n, pre.len().min(post.len())));
        }
        Ok(SpectralScorer {
            width: if queries.n_rows() <= NARROW {
                NARROW
            } else {
                BLOCK
            },
            arch: Arch::new(),
            queries,
            graph,
            graph_t,
            tiles,
            factors,
            pre,
            post,
            k,
            filter,
            subset: candidates.subset().map(<[u32]>::to_vec),
            n_positions: candidates.n_positions(),
        })
    }

    fn n_items(&self) -> usize {
        self.graph.n_cols()
    }

    /// `y = P x` (`x`, `y`: items x width), through `z` (users x width): two tiled products.
    fn linear(&self, x: &[f32], y: &mut [f32], z: &mut [f32]) {
        let (nu, n, width) = (self.graph.n_rows(), self.n_items(), self.width);
        let t = &self.tiles;
        tiled_product(
            self.arch,
            &t.by_items,
            &x[..n * width],
            &mut z[..nu * width],
            width,
        );
        tiled_product(
            self.arch,
            &t.by_users,
            &z[..nu * width],
            &mut y[..n * width],
            width,
        );
    }

    /// `y (+)= w * post * V (V^T (pre * x))` for the rows `x` of the `m` queries from `q0`:
    /// `t = V^T (pre * x)` (k x m) gathers the rows of `V` of each query's items, then `V t` is
    /// a product over [`IDEAL_ROWS`] rows of `V` at a time (through `u`), scaled into `y`.
    #[allow(clippy::too_many_arguments)] // the state and its scratch, borrowed separately
    fn ideal(
        &self,
        q0: usize,
        m: usize,
        y: &mut [f32],
        (t, u): (&mut [f32], &mut [f32]),
        w: f32,
        accumulate: bool,
    ) {
        let (n, k, width) = (self.n_items(), self.k, self.width);
        let y = &mut y[..n * width];
        if !accumulate {
            y.fill(0.0);
        }
        if k == 0 || w == 0.0 || m == 0 {
            return;
        }
        // t^T (m x k, row-major): query q's row is the sum of its items' scaled rows of V; at
        // least two rows, so that one query gets the batches' arithmetic (faer's product of one
        // column takes another path, which rounds differently)
        let (queries, m) = (m, m.max(2));
        let t = &mut t[..m * k];
        t.fill(0.0);
        for (q, tq) in t.chunks_exact_mut(k).enumerate().take(queries) {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &v) in items.iter().zip(values) {
                let v = v * self.pre[i as usize];
                let row = &self.factors[i as usize * k..(i as usize + 1) * k];
                for (o, &l) in tq.iter_mut().zip(row) {
                    *o += v * l;
                }
            }
        }
        let tm = MatRef::from_row_major_slice(t, m, k).transpose();
        for r0 in (0..n).step_by(IDEAL_ROWS) {
            let rows = IDEAL_ROWS.min(n - r0);
            let v = MatRef::from_row_major_slice(&self.factors[r0 * k..(r0 + rows) * k], rows, k);
            let um = MatMut::from_row_major_slice_mut(&mut u[..rows * m], rows, m);
            faer::linalg::matmul::matmul(um, Accum::Replace, v, tm, w, Par::Seq);
            for ((yr, ur), &d) in y[r0 * width..(r0 + rows) * width]
                .chunks_exact_mut(width)
                .zip(u.chunks_exact(m))
                .zip(&self.post[r0..r0 + rows])
            {
                for (yv, &uv) in yr.iter_mut().zip(ur) {
                    *yv += d * uv;
                }
            }
        }
    }

    /// `y = P x` for the queries' rows `x` (times `scale` per item when given): `R~ x` is
    /// scattered from the users of each query's items (sparse, cheap), then `R~^T (R~ x)` is a
    /// dense product as in [`Self::linear`].
    fn linear_rows(
        &self,
        q0: usize,
        m: usize,
        scale: Option<&[f32]>,
        y: &mut [f32],
        z: &mut [f32],
    ) {
        let (nu, n, width) = (self.graph.n_rows(), self.n_items(), self.width);
        let z = &mut z[..nu * width];
        z.fill(0.0);
        for q in 0..m {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &v) in items.iter().zip(values) {
                let v = scale.map_or(v, |s| v * s[i as usize]);
                let (us, rs) = self.graph_t.row(i as usize);
                for (&u, &r) in us.iter().zip(rs) {
                    z[u as usize * width + q] += r * v;
                }
            }
        }
        tiled_product(
            self.arch,
            &self.tiles.by_users,
            z,
            &mut y[..n * width],
            width,
        );
    }

    /// One solver step of `dx/dt = a P x + b x` on `x` in place.
    #[allow(clippy::too_many_arguments)] // the state and its scratch, borrowed separately
    fn ode_step(
        &self,
        ode: &Ode,
        a: f32,
        b: f32,
        x: &mut [f32],
        bufs: &mut [Vec<f32>],
        z: &mut [f32],
        m: usize,
        rows: Option<usize>,
    ) {
        let len = self.n_items() * self.width;
        let h = ode.h();
        let [k, stage, acc, ..] = bufs else { return };
        let f = |s: &Self, input: &[f32], out: &mut [f32], z: &mut [f32]| {
            s.linear(input, out, z);
            for (o, &i) in out[..len].iter_mut().zip(&input[..len]) {
                *o = a * *o + b * i;
            }
        };
        // the first evaluation, from the queries' rows when x still holds them
        let first =
            |s: &Self, x: &[f32], out: &mut [f32], z: &mut [f32], rows: Option<usize>| match rows {
                Some(q0) => {
                    s.linear_rows(q0, m, None, out, z);
                    for (o, &i) in out[..len].iter_mut().zip(&x[..len]) {
                        *o = a * *o + b * i;
                    }
                }
                None => f(s, x, out, z),
            };
        match ode.solver {
            Solver::Euler => {
                first(self, x, k, z, rows);
                for (xv, &kv) in x[..len].iter_mut().zip(&k[..len]) {
                    *xv += h * kv;
                }
            }
            Solver::Rk4 => {
                // classical RK4: k1..k4 summed into acc with weights 1, 2, 2, 1
                let (c, w) = ([0.5f32, 0.5, 1.0], [2.0f32, 2.0, 1.0]);
                first(self, x, k, z, rows);
                acc[..len].copy_from_slice(&k[..len]);
                for s in 0..3 {
                    for ((st, &xv), &kv) in stage[..len].iter_mut().zip(&x[..len]).zip(&k[..len]) {
                        *st = xv + c[s] * h * kv;
                    }
                    f(self, stage, k, z);
                    for (av, &kv) in acc[..len].iter_mut().zip(&k[..len]) {
                        *av += w[s] * kv;
                    }
                }
                for (xv, &av) in x[..len].iter_mut().zip(&acc[..len]) {
                    *xv += h / 6.0 * av;
                }
            }
        }
    }
}

/// Per-thread state buffers.
pub struct Scratch {
    bufs: Vec<Vec<f32>>,
    z: Vec<f32>,
    t: Vec<f32>,
    u: Vec<f32>,
}

fn add_scaled(y: &mut [f32], x: &[f32], w: f32) {
    for (a, &b) in y.iter_mut().zip(x) {
        *a += w * b;
    }
}

/// `p(z)^steps` for the solver's step polynomial `p` (the stability function) at `z`.
fn step_factor(ode: &Ode, z: f64) -> f32 {
    let p = match ode.solver {
        Solver::Euler => 1.0 + z,
        Solver::Rk4 => 1.0 + z + z * z / 2.0 + z * z * z / 6.0 + z * z * z * z / 24.0,
    };
    p.powi(ode.steps as i32) as f32
}

impl BlockScorer for SpectralScorer<'_> {
    type Scratch = Scratch;

    fn n_queries(&self) -> usize {
        self.queries.n_rows()
    }

    fn n_positions(&self) -> usize {
        self.n_positions
    }

    fn tile_shape(&self) -> (usize, usize) {
        (self.width, self.n_positions)
    }

    fn make_scratch(&self) -> Scratch {
        let (n, width) = (self.n_items(), self.width);
        Scratch {
            bufs: (0..self.filter.buffers())
                .map(|_| vec![0f32; n * width])
                .collect(),
            z: vec![0f32; self.graph.n_rows() * width],
            t: vec![0f32; self.k * width],
            u: vec![0f32; IDEAL_ROWS * width],
        }
    }

    fn score_tile(
        &self,
        q0: usize,
        m: usize,
        p0: usize,
        nt: usize,
        out: &mut [f32],
        sc: &mut Scratch,
    ) {
        debug_assert!(p0 == 0 && nt == self.n_positions, "rows are scored whole");
        let (n, width) = (self.n_items(), self.width);
        // the state is items x width whatever m (columns m.. stay zero)
        let len = n * width;
        let Scratch { bufs, z, t, u } = sc;
        // the signal: the users' rows, item-major
        let (sig, rest) = bufs.split_at_mut(1);
        let sig = &mut sig[0][..len];
        sig.fill(0.0);
        for q in 0..m {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &v) in items.iter().zip(values) {
                sig[i as usize * width + q] = v;
            }
        }
        let result: &[f32] = match &self.filter {
            Filter::GfCf { ideal_weight } => {
                let y = &mut rest[0];
                self.linear_rows(q0, m, None, y, z);
                self.ideal(q0, m, y, (t, u), *ideal_weight, true);
                &y[..len]
            }
            Filter::ChebyCf {
                coeffs,
                ideal_weight,
            } => {
                for (row, &d) in sig.chunks_exact_mut(width).zip(self.pre) {
                    row.iter_mut().for_each(|v| *v *= d);
                }
                let [outb, prev, cur, next, ..] = rest else {
                    return;
                };
                outb[..len].fill(0.0);
                add_scaled(&mut outb[..len], sig, coeffs[0]);
                if coeffs.len() > 1 {
                    prev[..len].copy_from_slice(sig);
                    // L x = x - 2 P x, the first from the (scaled) rows
                    self.linear_rows(q0, m, Some(self.pre), cur, z);
                    for (cv, &xv) in cur[..len].iter_mut().zip(&sig[..len]) {
                        *cv = xv - 2.0 * *cv;
                    }
                    add_scaled(&mut outb[..len], &cur[..len], coeffs[1]);
                    for &c in &coeffs[2..] {
                        // T_{n+1} x = 2 L T_n x - T_{n-1} x with L y = y - 2 P y, added to the
                        // output in the same pass
                        self.linear(cur, next, z);
                        for (((nv, &cv), &pv), ov) in next[..len]
                            .iter_mut()
                            .zip(&cur[..len])
                            .zip(&prev[..len])
                            .zip(&mut outb[..len])
                        {
                            *nv = 2.0 * (cv - 2.0 * *nv) - pv;
                            *ov += c * *nv;
                        }
                        std::mem::swap(prev, cur);
                        std::mem::swap(cur, next);
                    }
                }
                for (row, &d) in outb.chunks_exact_mut(width).zip(self.post) {
                    row.iter_mut().for_each(|v| *v *= d);
                }
                self.ideal(q0, m, outb, (t, u), *ideal_weight, true);
                &outb[..len]
            }
            Filter::Bspm {
                ideal_weight,
                blur,
                ideal,
                sharpen,
                final_sharpening,
                t_point_combination,
            } => {
                let (state, rest) = rest.split_at_mut(1);
                let (idl, rest) = rest.split_at_mut(1);
                let (sum, work) = rest.split_at_mut(1);
                let (x, idl, sum) = (&mut state[0], &mut idl[0], &mut sum[0]);
                let w = *ideal_weight;
                // ideal low-pass ODE: M = D^-b V V^T D^b is a projection (M^2 = M), so K steps
                // of the solver give c x + (1 - c) x M with c = p(-h)^K exactly
                let c = step_factor(ideal, -(ideal.h() as f64));
                if w != 0.0 {
                    self.ideal(q0, m, idl, (t, u), 1.0 - c, false);
                    add_scaled(&mut idl[..len], sig, c);
                }
                // blurring
                x[..len].copy_from_slice(sig);
                sum[..len].fill(0.0);
                let mut points = 0usize;
                for step in 0..blur.steps {
                    let rows = (step == 0).then_some(q0);
                    self.ode_step(blur, 1.0, -1.0, x, work, z, m, rows);
                    if *t_point_combination {
                        add_scaled(&mut sum[..len], &x[..len], 1.0);
                    }
                    points += 1;
                }
                let late_ideal = match sharpen {
                    Some(sh) => {
                        if *final_sharpening && w != 0.0 {
                            add_scaled(&mut x[..len], &idl[..len], w);
                        }
                        for _ in 0..sh.steps {
                            self.ode_step(sh, -1.0, 0.0, x, work, z, m, None);
                            if *t_point_combination {
                                add_scaled(&mut sum[..len], &x[..len], 1.0);
                            }
                            points += 1;
                        }
                        !*final_sharpening
                    }
                    None => true,
                };
                if *t_point_combination {
                    let inv = 1.0 / points.max(1) as f32;
                    for (xv, &s) in x[..len].iter_mut().zip(&sum[..len]) {
                        *xv = s * inv;
                    }
                }
                if late_ideal && w != 0.0 {
                    add_scaled(&mut x[..len], &idl[..len], w);
                }
                &x[..len]
            }
        };
        match &self.subset {
            None if m == width => out[..len].copy_from_slice(result),
            None => {
                for (o, r) in out.chunks_exact_mut(m).zip(result.chunks_exact(width)) {
                    o.copy_from_slice(&r[..m]);
                }
            }
            Some(ids) => {
                for (p, &i) in ids.iter().enumerate() {
                    let i = i as usize * width;
                    out[p * m..(p + 1) * m].copy_from_slice(&result[i..i + m]);
                }
            }
        }
    }
}

/// The normalised graph `R~ = D_U^-a R D_I^-b` of `user_items` (its values, same structure) and
/// the item degrees (column sums of `R`). Zero degrees give zero scalings.
pub fn normalized_graph(user_items: &CsrView<'_>, a: f64, b: f64) -> Result<(Vec<f32>, Vec<f32>)> {
    if !(a.is_finite() && b.is_finite()) {
        return Err(Error::invalid(
            "user_exponent / item_exponent",
            "must be finite",
        ));
    }
    if let Some(p) = user_items.data().iter().position(|&v| v < 0.0) {
        return Err(Error::invalid(
            "user_items",
            format!(
                "the graph filters need values >= 0, got {} at entry {p}",
                user_items.data()[p]
            ),
        ));
    }
    let n = user_items.n_cols();
    let what = "the normalised graph";
    let per_item = || format!("user_items has {n} columns (items)");
    let mut item_deg: Vec<f64> = try_zeroed(n, what, per_item)?;
    for (&j, &v) in user_items.indices().iter().zip(user_items.data()) {
        item_deg[j as usize] += v as f64;
    }
    let scale = |d: f64, e: f64| if d > 0.0 { d.powf(-e) } else { 0.0 };
    let mut item_scale: Vec<f64> = try_with_capacity(n, what, per_item)?;
    item_scale.extend(item_deg.iter().map(|&d| scale(d, b)));
    let nnz = user_items.nnz();
    let mut data = try_with_capacity(nnz, what, || format!("{nnz} stored interactions"))?;
    for u in 0..user_items.n_rows() {
        let (js, vs) = user_items.row(u);
        let du: f64 = vs.iter().map(|&v| v as f64).sum();
        let su = scale(du, a);
        data.extend(
            js.iter()
                .zip(vs)
                .map(|(&j, &v)| (v as f64 * su * item_scale[j as usize]) as f32),
        );
    }
    if !data.iter().all(|v| v.is_finite()) {
        return Err(Error::invalid(
            "user_exponent / item_exponent",
            format!(
                "{a} / {b} overflow float32 (degree^-exponent beyond 3.4e38): use exponents \
                 nearer the papers' 0.5"
            ),
        ));
    }
    drop(item_scale);
    let mut degrees = try_with_capacity(n, what, per_item)?;
    degrees.extend(item_deg.iter().map(|&d| d as f32));
    Ok((data, degrees))
}

/// What [`spectral_fit`] returns: `R~`'s values (the structure of `user_items`), its transpose,
/// the leading right singular vectors (items x k, row-major) and the item degrees.
pub struct SpectralFit {
    pub graph_data: Vec<f32>,
    pub graph_t: crate::sparse::Csr,
    pub factors: Vec<f32>,
    pub item_degree: Vec<f32>,
}

/// The bytes [`spectral_fit`] holds at least on `n_users` x `n_items` with `nnz` interactions,
/// besides its input: the graph's values (4 bytes an entry), its transpose (8 an entry, 8 an
/// item) and the item degrees (4 an item) throughout, and the randomized SVD's blocks of `l =
/// min(k + oversampling, n_users, n_items)` floats a row, at the larger of its two peaks: while
/// the users' block is orthonormalised, one block per item and three per user (the block, its
/// QR factor and its Q); at the end, two per item (a QR factor, its Q, their product with the
/// small SVD's U and the `k <= l` singular vectors, two at a time). Per item these decide on wide
/// matrices (ids used as column indices).
pub fn fit_memory_at_least(
    n_users: usize,
    n_items: usize,
    nnz: usize,
    k: usize,
    oversampling: usize,
) -> u128 {
    let (n_users, n_items, nnz) = (n_users as u128, n_items as u128, nnz as u128);
    let k = (k as u128).min(n_users).min(n_items);
    let l = if k == 0 {
        0
    } else {
        (k + oversampling as u128).min(n_users).min(n_items)
    };
    let graph = 12 * nnz + 12 * n_items;
    graph + (4 * l * (n_items + 3 * n_users)).max(8 * l * n_items)
}

/// Builds `R~ = D_U^-a R D_I^-b`, its transpose and its `params.k` leading right singular vectors
/// (randomized subspace iteration; `k = 0` skips it).
pub fn spectral_fit(
    user_items: &CsrView<'_>,
    a: f64,
    b: f64,
    params: &crate::linalg::svd::RandomizedSvdParams,
    num_threads: usize,
) -> Result<SpectralFit> {
    let (graph_data, item_degree) = normalized_graph(user_items, a, b)?;
    let g = CsrView::new(
        "graph",
        user_items.n_rows(),
        user_items.n_cols(),
        user_items.indptr(),
        user_items.indices(),
        &graph_data,
    )?;
    let graph_t = crate::sparse::transpose(&g, num_threads)?;
    let factors =
        crate::linalg::svd::top_right_singular_vectors(&g, &graph_t.view(), params, num_threads)?;
    Ok(SpectralFit {
        graph_data,
        graph_t,
        factors,
        item_degree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::tests::archs;
    use crate::sparse::Csr;

    /// The tiled product against float64 sums, for every instruction set, both state widths
    /// and tiles narrower than the matrix; a query's column is bit-identical in both widths
    /// (the narrow kernel sums each lane's entries in the wide kernel's order).
    #[test]
    fn tiled_products_sum_the_entries_in_either_width() {
        let (n_rows, n_cols) = (37usize, 300usize);
        let triplets: Vec<(usize, usize, f32)> = (0..n_rows)
            .flat_map(|r| {
                (0..(r * 7) % 23).map(move |e| {
                    let c = (r * 131 + e * 17) % n_cols;
                    (r, c, ((r * 3 + e) % 11) as f32 * 0.173 - 0.9)
                })
            })
            .collect();
        let a = Csr::from_triplets(n_rows, n_cols, &triplets).unwrap(); // ok: test data in range
        let tiles = Tiles::new(&a.view(), 41);
        let value = |i: usize, q: usize| ((i * 29 + q * 7) % 53) as f32 * 0.0371 - 0.8;
        for arch in archs() {
            let mut narrow = Vec::new();
            for width in [NARROW, BLOCK] {
                let x: Vec<f32> = (0..n_cols * width)
                    .map(|j| value(j / width, j % width))
                    .collect();
                let mut out = vec![f32::NAN; n_rows * width];
                tiled_product(arch, &tiles, &x, &mut out, width);
                for r in 0..n_rows {
                    let (cols, vals) = a.view().row(r);
                    for q in 0..width {
                        let want: f64 = cols
                            .iter()
                            .zip(vals)
                            .map(|(&c, &v)| v as f64 * value(c as usize, q) as f64)
                            .sum();
                        let got = out[r * width + q] as f64;
                        assert!((got - want).abs() < 1e-5, "{arch:?} {width} {r} {q}");
                    }
                }
                let columns: Vec<u32> = (0..n_rows * NARROW)
                    .map(|j| out[j / NARROW * width + j % NARROW].to_bits())
                    .collect();
                if width == NARROW {
                    narrow = columns;
                } else {
                    assert_eq!(columns, narrow, "{arch:?}: the widths differ");
                }
            }
        }
    }
}
