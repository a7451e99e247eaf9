//! The conjugate-gradient solver: implicit 0.7's algorithm per row, warm-started from the current
//! factors and without forming the `f x f` matrix, run on blocks of consecutive rows in lockstep.

use super::{gather, prefetch_row, System, AHEAD, GATHER_ROWS};
use crate::error::{try_with_capacity, Result};
use crate::linalg::{dots_weighted_sum, weighted_sum_by};
use crate::parallel;
use crate::simd::{last_level_cache_bytes, vaxpy, vdot, Arch, Lanes, WithSimd};
use crate::sparse::CsrView;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// The conjugate-gradient solver runs blocks of consecutive rows in lockstep, so that the `YtY p`
/// products of a block are one matrix product instead of one matrix-vector product per row
/// (`cargo bench --bench als` measures it). A block ends after `BLOCK_ROWS` rows, or before its
/// gathered item factors would pass `BLOCK_FLOATS` (256 KiB, so that they stay in cache from one
/// step to the next). Blocks depend on the data only, not on the threads.
const BLOCK_ROWS: usize = 32;
const BLOCK_FLOATS: usize = 64 * 1024;

/// The most rows of the fixed factors the solver gathers for one row, whatever the cache.
pub(super) const MAX_GATHER_ROWS: usize = 8 * GATHER_ROWS;

/// The most fixed-side rows a row's CG gathers; longer rows are read from the factors in place in
/// each of the CG's passes (residual and steps). A gathered copy of a long row does not stay in
/// L2, but it stays in the last-level cache between the passes, where reading it in sequence beats
/// reading its rows at random from the factors: so the limit fills half of one thread's share of
/// that cache, and is at least [`GATHER_ROWS`] and at most [`MAX_GATHER_ROWS`]
/// (benches/compare/RESULTS.md, "Block sizes against the machine's caches"). The threads'
/// gathered copies together stay within a quarter of the `fixed` rows (the limit is at most
/// `fixed / (4 * threads)`, at least [`GATHER_ROWS`]): on a VM reporting a 480 MiB last-level
/// cache the limit rose to [`MAX_GATHER_ROWS`], the 80k users x 10k items fits gathered their
/// most popular items' rows (42,714 users: 11 MB a thread) and peaked above implicit's (65 MB
/// against 59). Which rows are gathered never changes the results: both are read by the same
/// arithmetic.
fn gather_limit(f: usize, threads: usize, fixed: usize) -> usize {
    let threads = threads.max(1);
    let share = last_level_cache_bytes() / (2 * threads);
    let by_cache = (share / (4 * f.max(1))).clamp(GATHER_ROWS, MAX_GATHER_ROWS);
    by_cache.min((fixed / (4 * threads)).max(GATHER_ROWS))
}

/// Per-thread buffers of the solver (a block's rows, row-major).
struct Scratch {
    terms: TermsScratch,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    rs: Vec<f32>,
    offsets: Vec<usize>,
    ids: Vec<i32>,
    gathered: Vec<f32>,
    split: Split,
}

impl Scratch {
    /// `gather`: the capacity of the gathered factors, reserved exactly (buffers grown by
    /// doubling took up to twice the memory), and fallibly: a thread's scratch that does not fit
    /// is a MemoryError, not an abort.
    fn new(gather: usize) -> Result<Self> {
        Ok(Scratch {
            terms: TermsScratch::default(),
            r: Vec::new(),
            p: Vec::new(),
            ap: Vec::new(),
            rs: Vec::new(),
            offsets: Vec::new(),
            ids: Vec::new(),
            split: Split::default(),
            gathered: try_with_capacity(gather, "the solver's per-thread buffers", || {
                "the factors times the longest row of user_items".to_string()
            })?,
        })
    }
}

