//! The hybrid matrix factorisation of Kula (2015), LightFM's model, trained by hogwild SGD.
//!
//! A user (item) is the weighted sum of its features' parameters: with a feature matrix F and
//! per-feature rows `[e_p, b_p]` (d embedding components, then the bias), the representation of
//! row r is `q = sum_p F[r, p] [e_p, b_p]`, and the score is `q_u[..d] . q_i[..d] + q_u[d] +
//! q_i[d]`. Each side's parameters, optimiser accumulators and (adadelta) update accumulators are
//! row-major `features x (d + 1)` matrices, the bias last.
//!
//! Losses as LightFM 1.17 defines them (logistic, BPR, WARP, k-OS WARP), with two corrections:
//! in the pairwise losses the user bias cancels, so it gets no gradient (LightFM's drifts); and the
//! L2 penalty `alpha / 2 |theta|^2` of every parameter an example touches is part of that
//! example's gradient (LightFM's lazy scaling multiplies where it should divide and diverges for
//! alpha near 0.05).
//!
//! An epoch visits the users in a random order and each user's interactions in a random order
//! (LightFM shuffles all interactions): the user's rows and a bitset of its items stay in cache,
//! and negatives are checked against the bitset instead of a binary search in the user's row.

use super::sgd::{column_counts, popularity, sigmoid, stream, Alias, SharedRows};
use crate::error::{Error, Result};
use crate::parallel::{self, Stop};
use crate::simd::{dispatch, dot, prefetch, Simd};
use crate::sparse::CsrView;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;

/// The ranking loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Sigmoid cross-entropy on every stored entry (value > 0 positive, else negative).
    Logistic,
    /// One negative per positive (the item of a random interaction, as LightFM).
    Bpr,
    /// Uniform negatives until one violates the margin (or `max_sampled` tries), weighted by
    /// `ln(floor((n_items - 1) / tries))`, capped at [`MAX_LOSS`].
    Warp,
    /// k-OS WARP: per interaction, for its user the k-th highest scoring of n sampled
    /// positives, then a WARP step.
    WarpKos { k: usize, n: usize },
}

/// The per-parameter learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// `theta -= lr g / sqrt(G)`, `G += g^2` (G starts at 1).
    Adagrad { learning_rate: f32 },
    /// Zeiler's adadelta (accumulators start at 0).
    Adadelta { rho: f32, epsilon: f32 },
}

/// Training parameters of an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LightFmParams {
    pub loss: Loss,
    pub schedule: Schedule,
    pub item_alpha: f32,
    pub user_alpha: f32,
    pub max_sampled: usize,
}

impl Default for LightFmParams {
    /// LightFM 1.17's defaults: logistic loss, adagrad with learning rate 0.05, no L2,
    /// `max_sampled` 10.
    fn default() -> Self {
        LightFmParams {
            loss: Loss::Logistic,
            schedule: Schedule::Adagrad {
                learning_rate: 0.05,
            },
            item_alpha: 0.0,
            user_alpha: 0.0,
            max_sampled: 10,
        }
    }
}

/// WARP's cap on the rank weight (LightFM's).
pub const MAX_LOSS: f32 = 10.0;

/// One side's trainable state: parameters, optimiser accumulators, adadelta's update
/// accumulators (all `features x (d + 1)`).
pub struct Side<'a> {
    pub params: &'a mut [f32],
    pub grad_acc: &'a mut [f32],
    pub step_acc: &'a mut [f32],
}

struct Shared {
    params: SharedRows,
    grad_acc: SharedRows,
    step_acc: SharedRows,
    /// The features every thread keeps a private copy of (see [`Local`]), and each feature's
    /// slot among them (`NOT_HOT` for the others).
    hot: Vec<u32>,
    slot: Vec<u32>,
}

const NOT_HOT: u32 = u32::MAX;

impl Shared {
    fn new(s: Side<'_>, w: usize, hot: Vec<u32>) -> Self {
        let n = s.params.len() / w.max(1);
        let mut slot = vec![NOT_HOT; if hot.is_empty() { 0 } else { n }];
        for (k, &p) in hot.iter().enumerate() {
            slot[p as usize] = k as u32;
        }
        Shared {
            params: SharedRows::new(s.params, w),
            grad_acc: SharedRows::new(s.grad_acc, w),
            step_acc: SharedRows::new(s.step_acc, w),
            hot,
            slot,
        }
    }

