//! Item-item nearest neighbours: the similarity fit (a sparse product of the weighted item x user
//! matrix with its transpose, keeping the top K per item) and the scorers that recommend from it
//! through the shared top-k driver.

use crate::error::{try_ids, try_vec, try_with_capacity, try_zeroed, Error, Result};
use crate::parallel;
use crate::simd::{advise_huge_pages, prefetch, prefetch_to, Arch, Lanes, WithSimd, L1, L2};
use crate::sparse::weighting::{self, Documents};
use crate::sparse::{relabel_columns, sorted_contains, transpose, Csr, CsrView};
use crate::topk::{
    filled, from_rank_key, ordered_bits, rank_key, score_overflow, BlockScorer, Candidates,
    TileLayout, TopK, TopKResult,
};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// The items the current row touched, for light rows.
    seen: Seen,
    touched: Vec<u32>,
    /// The selection of rows whose values are not the sums themselves (Pearson, RP3beta).
    own: TopK,
    ids: Vec<i32>,
    vals: Vec<f32>,
    /// The touched items' sums, in the order of `touched` (rows of many touched items).
    gathered: Vec<f64>,
    /// The same as [`ordered_bits`] of their f32 values (0: none), for rows of few
    /// ([`select_touched`]).
    gathered_bits: Vec<u32>,
    /// Per bin of [`bin_of`], how many of `gathered_bits` fall in it (zero between rows).
    bins: Vec<u32>,
    sel: SelectScratch,
    /// The symmetric fit's offers not yet handed to their rows, and their grouping
    /// ([`Offers::flush`]).
    outbox: Vec<u128>,
    /// The rows' [`Offers::floor`]s as of the thread's last [`Offers::flush`].
    floors: Vec<f64>,
    grouped: Vec<u64>,
    starts: Vec<u32>,
}

/// [`select_values`]' buffers.
#[derive(Default)]
struct SelectScratch {
    /// The block maxima, and their copy to select from.
    maxima: Vec<f64>,
    picked: Vec<f64>,
    /// The current row's candidates, then its kept neighbours ([`rank_key`]s).
    keys: Vec<u64>,
}

impl FitScratch {
    fn new(n_items: usize, k: usize, what: &str) -> Result<Self> {
        let per_item = || format!("user_items has {n_items} columns (items)");
        Ok(FitScratch {
            acc: try_zeroed(n_items, what, per_item)?,
            seen: Seen::new(n_items, what)?,
            touched: Vec::new(),
            own: TopK::new(k),
            ids: try_zeroed(k, what, || format!("K={k}"))?,
            vals: try_zeroed(k, what, || format!("K={k}"))?,
            gathered: Vec::new(),
            gathered_bits: Vec::new(),
            bins: vec![0; BINS],
            sel: SelectScratch::default(),
            outbox: Vec::new(),
            floors: Vec::new(),
            grouped: Vec::new(),
            starts: Vec::new(),
        })
    }
}

/// Catalogues up to this many items have an accumulator (8 bytes an item) of at most 256 KiB,
/// within the second-level cache of any current core, where scanning it whole costs about an
/// eighth of tracking as many items as it holds (80k users x 10k items: tracking every row
/// until it had done 10^4 multiply-adds, 2970 rows went dense; at 10^4 / 8, 9771, and the
/// kernel's CPU time fell 15%). Larger ones switch after as many multiply-adds as items.
const SMALL_CATALOGUE: usize = 1 << 15;

/// The multiply-adds after which a fit row over `n_items` stops tracking the items it touches.
fn dense_after(n_items: usize) -> usize {
    if n_items <= SMALL_CATALOGUE {
        n_items.div_ceil(8)
    } else {
        n_items
    }
}

/// Rows requested from memory ahead of their use: by the fit (users' rows) and the scorer
/// (similarity rows).
const AHEAD: usize = 4;

/// 4-byte entries per 64-byte line.
const LINE: usize = 16;

/// Lines of a user's row the fit requests ahead (per array).
const FIT_PREFETCH_LINES: usize = 4;

/// Requests the first lines (at most 512 entries) of a CSR row. The fit reads millions of row
/// segments (a few hundred entries each, starting anywhere in a matrix larger than the cache), and
/// the hardware prefetcher only follows a stream after its first misses: the accumulation loop
/// waited on memory (single-thread BM25 fit of the 80k x 10k benchmark 2.4-2.9 s -> 1.7-2.2 s).
#[inline(always)]
fn prefetch_row(js: &[i32], ws: &[f32]) {
    prefetch_lines::<32, L1>(js, ws);
}

/// [`prefetch_row`] of the first `LINES` lines of each array, into cache level `LEVEL` (see
/// [`prefetch_to`]).
#[inline(always)]
fn prefetch_lines<const LINES: usize, const LEVEL: i32>(js: &[i32], ws: &[f32]) {
    for l in (0..js.len().min(LINES * LINE)).step_by(LINE) {
        prefetch_to::<LEVEL, i32>(js[l..].as_ptr());
        prefetch_to::<LEVEL, f32>(ws[l..].as_ptr());
    }
}

/// The bytes [`item_knn`] holds at least over `nnz` interactions and `n_items` items on
/// `num_threads` threads besides its input and its result, whatever the co-occurrences: the
/// interactions over the items (items x users: 8 bytes an entry, 8 an item for the row
/// pointers), the item order (4 bytes an item), each thread's row of sums and its bitmap of the
/// items touched (8 bytes and a bit an item), a weighted similarity's weights (4 bytes an entry),
/// and above [`SMALL_CATALOGUE`] items the users' rows over the relabelled items (8 bytes an
/// entry; the weights are freed once it is made) and the labels that make them (4 bytes an
/// item). The per-item arrays decide on wide matrices (ids used as column indices).
pub fn fit_memory_at_least(
    nnz: usize,
    n_items: usize,
    similarity: Similarity,
    num_threads: usize,
) -> u128 {
    let weights = match similarity {
        Similarity::Dot | Similarity::Pearson => 0,
        _ => 4,
    };
    let (relabelled, labels) = if n_items > SMALL_CATALOGUE {
        (8, 4)
    } else {
        (0, 0)
    };
    (8 + weights + relabelled) * nnz as u128
        + (8 + 4 + labels) * n_items as u128
        + thread_scratch(n_items, num_threads)
}

/// [`rp3beta_knn`]'s [`fit_memory_at_least`]: over `n_users` x `n_items`, while the rows are
/// summed, the walk's weights and their transpose (12 bytes an entry, 8 an item), the users'
/// totals (8 bytes a user), the rows' lengths (8 bytes an item) and each thread's row of sums
/// and bitmap.
pub fn rp3beta_memory_at_least(
    nnz: usize,
    n_users: usize,
    n_items: usize,
    num_threads: usize,
) -> u128 {
    12 * nnz as u128
        + 8 * n_users as u128
        + 16 * n_items as u128
        + thread_scratch(n_items, num_threads)
}

/// The bytes of the per-thread rows of sums (`f64`) and bitmaps of the fits' `num_threads`
/// threads (resolved as the pool resolves them).
fn thread_scratch(n_items: usize, num_threads: usize) -> u128 {
    let per_thread = 8 * n_items as u128 + 8 * n_items.div_ceil(64) as u128;
    parallel::resolve_threads(num_threads) as u128 * per_thread
}

/// The item x item similarity of `user_items` (users x items), keeping the `k` largest entries
/// of every row (ties to the lower item id), rows in canonical CSR order. Only pairs of items with
/// a non-zero product (co-occurring) are candidates. Never materialises the full product: each
/// item accumulates its whole row in a per-thread scratch and selects from it (no shared state
/// between rows), or, on small catalogues with heavy users ([`symmetric_pays`]), accumulates
/// half of it and offers the other half's sums to the rows they belong to ([`symmetric_row`]).
/// Either way the result is the same to the bit, and does not depend on the thread count.
pub fn item_knn(user_items: &CsrView<'_>, params: &KnnParams, num_threads: usize) -> Result<Csr> {
    fit(user_items, params, num_threads, None)
}