/// A block's rows split by whether their entries have an interaction term. An entry whose
/// confidence `|c|` equals the observed offset `o` adds nothing to its row's matrix
/// (`(|c| - o) y y^T = 0`): its factors enter the right-hand side only (`c+ y`), so the CG's
/// passes need no dot product with them. With implicit's convention (`o = 1`) that is every
/// entry of binary data at `alpha = 1`, and the counts of 1 of count data; implicit computes
/// them (a dot product and an update scaled by zero, in each of the CG's passes).
#[derive(Default)]
struct Split {
    /// the entries with an interaction term of the rows that have both kinds, row after row
    ids: Vec<i32>,
    conf: Vec<f32>,
    /// the positive entries without one, of the same rows, and their confidences
    pref_ids: Vec<i32>,
    pref: Vec<f32>,
    /// per row: where its entries with an interaction term are, and its positive entries
    /// without one
    rows: Vec<(Part, Part)>,
}

/// Where [`Split`] keeps one kind of a row's entries.
#[derive(Clone, Copy)]
enum Part {
    None,
    /// the whole row, read from `c` as it is
    Row,
    /// a range of [`Split`]'s arrays
    Kept(usize, usize),
}

impl Split {
    /// Splits the `rows` rows of `c` from `first`, for the observed offset `o`. Rows of one kind
    /// (all entries with an interaction term, or, as in binary data, none and all positive) are
    /// not copied.
    fn build(&mut self, c: &CsrView<'_>, first: usize, rows: usize, o: f32) {
        self.ids.clear();
        self.conf.clear();
        self.pref_ids.clear();
        self.pref.clear();
        self.rows.clear();
        for b in 0..rows {
            let (items, conf) = c.row(first + b);
            let terms = conf.iter().filter(|v| v.abs() != o).count();
            if terms == conf.len() {
                self.rows.push((Part::Row, Part::None));
                continue;
            }
            if terms == 0 && conf.iter().all(|&v| v > 0.0) {
                self.rows.push((Part::None, Part::Row));
                continue;
            }
            // both kinds (or negative entries without a term): kept, without a branch per entry
            let (start, pref_start) = (self.ids.len(), self.pref_ids.len());
            let (mut k, mut q) = (start, pref_start);
            self.ids.resize(start + items.len(), 0);
            self.conf.resize(start + items.len(), 0.0);
            self.pref_ids.resize(pref_start + items.len(), 0);
            self.pref.resize(pref_start + items.len(), 0.0);
            for (&i, &v) in items.iter().zip(conf) {
                let term = v.abs() != o;
                (self.ids[k], self.conf[k]) = (i, v);
                k += usize::from(term);
                (self.pref_ids[q], self.pref[q]) = (i, v);
                q += usize::from(!term && v > 0.0);
            }
            self.ids.truncate(k);
            self.conf.truncate(k);
            self.pref_ids.truncate(q);
            self.pref.truncate(q);
            self.rows
                .push((Part::Kept(start, k), Part::Kept(pref_start, q)));
        }
    }

    /// Row `b`'s entries with an interaction term (ids, confidences), and its positive entries
    /// without one (ids, confidences).
    #[allow(clippy::type_complexity)]
    fn row<'s>(
        &'s self,
        c: &CsrView<'s>,
        first: usize,
        b: usize,
    ) -> ((&'s [i32], &'s [f32]), (&'s [i32], &'s [f32])) {
        let part = |part, ids: &'s [i32], conf: &'s [f32]| match part {
            Part::None => (&[][..], &[][..]),
            Part::Row => c.row(first + b),
            Part::Kept(s, e) => (&ids[s..e], &conf[s..e]),
        };
        let (terms, pref) = self.rows[b];
        (
            part(terms, &self.ids, &self.conf),
            part(pref, &self.pref_ids, &self.pref),
        )
    }
}

/// The first row of every CG block, then `c.n_rows()`; and the most floats a block gathers (rows
/// of at most `limit` items are gathered).
fn cg_blocks(c: &CsrView<'_>, f: usize, limit: usize) -> (Vec<usize>, usize) {
    let mut starts = vec![0];
    let (mut rows, mut floats, mut most) = (0, 0, 0);
    for u in 0..c.n_rows() {
        let len = c.row_range(u).len();
        // longer rows: read in place
        let len = if len <= limit { len * f } else { 0 };
        if rows == BLOCK_ROWS || (rows > 0 && floats + len > BLOCK_FLOATS) {
            starts.push(u);
            (rows, floats) = (0, 0);
        }
        rows += 1;
        floats += len;
        most = most.max(floats);
    }
    starts.push(c.n_rows());
    (starts, most)
}

