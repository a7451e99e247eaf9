//! Batched scoring + filtering + top-k selection, in bounded memory and in parallel over query
//! blocks.

use super::select::TopK;
use crate::error::{checked_len, try_vec, try_zeroed, Error, Result};
use crate::parallel;
use crate::sparse::{sorted_contains, CsrView};

/// The items a query may return, as a list of *positions* scanned in increasing item id order.
///
/// Without an `items` subset every item is a position; `filter_items` are then skipped at scan
/// time. With a subset the positions are its sorted, de-duplicated ids minus `filter_items`.
#[derive(Debug, Clone)]
pub struct Candidates {
    n_items: usize,
    subset: Option<Vec<u32>>,
    excluded: Vec<u32>,
}

fn sorted_ids(what: &str, ids: &[i32], n_items: usize) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(ids.len());
    for &i in ids {
        if i < 0 || i as usize >= n_items {
            return Err(Error::out_of_range(what, i as i64, n_items));
        }
        out.push(i as u32);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Candidates {
    /// Every one of `n_items` items.
    pub fn all(n_items: usize) -> Self {
        Candidates {
            n_items,
            subset: None,
            excluded: Vec::new(),
        }
    }

    /// Candidates `items` (all when `None`) minus `filter_items`; ids must be in `0..n_items`.
    pub fn new(
        n_items: usize,
        items: Option<&[i32]>,
        filter_items: Option<&[i32]>,
    ) -> Result<Self> {
        if n_items > u32::MAX as usize {
            return Err(Error::invalid("n_items", "more than 2^32 items"));
        }
        let filter = sorted_ids("filter_items", filter_items.unwrap_or(&[]), n_items)?;
        match items {
            None => Ok(Candidates {
                n_items,
                subset: None,
                excluded: filter,
            }),
            Some(items) => {
                let mut subset = sorted_ids("items", items, n_items)?;
                subset.retain(|i| !sorted_contains(&filter, *i));
                Ok(Candidates {
                    n_items,
                    subset: Some(subset),
                    excluded: Vec::new(),
                })
            }
        }
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of positions a scan covers.
    pub fn n_positions(&self) -> usize {
        self.subset.as_ref().map_or(self.n_items, Vec::len)
    }

    /// Number of items a query can return before its own exclusions.
    pub fn available(&self) -> usize {
        self.n_positions() - self.excluded.len()
    }

    /// The item ids of the positions, or `None` when position == item id.
    pub fn subset(&self) -> Option<&[u32]> {
        self.subset.as_deref()
    }

    /// Positions skipped for every query (sorted).
    pub fn excluded(&self) -> &[u32] {
        &self.excluded
    }

    #[inline]
    pub fn item(&self, position: usize) -> u32 {
        match &self.subset {
            None => position as u32,
            Some(s) => s[position],
        }
    }

    #[inline]
    pub fn position(&self, item: u32) -> Option<u32> {
        match &self.subset {
            None => ((item as usize) < self.n_items).then_some(item),
            Some(s) => s.binary_search(&item).ok().map(|p| p as u32),
        }
    }
}

/// How a scorer lays out a tile of `m` queries x `nt` positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileLayout {
    /// `out[(p - p0) * m + (q - q0)]`: what a GEMM with a column-major output writes.
    PositionMajor,
    /// `out[(q - q0) * nt + (p - p0)]`: one contiguous row per query, for scorers that scatter
    /// into a query's scores (kNN).
    QueryMajor,
}

/// Computes scores for tiles of (queries x candidate positions).
pub trait BlockScorer: Sync {
    /// Per-thread scratch, created once per worker.
    type Scratch: Send;

    fn n_queries(&self) -> usize;

    /// Number of candidate positions (must equal the `Candidates` used with this scorer).
    fn n_positions(&self) -> usize;

    /// `(queries per block, positions per tile)`: the tile the driver asks for at once.
    fn tile_shape(&self) -> (usize, usize);

    fn make_scratch(&self) -> Self::Scratch;

    /// The layout `score_tile` writes.
    fn layout(&self) -> TileLayout {
        TileLayout::PositionMajor
    }

    /// Writes the scores of queries `q0..q0 + m` at positions `p0..p0 + nt` into `out[..m * nt]`,
    /// in the scorer's [`TileLayout`].
    fn score_tile(
        &self,
        q0: usize,
        m: usize,
        p0: usize,
        nt: usize,
        out: &mut [f32],
        scratch: &mut Self::Scratch,
    );
}

/// Row-major `n_queries x k` ids (int32, -1 = padding) and scores (`-inf` for padding).
#[derive(Debug, Clone, PartialEq)]
pub struct TopKResult {
    pub n_queries: usize,
    pub k: usize,
    pub ids: Vec<i32>,
    pub scores: Vec<f32>,
}

/// An `n x k` output buffer, or a MemoryError naming N (instead of an abort) when it cannot be
/// allocated.
pub(crate) fn filled<T: Copy>(n: usize, k: usize, value: T) -> Result<Vec<T>> {
    let cause = || format!("N={k} results for each of {n} queries; ask for fewer at a time");
    let len = checked_len::<T>(n, k, "the recommendations", cause)?;
    try_vec(len, value, "the recommendations", cause)
}

/// Queries whose scores are compared at once in the scan.
const LANES: usize = 16;

struct Worker<S> {
    scorer: S,
    tile: Vec<f32>,
    heaps: Vec<TopK>,
    thresholds: Vec<f32>,
    liked: Vec<Vec<u32>>,
    /// Whether a candidate's score reaching a selection was not finite ([`score_overflow`]).
    overflow: bool,
}

/// The error of a call in which a candidate's score was infinite or NaN. Every input a scorer
/// reads is finite (the Python layer refuses non-finite parameters and weights), so such a score
/// is a float32 overflow: ranking it would be a silent wrong result (infinities tie, and a NaN
/// was dropped as if the item were filtered), so the call fails instead.
pub(crate) fn score_overflow() -> Error {
    Error::invalid(
        "scores",
        "a score overflowed float32 (its magnitude passed 3.4e38, so it became inf or NaN \
         although every input is finite): the model's parameters or the query's weights are \
         too large; rescale them (factors of a diverged fit: refit with a lower learning rate \
         or more regularisation)",
    )
}

/// For every query, the best `min(k, candidates.available())` candidates by score, skipping the
/// candidates' excluded items and, when `liked` is given (one row per query), the items of the
/// query's row. Ties go to the lower item id. Rows with fewer candidates left are padded. A
/// candidate's score that is not finite where it could rank fails the call ([`score_overflow`]).
///
/// Memory stays bounded by one tile per thread (and, when positions are split, [`MAX_PARTIAL`]
/// partial results); the work is parallel over query blocks in a pool of `num_threads` threads
/// (0 = all cores), and over parts of the positions when there are fewer blocks than threads (a
/// single-user call over a large catalogue: each part selects its own best `k` and the parts are
/// merged). The result does not depend on the thread count.
pub fn recommend_batch<S: BlockScorer>(
    scorer: &S,
    candidates: &Candidates,
    liked: Option<&CsrView<'_>>,
    k: usize,
    num_threads: usize,
) -> Result<TopKResult> {
    let nq = scorer.n_queries();
    let np = candidates.n_positions();
    if scorer.n_positions() != np {
        return Err(Error::shape("scorer positions", np, scorer.n_positions()));
    }
    check_liked(liked, nq, candidates)?;
    let k = k.min(candidates.available());
    let mut ids = filled(nq, k, -1i32)?;
    let mut scores = filled(nq, k, f32::NEG_INFINITY)?;
    if k == 0 || nq == 0 {
        return Ok(TopKResult {
            n_queries: nq,
            k,
            ids,
            scores,
        });
    }
    let (m, nt) = scorer.tile_shape();
    // a call of fewer queries than a block gets a tile of its size (one user: one row of scores)
    let (m, nt) = (m.min(nq).max(1), nt.max(1).min(np.max(1)));
    let layout = scorer.layout();
    let stop = parallel::stop_flag();
    // the first failure to allocate a thread's tile (a kNN tile holds whole catalogue rows)
    let failed = parallel::FirstError::default();
    let tile_len = checked_len::<f32>(m, nt, "the scoring tiles", || {
        format!("{m} queries x {nt} items per thread")
    })?;

    let init = || {
        let tile = try_zeroed::<f32>(tile_len, "the scoring tiles", || {
            format!("{m} queries x {nt} items per thread")
        });
        tile.map(|tile| Worker {
            scorer: scorer.make_scratch(),
            tile,
            heaps: vec![TopK::new(k); m],
            thresholds: vec![f32::NEG_INFINITY; m],
            liked: vec![Vec::new(); m],
            overflow: false,
        })
        .map_err(|e| failed.record(e))
    };
    let job = Job {
        scorer,
        candidates,
        liked,
        layout,
        k,
        m,
        nt,
        failed: &failed,
    };
    let span = part_span(nq, m, np, nt, k, parallel::resolve_threads(num_threads));
    if span >= np {
        parallel::for_each_block(
            num_threads,
            &mut ids,
            &mut scores,
            k,
            m,
            init,
            |w, b, i, s| {
                // interrupted, or this thread has no tile: the block is skipped (and the call
                // fails below)
                if let (Ok(w), false) = (w, stop.is_set()) {
                    job.run(w, b * m, 0..np, i, s);
                }
            },
        )?;
    } else {
        // fewer query blocks than threads over a large catalogue: each block's positions are
        // cut into parts of whole tiles (the tiles, hence the scores, are the unsplit ones),
        // each part selects its own best k, and the parts' selections are merged
        let parts = np.div_ceil(span);
        let jobs = nq.div_ceil(m) * parts;
        let mut part_ids = filled(jobs * m, k, -1i32)?;
        let mut part_scores = filled(jobs * m, k, f32::NEG_INFINITY)?;
        parallel::for_each_block(
            num_threads,
            &mut part_ids,
            &mut part_scores,
            k,
            m,
            init,
            |w, j, i, s| {
                if let (Ok(w), false) = (w, stop.is_set()) {
                    let (b, part) = (j / parts, j % parts);
                    let positions = part * span..((part + 1) * span).min(np);
                    job.run(w, b * m, positions, i, s);
                }
            },
        )?;
        let mut merged = TopK::new(k);
        for q in 0..nq {
            let (b, row) = (q / m, q % m);
            for part in 0..parts {
                let at = ((b * parts + part) * m + row) * k;
                for (&id, &sc) in part_ids[at..at + k].iter().zip(&part_scores[at..at + k]) {
                    if id >= 0 {
                        merged.push(sc, id as u32);
                    }
                }
            }
            merged.write_sorted(
                &mut ids[q * k..(q + 1) * k],
                &mut scores[q * k..(q + 1) * k],
            );
        }
    }
    stop.check()?;
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    Ok(TopKResult {
        n_queries: nq,
        k,
        ids,
        scores,
    })
}

/// Query-position pairs below which a part of a block's positions is not worth a thread of its
/// own (at 64 factors a few hundred microseconds of scoring, against tens for handing work to a
/// thread and back).
const MIN_PART_PAIRS: usize = 1 << 15;
/// The most results the parts of a split call select before the merge (8 MiB of ids and
/// scores): a large `k` gets fewer parts rather than a buffer many times the result.
const MAX_PARTIAL: usize = 1 << 20;

/// The positions each part of a query block covers: `np` (no split) when there are at least as
/// many blocks as threads, or when parts would be too small, `k` too large a share of one, or
/// their selections together more than [`MAX_PARTIAL`]; otherwise whole tiles of `nt`, enough
/// parts to give every thread work.
fn part_span(nq: usize, m: usize, np: usize, nt: usize, k: usize, threads: usize) -> usize {
    let blocks = nq.div_ceil(m);
    if blocks >= threads {
        return np;
    }
    let min_span = MIN_PART_PAIRS.div_ceil(nq.min(m)).max(8 * k);
    let parts = (threads / blocks)
        .min(np / min_span.max(1))
        .min(MAX_PARTIAL / (blocks * m * k).max(1));
    if parts < 2 {
        return np;
    }
    np.div_ceil(parts).div_ceil(nt) * nt
}

/// What every block's work shares: score the tiles of positions `positions` (whole tiles, or the
/// catalogue's last) for queries `q0..q0 + m`, select each query's best `k`.
struct Job<'a, 'c, S> {
    scorer: &'a S,
    candidates: &'a Candidates,
    liked: Option<&'a CsrView<'c>>,
    layout: TileLayout,
    k: usize,
    m: usize,
    nt: usize,
    /// Where a block records [`score_overflow`].
    failed: &'a parallel::FirstError,
}

impl<S: BlockScorer> Job<'_, '_, S> {
    fn run(
        &self,
        w: &mut Worker<S::Scratch>,
        q0: usize,
        positions: std::ops::Range<usize>,
        ids: &mut [i32],
        scores: &mut [f32],
    ) {
        let Job {
            scorer,
            candidates,
            liked,
            layout,
            k,
            m,
            nt,
            failed,
        } = *self;
        let mb = (scorer.n_queries() - q0).min(m);
        for q in 0..mb {
            w.heaps[q].clear();
            w.thresholds[q] = f32::NEG_INFINITY;
            w.liked[q].clear();
            if let Some(l) = liked {
                let (cols, _) = l.row(q0 + q);
                w.liked[q].extend(cols.iter().filter_map(|&c| candidates.position(c as u32)));
            }
        }
        for p0 in positions.clone().step_by(nt) {
            let t = nt.min(positions.end - p0);
            let tile = &mut w.tile[..mb * t];
            scorer.score_tile(q0, mb, p0, t, tile, &mut w.scorer);
            let sel = Selections {
                candidates,
                excluded: candidates.excluded(),
                heaps: &mut w.heaps[..mb],
                thresholds: &mut w.thresholds[..mb],
                liked: &w.liked[..mb],
                overflow: &mut w.overflow,
            };
            // one query's position-major tile is its row: compared 16 positions at a time
            match (layout, mb) {
                (TileLayout::QueryMajor, _) | (TileLayout::PositionMajor, 1) => {
                    scan_query_major(tile, t, p0, sel)
                }
                (TileLayout::PositionMajor, _) => scan_position_major(tile, mb, p0, sel),
            }
        }
        for q in 0..mb {
            let r = q * k..(q + 1) * k;
            w.heaps[q].write_sorted(&mut ids[r.clone()], &mut scores[r]);
        }
        if std::mem::take(&mut w.overflow) {
            failed.record(score_overflow());
        }
    }
}

/// `liked` must have one row per query and one column per item.
pub(super) fn check_liked(
    liked: Option<&CsrView<'_>>,
    nq: usize,
    candidates: &Candidates,
) -> Result<()> {
    if let Some(l) = liked {
        if l.n_rows() != nq {
            return Err(Error::shape(
                "user_items rows (one per query)",
                nq,
                l.n_rows(),
            ));
        }
        if l.n_cols() != candidates.n_items() {
            return Err(Error::shape(
                "user_items columns (items)",
                candidates.n_items(),
                l.n_cols(),
            ));
        }
    }
    Ok(())
}

/// The per-query selections a scan feeds.
struct Selections<'a> {
    candidates: &'a Candidates,
    excluded: &'a [u32],
    heaps: &'a mut [TopK],
    thresholds: &'a mut [f32],
    liked: &'a [Vec<u32>],
    overflow: &'a mut bool,
}

