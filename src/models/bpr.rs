//! Bayesian Personalised Ranking (Rendle et al. 2009) by SGD over sampled (user, positive,
//! negative) triples, with implicit 0.7's update rule.
//!
//! Layout (as implicit's): user rows hold `f` factors and a constant 1, item rows `f` factors and
//! the item bias, so `x_u . y_i = latent score + b_i`. For a triple (u, i, j) with
//! `z = sigma(-(x_u . (y_i - y_j)))` and weight `w` (1, or the stored value):
//! `x_u += lr (w z (y_i - y_j) - reg x_u)`, `y_i += lr (w z x_u - reg y_i)`,
//! `y_j += lr (-w z x_u - reg y_j)` (old `x_u` on the right), the bias with `x_u`'s 1.
//!
//! Two schedules of an epoch (nnz samples):
//! - hogwild: each thread draws its share of samples and updates shared rows without locks;
//! - reproducible: users and items are split into S strata ([`strata`]: one per 64 items, at
//!   most 32; it depends only on the data; users by id modulo S, items by a shuffle drawn from
//!   the epoch's seed); in each of S rounds the blocks (p, (p + round) mod S) run in parallel,
//!   each drawing as many samples as it holds interactions, its negatives from its own item
//!   stratum. Concurrent blocks touch disjoint rows
//!   and every block has its own generator, so the factors are bit-identical for any thread
//!   count (distributed SGD, Gemulla et al. 2011); and a block's rows stay in cache, which makes
//!   this schedule the faster one.

use super::sgd::{
    column_counts, column_popularity, popularity, stream, Alias, AliasEntry, Negatives, SharedRows,
};
use crate::error::{try_ids, try_vec, try_zeroed, Error, Result};
use crate::parallel::{self, Stop};
use crate::simd::{load_tail, prefetch, sgd_arch, store_tail, vdot2, Lanes, WithSimd};
use crate::sparse::CsrView;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;

/// Strata per side in the reproducible schedule for `n_items` items: one per 64 items (so that a
/// stratum offers enough negatives), at most 32. A function of the data only, never of the
/// thread count.
pub fn strata(n_items: usize) -> usize {
    (n_items / 64).clamp(1, 32)
}

/// How negatives are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// The item of a uniformly drawn stored interaction (by popularity; implicit's way).
    Popularity,
    /// Uniform over items.
    Uniform,
}

crate::names::by_name! { Sampling, "negative_sampling",
    "popularity" => Popularity,
    "uniform" => Uniform,
}

/// Parameters of an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BprParams {
    pub learning_rate: f32,
    pub regularization: f32,
    /// Redraw a negative the user has (found by binary search in the sorted row).
    pub verify_negative_samples: bool,
    /// Redraws of such a negative before the sample is skipped.
    pub max_redraws: usize,
    pub sampling: Sampling,
    /// Multiply each sample's loss gradient by the interaction's stored value.
    pub use_weights: bool,
    /// The reproducible schedule instead of hogwild.
    pub deterministic: bool,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            learning_rate: 0.01,
            regularization: 0.01,
            verify_negative_samples: true,
            max_redraws: 0,
            sampling: Sampling::Popularity,
            use_weights: false,
            deterministic: true,
        }
    }
}

/// Counts of an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EpochStats {
    pub samples: u64,
    /// Trained samples whose positive already outscored the negative.
    pub correct: u64,
    /// Samples dropped because every draw of the negative was an item the user has.
    pub skipped: u64,
    /// Negatives drawn again because the user has them.
    pub redrawn: u64,
}

impl EpochStats {
    fn add(mut self, o: EpochStats) -> Self {
        self.samples += o.samples;
        self.correct += o.correct;
        self.skipped += o.skipped;
        self.redrawn += o.redrawn;
        self
    }
}

