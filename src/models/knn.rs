//! Item-item nearest neighbours: the similarity fit (a sparse product of the weighted item x user
//! matrix with its transpose, keeping the top K per item) and the scorers that recommend from it
//! through the shared top-k driver.

use crate::error::{try_with_capacity, try_zeroed, Error, Result};
use crate::parallel;
use crate::simd::prefetch;
use crate::sparse::weighting::{self, Documents};
use crate::sparse::{transpose, transpose_with_positions, Csr, CsrView};
use crate::topk::{BlockScorer, Candidates, TileLayout, TopK, TopKBuffer};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// How item vectors are weighted (users are terms, items documents) and compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Similarity {
    /// Raw dot products of the item columns.
    Dot,
    /// Dot products of L2-normalised item columns.
    Cosine,
    /// `sqrt(r) * idf_u`, then each item L2-normalised.
    TfIdf,
    /// BM25 weights, not normalised.
    Bm25 { k1: f64, b: f64 },
    /// Pearson correlation of the item columns over all users (absent entries count as 0).
    Pearson,
}

crate::names::by_name! { Similarity, "similarity",
    "dot" => Dot,
    "cosine" => Cosine,
    "tfidf" => TfIdf,
    "bm25" => Bm25 { k1: 1.2, b: 0.75 },
    "pearson" => Pearson,
}

/// Parameters of [`item_knn`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnParams {
    /// Neighbours kept per item (the item itself included).
    pub k: usize,
    pub similarity: Similarity,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: 20,
            similarity: Similarity::Cosine,
        }
    }
}

/// Items per parallel task of the fit.
const ITEMS_PER_TASK: usize = 64;

struct FitScratch {
    /// Running sums per item, all zero between rows.
    acc: Vec<f64>,
    /// The row (plus one) that last touched each item, for light rows.
    owner: Vec<u32>,
    touched: Vec<u32>,
    /// The best of the current row's upper part, merged into the shared selection at once.
    own: TopK,
    ids: Vec<i32>,
    vals: Vec<f32>,
}

/// Rows requested from memory ahead of their use: by the fit (users' rows) and the scorer
/// (similarity rows).
const AHEAD: usize = 4;

/// Requests the first lines (at most 512 entries) of a CSR row. The fit reads millions of row
/// segments (a few hundred entries each, starting anywhere in a matrix larger than the cache), and
/// the hardware prefetcher only follows a stream after its first misses: the accumulation loop
/// waited on memory (single-thread BM25 fit of the 80k x 10k benchmark 2.4-2.9 s -> 1.7-2.2 s).
#[inline(always)]
fn prefetch_row(js: &[i32], ws: &[f32]) {
    const LINE: usize = 16; // 4-byte entries per 64-byte line
    for l in (0..js.len().min(32 * LINE)).step_by(LINE) {
        prefetch(js[l..].as_ptr());
        prefetch(ws[l..].as_ptr());
    }
}