impl Selections<'_> {
    /// Offers position `p`'s score `s` to query `q` unless the position is excluded for it. A
    /// score that is not finite is not offered: it marks the call as overflowed (a NaN reaches
    /// every threshold; an infinity reaches one unless it is -inf below a full selection's, where
    /// its place, below every selected score, is right).
    ///
    /// A scan visits each query's positions in increasing item id, so once a selection is full a
    /// later score equal to its worst one loses the tie: the scan threshold becomes the next float
    /// above the worst score, and ties (common with integer scores) are rejected without a push.
    #[inline(always)]
    fn offer(&mut self, q: usize, p: u32, s: f32) {
        if !sorted_contains(self.excluded, p) && !sorted_contains(&self.liked[q], p) {
            if !s.is_finite() {
                *self.overflow = true;
                return;
            }
            let heap = &mut self.heaps[q];
            heap.push(s, self.candidates.item(p as usize));
            self.thresholds[q] = if heap.len() == heap.k() {
                heap.threshold().next_up()
            } else {
                heap.threshold()
            };
        }
    }
}

/// Offers every score of a position-major tile that reaches its query's threshold to that query's
/// selection. Once the selections fill up almost no score reaches its threshold, so the scores of
/// `LANES` queries are compared at once, branch-free (vector compares); only the lanes that pass
/// pay for exclusion checks and a push.
#[inline]
fn scan_position_major(tile: &[f32], m: usize, p0: usize, mut sel: Selections<'_>) {
    for (pl, row) in tile.chunks_exact(m).enumerate() {
        let p = (p0 + pl) as u32;
        let mut g = 0;
        while g < m {
            let n = LANES.min(m - g);
            let mut hits = reaching(&row[g..g + n], &sel.thresholds[g..g + n]);
            while hits != 0 {
                let q = g + hits.trailing_zeros() as usize;
                hits &= hits - 1;
                sel.offer(q, p, row[q]);
            }
            g += n;
        }
    }
}

