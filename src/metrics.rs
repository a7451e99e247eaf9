//! Ranking metrics at K over recommendation lists and held-out test rows, per user, in parallel.

use crate::error::{Error, Result};
use crate::parallel;
use crate::sparse::CsrView;
use rayon::prelude::*;

/// Columns of the per-user metric table returned by [`ranking_metrics`], in order.
pub const METRIC_NAMES: [&str; 9] = [
    "precision", // hits / K
    "recall",    // hits / |test|
    "map",       // average precision, normalised by min(K, |test|)
    "ndcg",      // DCG / ideal DCG of min(K, |test|) hits
    "auc",       // implicit's AUC truncated at K
    "mrr",       // 1 / rank of the first hit, 0 without one
    "hit_rate",  // 1 if any hit
    "hits",      // number of hits
    "ideal",     // min(K, |test|)
];

/// Number of metric columns.
pub const N_METRICS: usize = METRIC_NAMES.len();

/// Per-user metrics of the lists `recs` (row-major `n_users x width`, ids; padding -1, or a width
/// below `k`, holds no item and so no hit) against the test rows of `test` (row i belongs to recs
/// row i), for a catalogue of `n_items` items. Returns row-major `n_users x N_METRICS` values; users
/// without test items get NaN in every column (the caller skips them). Only the first `k`
/// recommendations count; precision still divides by `k`.
///
/// `auc` follows implicit 0.7: with h hits and m misses among the recommended items, P test items
/// and N = n_items - P negatives, `(sum over misses of the hits ranked above it + (h + P) / 2 *
/// (N - m)) / (P * N)`: unranked items are assumed to rank half-way. implicit also counts empty
/// slots as misses, which only happens when K exceeds the candidates and then drives its AUC
/// towards nonsense (even below 0); here they are not items and do not count. A user whose test
/// set holds every item has no negatives and gets AUC 1.
pub fn ranking_metrics(
    recs: &[i32],
    width: usize,
    test: &CsrView<'_>,
    k: usize,
    n_items: usize,
    num_threads: usize,
) -> Result<Vec<f64>> {
    let n_users = test.n_rows();
    if recs.len() != n_users * width {
        return Err(Error::shape(
            "recommendations (one row per test user)",
            format!("{n_users} x {width} = {}", n_users * width),
            recs.len(),
        ));
    }
    if k == 0 {
        return Err(Error::invalid("K", "must be at least 1"));
    }
    if test.n_cols() > n_items {
        return Err(Error::shape(
            "test columns (at most n_items)",
            n_items,
            test.n_cols(),
        ));
    }
    // Discounts are needed down to the deepest rank that can hold a hit or be ideal; ranks past
    // the lists' width are all misses and are counted in closed form.
    let longest = (0..n_users)
        .map(|u| test.row_range(u).len())
        .max()
        .unwrap_or(0);
    let depth = k.min(width.max(longest));
    let discount: Vec<f64> = (0..depth).map(|i| 1.0 / ((i + 2) as f64).log2()).collect();
    let ideal_dcg: Vec<f64> = discount
        .iter()
        .scan(0.0, |acc, d| {
            *acc += d;
            Some(*acc)
        })
        .collect();
    let mut out = vec![f64::NAN; n_users * N_METRICS];
    parallel::install(num_threads, || {
        out.par_chunks_mut(N_METRICS)
            .enumerate()
            .for_each(|(u, row)| {
                let (liked, _) = test.row(u);
                let n_pos = liked.len();
                if n_pos == 0 {
                    return;
                }
                let list = &recs[u * width..(u + 1) * width];
                let (mut hits, mut misses) = (0usize, 0usize);
                let (mut ap, mut dcg, mut auc, mut rr) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                let shown = k.min(width);
                for (i, d) in discount.iter().enumerate().take(shown) {
                    let id = list[i];
                    if id >= 0 && liked.binary_search(&id).is_ok() {
                        hits += 1;
                        ap += hits as f64 / (i + 1) as f64;
                        dcg += d;
                        if hits == 1 {
                            rr = 1.0 / (i + 1) as f64;
                        }
                    } else if id >= 0 {
                        misses += 1;
                        auc += hits as f64;
                    }
                }
                let ideal = k.min(n_pos);
                let n_neg = n_items.saturating_sub(n_pos);
                let auc = if n_neg == 0 {
                    1.0
                } else {
                    let tail = n_neg as f64 - misses as f64;
                    (auc + (hits + n_pos) as f64 / 2.0 * tail) / (n_pos as f64 * n_neg as f64)
                };
                row.copy_from_slice(&[
                    hits as f64 / k as f64,
                    hits as f64 / n_pos as f64,
                    ap / ideal as f64,
                    dcg / ideal_dcg[ideal - 1],
                    auc,
                    rr,
                    (hits > 0) as u8 as f64,
                    hits as f64,
                    ideal as f64,
                ]);
            });
    })?;
    Ok(out)
}