/// [`item_knn`], by [`symmetric_row`]s or not as `symmetric` says (where they can run:
/// [`SMALL_CATALOGUE`] items, not Pearson), else as [`symmetric_pays`] says.
fn fit(
    user_items: &CsrView<'_>,
    params: &KnnParams,
    num_threads: usize,
    symmetric: Option<bool>,
) -> Result<Csr> {
    if params.k == 0 {
        return Err(Error::invalid("K", "must be at least 1"));
    }
    let n_items = user_items.n_cols();
    if n_items >= u32::MAX as usize {
        return Err(Error::invalid("user_items", "too many items"));
    }
    // a K beyond the catalogue keeps every neighbour
    let k = params.k.min(n_items.max(1));
    // The checks of the weighting's parameters and values, on the input as given (so errors name
    // its entries).
    match params.similarity {
        Similarity::Bm25 { k1, b } => {
            weighting::check_bm25(k1, b)?;
            weighting::check_non_negative("bm25 weighting", user_items)?;
        }
        Similarity::TfIdf => weighting::check_non_negative("tfidf weighting", user_items)?,
        _ => {}
    }
    // The weighted values in `user_items`' entry order, its columns (items) the documents: the
    // statistics per item sum its column in user order, as they would sum the items' rows of
    // the transpose (the same values, bit for bit), and the values are computed entry by entry.
    let docs = Documents::Columns;
    let weights: Option<Vec<f32>> = match params.similarity {
        Similarity::Dot | Similarity::Pearson => None,
        Similarity::Cosine => Some(weighting::normalize(user_items, docs, num_threads)?),
        Similarity::TfIdf => {
            let tfidf = weighting::tfidf_unchecked(user_items, docs, num_threads)?;
            let v = user_items.with_data(&tfidf)?;
            Some(weighting::normalize(&v, docs, num_threads)?)
        }
        Similarity::Bm25 { k1, b } => Some(weighting::bm25_unchecked(
            user_items,
            docs,
            k1,
            b,
            num_threads,
        )?),
    };
    let weighted = match &weights {
        Some(w) => user_items.with_data(w)?,
        None => *user_items,
    };
    // items x users, rows by item id, each row in user order
    let items_csr = transpose(&weighted, num_threads)?;
    let pearson = params.similarity == Similarity::Pearson;
    let symmetric = !pearson && symmetric.unwrap_or_else(|| symmetric_pays(&weighted, k));
    // Above the small-catalogue size items are relabelled ([`locality_order`]: by popularity,
    // grouped by the users they share), rows are processed from the top label down, and the
    // users' rows are `user_items`' over the labels (a copy, each row in label order; the kernel
    // reads them at random, so they get huge pages). The kernel reads the row of label `i` as
    // item row `order[i]`. Selections keep the original ids (so ties break by them). Up to that
    // size the labels are the items' ids (the accumulator stays in cache whatever the order) and
    // `user_items` serves as the users' rows as it is; the symmetric fit then processes its rows
    // in `sequence`, from the most popular item down: their sums, the largest, give the rows their
    // floors early, so fewer of the later sums are offered (power-law 80k x 10k: 2.3M against
    // 6.5M in id order). Popularity labels, with a relabelled copy, took 5% more CPU and 30 MB
    // more memory there.
    let relabel = n_items > SMALL_CATALOGUE;
    let order = if relabel {
        locality_order(&items_csr.view(), num_threads)?
    } else {
        identity(n_items)?
    };
    let sequence = if symmetric && !relabel {
        Some(locality_order(&items_csr.view(), num_threads)?)
    } else {
        None
    };
    let users_csr = if relabel {
        let mut label: Vec<u32> = try_zeroed(n_items, "the items' labels", || {
            format!("user_items has {n_items} columns (items)")
        })?;
        for (l, &item) in order.iter().enumerate() {
            label[item as usize] = l as u32;
        }
        Some(relabel_columns(&weighted, &label, num_threads)?)
    } else {
        None
    };
    // a relabelled copy holds the weights now: freed here (`filter` takes them by value; a
    // binding shadowed without being moved would live to the end of the fit)
    let weights = weights.filter(|_| !relabel);
    let users = match (&users_csr, &weights) {
        (Some(c), _) => c.view(),
        (None, Some(w)) => user_items.with_data(w)?,
        (None, None) => *user_items,
    };
    let items = items_csr.view();
    let item_row = |label: usize| items.row(order[label] as usize);

    // Pearson: per-item sums and centred sums of squares over all users; items whose centred sum
    // of squares is zero (up to rounding) have no variance and get no neighbours.
    let n = users.n_rows() as f64;
    let mut sums = Vec::new();
    let mut centred_sq = Vec::new();
    let mut varies = Vec::new();
    if params.similarity == Similarity::Pearson {
        for i in 0..n_items {
            let (_, vals) = item_row(i);
            let s: f64 = vals.iter().map(|&v| v as f64).sum();
            let q: f64 = vals.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let c = if n > 0.0 { q - s * s / n } else { 0.0 };
            sums.push(s);
            centred_sq.push(c);
            varies.push(c > 1e-9 * q);
        }
    }

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

    let track_until = dense_after(n_items);
    let arch = Arch::new();
    let rows = |s: &mut FitScratch, offers: Option<&Offers>, rows_of_task: Range<usize>| {
        let mut out = RowsOut::default();
        if let Some(offers) = offers {
            if s.floors.is_empty() {
                offers.floors(&mut s.floors);
            }
        }
        for p in rows_of_task {
            // the rows' fit writes its rows in label order: it has no sequence
            let i = sequence.as_ref().map_or(p, |s| s[p] as usize);
            let (us, ws) = item_row(i);
            if let Some(offers) = offers {
                symmetric_row(arch, &users, (us, ws), i, s, &order, offers);
                if s.outbox.len() >= FLUSH_AT {
                    offers.flush(s, i);
                }
                continue;
            }
            let dense = row_sums::<false>(&users, (us, ws), s, (n_items, track_until), usize::MAX);
            s.own.clear();
            if !dense {
                s.seen.clear(&s.touched);
            }
            if pearson {
                let mut take = |j: usize, own: &mut TopK| {
                    let dot = std::mem::take(&mut s.acc[j]);
                    if let Some(v) = value(i, j, dot) {
                        if v >= own.threshold() {
                            own.push(v, order[j]);
                        }
                    }
                };
                if dense {
                    (0..n_items).for_each(|j| take(j, &mut s.own));
                } else {
                    s.touched.iter().for_each(|&j| take(j as usize, &mut s.own));
                }
                let kept = s.own.len();
                s.own.write_sorted(&mut s.ids[..kept], &mut s.vals[..kept]);
                s.sel.keys.clear();
                s.sel.keys.extend(
                    s.vals[..kept]
                        .iter()
                        .zip(&s.ids[..kept])
                        .map(|(&v, &j)| rank_key(v, j as u32)),
                );
            } else {
                own_selection(arch, s, dense, &order, k, usize::MAX);
            }
            out.push_row(&s.sel.keys);
        }
        out
    };
    let n_tasks = n_items.div_ceil(ITEMS_PER_TASK);
    let tasks = if symmetric {
        // Each product once: row i sums only its entries j <= i and offers those below its
        // diagonal to row j, whose neighbours are selected once every row has run.
        let offers = Offers::new(n_items, k)?;
        let rows = |s: &mut FitScratch, task| rows(s, Some(&offers), task);
        for_each_task(num_threads, n_items, k, rows, |s| offers.flush(s, 0))?;
        offers.rows_out(num_threads)?
    } else {
        // Every row accumulates all of its entries itself (each product is computed twice, once
        // per row): no row ever writes another's selection, so the rows need no shared state. A
        // value is the same sum in the same user order in either row (the products of two floats
        // widened to f64 are exact), so the similarity stays symmetric to the bit.
        let mut tasks: Vec<Option<RowsOut>> = (0..n_tasks).map(|_| None).collect();
        let rows = |s: &mut FitScratch, task| rows(s, None, task);
        for (task, out) in for_each_task(num_threads, n_items, k, rows, |_| {})? {
            tasks[task] = Some(out);
        }
        tasks
    };
    // the inputs' copies go before the output is built
    drop((items_csr, users_csr));
    assemble(&order, tasks, k)
}

/// Adds `w1 * row(u)` into `s.acc` for every `(u, w1)` of an item's row `(us, ws)`, in that order,
/// over the entries of each user's row up to label `last` (all of them when `PREFIX` is false;
/// the rows are in label order), tracking the labels touched (in `s.touched`, marked in `s.seen`)
/// until the row has touched a quarter of the `span` labels it can reach or done `track_until`
/// multiply-adds; true when it went on without (its sums are then to be scanned whole, and
/// `s.touched` is empty).
#[inline(always)]
fn row_sums<const PREFIX: bool>(
    users: &CsrView<'_>,
    (us, ws): (&[i32], &[f32]),
    s: &mut FitScratch,
    (span, track_until): (usize, usize),
    last: usize,
) -> bool {
    s.touched.clear();
    let mut dense = false;
    let mut work = 0;
    let indptr = users.indptr();
    for (n, (&u, &w1)) in us.iter().zip(ws).enumerate() {
        if let Some(&ua) = us.get(n + 4 * AHEAD) {
            prefetch(&indptr[ua as usize]);
        }
        if let Some(&ua) = us.get(n + AHEAD) {
            let (ja, wa) = users.row(ua as usize);
            prefetch_lines::<FIT_PREFETCH_LINES, L1>(ja, wa);
        }
        let row = users.row(u as usize);
        let w1 = w1 as f64;
        if dense {
            accumulate::<PREFIX>(&mut s.acc, row.0, row.1, w1, last);
        } else {
            let (acc, seen, touched) = (&mut s.acc, &mut s.seen, &mut s.touched);
            work += accumulate_tracked::<PREFIX>(acc, seen, touched, row, w1, last);
            if s.touched.len() * 4 >= span || work >= track_until {
                dense = true;
                s.seen.clear(&s.touched);
                s.touched.clear();
            }
        }
    }
    dense
}

/// `acc[j] += w1 * w2` for the entries `(j, w2)` of a user's row (`j < acc.len()`: the row comes
/// from a validated [`CsrView`] with `acc.len()` columns), up to the first `j > last` when
/// `PREFIX` (a test per entry costs less than finding where to stop first: the loop waits on
/// its stores, and a search waits on the row's lines).
#[inline(always)]
fn accumulate<const PREFIX: bool>(acc: &mut [f64], js: &[i32], ws: &[f32], w1: f64, last: usize) {
    let n = js.len().min(ws.len());
    for e in 0..n {
        // SAFETY: e < n <= both lengths; j < acc.len() as above.
        unsafe {
            let j = *js.get_unchecked(e) as usize;
            if PREFIX && j > last {
                break;
            }
            debug_assert!(j < acc.len());
            *acc.get_unchecked_mut(j) += w1 * *ws.get_unchecked(e) as f64;
        }
    }
}

/// [`accumulate`], also listing in `touched` the items not yet marked in `seen` (and marking
/// them); the number of entries added.
#[inline(always)]
fn accumulate_tracked<const PREFIX: bool>(
    acc: &mut [f64],
    seen: &mut Seen,
    touched: &mut Vec<u32>,
    (js, ws): (&[i32], &[f32]),
    w1: f64,
    last: usize,
) -> usize {
    let n = js.len().min(ws.len());
    // branch-free: the id is written at the end of the list and kept only on its first visit
    // (a branch on that mispredicts)
    touched.reserve(n);
    let list = touched.as_mut_ptr();
    let mut len = touched.len();
    let bits = &mut seen.0[..];
    let mut e = 0;
    while e < n {
        // SAFETY: e < n <= both lengths; j < acc.len() (see `accumulate`) and the bits cover
        // acc.len() items; len <= touched.len() + e < the capacity reserved.
        unsafe {
            let j = *js.get_unchecked(e) as usize;
            if PREFIX && j > last {
                break;
            }
            debug_assert!(j < acc.len() && j >> 6 < bits.len());
            list.add(len).write(j as u32);
            *acc.get_unchecked_mut(j) += w1 * *ws.get_unchecked(e) as f64;
            let word = bits.get_unchecked_mut(j >> 6);
            let b = 1u64 << (j & 63);
            len += (*word & b == 0) as usize;
            *word |= b;
        }
        e += 1;
    }
    // SAFETY: the first `len` entries are written.
    unsafe { touched.set_len(len) };
    e
}

