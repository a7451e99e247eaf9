//! Term weighting of sparse matrices (implicit 0.7's formulas): BM25, TF-IDF and L2
//! normalisation, for either orientation.
//!
//! The matrix holds documents along one axis and terms along the other. For item-item kNN the
//! items are the documents and the users the terms: N is the number of documents, the document
//! frequency of a term is the number of stored entries it has, and a document's length is the
//! sum of its values. Statistics are computed in f64; the weighted values are returned as a new
//! `data` array in the order of the input's entries (the structure is unchanged).

use super::CsrView;
use crate::error::{try_with_capacity, try_zeroed, Error, Result};
use crate::parallel;
use rayon::prelude::*;

/// Rows of a single-threaded pass between two checks of the stop flag.
const ROWS_PER_CHECK: usize = 4096;

/// Which axis of the CSR matrix holds the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Documents {
    Rows,
    Columns,
}

crate::names::by_name! { Documents, "docs",
    "rows" => Rows,
    "columns" => Columns,
}

/// A weighting scheme: [`bm25`], [`tfidf`] or [`normalize`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    Bm25 { k1: f64, b: f64 },
    TfIdf,
    Normalize,
}

crate::names::by_name! { Weighting, "scheme",
    "bm25" => Bm25 { k1: 100.0, b: 0.8 },
    "tfidf" => TfIdf,
    "normalize" => Normalize,
}

/// New values for the entries of `m` under `scheme`, the documents along `docs`.
pub fn weight(
    m: &CsrView<'_>,
    scheme: Weighting,
    docs: Documents,
    num_threads: usize,
) -> Result<Vec<f32>> {
    match scheme {
        Weighting::Bm25 { k1, b } => bm25(m, docs, k1, b, num_threads),
        Weighting::TfIdf => tfidf(m, docs, num_threads),
        Weighting::Normalize => normalize(m, docs, num_threads),
    }
}

/// Per-document and per-term statistics of one matrix.
struct Stats {
    /// Number of documents.
    n_docs: usize,
    /// Sum of values per document.
    doc_len: Vec<f64>,
    /// Stored entries per term.
    term_df: Vec<f64>,
}

fn stats(m: &CsrView<'_>, docs: Documents) -> Result<Stats> {
    let what = "the weighting statistics";
    let rows = || format!("the matrix has {} rows", m.n_rows());
    let cols = || format!("the matrix has {} columns", m.n_cols());
    let mut row_sum = try_zeroed::<f64>(m.n_rows(), what, rows)?;
    let mut col_sum = try_zeroed::<f64>(m.n_cols(), what, cols)?;
    let mut row_cnt = try_zeroed::<f64>(m.n_rows(), what, rows)?;
    let mut col_cnt = try_zeroed::<f64>(m.n_cols(), what, cols)?;
    let stop = parallel::stop_flag();
    for r in 0..m.n_rows() {
        if r % ROWS_PER_CHECK == 0 {
            stop.check()?;
        }
        let (cols, vals) = m.row(r);
        row_cnt[r] = cols.len() as f64;
        for (&c, &v) in cols.iter().zip(vals) {
            row_sum[r] += v as f64;
            col_sum[c as usize] += v as f64;
            col_cnt[c as usize] += 1.0;
        }
    }
    Ok(match docs {
        Documents::Rows => Stats {
            n_docs: m.n_rows(),
            doc_len: row_sum,
            term_df: col_cnt,
        },
        Documents::Columns => Stats {
            n_docs: m.n_cols(),
            doc_len: col_sum,
            term_df: row_cnt,
        },
    })
}

/// Applies `f(value, doc, term)` to every entry, in parallel over rows.
pub(crate) fn map_entries(
    m: &CsrView<'_>,
    docs: Documents,
    num_threads: usize,
    f: impl Fn(f64, usize, usize) -> f64 + Sync,
) -> Result<Vec<f32>> {
    let stop = parallel::stop_flag();
    let what = "the weighted values";
    let mut out = try_zeroed::<f32>(m.nnz(), what, || format!("{} stored entries", m.nnz()))?;
    let mut chunks = try_with_capacity(m.n_rows(), what, || format!("{} rows", m.n_rows()))?;
    parallel::install(num_threads, || {
        let mut rest: &mut [f32] = &mut out;
        for r in 0..m.n_rows() {
            let (head, tail) = rest.split_at_mut(m.row_range(r).len());
            chunks.push((r, head));
            rest = tail;
        }
        chunks.into_par_iter().for_each(|(r, dst)| {
            if stop.is_set() {
                return;
            }
            let (cols, vals) = m.row(r);
            for ((d, &c), &v) in dst.iter_mut().zip(cols).zip(vals) {
                let (doc, term) = match docs {
                    Documents::Rows => (r, c as usize),
                    Documents::Columns => (c as usize, r),
                };
                *d = f(v as f64, doc, term) as f32;
            }
        });
    })?;
    stop.check()?;
    Ok(out)
}

