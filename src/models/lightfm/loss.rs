//! The step of each loss: logistic, BPR and WARP per interaction, k-OS WARP per user.

use super::hot_rows::Need;
use super::optim::{update, Which};
use super::{feature_row, represent, score, Candidates, Epoch, Local, Loss, Scratch, MAX_LOSS};
use crate::models::sgd::sigmoid;
use crate::simd::Lanes;
use rand::rngs::SmallRng;
use rand::Rng;

/// Item j's representation into `out` (see [`represent`]).
#[inline(always)]
fn item<S: Lanes>(simd: S, e: &Epoch<'_>, local: &Local, j: usize, out: &mut [f32]) {
    represent(simd, e.item_features, j, &e.items, local, out);
}

/// A pairwise step (BPR, WARP): `g` is the loss's derivative with respect to
/// `score(pos) - score(neg)`, already weighted.
#[inline(always)]
fn pairwise_update<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    s: &mut Scratch<'_>,
    u: usize,
    i: usize,
    j: usize,
    g: f32,
) {
    let d = e.d;
    // A WARP negative's accumulator rows were not requested when it was drawn (most candidates
    // never train): request them now and update the positive and the user while they arrive.
    // The three rows are distinct, so the order does not change the values.
    e.items.prefetch(e.item_features, j, Need::Train);
    // items: d score / d e_i = q_u, d score / d b_i = 1
    s.coeff[..d].copy_from_slice(&s.user[..d]);
    s.coeff[d] = 1.0;
    update(simd, e, &mut s.locals, Which::Item, i, g, &s.coeff, true);
    // the user: d / d e_u = q_i - q_j; its bias cancels
    for c in 0..d {
        s.coeff[c] = s.pos[c] - s.neg[c];
    }
    s.coeff[d] = 0.0;
    update(simd, e, &mut s.locals, Which::User, u, g, &s.coeff, false);
    s.coeff[..d].copy_from_slice(&s.user[..d]);
    s.coeff[d] = 1.0;
    update(simd, e, &mut s.locals, Which::Item, j, -g, &s.coeff, true);
}

/// WARP negative search for user u with positive score `pos_score`: trains on the first
/// uniformly drawn item that violates the margin and is not a positive (example t's
/// `candidates`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn warp_step<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    s: &mut Scratch<'_>,
    rng: &mut SmallRng,
    candidates: &mut Candidates,
    t: usize,
    u: usize,
    i: usize,
    pos_score: f32,
    weight: f32,
) {
    let n_items = e.item_features.n_rows();
    // A user who has every item has no negative to find. Tries beyond `n_items - 1` would be
    // weighted ln(max(1, (n_items - 1) / tries)) = 0, so they are never made: a huge
    // `max_sampled` costs no more than the catalogue.
    if e.has_every_item(u) {
        return;
    }
    let max_sampled = e.p.max_sampled.min(n_items - 1);
    // With one feature per item and no decay (LightFM's default), a candidate's representation
    // is its parameter row: it is scored where it lies and copied only when it is trained (the
    // same values: `represent` copies the row times a scale of 1).
    let direct = e.item_features.identity && !e.decaying;
    for sampled in 1..=max_sampled {
        let j = candidates.take(e, rng, t, sampled - 1);
        let neg_score = if direct {
            score(
                simd,
                &s.user,
                feature_row(&e.items, &s.locals.items, j),
                e.d,
            )
        } else {
            item(simd, e, &s.locals.items, j, &mut s.neg);
            score(simd, &s.user, &s.neg, e.d)
        };
        if neg_score > pos_score - 1.0 && !s.liked.has(j) {
            if direct {
                item(simd, e, &s.locals.items, j, &mut s.neg);
            }
            let rank = ((n_items - 1) / sampled).max(1) as f32;
            let g = -(weight * rank.ln()).min(MAX_LOSS);
            pairwise_update(simd, e, s, u, i, j, g);
            return;
        }
    }
}

/// Example t of the thread's share: interaction `k` of user u, item i (its negatives from
/// `candidates`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn example<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    s: &mut Scratch<'_>,
    rng: &mut SmallRng,
    candidates: &mut Candidates,
    t: usize,
    k: usize,
    u: usize,
) {
    let m = e.interactions;
    let (i, y) = (m.indices()[k] as usize, m.data()[k]);
    let weight = e.weights.map_or(1.0, |w| w[k]);
    let d = e.d;
    represent(
        simd,
        e.user_features,
        u,
        &e.users,
        &s.locals.users,
        &mut s.user,
    );
    item(simd, e, &s.locals.items, i, &mut s.pos);
    match e.p.loss {
        Loss::Logistic => {
            let target = if y > 0.0 { 1.0 } else { 0.0 };
            let g = weight * (sigmoid(score(simd, &s.user, &s.pos, d)) - target);
            s.coeff[..d].copy_from_slice(&s.user[..d]);
            s.coeff[d] = 1.0;
            update(simd, e, &mut s.locals, Which::Item, i, g, &s.coeff, true);
            s.coeff[..d].copy_from_slice(&s.pos[..d]);
            update(simd, e, &mut s.locals, Which::User, u, g, &s.coeff, true);
        }
        Loss::Bpr => {
            if y <= 0.0 {
                return;
            }
            // the item of a random interaction (by popularity, from an alias table that stays
            // in cache: the candidates) that the user does not have; a bounded search
            let mut j = None;
            if e.popularity.is_some() {
                for tries in 0..1000 {
                    let c = candidates.take(e, rng, t, tries);
                    if !s.liked.has(c) {
                        j = Some(c);
                        break;
                    }
                }
            }
            let Some(j) = j else { return };
            item(simd, e, &s.locals.items, j, &mut s.neg);
            let diff = score(simd, &s.user, &s.pos, d) - score(simd, &s.user, &s.neg, d);
            let g = -weight * (1.0 - sigmoid(diff));
            pairwise_update(simd, e, s, u, i, j, g);
        }
        Loss::Warp => {
            if y <= 0.0 {
                return;
            }
            let pos_score = score(simd, &s.user, &s.pos, d);
            warp_step(simd, e, s, rng, candidates, t, u, i, pos_score, weight);
        }
        Loss::WarpKos { .. } => {}
    }
}

/// k-OS WARP for user u.
#[inline(always)]
pub(super) fn kos_user<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    s: &mut Scratch<'_>,
    rng: &mut SmallRng,
    candidates: &mut Candidates,
    t: usize,
    u: usize,
) {
    let Loss::WarpKos { k, n } = e.p.loss else {
        return;
    };
    let (items, vals) = e.interactions.row(u);
    if items.is_empty() {
        return;
    }
    represent(
        simd,
        e.user_features,
        u,
        &e.users,
        &s.locals.users,
        &mut s.user,
    );
    s.heap.clear();
    for _ in 0..n.min(items.len()) {
        let t = rng.random_range(0..items.len());
        if vals[t] <= 0.0 {
            continue;
        }
        let i = items[t] as usize;
        item(simd, e, &s.locals.items, i, &mut s.pos);
        s.heap.push((score(simd, &s.user, &s.pos, e.d), i as u32));
    }
    if s.heap.is_empty() {
        return;
    }
    // the k-th highest scoring sample (the lowest one when fewer were drawn)
    s.heap
        .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (pos_score, i) = s.heap[k.min(s.heap.len()) - 1];
    item(simd, e, &s.locals.items, i as usize, &mut s.pos);
    warp_step(
        simd, e, s, rng, candidates, t, u, i as usize, pos_score, 1.0,
    );
}