/// The item x item similarity of `user_items` (users x items), keeping the `k` largest entries
/// of every row (ties to the lower item id), rows in canonical CSR order. Only pairs of items with
/// a non-zero product (co-occurring) are candidates. Never materialises the full product: each
/// item accumulates the upper part of its row (the similarity is symmetric) in a per-thread
/// scratch and offers every value to both rows' selections. The result does not depend on the
/// thread count.
pub fn item_knn(user_items: &CsrView<'_>, params: &KnnParams, num_threads: usize) -> Result<Csr> {
    if params.k == 0 {
        return Err(Error::invalid("K", "must be at least 1"));
    }
    let n_items = user_items.n_cols();
    if n_items >= u32::MAX as usize {
        return Err(Error::invalid("user_items", "too many items"));
    }
    // a K beyond the catalogue keeps every neighbour
    let k = params.k.min(n_items.max(1));
    let per_item = || format!("user_items has {n_items} columns (items)");
    let weights = match params.similarity {
        Similarity::Dot | Similarity::Pearson => None,
        Similarity::Cosine => Some(weighting::normalize(
            user_items,
            Documents::Columns,
            num_threads,
        )?),
        Similarity::TfIdf => {
            let w = weighting::tfidf(user_items, Documents::Columns, num_threads)?;
            let v = CsrView::new(
                "tfidf weights",
                user_items.n_rows(),
                n_items,
                user_items.indptr(),
                user_items.indices(),
                &w,
            )?;
            Some(weighting::normalize(&v, Documents::Columns, num_threads)?)
        }
        Similarity::Bm25 { k1, b } => Some(weighting::bm25(
            user_items,
            Documents::Columns,
            k1,
            b,
            num_threads,
        )?),
    };
    let users = CsrView::new(
        "user_items",
        user_items.n_rows(),
        n_items,
        user_items.indptr(),
        user_items.indices(),
        weights.as_deref().unwrap_or(user_items.data()),
    )?;
    // items x users, and for each entry the position of the item within the user's row.
    let (items, row_pos) = transpose_with_positions(&users, num_threads)?;
    let items = items.view();

    // Pearson: per-item sums and centred sums of squares over all users; items whose centred sum
    // of squares is zero (up to rounding) have no variance and get no neighbours.
    let n = users.n_rows() as f64;
    let mut sums = Vec::new();
    let mut centred_sq = Vec::new();
    let mut varies = Vec::new();
    if params.similarity == Similarity::Pearson {
        for i in 0..n_items {
            let (_, vals) = items.row(i);
            let s: f64 = vals.iter().map(|&v| v as f64).sum();
            let q: f64 = vals.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let c = if n > 0.0 { q - s * s / n } else { 0.0 };
            sums.push(s);
            centred_sq.push(c);
            varies.push(c > 1e-9 * q);
        }
    }

    let pearson = params.similarity == Similarity::Pearson;
    let value = |i: usize, j: usize, dot: f64| -> Option<f32> {
        // An exactly zero product counts as no co-occurrence.
        if dot == 0.0 {
            return None;
        }
        if !pearson {
            return Some(dot as f32);
        }
        if !(varies[i] && varies[j]) {
            return None;
        }
        Some(((dot - sums[i] * sums[j] / n) / (centred_sq[i] * centred_sq[j]).sqrt()) as f32)
    };

    // S is symmetric, so each row i accumulates only its upper part (j >= i) and offers every
    // value S[i, j] to row j's selection as well as its own. The selections are shared (one lock
    // per row, taken only when a value reaches the row's threshold, which is mirrored in an atomic
    // for lock-free rejection). A bounded selection keeps the top k of everything offered whatever
    // the order, so the result does not depend on the threads' interleaving.
    let mut rows: Vec<Mutex<TopKBuffer>> =
        try_with_capacity(n_items, "the neighbour selections", per_item)?;
    rows.extend((0..n_items).map(|_| Mutex::new(TopKBuffer::new(k))));
    let mut thresholds: Vec<AtomicU32> =
        try_with_capacity(n_items, "the neighbour selections", per_item)?;
    thresholds.extend((0..n_items).map(|_| AtomicU32::new(f32::NEG_INFINITY.to_bits())));
    let offer = |row: usize, v: f32, id: u32| {
        if v >= f32::from_bits(thresholds[row].load(Ordering::Relaxed)) {
            let mut sel = rows[row].lock().unwrap_or_else(|e| e.into_inner());
            sel.push(v, id);
            thresholds[row].store(sel.threshold().to_bits(), Ordering::Relaxed);
        }
    };

    // Rows are processed in (roughly) decreasing order, handed out by a shared counter: a row's
    // own upper part then reaches its selection before most of the offers from the rows below
    // it, so its threshold starts high and fewer offers get through (measured 6.0M -> 2.2M
    // on the 80k x 10k benchmark).
    let n_tasks = n_items.div_ceil(ITEMS_PER_TASK);
    let next_task = AtomicUsize::new(n_tasks);
    // the first allocation failure of a thread's scratch (the other threads finish the work)
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        (0..rayon::current_num_threads())
            .into_par_iter()
            .for_each(|_| {
                let what = "the similarity's per-thread accumulators";
                let scratch = || -> Result<FitScratch> {
                    Ok(FitScratch {
                        acc: try_zeroed(n_items, what, per_item)?,
                        owner: try_zeroed(n_items, what, per_item)?,
                        touched: Vec::new(),
                        own: TopK::new(k),
                        ids: try_zeroed(k, what, || format!("K={k}"))?,
                        vals: try_zeroed(k, what, || format!("K={k}"))?,
                    })
                };
                let mut scratch = match scratch() {
                    Ok(s) => s,
                    Err(e) => {
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                };
                let s = &mut scratch;
                while let Ok(next) =
                    next_task
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1))
                {
                    if stop.is_set() {
                        break; // interrupted: tasks are left undone
                    }
                    let task = next - 1;
                    let rows_of_task =
                        task * ITEMS_PER_TASK..((task + 1) * ITEMS_PER_TASK).min(n_items);
                    for i in rows_of_task.rev() {
                        let range = items.row_range(i);
                        let (us, ws) = items.row(i);
                        let starts = &row_pos[range];
                        // The part of user u's row from item i on (i sits at `start` in that row).
                        let upper = |u: i32, start: u32| {
                            let (js, vs) = users.row(u as usize);
                            (&js[start as usize..], &vs[start as usize..])
                        };
                        let work: usize = us
                            .iter()
                            .zip(starts)
                            .map(|(&u, &st)| users.row_range(u as usize).len() - st as usize)
                            .sum();
                        s.touched.clear();
                        // Heavy rows touch most items: accumulate densely and scan them all. Light
                        // rows track the items they touch.
                        let dense = work * 4 >= n_items - i;
                        let tag = i as u32 + 1;
                        for (k, ((&u, &w1), &st)) in us.iter().zip(ws).zip(starts).enumerate() {
                            if let (Some(&ua), Some(&sa)) =
                                (us.get(k + AHEAD), starts.get(k + AHEAD))
                            {
                                let (ja, wa) = upper(ua, sa);
                                prefetch_row(ja, wa);
                            }
                            let (js, ws2) = upper(u, st);
                            let w1 = w1 as f64;
                            if dense {
                                for (&j, &w2) in js.iter().zip(ws2) {
                                    s.acc[j as usize] += w1 * w2 as f64;
                                }
                            } else {
                                for (&j, &w2) in js.iter().zip(ws2) {
                                    let j = j as usize;
                                    if s.owner[j] != tag {
                                        s.owner[j] = tag;
                                        s.touched.push(j as u32);
                                    }
                                    s.acc[j] += w1 * w2 as f64;
                                }
                            }
                        }
                        if dense {
                            s.touched.extend(i as u32..n_items as u32);
                        }
                        s.own.clear();
                        for &j in &s.touched {
                            let j = j as usize;
                            let dot = std::mem::take(&mut s.acc[j]);
                            if let Some(v) = value(i, j, dot) {
                                if v >= s.own.threshold() {
                                    s.own.push(v, j as u32);
                                }
                                if j != i {
                                    offer(j, v, i as u32);
                                }
                            }
                        }
                        let kept = s.own.len();
                        s.own.write_sorted(&mut s.ids[..kept], &mut s.vals[..kept]);
                        let mut sel = rows[i].lock().unwrap_or_else(|e| e.into_inner());
                        for (&id, &v) in s.ids[..kept].iter().zip(&s.vals[..kept]) {
                            sel.push(v, id as u32);
                        }
                        thresholds[i].store(sel.threshold().to_bits(), Ordering::Relaxed);
                    }
                }
            });
    })?;

    stop.check()?;
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    if next_task.load(Ordering::Relaxed) > 0 {
        // tasks left undone: every thread stopped (its scratch did not fit, or the call was
        // interrupted)
        return Err(failed.unwrap_or(Error::Interrupted));
    }

    let what = "the similarity matrix";
    let kept: usize = rows
        .iter_mut()
        .map(|r| {
            r.get_mut()
                .map_or_else(|e| e.into_inner().len(), |r| r.len())
        })
        .sum();
    let mut indptr = try_with_capacity(n_items + 1, what, per_item)?;
    indptr.push(0i64);
    let stored = || format!("K={k} neighbours for each of {n_items} items ({kept} kept)");
    let mut indices = try_with_capacity(kept, what, stored)?;
    let mut data = try_with_capacity(kept, what, stored)?;
    let (mut ids, mut vals) = (vec![0i32; k], vec![0f32; k]);
    let mut order: Vec<(i32, f32)> = Vec::with_capacity(k);
    for sel in rows {
        let mut sel = sel.into_inner().unwrap_or_else(|e| e.into_inner());
        let kept = sel.len();
        sel.write_sorted(&mut ids[..kept], &mut vals[..kept]);
        order.clear();
        order.extend(
            ids[..kept]
                .iter()
                .copied()
                .zip(vals[..kept].iter().copied()),
        );
        order.sort_unstable_by_key(|e| e.0);
        indices.extend(order.iter().map(|e| e.0));
        data.extend(order.iter().map(|e| e.1));
        indptr.push(indices.len() as i64);
    }
    Ok(Csr {
        n_rows: n_items,
        n_cols: n_items,
        indptr,
        indices,
        data,
    })
}