    /// The slot of feature p when it is hot.
    #[inline(always)]
    fn slot_of(&self, p: usize) -> Option<usize> {
        match self.slot.get(p) {
            Some(&s) if s != NOT_HOT => Some(s as usize),
            _ => None,
        }
    }

    /// Requests the shared parameter rows (and with `acc` the accumulator rows) of the first
    /// features of row r of `f`, skipping hot features (trained in the thread's own copies).
    #[inline(always)]
    fn prefetch(&self, f: &CsrView<'_>, r: usize, acc: bool) {
        for &p in f.row(r).0.iter().take(4) {
            if self.slot_of(p as usize).is_none() {
                self.params.prefetch_row(p as usize);
                if acc {
                    self.grad_acc.prefetch_row(p as usize);
                }
            }
        }
    }
}

/// Examples a thread trains between merges of its private rows.
const MERGE_EVERY: usize = 4096;

/// The most features of one side kept as private copies per thread.
const MAX_HOT: usize = 2048;

/// The features of one side updated at least `4 * nnz / MERGE_EVERY` times per epoch (about four
/// updates per merge window), the most updated first, at most [`MAX_HOT`]. `updates[r]` is how
/// often row r of the feature matrix is trained in an epoch.
fn hot_features(f: &CsrView<'_>, updates: &[f64], nnz: usize) -> Vec<u32> {
    let mut per_feature = vec![0f64; f.n_cols()];
    for (r, &n) in updates.iter().enumerate() {
        for &p in f.row(r).0 {
            per_feature[p as usize] += n;
        }
    }
    let min = 4.0 * nnz as f64 / MERGE_EVERY as f64;
    let mut hot: Vec<u32> = (0..f.n_cols() as u32)
        .filter(|&p| per_feature[p as usize] >= min)
        .collect();
    hot.sort_by(|&a, &b| {
        per_feature[b as usize]
            .total_cmp(&per_feature[a as usize])
            .then(a.cmp(&b))
    });
    hot.truncate(MAX_HOT);
    hot.sort_unstable();
    hot
}

/// A thread's private copies of one side's hot feature rows (parameters and both accumulators,
/// `3 (d + 1)` values per slot) and their values at the last merge. Hogwild threads that write
/// the same rows (features shared by many items, such as tags) move the rows' cache lines between
/// cores on every update; with private copies each thread trains on its own and adds its changes
/// to the shared rows every [`MERGE_EVERY`] examples, taking the other threads' in return.
struct Local {
    w: usize,
    rows: Vec<f32>,
    base: Vec<f32>,
}

impl Local {
    fn new(side: &Shared, w: usize) -> Self {
        let mut rows = vec![0f32; side.hot.len() * 3 * w];
        for (k, &p) in side.hot.iter().enumerate() {
            for (m, shared) in [&side.params, &side.grad_acc, &side.step_acc]
                .iter()
                .enumerate()
            {
                // SAFETY: read only; concurrent hogwild writes are part of the algorithm.
                let g = unsafe { shared.row(p as usize) };
                rows[(3 * k + m) * w..(3 * k + m + 1) * w].copy_from_slice(g);
            }
        }
        Local {
            w,
            base: rows.clone(),
            rows,
        }
    }

    #[inline(always)]
    fn params(&self, slot: usize) -> &[f32] {
        &self.rows[3 * slot * self.w..(3 * slot + 1) * self.w]
    }

    #[inline(always)]
    fn rows_mut(&mut self, slot: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
        let w = self.w;
        let all = &mut self.rows[3 * slot * w..(3 * slot + 3) * w];
        let (theta, rest) = all.split_at_mut(w);
        let (acc, mom) = rest.split_at_mut(w);
        (theta, acc, mom)
    }

