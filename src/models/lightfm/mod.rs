//! The hybrid matrix factorisation of Kula (2015), LightFM's model, trained by hogwild SGD.
//!
//! A user (item) is the weighted sum of its features' parameters: with a feature matrix F and
//! per-feature rows `[e_p, b_p]` (d embedding components, then the bias), the representation of
//! row r is `q = sum_p F[r, p] [e_p, b_p]`, and the score is `q_u[..d] . q_i[..d] + q_u[d] +
//! q_i[d]`. Each side's parameters, optimiser accumulators and (adadelta) update accumulators are
//! row-major `features x (d + 1)` matrices, the bias last.
//!
//! Losses as LightFM 1.17 defines them (logistic, BPR, WARP, k-OS WARP), with one correction: in
//! the pairwise losses the user bias cancels, so it gets no gradient (LightFM's drifts).
//!
//! `item_alpha` / `user_alpha` regularise in one of two ways ([`Regularization`]):
//! - `Decay`, LightFM's weight decay done as LightFM means it: after every example that updates
//!   parameters, every parameter of a side (not only the rows the example touched) is divided by
//!   `1 + alpha * eta`, `eta` being the mean learning rate of the elements the example updated
//!   (both sides; adagrad's `lr / sqrt(G)` before the step, adadelta's `sqrt((M + eps) / (G +
//!   eps))`). It is lazy: a side's rows hold its parameters over a scale `c` (representations are
//!   `c sum_p F[r, p] row_p`, a step `delta` of a parameter is a step `delta / c` of its row, a
//!   decay divides `c`), and the rows are multiplied by `c` at the end of the epoch, or when `c`
//!   falls below [`FOLD_BELOW`] (the threads stop, the rows are folded, the threads go on), so
//!   the rows stay finite for any alpha. Threads publish their decay to the side every
//!   [`PUBLISH_EVERY`] examples, or sooner when it exceeds [`PUBLISH_ABOVE`] (one thread never
//!   needs to: it is exact).
//!
//!   LightFM 1.17 keeps a scale per side too, the reciprocal of ours (it is multiplied by
//!   `1 + alpha * eta` per example; `regularize` divides every row by it and resets it to 1, at
//!   the end of each epoch and when it exceeds 10^6), but (a) its representations multiply the
//!   rows by the scale where its own fold says the parameters are the rows divided by it, so
//!   within an epoch every representation is `scale^2` times the parameters the fold then
//!   stores; (b) its steps are not multiplied by the scale, so an update lands `scale` times too
//!   small in the parameters; (c) each updated element is also multiplied by `1 + alpha *
//!   its learning rate`, undoing that example's decay for the touched rows only. Between folds
//!   its scale grows by `1 + alpha * eta` per example, so with alpha near 0.05 it reaches 10^6
//!   within a few thousand examples, and representations are then up to 10^12 times the
//!   parameters: its parameters blow up (warp) or collapse to 0 (bpr, logistic) within a few
//!   epochs (benches/compare/RESULTS.md).
//! - `L2`: the penalty `alpha / 2 |theta|^2` of every parameter an example touches is part of
//!   that example's gradient (rows no example touches are not regularised).
//!
//! An epoch visits the interactions in a random order, as LightFM ([`Order::Interactions`];
//! negatives are checked by a binary search in the user's row), or the users in a random order
//! and each user's interactions consecutively in a random order ([`Order::Users`]: the user's
//! rows and a bitset of its items stay in cache, faster per epoch; LightFM given that order
//! learns as this one does, per epoch ahead of its own order at some settings, behind at
//! others). With [`Order::Interactions`] and several threads, each thread's part of an epoch
//! holds whole users (no two threads train the same user).
//!
//! The epoch driver is here; [`hot_rows`] holds the per-thread copies of the most updated feature
//! rows, [`optim`] the learning-rate schedules, [`loss`] the steps of each loss.

mod hot_rows;
mod loss;
mod optim;

use super::sgd::{column_counts, column_popularity, stream, Alias};
use crate::error::{Error, Result};
use crate::parallel::{self, Stop};
use crate::simd::{prefetch_to, sgd_arch, vaxpy, vdot, vscale, Lanes, WithSimd, L2};
use crate::sparse::{sorted_contains, CsrView};
use hot_rows::{hot_features, Local, Locals, Need, Shared, MERGE_EVERY};
use loss::{example, kos_user};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

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

crate::names::by_name! { Loss, "loss",
    "logistic" => Logistic,
    "bpr" => Bpr,
    "warp" => Warp,
    "warp-kos" => WarpKos { k: 5, n: 10 },
}

/// The per-parameter learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// `theta -= lr g / sqrt(G)`, `G += g^2` (G starts at 1).
    Adagrad { learning_rate: f32 },
    /// Zeiler's adadelta (accumulators start at 0).
    Adadelta { rho: f32, epsilon: f32 },
}

crate::names::by_name! { Schedule, "learning_schedule",
    "adagrad" => Adagrad { learning_rate: 0.05 },
    "adadelta" => Adadelta { rho: 0.95, epsilon: 1e-6 },
}

