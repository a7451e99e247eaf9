//! Item-item nearest neighbours: the similarity fit (a sparse product of the weighted item x user
//! matrix with its transpose, keeping the top K per item) and the scorers that recommend from it
//! through the shared top-k driver.

use crate::error::{Error, Result};
use crate::parallel;
use crate::sparse::weighting::{self, Documents};
use crate::sparse::{transpose, Csr, CsrView};
use crate::topk::{BlockScorer, Candidates, TopK};
use rayon::prelude::*;

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

/// A per-thread accumulator over items: the running sum and the item (plus one) it was last reset
/// for, so that a row only touches the entries it uses.
#[derive(Clone, Copy, Default)]
struct Slot {
    sum: f64,
    owner: u32,
}

struct FitScratch {
    slots: Vec<Slot>,
    touched: Vec<u32>,
    top: TopK,
    ids: Vec<i32>,
    vals: Vec<f32>,
    order: Vec<(i32, f32)>,
}

/// One task's rows of the similarity matrix.
struct Band {
    lens: Vec<i64>,
    indices: Vec<i32>,
    data: Vec<f32>,
}

/// The item x item similarity of `user_items` (users x items), keeping the `k` largest entries
/// of every row (ties to the lower item id), rows in canonical CSR order. Never materialises the
/// full product: each item's row is accumulated in a per-thread scratch over the items it
/// co-occurs with, then reduced to its top k. The result does not depend on the thread count.
pub fn item_knn(user_items: &CsrView<'_>, params: &KnnParams, num_threads: usize) -> Result<Csr> {
    if params.k == 0 {
        return Err(Error::invalid("K", "must be at least 1"));
    }
    let n_items = user_items.n_cols();
    if n_items >= u32::MAX as usize {
        return Err(Error::invalid("user_items", "too many items"));
    }
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
    let items = transpose(&users, num_threads)?;
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

    let k = params.k;
    let n_tasks = n_items.div_ceil(ITEMS_PER_TASK);
    let bands: Vec<Band> = parallel::install(num_threads, || {
        (0..n_tasks)
            .into_par_iter()
            .map_init(
                || FitScratch {
                    slots: vec![Slot::default(); n_items],
                    touched: Vec::new(),
                    top: TopK::new(k),
                    ids: vec![0; k],
                    vals: vec![0.0; k],
                    order: Vec::with_capacity(k),
                },
                |s, task| {
                    let rows = task * ITEMS_PER_TASK..((task + 1) * ITEMS_PER_TASK).min(n_items);
                    let mut band = Band {
                        lens: Vec::with_capacity(rows.len()),
                        indices: Vec::new(),
                        data: Vec::new(),
                    };
                    for i in rows {
                        let owner = i as u32 + 1;
                        s.touched.clear();
                        let (us, ws) = items.row(i);
                        for (&u, &w1) in us.iter().zip(ws) {
                            let w1 = w1 as f64;
                            let (js, ws2) = users.row(u as usize);
                            for (&j, &w2) in js.iter().zip(ws2) {
                                let slot = &mut s.slots[j as usize];
                                if slot.owner != owner {
                                    slot.owner = owner;
                                    slot.sum = 0.0;
                                    s.touched.push(j as u32);
                                }
                                slot.sum += w1 * w2 as f64;
                            }
                        }
                        s.top.clear();
                        let pearson = params.similarity == Similarity::Pearson;
                        if !pearson || varies[i] {
                            for &j in &s.touched {
                                let j = j as usize;
                                let dot = s.slots[j].sum;
                                let v = if pearson {
                                    if !varies[j] {
                                        continue;
                                    }
                                    (dot - sums[i] * sums[j] / n)
                                        / (centred_sq[i] * centred_sq[j]).sqrt()
                                } else {
                                    dot
                                };
                                s.top.push(v as f32, j as u32);
                            }
                        }
                        let kept = s.top.len();
                        s.top.write_sorted(&mut s.ids[..kept], &mut s.vals[..kept]);
                        s.order.clear();
                        s.order.extend(
                            s.ids[..kept]
                                .iter()
                                .copied()
                                .zip(s.vals[..kept].iter().copied()),
                        );
                        s.order.sort_unstable_by_key(|e| e.0);
                        band.lens.push(kept as i64);
                        band.indices.extend(s.order.iter().map(|e| e.0));
                        band.data.extend(s.order.iter().map(|e| e.1));
                    }
                    band
                },
            )
            .collect()
    })?;

    let nnz: usize = bands.iter().map(|b| b.indices.len()).sum();
    let mut indptr = Vec::with_capacity(n_items + 1);
    indptr.push(0i64);
    let mut indices = Vec::with_capacity(nnz);
    let mut data = Vec::with_capacity(nnz);
    for b in bands {
        for len in b.lens {
            let last = *indptr.last().unwrap_or(&0);
            indptr.push(last + len);
        }
        indices.extend(b.indices);
        data.extend(b.data);
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

/// The tile height for a scorer writing whole rows of `n_positions` scores: about 1 MiB of
/// scores, a multiple of 16 queries when possible, 1 to 64.
fn rows_per_block(n_positions: usize) -> usize {
    let m = ((1usize << 18) / n_positions.max(1)).clamp(1, 64);
    if m >= 16 {
        m / 16 * 16
    } else {
        m
    }
}

/// Recommendation scores from a similarity matrix: `score_j = sum over the query's items i of
/// r_i * S[i, j]`, with the values of the query rows as given. Items no neighbour reaches score 0.
pub struct KnnScorer<'a> {
    queries: CsrView<'a>,
    similarity: CsrView<'a>,
    positions: Option<Vec<u32>>,
    n_positions: usize,
}

impl<'a> KnnScorer<'a> {
    /// `queries`: one row per query over the items; `similarity`: items x items.
    pub fn new(
        queries: CsrView<'a>,
        similarity: CsrView<'a>,
        candidates: &Candidates,
    ) -> Result<Self> {
        check_similarity(&similarity, candidates)?;
        if queries.n_cols() != similarity.n_rows() {
            return Err(Error::shape(
                "user_items columns (items)",
                similarity.n_rows(),
                queries.n_cols(),
            ));
        }
        Ok(KnnScorer {
            queries,
            similarity,
            positions: positions(candidates),
            n_positions: candidates.n_positions(),
        })
    }
}

fn check_similarity(similarity: &CsrView<'_>, candidates: &Candidates) -> Result<()> {
    if similarity.n_rows() != similarity.n_cols() || similarity.n_cols() != candidates.n_items() {
        return Err(Error::shape(
            "similarity (items x items)",
            format!("{0} x {0}", candidates.n_items()),
            format!("{} x {}", similarity.n_rows(), similarity.n_cols()),
        ));
    }
    Ok(())
}

/// Scatters `weight * S[i, :]` into column `q` of a position-major tile.
#[inline]
fn scatter(
    out: &mut [f32],
    m: usize,
    q: usize,
    row: (&[i32], &[f32]),
    weight: f32,
    positions: Option<&[u32]>,
    assign: bool,
) {
    for (&j, &s) in row.0.iter().zip(row.1) {
        let p = match positions {
            None => j as usize,
            Some(pos) => match pos[j as usize] {
                u32::MAX => continue,
                p => p as usize,
            },
        };
        let cell = &mut out[p * m + q];
        if assign {
            *cell = s;
        } else {
            *cell += weight * s;
        }
    }
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

    fn score_tile(&self, q0: usize, m: usize, p0: usize, nt: usize, out: &mut [f32], _: &mut ()) {
        debug_assert!(p0 == 0 && nt == self.n_positions, "rows are scored whole");
        let out = &mut out[..m * nt];
        out.fill(0.0);
        for q in 0..m {
            let (items, values) = self.queries.row(q0 + q);
            for (&i, &r) in items.iter().zip(values) {
                let row = self.similarity.row(i as usize);
                scatter(out, m, q, row, r, self.positions.as_deref(), false);
            }
        }
    }
}

/// The stored neighbours of query items: row `i` of S as scores, NaN (never selected) for the
/// items that are not among its neighbours, so results hold only real neighbours.
pub struct NeighbourScorer<'a> {
    items: &'a [i32],
    similarity: CsrView<'a>,
    positions: Option<Vec<u32>>,
    n_positions: usize,
}