/// Runs `task(scratch, labels)` for every task of [`ITEMS_PER_TASK`] consecutive labels, from
/// the top label down, handed out by a shared counter (the heaviest rows first, so the threads
/// finish together), each thread with its own [`FitScratch`]; the tasks' outputs with their
/// numbers, in no particular order.
fn for_each_task<T: Send>(
    num_threads: usize,
    n_items: usize,
    k: usize,
    task: impl Fn(&mut FitScratch, Range<usize>) -> T + Sync,
    finish: impl Fn(&mut FitScratch) + Sync,
) -> Result<Vec<(usize, T)>> {
    let n_tasks = n_items.div_ceil(ITEMS_PER_TASK);
    let next_task = AtomicUsize::new(n_tasks);
    // the first allocation failure of a thread's scratch (the other threads finish the work)
    let failed = parallel::FirstError::default();
    let stop = parallel::stop_flag();
    let done: Vec<Vec<(usize, T)>> = parallel::install(num_threads, || {
        (0..rayon::current_num_threads())
            .into_par_iter()
            .map(|_| {
                let mut done = Vec::new();
                let what = "the similarity's per-thread accumulators";
                let mut scratch = match FitScratch::new(n_items, k, what) {
                    Ok(s) => s,
                    Err(e) => {
                        failed.record(e);
                        return done;
                    }
                };
                while let Ok(next) =
                    next_task
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1))
                {
                    if stop.is_set() {
                        break; // interrupted: tasks are left undone
                    }
                    let t = next - 1;
                    let labels = t * ITEMS_PER_TASK..((t + 1) * ITEMS_PER_TASK).min(n_items);
                    done.push((t, task(&mut scratch, labels)));
                }
                finish(&mut scratch);
                done
            })
            .collect()
    })?;
    stop.check()?;
    if next_task.load(Ordering::Relaxed) > 0 {
        // tasks left undone: every thread stopped (its scratch did not fit, or the call was
        // interrupted)
        return Err(failed.into_inner().unwrap_or(Error::Interrupted));
    }
    Ok(done.into_iter().flatten().collect())
}

/// The best `k` of a row's sums in `s.acc` over the labels up to `last` (all of them when
/// `dense`, else those in `s.touched`) into `s.sel.keys`, as [`rank_key`]s of items; the sums
/// are left zero.
fn own_selection(
    arch: Arch,
    s: &mut FitScratch,
    dense: bool,
    order: &[u32],
    k: usize,
    last: usize,
) {
    let FitScratch {
        acc,
        touched,
        gathered,
        gathered_bits,
        bins,
        sel,
        ..
    } = s;
    if dense {
        let values = &mut acc[..last.saturating_add(1).min(order.len())];
        select_values(arch, values, |j| j as u32, order, k, sel);
        values.fill(0.0);
    } else if touched.len() < BOUND_AFTER * k {
        select_touched(acc, touched, gathered_bits, bins, order, k, &mut sel.keys);
    } else {
        // the touched sums gathered (and zeroed) in the order of the list
        gathered.clear();
        gathered.extend(
            touched
                .iter()
                .map(|&j| std::mem::take(&mut acc[j as usize])),
        );
        let label = |e: usize| touched[e];
        select_values(arch, gathered, label, order, k, sel);
    }
}

/// The most memory the symmetric fit's candidates ([`Offers`]) may take.
const SYMMETRIC_MEMORY: usize = 1 << 28;

/// Whether the similarity of `users` (users x items) for `k` neighbours is fitted by
/// [`symmetric_row`]s: on catalogues of up to [`SMALL_CATALOGUE`] items, whose candidates take
/// at most [`SYMMETRIC_MEMORY`], and where the multiply-adds saved, half of `sum(deg(u)^2)` over
/// the users, outweigh the scans of every dense row's sums and the offers (about `n_items^2` of
/// each). Measured (BM25, K=100, CPU s, 2 threads), 80k users x 10k items: where
/// `sum(deg(u)^2)` was 1.4 `n_items^2` (clustered), 0.36 -> 0.46; at 18 times (power-law), 1.59
/// -> 1.15: 0.66 ns a multiply-add saved against 1.45 ns per `n_items^2`, even at 4.4 times; it
/// is chosen from 8 times. On 300k users x 100k items (power-law, 0.36 times) it was slower,
/// 10.0 -> 15.6 (not profiled).
fn symmetric_pays(users: &CsrView<'_>, k: usize) -> bool {
    let n = users.n_cols();
    let products: f64 = (0..users.n_rows())
        .map(|u| (users.row_range(u).len() as f64).powi(2))
        .sum();
    n <= SMALL_CATALOGUE
        && OFFERED * k * n * std::mem::size_of::<u64>() <= SYMMETRIC_MEMORY
        && products >= 8.0 * (n as f64).powi(2)
}

/// Offers a thread of the symmetric fit holds before it hands them to their rows (and takes
/// their floors), besides when it runs out of tasks: 1 MiB. Its first rows, before any row has
/// kept K, offer nearly every sum (power-law 80k x 10k: peak 102 MB when a task of 64 rows held
/// its offers, 83 with this limit); handing them over after every task instead of at this limit
/// took 5% more CPU.
const FLUSH_AT: usize = 1 << 16;

/// Candidates a row of the symmetric fit holds, in multiples of K, before it keeps its best K.
const OFFERED: usize = 2;

/// One row of the symmetric fit: label `i`'s sums over the labels up to `i` only (half of the
/// products of the full row); each sum below the diagonal is also the sum of row `j` for label
/// `i` (the same products, added in the same user order, so the same value to the bit), and is
/// offered to row `j` as neighbour `order[i]`. Row `i`'s own best `k` of its sums are offered to
/// itself; its other candidates are offered by the rows above it. The offers wait in
/// `s.outbox` ([`Offers::flush`]).
fn symmetric_row(
    arch: Arch,
    users: &CsrView<'_>,
    row: (&[i32], &[f32]),
    i: usize,
    s: &mut FitScratch,
    order: &[u32],
    offers: &Offers,
) {
    let dense = row_sums::<true>(users, row, s, (i + 1, dense_after(i + 1)), i);
    let item = order[i];
    let FitScratch {
        acc,
        touched,
        seen,
        outbox,
        floors,
        ..
    } = &mut *s;
    // branch-free (which sums pass is unpredictable): every offer is written at the end of the
    // list and kept when its sum passes
    outbox.reserve(if dense { i } else { touched.len() });
    let list = outbox.as_mut_ptr();
    let mut len = outbox.len();
    let mut offer = |j: usize| {
        let dot = acc[j];
        // SAFETY: len <= outbox.len() + the offers written < the capacity reserved.
        unsafe {
            list.add(len)
                .write(offer_key(j, rank_key(dot as f32, item)))
        };
        len += (dot > floors[j] && dot != 0.0) as usize;
    };
    if dense {
        (0..i).for_each(&mut offer);
    } else {
        seen.clear(touched);
        touched
            .iter()
            .map(|&j| j as usize)
            .filter(|&j| j != i)
            .for_each(&mut offer);
    }
    // SAFETY: the first `len` entries are written.
    unsafe { outbox.set_len(len) };
    own_selection(arch, s, dense, order, offers.k, i);
    let FitScratch { sel, outbox, .. } = &mut *s;
    outbox.extend(sel.keys.iter().map(|&key| offer_key(i, key)));
}

/// An offer to row `j` of the symmetric fit: `j` in the top 64 bits, then the neighbour's
/// [`rank_key`].
#[inline(always)]
fn offer_key(j: usize, key: u64) -> u128 {
    (j as u128) << 64 | key as u128
}

/// The candidate neighbours of every row of the symmetric fit ([`symmetric_row`]), as
/// [`rank_key`]s: each row holds up to [`OFFERED`] times K of them, then keeps its best K,
/// whose worst bounds what may enter after. The result is each row's best K of every value
/// offered to it, whatever the order of the offers (the rows are handed to threads at run time).
struct Offers {
    k: usize,
    rows: Vec<Mutex<Offered>>,
    /// Per row, the f64 bits of a value every sum offered must exceed: below its K-th best
    /// candidate's, once it has kept K (`-inf` before). Read without the row's lock, so possibly
    /// lower than the row's own bound, never higher.
    floor: Vec<AtomicU64>,
}

struct Offered {
    keys: Vec<u64>,
    /// The K-th best key kept (`u64::MAX` until the row first kept its best K).
    kth: u64,
}

impl Offers {
    fn new(n_items: usize, k: usize) -> Result<Self> {
        let what = "the similarity's candidate neighbours";
        let cause = || format!("K={k} for each of {n_items} items");
        let mut rows = try_with_capacity(n_items, what, cause)?;
        for _ in 0..n_items {
            let keys = try_with_capacity(OFFERED * k, what, cause)?;
            rows.push(Mutex::new(Offered {
                keys,
                kth: u64::MAX,
            }));
        }
        let floor = (0..n_items)
            .map(|_| AtomicU64::new(f64::NEG_INFINITY.to_bits()))
            .collect();
        Ok(Offers { k, rows, floor })
    }

    /// The value a sum offered to row `j` must exceed (see [`Offers::floor`]).
    #[inline(always)]
    fn floor(&self, j: usize) -> f64 {
        f64::from_bits(self.floor[j].load(Ordering::Relaxed))
    }

    /// Every row's [`Offers::floor`] into `floors`.
    fn floors(&self, floors: &mut Vec<f64>) {
        floors.clear();
        floors.extend((0..self.rows.len()).map(|j| self.floor(j)));
    }

    /// Hands a thread's offers (`s.outbox`, left empty) to their rows: grouped by row (a
    /// counting sort into `s.grouped`), then each row's under its lock once, from row `first`
    /// on (threads flushing at once start apart); then `s.floors` are brought up to date.
    fn flush(&self, s: &mut FitScratch, first: usize) {
        let FitScratch {
            outbox,
            grouped,
            starts,
            floors,
            ..
        } = s;
        let n = self.rows.len();
        starts.clear();
        starts.resize(n + 1, 0);
        for &o in outbox.iter() {
            starts[(o >> 64) as usize + 1] += 1;
        }
        for j in 0..n {
            starts[j + 1] += starts[j];
        }
        grouped.clear();
        grouped.resize(outbox.len(), 0);
        for &o in outbox.iter() {
            let at = &mut starts[(o >> 64) as usize];
            grouped[*at as usize] = o as u64;
            *at += 1;
        }
        outbox.clear();
        // row j's offers now end at starts[j] and begin where row j - 1's end
        for j in (first..n).chain(0..first.min(n)) {
            let begin = if j == 0 { 0 } else { starts[j - 1] as usize };
            let end = starts[j] as usize;
            if begin < end {
                self.offer(j, &grouped[begin..end]);
            }
        }
        self.floors(floors);
    }

    /// Offers `keys` ([`rank_key`]s) to row `j`.
    fn offer(&self, j: usize, keys: &[u64]) {
        let k = self.k;
        // poisoning is ignored: a panicking thread leaves the keys a valid list
        let mut row = self.rows[j].lock().unwrap_or_else(|e| e.into_inner());
        let Offered { keys: kept, kth } = &mut *row;
        for &key in keys {
            if key >= *kth {
                continue;
            }
            kept.push(key);
            if kept.len() == OFFERED * k {
                keep_best(kept, k);
                *kth = kept[k - 1];
                let bound = below(from_rank_key(*kth).0);
                self.floor[j].store(bound.to_bits(), Ordering::Relaxed);
            }
        }
    }