/// One SGD step on a triple; returns whether the positive already ranked above the negative.
#[inline(always)]
fn step<S: Lanes>(
    simd: S,
    x: &mut [f32],
    yi: &mut [f32],
    yj: &mut [f32],
    lr: f32,
    reg: f32,
    w: f32,
) -> bool {
    let d = x.len();
    let (yi, yj) = (&mut yi[..d], &mut yj[..d]);
    let (si, sj) = vdot2(simd, x, yi, yj);
    let z = 1.0 / (1.0 + (si - sj).exp());
    let g = w * z;
    let f = d - 1;
    let (xh, xt) = S::as_mut_simd_f32s(&mut x[..f]);
    let (ah, at) = S::as_mut_simd_f32s(&mut yi[..f]);
    let (bh, bt) = S::as_mut_simd_f32s(&mut yj[..f]);
    let (vlr, vreg) = (simd.splat_f32s(lr), simd.splat_f32s(reg));
    let (vg, vng) = (simd.splat_f32s(g), simd.splat_f32s(-g));
    // x += lr (g (a - b) - reg x), a += lr (g x - reg a), b += lr (-g x - reg b)
    for ((xk, a), b) in xh.iter_mut().zip(ah.iter_mut()).zip(bh.iter_mut()) {
        (*xk, *a, *b) = triple_update(simd, vlr, vreg, vg, vng, *xk, *a, *b);
    }
    if !xt.is_empty() {
        let (x, a, b) = triple_update(
            simd,
            vlr,
            vreg,
            vg,
            vng,
            load_tail(simd, xt),
            load_tail(simd, at),
            load_tail(simd, bt),
        );
        store_tail(simd, xt, x);
        store_tail(simd, at, a);
        store_tail(simd, bt, b);
    }
    yi[f] += lr * (g - reg * yi[f]);
    yj[f] += lr * (-g - reg * yj[f]);
    z < 0.5
}

/// [`step`] on one vector of the triple's rows: `x += lr (g (a - b) - reg x)`,
/// `a += lr (g x - reg a)`, `b += lr (neg_g x - reg b)` (the old `x` on the right).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn triple_update<S: Lanes>(
    simd: S,
    lr: S::f32s,
    reg: S::f32s,
    g: S::f32s,
    neg_g: S::f32s,
    x: S::f32s,
    a: S::f32s,
    b: S::f32s,
) -> (S::f32s, S::f32s, S::f32s) {
    let dx = simd.sub_f32s(simd.mul_f32s(g, simd.sub_f32s(a, b)), simd.mul_f32s(reg, x));
    let da = simd.sub_f32s(simd.mul_f32s(g, x), simd.mul_f32s(reg, a));
    let db = simd.sub_f32s(simd.mul_f32s(neg_g, x), simd.mul_f32s(reg, b));
    (
        simd.mul_add_e_f32s(lr, dx, x),
        simd.mul_add_e_f32s(lr, da, a),
        simd.mul_add_e_f32s(lr, db, b),
    )
}

/// A negative for user row `liked` (sorted item ids) and positive `i`: a draw that is not `i`
/// (and, when verifying, not in `liked`), or `None` once `max_redraws` redraws are spent.
#[inline(always)]
fn negative(
    rng: &mut SmallRng,
    neg: &Negatives<'_>,
    liked: &[i32],
    i: u32,
    p: &BprParams,
    stats: &mut EpochStats,
    first: Option<u32>,
) -> Option<u32> {
    // a user who has every item `neg` can draw (all of them, or all of its stratum) has no
    // negative: skipped at once, however many redraws are allowed
    if p.verify_negative_samples && liked.len() >= neg.len() {
        return None;
    }
    for attempt in 0..=p.max_redraws {
        if attempt > 0 {
            stats.redrawn += 1;
        }
        let j = match first {
            Some(j) if attempt == 0 => j,
            _ => neg.draw(rng),
        };
        if j != i && !(p.verify_negative_samples && liked.binary_search(&(j as i32)).is_ok()) {
            return Some(j);
        }
    }
    None
}

struct Epoch<'a> {
    m: &'a CsrView<'a>,
    x: SharedRows,
    y: SharedRows,
    p: BprParams,
    stop: Stop,
}

/// Samples between two checks of the stop flag.
const CHECK_EVERY: usize = 4096;

/// Runs one sample on (u, i) with weight `w`; `liked` holds (at least) the user's items among
/// those `neg` can draw, sorted.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sample<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    rng: &mut SmallRng,
    neg: &Negatives<'_>,
    liked: &[i32],
    u: usize,
    i: u32,
    w: f32,
    stats: &mut EpochStats,
    first: Option<u32>,
) {
    stats.samples += 1;
    let Some(j) = negative(rng, neg, liked, i, &e.p, stats, first) else {
        stats.skipped += 1;
        return;
    };
    train(simd, e, u, i, j, w, stats);
}