/// The same for a query-major tile: each query's row is compared `LANES` positions at a time
/// against its threshold.
#[inline]
fn scan_query_major(tile: &[f32], nt: usize, p0: usize, mut sel: Selections<'_>) {
    for (q, row) in tile.chunks_exact(nt).enumerate() {
        let mut g = 0;
        while g < nt {
            let n = LANES.min(nt - g);
            let mut hits = reaching(&row[g..g + n], &[sel.thresholds[q]; LANES][..n]);
            while hits != 0 {
                let l = g + hits.trailing_zeros() as usize;
                hits &= hits - 1;
                // an earlier push in this group may have raised the threshold
                if reaches(row[l], sel.thresholds[q]) {
                    sel.offer(q, (p0 + l) as u32, row[l]);
                }
            }
            g += n;
        }
    }
}

/// Whether score `s` is offered against threshold `t`: unless it is below it, so also when it is
/// NaN (which [`Selections::offer`] reports as an overflow).
#[inline(always)]
fn reaches(s: f32, t: f32) -> bool {
    s.partial_cmp(&t) != Some(std::cmp::Ordering::Less)
}

/// Bit l of the result is [`reaches`]`(scores[l], thresholds[l])` (at most `LANES` lanes).
#[inline(always)]
fn reaching(scores: &[f32], thresholds: &[f32]) -> u32 {
    if let (Ok(s), Ok(t)) = (
        <&[f32; LANES]>::try_from(scores),
        <&[f32; LANES]>::try_from(thresholds),
    ) {
        return reaching_full(s, t);
    }
    let mut mask = 0u32;
    for (l, (s, t)) in scores.iter().zip(thresholds).enumerate() {
        mask |= (reaches(*s, *t) as u32) << l;
    }
    mask
}

