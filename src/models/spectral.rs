//! Graph spectral filters for collaborative filtering on the normalised interaction graph
//! `R~ = D_U^-a R D_I^-b`: GF-CF (Shen et al., CIKM 2021), BSPM (Choi et al., SIGIR 2023) and
//! ChebyCF (Kim et al., SIGIR 2025). Every filter is a polynomial in the linear filter
//! `P = R~^T R~`, applied per user batch as two sparse products (`(X R~^T) R~`, never
//! materialised), plus an ideal low-pass term `x D^-b V V^T D^b` from the `k` leading right
//! singular vectors `V` of `R~` (`crate::linalg::svd`). Memory: O(nnz + items x k), plus a few
//! `items x 64` blocks per thread when scoring.
//!
//! Scoring is bound by memory traffic: each product gathers a 64-float row of the block's state
//! per stored entry. The products therefore run on the graph cut into column ranges whose rows of
//! the state fit in a core's L2 cache ([`Tiles`], two more copies of the graph's entries while
//! scoring), summing each output row in registers.

use crate::error::{Error, Result};
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

/// One `BLOCK`-wide vector group (four vectors) of `x`'s row that starts at `at`.
#[inline(always)]
fn load<S: Lanes>(x: &[f32], at: usize) -> S::f32s {
    S::as_simd_f32s(&x[at..at + S::F32_LANES]).0[0]
}

/// `out[..4 vectors] += sum_e vals[e] * x[cols[e] * BLOCK + c0..][..4 vectors]`, summed in
/// registers with two sets of accumulators (consecutive entries do not wait on each other).
#[inline(always)]
fn gather_add<S: Lanes>(
    simd: S,
    cols: &[u32],
    vals: &[f32],
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
        let (i, j) = (c[0] as usize * BLOCK + c0, c[1] as usize * BLOCK + c0);
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
        let (i, vi) = (c as usize * BLOCK + c0, simd.splat_f32s(v));
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

/// `out = A X` for `A` cut into [`Tiles`], `X` and `out` row-major with `BLOCK` columns.
struct TiledProduct<'a> {
    a: &'a Tiles,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for TiledProduct<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        let w = 4 * S::F32_LANES;
        debug_assert_eq!(BLOCK % w, 0, "a block is whole groups of four vectors");
        let a = self.a;
        let out = &mut self.out[..a.n_rows * BLOCK];
        out.fill(0.0);
        for (j, &r) in a.rows.iter().enumerate() {
            let (lo, hi) = (a.indptr[j], a.indptr[j + 1]);
            let (cols, vals) = (&a.indices[lo..hi], &a.data[lo..hi]);
            let row = &mut out[r as usize * BLOCK..(r as usize + 1) * BLOCK];
            for c0 in (0..BLOCK).step_by(w) {
                gather_add(simd, cols, vals, self.x, c0, &mut row[c0..c0 + w]);
            }
        }
    }
}

/// Scores of a spectral filter for users' rows, a block of users at a time, for the shared top-k
/// driver (position-major tiles: the item-major state is what the scan reads).
pub struct SpectralScorer<'a> {
    queries: CsrView<'a>,
    graph: CsrView<'a>,
    graph_t: CsrView<'a>,
    /// `pre * V` and `post * V` (items x k row-major) for the ideal term, or nothing.
    left: Vec<f32>,
    right: Vec<f32>,
    k: usize,
    /// ChebyCF's degree normalisation of the signal and of the output.
    signal_scale: Option<(Vec<f32>, Vec<f32>)>,
    filter: Filter,
    subset: Option<Vec<u32>>,
    n_positions: usize,
    /// `R~` cut by items and `R~^T` cut by users, for `P x = R~^T (R~ x)`.
    by_items: Tiles,
    by_users: Tiles,
    arch: Arch,
}

