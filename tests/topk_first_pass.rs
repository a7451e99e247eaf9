//! The int8 first pass of exact top-k ([`recommend_dot`]) against the full f32 path
//! ([`recommend_batch`] over a [`DotScorer`]): identical ids, order and score bits on random,
//! tied, tiny, huge, zero and trained-like (power-law norm) factors, with every filter.
#![allow(clippy::needless_range_loop)] // index loops keep the references plain

use ndarray::Array2;
use proptest::prelude::*;
use tacitrec::sparse::Csr;
use tacitrec::topk::{
    chain_matches_gemm, exact_dot, first_pass_applies, recommend_batch, recommend_dot, BlockScorer,
    Candidates, DotParams, DotScorer, FirstPass, TopKResult,
};
use tacitrec::Error;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        let (a, b) = (self.uniform().max(1e-7), self.uniform());
        (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos()
    }
}

/// The kinds of factor tables the property test draws.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauss,
    /// small integers: exact dot products, heavy ties
    Ties,
    /// every row scaled by 2^-35
    Tiny,
    /// every row scaled by 2^35
    Huge,
    /// Gaussian rows with power-law norms (trained-like), a quarter of the rows zero
    PowerLawZeros,
    /// a few values beyond the first pass's range (forces the full path)
    OutOfRange,
    /// one infinite item value (forces the full path)
    NonFinite,
}

fn table(rng: &mut Rng, rows: usize, f: usize, kind: Kind) -> Array2<f32> {
    let mut a = Array2::from_shape_fn((rows, f), |_| match kind {
        Kind::Ties => (rng.next() % 5) as f32 - 2.0,
        _ => rng.gauss(),
    });
    for (r, mut row) in a.rows_mut().into_iter().enumerate() {
        let s = match kind {
            Kind::Tiny => 2f32.powi(-35),
            Kind::Huge => 2f32.powi(35),
            Kind::PowerLawZeros if rng.next().is_multiple_of(4) => 0.0,
            Kind::PowerLawZeros => (1.0 / (1.0 - 0.999 * rng.uniform())).powf(0.7),
            Kind::OutOfRange if r % 17 == 3 => 2f32.powi(45),
            _ => 1.0,
        };
        row.mapv_inplace(|v| v * s);
    }
    if matches!(kind, Kind::NonFinite) && rows > 2 {
        a[[rows / 2, 0]] = f32::INFINITY;
    }
    a
}

fn assert_identical(a: &TopKResult, b: &TopKResult) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.k, b.k);
    prop_assert_eq!(&a.ids, &b.ids);
    let (ab, bb): (Vec<u32>, Vec<u32>) = (
        a.scores.iter().map(|s| s.to_bits()).collect(),
        b.scores.iter().map(|s| s.to_bits()).collect(),
    );
    prop_assert_eq!(ab, bb);
    Ok(())
}