/// What `item_alpha` / `user_alpha` do (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regularization {
    /// After each example, every parameter of a side divided by `1 + alpha * eta` (LightFM's
    /// weight decay, applied correctly); `eta` the mean learning rate of the updated elements.
    Decay,
    /// `alpha * theta` added to the gradient of every parameter an example updates.
    L2,
}

crate::names::by_name! { Regularization, "regularization",
    "decay" => Decay,
    "l2" => L2,
}

/// The order in which an epoch visits the interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// A random permutation of all interactions (LightFM's).
    Interactions,
    /// Users in a random order, each user's interactions consecutively in a random order: the
    /// user's rows and a bitset of its items stay in cache (faster per epoch); a user's updates
    /// come in bursts, so an epoch learns differently (ahead of LightFM's order at some
    /// settings, behind at others).
    Users,
}

crate::names::by_name! { Order, "order",
    "interactions" => Interactions,
    "users" => Users,
}

/// Training parameters of an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LightFmParams {
    pub loss: Loss,
    pub schedule: Schedule,
    pub item_alpha: f32,
    pub user_alpha: f32,
    pub regularization: Regularization,
    pub max_sampled: usize,
    pub order: Order,
}

impl Default for LightFmParams {
    /// LightFM 1.17's defaults: logistic loss, adagrad with learning rate 0.05, no
    /// regularisation (weight decay when alpha is set), `max_sampled` 10, every epoch a random
    /// permutation of the interactions.
    fn default() -> Self {
        LightFmParams {
            loss: Loss::Logistic,
            schedule: Schedule::Adagrad {
                learning_rate: 0.05,
            },
            item_alpha: 0.0,
            user_alpha: 0.0,
            regularization: Regularization::Decay,
            max_sampled: 10,
            order: Order::Interactions,
        }
    }
}

/// WARP's cap on the rank weight (LightFM's).
pub const MAX_LOSS: f32 = 10.0;

/// With [`Regularization::Decay`], the rows are folded (multiplied by their side's scale) when a
/// thread's scale falls below this: rows then hold at most 10^20 times the parameters, far from
/// f32's range.
pub const FOLD_BELOW: f64 = 1e-20;

/// With [`Regularization::Decay`], the largest factor one example divides the parameters by (the
/// parameters are 0 to f32 precision after a few such examples anyway): the scale then never
/// falls below `FOLD_BELOW / MAX_DECAY`, well inside f32's range, for any alpha.
pub const MAX_DECAY: f64 = 1e10;

/// With [`Regularization::Decay`] and several threads, the most examples a thread trains between
/// publications of its decay (a thread's scale misses the decay of the other threads' last
/// examples, fewer than this many each).
pub const PUBLISH_EVERY: usize = 256;

/// With [`Regularization::Decay`] and several threads, a thread also publishes as soon as its
/// unpublished decay divides the parameters by more than this: a thread's scale is then never
/// off by more than this factor per other thread, however strong the decay (at a strong decay,
/// 256 examples can divide the parameters by 1.3 and more).
pub const PUBLISH_ABOVE: f64 = 1.001;

/// One side's trainable state: parameters, optimiser accumulators, adadelta's update
/// accumulators (all `features x (d + 1)`).
pub struct Side<'a> {
    pub params: &'a mut [f32],
    pub grad_acc: &'a mut [f32],
    pub step_acc: &'a mut [f32],
}

struct Epoch<'a> {
    interactions: &'a CsrView<'a>,
    weights: Option<&'a [f32]>,
    user_features: Features<'a>,
    item_features: Features<'a>,
    users: Shared,
    items: Shared,
    p: LightFmParams,
    d: usize,
    /// Items by interaction count (BPR's negatives).
    popularity: Option<Alias>,
    /// Checked every `MERGE_EVERY` examples.
    stop: Stop,
    /// Weight decay with some alpha > 0: the sides have scales.
    decaying: bool,
    /// Set by a thread whose scale fell below `fold_below` ([`FOLD_BELOW`]): the threads stop
    /// for a fold.
    fold: AtomicBool,
    fold_below: f64,
    /// More than one thread trains (they publish their decay, see [`PUBLISH_EVERY`]).
    shared: bool,
    /// Per user, whether the row holds every item; only when some row is as long as the
    /// catalogue (a row may repeat items, so its length alone does not tell).
    complete: Vec<bool>,
}

impl Epoch<'_> {
    /// Whether user `u` has interacted with every item (WARP then has no negative to find).
    #[inline(always)]
    fn has_every_item(&self, u: usize) -> bool {
        self.interactions.row_range(u).len() >= self.interactions.n_cols() && self.complete[u]
    }
}

/// [`Epoch::complete`] of `m`: empty when no row is as long as the catalogue.
fn complete_rows(m: &CsrView<'_>) -> Vec<bool> {
    let n = m.n_cols();
    if (0..m.n_rows()).all(|u| m.row_range(u).len() < n) {
        return Vec::new();
    }
    (0..m.n_rows())
        .map(|u| {
            let row = m.row(u).0;
            let distinct = row.len() - row.windows(2).filter(|w| w[0] == w[1]).count();
            distinct >= n
        })
        .collect()
}

