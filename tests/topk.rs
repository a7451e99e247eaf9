//! Top-k selection and the batched driver against full sorts of dense scores.
#![allow(clippy::needless_range_loop)] // index loops keep the references plain

use ndarray::Array2;
use proptest::prelude::*;
use tacitrec::sparse::Csr;
use tacitrec::topk::{
    recommend_batch, recommend_dot, top_k, Candidates, DotParams, DotScorer, TopK, TopKBuffer,
};
use tacitrec::Error;

/// Reference: every allowed (score, id) sorted by score desc, id asc, cut at k.
fn reference(scores: &[f32], allowed: impl Fn(usize) -> bool, k: usize) -> Vec<(i32, f32)> {
    let mut all: Vec<(i32, f32)> = (0..scores.len())
        .filter(|&j| allowed(j))
        .map(|j| (j as i32, scores[j]))
        .collect();
    all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

proptest! {
    #[test]
    fn top_k_equals_head_of_full_sort(
        // few distinct values so that ties are common
        scores in prop::collection::vec((-4i32..4).prop_map(|v| v as f32 * 0.5), 0..300),
        k in 0usize..40,
        excluded in prop::collection::btree_set(0u32..300, 0..50),
    ) {
        let excluded: Vec<u32> = excluded.into_iter().collect();
        let (ids, sc) = top_k(&scores, k, &excluded);
        let want = reference(&scores, |j| excluded.binary_search(&(j as u32)).is_err(), k);
        let got: Vec<(i32, f32)> = ids.into_iter().zip(sc).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn buffered_selection_equals_heap_selection(
        pushes in prop::collection::vec(((-4i32..4).prop_map(|v| v as f32 * 0.5), 0u32..500), 0..400),
        k in 0usize..50,
    ) {
        let (mut heap, mut buf) = (TopK::new(k), TopKBuffer::new(k));
        for &(s, id) in &pushes {
            heap.push(s, id);
            buf.push(s, id);
            // the buffer's threshold may lag but never passes the heap's
            prop_assert!(buf.threshold() <= heap.threshold() || k == 0);
        }
        prop_assert_eq!(heap.len(), buf.len());
        let n = heap.len();
        let (mut a, mut b) = ((vec![0i32; n], vec![0f32; n]), (vec![0i32; n], vec![0f32; n]));
        heap.write_sorted(&mut a.0, &mut a.1);
        buf.write_sorted(&mut b.0, &mut b.1);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn batch_equals_dense_reference(
        n_users in 1usize..90,
        n_items in 1usize..70,
        factors in prop_oneof![0usize..5, 14usize..70],
        k in 1usize..20,
        seed in 0u64..1000,
        use_items in any::<bool>(),
        use_filter in any::<bool>(),
        use_liked in any::<bool>(),
        threads in 1usize..4,
    ) {
        // small integer factors: exact dot products and many ties
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let q = Array2::from_shape_fn((n_users, factors), |_| (next() % 5) as f32 - 2.0);
        let it = Array2::from_shape_fn((n_items, factors), |_| (next() % 5) as f32 - 2.0);
        let items: Vec<i32> = (0..n_items as i32).filter(|_| next() % 2 == 0).collect();
        let filter: Vec<i32> = (0..n_items as i32).filter(|_| next() % 4 == 0).collect();
        let mut trip = Vec::new();
        for u in 0..n_users {
            for j in 0..n_items {
                if next() % 3 == 0 { trip.push((u, j, 1.0)); }
            }
        }
        let liked = Csr::from_triplets(n_users, n_items, &trip).unwrap();
        let cands = Candidates::new(
            n_items,
            use_items.then_some(&items[..]),
            use_filter.then_some(&filter[..]),
        ).unwrap();
        let scorer = DotScorer::new(q.view(), it.view(), &cands).unwrap();
        let lv = liked.view();
        let res = recommend_batch(&scorer, &cands, use_liked.then_some(&lv), k, threads).unwrap();

        let in_items = |j: usize| !use_items || items.contains(&(j as i32));
        let in_filter = |j: usize| use_filter && filter.contains(&(j as i32));
        let n_cand = (0..n_items).filter(|&j| in_items(j) && !in_filter(j)).count();
        let kk = k.min(n_cand);
        prop_assert_eq!(res.k, kk);
        for u in 0..n_users {
            let scores: Vec<f32> = (0..n_items).map(|j| q.row(u).dot(&it.row(j))).collect();
            let want = reference(&scores, |j| {
                in_items(j) && !in_filter(j) && !(use_liked && lv.contains(u, j as i32))
            }, kk);
            for (i, (id, sc)) in res.ids[u * kk..(u + 1) * kk].iter().zip(&res.scores[u * kk..(u + 1) * kk]).enumerate() {
                match want.get(i) {
                    Some(&(wid, wsc)) => { prop_assert_eq!(*id, wid); prop_assert_eq!(*sc, wsc); }
                    None => { prop_assert_eq!(*id, -1); prop_assert_eq!(*sc, f32::NEG_INFINITY); }
                }
            }
        }
    }
}

#[test]
fn heap_breaks_ties_by_lower_id_whatever_the_push_order() {
    let mut t = TopK::new(3);
    for &(s, id) in &[
        (1.0, 9u32),
        (2.0, 5),
        (1.0, 3),
        (1.0, 1),
        (2.0, 7),
        (0.5, 0),
    ] {
        t.push(s, id);
    }
    let (mut ids, mut sc) = ([0i32; 5], [0f32; 5]);
    t.write_sorted(&mut ids, &mut sc);
    assert_eq!(ids, [5, 7, 1, -1, -1]);
    assert_eq!(sc[..3], [2.0, 2.0, 1.0]);
    assert!(sc[3..].iter().all(|s| *s == f32::NEG_INFINITY));
    assert!(t.is_empty());
}

#[test]
fn nan_scores_are_never_selected() {
    let (ids, _) = top_k(&[f32::NAN, 1.0, f32::NAN, 0.0], 4, &[]);
    assert_eq!(ids, vec![1, 3]);
}

#[test]
fn padding_when_user_has_fewer_candidates_than_k() {
    // 3 items, the user liked 2 of them: k' = 3 but only one candidate remains.
    let q = Array2::from_elem((1, 1), 1.0f32);
    let it = Array2::from_shape_vec((3, 1), vec![3.0, 2.0, 1.0]).unwrap();
    let liked = Csr::from_triplets(1, 3, &[(0, 0, 1.0), (0, 2, 1.0)]).unwrap();
    let cands = Candidates::all(3);
    let s = DotScorer::new(q.view(), it.view(), &cands).unwrap();
    let r = recommend_batch(&s, &cands, Some(&liked.view()), 10, 1).unwrap();
    assert_eq!(r.k, 3);
    assert_eq!(r.ids, vec![1, -1, -1]);
    assert_eq!(r.scores[0], 2.0);
}

#[test]
fn scores_that_overflow_float32_fail_the_call() {
    // Finite factors whose products pass float32's largest value (1e20 * 1e20 = 1e40): item 0
    // scores +inf (it would rank first, its ties broken by id), items 1 and 5 -inf (in a
    // selection not yet full, an item that looks like padding), item 2 `inf - inf` = NaN (it would
    // be dropped as if filtered), item 3 2e20 and item 4 0 (finite).
    let big = 1e20f32;
    let q = Array2::from_shape_vec((1, 2), vec![big, big]).unwrap();
    let rows = [
        [big, big],
        [-big, -big],
        [big, -big],
        [1.0, 1.0],
        [0.0, 0.0],
        [-big, -big],
    ];
    let it = Array2::from_shape_fn((6, 2), |(i, j)| rows[i][j]);
    let overflowed = |excluded: &[i32], liked: &[usize], k: usize| {
        let cands = Candidates::new(6, None, Some(excluded)).unwrap();
        let s = DotScorer::new(q.view(), it.view(), &cands).unwrap();
        let trip: Vec<_> = liked.iter().map(|&j| (0, j, 1.0)).collect();
        let liked = Csr::from_triplets(1, 6, &trip).unwrap();
        let mut out = None;
        for threads in [1, 3] {
            let r = recommend_batch(&s, &cands, Some(&liked.view()), k, threads);
            let r = match r {
                Err(Error::InvalidArgument { what, reason }) => {
                    assert_eq!(what, "scores");
                    assert!(reason.contains("overflowed float32"), "{reason}");
                    None
                }
                Err(e) => panic!("unexpected error {e}"),
                Ok(r) => Some(r.ids),
            };
            assert!(out.is_none() || out == Some(r.clone()));
            out = Some(r);
        }
        out.unwrap()
    };
    // +inf; -inf before the selection is full; NaN
    assert_eq!(overflowed(&[], &[], 5), None);
    assert_eq!(overflowed(&[0, 2], &[], 3), None);
    assert_eq!(overflowed(&[0, 1, 5], &[], 1), None);
    // -inf below a full selection ranks where it belongs (last): not an error
    assert_eq!(overflowed(&[0, 1, 2], &[], 2), Some(vec![3, 4]));
    // nor are overflowed scores of items that are filtered, by the candidates or as liked (the
    // rows padded as any row with fewer candidates than k)
    assert_eq!(
        overflowed(&[5], &[0, 1, 2], 6),
        Some(vec![3, 4, -1, -1, -1])
    );
}

#[test]
fn large_batch_spans_many_blocks_and_tiles() {
    // More than one 64-query block and one 2048-position tile, checked against a dense sort.
    let (n_users, n_items, f) = (130usize, 5000usize, 8usize);
    let q = Array2::from_shape_fn((n_users, f), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
    let it = Array2::from_shape_fn((n_items, f), |(i, j)| ((i * 5 + j * 13) % 17) as f32 - 8.0);
    let cands = Candidates::new(n_items, None, Some(&[4999, 0, 17])).unwrap();
    let s = DotScorer::new(q.view(), it.view(), &cands).unwrap();
    let r = recommend_batch(&s, &cands, None, 25, 2).unwrap();
    for u in 0..n_users {
        let scores: Vec<f32> = (0..n_items).map(|j| q.row(u).dot(&it.row(j))).collect();
        let want = reference(&scores, |j| ![4999, 0, 17].contains(&j), 25);
        let got: Vec<(i32, f32)> = (0..25)
            .map(|i| (r.ids[u * 25 + i], r.scores[u * 25 + i]))
            .collect();
        assert_eq!(got, want, "user {u}");
    }
}

#[test]
fn few_queries_over_many_positions_equal_a_dense_sort_for_any_thread_count() {
    // Fewer query blocks than threads over 90,000 positions: the driver cuts the positions into
    // parts, selects per part and merges. Small integer factors make ties common (ties must still
    // go to the lower id across parts); a subset, filters and liked items fall in every part, and
    // with `sparse_tail` the filters leave the later parts fewer candidates than k.
    let (n_items, f) = (90_000usize, 3usize);
    let mut s = 0x2545_f491_u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let it = Array2::from_shape_fn((n_items, f), |_| (next() % 7) as f32 - 3.0);
    let items: Vec<i32> = (0..n_items as i32).filter(|_| next() % 8 != 0).collect();
    let some: Vec<i32> = (0..n_items as i32).filter(|_| next() % 50 == 0).collect();
    let tail: Vec<i32> = (30_000..n_items as i32)
        .filter(|i| i % 10_000 != 7)
        .collect();
    for (nq, k, use_items, sparse_tail) in [
        (1, 1, false, false),
        (1, 10, true, false),
        (1, 10, false, true),
        (3, 300, false, false),
        (65, 7, true, false),
    ] {
        let filter = if sparse_tail { &tail } else { &some };
        let q = Array2::from_shape_fn((nq, f), |_| (next() % 5) as f32 - 2.0);
        let mut trip = Vec::new();
        for u in 0..nq {
            for _ in 0..40 {
                trip.push((u, (next() % n_items as u64) as usize, 1.0));
            }
        }
        let liked = Csr::from_triplets(nq, n_items, &trip).unwrap();
        let lv = liked.view();
        let cands =
            Candidates::new(n_items, use_items.then_some(&items[..]), Some(filter)).unwrap();
        let scorer = DotScorer::new(q.view(), it.view(), &cands).unwrap();
        let mut first = None;
        for threads in [1, 2, 5, 16] {
            let r = recommend_batch(&scorer, &cands, Some(&lv), k, threads).unwrap();
            for u in 0..nq {
                let scores: Vec<f32> = (0..n_items).map(|j| q.row(u).dot(&it.row(j))).collect();
                let want = reference(
                    &scores,
                    |j| {
                        (!use_items || items.binary_search(&(j as i32)).is_ok())
                            && filter.binary_search(&(j as i32)).is_err()
                            && !lv.contains(u, j as i32)
                    },
                    k,
                );
                let got: Vec<(i32, f32)> = (0..k)
                    .map(|i| (r.ids[u * k + i], r.scores[u * k + i]))
                    .collect();
                assert_eq!(
                    got, want,
                    "{nq} queries, k={k}, {threads} threads, query {u}"
                );
            }
            match &first {
                None => first = Some(r),
                Some(a) => assert_eq!(a, &r),
            }
        }
    }
}

#[test]
fn cosine_scores_divide_by_the_item_norms() {
    // Gaussian factors (no near ties), a zero item row, a subset and filters, one query (the
    // streamed kernel, its positions split into parts on 2 threads) and a block of five (GEMM):
    // ids as a float64 reference ranks them, scores within float32 rounding.
    let (n_items, f) = (70_000usize, 24usize);
    let mut s = 0x9e37_79b9_7f4a_7c15_u64;
    let mut gauss = move || {
        let mut u = [0f64; 2];
        for v in &mut u {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *v = ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        }
        ((-2.0 * u[0].ln()).sqrt() * (std::f64::consts::TAU * u[1]).cos()) as f32
    };
    let mut it = Array2::from_shape_fn((n_items, f), |_| gauss());
    it.row_mut(3).fill(0.0);
    let items: Vec<i32> = (0..n_items as i32).filter(|i| i % 5 != 1).collect();
    let filter = [0, 7, 69_999];
    for (nq, use_items) in [(1usize, false), (1, true), (5, true)] {
        let q = Array2::from_shape_fn((nq, f), |_| gauss());
        let cands =
            Candidates::new(n_items, use_items.then_some(&items[..]), Some(&filter)).unwrap();
        let params = DotParams {
            cosine: true,
            ..DotParams::default()
        };
        let k = 30;
        let r = recommend_dot(q.view(), it.view(), &cands, None, k, 2, params).unwrap();
        for u in 0..nq {
            let cos = |j: usize| {
                let (a, b) = (q.row(u), it.row(j));
                let d: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
                let n: f64 = b.iter().map(|y| *y as f64 * *y as f64).sum::<f64>().sqrt();
                if n > 0.0 {
                    d / n
                } else {
                    0.0
                }
            };
            let allowed = |j: usize| (!use_items || j % 5 != 1) && !filter.contains(&(j as i32));
            let mut want: Vec<(usize, f64)> = (0..n_items)
                .filter(|&j| allowed(j))
                .map(|j| (j, cos(j)))
                .collect();
            want.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
            for (i, &(j, c)) in want[..k].iter().enumerate() {
                assert_eq!(
                    r.ids[u * k + i],
                    j as i32,
                    "{nq} queries, query {u}, rank {i}"
                );
                let got = r.scores[u * k + i] as f64;
                assert!(
                    (got - c).abs() <= 1e-5 * c.abs().max(1.0),
                    "{got} against {c}"
                );
            }
        }
    }
    // the zero row scores 0 (not NaN): a query orthogonal to nothing ranks it among the zeros
    let q = Array2::from_elem((1, f), 0.0f32);
    let cands = Candidates::new(n_items, Some(&[3, 4, 5]), None).unwrap();
    let params = DotParams {
        cosine: true,
        ..DotParams::default()
    };
    let r = recommend_dot(q.view(), it.view(), &cands, None, 3, 1, params).unwrap();
    assert_eq!(r.ids, vec![3, 4, 5]);
    assert_eq!(r.scores, vec![0.0; 3]);
    let _ = DotScorer::new(q.view(), it.view(), &cands)
        .unwrap()
        .cosine();
}

#[test]
fn candidates_validate_ids_and_shapes() {
    assert!(matches!(
        Candidates::new(5, Some(&[1, 5]), None).unwrap_err(),
        Error::OutOfRange {
            index: 5,
            bound: 5,
            ..
        }
    ));
    assert!(matches!(
        Candidates::new(5, None, Some(&[-1])).unwrap_err(),
        Error::OutOfRange { index: -1, .. }
    ));
    let c = Candidates::new(10, Some(&[7, 2, 2, 9, 4]), Some(&[9, 1])).unwrap();
    assert_eq!(c.subset(), Some(&[2u32, 4, 7][..]));
    assert_eq!(c.available(), 3);
    assert_eq!(c.position(7), Some(2));
    assert_eq!(c.position(9), None);
    let q = Array2::<f32>::zeros((2, 3));
    let it = Array2::<f32>::zeros((10, 4));
    assert!(matches!(
        DotScorer::new(q.view(), it.view(), &c),
        Err(Error::Shape { .. })
    ));
    // liked rows must match the queries
    let it = Array2::<f32>::zeros((10, 3));
    let s = DotScorer::new(q.view(), it.view(), &c).unwrap();
    let liked = Csr::from_triplets(3, 10, &[]).unwrap();
    assert!(matches!(
        recommend_batch(&s, &c, Some(&liked.view()), 2, 1),
        Err(Error::Shape { .. })
    ));
}