/// Parameters of [`rp3beta_knn`] (Paudel et al. 2017; defaults of Dacrema et al. 2019's
/// reference implementation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rp3BetaParams {
    /// Neighbours kept per item (the item itself is never one).
    pub k: usize,
    /// Exponent of both transition probabilities.
    pub alpha: f64,
    /// Exponent of the popularity of the item walked to (divides the weight).
    pub beta: f64,
    /// L1-normalise every row after the top-K selection.
    pub normalize: bool,
}

impl Default for Rp3BetaParams {
    fn default() -> Self {
        Rp3BetaParams {
            k: 100,
            alpha: 1.0,
            beta: 0.6,
            normalize: false,
        }
    }
}

/// RP3beta's item x item weights, the top `k` of every row (ties to the lower item id), rows in
/// canonical CSR order:
///
/// `W[i, j] = sum_u P_iu^alpha P_uj^alpha / pop_j^beta` for `j != i`, where `P_uj = r_uj / sum_j
/// r_uj` (a user's row L1-normalised, values as given), `P_iu = 1 / pop_i` for the users of `i`
/// (the binary item column L1-normalised) and `pop_j` the number of users with item `j`, as in
/// Dacrema et al.'s `RP3betaRecommender`: the diagonal is dropped and only non-zero weights are
/// kept; with `normalize`, each kept row is divided by its sum.
///
/// The same sparse product as [`item_knn`] (per-thread accumulators over the users of an item),
/// but the walk is not symmetric, so every row accumulates all of its entries itself; no locks.
/// The result does not depend on the thread count.
pub fn rp3beta_knn(
    user_items: &CsrView<'_>,
    params: &Rp3BetaParams,
    num_threads: usize,
) -> Result<Csr> {
    let k = params.k;
    if k == 0 {
        return Err(Error::invalid("K", "must be at least 1"));
    }
    if !(params.alpha.is_finite() && params.alpha >= 0.0) {
        return Err(Error::invalid(
            "alpha",
            format!("must be a finite number >= 0, got {}", params.alpha),
        ));
    }
    if !params.beta.is_finite() {
        return Err(Error::invalid(
            "beta",
            format!("must be finite, got {}", params.beta),
        ));
    }
    if let Some(p) = user_items.data().iter().position(|&v| v < 0.0) {
        return Err(Error::invalid(
            "user_items",
            format!(
                "RP3beta's walk needs values >= 0, got {} at entry {p}",
                user_items.data()[p]
            ),
        ));
    }
    let n_items = user_items.n_cols();
    if n_items >= u32::MAX as usize {
        return Err(Error::invalid("user_items", "too many items"));
    }
    let (alpha, beta) = (params.alpha, params.beta);
    let mut pop = vec![0u64; n_items];
    for &j in user_items.indices() {
        pop[j as usize] += 1;
    }
    let degree: Vec<f64> = pop
        .iter()
        .map(|&p| if p == 0 { 0.0 } else { (p as f64).powf(-beta) })
        .collect();
    // P_uj^alpha / pop_j^beta for every stored entry
    let mut walk = vec![0f32; user_items.nnz()];
    parallel::install(num_threads, || {
        let rows: Vec<_> = (0..user_items.n_rows()).collect();
        let mut parts: Vec<&mut [f32]> = Vec::with_capacity(rows.len());
        let mut rest: &mut [f32] = &mut walk;
        for u in &rows {
            let (head, tail) = rest.split_at_mut(user_items.row_range(*u).len());
            parts.push(head);
            rest = tail;
        }
        parts.into_par_iter().enumerate().for_each(|(u, out)| {
            let (js, rs) = user_items.row(u);
            let total: f64 = rs.iter().map(|&r| r as f64).sum();
            for ((o, &j), &r) in out.iter_mut().zip(js).zip(rs) {
                let p = if total > 0.0 { r as f64 / total } else { 0.0 };
                *o = (p.powf(alpha) * degree[j as usize]) as f32;
            }
        });
    })?;
    let users = CsrView::new(
        "user_items",
        user_items.n_rows(),
        n_items,
        user_items.indptr(),
        user_items.indices(),
        &walk,
    )?;
    let items = transpose(&users, num_threads)?;
    let items = items.view();

    let stop = parallel::stop_flag(); // Ctrl-C: tasks left after it do nothing
    let chunks: Vec<(Vec<i64>, Vec<i32>, Vec<f32>)> = parallel::install(num_threads, || {
        (0..n_items.div_ceil(ITEMS_PER_TASK))
            .into_par_iter()
            .map_init(
                || FitScratch {
                    acc: vec![0.0; n_items],
                    owner: vec![0; n_items],
                    touched: Vec::new(),
                    own: TopK::new(k),
                    ids: vec![0; k],
                    vals: vec![0.0; k],
                },
                |s, task| {
                    let (mut lens, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
                    if stop.is_set() {
                        return (lens, cols, vals);
                    }
                    let mut order: Vec<(i32, f32)> = Vec::with_capacity(k);
                    for i in task * ITEMS_PER_TASK..((task + 1) * ITEMS_PER_TASK).min(n_items) {
                        let (us, _) = items.row(i);
                        let tag = i as u32 + 1;
                        s.touched.clear();
                        for (n, &u) in us.iter().enumerate() {
                            if let Some(&ahead) = us.get(n + AHEAD) {
                                let (ja, wa) = users.row(ahead as usize);
                                prefetch_row(ja, wa);
                            }
                            let (js, ws) = users.row(u as usize);
                            for (&j, &w) in js.iter().zip(ws) {
                                let j = j as usize;
                                if s.owner[j] != tag {
                                    s.owner[j] = tag;
                                    s.touched.push(j as u32);
                                }
                                s.acc[j] += w as f64;
                            }
                        }
                        // P_iu^alpha = pop_i^-alpha for each of i's users
                        let scale = if us.is_empty() {
                            0.0
                        } else {
                            (us.len() as f64).powf(-alpha)
                        };
                        s.own.clear();
                        for &j in &s.touched {
                            let sum = std::mem::take(&mut s.acc[j as usize]);
                            let v = (sum * scale) as f32;
                            if j as usize != i && v != 0.0 && v >= s.own.threshold() {
                                s.own.push(v, j);
                            }
                        }
                        let kept = s.own.len();
                        s.own.write_sorted(&mut s.ids[..kept], &mut s.vals[..kept]);
                        order.clear();
                        order.extend(
                            s.ids[..kept]
                                .iter()
                                .copied()
                                .zip(s.vals[..kept].iter().copied()),
                        );
                        order.sort_unstable_by_key(|e| e.0);
                        let total: f64 = order.iter().map(|e| e.1 as f64).sum();
                        let norm = if params.normalize && total > 0.0 {
                            total
                        } else {
                            1.0
                        };
                        cols.extend(order.iter().map(|e| e.0));
                        vals.extend(order.iter().map(|e| (e.1 as f64 / norm) as f32));
                        lens.push(kept as i64);
                    }
                    (lens, cols, vals)
                },
            )
            .collect()
    })?;
    stop.check()?;
    let mut indptr = Vec::with_capacity(n_items + 1);
    indptr.push(0i64);
    let nnz: usize = chunks.iter().map(|c| c.1.len()).sum();
    let (mut indices, mut data) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (lens, cols, vals) in chunks {
        for l in lens {
            indptr.push(indptr[indptr.len() - 1] + l);
        }
        indices.extend(cols);
        data.extend(vals);
    }
    Ok(Csr {
        n_rows: n_items,
        n_cols: n_items,
        indptr,
        indices,
        data,
    })
}

/// Candidate position of every item (`u32::MAX` when the item is not a candidate), or `None`
/// when positions are item ids.
fn positions(candidates: &Candidates) -> Option<Vec<u32>> {
    candidates.subset().map(|ids| {
        let mut pos = vec![u32::MAX; candidates.n_items()];
        for (p, &i) in ids.iter().enumerate() {
            pos[i as usize] = p as u32;
        }
        pos
    })
}

/// Queries per block for scorers writing whole query rows of `n_positions` scores: about
/// 256 KiB of scores (L2), 1 to 16 queries.
fn rows_per_block(n_positions: usize) -> usize {
    ((1usize << 16) / n_positions.max(1)).clamp(1, 16)
}

/// What a [`KnnScorer`]'s queries are.
enum Queries<'a> {
    /// Users' rows over the items: `score_j = sum over the row's items i of r_i * S[i, j]`, with
    /// the row's values as given. Items no neighbour reaches score 0.
    UserRows(CsrView<'a>),
    /// Items: the stored row `S[i, :]` as scores, NaN (never selected) for items that are not
    /// among its neighbours, so results hold only real neighbours.
    Items(&'a [i32]),
}

/// Scores from a similarity matrix for the shared top-k driver: recommendations for users' rows
/// ([`KnnScorer::recommend`]) or the neighbours of items ([`KnnScorer::neighbours`]). Each query's
/// scores are scattered into a contiguous row (query-major tiles).
pub struct KnnScorer<'a> {
    queries: Queries<'a>,
    similarity: CsrView<'a>,
    positions: Option<Vec<u32>>,
    n_positions: usize,
}

impl<'a> KnnScorer<'a> {
    /// Recommendations for `queries` (one row per query over the items) from `similarity`
    /// (items x items).
    pub fn recommend(
        queries: CsrView<'a>,
        similarity: CsrView<'a>,
        candidates: &Candidates,
    ) -> Result<Self> {
        if queries.n_cols() != similarity.n_rows() {
            return Err(Error::shape(
                "user_items columns (items)",
                similarity.n_rows(),
                queries.n_cols(),
            ));
        }
        Self::new(Queries::UserRows(queries), similarity, candidates)
    }

    /// The stored neighbours of `items`.
    pub fn neighbours(
        items: &'a [i32],
        similarity: CsrView<'a>,
        candidates: &Candidates,
    ) -> Result<Self> {
        let n = similarity.n_rows();
        if let Some(&bad) = items.iter().find(|&&i| i < 0 || i as usize >= n) {
            return Err(Error::out_of_range("itemid", bad as i64, n));
        }
        Self::new(Queries::Items(items), similarity, candidates)
    }

    fn new(queries: Queries<'a>, similarity: CsrView<'a>, candidates: &Candidates) -> Result<Self> {
        if similarity.n_rows() != similarity.n_cols() || similarity.n_cols() != candidates.n_items()
        {
            return Err(Error::shape(
                "similarity (items x items)",
                format!("{0} x {0}", candidates.n_items()),
                format!("{} x {}", similarity.n_rows(), similarity.n_cols()),
            ));
        }
        Ok(KnnScorer {
            queries,
            similarity,
            positions: positions(candidates),
            n_positions: candidates.n_positions(),
        })
    }

    /// Adds `weight * S[i, :]` into one query's row of scores (or, with `assign`, writes `S[i, :]`).
    #[inline]
    fn scatter(&self, scores: &mut [f32], i: usize, weight: f32, assign: bool) {
        let (cols, vals) = self.similarity.row(i);
        if self.positions.is_none() && !assign {
            assert!(scores.len() == self.similarity.n_cols());
            for (&j, &s) in cols.iter().zip(vals) {
                // SAFETY: the similarity is a validated `CsrView`, so j < n_cols == scores.len().
                unsafe { *scores.get_unchecked_mut(j as usize) += weight * s };
            }
            return;
        }
        for (&j, &s) in cols.iter().zip(vals) {
            let p = match &self.positions {
                None => j as usize,
                Some(pos) => match pos[j as usize] {
                    u32::MAX => continue,
                    p => p as usize,
                },
            };
            if assign {
                scores[p] = s;
            } else {
                scores[p] += weight * s;
            }
        }
    }
}

impl BlockScorer for KnnScorer<'_> {
    type Scratch = ();

    fn n_queries(&self) -> usize {
        match &self.queries {
            Queries::UserRows(rows) => rows.n_rows(),
            Queries::Items(items) => items.len(),
        }
    }

    fn n_positions(&self) -> usize {
        self.n_positions
    }

    fn tile_shape(&self) -> (usize, usize) {
        (rows_per_block(self.n_positions), self.n_positions)
    }

    fn make_scratch(&self) {}

    fn layout(&self) -> TileLayout {
        TileLayout::QueryMajor
    }

    fn score_tile(&self, q0: usize, m: usize, p0: usize, nt: usize, out: &mut [f32], _: &mut ()) {
        debug_assert!(p0 == 0 && nt == self.n_positions, "rows are scored whole");
        for (q, scores) in out[..m * nt].chunks_exact_mut(nt).enumerate() {
            match &self.queries {
                Queries::UserRows(rows) => {
                    scores.fill(0.0);
                    let (items, values) = rows.row(q0 + q);
                    for (k, (&i, &r)) in items.iter().zip(values).enumerate() {
                        if let Some(&ahead) = items.get(k + AHEAD) {
                            let (js, ws) = self.similarity.row(ahead as usize);
                            prefetch_row(js, ws);
                        }
                        self.scatter(scores, i as usize, r, false);
                    }
                }
                Queries::Items(items) => {
                    scores.fill(f32::NAN);
                    self.scatter(scores, items[q0 + q] as usize, 1.0, true);
                }
            }
        }
    }
}