/// A feature matrix (rows x features) as the epoch reads it: the identity (LightFM's default,
/// one feature per user or item, weight 1) is known as such, so that a row's features cost no
/// reads of the matrix. At large catalogues each of those reads (row start, feature id,
/// weight) is a cache miss that must finish before the parameter row's address is known.
#[derive(Clone, Copy)]
pub(super) struct Features<'a> {
    m: &'a CsrView<'a>,
    identity: bool,
}

impl<'a> Features<'a> {
    fn new(m: &'a CsrView<'a>) -> Self {
        let n = m.n_rows();
        let identity = m.n_cols() == n
            && m.indptr().iter().enumerate().all(|(k, &p)| p == k as i64)
            && m.indices().iter().enumerate().all(|(k, &p)| p == k as i32)
            && m.data().iter().all(|&w| w == 1.0);
        Features { m, identity }
    }

    #[inline(always)]
    pub(super) fn n_rows(&self) -> usize {
        self.m.n_rows()
    }

    /// The (feature, weight) pairs of row r.
    #[inline(always)]
    pub(super) fn row(&self, r: usize) -> FeatureRow<'a> {
        if self.identity {
            FeatureRow::One(Some(r))
        } else {
            let (p, w) = self.m.row(r);
            FeatureRow::Many(p.iter().zip(w))
        }
    }
}

/// The (feature, weight) pairs of a row of [`Features`].
pub(super) enum FeatureRow<'a> {
    One(Option<usize>),
    Many(std::iter::Zip<std::slice::Iter<'a, i32>, std::slice::Iter<'a, f32>>),
}

impl Iterator for FeatureRow<'_> {
    type Item = (usize, f32);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, f32)> {
        match self {
            FeatureRow::One(r) => r.take().map(|r| (r, 1.0)),
            FeatureRow::Many(it) => it.next().map(|(&p, &w)| (p as usize, w)),
        }
    }
}

/// `out = scale sum_p F[r, p] rows[p]` (d + 1 values).
#[inline(always)]
fn represent<S: Lanes>(
    simd: S,
    f: Features<'_>,
    r: usize,
    side: &Shared,
    local: &Local,
    out: &mut [f32],
) {
    let mut empty = true;
    let scale = local.scale();
    for (k, (p, w)) in f.row(r).enumerate() {
        let w = w * scale;
        let row = feature_row(side, local, p);
        // the first feature's term is written, the others added (no pass zeroing `out`)
        if k == 0 {
            vscale(simd, w, row, out);
        } else {
            vaxpy(simd, w, row, out);
        }
        empty = false;
    }
    if empty {
        out.fill(0.0);
    }
}

/// The parameter row of feature p of a side: the thread's copy when p is hot, else the shared
/// row.
#[inline(always)]
fn feature_row<'s>(side: &'s Shared, local: &'s Local, p: usize) -> &'s [f32] {
    match side.slot_of(p) {
        Some(slot) => local.params(slot),
        // SAFETY: a read; concurrent hogwild writes are part of the algorithm.
        None => unsafe { side.params.row_ref(p) },
    }
}

#[inline(always)]
fn score<S: Lanes>(simd: S, u: &[f32], i: &[f32], d: usize) -> f32 {
    vdot(simd, &u[..d], &i[..d]) + u[d] + i[d]
}

struct Scratch<'a> {
    user: Vec<f32>,
    pos: Vec<f32>,
    neg: Vec<f32>,
    coeff: Vec<f32>,
    heap: Vec<(f32, u32)>,
    liked: Liked<'a>,
    locals: Locals,
}

/// The items of the user whose examples train (negatives must not be among them).
struct Liked<'a> {
    /// With [`Order::Users`] (examples grouped by user), the user's items as a bitset over all
    /// items; otherwise empty, and `row` holds them (sorted: a binary search).
    bits: Vec<u64>,
    row: &'a [i32],
    user: usize,
}

impl<'a> Liked<'a> {
    fn new(order: Order, n_items: usize) -> Self {
        let bits = match order {
            Order::Users => vec![0; n_items.div_ceil(64)],
            Order::Interactions => Vec::new(),
        };
        Liked {
            bits,
            row: &[],
            user: usize::MAX,
        }
    }

    /// Makes [`Liked::has`] answer for user u's items.
    #[inline(always)]
    fn load(&mut self, m: &'a CsrView<'a>, u: usize) {
        if self.user == u {
            return;
        }
        if !self.bits.is_empty() {
            if self.user < m.n_rows() {
                for &j in self.row {
                    self.bits[j as usize >> 6] = 0;
                }
            }
            for &j in m.row(u).0 {
                self.bits[j as usize >> 6] |= 1 << (j & 63);
            }
        }
        self.row = m.row(u).0;
        self.user = u;
    }

    #[inline(always)]
    fn has(&self, j: usize) -> bool {
        if self.bits.is_empty() {
            sorted_contains(self.row, j as i32)
        } else {
            self.bits[j >> 6] >> (j & 63) & 1 == 1
        }
    }
}