/// The SGD step of sample (u, i, j) with weight `w`.
#[inline(always)]
fn train<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    u: usize,
    i: u32,
    j: u32,
    w: f32,
    stats: &mut EpochStats,
) {
    // SAFETY: three distinct rows (j != i, and x is another matrix); concurrent updates by other
    // threads are the hogwild algorithm, or excluded by the reproducible schedule.
    let (xu, yi, yj) = unsafe {
        (
            e.x.row_mut(u),
            e.y.row_mut(i as usize),
            e.y.row_mut(j as usize),
        )
    };
    let w = if e.p.use_weights { w } else { 1.0 };
    if step(simd, xu, yi, yj, e.p.learning_rate, e.p.regularization, w) {
        stats.correct += 1;
    }
}

/// A hogwild thread's share: `n` samples of uniformly drawn stored interactions.
#[inline(always)]
fn hogwild_share<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    row_of: &[u32],
    table: &Alias,
    rng: &mut SmallRng,
    n: u64,
) -> EpochStats {
    let (indices, data) = (e.m.indices(), e.m.data());
    let neg = match e.p.sampling {
        Sampling::Popularity => Negatives::Weighted { table, ids: None },
        Sampling::Uniform => Negatives::Uniform {
            count: e.m.n_cols() as u32,
            ids: None,
        },
    };
    // Random samples miss the cache on their entries and rows: draw each sample 2 * AHEAD
    // samples early and request its entries; AHEAD samples early read them, draw the first
    // negative and request the three factor rows and the user's CSR row.
    const AHEAD: usize = 4;
    const RING: usize = 16;
    let n = n as usize;
    let (mut ks, mut firsts) = ([0usize; RING], [0u32; RING]);
    let stage1 = |rng: &mut SmallRng, ks: &mut [usize; RING], t: usize| {
        let k = rng.random_range(0..indices.len());
        ks[t % RING] = k;
        prefetch(row_of.as_ptr().wrapping_add(k));
        prefetch(indices.as_ptr().wrapping_add(k));
    };
    let stage2 = |rng: &mut SmallRng, ks: &[usize; RING], firsts: &mut [u32; RING], t: usize| {
        let k = ks[t % RING];
        let u = row_of[k] as usize;
        let j = neg.draw(rng);
        firsts[t % RING] = j;
        e.x.prefetch_row(u);
        e.y.prefetch_row(indices[k] as usize);
        e.y.prefetch_row(j as usize);
        prefetch(indices.as_ptr().wrapping_add(e.m.row_range(u).start));
    };
    for t in 0..n.min(2 * AHEAD) {
        stage1(rng, &mut ks, t);
    }
    for t in 0..n.min(AHEAD) {
        stage2(rng, &ks, &mut firsts, t);
    }
    let mut stats = EpochStats::default();
    for t in 0..n {
        if t % CHECK_EVERY == 0 && e.stop.is_set() {
            break;
        }
        if t + 2 * AHEAD < n {
            stage1(rng, &mut ks, t + 2 * AHEAD);
        }
        if t + AHEAD < n {
            stage2(rng, &ks, &mut firsts, t + AHEAD);
        }
        let k = ks[t % RING];
        let u = row_of[k] as usize;
        let w = if e.p.use_weights { data[k] } else { 1.0 };
        sample(
            simd,
            e,
            rng,
            &neg,
            e.m.row(u).0,
            u,
            indices[k] as u32,
            w,
            &mut stats,
            Some(firsts[t % RING]),
        );
    }
    stats
}

/// [`hogwild_share`], dispatched on [`sgd_arch`]'s instruction set.
struct HogwildShare<'a, 'e> {
    e: &'a Epoch<'e>,
    row_of: &'a [u32],
    table: &'a Alias,
    rng: &'a mut SmallRng,
    n: u64,
}

impl WithSimd for HogwildShare<'_, '_> {
    type Output = EpochStats;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> EpochStats {
        hogwild_share(simd, self.e, self.row_of, self.table, self.rng, self.n)
    }
}