/// A full group: 4 SSE compares and move-masks. SSE2 is part of the x86-64 baseline, so this
/// needs no runtime detection. The auto-vectorised forms of this loop measured 2-3x slower inside
/// the scan (the compiler scalarises the bit assembly).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn reaching_full(s: &[f32; LANES], t: &[f32; LANES]) -> u32 {
    use std::arch::x86_64::{_mm_cmpnlt_ps, _mm_loadu_ps, _mm_movemask_ps};
    let mut mask = 0u32;
    for c in 0..LANES / 4 {
        // SAFETY: SSE2 is enabled (cfg above); both loads read 4 floats inside the 16-float arrays.
        let bits = unsafe {
            let a = _mm_loadu_ps(s.as_ptr().add(4 * c));
            let b = _mm_loadu_ps(t.as_ptr().add(4 * c));
            _mm_movemask_ps(_mm_cmpnlt_ps(a, b))
        };
        mask |= (bits as u32) << (4 * c);
    }
    mask
}

/// The same with NEON (part of the aarch64 baseline, so no runtime detection either): a compare
/// gives all-ones lanes, which keep their lane's bit of `1, 2, 4, 8` and add across to the mask.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn reaching_full(s: &[f32; LANES], t: &[f32; LANES]) -> u32 {
    use std::arch::aarch64::{vaddvq_u32, vandq_u32, vcltq_f32, vld1q_f32, vld1q_u32, vmvnq_u32};
    const LANE_BITS: [u32; 4] = [1, 2, 4, 8];
    let mut mask = 0u32;
    // SAFETY: NEON is enabled on every aarch64 target; each load reads 4 values inside the
    // 4-element bit table or the 16-float arrays.
    unsafe {
        let bits = vld1q_u32(LANE_BITS.as_ptr());
        for c in 0..LANES / 4 {
            let a = vld1q_f32(s.as_ptr().add(4 * c));
            let b = vld1q_f32(t.as_ptr().add(4 * c));
            mask |= vaddvq_u32(vandq_u32(vmvnq_u32(vcltq_f32(a, b)), bits)) << (4 * c);
        }
    }
    mask
}