/// Requests the lines of user u's row of `m` (its item ids): all of them, up to
/// [`ROW_LINES`], in [`Order::Interactions`], where the liked check searches the row (every
/// line of a short one; a binary search's probes would otherwise miss the cache one after the
/// other); the first one otherwise (the bitset of [`Order::Users`] is filled by a sequential
/// read).
#[inline(always)]
fn prefetch_row(m: &CsrView<'_>, u: usize, order: Order) {
    let r = m.row_range(u);
    let first = m.indices().as_ptr().wrapping_add(r.start);
    if order == Order::Users || r.is_empty() {
        prefetch_to::<L2, _>(first);
        return;
    }
    let last = m.indices().as_ptr().wrapping_add(r.end - 1) as usize;
    let mut line = first as usize & !63;
    for _ in 0..ROW_LINES {
        prefetch_to::<L2, _>(line as *const u8);
        line += 64;
        if line > last {
            break;
        }
    }
}

/// The most lines of a user's row [`prefetch_row`] requests (256 item ids).
const ROW_LINES: usize = 16;

/// The examples of one thread share ahead of which their rows are requested and their first
/// negative candidate drawn (see [`share`]).
const AHEAD: usize = 4;
const RING: usize = 8;

/// A thread's negative candidates: uniform items for WARP and k-OS WARP, items by popularity
/// for BPR, none for the logistic loss. Each example's first candidate is drawn [`AHEAD`]
/// examples before it, its parameter and accumulator rows requested then (an example often
/// trains on its first). Further candidates (WARP tries several per example, more as the model
/// learns) come from a queue drawn [`QUEUE`] candidates ahead, their parameter rows requested
/// when drawn: drawn only when needed, their rows would be requested a few candidates before they
/// are read, and the misses left exposed. The draws are independent of the examples, so a
/// candidate drawn earlier is distributed as one drawn when it is used, and none is wasted when
/// an example stops at its first.
struct Candidates {
    first: [u32; RING],
    queue: [u32; QUEUE],
    next: usize,
    active: bool,
}

/// Further candidates in flight per thread (see [`Candidates`]).
const QUEUE: usize = 16;

impl Candidates {
    fn new(e: &Epoch<'_>, rng: &mut SmallRng) -> Self {
        let mut c = Candidates {
            first: [0; RING],
            queue: [0; QUEUE],
            next: 0,
            active: e.p.loss != Loss::Logistic,
        };
        if c.active {
            for t in 0..AHEAD {
                c.first[t] = c.fresh(e, rng, Need::Train);
            }
            for k in 0..QUEUE {
                c.queue[k] = c.fresh(e, rng, Need::Score);
            }
        }
        c
    }

    /// A draw, its rows requested for `need`.
    #[inline(always)]
    fn fresh(&self, e: &Epoch<'_>, rng: &mut SmallRng, need: Need) -> u32 {
        let j = match (&e.p.loss, &e.popularity) {
            (Loss::Bpr, Some(table)) => table.draw(rng),
            _ => rng.random_range(0..e.item_features.n_rows()),
        };
        e.items.prefetch(e.item_features, j, need);
        j as u32
    }

    /// Draws the first candidate of example `t + AHEAD`, at example t.
    #[inline(always)]
    fn ahead(&mut self, e: &Epoch<'_>, rng: &mut SmallRng, t: usize) {
        if self.active {
            self.first[(t + AHEAD) % RING] = self.fresh(e, rng, Need::Train);
        }
    }

    /// Candidate `tries` (from 0) of example t: its first, then the oldest of the queue (a new
    /// one takes its place).
    #[inline(always)]
    fn take(&mut self, e: &Epoch<'_>, rng: &mut SmallRng, t: usize, tries: usize) -> usize {
        if tries == 0 {
            return self.first[t % RING] as usize;
        }
        let j = self.queue[self.next];
        self.queue[self.next] = self.fresh(e, rng, Need::Score);
        self.next = (self.next + 1) % QUEUE;
        j as usize
    }
}

/// A thread's share of the epoch: the interactions `order` (for k-OS WARP, their users: as in
/// LightFM, a user is visited once per interaction), how far it got, its random stream and its
/// negative candidates. Aligned to 128 bytes (two cache lines, which the L2 prefetcher fetches
/// as a pair): the parts of the threads sit side by side in one vector, and each updates its
/// own several times per example (its random stream, its candidates); sharing a line would
/// send it back and forth between the cores.
#[repr(align(128))]
struct Part<'a> {
    order: &'a [u32],
    next: usize,
    rng: SmallRng,
    candidates: Candidates,
}

impl<'a> Part<'a> {
    fn new(e: &Epoch<'_>, order: &'a [u32], mut rng: SmallRng) -> Self {
        let candidates = Candidates::new(e, &mut rng);
        Part {
            order,
            next: 0,
            rng,
            candidates,
        }
    }

    fn done(&self) -> bool {
        self.next >= self.order.len()
    }
}