/// `steps` CG steps on every row of `x` against the fixed factors `y` and their Gram matrix plus
/// the regularisation, `yty` (see [`super::solve`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn solve_rows(
    arch: Arch,
    c: &CsrView<'_>,
    x: &mut [f32],
    y: &[f32],
    system: &System<'_>,
    f: usize,
    steps: usize,
    num_threads: usize,
) -> Result<()> {
    let stop = parallel::stop_flag();
    let limit = gather_limit(
        f,
        parallel::resolve_threads(num_threads),
        y.len() / f.max(1),
    );
    let (starts, gather) = cg_blocks(c, f, limit);
    let n_blocks = starts.len() - 1;
    let mut blocks = Vec::with_capacity(n_blocks);
    let mut rest = x;
    for w in starts.windows(2) {
        let (block, tail) = rest.split_at_mut((w[1] - w[0]) * f);
        blocks.push((w[0], block));
        rest = tail;
    }
    // runs of consecutive blocks share one thread's buffers (a fresh buffer's pages are faulted
    // in on first use: a buffer per split of the work showed in the profile at 100k items)
    let runs = parallel::resolve_threads(num_threads)
        .saturating_mul(8)
        .max(1);
    let min_len = n_blocks.div_ceil(runs).max(1);
    parallel::install(num_threads, || {
        blocks
            .into_par_iter()
            .with_min_len(min_len)
            .try_for_each_init(
                || Scratch::new(gather),
                |s, (first, x)| {
                    stop.check()?;
                    let s = s.as_mut().map_err(|e| e.clone())?;
                    arch.dispatch(Block {
                        c,
                        first,
                        x,
                        y,
                        system,
                        f,
                        steps,
                        limit,
                        s,
                    });
                    Ok(())
                },
            )
    })?
}

/// `out = sign * a b` for row-major `a` (`m x k`) and `b` (`k x n`).
fn matmul_rows(a: &[f32], b: &[f32], k: usize, out: &mut [f32], sign: f32) {
    let m = a.len() / k;
    let n = b.len() / k;
    let av = MatRef::from_row_major_slice(a, m, k);
    let bv = MatRef::from_row_major_slice(b, k, n);
    let ov = MatMut::from_row_major_slice_mut(out, m, n);
    faer::linalg::matmul::matmul(ov, Accum::Replace, av, bv, sign, Par::Seq);
}

/// Where a row's item factors are read from: copied out contiguously (the `k`-th item at `k * f`),
/// or from the fixed factor matrix itself by id (rows too long to keep a copy of: it would not
/// stay in cache from one CG step to the next anyway).
#[derive(Clone, Copy)]
pub(super) enum Rows<'a> {
    Gathered(&'a [f32]),
    InPlace { ids: &'a [i32], y: &'a [f32] },
}

/// Per-thread buffers of [`rank_terms`].
#[derive(Default)]
pub(super) struct TermsScratch {
    /// items per slice: `8192 / f` (`rank_terms` takes at least 8), set per block (a division
    /// per row showed in the profile)
    per_slice: usize,
    /// the weights of a slice of items
    w: Vec<f32>,
    /// the factors of a slice of items read in place
    slice: Vec<f32>,
}

impl TermsScratch {
    /// Slices of 32 KiB of factors for rows of `f` factors.
    pub(super) fn set_factors(&mut self, f: usize) {
        self.per_slice = 8192 / f.max(1);
    }
}

/// `out += sum_k coef(c_k, y_k . v) y_k` over a row's items `k` (factors `rows`, confidences
/// `conf`; `f = v.len()`): the interaction terms of the row's CG residual and of `A p`, by
/// [`dots_weighted_sum`] over slices of items that stay in L1. Items read in place are copied
/// slice by slice (into L1) first.
#[inline(always)]
pub(super) fn rank_terms<S: Lanes>(
    simd: S,
    rows: Rows<'_>,
    conf: &[f32],
    v: &[f32],
    out: &mut [f32],
    s: &mut TermsScratch,
    coef: impl Fn(f32, f32) -> f32,
) {
    let f = v.len();
    let per_slice = s.per_slice.max(8);
    let mut start = 0;
    while start < conf.len() {
        let end = (start + per_slice).min(conf.len());
        let g = match rows {
            Rows::Gathered(g) => &g[start * f..end * f],
            Rows::InPlace { ids, y } => {
                s.slice.clear();
                gather(&ids[start..], end - start, y, f, &mut s.slice);
                &s.slice[..]
            }
        };
        let conf = &conf[start..end];
        let coef = |k: usize, d: f32| coef(conf[k], d);
        dots_weighted_sum(simd, g, v, end - start, out, &mut s.w, coef);
        start = end;
    }
}