    /// Every row's best K, as the tasks' rows for [`assemble`].
    fn rows_out(self, num_threads: usize) -> Result<Vec<Option<RowsOut>>> {
        let k = self.k;
        let mut rows: Vec<Offered> = self
            .rows
            .into_iter()
            .map(|row| row.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        parallel::install(num_threads, || {
            rows.par_chunks_mut(ITEMS_PER_TASK)
                .map(|task| {
                    let mut out = RowsOut::default();
                    for row in task {
                        let mut keys = std::mem::take(&mut row.keys);
                        keep_best(&mut keys, k);
                        out.push_row(&keys);
                    }
                    Some(out)
                })
                .collect()
        })
    }
}

/// Values per block of the selection's first pass ([`select_values`]), at most.
const SELECT_BLOCK: usize = 32;

/// The maximum of every block of `width` values (into `maxima`, cleared first); false
/// when a block's values summed to NaN (a NaN among them, whose maximum would be unreliable).
struct BlockMaxima<'a> {
    values: &'a [f64],
    width: usize,
    maxima: &'a mut Vec<f64>,
}

impl WithSimd for BlockMaxima<'_> {
    type Output = bool;

    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> bool {
        let BlockMaxima {
            values,
            width,
            maxima,
        } = self;
        maxima.clear();
        let mut sum = simd.splat_f64s(0.0);
        let mut tail_sum = 0.0;
        for block in values.chunks(width) {
            let (vecs, tail) = S::as_simd_f64s(block);
            let mut m = simd.splat_f64s(f64::NEG_INFINITY);
            for &v in vecs {
                m = simd.max_f64s(m, v);
                sum = simd.add_f64s(sum, v);
            }
            let mut top = simd.reduce_max_f64s(m);
            for &x in tail {
                top = top.max(x);
                tail_sum += x;
            }
            maxima.push(top);
        }
        !(simd.reduce_sum_f64s(sum) + tail_sum).is_nan()
    }
}

/// The best `k` of the non-zero `values[e]` (as f32, of the item labelled `label(e)`, which is
/// item `order[label(e)]`; ties to the lower item) into `keys` as [`rank_key`]s, in no particular
/// order. Rows of many values first look for a bound: the maximum of every block of values; the
/// k-th largest of those, when positive, is a lower bound of the k-th best value (k blocks each
/// hold a value at least that large), and only the values above it become candidates. The best k
/// candidates are then one integer selection on their keys. (A heap offered every value in turn
/// raised its threshold slowly: a thousand pushes per row of 10^5 items.)
fn select_values(
    arch: Arch,
    values: &[f64],
    label: impl Fn(usize) -> u32,
    order: &[u32],
    k: usize,
    sel: &mut SelectScratch,
) {
    let SelectScratch {
        maxima,
        picked,
        keys,
    } = sel;
    keys.clear();
    if k == 0 {
        return;
    }
    let mut bound = f64::NEG_INFINITY;
    let mut width = values.len().max(1);
    if values.len() >= BOUND_AFTER * k {
        // blocks narrow enough that there are several times k of them
        width = (values.len() / (4 * k)).clamp(4, SELECT_BLOCK);
        let reliable = arch.dispatch(BlockMaxima {
            values,
            width,
            maxima,
        });
        if reliable && maxima.len() > k {
            picked.clear();
            picked.extend_from_slice(maxima);
            let (_, &mut m, _) = picked.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            if m > 0.0 {
                bound = below(m as f32);
            }
        }
    }
    for (b, block) in values.chunks(width).enumerate() {
        if bound != f64::NEG_INFINITY && maxima[b] <= bound {
            continue;
        }
        let base = b * width;
        // branch-free (which values pass is unpredictable): every value is written at the end of
        // the list and kept when it passes (NaN never does)
        keys.reserve(block.len());
        let list = keys.as_mut_ptr();
        let mut len = keys.len();
        for (e, &dot) in block.iter().enumerate() {
            // SAFETY: len <= keys.len() + e < the capacity reserved.
            unsafe { list.add(len).write(rank_key(dot as f32, label(base + e))) };
            len += (dot > bound && dot != 0.0) as usize;
        }
        // SAFETY: the first `len` entries are written.
        unsafe { keys.set_len(len) };
    }
    select_best(keys, order, k);
}

/// The best `k` of `keys` ([`rank_key`]s of labels) kept, as [`rank_key`]s of the labels'
/// items (`order[label]`: ties then go to the lower item).
#[inline]
fn select_best(keys: &mut Vec<u64>, order: &[u32], k: usize) {
    for key in keys.iter_mut() {
        *key = (*key & !(u32::MAX as u64)) | order[*key as u32 as usize] as u64;
    }
    keep_best(keys, k);
}

/// Keeps the best `k` (at least 1) of `keys` ([`rank_key`]s: the smallest), in no particular
/// order; the worst kept is then the last.
#[inline]
fn keep_best(keys: &mut Vec<u64>, k: usize) {
    if keys.len() > k {
        keys.select_nth_unstable(k - 1);
        keys.truncate(k);
    }
}

/// The bins of [`select_touched`]'s histogram: the top 12 of a value's [`ordered_bits`] (sign,
/// exponent and 3 bits of mantissa: 8 bins per power of two).
const BINS: usize = 1 << 12;

/// The bin of `ordered_bits(value)`.
#[inline(always)]
fn bin_of(ordered: u32) -> usize {
    (ordered >> 20) as usize
}

/// [`select_values`] for a row that tracked its items: the best `k` of the non-zero sums of the
/// `touched` labels (taken from `acc`, which is left zero) into `keys`. The sums are read in
/// the order of the list and counted per [`bin_of`] their f32 value as they are (`bins`: zero
/// before and after); from the top bin down, the first bin where the count reaches `k` bounds
/// the k-th best value, and only the values in it or above become candidates (a row of ~10^3
/// touched items keeps ~10^2: one pass over the values instead of the block maxima's two and
/// their selection).
fn select_touched(
    acc: &mut [f64],
    touched: &[u32],
    gathered: &mut Vec<u32>,
    bins: &mut [u32],
    order: &[u32],
    k: usize,
    keys: &mut Vec<u64>,
) {
    keys.clear();
    gathered.clear();
    if touched.is_empty() {
        return;
    }
    let (mut lo, mut hi) = (BINS - 1, 0);
    gathered.extend(touched.iter().map(|&j| {
        let dot = std::mem::take(&mut acc[j as usize]);
        // zero and NaN are never kept: they get bits 0 (no value's) and are not counted
        let kept = dot != 0.0 && !dot.is_nan();
        let bits = if kept { ordered_bits(dot as f32) } else { 0 };
        let b = bin_of(bits);
        bins[b] += kept as u32;
        (lo, hi) = (lo.min(b), hi.max(b));
        bits
    }));
    let mut b = hi;
    let mut count = 0;
    loop {
        count += bins[b] as usize;
        if count >= k || b == lo {
            break;
        }
        b -= 1;
    }
    let floor = if count >= k { (b as u32) << 20 } else { 0 };
    bins[lo..=hi].fill(0);
    // branch-free, as in `select_values`
    keys.reserve(gathered.len());
    let list = keys.as_mut_ptr();
    let mut len = 0;
    for (&bits, &label) in gathered.iter().zip(touched) {
        // SAFETY: len <= the values written so far < the capacity reserved.
        unsafe { list.add(len).write(((!bits) as u64) << 32 | label as u64) };
        len += (bits >= floor && bits != 0) as usize;
    }
    // SAFETY: the first `len` entries are written.
    unsafe { keys.set_len(len) };
    select_best(keys, order, k);
}

/// Rows with fewer values than this many times k take no bound from block maxima (which would
/// have to be narrower than a vector to leave k blocks out): in [`select_values`] they go
/// straight to the integer selection, and rows that tracked their items select by
/// [`select_touched`]'s histogram instead (whose bins' counts, in rows of 10^4 sums and more,
/// wait on each other: power-law 300k x 100k 18% slower with it for every row).
const BOUND_AFTER: usize = 32;

/// An f64 below every f64 that rounds to an f32 at least `t` (the f32 just below `t`).
#[inline(always)]
fn below(t: f32) -> f64 {
    if t == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let bits = if t > 0.0 {
        t.to_bits() - 1
    } else if t == 0.0 {
        0x8000_0001 // the negative subnormal nearest zero
    } else {
        t.to_bits() + 1
    };
    f32::from_bits(bits) as f64
}

/// The kept neighbours of a task's rows (by label), each row's sorted by id.
#[derive(Default)]
struct RowsOut {
    lens: Vec<u32>,
    ids: Vec<i32>,
    vals: Vec<f32>,
    /// [`RowsOut::push_row`]'s scratch.
    keys: Vec<u64>,
}

impl RowsOut {
    /// Appends the row's neighbours (as [`rank_key`]s) sorted by item.
    fn push_row(&mut self, kept: &[u64]) {
        // sorted as one u64 each (item, then the value's bits): a plain integer sort
        self.keys.clear();
        self.keys.extend(kept.iter().map(|&key| {
            let (v, item) = from_rank_key(key);
            (item as u64) << 32 | v.to_bits() as u64
        }));
        self.keys.sort_unstable();
        self.ids
            .extend(self.keys.iter().map(|&key| (key >> 32) as i32));
        self.vals
            .extend(self.keys.iter().map(|&key| f32::from_bits(key as u32)));
        self.lens.push(kept.len() as u32);
    }
}