/// [`assert_identical`] of two calls' results, or the same error from both (scores that overflow
/// float32, which non-finite factors give; the first pass leaves such rows to the full path).
fn assert_same(
    a: &Result<TopKResult, Error>,
    b: &Result<TopKResult, Error>,
) -> Result<(), TestCaseError> {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_identical(a, b),
        (Err(a), Err(b)) => {
            prop_assert_eq!(a.to_string(), b.to_string());
            Ok(())
        }
        _ => Err(TestCaseError::fail(format!(
            "one call failed: {:?} / {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ))),
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Gauss),
        3 => Just(Kind::Ties),
        1 => Just(Kind::Tiny),
        1 => Just(Kind::Huge),
        3 => Just(Kind::PowerLawZeros),
        1 => Just(Kind::OutOfRange),
        1 => Just(Kind::NonFinite),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn first_pass_equals_full_path(
        n_users in 64usize..200,
        n_items in 40usize..2500,
        factors in prop_oneof![1usize..20, Just(32usize), Just(64), Just(65), Just(128)],
        k in 1usize..30,
        qkind in kind(),
        ikind in kind(),
        seed in 0u64..u64::MAX,
        use_items in any::<bool>(),
        use_filter in any::<bool>(),
        use_liked in any::<bool>(),
        threads in 1usize..3,
    ) {
        let mut rng = Rng(seed | 1);
        let q = table(&mut rng, n_users, factors, qkind);
        let it = table(&mut rng, n_items, factors, ikind);
        let items: Vec<i32> = (0..n_items as i32).filter(|_| !rng.next().is_multiple_of(5)).collect();
        let filter: Vec<i32> = (0..n_items as i32).filter(|_| rng.next().is_multiple_of(7)).collect();
        let mut trip = Vec::new();
        for u in 0..n_users {
            for j in 0..n_items {
                if rng.next().is_multiple_of(29) { trip.push((u, j, 1.0)); }
            }
        }
        let liked = Csr::from_triplets(n_users, n_items, &trip).unwrap();
        let lv = liked.view();
        let cands = Candidates::new(
            n_items,
            use_items.then_some(&items[..]),
            use_filter.then_some(&filter[..]),
        ).unwrap();
        let liked = use_liked.then_some(&lv);
        let scorer = DotScorer::new(q.view(), it.view(), &cands).unwrap();
        // non-finite factors overflow the scores: then every path fails alike
        let full = recommend_batch(&scorer, &cands, liked, k, threads);
        prop_assert!(full.is_ok() || matches!(qkind, Kind::NonFinite) || matches!(ikind, Kind::NonFinite));
        let auto = recommend_dot(q.view(), it.view(), &cands, liked, k, threads, DotParams { first_pass: FirstPass::Always, ..DotParams::default() });
        assert_same(&auto, &full)?;
        let off = DotParams { first_pass: FirstPass::Off, ..DotParams::default() };
        let forced = recommend_dot(q.view(), it.view(), &cands, liked, k, threads, off);
        assert_same(&forced, &full)?;
        let vnni = DotParams { first_pass: FirstPass::NoTiles, ..DotParams::default() };
        let vnni = recommend_dot(q.view(), it.view(), &cands, liked, k, threads, vnni);
        assert_same(&vnni, &full)?;
    }

    /// Catalogues long enough for the seed pass (64+ steps of 32 items), with heavy ties across
    /// the scan order (rows repeated, equal magnitudes in every order), liked items that are
    /// the queries' best (so the seed must leave them out), excluded items, and k around the
    /// seed's limit of 16.
    #[test]
    fn seeded_scans_equal_full_path(
        n_items in 2048usize..6000,
        factors in prop_oneof![Just(8usize), Just(64), Just(65), Just(100)],
        k in prop_oneof![Just(1usize), 2usize..18, Just(32)],
        ikind in prop_oneof![Just(Kind::Gauss), Just(Kind::Ties), Just(Kind::PowerLawZeros)],
        distinct in prop_oneof![Just(3usize), Just(50), Just(100_000)],
        seed in 0u64..u64::MAX,
        use_filter in any::<bool>(),
        threads in 1usize..3,
    ) {
        let mut rng = Rng(seed | 1);
        let n_users = 130;
        let base = table(&mut rng, distinct.min(n_items), factors, ikind);
        // items repeat `distinct` rows in a shuffled order: ties everywhere in the scan
        let it = Array2::from_shape_fn((n_items, factors), |(p, c)| {
            base[[(p * 7919 + (p >> 3)) % base.nrows(), c]]
        });
        // queries: item rows, with noise or not, so each query's best items are known
        let q = Array2::from_shape_fn((n_users, factors), |(u, c)| {
            it[[(u * 37) % n_items, c]] + if u % 2 == 0 { 0.0 } else { 0.25 * rng.gauss() }
        });
        // each user likes the items equal to the row it was drawn from (its best), and a few more
        let mut trip = Vec::new();
        for u in 0..n_users {
            let p0 = (u * 37) % n_items;
            for p in 0..n_items {
                if (p % base.nrows() == p0 % base.nrows() && rng.next().is_multiple_of(2))
                    || rng.next().is_multiple_of(97)
                {
                    trip.push((u, p, 1.0));
                }
            }
        }
        let liked = Csr::from_triplets(n_users, n_items, &trip).unwrap();
        let lv = liked.view();
        let filter: Vec<i32> = (0..n_items as i32).filter(|_| rng.next().is_multiple_of(11)).collect();
        let cands = Candidates::new(n_items, None, use_filter.then_some(&filter[..])).unwrap();
        let scorer = DotScorer::new(q.view(), it.view(), &cands).unwrap();
        for liked in [None, Some(&lv)] {
            let full = recommend_batch(&scorer, &cands, liked, k, threads).unwrap();
            for fp in [FirstPass::Always, FirstPass::NoTiles] {
                let params = DotParams { first_pass: fp, ..DotParams::default() };
                let got = recommend_dot(q.view(), it.view(), &cands, liked, k, threads, params).unwrap();
                assert_identical(&got, &full)?;
            }
        }
    }
}

/// Where [`chain_matches_gemm`] says so, [`exact_dot`] reproduces every element of the full
/// path's GEMM tiles bit for bit (zeros, signed zeros and values of mixed magnitude included).
#[test]
fn exact_dot_is_the_gemm_element_where_claimed() {
    let mut rng = Rng(0x5eed);
    let ms = [2usize, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 48, 63, 64];
    let ns = [
        2usize, 3, 5, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100, 255, 777, 2048,
    ];
    let fs = [
        2usize, 3, 4, 5, 7, 8, 11, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 129, 200, 256,
        257, 300, 511, 512,
    ];
    let mut checked = 0usize;
    for &f in &fs {
        for &m in &ms {
            for &n in &ns {
                if !chain_matches_gemm(m, n, f) || m * n * f > 300_000 {
                    continue;
                }
                let val = |rng: &mut Rng| match rng.next() % 8 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => rng.gauss() * 1e-30,
                    3 => rng.gauss() * 1e6,
                    _ => rng.gauss(),
                };
                // the first m queries of a batch's block: calls of at most 4 queries in all are
                // scored query by query instead (the first pass never runs on them)
                let q = Array2::from_shape_fn((m.max(64), f), |_| val(&mut rng));
                let it = Array2::from_shape_fn((n, f), |_| val(&mut rng));
                let cands = Candidates::all(n);
                let s = DotScorer::new(q.view(), it.view(), &cands).unwrap();
                let mut out = vec![0f32; m * n];
                s.score_tile(0, m, 0, n, &mut out, &mut s.make_scratch());
                for p in 0..n {
                    for u in 0..m {
                        let want = out[p * m + u];
                        let got =
                            exact_dot(q.row(u).as_slice().unwrap(), it.row(p).as_slice().unwrap());
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "m={m} n={n} f={f} ({u}, {p})"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
}

/// The shapes that take faer's other kernels are not claimed.
#[test]
fn one_row_one_column_and_long_products_are_not_claimed() {
    assert!(!chain_matches_gemm(1, 100, 64));
    assert!(!chain_matches_gemm(64, 1, 64));
    assert!(!chain_matches_gemm(64, 2048, 513));
    assert!(!chain_matches_gemm(64, 2048, 1));
    assert!(chain_matches_gemm(64, 2048, 64));
    assert!(chain_matches_gemm(0, 2048, 64));
}

/// The first pass runs for batch shapes on a CPU with AVX-512 VNNI (so the property test above
/// exercises it there), and not for small batches, large k, or too many factors.
#[test]
fn first_pass_applies_to_batches_only() {
    let vnni = cfg!(target_arch = "x86_64") && {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    };
    assert_eq!(first_pass_applies(200, 2500, 64, 10), vnni);
    assert_eq!(first_pass_applies(64, 1000, 3, 29), vnni);
    assert!(!first_pass_applies(63, 2500, 64, 10));
    assert!(!first_pass_applies(200, 2500, 64, 400));
    assert!(!first_pass_applies(200, 2500, 513, 10));
    // a last block of one query (nq = 64 j + 1) goes through faer's matrix-vector kernel
    assert!(!first_pass_applies(129, 2500, 64, 10));
    // a last tile of one item as well
    assert!(!first_pass_applies(200, 2049, 64, 10));
}

/// Every item tied at the k-th score survives the filter: all scores equal.
#[test]
fn all_scores_tied_and_zero_queries() {
    let (nq, ni, f) = (100usize, 3000usize, 16usize);
    let q = Array2::from_shape_fn((nq, f), |(u, _)| if u % 3 == 0 { 0.0 } else { 1.0 });
    let it = Array2::from_elem((ni, f), 0.5f32);
    let cands = Candidates::new(ni, None, Some(&[0, 5, 2999])).unwrap();
    let scorer = DotScorer::new(q.view(), it.view(), &cands).unwrap();
    let full = recommend_batch(&scorer, &cands, None, 20, 2).unwrap();
    let auto = recommend_dot(
        q.view(),
        it.view(),
        &cands,
        None,
        20,
        2,
        DotParams {
            first_pass: FirstPass::Always,
            ..DotParams::default()
        },
    )
    .unwrap();
    assert_eq!(auto, full);
    assert_eq!(&auto.ids[..4], &[1, 2, 3, 4]);
}