/// Trains `part` from where it stopped to its end, or until the epoch is interrupted or a fold
/// is requested (see [`FOLD_BELOW`]).
#[inline(always)]
fn share<S: Lanes>(simd: S, e: &Epoch<'_>, part: &mut Part<'_>, row_of: &[u32]) {
    let w = e.d + 1;
    let mut s = Scratch {
        user: vec![0.0; w],
        pos: vec![0.0; w],
        neg: vec![0.0; w],
        coeff: vec![0.0; w],
        heap: Vec::new(),
        liked: Liked::new(e.p.order, e.item_features.n_rows()),
        locals: Locals {
            users: Local::new(&e.users, w),
            items: Local::new(&e.items, w),
            rates: Default::default(),
        },
    };
    // The order is random, so every example starts with cache misses: on its interaction's
    // entries, its user's and item's parameter and accumulator rows, its negatives' rows.
    // Request the entries 3 * AHEAD examples on, the user's row bounds 2 * AHEAD on, the rows
    // AHEAD on, with the first negative drawn that early (see Candidates). Every request goes
    // into the second-level cache only: with 16 candidates' rows in flight (80 lines at 64
    // components), requests into the first level held its few miss buffers, and the loads of
    // the example being trained waited behind them (clustered 300k x 100k, one thread, CPU s
    // per epoch, medians of six runs: 3.71 -> 2.93; RESULTS.md).
    let m = e.interactions;
    let order = part.order;
    let rng = &mut part.rng;
    let candidates = &mut part.candidates;
    let (user_alpha, item_alpha) = (e.p.user_alpha as f64, e.p.item_alpha as f64);
    let mut t = part.next;
    while t < order.len() {
        if e.decaying && e.fold.load(Ordering::Relaxed) {
            break; // the rows are folded, then this thread goes on from example t
        }
        let k = order[t];
        if let Some(&far) = order.get(t + 3 * AHEAD) {
            prefetch_to::<L2, _>(row_of.as_ptr().wrapping_add(far as usize));
            prefetch_to::<L2, _>(m.indices().as_ptr().wrapping_add(far as usize));
            prefetch_to::<L2, _>(m.data().as_ptr().wrapping_add(far as usize));
        }
        if let Some(&mid) = order.get(t + 2 * AHEAD) {
            // the user's row start and end, so that its lines can be requested AHEAD on
            prefetch_to::<L2, _>(
                m.indptr()
                    .as_ptr()
                    .wrapping_add(row_of[mid as usize] as usize),
            );
        }
        if let Some(&next) = order.get(t + AHEAD) {
            let next = next as usize;
            let u = row_of[next] as usize;
            e.users.prefetch(e.user_features, u, Need::Train);
            e.items
                .prefetch(e.item_features, m.indices()[next] as usize, Need::Train);
            prefetch_row(m, u, e.p.order);
            candidates.ahead(e, rng, t);
        }
        if e.shared && e.decaying {
            s.locals.users.catch_up(&e.users);
            s.locals.items.catch_up(&e.items);
        }
        let u = row_of[k as usize] as usize;
        s.liked.load(m, u);
        if matches!(e.p.loss, Loss::WarpKos { .. }) {
            kos_user(simd, e, &mut s, rng, candidates, t, u);
        } else {
            example(simd, e, &mut s, rng, candidates, t, k as usize, u);
        }
        if e.decaying {
            if let Some(eta) = s.locals.rates.take_mean() {
                if user_alpha > 0.0 {
                    s.locals
                        .users
                        .decay((1.0 + user_alpha * eta).min(MAX_DECAY));
                }
                if item_alpha > 0.0 {
                    s.locals
                        .items
                        .decay((1.0 + item_alpha * eta).min(MAX_DECAY));
                }
            }
            if e.shared
                && (t % PUBLISH_EVERY == PUBLISH_EVERY - 1
                    || s.locals
                        .users
                        .unpublished()
                        .max(s.locals.items.unpublished())
                        > PUBLISH_ABOVE)
            {
                s.locals.users.publish(&e.users);
                s.locals.items.publish(&e.items);
            }
            if s.locals.users.scale_f64().min(s.locals.items.scale_f64()) < e.fold_below {
                e.fold.store(true, Ordering::Relaxed);
            }
        }
        t += 1;
        if t.is_multiple_of(MERGE_EVERY) {
            s.locals.users.merge(&e.users);
            s.locals.items.merge(&e.items);
            if e.stop.is_set() {
                break; // interrupted: this thread's local changes are merged below
            }
        }
    }
    part.next = if e.stop.is_set() { order.len() } else { t };
    s.locals.users.merge(&e.users);
    s.locals.items.merge(&e.items);
    s.locals.users.publish(&e.users);
    s.locals.items.publish(&e.items);
}

/// [`share`], dispatched on [`sgd_arch`]'s instruction set.
struct Share<'a, 'e, 'o> {
    e: &'a Epoch<'e>,
    part: &'a mut Part<'o>,
    row_of: &'a [u32],
}

impl WithSimd for Share<'_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        share(simd, self.e, self.part, self.row_of)
    }
}

/// Inputs of an epoch.
pub struct Data<'a> {
    /// users x items interactions (stored values: > 0 positive; logistic also uses the rest).
    /// A row may store an item more than once: every stored entry is one example, as LightFM
    /// trains repeated COO entries.
    pub interactions: &'a CsrView<'a>,
    /// One weight per stored interaction, in CSR order.
    pub weights: Option<&'a [f32]>,
    pub user_features: &'a CsrView<'a>,
    pub item_features: &'a CsrView<'a>,
}