/// The similarity matrix from the tasks' rows (labels; `order[label] = item`), rows by item.
fn assemble(order: &[u32], tasks: Vec<Option<RowsOut>>, k: usize) -> Result<Csr> {
    let n_rows = order.len();
    let what = "the similarity matrix";
    let per_item = || format!("user_items has {n_rows} columns (items)");
    // each item's row length (its task's output, by label), then their running sums
    let mut indptr: Vec<i64> = try_zeroed(n_rows + 1, what, per_item)?;
    for (t, out) in tasks.iter().enumerate() {
        let out = out.as_ref().ok_or(Error::Interrupted)?;
        for (r, &l) in out.lens.iter().enumerate() {
            indptr[order[t * ITEMS_PER_TASK + r] as usize + 1] = l as i64;
        }
    }
    let mut sum = 0i64;
    for p in &mut indptr {
        sum += *p;
        *p = sum;
    }
    let total = sum as usize;
    let stored = || format!("K={k} neighbours for each of {n_rows} items ({total} kept)");
    let mut indices: Vec<i32> = try_zeroed(total, what, stored)?;
    let mut data: Vec<f32> = try_zeroed(total, what, stored)?;
    // `recommend` reads the rows at random: on huge pages, as NumPy places its large arrays
    // (50,000 queries, 2 threads, CPU s: clustered 1M x 1M 0.916 -> 0.813, power-law 1.378 ->
    // 1.170, clustered 300k x 100k 0.540 -> 0.513). Fits of 1M x 1M one after another in one
    // process pay for it in system time (0.45 -> 1.6 s of 14 s); a fresh process's fit does not.
    // Advised here from 2 MiB, below `try_zeroed`'s threshold: at 10^4 items and K=100 each array
    // is 3.8 MB.
    advise_huge_pages(&indices);
    advise_huge_pages(&data);
    // the tasks' rows, by label, each task's one after another
    for (t, out) in tasks.iter().enumerate() {
        let out = out.as_ref().ok_or(Error::Interrupted)?;
        let mut from = 0;
        for (r, &l) in out.lens.iter().enumerate() {
            let a = indptr[order[t * ITEMS_PER_TASK + r] as usize] as usize;
            let l = l as usize;
            indices[a..a + l].copy_from_slice(&out.ids[from..from + l]);
            data[a..a + l].copy_from_slice(&out.vals[from..from + l]);
            from += l;
        }
    }
    Ok(Csr {
        n_rows,
        n_cols: n_rows,
        indptr,
        indices,
        data,
    })
}

/// `0..n_items` as labels, allocated fallibly (a matrix as wide as the largest id asks for
/// billions).
fn identity(n_items: usize) -> Result<Vec<u32>> {
    try_ids(n_items, "the similarity's item order", || {
        format!("user_items has {n_items} columns (items)")
    })
}

/// Anchors of [`locality_order`]: the most popular items, one bit each of a user's mask.
const ANCHORS: usize = 64;

/// The items in the order the fit processes them, from the last down: by increasing popularity
/// (number of users, ties by id) up to [`SMALL_CATALOGUE`] items (the symmetric fit's `sequence`).
/// Above it, the items' labels (`order[label] = item`): items that share users get nearby
/// labels: each item joins the group of the anchor (one of the [`ANCHORS`] most popular items)
/// with the most of `|users(i) & users(a)| / |users(a)|` over up to 8 of its users, evenly spaced
/// (ties to the more popular anchor; items sharing none form one more group). The groups are
/// chained, each followed by the one whose anchor's users overlap its anchor's most, from the
/// largest group, which takes the top labels, down to the group without an anchor; items within
/// a group by increasing popularity (ties by id). Rows processed from the top label down then go
/// from the heaviest row of each group down (the threads finish together), and consecutive rows
/// read many of the same users' rows (cached) and add into a part of the accumulator that is
/// mostly their group's (CPU s: clustered 300k x 100k one thread 2.62 -> 2.22, 1M x 1M two
/// threads 16.1 -> 13.8; power-law 300k x 100k unchanged, 1M x 1M 93.1 -> 83.4; the chain, in
/// place of groups by increasing entries, 2-3% less at clustered 300k x 100k). The order only
/// moves work: the similarity does not depend on it. `items` is items x users.
fn locality_order(items: &CsrView<'_>, num_threads: usize) -> Result<Vec<u32>> {
    let n_items = items.n_rows();
    let popularity = |j: usize| items.row_range(j).len();
    let mut order = identity(n_items)?;
    order.sort_unstable_by_key(|&j| (popularity(j as usize), j));
    if n_items <= SMALL_CATALOGUE {
        return Ok(order);
    }
    let anchors: Vec<u32> = order.iter().rev().take(ANCHORS).copied().collect();
    let what = "the similarity's item order";
    let per_user = || format!("user_items has {} rows (users)", items.n_cols());
    let mut mask: Vec<u64> = try_zeroed(items.n_cols(), what, per_user)?;
    for (a, &j) in anchors.iter().enumerate() {
        for &u in items.row(j as usize).0 {
            mask[u as usize] |= 1 << a;
        }
    }
    let per_anchor_user: Vec<f64> = anchors
        .iter()
        .map(|&j| 1.0 / popularity(j as usize) as f64)
        .collect();
    // every item's group, from at most SAMPLE of its users, CHUNK items per parallel task
    const SAMPLE: usize = 8;
    const CHUNK: usize = 4096;
    let mut group: Vec<u32> = try_zeroed(n_items, what, || format!("{n_items} items"))?;
    parallel::install(num_threads, || {
        group
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                // the sampled users' anchors counted, then cleared where set
                let mut shared = [0u32; ANCHORS];
                for (n, g) in out.iter_mut().enumerate() {
                    let users = items.row(c * CHUNK + n).0;
                    let step = users.len().div_ceil(SAMPLE).max(1);
                    // the masks loaded first (independent loads), then counted
                    let mut masks = [0u64; SAMPLE];
                    for (m, &u) in masks.iter_mut().zip(users.iter().step_by(step)) {
                        *m = mask[u as usize];
                    }
                    let mut any = 0u64;
                    for mut m in masks {
                        any |= m;
                        while m != 0 {
                            shared[m.trailing_zeros() as usize] += 1;
                            m &= m - 1;
                        }
                    }
                    let (mut best_a, mut best) = (anchors.len(), 0.0);
                    while any != 0 {
                        let a = any.trailing_zeros() as usize;
                        any &= any - 1;
                        let lift = std::mem::take(&mut shared[a]) as f64 * per_anchor_user[a];
                        if lift > best {
                            (best_a, best) = (a, lift);
                        }
                    }
                    *g = best_a as u32;
                }
            })
    })?;
    let mut group_work = vec![0usize; anchors.len() + 1];
    for (j, &g) in group.iter().enumerate() {
        group_work[g as usize] += popularity(j);
    }
    // how much the anchors' users overlap: for each anchor, the share of (up to PER_ANCHOR of)
    // its users that also have each other anchor
    const PER_ANCHOR: usize = 1024;
    let na = anchors.len();
    let mut overlap = vec![0.0f64; na * na];
    for (a, &j) in anchors.iter().enumerate() {
        let users = items.row(j as usize).0;
        let step = users.len().div_ceil(PER_ANCHOR).max(1);
        let mut counts = [0u32; ANCHORS];
        let mut n = 0u32;
        for &u in users.iter().step_by(step) {
            n += 1;
            let mut m = mask[u as usize];
            while m != 0 {
                counts[m.trailing_zeros() as usize] += 1;
                m &= m - 1;
            }
        }
        for b in 0..na {
            overlap[a * na + b] = counts[b] as f64 / n.max(1) as f64;
        }
    }
    // a chain of the groups, each followed by the unvisited one that overlaps it most: starting
    // from the largest group, which is processed first (takes the top labels); the group without
    // an anchor last
    let mut chain: Vec<usize> = Vec::with_capacity(na + 1);
    let mut last = (0..na).max_by_key(|&g| (group_work[g], g)).unwrap_or(0);
    let mut left: Vec<usize> = (0..na).filter(|&g| g != last).collect();
    chain.push(last);
    while !left.is_empty() {
        let (p, _) = left
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (p, &g)| {
                let s = overlap[last * na + g] + overlap[g * na + last];
                if s > best.1 {
                    (p, s)
                } else {
                    best
                }
            });
        last = left.remove(p);
        chain.push(last);
    }
    chain.push(na);
    let mut group_rank = vec![0u32; na + 1];
    for (p, &g) in chain.iter().enumerate() {
        group_rank[g] = (na - p) as u32;
    }
    order.sort_unstable_by_key(|&j| {
        let j = j as usize;
        (group_rank[group[j] as usize], popularity(j), j)
    });
    Ok(order)
}

/// A set of items, one bit per item (an eighth of a byte, so it stays in the first-level cache
/// where a per-item tag would not at 10^5 items and more): the items a row has touched, or the
/// items a recommend call excludes.
struct Seen(Vec<u64>);

impl Seen {
    fn new(n_items: usize, what: &str) -> Result<Self> {
        let words = n_items.div_ceil(64);
        Ok(Seen(try_zeroed(words, what, || {
            format!("{n_items} items")
        })?))
    }

    /// Marks item `j`; true when it was not marked.
    #[inline(always)]
    fn first_visit(&mut self, j: usize) -> bool {
        let (w, b) = (j >> 6, 1u64 << (j & 63));
        let word = &mut self.0[w];
        let first = *word & b == 0;
        *word |= b;
        first
    }

    /// Whether item `j` is marked.
    #[inline(always)]
    fn has(&self, j: usize) -> bool {
        self.0[j >> 6] & (1u64 << (j & 63)) != 0
    }