/// The interactions of the reproducible schedule grouped by block (block = p * s + q), and the
/// items of each stratum. Users fall in stratum `u mod s`; items are dealt into strata by a
/// shuffle drawn from the epoch's seed, so that over the epochs a positive meets negatives from
/// the whole catalogue (a fixed partition would only ever contrast items of the same stratum).
/// Within a block the entries keep CSR order (by user, then item), so a user's items in the
/// block's stratum are a short sorted run next to any of its entries: negatives (drawn from that
/// stratum) are verified there, in cache, instead of in the user's whole row.
struct Blocks {
    /// Strata per side.
    s: usize,
    users: Vec<u32>,
    items: Vec<i32>,
    /// The stored values, kept only when they weight the samples (empty otherwise).
    values: Vec<f32>,
    starts: Vec<usize>,
    /// The items of each stratum.
    members: Vec<Vec<u32>>,
    /// Each stratum's items by interaction count (popularity negatives; `None`: no
    /// interactions, so no block of that stratum draws), resolved to item ids.
    popularity: Vec<Option<Vec<AliasEntry>>>,
}

fn blocks(m: &CsrView<'_>, seed: u64, use_weights: bool) -> Result<Blocks> {
    let (n_items, s) = (m.n_cols(), strata(m.n_cols()));
    let what = "the interactions grouped by block (deterministic=True)";
    let per_item = || format!("user_items has {n_items} columns (items)");
    let mut order = try_ids(n_items, what, per_item)?;
    order.shuffle(&mut stream(seed, u64::MAX, 3));
    // one byte per item (s <= 32), so that the map stays in cache while the entries are dealt
    let mut stratum: Vec<u8> = try_vec(n_items, 0, what, per_item)?;
    for (k, &i) in order.iter().enumerate() {
        stratum[i as usize] = (k % s) as u8;
    }
    let members: Vec<Vec<u32>> = (0..s)
        .map(|q| order.iter().skip(q).step_by(s).copied().collect())
        .collect();
    let mut counts = vec![0usize; s * s + 1];
    for u in 0..m.n_rows() {
        for &i in m.row(u).0 {
            counts[(u % s) * s + stratum[i as usize] as usize + 1] += 1;
        }
    }
    for b in 0..s * s {
        counts[b + 1] += counts[b];
    }
    let starts = counts.clone();
    let nnz = m.nnz();
    let per_entry = || format!("user_items has {nnz} stored entries");
    let mut users: Vec<u32> = try_zeroed(nnz, what, per_entry)?;
    let mut items: Vec<i32> = try_zeroed(nnz, what, per_entry)?;
    let mut values: Vec<f32> = try_zeroed(if use_weights { nnz } else { 0 }, what, per_entry)?;
    for u in 0..m.n_rows() {
        let (row_items, vals) = m.row(u);
        for (&i, &v) in row_items.iter().zip(vals) {
            let k = &mut counts[(u % s) * s + stratum[i as usize] as usize];
            (users[*k], items[*k]) = (u as u32, i);
            if use_weights {
                values[*k] = v;
            }
            *k += 1;
        }
    }
    let item_counts = column_counts(m.indices(), n_items)?;
    Ok(Blocks {
        s,
        users,
        items,
        values,
        starts,
        popularity: members
            .iter()
            .map(|ids| popularity(&item_counts, Some(ids)).map(|t| t.resolved(ids)))
            .collect(),
        members,
    })
}