    /// Adds this thread's changes since the last merge to the shared rows (parameters and
    /// adagrad's sums of squares; changes add up because both are sums of updates) and takes the
    /// merged values.
    fn merge(&mut self, side: &Shared) {
        let w = self.w;
        for (k, &p) in side.hot.iter().enumerate() {
            for (m, sh) in [&side.params, &side.grad_acc].iter().enumerate() {
                // SAFETY: hogwild; a concurrent merge of the same row can lose a change, as a
                // concurrent update can.
                let g = unsafe { sh.row(p as usize) };
                let range = (3 * k + m) * w..(3 * k + m + 1) * w;
                let (l, b) = (&mut self.rows[range.clone()], &mut self.base[range]);
                for ((g, l), b) in g.iter_mut().zip(l.iter_mut()).zip(b.iter_mut()) {
                    let v = *g + (*l - *b);
                    *g = v;
                    *l = v;
                    *b = v;
                }
            }
        }
    }
}

/// Each side's [`Local`] of one thread.
struct Locals {
    users: Local,
    items: Local,
}

struct Epoch<'a> {
    interactions: &'a CsrView<'a>,
    weights: Option<&'a [f32]>,
    user_features: &'a CsrView<'a>,
    item_features: &'a CsrView<'a>,
    users: Shared,
    items: Shared,
    p: LightFmParams,
    d: usize,
    /// Items by interaction count (BPR's negatives).
    popularity: Option<Alias>,
    /// Checked every `MERGE_EVERY` examples.
    stop: Stop,
}

/// `out = sum_p F[r, p] params[p]` (d + 1 values).
#[inline(always)]
fn represent(f: &CsrView<'_>, r: usize, side: &Shared, local: &Local, out: &mut [f32]) {
    out.fill(0.0);
    let (feats, ws) = f.row(r);
    for (&p, &w) in feats.iter().zip(ws) {
        let row: &[f32] = match side.slot_of(p as usize) {
            Some(slot) => local.params(slot),
            // SAFETY: read only; concurrent hogwild writes are part of the algorithm.
            None => unsafe { side.params.row(p as usize) },
        };
        for (o, v) in out.iter_mut().zip(row.iter()) {
            *o += w * v;
        }
    }
}

#[inline(always)]
fn score<const FMA: bool>(u: &[f32], i: &[f32], d: usize) -> f32 {
    dot::<FMA>(&u[..d], &i[..d]) + u[d] + i[d]
}

/// Adagrad on the leading multiple of 8 elements with AVX2 (`FMA` is only true where the CPU
/// has AVX2 and FMA): `1 / sqrt(G)` from the approximate reciprocal square root refined by one
/// Newton step (relative error ~1e-7, against the exact division's ~1e-7; the division and
/// square root were the slowest part of the update). Returns how many elements it did.
#[inline(always)]
fn adagrad_avx2<const FMA: bool>(
    theta: &mut [f32],
    acc: &mut [f32],
    coeff: &[f32],
    gw: f32,
    alpha: f32,
    lr: f32,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        use std::arch::x86_64::*;
        let n = theta.len().min(acc.len()).min(coeff.len()) / 8 * 8;
        // SAFETY: FMA = true is only instantiated behind the AVX2+FMA runtime check
        // (simd::dispatch!); every access is below n, within all three slices.
        unsafe {
            let (vgw, valpha, vlr) = (
                _mm256_set1_ps(gw),
                _mm256_set1_ps(alpha),
                _mm256_set1_ps(lr),
            );
            let (half, three_halves) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.5));
            for k in (0..n).step_by(8) {
                let t = _mm256_loadu_ps(theta.as_ptr().add(k));
                let a = _mm256_loadu_ps(acc.as_ptr().add(k));
                let c = _mm256_loadu_ps(coeff.as_ptr().add(k));
                let grad = _mm256_fmadd_ps(vgw, c, _mm256_mul_ps(valpha, t));
                let y = _mm256_rsqrt_ps(a);
                let y = _mm256_mul_ps(
                    y,
                    _mm256_fnmadd_ps(_mm256_mul_ps(half, a), _mm256_mul_ps(y, y), three_halves),
                );
                _mm256_storeu_ps(
                    theta.as_mut_ptr().add(k),
                    _mm256_fnmadd_ps(_mm256_mul_ps(vlr, y), grad, t),
                );
                _mm256_storeu_ps(acc.as_mut_ptr().add(k), _mm256_fmadd_ps(grad, grad, a));
            }
        }
        return n;
    }
    let _ = (theta, acc, coeff, gw, alpha, lr);
    0
}