    /// Unmarks `touched` (every marked item): word by word, or all words at once when there
    /// are fewer words than touched items (one sequential fill instead of scattered stores).
    #[inline]
    fn clear(&mut self, touched: &[u32]) {
        if touched.len() > self.0.len() {
            self.0.fill(0);
            return;
        }
        for &j in touched {
            self.0[j as usize >> 6] = 0;
        }
    }
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
    let what = "RP3beta's walk weights";
    let per_item = || format!("user_items has {n_items} columns (items)");
    let mut pop: Vec<u64> = try_zeroed(n_items, what, per_item)?;
    for &j in user_items.indices() {
        pop[j as usize] += 1;
    }
    let mut degree: Vec<f64> = try_with_capacity(n_items, what, per_item)?;
    degree.extend(
        pop.iter()
            .map(|&p| if p == 0 { 0.0 } else { (p as f64).powf(-beta) }),
    );
    let n_users = user_items.n_rows();
    let mut totals: Vec<f64> = try_with_capacity(n_users, what, || format!("{n_users} users"))?;
    for u in 0..n_users {
        totals.push(user_items.row(u).1.iter().map(|&r| r as f64).sum());
    }
    // P_uj^alpha / pop_j^beta for every stored entry, P_uj being r_uj over the user's total
    let walk = weighting::map_entries(user_items, Documents::Rows, num_threads, |r, u, j| {
        let p = if totals[u] > 0.0 { r / totals[u] } else { 0.0 };
        p.powf(alpha) * degree[j]
    })?;
    drop((pop, degree));
    // inf (or 0 x inf = NaN, which the selection below would drop silently) from exponents far
    // from the paper's
    if !walk.iter().all(|v| v.is_finite()) {
        return Err(Error::invalid(
            "alpha / beta",
            format!(
                "{alpha} / {beta}: the RP3beta weights overflow float32 (P^alpha / pop^beta \
                 beyond 3.4e38): use exponents nearer the paper's (alpha around 1, beta in [0, 1])"
            ),
        ));
    }
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
                || FitScratch::new(n_items, k, "RP3beta's per-thread accumulators"),
                |s, task| {
                    let (mut lens, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
                    let s = match s {
                        Ok(s) if !stop.is_set() => s,
                        Ok(_) => return Ok((lens, cols, vals)),
                        Err(e) => return Err(e.clone()),
                    };
                    let mut order: Vec<(i32, f32)> = Vec::with_capacity(k);
                    for i in task * ITEMS_PER_TASK..((task + 1) * ITEMS_PER_TASK).min(n_items) {
                        let (us, _) = items.row(i);
                        s.touched.clear();
                        for (n, &u) in us.iter().enumerate() {
                            if let Some(&ahead) = us.get(n + AHEAD) {
                                let (ja, wa) = users.row(ahead as usize);
                                prefetch_row(ja, wa);
                            }
                            let (js, ws) = users.row(u as usize);
                            for (&j, &w) in js.iter().zip(ws) {
                                let j = j as usize;
                                if s.seen.first_visit(j) {
                                    s.touched.push(j as u32);
                                }
                                s.acc[j] += w as f64;
                            }
                        }
                        s.seen.clear(&s.touched);
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
                    Ok((lens, cols, vals))
                },
            )
            .collect::<Result<Vec<_>>>()
    })??;
    stop.check()?;
    let nnz: usize = chunks.iter().map(|c| c.1.len()).sum();
    let (what, kept) = ("the similarity", || format!("{nnz} neighbours kept"));
    let per_item = || format!("user_items has {n_items} columns (items)");
    let mut indptr: Vec<i64> = try_with_capacity(n_items + 1, what, per_item)?;
    indptr.push(0);
    let mut indices: Vec<i32> = try_with_capacity(nnz, what, kept)?;
    let mut data: Vec<f32> = try_with_capacity(nnz, what, kept)?;
    // as the other kNN fits' (see `assemble`)
    advise_huge_pages(indices.spare_capacity_mut());
    advise_huge_pages(data.spare_capacity_mut());
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
fn positions(candidates: &Candidates) -> Result<Option<Vec<u32>>> {
    let Some(ids) = candidates.subset() else {
        return Ok(None);
    };
    let n_items = candidates.n_items();
    let what = "the candidates' positions";
    let mut pos = try_vec(n_items, u32::MAX, what, || format!("{n_items} items"))?;
    for (p, &i) in ids.iter().enumerate() {
        pos[i as usize] = p as u32;
    }
    Ok(Some(pos))
}

/// Queries per block for scorers writing whole query rows of `n_positions` scores: about
/// 256 KiB of scores (L2), 1 to 16 queries.
fn rows_per_block(n_positions: usize) -> usize {
    ((1usize << 16) / n_positions.max(1)).clamp(1, 16)
}

/// Scores from a similarity matrix for the shared top-k driver: recommendations for users' rows
/// over the items, `score_j = sum over the row's items i of r_i * S[i, j]` with the row's values
/// as given (items no neighbour reaches score 0). Each query's scores are scattered into a
/// contiguous row (query-major tiles).
pub struct KnnScorer<'a> {
    queries: CsrView<'a>,
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
        check_square(&similarity, candidates)?;
        Ok(KnnScorer {
            queries,
            similarity,
            positions: positions(candidates)?,
            n_positions: candidates.n_positions(),
        })
    }

    /// Adds `weight * S[i, :]` into one query's row of scores, requesting a line of `ahead`
    /// per line of the row (see [`scatter_row`]).
    #[inline]
    fn scatter(&self, scores: &mut [f32], i: usize, weight: f32, ahead: &mut Ahead<'_>) {
        let (cols, vals) = self.similarity.row(i);
        let lines = cols.chunks(LINE).zip(vals.chunks(LINE));
        match &self.positions {
            None => {
                assert!(scores.len() == self.similarity.n_cols());
                for (cj, cv) in lines {
                    ahead.request();
                    for (&j, &s) in cj.iter().zip(cv) {
                        // SAFETY: the similarity is a validated `CsrView`: j < n_cols == scores.len().
                        unsafe { *scores.get_unchecked_mut(j as usize) += weight * s };
                    }
                }
            }
            Some(pos) => {
                for (cj, cv) in lines {
                    ahead.request();
                    for (&j, &s) in cj.iter().zip(cv) {
                        let p = pos[j as usize];
                        if p != u32::MAX {
                            scores[p as usize] += weight * s;
                        }
                    }
                }
            }
        }
    }
}

/// Errors unless `similarity` is items x items for the candidates' catalogue.
fn check_square(similarity: &CsrView<'_>, candidates: &Candidates) -> Result<()> {
    let n = candidates.n_items();
    if similarity.n_rows() != n || similarity.n_cols() != n {
        return Err(Error::shape(
            "similarity (items x items)",
            format!("{n} x {n}"),
            format!("{} x {}", similarity.n_rows(), similarity.n_cols()),
        ));
    }
    Ok(())
}

impl BlockScorer for KnnScorer<'_> {
    type Scratch = ();

    fn n_queries(&self) -> usize {
        self.queries.n_rows()
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
            scores.fill(0.0);
            let (items, values) = self.queries.row(q0 + q);
            for (k, (&i, &r)) in items.iter().zip(values).enumerate() {
                let mut ahead = Ahead::of(&self.similarity, items, k);
                self.scatter(scores, i as usize, r, &mut ahead);
                while ahead.request() {}
            }
        }
    }
}

/// Queries per parallel task of [`recommend`].
const QUERIES_PER_TASK: usize = 64;

/// [`recommend`] scans a query's whole score row when its neighbours hold at least
/// `n_items / DENSE_REACH` entries: the row's block maxima are one vector pass, cheaper than
/// tracking that many touched items (measured best at 8 among 2-128, at 10^4 and 10^5 items).
const DENSE_REACH: usize = 8;

/// Scores per block of [`select_blocks`], tested against the bound by their maximum first.
const SCAN_BLOCK: usize = 64;

/// Per-thread state of [`recommend`].
struct RecommendScratch {
    /// One query's scores, all zero between queries.
    scores: Vec<f32>,
    seen: Seen,
    touched: Vec<u32>,
    heap: TopK,
    /// The touched scores, gathered.
    values: Vec<f32>,
    /// The maximum of every [`SCAN_BLOCK`] scores ([`RowBlockMaxima`]).
    maxima: Vec<f32>,
}

/// The best `heap.k` of `values` (the scores of items `item(e)`; NaN never selected) into `heap`
/// (emptied first), looking at few of them: the maximum of every [`SCAN_BLOCK`] values (NaN
/// ignored) first; the k-th largest of those bounds the k-th best value from below (k blocks
/// each hold a value that large), so the blocks and values below it are skipped, and so are the
/// blocks below the selection's threshold once it holds k (it only rises). Same selection as
/// offering every value to the heap, ties included (values equal to the bound are offered).
/// Returns how many of `values` are NaN.
#[inline]
fn select_blocks(
    arch: Arch,
    values: &[f32],
    item: impl Fn(usize) -> u32,
    maxima: &mut Vec<f32>,
    heap: &mut TopK,
) -> usize {
    let nan = arch.dispatch(RowBlockMaxima { values, maxima });
    heap.clear();
    for (b, &m) in maxima.iter().enumerate() {
        if m >= heap.threshold() {
            heap.push(m, b as u32);
        }
    }
    let bound = heap.threshold();
    heap.clear();
    // the bar a value must reach: the bound, or the selection's threshold once higher
    let mut bar = bound;
    for (b, block) in values.chunks(SCAN_BLOCK).enumerate() {
        if maxima[b] < bar {
            continue;
        }
        for (o, &v) in block.iter().enumerate() {
            if v >= bar {
                heap.push(v, item(b * SCAN_BLOCK + o));
                bar = bar.max(heap.threshold());
            }
        }
    }
    nan
}

/// The largest score of every [`SCAN_BLOCK`] scores of `values` into `maxima`, ignoring NaN
/// (the marks of liked and excluded items), in vector lanes. The running maximum is taken as
/// `max(value, running)`: x86's `max` returns its second operand when either is NaN, so a NaN
/// value leaves the running maximum as it was; where `max` propagates NaN instead (NEON) the
/// block's maximum is NaN, which never falls below a threshold, so that block is scanned in full.
/// Either way no block is reported lower than its largest non-NaN score. Counts the NaN on the
/// way (the output): a lane compared unequal to itself.
struct RowBlockMaxima<'a> {
    values: &'a [f32],
    maxima: &'a mut Vec<f32>,
}

impl WithSimd for RowBlockMaxima<'_> {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> usize {
        let RowBlockMaxima { values, maxima } = self;
        maxima.clear();
        // the NaN per lane, and those of the tails
        let mut nan = simd.splat_u32s(0);
        let mut nan_tails = 0;
        for block in values.chunks(SCAN_BLOCK) {
            let (vecs, tail) = S::as_simd_f32s(block);
            let (mut m0, mut m1) = (
                simd.splat_f32s(f32::NEG_INFINITY),
                simd.splat_f32s(f32::NEG_INFINITY),
            );
            let mut k = 0;
            while k + 2 <= vecs.len() {
                m0 = simd.max_f32s(vecs[k], m0);
                m1 = simd.max_f32s(vecs[k + 1], m1);
                nan = count_nan(simd, vecs[k], nan);
                nan = count_nan(simd, vecs[k + 1], nan);
                k += 2;
            }
            if k < vecs.len() {
                m0 = simd.max_f32s(vecs[k], m0);
                nan = count_nan(simd, vecs[k], nan);
            }
            let mut top = simd.reduce_max_f32s(simd.max_f32s(m1, m0));
            for &v in tail {
                if v > top {
                    top = v;
                }
                nan_tails += v.is_nan() as usize;
            }
            maxima.push(top);
        }
        let mut lanes = [0u32; 16];
        let (head, _) = S::as_mut_simd_u32s(&mut lanes[..S::F32_LANES]);
        head[0] = nan;
        lanes.iter().map(|&c| c as usize).sum::<usize>() + nan_tails
    }
}

/// `count` plus one in the lanes where `v` is NaN (unequal to itself).
#[inline(always)]
fn count_nan<S: Lanes>(simd: S, v: S::f32s, count: S::u32s) -> S::u32s {
    let (zero, one) = (simd.splat_u32s(0), simd.splat_u32s(1));
    simd.add_u32s(count, simd.select_u32s(simd.equal_f32s(v, v), zero, one))
}