/// One block of the reproducible schedule: as many samples as it holds interactions.
#[inline(always)]
fn block<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    bl: &Blocks,
    p: usize,
    q: usize,
    rng: &mut SmallRng,
) -> EpochStats {
    let b = p * bl.s + q;
    let range = bl.starts[b]..bl.starts[b + 1];
    let (users, items, values) = (
        &bl.users[range.clone()],
        &bl.items[range.clone()],
        bl.values.get(range).unwrap_or(&[]),
    );
    let mut stats = EpochStats::default();
    if users.is_empty() {
        return stats;
    }
    let neg = match (e.p.sampling, &bl.popularity[q]) {
        (Sampling::Popularity, Some(table)) => Negatives::Resolved(table),
        // a block holds interactions, so its stratum's table exists
        (Sampling::Popularity, None) => return stats,
        (Sampling::Uniform, _) => Negatives::Uniform {
            count: bl.members[q].len() as u32,
            ids: Some(&bl.members[q]),
        },
    };
    // What a sample trains depends only on the block's entries and the generator, never on
    // the factors: so the draws run AHEAD samples early, in the same order as one after the
    // other (the results are the same), and the three factor rows they pick are requested then.
    // Drawing is cheap and the rows are random: at large catalogues they come from memory.
    const AHEAD: usize = 6;
    const RING: usize = 8;
    let n = users.len();
    let mut ring = [Drawn::default(); RING];
    // The draws themselves read the block's entries and the negatives' table at random (each
    // a miss once the factor rows have pushed them out of L2). A copy of the generator runs
    // PEEK samples further on, predicting the next draws as a sample without redraws (the
    // sample position, then one 64-bit draw for the negative) and requesting what they will
    // read; a sample that consumed the generator otherwise (a redraw, or a user with the whole
    // stratum) restarts the copy. The copy only requests: the draws are made as before.
    const PEEK: usize = 8;
    let table = match neg {
        Negatives::Resolved(table) => Some(table),
        _ => None,
    };
    let mut ahead = table.map(|_| rng.clone());
    let peek = |la: &mut SmallRng| {
        let k = la.random_range(0..n);
        let r: u64 = la.random();
        prefetch(users.as_ptr().wrapping_add(k));
        prefetch(items.as_ptr().wrapping_add(k));
        if let Some(table) = table {
            prefetch(table.as_ptr().wrapping_add(Alias::slot(r, table.len())));
        }
    };
    if let Some(la) = ahead.as_mut() {
        (0..PEEK).for_each(|_| peek(la));
    }
    let draw = |rng: &mut SmallRng, stats: &mut EpochStats| -> Drawn {
        let redrawn = stats.redrawn;
        let k = rng.random_range(0..n);
        let u = users[k];
        // the user's run of entries around k: its items in this stratum
        let mut lo = k;
        while lo > 0 && users[lo - 1] == u {
            lo -= 1;
        }
        let mut hi = k + 1;
        while hi < n && users[hi] == u {
            hi += 1;
        }
        let i = items[k] as u32;
        stats.samples += 1;
        let j = negative(rng, &neg, &items[lo..hi], i, &e.p, stats, None);
        if j.is_none() {
            stats.skipped += 1;
        }
        Drawn {
            u,
            i,
            j: j.unwrap_or(NO_NEGATIVE),
            w: values.get(k).copied().unwrap_or(1.0),
            // one draw for the negative, as the copy predicts
            typical: stats.redrawn == redrawn
                && !(e.p.verify_negative_samples && hi - lo >= neg.len()),
        }
    };
    let mut follow = |rng: &SmallRng, s: &Drawn| {
        if let Some(la) = ahead.as_mut() {
            if s.typical {
                peek(la);
            } else {
                *la = rng.clone();
                (0..PEEK).for_each(|_| peek(la));
            }
        }
    };
    let request = |s: &Drawn| {
        if s.j != NO_NEGATIVE {
            e.x.prefetch_row(s.u as usize);
            e.y.prefetch_row(s.i as usize);
            e.y.prefetch_row(s.j as usize);
        }
    };
    for slot in ring.iter_mut().take(n.min(AHEAD)) {
        *slot = draw(rng, &mut stats);
        follow(rng, slot);
        request(slot);
    }
    for t in 0..n {
        if t % CHECK_EVERY == 0 && e.stop.is_set() {
            break;
        }
        if t + AHEAD < n {
            let slot = &mut ring[(t + AHEAD) % RING];
            *slot = draw(rng, &mut stats);
            follow(rng, slot);
            request(slot);
        }
        let s = ring[t % RING];
        if s.j != NO_NEGATIVE {
            train(simd, e, s.u as usize, s.i, s.j, s.w, &mut stats);
        }
    }
    stats
}

/// A sample of the reproducible schedule, drawn ahead of its training.
#[derive(Clone, Copy, Default)]
struct Drawn {
    u: u32,
    i: u32,
    /// The negative, or [`NO_NEGATIVE`]: the sample is skipped.
    j: u32,
    w: f32,
    /// Drawn as [`block`]'s copy of the generator predicts.
    typical: bool,
}

const NO_NEGATIVE: u32 = u32::MAX;