/// One epoch of hogwild SGD over the interactions in `params.order` (see [`Order`]), updating both
/// sides in place. `d` is the number of embedding components.
pub fn epoch(
    data: &Data<'_>,
    users: Side<'_>,
    items: Side<'_>,
    d: usize,
    params: &LightFmParams,
    seed: u64,
    num_threads: usize,
) -> Result<()> {
    epoch_folding_below(data, users, items, d, params, seed, num_threads, FOLD_BELOW)
}

/// [`epoch`], with the rows folded when a scale falls below `fold_below`.
#[allow(clippy::too_many_arguments)]
fn epoch_folding_below(
    data: &Data<'_>,
    users: Side<'_>,
    items: Side<'_>,
    d: usize,
    params: &LightFmParams,
    seed: u64,
    num_threads: usize,
    fold_below: f64,
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
    if m.nnz() == 0 {
        // nothing to train, and with no items no negative to draw (the threads draw their
        // first negatives before their first example)
        return Ok(());
    }
    // The examples in a random order, cut into one part per thread: users in a random order,
    // each user's interactions consecutively (Order::Users; parts of equal length); or the users
    // in a random order dealt out to the parts by their interactions (about equal work), each
    // part's interactions in a random order (Order::Interactions: a random permutation of all
    // interactions for one thread; with several, no two threads ever train the same user).
    let threads = parallel::resolve_threads(num_threads);
    let mut rng = stream(seed, u64::MAX, 4);
    let mut user_order: Vec<u32> = (0..m.n_rows() as u32).collect();
    user_order.shuffle(&mut rng);
    let mut order: Vec<u32> = Vec::with_capacity(m.nnz());
    let mut ends: Vec<usize> = Vec::with_capacity(threads);
    match params.order {
        Order::Interactions => {
            let share = m.nnz().div_ceil(threads.max(1)).max(1);
            let mut start = 0;
            for &u in &user_order {
                order.extend(m.row_range(u as usize).map(|k| k as u32));
                if order.len() - start >= share {
                    order[start..].shuffle(&mut rng);
                    start = order.len();
                    ends.push(start);
                }
            }
            order[start..].shuffle(&mut rng);
        }
        Order::Users => {
            for &u in &user_order {
                let start = order.len();
                order.extend(m.row_range(u as usize).map(|k| k as u32));
                order[start..].shuffle(&mut rng);
            }
            let share = m.nnz().div_ceil(threads.max(1)).max(1);
            ends.extend((1..threads).map(|k| (k * share).min(m.nnz())));
        }
    }
    ends.push(m.nnz());
    // Private copies of the most updated feature rows, with more than one thread (one thread
    // trains the shared rows directly, so its results stay exact and reproducible) and adagrad
    // (adadelta's accumulators are moving averages: changes made by two threads do not add up).
    // A user row trains once per interaction; an item row once per interaction as the positive
    // and about as often as the average item as a negative.
    let adagrad = matches!(params.schedule, Schedule::Adagrad { .. });
    let (hot_users, hot_items) = if threads > 1 && adagrad {
        let user_updates: Vec<f64> = (0..m.n_rows())
            .map(|u| m.row_range(u).len() as f64)
            .collect();
        let mean = m.nnz() as f64 / m.n_cols().max(1) as f64;
        let item_updates: Vec<f64> = column_counts(m.indices(), m.n_cols())?
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
        user_features: Features::new(data.user_features),
        item_features: Features::new(data.item_features),
        users: Shared::new(users, w, hot_users),
        items: Shared::new(items, w, hot_items),
        p: *params,
        d,
        popularity: match params.loss {
            Loss::Bpr => column_popularity(m.indices(), m.n_cols())?,
            _ => None,
        },
        stop: parallel::stop_flag(),
        decaying: params.regularization == Regularization::Decay
            && (params.item_alpha > 0.0 || params.user_alpha > 0.0),
        fold: AtomicBool::new(false),
        fold_below,
        shared: threads > 1,
        complete: complete_rows(m),
    };
    let arch = sgd_arch();
    parallel::install(num_threads, || {
        let mut start = 0;
        let mut parts: Vec<Part<'_>> = Vec::with_capacity(ends.len());
        for (k, &end) in ends.iter().enumerate() {
            parts.push(Part::new(&e, &order[start..end], stream(seed, k as u64, 5)));
            start = end;
        }
        // runs until every part is done; a part stops early only for a fold of the rows (weight
        // decay) or when the epoch is interrupted (then every part is done)
        loop {
            parts.par_iter_mut().filter(|p| !p.done()).for_each(|part| {
                arch.dispatch(Share {
                    e: &e,
                    part,
                    row_of: &row_of,
                })
            });
            if e.decaying {
                e.users.fold();
                e.items.fold();
                e.fold.store(false, Ordering::Relaxed);
            }
            if parts.iter().all(Part::done) {
                break;
            }
        }
    })?;
    e.stop.check()
}