impl<'a> SpectralScorer<'a> {
    /// `graph` is `R~` (users x items) and `graph_t` its transpose; `factors` the row-major
    /// `items x k` right singular vectors; `pre`/`post` the item scalings (`D^-b`, `D^b`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queries: CsrView<'a>,
        graph: CsrView<'a>,
        graph_t: CsrView<'a>,
        factors: &[f32],
        k: usize,
        pre: &[f32],
        post: &[f32],
        filter: Filter,
        candidates: &Candidates,
    ) -> Result<Self> {
        filter.check()?;
        let n = candidates.n_items();
        let nu = graph.n_rows();
        if graph.n_cols() != n || graph_t.n_rows() != n || graph_t.n_cols() != nu {
            return Err(Error::shape(
                "graph (users x items) and its transpose",
                format!("{nu} x {n} and {n} x {nu}"),
                format!(
                    "{} x {} and {} x {}",
                    graph.n_rows(),
                    graph.n_cols(),
                    graph_t.n_rows(),
                    graph_t.n_cols()
                ),
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
        let chebycf = matches!(filter, Filter::ChebyCf { .. });
        let scaled = |s: &[f32]| -> Vec<f32> {
            factors
                .chunks_exact(k.max(1))
                .zip(s)
                .flat_map(|(row, &d)| row.iter().map(move |&v| v * d))
                .collect()
        };
        let (left, right) = if k == 0 {
            (Vec::new(), Vec::new())
        } else {
            (scaled(pre), scaled(post))
        };
        let rows_per_tile = TILE_BYTES / (BLOCK * std::mem::size_of::<f32>());
        Ok(SpectralScorer {
            by_items: Tiles::new(&graph, rows_per_tile),
            by_users: Tiles::new(&graph_t, rows_per_tile),
            arch: Arch::new(),
            queries,
            graph,
            graph_t,
            left,
            right,
            k,
            signal_scale: chebycf.then(|| (pre.to_vec(), post.to_vec())),
            filter,
            subset: candidates.subset().map(<[u32]>::to_vec),
            n_positions: candidates.n_positions(),
        })
    }

    fn n_items(&self) -> usize {
        self.graph.n_cols()
    }

    /// `y = P x` (`x`, `y`: items x BLOCK), through `z` (users x BLOCK): two tiled products.
    fn linear(&self, x: &[f32], y: &mut [f32], z: &mut [f32]) {
        let (nu, n) = (self.graph.n_rows(), self.n_items());
        self.arch.dispatch(TiledProduct {
            a: &self.by_items,
            x: &x[..n * BLOCK],
            out: &mut z[..nu * BLOCK],
        });
        self.arch.dispatch(TiledProduct {
            a: &self.by_users,
            x: &z[..nu * BLOCK],
            out: &mut y[..n * BLOCK],
        });
    }

    /// `y (+)= w * right (left^T x)` for the rows `x` of the `m` queries from `q0` (sparse:
    /// `left^T x` gathers the rows of `left` of each query's items), through `t` (k x BLOCK).
    fn ideal(&self, q0: usize, m: usize, y: &mut [f32], t: &mut [f32], w: f32, accumulate: bool) {
        let (n, k) = (self.n_items(), self.k);
        let mut ym = MatMut::from_row_major_slice_mut(&mut y[..n * BLOCK], n, BLOCK);
        if k == 0 || w == 0.0 {
            if !accumulate {
                ym.fill(0.0);
            }
            return;
        }
        // t^T (BLOCK x k, row-major): query q's row is the sum of its items' rows of `left`
        let t = &mut t[..BLOCK * k];
        t.fill(0.0);
        for (q, tq) in t.chunks_exact_mut(k).take(m).enumerate() {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &v) in items.iter().zip(values) {
                let row = &self.left[i as usize * k..(i as usize + 1) * k];
                for (o, &l) in tq.iter_mut().zip(row) {
                    *o += v * l;
                }
            }
        }
        let r = MatRef::from_row_major_slice(&self.right, n, k);
        let tm = MatRef::from_row_major_slice(t, BLOCK, k).transpose();
        let acc = if accumulate {
            Accum::Add
        } else {
            Accum::Replace
        };
        faer::linalg::matmul::matmul(ym, acc, r, tm, w, Par::Seq);
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
        let (nu, n) = (self.graph.n_rows(), self.n_items());
        let z = &mut z[..nu * BLOCK];
        z.fill(0.0);
        for q in 0..m {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &v) in items.iter().zip(values) {
                let v = scale.map_or(v, |s| v * s[i as usize]);
                let (us, rs) = self.graph_t.row(i as usize);
                for (&u, &r) in us.iter().zip(rs) {
                    z[u as usize * BLOCK + q] += r * v;
                }
            }
        }
        self.arch.dispatch(TiledProduct {
            a: &self.by_users,
            x: z,
            out: &mut y[..n * BLOCK],
        });
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
        let len = self.n_items() * BLOCK;
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
        (BLOCK, self.n_positions)
    }

    fn make_scratch(&self) -> Scratch {
        let n = self.n_items();
        Scratch {
            bufs: (0..self.filter.buffers())
                .map(|_| vec![0f32; n * BLOCK])
                .collect(),
            z: vec![0f32; self.graph.n_rows() * BLOCK],
            t: vec![0f32; self.k * BLOCK],
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
        let n = self.n_items();
        // the state is items x BLOCK whatever m (columns m.. stay zero)
        let len = n * BLOCK;
        let Scratch { bufs, z, t } = sc;
        // the signal: the users' rows, item-major
        let (sig, rest) = bufs.split_at_mut(1);
        let sig = &mut sig[0][..len];
        sig.fill(0.0);
        for q in 0..m {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &v) in items.iter().zip(values) {
                sig[i as usize * BLOCK + q] = v;
            }
        }
        let result: &[f32] = match &self.filter {
            Filter::GfCf { ideal_weight } => {
                let y = &mut rest[0];
                self.linear_rows(q0, m, None, y, z);
                self.ideal(q0, m, y, t, *ideal_weight, true);
                &y[..len]
            }
            Filter::ChebyCf {
                coeffs,
                ideal_weight,
            } => {
                if let Some((pre, _)) = &self.signal_scale {
                    for (row, &d) in sig.chunks_exact_mut(BLOCK).zip(pre) {
                        row.iter_mut().for_each(|v| *v *= d);
                    }
                }
                let [outb, prev, cur, next, ..] = rest else {
                    return;
                };
                outb[..len].fill(0.0);
                add_scaled(&mut outb[..len], sig, coeffs[0]);
                if coeffs.len() > 1 {
                    prev[..len].copy_from_slice(sig);
                    // L x = x - 2 P x, the first from the (scaled) rows
                    let pre = self.signal_scale.as_ref().map(|s| &s.0[..]);
                    self.linear_rows(q0, m, pre, cur, z);
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
                if let Some((_, post)) = &self.signal_scale {
                    for (row, &d) in outb.chunks_exact_mut(BLOCK).zip(post) {
                        row.iter_mut().for_each(|v| *v *= d);
                    }
                }
                self.ideal(q0, m, outb, t, *ideal_weight, true);
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
                    self.ideal(q0, m, idl, t, 1.0 - c, false);
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
            None if m == BLOCK => out[..len].copy_from_slice(result),
            None => {
                for (o, r) in out.chunks_exact_mut(m).zip(result.chunks_exact(BLOCK)) {
                    o.copy_from_slice(&r[..m]);
                }
            }
            Some(ids) => {
                for (p, &i) in ids.iter().enumerate() {
                    let i = i as usize * BLOCK;
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
    let mut item_deg = vec![0f64; n];
    for (&j, &v) in user_items.indices().iter().zip(user_items.data()) {
        item_deg[j as usize] += v as f64;
    }
    let scale = |d: f64, e: f64| if d > 0.0 { d.powf(-e) } else { 0.0 };
    let item_scale: Vec<f64> = item_deg.iter().map(|&d| scale(d, b)).collect();
    let mut data = Vec::with_capacity(user_items.nnz());
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
    Ok((data, item_deg.iter().map(|&d| d as f32).collect()))
}

/// What [`spectral_fit`] returns: `R~`'s values (the structure of `user_items`), its transpose,
/// the leading right singular vectors (items x k, row-major) and the item degrees.
pub struct SpectralFit {
    pub graph_data: Vec<f32>,
    pub graph_t: crate::sparse::Csr,
    pub factors: Vec<f32>,
    pub item_degree: Vec<f32>,
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
