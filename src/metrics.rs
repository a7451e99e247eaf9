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
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        out.par_chunks_mut(N_METRICS)
            .enumerate()
            .for_each(|(u, row)| {
                let (liked, _) = test.row(u);
                let n_pos = liked.len();
                if n_pos == 0 || stop.is_set() {
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
    stop.check()?;
    Ok(out)
}

/// Beyond-accuracy statistics of recommendation lists (row-major `n_users x width`, ids; -1 is
/// padding; only the first `k` count).
///
/// Returns `(means, per_user, counts)`:
/// - `means`: row-major `n_users x m`, the mean of each of the `m` per-item values in `item_values`
///   (row-major `n_items x m`, e.g. popularity and self-information) over the user's listed items
///   (NaN for an empty list);
/// - `per_user`: row-major `n_users x 2`, the intra-list diversity (mean over pairs of listed items
///   of `1 - cos`, from the row-normalised `vectors`, `n_items x dim`; NaN with fewer than two items
///   or without vectors) and the number of listed items;
/// - `counts`: how many lists hold each item.
#[allow(clippy::too_many_arguments)]
pub fn beyond_accuracy(
    recs: &[i32],
    width: usize,
    k: usize,
    item_values: &[f32],
    m: usize,
    vectors: Option<(&[f32], usize)>,
    n_items: usize,
    num_threads: usize,
) -> Result<(Vec<f64>, Vec<f64>, Vec<u64>)> {
    if width == 0 && !recs.is_empty() {
        return Err(Error::shape("recommendations", "a width of at least 1", 0));
    }
    let n_users = recs.len().checked_div(width).unwrap_or(0);
    if n_users * width != recs.len() {
        return Err(Error::shape(
            "recommendations (rows x width)",
            width,
            recs.len(),
        ));
    }
    if k == 0 {
        return Err(Error::invalid("K", "must be at least 1"));
    }
    if item_values.len() != n_items * m {
        return Err(Error::shape(
            "item values (n_items x m)",
            n_items * m,
            item_values.len(),
        ));
    }
    if let Some((v, dim)) = vectors {
        if v.len() != n_items * dim {
            return Err(Error::shape(
                "item vectors (n_items x dim)",
                n_items * dim,
                v.len(),
            ));
        }
    }
    if let Some(&bad) = recs.iter().find(|&&id| id >= 0 && id as usize >= n_items) {
        return Err(Error::invalid(
            "recommendations",
            format!("item {bad} is outside 0..{n_items}"),
        ));
    }
    let shown = k.min(width);
    let mut means = vec![f64::NAN; n_users * m.max(1)];
    let mut per_user = vec![f64::NAN; n_users * 2];
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        means
            .par_chunks_mut(m.max(1))
            .zip(per_user.par_chunks_mut(2))
            .enumerate()
            .for_each(|(u, (mean, stats))| {
                if stop.is_set() {
                    return; // interrupted: checked below
                }
                let list: Vec<usize> = recs[u * width..u * width + shown]
                    .iter()
                    .filter(|&&id| id >= 0)
                    .map(|&id| id as usize)
                    .collect();
                stats[1] = list.len() as f64;
                if list.is_empty() {
                    return;
                }
                for (j, slot) in mean.iter_mut().enumerate().take(m) {
                    let total: f64 = list.iter().map(|&i| item_values[i * m + j] as f64).sum();
                    *slot = total / list.len() as f64;
                }
                if let (Some((v, dim)), true) = (vectors, list.len() >= 2) {
                    let mut distance = 0.0f64;
                    for (a, &i) in list.iter().enumerate() {
                        let vi = &v[i * dim..(i + 1) * dim];
                        for &j in &list[a + 1..] {
                            let vj = &v[j * dim..(j + 1) * dim];
                            let cos: f64 = vi
                                .iter()
                                .zip(vj)
                                .map(|(x, y)| (*x as f64) * (*y as f64))
                                .sum();
                            distance += 1.0 - cos;
                        }
                    }
                    let pairs = (list.len() * (list.len() - 1) / 2) as f64;
                    stats[0] = distance / pairs;
                }
            })
    })?;
    stop.check()?;
    // the listing counts in one pass (n_users x k increments): one counter, not one per task
    let mut counts = crate::error::try_zeroed::<u64>(n_items, "item counts", || {
        format!("beyond-accuracy metrics over {n_items} items")
    })?;
    for u in 0..n_users {
        for &id in recs[u * width..u * width + shown]
            .iter()
            .filter(|&&id| id >= 0)
        {
            counts[id as usize] += 1;
        }
    }
    means.truncate(n_users * m);
    Ok((means, per_user, counts))
}

#[cfg(test)]
mod beyond_tests {
    use super::*;

    #[test]
    fn beyond_accuracy_matches_a_hand_computed_case() {
        // two users, lists of width 3 at k = 2; three items with values [v, 10 v]
        let recs = [0, 2, 1, -1, 1, 0];
        let values = [0.5f32, 5.0, 0.25, 2.5, 1.0, 10.0];
        // unit vectors: items 0 and 1 orthogonal, item 2 equal to item 0
        let vectors = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0];
        let (means, stats, counts) =
            beyond_accuracy(&recs, 3, 2, &values, 2, Some((&vectors, 2)), 3, 2).unwrap(); // ok: test
        assert_eq!(means, vec![0.75, 7.5, 0.25, 2.5]);
        assert_eq!(stats[0], 0.0); // items 0 and 2: cosine 1
        assert_eq!(stats[1], 2.0);
        assert!(stats[2].is_nan()); // one item: no pair
        assert_eq!(stats[3], 1.0);
        assert_eq!(counts, vec![1, 1, 1]);
        assert!(beyond_accuracy(&[5], 1, 1, &values, 2, None, 3, 1).is_err());
    }
}