#[cfg(not(any(
    all(target_arch = "x86_64", target_feature = "sse2"),
    target_arch = "aarch64"
)))]
#[inline(always)]
fn reaching_full(s: &[f32; LANES], t: &[f32; LANES]) -> u32 {
    let mut mask = 0u32;
    for l in 0..LANES {
        mask |= (reaches(s[l], t[l]) as u32) << l;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_whole_tiles_and_only_where_threads_would_idle() {
        // one query, 2 threads, 200,000 positions: two parts of whole 2048-position tiles
        assert_eq!(part_span(1, 1, 200_000, 2048, 10, 2), 100_352);
        // 16 threads: parts of at least MIN_PART_PAIRS, six of 17 tiles (the last shorter)
        assert_eq!(part_span(1, 1, 200_000, 2048, 10, 16), 34_816);
        // as many blocks as threads, or parts under MIN_PART_PAIRS, or k a large share: no split
        assert_eq!(part_span(128, 64, 200_000, 2048, 10, 2), 200_000);
        assert_eq!(part_span(1, 1, 40_000, 2048, 10, 2), 40_000);
        assert_eq!(part_span(1, 1, 200_000, 2048, 20_000, 2), 200_000);
        // selections of 64 queries x k = 4000 in parts: at most MAX_PARTIAL results, four parts
        // of 5M positions on 64 threads (not 63)
        assert_eq!(part_span(64, 64, 5_000_000, 2048, 4000, 64), 1_251_328);
        // a block of 64 queries reaches MIN_PART_PAIRS with 512 positions: parts per thread
        assert_eq!(part_span(64, 64, 10_000, 2048, 10, 4), 4096);
    }

    #[test]
    fn oversized_outputs_are_errors_not_aborts() {
        assert!(matches!(
            filled(usize::MAX, 2, 0i32),
            Err(Error::OutOfMemory { .. })
        ));
        assert!(matches!(
            filled(usize::MAX / 8, 1, 0i32),
            Err(Error::OutOfMemory { .. })
        ));
        assert_eq!(filled(2, 3, 7i32).unwrap(), vec![7; 6]); // ok: test
    }

    /// The vector mask (SSE2 on x86-64, NEON on aarch64) equals [`reaches`] lane by lane, ties,
    /// signed zeros, infinities and NaNs (always reaching) included.
    #[test]
    fn the_vector_mask_is_the_scalar_comparison() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0 + f32::EPSILON,
        ];
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            specials[state as usize % specials.len()]
        };
        for _ in 0..2000 {
            let s: [f32; LANES] = std::array::from_fn(|_| next());
            let t: [f32; LANES] = std::array::from_fn(|_| next());
            let want = (0..LANES).fold(0u32, |m, l| m | ((reaches(s[l], t[l]) as u32) << l));
            assert_eq!(reaching_full(&s, &t), want, "{s:?} !< {t:?}");
        }
    }
}