/// LightFM's score of each `(user, item)` pair: `dot(user[..d], item[..d]) + user[d] +
/// item[d]`, from representations stored as rows `[embedding | bias]` of `d + 1` floats.
pub fn pair_scores(
    users: &[f32],
    items: &[f32],
    d: usize,
    user_ids: &[i32],
    item_ids: &[i32],
    num_threads: usize,
) -> Result<Vec<f32>> {
    let w = d + 1;
    if !users.len().is_multiple_of(w) || !items.len().is_multiple_of(w) {
        return Err(Error::invalid(
            "representations",
            format!("need rows of {w} values (embedding and bias)"),
        ));
    }
    if user_ids.len() != item_ids.len() {
        return Err(Error::shape("item_ids", user_ids.len(), item_ids.len()));
    }
    for (what, ids, n) in [
        ("user_ids", user_ids, users.len() / w),
        ("item_ids", item_ids, items.len() / w),
    ] {
        if let Some(&bad) = ids.iter().find(|&&x| x < 0 || x as usize >= n) {
            return Err(Error::out_of_range(what, bad as i64, n));
        }
    }
    const CHUNK: usize = 1 << 12;
    let mut out = vec![0f32; user_ids.len()];
    let arch = sgd_arch();
    parallel::install(num_threads, || {
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, out)| {
            let at = c * CHUNK..c * CHUNK + out.len();
            arch.dispatch(Pairs {
                users,
                items,
                w,
                pairs: (&user_ids[at.clone()], &item_ids[at]),
                out,
            })
        })
    })?;
    Ok(out)
}

/// [`pair_scores`] of a chunk of pairs.
struct Pairs<'a> {
    users: &'a [f32],
    items: &'a [f32],
    w: usize,
    pairs: (&'a [i32], &'a [i32]),
    out: &'a mut [f32],
}