/// `out += sum_k w_k y_k` over the rows `ids` of `y` (weights `w`): the right-hand side's terms
/// of a row's entries without an interaction term ([`Split`]), read once, in place (the rows a
/// few places ahead requested early, as [`gather`] does). Summed slice by slice as
/// [`rank_terms`] sums, so that binary data get the same bits as when every entry went through
/// it.
#[inline(always)]
fn pref_terms<S: Lanes>(
    simd: S,
    ids: &[i32],
    w: &[f32],
    y: &[f32],
    out: &mut [f32],
    s: &TermsScratch,
) {
    let f = out.len();
    let per_slice = s.per_slice.max(8);
    for (start, w) in (0..).step_by(per_slice).zip(w.chunks(per_slice)) {
        let row = |k: usize| {
            if let Some(&next) = ids.get(start + k + AHEAD) {
                prefetch_row(y, f, next);
            }
            let i = ids[start + k] as usize;
            &y[i * f..(i + 1) * f]
        };
        weighted_sum_by(simd, row, w, out);
    }
}

/// The interaction terms of the residual `b - A x` (without its `g YtY x` part):
/// `p_i c_i - (|c_i| - o) y_i . x` per item (`o`: the observed offset, [`System`]).
#[inline(always)]
fn residual_coef(c: f32, d: f32, o: f32) -> f32 {
    let pref = if c > 0.0 { c } else { 0.0 };
    pref - (c.abs() - o) * d
}

/// The interaction terms of `A p` (without its `g YtY p` part): `(|c_i| - o) y_i . p` per item.
#[inline(always)]
fn confidence_coef(c: f32, d: f32, o: f32) -> f32 {
    (c.abs() - o) * d
}

/// A block of consecutive rows (`x` holds them, the first is row `first` of `c`) and its `steps`
/// CG steps, run by [`Arch::dispatch`] with the CPU's vector instructions.
struct Block<'a, 'c> {
    c: &'a CsrView<'c>,
    first: usize,
    x: &'a mut [f32],
    y: &'a [f32],
    system: &'a System<'a>,
    f: usize,
    steps: usize,
    /// rows of at most this many items are gathered ([`gather_limit`])
    limit: usize,
    s: &'a mut Scratch,
}

impl WithSimd for Block<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        cg_block(simd, self)
    }
}