/// Recommendations from `similarity` (items x items) for the rows of `queries` (users x items):
/// for every query the best `min(k, candidates.available())` items by `score_j = sum over the
/// row's items i of r_i * S[i, j]` (items no neighbour reaches score 0), skipping the
/// candidates' excluded items and, when `liked` is given (one row per query), the items of the
/// query's row; ties go to the lower item id, rows with fewer candidates left are padded. The
/// same results as [`KnnScorer::recommend`] through [`crate::topk::recommend_batch`], but only
/// the items a query's neighbours reach are scored and selected: that driver scores whole rows
/// of `n_items` and scans them, which at 10^5 items and more costs far more than the few
/// thousand items a user's neighbours touch. A query whose touched items cannot fill `k` places
/// with positive scores (a zero-scored untouched item could then rank) falls back to the whole
/// row. With an `items` subset use [`KnnScorer`] (this returns an error).
pub fn recommend(
    queries: &CsrView<'_>,
    similarity: &CsrView<'_>,
    candidates: &Candidates,
    liked: Option<&CsrView<'_>>,
    k: usize,
    num_threads: usize,
) -> Result<TopKResult> {
    let n_items = similarity.n_cols();
    if queries.n_cols() != similarity.n_rows() {
        return Err(Error::shape(
            "user_items columns (items)",
            similarity.n_rows(),
            queries.n_cols(),
        ));
    }
    check_square(similarity, candidates)?;
    if candidates.subset().is_some() {
        return Err(Error::invalid(
            "items",
            "the sparse kNN scorer takes every item as a candidate",
        ));
    }
    let nq = queries.n_rows();
    if let Some(l) = liked {
        if l.n_rows() != nq {
            return Err(Error::shape(
                "user_items rows (one per query)",
                nq,
                l.n_rows(),
            ));
        }
        if l.n_cols() != n_items {
            return Err(Error::shape(
                "user_items columns (items)",
                n_items,
                l.n_cols(),
            ));
        }
    }
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
    let excluded = candidates.excluded();
    let (excluded_bits, n_excluded) = if excluded.is_empty() {
        (None, 0)
    } else {
        let mut bits = Seen::new(n_items, "the excluded items' bitmap")?;
        let distinct = excluded
            .iter()
            .filter(|&&j| bits.first_visit(j as usize))
            .count();
        (Some(bits), distinct)
    };
    let arch = Arch::new();
    let stop = parallel::stop_flag();
    let failed = parallel::FirstError::default();
    let what = "the per-thread score rows";
    let last = queries.row_range(nq - 1).end;
    parallel::for_each_block(
        num_threads,
        &mut ids,
        &mut scores,
        k,
        QUERIES_PER_TASK,
        || -> Option<RecommendScratch> {
            let made = (|| {
                Ok(RecommendScratch {
                    scores: try_zeroed(n_items, what, || format!("{n_items} items"))?,
                    seen: Seen::new(n_items, what)?,
                    touched: Vec::new(),
                    heap: TopK::new(k),
                    values: Vec::new(),
                    maxima: Vec::new(),
                })
            })();
            made.map_err(|e: Error| failed.record(e)).ok()
        },
        |s, task, ids_b, scores_b| {
            let Some(s) = s else { return };
            if stop.is_set() {
                return;
            }
            let q0 = task * QUERIES_PER_TASK;
            for (q, (ids_q, scores_q)) in
                ids_b.chunks_mut(k).zip(scores_b.chunks_mut(k)).enumerate()
            {
                let q = q0 + q;
                let liked_q = liked.map_or(&[][..], |l| l.row(q).0);
                // the liked items (and, on a whole row, the excluded ones) are marked
                // NaN in the scores (never selected: NaN compares false, and block
                // maxima ignore it) instead of searched for in every candidate's turn;
                // the row is all zero again after each selection
                let mark = |scores: &mut [f32], value: f32, excluded: &[u32]| {
                    for &j in liked_q {
                        scores[j as usize] = value;
                    }
                    for &j in excluded {
                        scores[j as usize] = value;
                    }
                };
                let (row_items, row_values) = queries.row(q);
                // the query's items, then the next queries' (whose similarity rows are
                // requested ahead across the query's end)
                let upcoming = &queries.indices()[queries.row_range(q).start..last];
                // entries the query's neighbours hold: against the catalogue, whether
                // to track the touched items or scan the whole row
                let reach: usize = row_items
                    .iter()
                    .map(|&i| similarity.row_range(i as usize).len())
                    .sum();
                let mut whole = reach.saturating_mul(DENSE_REACH) >= n_items;
                if !whole {
                    scatter_row(similarity, row_items, row_values, upcoming, s, true);
                    mark(&mut s.scores, f32::NAN, &[]);
                    // the touched scores gathered in touched order (the row zeroed),
                    // excluded ones as NaN (tested in a bitmap: marking a long filter
                    // list in every row would cost more than the touched items)
                    s.values.clear();
                    let mut nan = 0usize; // NaN read back: the touched liked items, or overflows
                    s.values.extend(s.touched.iter().map(|&j| {
                        let v = std::mem::take(&mut s.scores[j as usize]);
                        match &excluded_bits {
                            Some(bits) if bits.has(j as usize) => f32::NAN,
                            _ => {
                                nan += v.is_nan() as usize;
                                v
                            }
                        }
                    }));
                    // the liked items nobody touched
                    mark(&mut s.scores, 0.0, &[]);
                    // more NaN than touched liked items: a sum overflowed in both directions
                    if nan > 0
                        && nan > count_marked(liked_q, excluded_bits.as_ref(), |j| s.seen.has(j))
                    {
                        failed.record(score_overflow());
                    }
                    s.seen.clear(&s.touched);
                    let touched = &s.touched;
                    select_blocks(arch, &s.values, |e| touched[e], &mut s.maxima, &mut s.heap);
                    whole = s.heap.len() < k || s.heap.threshold() <= 0.0;
                }
                if whole {
                    // a heavy query, or zero-scored items may rank: score the whole
                    // row as the dense scorer does (the same sums in the same order)
                    scatter_row(similarity, row_items, row_values, upcoming, s, false);
                    mark(&mut s.scores, f32::NAN, excluded);
                    let nan =
                        select_blocks(arch, &s.scores, |e| e as u32, &mut s.maxima, &mut s.heap);
                    s.scores.fill(0.0);
                    // more NaN than marked items: a sum overflowed in both directions
                    if nan > n_excluded + count_marked(liked_q, excluded_bits.as_ref(), |_| true) {
                        failed.record(score_overflow());
                    }
                }
                s.heap.write_sorted(ids_q, scores_q);
                // a selected score that is not finite overflowed float32 (the similarity and
                // the row's weights are finite); a NaN one (an overflow in both directions) is
                // never selected: counted above, beside the NaN marks
                if scores_q
                    .iter()
                    .zip(&*ids_q)
                    .any(|(v, &j)| j >= 0 && !v.is_finite())
                {
                    failed.record(score_overflow());
                }
            }
        },
    )?;
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

/// The best `min(k, candidates.available())` stored neighbours of each item of `items` among
/// the candidates: row `i` of `similarity` read as scores, best first, ties to the lower item id,
/// padded with id -1 and score `-inf` where a row holds fewer. Reads the rows only (what scoring
/// whole rows of `n_items`, as the dense driver does, would give: only stored entries can rank).
pub fn neighbours(
    items: &[i32],
    similarity: &CsrView<'_>,
    candidates: &Candidates,
    k: usize,
    num_threads: usize,
) -> Result<TopKResult> {
    check_square(similarity, candidates)?;
    let n = similarity.n_rows();
    if let Some(&bad) = items.iter().find(|&&i| i < 0 || i as usize >= n) {
        return Err(Error::out_of_range("itemid", bad as i64, n));
    }
    let k = k.min(candidates.available());
    let nq = items.len();
    let mut ids = filled(nq, k, -1i32)?;
    let mut scores = filled(nq, k, f32::NEG_INFINITY)?;
    if k == 0 {
        return Ok(TopKResult {
            n_queries: nq,
            k,
            ids,
            scores,
        });
    }
    let excluded = candidates.excluded();
    let stop = parallel::stop_flag();
    parallel::for_each_block(
        num_threads,
        &mut ids,
        &mut scores,
        k,
        QUERIES_PER_TASK,
        || TopK::new(k),
        |heap, block, ids_b, scores_b| {
            if stop.is_set() {
                return;
            }
            let items_b = &items[block * QUERIES_PER_TASK..];
            for ((ids_q, scores_q), &i) in
                ids_b.chunks_mut(k).zip(scores_b.chunks_mut(k)).zip(items_b)
            {
                heap.clear();
                let (cols, vals) = similarity.row(i as usize);
                for (&j, &v) in cols.iter().zip(vals) {
                    if v < heap.threshold() {
                        continue;
                    }
                    let Some(p) = candidates.position(j as u32) else {
                        continue;
                    };
                    if !sorted_contains(excluded, p) {
                        heap.push(v, j as u32);
                    }
                }
                heap.write_sorted(ids_q, scores_q);
            }
        },
    )?;
    stop.check()?;
    Ok(TopKResult {
        n_queries: nq,
        k,
        ids,
        scores,
    })
}

/// How many of the `liked` items (a canonical row: no duplicates) that are not `excluded` (those
/// are counted apart) `pass`.
fn count_marked(liked: &[i32], excluded: Option<&Seen>, pass: impl Fn(usize) -> bool) -> usize {
    liked
        .iter()
        .filter(|&&j| !excluded.is_some_and(|b| b.has(j as usize)) && pass(j as usize))
        .count()
}

/// Adds `r_i * S[i, :]` for every `(i, r_i)` of a query's row into `s.scores`, in the row's
/// order; with `track`, lists the items reached in `s.touched` (marked in `s.seen`).
///
/// `upcoming` starts with `row_items` and goes on with the next queries' items: the similarity
/// row [`AHEAD`] items on, across the query's end, is requested into the second-level cache
/// while a row is added, a line of each of its arrays for every line of the row added. All of
/// its lines requested at once waited for the first level's miss buffers, which the scatter's
/// own misses hold (the fifteenth session had moved them from the first level to the second:
/// power-law 1M x 1M 1.37 -> 1.08 s); and a query's first rows were never requested (50,000
/// queries, 2 threads, CPU s: clustered 300k x 100k 0.549 -> 0.467, clustered 1M x 1M 1.074 ->
/// 0.961, power-law 1M x 1M 1.620 -> 1.382; RESULTS.md, "kNN recommend: rows ahead requested
/// line by line").
#[inline]
fn scatter_row(
    similarity: &CsrView<'_>,
    row_items: &[i32],
    row_values: &[f32],
    upcoming: &[i32],
    s: &mut RecommendScratch,
    track: bool,
) {
    s.touched.clear();
    let scores = &mut s.scores[..similarity.n_cols()];
    for (n, (&i, &r)) in row_items.iter().zip(row_values).enumerate() {
        let (cols, vals) = similarity.row(i as usize);
        let mut ahead = Ahead::of(similarity, upcoming, n);
        if track {
            // branch-free, as in the fit
            s.touched.reserve(cols.len());
            let list = s.touched.as_mut_ptr();
            let mut n = s.touched.len();
            for (cj, cv) in cols.chunks(LINE).zip(vals.chunks(LINE)) {
                ahead.request();
                for (&j, &v) in cj.iter().zip(cv) {
                    // SAFETY: n < len + cols.len(), within the capacity just reserved.
                    unsafe { list.add(n).write(j as u32) };
                    // SAFETY: the similarity is a validated `CsrView`: j < n_cols == scores.len().
                    unsafe { *scores.get_unchecked_mut(j as usize) += r * v };
                    n += s.seen.first_visit(j as usize) as usize;
                }
            }
            // SAFETY: the first `n` entries are written.
            unsafe { s.touched.set_len(n) };
        } else {
            for (cj, cv) in cols.chunks(LINE).zip(vals.chunks(LINE)) {
                ahead.request();
                for (&j, &v) in cj.iter().zip(cv) {
                    // SAFETY: as above.
                    unsafe { *scores.get_unchecked_mut(j as usize) += r * v };
                }
            }
        }
        // the lines a shorter row left
        while ahead.request() {}
    }
}

/// A similarity row requested into the second-level cache a line (of each array) at a time.
#[derive(Default)]
struct Ahead<'a> {
    js: &'a [i32],
    ws: &'a [f32],
    line: usize,
}