impl WithSimd for Pairs<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        let (w, d) = (self.w, self.w - 1);
        let pairs = self.pairs.0.iter().zip(self.pairs.1);
        for ((&u, &i), o) in pairs.zip(self.out.iter_mut()) {
            let a = &self.users[u as usize * w..(u as usize + 1) * w];
            let b = &self.items[i as usize * w..(i as usize + 1) * w];
            *o = vdot(simd, &a[..d], &b[..d]) + a[d] + b[d];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Csr;

    /// `f` of the epoch data of interactions `x` with LightFM's default (identity) features.
    fn with_identity_features<R>(x: &Csr, f: impl FnOnce(&Data<'_>) -> R) -> R {
        let (fu, fi) = (Csr::identity(x.n_rows), Csr::identity(x.n_cols));
        let (xv, fuv, fiv) = (x.view(), fu.view(), fi.view());
        f(&Data {
            interactions: &xv,
            weights: None,
            user_features: &fuv,
            item_features: &fiv,
        })
    }

    /// Item and user parameters after `epochs` epochs of weight decay on a small problem.
    fn train(
        loss: Loss,
        schedule: Schedule,
        alpha: f32,
        threads: usize,
        fold_below: f64,
    ) -> Vec<f32> {
        let t: Vec<_> = (0..300usize)
            .map(|k| (k % 30, (k * 7 + k / 30) % 40, 1.0))
            .collect();
        let x = Csr::from_triplets(30, 40, &t).unwrap(); // ok: test data, valid triplets
        let d = 6;
        let w = d + 1;
        let start = matches!(schedule, Schedule::Adagrad { .. }) as u8 as f32;
        let init = |n: usize, k: usize| -> Vec<f32> {
            (0..n * w)
                .map(|v| ((v * 37 + k) % 101) as f32 / 101.0 - 0.5)
                .collect()
        };
        let (mut up, mut ip) = (init(30, 1), init(40, 2));
        let (mut ug, mut ig) = (vec![start; 30 * w], vec![start; 40 * w]);
        let (mut us, mut is) = (vec![0f32; 30 * w], vec![0f32; 40 * w]);
        let params = LightFmParams {
            loss,
            schedule,
            item_alpha: alpha,
            user_alpha: alpha / 2.0,
            regularization: Regularization::Decay,
            ..Default::default()
        };
        for e in 0..3 {
            let users = Side {
                params: &mut up,
                grad_acc: &mut ug,
                step_acc: &mut us,
            };
            let items = Side {
                params: &mut ip,
                grad_acc: &mut ig,
                step_acc: &mut is,
            };
            with_identity_features(&x, |data| {
                epoch_folding_below(data, users, items, d, &params, e, threads, fold_below)
            })
            .unwrap(); // ok: a test, valid shapes
        }
        ip.extend(up);
        ip
    }

    #[test]
    fn folding_the_scale_mid_epoch_changes_nothing_but_rounding() {
        let adagrad = Schedule::Adagrad { learning_rate: 0.1 };
        let adadelta = Schedule::Adadelta {
            rho: 0.9,
            epsilon: 1e-4,
        };
        for loss in [Loss::Logistic, Loss::Bpr, Loss::Warp] {
            for schedule in [adagrad, adadelta] {
                let rare = train(loss, schedule, 0.5, 1, FOLD_BELOW);
                // folds when the scale must be folded, and after almost every example
                let often = train(loss, schedule, 0.5, 1, 0.999);
                let none = train(loss, schedule, 0.0, 1, 0.0);
                let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!(
                    norm(&rare) < 0.95 * norm(&none),
                    "{loss:?} {schedule:?} {} {}",
                    norm(&rare),
                    norm(&none)
                );
                for (a, b) in rare.iter().zip(&often) {
                    assert!((a - b).abs() <= 1e-5 + 1e-4 * a.abs(), "{loss:?} {a} {b}");
                }
                // several threads: stopping for folds leaves finite, shrunk parameters
                let threads = train(loss, schedule, 0.5, 2, 0.999);
                assert!(threads.iter().all(|v| v.is_finite()));
                assert!(norm(&threads) < 0.95 * norm(&none));
            }
        }
    }

    fn rows(f: Features<'_>) -> Vec<Vec<(usize, f32)>> {
        (0..f.n_rows()).map(|r| f.row(r).collect()).collect()
    }

    #[test]
    fn epochs_without_interactions_change_nothing() {
        // no items (the first negatives would be drawn from an empty range), no users, no
        // stored entries; every loss, both orders, one and two threads
        for (n_users, n_items) in [(3, 0), (0, 4), (3, 4)] {
            let x = Csr::from_triplets(n_users, n_items, &[]).unwrap(); // ok: empty, valid
            let w = 3;
            let losses = [
                Loss::Logistic,
                Loss::Bpr,
                Loss::Warp,
                Loss::WarpKos { k: 1, n: 2 },
            ];
            for (loss, order, threads) in cases(&losses) {
                let mut u = [
                    vec![0.5f32; n_users * w],
                    vec![1.0; n_users * w],
                    vec![0.0; n_users * w],
                ];
                let mut i = [
                    vec![0.25f32; n_items * w],
                    vec![1.0; n_items * w],
                    vec![0.0; n_items * w],
                ];
                let before = (u.clone(), i.clone());
                let [up, ug, us] = &mut u;
                let [ip, ig, is] = &mut i;
                let params = LightFmParams {
                    loss,
                    order,
                    item_alpha: 0.1,
                    ..Default::default()
                };
                let users = Side {
                    params: up,
                    grad_acc: ug,
                    step_acc: us,
                };
                let items = Side {
                    params: ip,
                    grad_acc: ig,
                    step_acc: is,
                };
                let run = with_identity_features(&x, |data| {
                    epoch(data, users, items, w - 1, &params, 0, threads)
                });
                assert!(
                    run.is_ok(),
                    "{n_users} x {n_items} {loss:?} {order:?} {threads}"
                );
                assert_eq!((u, i), before, "{n_users} x {n_items} {loss:?} {order:?}");
            }
        }

        fn cases(losses: &[Loss]) -> Vec<(Loss, Order, usize)> {
            let mut out = Vec::new();
            for &loss in losses {
                for order in [Order::Users, Order::Interactions] {
                    for threads in [1, 2] {
                        out.push((loss, order, threads));
                    }
                }
            }
            out
        }
    }

    #[test]
    fn liked_items_are_known_in_either_order() {
        let t = [(0, 1), (0, 64), (0, 69), (1, 2), (2, 0), (2, 63), (2, 65)];
        let mut t: Vec<_> = t.iter().map(|&(u, i)| (u, i, 1.0)).collect();
        // rows that sorted_contains searches by blocks of 16 (user 4: 100 items, the last block
        // short), of 64 (user 5: 1,500 items) and by bisection (user 6: 5,000 items)
        t.extend((0..300).step_by(3).map(|i| (4, i, 1.0)));
        t.extend((1..3000).step_by(2).map(|i| (5, i, 1.0)));
        t.extend((0..10000).step_by(2).map(|i| (6, i, 1.0)));
        let m = Csr::from_triplets(7, 10000, &t).unwrap(); // ok: test data, valid triplets
        let v = m.view();
        for order in [Order::Users, Order::Interactions] {
            let mut liked = Liked::new(order, 10000);
            // users in any order, repeated, one without items: the set is the user's only
            for u in [0, 2, 4, 6, 2, 1, 5, 3, 0, 4, 1, 5, 6] {
                liked.load(&v, u);
                for j in 0..10000 {
                    assert_eq!(
                        liked.has(j),
                        v.contains(u, j as i32),
                        "{order:?} user {u} item {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn features_know_the_identity_and_give_every_matrix_its_rows() {
        let id = Csr::identity(5);
        let view = id.view();
        let f = Features::new(&view);
        assert!(f.identity);
        assert_eq!(rows(f), (0..5).map(|r| vec![(r, 1.0)]).collect::<Vec<_>>());
        // not the identity: a permutation, a weight other than 1, a wider matrix
        let cases = [
            Csr::from_triplets(3, 3, &[(0, 1, 1.0), (1, 0, 1.0), (2, 2, 1.0)]),
            Csr::from_triplets(3, 3, &[(0, 0, 1.0), (1, 1, 0.5), (2, 2, 1.0)]),
            Csr::from_triplets(3, 4, &[(0, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0), (2, 3, 0.25)]),
        ];
        for m in cases {
            let m = m.unwrap(); // ok: test data, valid triplets
            let v = m.view();
            let f = Features::new(&v);
            assert!(!f.identity);
            let want: Vec<Vec<(usize, f32)>> = (0..v.n_rows())
                .map(|r| {
                    let (p, w) = v.row(r);
                    p.iter().zip(w).map(|(&p, &w)| (p as usize, w)).collect()
                })
                .collect();
            assert_eq!(rows(f), want);
        }
    }
}