/// [`block`], dispatched on [`sgd_arch`]'s instruction set.
struct Block<'a, 'e> {
    e: &'a Epoch<'e>,
    bl: &'a Blocks,
    p: usize,
    q: usize,
    rng: &'a mut SmallRng,
}

impl WithSimd for Block<'_, '_> {
    type Output = EpochStats;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> EpochStats {
        block(simd, self.e, self.bl, self.p, self.q, self.rng)
    }
}

fn check_shapes(m: &CsrView<'_>, x: &[f32], y: &[f32], d: usize) -> Result<()> {
    if d < 2 {
        return Err(Error::invalid(
            "factors",
            "need at least one factor plus the bias column",
        ));
    }
    if x.len() != m.n_rows() * d {
        return Err(Error::shape(
            "user_factors",
            format!("{} x {d}", m.n_rows()),
            format!("{} values", x.len()),
        ));
    }
    if y.len() != m.n_cols() * d {
        return Err(Error::shape(
            "item_factors",
            format!("{} x {d}", m.n_cols()),
            format!("{} values", y.len()),
        ));
    }
    if m.n_rows() > u32::MAX as usize {
        return Err(Error::invalid("user_items", "more than 2^32 users"));
    }
    Ok(())
}

/// One epoch of nnz samples over `user_items` (users x items, rows sorted), updating `x`
/// (users x `d`, last column 1) and `y` (items x `d`, last column the bias) in place. `seed`
/// should differ between epochs.
pub fn epoch(
    user_items: &CsrView<'_>,
    x: &mut [f32],
    y: &mut [f32],
    d: usize,
    params: &BprParams,
    seed: u64,
    num_threads: usize,
) -> Result<EpochStats> {
    check_shapes(user_items, x, y, d)?;
    if user_items.nnz() == 0 {
        return Ok(EpochStats::default());
    }
    let e = Epoch {
        m: user_items,
        x: SharedRows::new(x, d),
        y: SharedRows::new(y, d),
        p: *params,
        stop: parallel::stop_flag(),
    };
    let arch = sgd_arch();
    if params.deterministic {
        let bl = blocks(user_items, seed, params.use_weights)?;
        let stats = parallel::install(num_threads, || {
            (0..bl.s).fold(EpochStats::default(), |acc, round| {
                let r = (0..bl.s)
                    .into_par_iter()
                    .map(|p| {
                        let q = (p + round) % bl.s;
                        arch.dispatch(Block {
                            e: &e,
                            bl: &bl,
                            p,
                            q,
                            rng: &mut stream(seed, p as u64, q as u64),
                        })
                    })
                    .reduce(EpochStats::default, EpochStats::add);
                acc.add(r)
            })
        })?;
        e.stop.check()?;
        return Ok(stats);
    }
    let nnz = user_items.nnz();
    let per_entry = || format!("user_items has {nnz} stored entries");
    let mut row_of: Vec<u32> = try_zeroed(nnz, "the interactions' users", per_entry)?;
    for u in 0..user_items.n_rows() {
        row_of[user_items.row_range(u)].fill(u as u32);
    }
    // nnz > 0, so some column has interactions
    let Some(table) = column_popularity(user_items.indices(), user_items.n_cols())? else {
        return Ok(EpochStats::default());
    };
    let stats = parallel::install(num_threads, || {
        let t = rayon::current_num_threads() as u64;
        let total = user_items.nnz() as u64;
        (0..t)
            .into_par_iter()
            .map(|k| {
                let n = total / t + u64::from(k < total % t);
                arch.dispatch(HogwildShare {
                    e: &e,
                    row_of: &row_of,
                    table: &table,
                    rng: &mut stream(seed, k, u64::MAX),
                    n,
                })
            })
            .reduce(EpochStats::default, EpochStats::add)
    })?;
    e.stop.check()?;
    Ok(stats)
}