impl<'a> Ahead<'a> {
    /// The first 32 lines of each array (as [`prefetch_row`]) of the row of `items[n + AHEAD]`
    /// (none past the end of `items`). Requests the row pointer of `items[n + 4 AHEAD]` too:
    /// at 1M items the row pointers (8 MB) miss the cache, and finding a row to request waited
    /// for them (CPU s: clustered 1M x 1M 1.064 -> 0.995, power-law 1.445 -> 1.296).
    #[inline(always)]
    fn of(similarity: &CsrView<'a>, items: &[i32], n: usize) -> Self {
        if let Some(&far) = items.get(n + 4 * AHEAD) {
            prefetch_to::<L2, i64>(&similarity.indptr()[far as usize]);
        }
        let Some(&a) = items.get(n + AHEAD) else {
            return Ahead::default();
        };
        let (js, ws) = similarity.row(a as usize);
        let n = js.len().min(32 * LINE);
        Ahead {
            js: &js[..n],
            ws: &ws[..n],
            line: 0,
        }
    }

    /// Requests the next line of each array; false when none was left.
    #[inline(always)]
    fn request(&mut self) -> bool {
        let at = self.line * LINE;
        if at >= self.js.len() {
            return false;
        }
        prefetch_to::<L2, i32>(self.js[at..].as_ptr());
        prefetch_to::<L2, f32>(self.ws[at..].as_ptr());
        self.line += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::tests::archs;

    /// A xorshift generator from `seed` (non-zero).
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// The block maxima's NaN count (vector lanes, and the tails of blocks and of the row) on
    /// every instruction set, against counting one by one; no block's maximum below its largest
    /// non-NaN value.
    #[test]
    fn block_maxima_count_the_nan() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for arch in archs() {
            for n in [0, 1, 15, 16, 17, 63, 64, 65, 130, 1000] {
                for nan_every in [1, 2, 7, 1000] {
                    let values: Vec<f32> = (0..n)
                        .map(|_| match next() % nan_every {
                            0 => f32::NAN,
                            r => r as f32 - (nan_every / 2) as f32,
                        })
                        .collect();
                    let mut maxima = Vec::new();
                    let nan = arch.dispatch(RowBlockMaxima {
                        values: &values,
                        maxima: &mut maxima,
                    });
                    let want = values.iter().filter(|v| v.is_nan()).count();
                    assert_eq!(nan, want, "{arch:?} n={n}");
                    for (block, &m) in values.chunks(SCAN_BLOCK).zip(&maxima) {
                        let top = block
                            .iter()
                            .copied()
                            .filter(|v| !v.is_nan())
                            .reduce(f32::max);
                        assert!(m.is_nan() || top.is_none_or(|t| m >= t), "{arch:?} n={n}");
                    }
                }
            }
        }
    }

    /// Two communities of users, each using only its own items (item and user parity), one
    /// anchor per 31 users: above the small-catalogue size every group holds one community's
    /// items (the community changes at most once per group boundary along the labels, where the
    /// popularity order changes it at every other label); at or below it, the popularity order.
    /// A tracked row's selection (the histogram of `select_touched`) against sorting its values
    /// by f32 comparisons: ties (equal values of different items, and sums that round to the same
    /// f32), zeros and NaN (never kept), negative values, -inf, rows with fewer values than k,
    /// labels mapped to items by a permutation; the sums and the bins are left zero.
    #[test]
    fn select_touched_keeps_the_best_k() {
        let n = 5000;
        let mut next = xorshift(11);
        let mut order: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let mut bins = vec![0u32; BINS];
        let (mut gathered, mut keys) = (Vec::new(), Vec::new());
        for (len, k) in [
            (0, 5),
            (3, 10),
            (50, 10),
            (1000, 100),
            (4000, 7),
            (4000, 3000),
        ] {
            let mut labels: Vec<u32> = (0..n as u32).collect();
            for i in (1..n).rev() {
                labels.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            let touched = &labels[..len];
            let mut acc = vec![0.0f64; n];
            for &j in touched {
                acc[j as usize] = match next() % 8 {
                    0 => 0.0,
                    1 => f64::NAN,
                    2 => -((next() % 50) as f64),
                    3 => 1.0 + 1e-12 * (next() % 3) as f64,
                    4 => f64::MIN,
                    _ => (next() % 100) as f64 / 7.0,
                };
            }
            let mut expected: Vec<(f32, u32)> = touched
                .iter()
                .map(|&j| (acc[j as usize], order[j as usize]))
                .filter(|&(v, _)| v != 0.0 && !v.is_nan())
                .map(|(v, item)| (v as f32, item))
                .collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            expected.truncate(k);
            select_touched(
                &mut acc,
                touched,
                &mut gathered,
                &mut bins,
                &order,
                k,
                &mut keys,
            );
            keys.sort_unstable();
            let got: Vec<(f32, u32)> = keys.iter().map(|&key| from_rank_key(key)).collect();
            assert_eq!(got, expected, "{len} values, k={k}");
            assert!(acc.iter().all(|&v| v == 0.0) && bins.iter().all(|&c| c == 0));
        }
    }

    #[test]
    fn locality_order_groups_items_that_share_users() {
        let (n_users, n_items) = (2000usize, SMALL_CATALOGUE + 7000);
        let mut t = Vec::new();
        let mut s = 7u64;
        for u in 0..n_users {
            // the user's anchor, one of the items 0..64 of its parity
            t.push((2 * ((u / 2) % 32) + u % 2, u, 1.0));
        }
        for i in ANCHORS..n_items {
            for _ in 0..5 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = 2 * ((s >> 33) as usize % (n_users / 2)) + i % 2;
                t.push((i, u, 1.0));
            }
        }
        let community = |i: u32| i % 2;
        for n in [n_items, SMALL_CATALOGUE] {
            let part: Vec<_> = t.iter().copied().filter(|e| e.0 < n).collect();
            let items = Csr::from_triplets(n, n_users, &part).unwrap(); // ok: test data, valid
            let order = locality_order(&items.view(), 2).unwrap(); // ok: test, small inputs
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert!(sorted.iter().copied().eq(0..n as u32));
            let switches = order
                .windows(2)
                .filter(|w| community(w[0]) != community(w[1]))
                .count();
            if n > SMALL_CATALOGUE {
                assert!(switches < ANCHORS, "{switches}");
            } else {
                let pop = |j: u32| items.view().row_range(j as usize).len();
                assert!(order
                    .windows(2)
                    .all(|w| (pop(w[0]), w[0]) < (pop(w[1]), w[1])));
                assert!(switches > n / 4, "{switches}");
            }
        }
    }

    /// The symmetric fit (each product once, offered to the row below the diagonal) gives the
    /// same similarity as the rows' own full sums, to the bit: every similarity it runs, signed
    /// values with ties and repeated sums, light and dense rows, K from 1 (a compaction every
    /// other offer) to the whole catalogue, any thread count.
    #[test]
    fn symmetric_fit_equals_the_rows_fit() {
        let mut next = xorshift(5);
        for (nu, ni, per_user) in [(40, 9, 4), (700, 301, 30), (300, 130, 90), (3000, 1500, 40)] {
            let mut t = Vec::new();
            for u in 0..nu {
                let mut cols: Vec<usize> = (0..1 + next() as usize % per_user)
                    .map(|_| {
                        // skewed popularity: small ids far more often
                        let x = (next() % 1_000_000) as f64 / 1e6;
                        (((ni as f64 + 1.0).powf(x) - 1.0) as usize).min(ni - 1)
                    })
                    .collect();
                cols.sort_unstable();
                cols.dedup();
                for c in cols {
                    // few distinct values: tied sums; negatives where the similarity allows
                    t.push((
                        u,
                        (c * 7 + 3) % ni,
                        1.0 + (next() % 4) as f32,
                        next().is_multiple_of(5),
                    ));
                }
            }
            let unsigned: Vec<_> = t.iter().map(|&(u, c, v, _)| (u, c, v)).collect();
            let signed: Vec<_> = t
                .iter()
                .map(|&(u, c, v, neg)| (u, c, if neg { -v } else { v }))
                .collect();
            for sim in [
                Similarity::Dot,
                Similarity::Cosine,
                Similarity::TfIdf,
                Similarity::Bm25 { k1: 1.2, b: 0.75 },
            ] {
                let entries = match sim {
                    Similarity::Dot | Similarity::Cosine => &signed,
                    _ => &unsigned,
                };
                let x = Csr::from_triplets(nu, ni, entries).unwrap(); // ok: test data, valid
                for k in [1, 7, ni / 4, ni] {
                    let params = KnnParams { k, similarity: sim };
                    let rows = fit(&x.view(), &params, 1, Some(false)).unwrap(); // ok: test
                    for threads in [1, 3] {
                        let sym = fit(&x.view(), &params, threads, Some(true)).unwrap(); // ok: test
                        assert!(sym == rows, "{sim:?} {nu}x{ni} K={k} threads={threads}");
                    }
                }
            }
        }
    }
}