/// Which side an update goes to.
#[derive(Clone, Copy)]
enum Which {
    User,
    Item,
}

/// Applies `g * F[r, p] * coeff + alpha * theta` to every feature row p of row r of `which` side (the bias
/// column only when `bias`), through the schedule.
#[inline(always)]
fn update<const FMA: bool>(
    e: &Epoch<'_>,
    locals: &mut Locals,
    which: Which,
    r: usize,
    g: f32,
    coeff: &[f32],
    bias: bool,
) {
    let (f, side, local, alpha) = match which {
        Which::User => (e.user_features, &e.users, &mut locals.users, e.p.user_alpha),
        Which::Item => (e.item_features, &e.items, &mut locals.items, e.p.item_alpha),
    };
    let schedule = e.p.schedule;
    let cols = if bias { coeff.len() } else { coeff.len() - 1 };
    let (feats, ws) = f.row(r);
    for (&p, &w) in feats.iter().zip(ws) {
        let (theta, acc, mom) = match side.slot_of(p as usize) {
            Some(slot) => local.rows_mut(slot),
            // SAFETY: hogwild updates (see SharedRows); distinct matrices per reference.
            None => unsafe {
                (
                    side.params.row(p as usize),
                    side.grad_acc.row(p as usize),
                    side.step_acc.row(p as usize),
                )
            },
        };
        let gw = g * w;
        let (theta, acc, mom, coeff) = (
            &mut theta[..cols],
            &mut acc[..cols],
            &mut mom[..cols],
            &coeff[..cols],
        );
        match schedule {
            Schedule::Adagrad { learning_rate } => {
                let done = adagrad_avx2::<FMA>(theta, acc, coeff, gw, alpha, learning_rate);
                for ((t, a), &c) in theta.iter_mut().zip(acc.iter_mut()).zip(coeff).skip(done) {
                    let grad = gw * c + alpha * *t;
                    *t -= learning_rate / a.sqrt() * grad;
                    *a += grad * grad;
                }
            }
            Schedule::Adadelta { rho, epsilon } => {
                for (((t, a), m), &c) in theta.iter_mut().zip(acc).zip(mom).zip(coeff) {
                    let grad = gw * c + alpha * *t;
                    *a = rho * *a + (1.0 - rho) * grad * grad;
                    let step = ((*m + epsilon) / (*a + epsilon)).sqrt() * grad;
                    *m = rho * *m + (1.0 - rho) * step * step;
                    *t -= step;
                }
            }
        }
    }
}

struct Scratch {
    user: Vec<f32>,
    pos: Vec<f32>,
    neg: Vec<f32>,
    coeff: Vec<f32>,
    heap: Vec<(f32, u32)>,
    /// The items of user `liked_user` as a bitset (examples come grouped by user).
    liked: Vec<u64>,
    liked_user: usize,
    locals: Locals,
}

impl Scratch {
    /// Makes `liked` hold user u's items.
    #[inline(always)]
    fn load_user(&mut self, m: &CsrView<'_>, u: usize) {
        if self.liked_user == u {
            return;
        }
        if self.liked_user < m.n_rows() {
            for &j in m.row(self.liked_user).0 {
                self.liked[j as usize >> 6] = 0;
            }
        }
        for &j in m.row(u).0 {
            self.liked[j as usize >> 6] |= 1 << (j & 63);
        }
        self.liked_user = u;
    }

    #[inline(always)]
    fn has(&self, j: usize) -> bool {
        self.liked[j >> 6] >> (j & 63) & 1 == 1
    }
}

/// A pairwise step (BPR, WARP): `g` is the loss's derivative with respect to
/// `score(pos) - score(neg)`, already weighted.
#[inline(always)]
fn pairwise_update<const FMA: bool>(
    e: &Epoch<'_>,
    s: &mut Scratch,
    u: usize,
    i: usize,
    j: usize,
    g: f32,
) {
    let d = e.d;
    // items: d score / d e_i = q_u, d score / d b_i = 1
    s.coeff[..d].copy_from_slice(&s.user[..d]);
    s.coeff[d] = 1.0;
    update::<FMA>(e, &mut s.locals, Which::Item, i, g, &s.coeff, true);
    update::<FMA>(e, &mut s.locals, Which::Item, j, -g, &s.coeff, true);
    // the user: d / d e_u = q_i - q_j; its bias cancels
    for c in 0..d {
        s.coeff[c] = s.pos[c] - s.neg[c];
    }
    s.coeff[d] = 0.0;
    update::<FMA>(e, &mut s.locals, Which::User, u, g, &s.coeff, false);
}