/// A user's update with the item factors fixed (the fold-in of [`fold_in`]).
#[inline(always)]
fn user_step<S: Lanes>(simd: S, x: &mut [f32], yi: &[f32], yj: &[f32], lr: f32, reg: f32) {
    let d = x.len();
    let (yi, yj) = (&yi[..d], &yj[..d]);
    let (si, sj) = vdot2(simd, x, yi, yj);
    let z = 1.0 / (1.0 + (si - sj).exp());
    let f = d - 1;
    let (xh, xt) = S::as_mut_simd_f32s(&mut x[..f]);
    let (ah, at) = S::as_simd_f32s(&yi[..f]);
    let (bh, bt) = S::as_simd_f32s(&yj[..f]);
    let (vlr, vreg, vz) = (
        simd.splat_f32s(lr),
        simd.splat_f32s(reg),
        simd.splat_f32s(z),
    );
    for ((xk, &a), &b) in xh.iter_mut().zip(ah).zip(bh) {
        *xk = user_update(simd, vlr, vreg, vz, *xk, a, b);
    }
    if !xt.is_empty() {
        let x = user_update(
            simd,
            vlr,
            vreg,
            vz,
            load_tail(simd, xt),
            load_tail(simd, at),
            load_tail(simd, bt),
        );
        store_tail(simd, xt, x);
    }
}

/// [`user_step`] on one vector of the row: `x += lr (z (a - b) - reg x)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn user_update<S: Lanes>(
    simd: S,
    lr: S::f32s,
    reg: S::f32s,
    z: S::f32s,
    x: S::f32s,
    a: S::f32s,
    b: S::f32s,
) -> S::f32s {
    let dx = simd.sub_f32s(simd.mul_f32s(z, simd.sub_f32s(a, b)), simd.mul_f32s(reg, x));
    simd.mul_add_e_f32s(lr, dx, x)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fold_in_row<S: Lanes>(
    simd: S,
    items: &[i32],
    y: &[f32],
    x: &mut [f32],
    neg: &Negatives<'_>,
    p: &BprParams,
    epochs: usize,
    rng: &mut SmallRng,
) {
    let d = x.len();
    x.fill(0.0);
    x[d - 1] = 1.0;
    if items.is_empty() {
        return;
    }
    let mut stats = EpochStats::default();
    for _ in 0..epochs * items.len() {
        let i = items[rng.random_range(0..items.len())] as u32;
        if let Some(j) = negative(rng, neg, items, i, p, &mut stats, None) {
            let (i, j) = (i as usize, j as usize);
            user_step(
                simd,
                x,
                &y[i * d..(i + 1) * d],
                &y[j * d..(j + 1) * d],
                p.learning_rate,
                p.regularization,
            );
        }
    }
}

/// [`fold_in_row`], dispatched on [`sgd_arch`]'s instruction set.
struct FoldInRow<'a> {
    items: &'a [i32],
    y: &'a [f32],
    x: &'a mut [f32],
    neg: &'a Negatives<'a>,
    p: &'a BprParams,
    epochs: usize,
    rng: &'a mut SmallRng,
}

impl WithSimd for FoldInRow<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        fold_in_row(
            simd,
            self.items,
            self.y,
            self.x,
            self.neg,
            self.p,
            self.epochs,
            self.rng,
        )
    }
}

/// The factors of users given only their rows of `user_items` (rows x items), with the item
/// factors `y` fixed: from zero, `epochs` passes of as many SGD steps as the row has items, the
/// training's learning rate and regularisation, negatives from `neg`. Row r's generator is seeded
/// by `seed` and `ids[r]`, so a user gets the same vector alone or in a batch.
#[allow(clippy::too_many_arguments)]
pub fn fold_in(
    user_items: &CsrView<'_>,
    ids: &[u64],
    y: &[f32],
    d: usize,
    params: &BprParams,
    neg: &Negatives<'_>,
    epochs: usize,
    seed: u64,
    num_threads: usize,
) -> Result<Vec<f32>> {
    let mut x = vec![0f32; user_items.n_rows() * d];
    check_shapes(user_items, &x, y, d)?;
    if ids.len() != user_items.n_rows() {
        return Err(Error::shape(
            "userids",
            user_items.n_rows().to_string(),
            ids.len().to_string(),
        ));
    }
    let arch = sgd_arch();
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        x.par_chunks_mut(d).enumerate().for_each(|(r, xr)| {
            if stop.is_set() {
                return;
            }
            let (items, _) = user_items.row(r);
            arch.dispatch(FoldInRow {
                items,
                y,
                x: xr,
                neg,
                p: params,
                epochs,
                rng: &mut stream(seed, ids[r], 1),
            });
        })
    })?;
    stop.check()?;
    Ok(x)
}