/// Conjugate gradient on the block of rows `first..` of `x` (implicit 0.7's algorithm per row,
/// warm-started from `x`), the rows in lockstep: each step's `YtY p` of all rows is one matrix
/// product; a row stops when its residual vanishes, as it would alone.
#[inline(always)]
fn cg_block<S: Lanes>(simd: S, block: Block<'_, '_>) {
    let Block {
        c,
        first,
        x,
        y,
        system,
        f,
        steps,
        limit,
        s,
    } = block;
    let (yty, o) = (system.yty, system.offset);
    let rows = x.len() / f;
    let Scratch {
        terms,
        r,
        p,
        ap,
        rs,
        offsets,
        ids,
        gathered,
        split,
    } = s;
    terms.set_factors(f);
    r.resize(rows * f, 0.0);
    p.resize(rows * f, 0.0);
    ap.resize(rows * f, 0.0);
    rs.clear();
    offsets.clear();
    gathered.clear();
    split.build(c, first, rows, o);
    // R = B - A X: the YtY part for the whole block, then each row's terms. The item factors of
    // the block's entries with an interaction term ([`Split`]) are gathered once, in one pass
    // over the block (so that the requests for rows ahead run across row boundaries: most rows
    // are short), and kept for the steps; rows longer than `limit` are read from `y` in place.
    ids.clear();
    for b in 0..rows {
        let (all, _) = c.row(first + b);
        let (items, _) = split.row(c, first, b).0;
        offsets.push(ids.len() * f);
        if all.len() <= limit {
            ids.extend_from_slice(items);
        }
    }
    offsets.push(ids.len() * f);
    gather(ids, ids.len(), y, f, gathered);
    // where row b's item factors are read from
    let source = |b: usize, ids| {
        if offsets[b] < offsets[b + 1] {
            Rows::Gathered(&gathered[offsets[b]..offsets[b + 1]])
        } else {
            Rows::InPlace { ids, y }
        }
    };
    matmul_rows(x, yty, f, r, -1.0);
    for b in 0..rows {
        let ((items, conf), (pref_ids, pref)) = split.row(c, first, b);
        let (xb, rb) = (&mut x[b * f..(b + 1) * f], &mut r[b * f..(b + 1) * f]);
        if c.row(first + b).0.is_empty() {
            xb.fill(0.0);
            rs.push(0.0); // done
            continue;
        }
        let coef = |c, d| residual_coef(c, d, o);
        rank_terms(simd, source(b, items), conf, xb, rb, terms, coef);
        pref_terms(simd, pref_ids, pref, y, rb, terms);
        if let Some(reg) = system.extra_reg(first + b) {
            vaxpy(simd, -reg, xb, rb);
        }
        p[b * f..(b + 1) * f].copy_from_slice(rb);
        let norm = vdot(simd, rb, rb);
        rs.push(if norm < 1e-20 { 0.0 } else { norm });
    }
    for _ in 0..steps {
        if rs.iter().all(|&v| v == 0.0) {
            break;
        }
        // Ap without forming A
        matmul_rows(p, yty, f, ap, 1.0);
        for b in 0..rows {
            if rs[b] == 0.0 {
                continue;
            }
            let (items, conf) = split.row(c, first, b).0;
            let pb = &mut p[b * f..(b + 1) * f];
            let apb = &mut ap[b * f..(b + 1) * f];
            rank_terms(simd, source(b, items), conf, pb, apb, terms, |c, d| {
                confidence_coef(c, d, o)
            });
            if let Some(reg) = system.extra_reg(first + b) {
                vaxpy(simd, reg, pb, apb);
            }
            let (xb, rb) = (&mut x[b * f..(b + 1) * f], &mut r[b * f..(b + 1) * f]);
            let alpha = rs[b] / vdot(simd, pb, apb);
            vaxpy(simd, alpha, pb, xb);
            vaxpy(simd, -alpha, apb, rb);
            let rs_new = vdot(simd, rb, rb);
            if rs_new < 1e-20 {
                rs[b] = 0.0;
                continue;
            }
            let beta = rs_new / rs[b];
            for (pi, ri) in pb.iter_mut().zip(rb.iter()) {
                *pi = ri + beta * *pi;
            }
            rs[b] = rs_new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gather limit stays within its bounds, falls as threads share the cache and as rows
    /// widen, is the least at many threads, and keeps the threads' copies within a quarter of
    /// the fixed rows (above the least limit).
    #[test]
    fn gather_limit_follows_the_cache_share() {
        for fixed in [1usize, 80_000, 300_000, 1 << 30] {
            for f in [1usize, 16, 64, 256, 1024] {
                let mut last = usize::MAX;
                for threads in [1usize, 2, 8, 64, 1 << 20] {
                    let limit = gather_limit(f, threads, fixed);
                    assert!(
                        (GATHER_ROWS..=MAX_GATHER_ROWS).contains(&limit),
                        "{f} {threads}"
                    );
                    assert!(limit <= last, "{f} {threads}");
                    assert!(limit == GATHER_ROWS || 4 * threads * limit <= fixed);
                    last = limit;
                }
                assert_eq!(gather_limit(f, 1 << 20, fixed), GATHER_ROWS);
                assert!(gather_limit(f, 2, fixed) >= gather_limit(2 * f, 2, fixed));
            }
        }
        assert!(gather_limit(64, 2, 80_000) <= 10_000);
    }
}