/// WARP negative search for user u with positive score `pos_score`: trains on the first
/// uniformly drawn item that violates the margin and is not a positive.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn warp_step<const FMA: bool>(
    e: &Epoch<'_>,
    s: &mut Scratch,
    rng: &mut SmallRng,
    u: usize,
    i: usize,
    pos_score: f32,
    weight: f32,
    first: usize,
) {
    let n_items = e.item_features.n_rows();
    // A user who has every item has no negative to find. Tries beyond `n_items - 1` would be
    // weighted ln(max(1, (n_items - 1) / tries)) = 0, so they are never made: a huge
    // `max_sampled` costs no more than the catalogue.
    if e.interactions.row_range(u).len() >= n_items {
        return;
    }
    let max_sampled = e.p.max_sampled.min(n_items - 1);
    // Candidates are drawn LOOK tries ahead and their parameter rows requested, so that the
    // cache misses of successive tries overlap.
    const LOOK: usize = 3;
    let mut cand = [first; LOOK + 1];
    for c in cand.iter_mut().skip(1).take(LOOK - 1) {
        *c = rng.random_range(0..n_items);
        e.items.prefetch(e.item_features, *c, false);
    }
    for sampled in 1..=max_sampled {
        let j = cand[(sampled - 1) % (LOOK + 1)];
        if sampled + LOOK <= max_sampled {
            let next = rng.random_range(0..n_items);
            cand[(sampled + LOOK - 1) % (LOOK + 1)] = next;
            e.items.prefetch(e.item_features, next, false);
        }
        represent(e.item_features, j, &e.items, &s.locals.items, &mut s.neg);
        if score::<FMA>(&s.user, &s.neg, e.d) > pos_score - 1.0 && !s.has(j) {
            let rank = ((n_items - 1) / sampled).max(1) as f32;
            let g = -(weight * rank.ln()).min(MAX_LOSS);
            pairwise_update::<FMA>(e, s, u, i, j, g);
            return;
        }
    }
}

/// One example (interaction `k` of user u, item i); `first` is the first negative candidate
/// (drawn ahead, so that its rows could be requested early).
#[inline(always)]
fn example<const FMA: bool>(
    e: &Epoch<'_>,
    s: &mut Scratch,
    rng: &mut SmallRng,
    k: usize,
    u: usize,
    first: usize,
) {
    let m = e.interactions;
    let (i, y) = (m.indices()[k] as usize, m.data()[k]);
    let weight = e.weights.map_or(1.0, |w| w[k]);
    let d = e.d;
    represent(e.user_features, u, &e.users, &s.locals.users, &mut s.user);
    represent(e.item_features, i, &e.items, &s.locals.items, &mut s.pos);
    match e.p.loss {
        Loss::Logistic => {
            let target = if y > 0.0 { 1.0 } else { 0.0 };
            let g = weight * (sigmoid(score::<FMA>(&s.user, &s.pos, d)) - target);
            s.coeff[..d].copy_from_slice(&s.user[..d]);
            s.coeff[d] = 1.0;
            update::<FMA>(e, &mut s.locals, Which::Item, i, g, &s.coeff, true);
            s.coeff[..d].copy_from_slice(&s.pos[..d]);
            update::<FMA>(e, &mut s.locals, Which::User, u, g, &s.coeff, true);
        }
        Loss::Bpr => {
            if y <= 0.0 {
                return;
            }
            // the item of a random interaction (by popularity, from an alias table that stays
            // in cache) that the user does not have; a bounded search
            let mut j = None;
            if let Some(table) = &e.popularity {
                for t in 0..1000 {
                    let c = if t == 0 { first } else { table.draw(rng) };
                    if !s.has(c) {
                        j = Some(c);
                        break;
                    }
                }
            }
            let Some(j) = j else { return };
            represent(e.item_features, j, &e.items, &s.locals.items, &mut s.neg);
            let diff = score::<FMA>(&s.user, &s.pos, d) - score::<FMA>(&s.user, &s.neg, d);
            let g = -weight * (1.0 - sigmoid(diff));
            pairwise_update::<FMA>(e, s, u, i, j, g);
        }
        Loss::Warp => {
            if y <= 0.0 {
                return;
            }
            let pos_score = score::<FMA>(&s.user, &s.pos, d);
            warp_step::<FMA>(e, s, rng, u, i, pos_score, weight, first);
        }
        Loss::WarpKos { .. } => {}
    }
}