impl<'a> NeighbourScorer<'a> {
    pub fn new(items: &'a [i32], similarity: CsrView<'a>, candidates: &Candidates) -> Result<Self> {
        check_similarity(&similarity, candidates)?;
        let n = similarity.n_rows();
        if let Some(&bad) = items.iter().find(|&&i| i < 0 || i as usize >= n) {
            return Err(Error::out_of_range("itemid", bad as i64, n));
        }
        Ok(NeighbourScorer {
            items,
            similarity,
            positions: positions(candidates),
            n_positions: candidates.n_positions(),
        })
    }
}

impl BlockScorer for NeighbourScorer<'_> {
    type Scratch = ();

    fn n_queries(&self) -> usize {
        self.items.len()
    }

    fn n_positions(&self) -> usize {
        self.n_positions
    }

    fn tile_shape(&self) -> (usize, usize) {
        (rows_per_block(self.n_positions), self.n_positions)
    }

    fn make_scratch(&self) {}

    fn score_tile(&self, q0: usize, m: usize, p0: usize, nt: usize, out: &mut [f32], _: &mut ()) {
        debug_assert!(p0 == 0 && nt == self.n_positions, "rows are scored whole");
        let out = &mut out[..m * nt];
        out.fill(f32::NAN);
        for q in 0..m {
            let row = self.similarity.row(self.items[q0 + q] as usize);
            scatter(out, m, q, row, 1.0, self.positions.as_deref(), true);
        }
    }
}
