//! Exact top-k selection with a bounded heap.
//!
//! Order: higher score first; equal scores are broken by the lower id. NaN scores never enter a
//! selection (the kNN scorer marks filtered items with NaN; elsewhere, with the finite inputs the
//! Python layer admits, a NaN score is a float32 overflow, which the drivers report as an error
//! before it reaches a selection).

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    score: f32,
    id: u32,
}

/// Whether `a` ranks before `b`.
#[inline(always)]
fn better(a: Entry, b: Entry) -> bool {
    a.score > b.score || (a.score == b.score && a.id < b.id)
}

/// Best-first order of entries.
fn order(a: &Entry, b: &Entry) -> Ordering {
    if better(*a, *b) {
        Ordering::Less
    } else if better(*b, *a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// `(score, id)` as one integer that sorts best first (the order above: the higher score, not
/// NaN, then the lower id): the score's [`ordered_bits`] inverted, then the id. A selection of
/// such keys is a plain integer selection, ties included.
#[inline(always)]
pub(crate) fn rank_key(score: f32, id: u32) -> u64 {
    ((!ordered_bits(score)) as u64) << 32 | id as u64
}

/// The `(score, id)` of a [`rank_key`].
#[inline(always)]
pub(crate) fn from_rank_key(key: u64) -> (f32, u32) {
    let ordered = !((key >> 32) as u32);
    let bits = if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    };
    (f32::from_bits(bits), key as u32)
}

/// The bits of `score` mapped so that integer order is the order of scores (NaN aside):
/// negative scores flipped whole, the others with the sign bit set.
#[inline(always)]
pub(crate) fn ordered_bits(score: f32) -> u32 {
    let bits = score.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// Writes sorted `entries` into `ids` / `scores`, padding with id -1 and score `-inf`.
fn write_entries(entries: &[Entry], ids: &mut [i32], scores: &mut [f32]) {
    for (i, (id, sc)) in ids.iter_mut().zip(scores.iter_mut()).enumerate() {
        match entries.get(i) {
            Some(e) => {
                *id = e.id as i32;
                *sc = e.score;
            }
            None => {
                *id = -1;
                *sc = f32::NEG_INFINITY;
            }
        }
    }
}

/// The best `k` of the `(score, id)` pairs pushed so far. The heap keeps its worst entry at the
/// root, so a push costs one comparison unless the new entry belongs in the selection.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: Vec<Entry>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            // grows on demand: a large k must not reserve k entries per query up front
            heap: Vec::with_capacity(k.min(256)),
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Scores below this cannot enter the selection (`-inf` while it holds fewer than `k`, `+inf`
    /// when `k == 0`). A score equal to it may still enter if its id is lower than the worst entry's.
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        match self.heap.first() {
            _ if self.heap.len() < self.k => f32::NEG_INFINITY,
            Some(worst) => worst.score,
            None => f32::INFINITY,
        }
    }

    /// Offers `(score, id)` to the selection.
    #[inline]
    pub fn push(&mut self, score: f32, id: u32) {
        if score.is_nan() || self.k == 0 {
            return;
        }
        let e = Entry { score, id };
        if self.heap.len() < self.k {
            self.heap.push(e);
            self.sift_up(self.heap.len() - 1);
        } else if better(e, self.heap[0]) {
            self.heap[0] = e;
            self.sift_down(0);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if better(self.heap[parent], self.heap[i]) {
                self.heap.swap(parent, i);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut worst = i;
            if l < n && better(self.heap[worst], self.heap[l]) {
                worst = l;
            }
            if r < n && better(self.heap[worst], self.heap[r]) {
                worst = r;
            }
            if worst == i {
                break;
            }
            self.heap.swap(i, worst);
            i = worst;
        }
    }

    /// Writes the selection best-first into `ids` / `scores` (equal lengths, at least `len()`),
    /// pads the rest with id -1 and score `-inf`, and empties the selection.
    pub fn write_sorted(&mut self, ids: &mut [i32], scores: &mut [f32]) {
        self.heap.sort_unstable_by(order);
        write_entries(&self.heap, ids, scores);
        self.heap.clear();
    }
}

/// The best `k` of the `(score, id)` pairs pushed so far, with the same order and results as
/// [`TopK`] but amortised work: pushes append to a buffer of `2k` (at least `k + 32`) entries, and
/// when it is full a linear-time selection keeps the best `k` and raises the threshold to the k-th
/// best score. Its threshold lags behind a heap's, so more pushes get through, but each costs a
/// store instead of a sift through cold memory: the better choice where many selections receive
/// pushes in an interleaved order (the kNN fit's per-row selections), the worse one for a scan
/// that keeps one selection hot (measured 7% slower there).
#[derive(Debug, Clone)]
pub struct TopKBuffer {
    k: usize,
    cap: usize,
    buf: Vec<Entry>,
    threshold: f32,
}

impl TopKBuffer {
    pub fn new(k: usize) -> Self {
        let cap = if k == 0 { 0 } else { (2 * k).max(k + 32) };
        TopKBuffer {
            k,
            cap,
            // allocated on the first push: most selections of a large catalogue (or of a K
            // beyond it) never receive one, and would otherwise each hold 2K entries
            buf: Vec::new(),
            threshold: if k == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            },
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of entries the selection will return (at most `k`).
    pub fn len(&self) -> usize {
        self.buf.len().min(self.k)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.threshold = if self.k == 0 {
            f32::INFINITY
        } else {
            f32::NEG_INFINITY
        };
    }

    /// Scores below this cannot enter the selection (`-inf` until `k` entries have been kept,
    /// `+inf` when `k == 0`). A score equal to it may still enter if its id is lower.
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Offers `(score, id)` to the selection.
    #[inline]
    pub fn push(&mut self, score: f32, id: u32) {
        if self.k == 0 || score.is_nan() || score < self.threshold {
            return;
        }
        if self.buf.capacity() == 0 {
            // a small selection gets its whole buffer at once; a large one grows as it fills
            self.buf.reserve_exact(self.cap.min(256));
        }
        self.buf.push(Entry { score, id });
        if self.buf.len() == self.cap {
            self.compact();
        }
    }

    /// Keeps the best `k` entries and sets the threshold to the worst of them.
    fn compact(&mut self) {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable_by(self.k - 1, order);
            self.buf.truncate(self.k);
        }
        if self.buf.len() == self.k {
            self.threshold = self
                .buf
                .iter()
                .map(|e| e.score)
                .fold(f32::INFINITY, f32::min);
        }
    }

    /// Writes the selection best-first into `ids` / `scores` (equal lengths, at least `len()`),
    /// pads the rest with id -1 and score `-inf`, and empties the selection.
    pub fn write_sorted(&mut self, ids: &mut [i32], scores: &mut [f32]) {
        self.buf.sort_unstable_by(order);
        self.buf.truncate(self.k);
        write_entries(&self.buf, ids, scores);
        self.clear();
    }
}

/// The best `k` entries of one score row, skipping the positions in `excluded` (sorted). Returns
/// `(ids, scores)` of length `min(k, scores.len() - excluded)` (fewer only if scores hold NaN).
pub fn top_k(scores: &[f32], k: usize, excluded: &[u32]) -> (Vec<i32>, Vec<f32>) {
    let mut sel = TopK::new(k);
    for (j, &s) in scores.iter().enumerate() {
        if s >= sel.threshold() && excluded.binary_search(&(j as u32)).is_err() {
            sel.push(s, j as u32);
        }
    }
    let n = sel.len();
    let mut ids = vec![0i32; n];
    let mut out = vec![0f32; n];
    sel.write_sorted(&mut ids, &mut out);
    (ids, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rank keys sort as the best-first order of their scores and ids (negative, zero, infinite
    /// scores, ties), and give back the pair.
    #[test]
    fn rank_keys_sort_best_first() {
        let scores = [
            3.5f32,
            -0.0,
            0.0,
            -2.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
            3.5,
            f32::MAX,
            -f32::MAX,
        ];
        let mut entries: Vec<Entry> = scores
            .iter()
            .enumerate()
            .map(|(i, &score)| Entry {
                score,
                id: (7 * i % 11) as u32,
            })
            .collect();
        let mut keys: Vec<u64> = entries.iter().map(|e| rank_key(e.score, e.id)).collect();
        keys.sort_unstable();
        entries.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        let back: Vec<(u32, u32)> = keys
            .iter()
            .map(|&key| from_rank_key(key))
            .map(|(s, id)| (s.to_bits(), id))
            .collect();
        let expected: Vec<(u32, u32)> = entries.iter().map(|e| (e.score.to_bits(), e.id)).collect();
        assert_eq!(back, expected);
    }
}