/// k-OS WARP for user u.
#[inline(always)]
fn kos_user<const FMA: bool>(e: &Epoch<'_>, s: &mut Scratch, rng: &mut SmallRng, u: usize) {
    let Loss::WarpKos { k, n } = e.p.loss else {
        return;
    };
    let (items, vals) = e.interactions.row(u);
    if items.is_empty() {
        return;
    }
    represent(e.user_features, u, &e.users, &s.locals.users, &mut s.user);
    s.heap.clear();
    for _ in 0..n.min(items.len()) {
        let t = rng.random_range(0..items.len());
        if vals[t] <= 0.0 {
            continue;
        }
        let i = items[t] as usize;
        represent(e.item_features, i, &e.items, &s.locals.items, &mut s.pos);
        s.heap.push((score::<FMA>(&s.user, &s.pos, e.d), i as u32));
    }
    if s.heap.is_empty() {
        return;
    }
    // the k-th highest scoring sample (the lowest one when fewer were drawn)
    s.heap
        .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (pos_score, i) = s.heap[k.min(s.heap.len()) - 1];
    represent(
        e.item_features,
        i as usize,
        &e.items,
        &s.locals.items,
        &mut s.pos,
    );
    let first = rng.random_range(0..e.item_features.n_rows());
    warp_step::<FMA>(e, s, rng, u, i as usize, pos_score, 1.0, first);
}

/// A thread's share of the epoch: the interactions `order` (for k-OS WARP, their users: as in
/// LightFM, a user is visited once per interaction).
#[inline(always)] // so that dispatch! compiles it with the CPU features
fn share<const FMA: bool>(e: &Epoch<'_>, order: &[u32], row_of: &[u32], rng: &mut SmallRng) {
    let w = e.d + 1;
    let mut s = Scratch {
        user: vec![0.0; w],
        pos: vec![0.0; w],
        neg: vec![0.0; w],
        coeff: vec![0.0; w],
        heap: Vec::new(),
        liked: vec![0; e.item_features.n_rows().div_ceil(64)],
        liked_user: usize::MAX,
        locals: Locals {
            users: Local::new(&e.users, w),
            items: Local::new(&e.items, w),
        },
    };
    // The order is random, so every example starts with cache misses: on its interaction's
    // entries, its user's and item's parameter and accumulator rows, its first negative's rows.
    // Request the entries 2 * AHEAD examples on, the rows AHEAD on, with the first negative
    // drawn that early (a ring of pending draws).
    const AHEAD: usize = 4;
    const RING: usize = 8;
    let m = e.interactions;
    let n_items = e.item_features.n_rows();
    let draw = |rng: &mut SmallRng| match (&e.p.loss, &e.popularity) {
        (Loss::Bpr, Some(table)) => table.draw(rng),
        _ => rng.random_range(0..n_items),
    };
    let mut pending = [0usize; RING];
    for slot in pending.iter_mut().take(AHEAD) {
        *slot = draw(rng);
    }
    for (t, &k) in order.iter().enumerate() {
        if let Some(&far) = order.get(t + 2 * AHEAD) {
            prefetch(row_of.as_ptr().wrapping_add(far as usize));
            prefetch(m.indices().as_ptr().wrapping_add(far as usize));
        }
        if let Some(&next) = order.get(t + AHEAD) {
            let next = next as usize;
            let u = row_of[next] as usize;
            e.users.prefetch(e.user_features, u, true);
            e.items
                .prefetch(e.item_features, m.indices()[next] as usize, true);
            prefetch(m.indices().as_ptr().wrapping_add(m.row_range(u).start));
            let j = draw(rng);
            pending[(t + AHEAD) % RING] = j;
            e.items.prefetch(e.item_features, j, true);
        }
        let u = row_of[k as usize] as usize;
        s.load_user(m, u);
        if matches!(e.p.loss, Loss::WarpKos { .. }) {
            kos_user::<FMA>(e, &mut s, rng, u);
        } else {
            example::<FMA>(e, &mut s, rng, k as usize, u, pending[t % RING]);
        }
        if t % MERGE_EVERY == MERGE_EVERY - 1 {
            s.locals.users.merge(&e.users);
            s.locals.items.merge(&e.items);
            if e.stop.is_set() {
                break; // interrupted: this thread's local changes are merged below
            }
        }
    }
    s.locals.users.merge(&e.users);
    s.locals.items.merge(&e.items);
}