/// An error naming `what` when `m` stores a negative value (the first, by entry).
pub(crate) fn check_non_negative(what: &str, m: &CsrView<'_>) -> Result<()> {
    match m.data().iter().position(|v| *v < 0.0) {
        None => Ok(()),
        Some(p) => Err(Error::invalid(
            what,
            format!(
                "needs non-negative values, found {} at entry {p}",
                m.data()[p]
            ),
        )),
    }
}

/// `idf_t = ln N - ln(1 + df_t)`, in place of the document frequencies.
fn idf(s: Stats) -> (Vec<f64>, Vec<f64>, usize) {
    let ln_n = (s.n_docs as f64).ln();
    let mut idf = s.term_df;
    idf.iter_mut().for_each(|df| *df = ln_n - df.ln_1p());
    (idf, s.doc_len, s.n_docs)
}

/// BM25: `r (K1 + 1) / (K1 * len_d + r) * idf_t` with `len_d = (1 - B) + B * |d| / mean |d|`.
pub fn bm25(
    m: &CsrView<'_>,
    docs: Documents,
    k1: f64,
    b: f64,
    num_threads: usize,
) -> Result<Vec<f32>> {
    check_bm25(k1, b)?;
    check_non_negative("bm25 weighting", m)?;
    bm25_unchecked(m, docs, k1, b, num_threads)
}

/// The errors of [`bm25`]'s parameters.
pub(crate) fn check_bm25(k1: f64, b: f64) -> Result<()> {
    if !(k1.is_finite() && k1 >= 0.0) {
        return Err(Error::invalid(
            "K1",
            format!("must be a finite number >= 0, got {k1}"),
        ));
    }
    if !(b.is_finite() && (0.0..=1.0).contains(&b)) {
        return Err(Error::invalid("B", format!("must be in [0, 1], got {b}")));
    }
    Ok(())
}

/// [`bm25`] of a matrix whose parameters and values the caller has checked ([`check_bm25`],
/// [`check_non_negative`]).
pub(crate) fn bm25_unchecked(
    m: &CsrView<'_>,
    docs: Documents,
    k1: f64,
    b: f64,
    num_threads: usize,
) -> Result<Vec<f32>> {
    let (idf, length_norm) = bm25_stats(m, docs, b)?;
    map_entries(m, docs, num_threads, |r, d, t| {
        r * (k1 + 1.0) / (k1 * length_norm[d] + r) * idf[t]
    })
}

/// BM25's `idf_t` per term and `len_d` per document.
fn bm25_stats(m: &CsrView<'_>, docs: Documents, b: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    let (idf, mut length_norm, n_docs) = idf(stats(m, docs)?);
    let mean_len = if n_docs == 0 {
        0.0
    } else {
        length_norm.iter().sum::<f64>() / n_docs as f64
    };
    length_norm.iter_mut().for_each(|l| {
        *l = (1.0 - b)
            + if mean_len != 0.0 {
                b * *l / mean_len
            } else {
                0.0
            }
    });
    Ok((idf, length_norm))
}

/// TF-IDF: `sqrt(r) * idf_t` (not normalised; see [`normalize`]).
pub fn tfidf(m: &CsrView<'_>, docs: Documents, num_threads: usize) -> Result<Vec<f32>> {
    check_non_negative("tfidf weighting", m)?;
    tfidf_unchecked(m, docs, num_threads)
}

/// [`tfidf`] of a matrix whose values the caller has checked ([`check_non_negative`]).
pub(crate) fn tfidf_unchecked(
    m: &CsrView<'_>,
    docs: Documents,
    num_threads: usize,
) -> Result<Vec<f32>> {
    let (idf, _, _) = idf(stats(m, docs)?);
    map_entries(m, docs, num_threads, |r, _, t| r.sqrt() * idf[t])
}

/// Every document's vector divided by its L2 norm (documents with norm 0 are left at 0).
pub fn normalize(m: &CsrView<'_>, docs: Documents, num_threads: usize) -> Result<Vec<f32>> {
    let inv = inverse_norms(m, docs)?;
    map_entries(m, docs, num_threads, |r, d, _| r * inv[d])
}

/// One over the L2 norm of every document (0 for documents with norm 0).
fn inverse_norms(m: &CsrView<'_>, docs: Documents) -> Result<Vec<f64>> {
    let n_docs = match docs {
        Documents::Rows => m.n_rows(),
        Documents::Columns => m.n_cols(),
    };
    let mut sq = try_zeroed::<f64>(n_docs, "the document norms", || {
        format!("the matrix has {n_docs} documents")
    })?;
    let stop = parallel::stop_flag();
    for r in 0..m.n_rows() {
        if r % ROWS_PER_CHECK == 0 {
            stop.check()?;
        }
        let (cols, vals) = m.row(r);
        for (&c, &v) in cols.iter().zip(vals) {
            let d = if docs == Documents::Rows {
                r
            } else {
                c as usize
            };
            sq[d] += (v as f64) * (v as f64);
        }
    }
    let mut inv = sq;
    inv.iter_mut()
        .for_each(|s| *s = if *s > 0.0 { 1.0 / s.sqrt() } else { 0.0 });
    Ok(inv)
}