/// Inputs of an epoch.
pub struct Data<'a> {
    /// users x items interactions (stored values: > 0 positive; logistic also uses the rest).
    pub interactions: &'a CsrView<'a>,
    /// One weight per stored interaction, in CSR order.
    pub weights: Option<&'a [f32]>,
    pub user_features: &'a CsrView<'a>,
    pub item_features: &'a CsrView<'a>,
}

/// One epoch of hogwild SGD over the interactions (users in random order, each user's
/// interactions shuffled), updating both sides in place. `d` is the number of embedding components.
pub fn epoch(
    data: &Data<'_>,
    users: Side<'_>,
    items: Side<'_>,
    d: usize,
    params: &LightFmParams,
    seed: u64,
    num_threads: usize,
) -> Result<()> {
    let m = data.interactions;
    if m.n_rows() != data.user_features.n_rows() || m.n_cols() != data.item_features.n_rows() {
        return Err(Error::shape(
            "interactions",
            format!(
                "{} x {} (rows of the user and item features)",
                data.user_features.n_rows(),
                data.item_features.n_rows()
            ),
            format!("{} x {}", m.n_rows(), m.n_cols()),
        ));
    }
    let w = d + 1;
    for (name, side, f) in [
        ("user parameters", &users, data.user_features),
        ("item parameters", &items, data.item_features),
    ] {
        let want = f.n_cols() * w;
        if side.params.len() != want || side.grad_acc.len() != want || side.step_acc.len() != want {
            return Err(Error::shape(
                name,
                format!("{} x {w}", f.n_cols()),
                format!("{} values", side.params.len()),
            ));
        }
    }
    if data.weights.is_some_and(|x| x.len() != m.nnz()) {
        return Err(Error::invalid(
            "sample_weight",
            "needs one weight per interaction",
        ));
    }
    if m.nnz() > u32::MAX as usize || m.n_rows() > u32::MAX as usize {
        return Err(Error::invalid("interactions", "more than 2^32 entries"));
    }
    // Users in a random order, each user's interactions in a random order: the user's
    // parameters and its set of items stay in cache while its examples train.
    let mut rng = stream(seed, u64::MAX, 4);
    let mut user_order: Vec<u32> = (0..m.n_rows() as u32).collect();
    user_order.shuffle(&mut rng);
    let mut order: Vec<u32> = Vec::with_capacity(m.nnz());
    for &u in &user_order {
        let start = order.len();
        order.extend(m.row_range(u as usize).map(|k| k as u32));
        order[start..].shuffle(&mut rng);
    }
    // Private copies of the most updated feature rows, with more than one thread (one thread
    // trains the shared rows directly, so its results stay exact and reproducible) and adagrad
    // (adadelta's accumulators are moving averages: changes made by two threads do not add up).
    // A user row trains once per interaction; an item row once per interaction as the positive
    // and about as often as the average item as a negative.
    let threads = parallel::resolve_threads(num_threads);
    let adagrad = matches!(params.schedule, Schedule::Adagrad { .. });
    let (hot_users, hot_items) = if threads > 1 && adagrad {
        let user_updates: Vec<f64> = (0..m.n_rows())
            .map(|u| m.row_range(u).len() as f64)
            .collect();
        let mean = m.nnz() as f64 / m.n_cols().max(1) as f64;
        let item_updates: Vec<f64> = column_counts(m.indices(), m.n_cols())
            .iter()
            .map(|&c| c as f64 + mean)
            .collect();
        (
            hot_features(data.user_features, &user_updates, m.nnz()),
            hot_features(data.item_features, &item_updates, m.nnz()),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut row_of = vec![0u32; m.nnz()];
    for u in 0..m.n_rows() {
        row_of[m.row_range(u)].fill(u as u32);
    }
    let e = Epoch {
        interactions: m,
        weights: data.weights,
        user_features: data.user_features,
        item_features: data.item_features,
        users: Shared::new(users, w, hot_users),
        items: Shared::new(items, w, hot_items),
        p: *params,
        d,
        popularity: match params.loss {
            Loss::Bpr => popularity(&column_counts(m.indices(), m.n_cols()), None),
            _ => None,
        },
        stop: parallel::stop_flag(),
    };
    let run = dispatch!(Simd::detect(), share, share_avx2,
        (e: &Epoch<'_>, order: &[u32], row_of: &[u32], rng: &mut SmallRng) -> ());
    parallel::install(num_threads, || {
        let t = rayon::current_num_threads();
        let chunk = order.len().div_ceil(t).max(1);
        order
            .par_chunks(chunk)
            .enumerate()
            .for_each(|(k, part)| run(&e, part, &row_of, &mut stream(seed, k as u64, 5)));
    })?;
    e.stop.check()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Csr;

    #[test]
    fn hot_features_are_the_most_updated_above_the_threshold() {
        // 3 rows x 4 features: feature 3 is in every row, feature 0 in rows 0 and 1
        let f = Csr::from_triplets(
            3,
            4,
            &[
                (0, 0, 1.0),
                (0, 3, 1.0),
                (1, 0, 1.0),
                (1, 3, 1.0),
                (2, 1, 1.0),
                (2, 3, 1.0),
            ],
        )
        .unwrap(); // ok: test data, valid triplets
        let nnz = MERGE_EVERY; // threshold: 4 updates per epoch
                               // per feature: 0 -> 5, 1 -> 1, 2 -> 0, 3 -> 6
        assert_eq!(hot_features(&f.view(), &[2.0, 3.0, 1.0], nnz), vec![0, 3]);
        assert_eq!(
            hot_features(&f.view(), &[1.0, 1.0, 1.0], nnz),
            Vec::<u32>::new()
        );
        // more candidates than MAX_HOT: the most updated are kept, returned in id order
        let n = MAX_HOT + 3;
        let many = Csr::identity(n);
        let updates: Vec<f64> = (0..n).map(|r| 10.0 + r as f64).collect();
        let hot = hot_features(&many.view(), &updates, nnz);
        assert_eq!(hot, (3..n as u32).collect::<Vec<_>>());
    }

    #[test]
    fn merges_add_every_threads_changes() {
        let w = 2;
        let mut params = vec![1.0f32, 2.0, 5.0, 6.0];
        let mut grad_acc = vec![1.0f32; 4];
        let mut step_acc = vec![0.0f32; 4];
        let side = Shared::new(
            Side {
                params: &mut params,
                grad_acc: &mut grad_acc,
                step_acc: &mut step_acc,
            },
            w,
            vec![1],
        );
        assert_eq!(side.slot_of(0), None);
        assert_eq!(side.slot_of(1), Some(0));
        let (mut a, mut b) = (Local::new(&side, w), Local::new(&side, w));
        assert_eq!(a.params(0), &[5.0, 6.0]);
        {
            let (theta, acc, _) = a.rows_mut(0);
            theta[0] += 1.0;
            acc[1] += 0.5;
        }
        {
            let (theta, acc, _) = b.rows_mut(0);
            theta[0] -= 3.0;
            theta[1] += 2.0;
            acc[1] += 0.25;
        }
        a.merge(&side);
        b.merge(&side);
        // SAFETY: no other thread
        let (p, g) = unsafe { (side.params.row(1).to_vec(), side.grad_acc.row(1).to_vec()) };
        assert_eq!(p, vec![3.0, 8.0]);
        assert_eq!(g, vec![1.0, 1.75]);
        // b merged last and holds the merged rows; a takes them at its next merge
        assert_eq!(b.params(0), &[3.0, 8.0]);
        a.merge(&side);
        assert_eq!(a.params(0), &[3.0, 8.0]);
        // the row that is not hot was never touched
        assert_eq!(unsafe { side.params.row(0).to_vec() }, vec![1.0, 2.0]);
    }
}
