//! ALS solvers and loss against dense references of the normal equations.
#![allow(clippy::needless_range_loop)] // index loops keep the references plain

use tacitrec::models::als::{loss, objective_loss, solve, subspace, AlsParams, Solver};
use tacitrec::sparse::Csr;

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 33) as f32) / (1u64 << 31) as f32
}

/// Users x items confidences: mostly positive, a few negative (disliked), some empty rows.
fn problem(nu: usize, ni: usize, f: usize, seed: u64) -> (Csr, Vec<f32>, Vec<f32>) {
    let mut s = seed;
    let mut t = Vec::new();
    for u in 0..nu {
        if u % 7 == 3 {
            continue; // empty row
        }
        for i in 0..ni {
            let v = lcg(&mut s);
            if v < 0.3 {
                let c = 1.0 + 10.0 * lcg(&mut s);
                t.push((u, i, if v < 0.03 { -c } else { c }));
            }
        }
    }
    let c = Csr::from_triplets(nu, ni, &t).unwrap();
    let x: Vec<f32> = (0..nu * f).map(|_| lcg(&mut s) * 0.1).collect();
    let y: Vec<f32> = (0..ni * f).map(|_| lcg(&mut s) - 0.5).collect();
    (c, x, y)
}

/// The exact solution of every row's normal equations, in f64 by Gaussian elimination.
fn reference(c: &Csr, y: &[f32], f: usize, reg: f64) -> Vec<f64> {
    reference_with(c, y, f, 1.0, 1.0, &vec![reg; c.n_rows])
}

/// Every row's exact solution of `(g YtY + sum_obs (|c| - offset) y y^T + regs[u] I) x =
/// sum_obs c+ y` (implicit's convention: g = offset = 1; Rendle et al.'s: g = alpha_0, offset 0).
fn reference_with(c: &Csr, y: &[f32], f: usize, g: f64, offset: f64, regs: &[f64]) -> Vec<f64> {
    let ni = c.n_cols;
    let mut yty = vec![0f64; f * f];
    for p in 0..f {
        for q in 0..f {
            yty[p * f + q] = (0..ni)
                .map(|i| y[i * f + p] as f64 * y[i * f + q] as f64)
                .sum::<f64>();
        }
    }
    let mut out = vec![0f64; c.n_rows * f];
    for u in 0..c.n_rows {
        let (lo, hi) = (c.indptr[u] as usize, c.indptr[u + 1] as usize);
        if lo == hi {
            continue;
        }
        let mut a = vec![vec![0f64; f + 1]; f];
        for p in 0..f {
            for q in 0..f {
                a[p][q] = g * yty[p * f + q];
            }
            a[p][p] += regs[u];
        }
        for k in lo..hi {
            let i = c.indices[k] as usize;
            let v = c.data[k] as f64;
            let (pref, conf) = if v > 0.0 { (1.0, v) } else { (0.0, -v) };
            for p in 0..f {
                a[p][f] += conf * pref * y[i * f + p] as f64;
                for q in 0..f {
                    a[p][q] += (conf - offset) * y[i * f + p] as f64 * y[i * f + q] as f64;
                }
            }
        }
        // Gaussian elimination with partial pivoting
        for col in 0..f {
            let piv = (col..f)
                .max_by(|&a1, &b1| a[a1][col].abs().partial_cmp(&a[b1][col].abs()).unwrap())
                .unwrap();
            a.swap(col, piv);
            for r in 0..f {
                if r != col {
                    let m = a[r][col] / a[col][col];
                    for k in col..=f {
                        a[r][k] -= m * a[col][k];
                    }
                }
            }
        }
        for p in 0..f {
            out[u * f + p] = a[p][f] / a[p][p];
        }
    }
    out
}

fn max_rel_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    got.iter()
        .zip(want)
        .map(|(g, w)| (*g as f64 - w).abs())
        .fold(0.0, f64::max)
        / scale
}

#[test]
fn cholesky_solves_the_normal_equations() {
    for (f, seed) in [(3usize, 1u64), (8, 2), (20, 3), (64, 4)] {
        let (c, mut x, y) = problem(30, 25, f, seed);
        let params = AlsParams {
            regularization: 0.1,
            solver: Solver::Cholesky,
            ..Default::default()
        };
        solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
        let want = reference(&c, &y, f, 0.1);
        assert!(
            max_rel_err(&x, &want) < 1e-4,
            "f={f}: {}",
            max_rel_err(&x, &want)
        );
        // empty rows are zero
        assert!(x[3 * f..4 * f].iter().all(|v| *v == 0.0));
    }
}

#[test]
fn cg_converges_to_the_exact_solution() {
    let f = 10;
    let (c, x0, y) = problem(25, 30, f, 9);
    let want = reference(&c, &y, f, 0.05);
    let mut errs = Vec::new();
    for steps in [1usize, 3, 10, 40] {
        let mut x = x0.clone();
        let params = AlsParams {
            regularization: 0.05,
            solver: Solver::ConjugateGradient { steps },
            ..Default::default()
        };
        solve(&c.view(), &mut x, &y, f, &params, 1).unwrap();
        errs.push(max_rel_err(&x, &want));
    }
    assert!(errs.windows(2).all(|w| w[1] <= w[0] * 1.0001), "{errs:?}");
    assert!(errs[3] < 1e-3, "{errs:?}");
    assert!(errs[0] > 10.0 * errs[3], "{errs:?}");
}

#[test]
fn results_do_not_depend_on_threads() {
    let f = 16;
    let (c, x0, y) = problem(200, 60, f, 4);
    for solver in [Solver::Cholesky, Solver::ConjugateGradient { steps: 3 }] {
        let params = AlsParams {
            regularization: 0.01,
            solver,
            ..Default::default()
        };
        let (mut a, mut b) = (x0.clone(), x0.clone());
        solve(&c.view(), &mut a, &y, f, &params, 1).unwrap();
        solve(&c.view(), &mut b, &y, f, &params, 3).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            loss(&c.view(), &a, &y, f, 0.01, 1).unwrap(),
            loss(&c.view(), &a, &y, f, 0.01, 3).unwrap()
        );
    }
}

#[test]
fn loss_matches_the_dense_definition() {
    let f = 5;
    let (c, x, y) = problem(12, 9, f, 7);
    let reg = 0.3;
    let mut dense = vec![vec![None; c.n_cols]; c.n_rows];
    for u in 0..c.n_rows {
        for k in c.indptr[u] as usize..c.indptr[u + 1] as usize {
            dense[u][c.indices[k] as usize] = Some(c.data[k] as f64);
        }
    }
    let (mut num, mut den) = (0f64, 0f64);
    for u in 0..c.n_rows {
        for i in 0..c.n_cols {
            let s: f64 = (0..f)
                .map(|p| x[u * f + p] as f64 * y[i * f + p] as f64)
                .sum();
            let (pref, conf) = match dense[u][i] {
                None => (0.0, 1.0),
                Some(v) if v > 0.0 => (1.0, v),
                Some(v) => (0.0, -v),
            };
            num += conf * (pref - s) * (pref - s);
            if let Some(v) = dense[u][i] {
                if v < 0.0 {
                    num += conf; // implicit's definition counts negatives' confidence too
                }
            }
            den += conf;
        }
    }
    let norms: f64 = x.iter().chain(&y).map(|v| (*v as f64) * (*v as f64)).sum();
    let want = (num + reg * norms) / den;
    let got = loss(&c.view(), &x, &y, f, reg as f32, 2).unwrap();
    assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
}

#[test]
fn bad_shapes_and_singular_systems_are_errors() {
    let f = 4;
    let (c, mut x, y) = problem(10, 8, f, 5);
    let p = AlsParams::default();
    assert!(solve(&c.view(), &mut x[..f], &y, f, &p, 1).is_err());
    assert!(solve(&c.view(), &mut x, &y[..f], f, &p, 1).is_err());
    let bad = AlsParams {
        regularization: -1.0,
        ..p
    };
    assert!(solve(&c.view(), &mut x, &y, f, &bad, 1).is_err());
    // no regularisation and a factor column of zeros: singular
    let c2 = Csr::from_triplets(1, 2, &[(0, 0, 2.0), (0, 1, 1.0)]).unwrap();
    let y2 = vec![1.0f32, 0.0, 1.0, 0.0];
    let mut x2 = vec![0f32; 2];
    let chol = AlsParams {
        regularization: 0.0,
        solver: Solver::Cholesky,
        ..Default::default()
    };
    assert!(solve(&c2.view(), &mut x2, &y2, 2, &chol, 1).is_err());
}

#[test]
fn rows_longer_than_the_gather_buffer_are_exact() {
    // 2 users with 5000 items each (more than one gathered chunk), one short user
    let (f, ni) = (4usize, 5000usize);
    let mut s = 3u64;
    let mut t = Vec::new();
    for u in 0..2 {
        for i in 0..ni {
            t.push((u, i, 1.0 + 3.0 * lcg(&mut s)));
        }
    }
    t.push((2, 7, 2.0));
    let c = Csr::from_triplets(3, ni, &t).unwrap();
    let y: Vec<f32> = (0..ni * f).map(|_| (lcg(&mut s) - 0.5) * 0.2).collect();
    let want = reference(&c, &y, f, 0.1);
    let mut x = vec![0f32; 3 * f];
    let chol = AlsParams {
        regularization: 0.1,
        solver: Solver::Cholesky,
        ..Default::default()
    };
    solve(&c.view(), &mut x, &y, f, &chol, 2).unwrap();
    assert!(max_rel_err(&x, &want) < 1e-3, "{}", max_rel_err(&x, &want));
    let mut x = vec![0f32; 3 * f];
    let cg = AlsParams {
        regularization: 0.1,
        solver: Solver::ConjugateGradient { steps: 30 },
        ..Default::default()
    };
    solve(&c.view(), &mut x, &y, f, &cg, 2).unwrap();
    assert!(max_rel_err(&x, &want) < 1e-3, "{}", max_rel_err(&x, &want));
}

/// implicit's conjugate gradient for one row at a time, in f64: `steps` steps from `x0`.
fn cg_reference(c: &Csr, x0: &[f32], y: &[f32], f: usize, reg: f64, steps: usize) -> Vec<f64> {
    let ni = c.n_cols;
    let mut yty = vec![0f64; f * f];
    for p in 0..f {
        for q in 0..f {
            yty[p * f + q] = (0..ni)
                .map(|i| y[i * f + p] as f64 * y[i * f + q] as f64)
                .sum();
        }
        yty[p * f + p] += reg;
    }
    let yi = |i: usize| (0..f).map(move |p| y[i * f + p] as f64);
    let mut out = vec![0f64; c.n_rows * f];
    for u in 0..c.n_rows {
        let (lo, hi) = (c.indptr[u] as usize, c.indptr[u + 1] as usize);
        if lo == hi {
            continue;
        }
        let entries: Vec<(usize, f64)> = (lo..hi)
            .map(|k| (c.indices[k] as usize, c.data[k] as f64))
            .collect();
        let times_a = |v: &[f64]| -> Vec<f64> {
            let mut out: Vec<f64> = (0..f)
                .map(|p| (0..f).map(|q| yty[p * f + q] * v[q]).sum())
                .collect();
            for &(i, conf) in &entries {
                let d: f64 = yi(i).zip(v).map(|(a, b)| a * b).sum();
                for (o, a) in out.iter_mut().zip(yi(i)) {
                    *o += (conf.abs() - 1.0) * d * a;
                }
            }
            out
        };
        let mut x: Vec<f64> = x0[u * f..(u + 1) * f].iter().map(|&v| v as f64).collect();
        let ax = times_a(&x);
        let mut r: Vec<f64> = ax.iter().map(|v| -v).collect();
        for &(i, conf) in &entries {
            for (o, a) in r.iter_mut().zip(yi(i)) {
                *o += conf.max(0.0) * a;
            }
        }
        let mut p = r.clone();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut rs = dot(&r, &r);
        for _ in 0..steps {
            if rs < 1e-20 {
                break;
            }
            let ap = times_a(&p);
            let alpha = rs / dot(&p, &ap);
            for k in 0..f {
                x[k] += alpha * p[k];
                r[k] -= alpha * ap[k];
            }
            let rs_new = dot(&r, &r);
            let beta = rs_new / rs;
            for k in 0..f {
                p[k] = r[k] + beta * p[k];
            }
            rs = rs_new;
        }
        out[u * f..(u + 1) * f].copy_from_slice(&x);
    }
    out
}

#[test]
fn cg_blocks_match_a_row_by_row_reference() {
    // many blocks of rows solved in lockstep, with empty rows; then long rows (more than one
    // gathered chunk) in the same block as short ones
    let f = 16;
    let (c, x0, y) = problem(300, 60, f, 11);
    for steps in [1usize, 3] {
        let want = cg_reference(&c, &x0, &y, f, 0.05, steps);
        let mut x = x0.clone();
        let params = AlsParams {
            regularization: 0.05,
            solver: Solver::ConjugateGradient { steps },
            ..Default::default()
        };
        solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
        assert!(max_rel_err(&x, &want) < 1e-4, "{}", max_rel_err(&x, &want));
    }
    // rows of 70,000 items are read in place (longer than the 65,536 the CG gathers at most, on
    // any machine); f = 20 also has SIMD vectors and a scalar tail
    for f in [4usize, 20] {
        let ni = 70_000usize;
        let mut s = 5u64;
        let mut t = Vec::new();
        for u in 0..6 {
            let n = if u % 2 == 0 { ni } else { 3 + u };
            for i in 0..n {
                t.push((u, (i * 7 + u) % ni, 1.0 + 3.0 * lcg(&mut s)));
            }
        }
        let c = Csr::from_triplets(6, ni, &t).unwrap();
        let y: Vec<f32> = (0..ni * f).map(|_| (lcg(&mut s) - 0.5) * 0.2).collect();
        let x0: Vec<f32> = (0..6 * f).map(|_| lcg(&mut s) * 0.1).collect();
        let want = cg_reference(&c, &x0, &y, f, 0.1, 3);
        let mut x = x0.clone();
        let params = AlsParams {
            regularization: 0.1,
            solver: Solver::ConjugateGradient { steps: 3 },
            ..Default::default()
        };
        solve(&c.view(), &mut x, &y, f, &params, 1).unwrap();
        let err = max_rel_err(&x, &want);
        assert!(err < 1e-4, "f={f}: {err}");
    }
}

/// Entries whose confidence is exactly 1 (implicit's offset) have no interaction term and are
/// left out of the CG's passes and of the Cholesky solver's GEMM: binary rows, rows of both
/// kinds, rows of disliked (-1) items only, and rows longer than any gather (read in place), in
/// the same blocks, against the row-by-row CG reference and the exact solution.
#[test]
fn cg_entries_at_the_offset_match_the_reference() {
    for f in [16usize, 20] {
        let (nu, ni) = (90usize, 70_000usize);
        let mut s = 3u64;
        let mut t = Vec::new();
        for u in 0..nu {
            let n = match u {
                7 | 40 => ni, // read in place
                _ => 5 + u % 60,
            };
            for k in 0..n {
                let i = (k * 7919 + u * 13) % ni;
                let c = match u % 4 {
                    0 => 1.0,                          // binary
                    1 => [1.0, 2.5, -1.0, 4.0][k % 4], // both kinds, and a disliked one
                    2 => -1.0,                         // disliked only: no term, no preference
                    _ => 1.0 + (k % 3) as f32,         // counts
                };
                t.push((u, i, c));
            }
        }
        let c = Csr::from_triplets(nu, ni, &t).unwrap();
        let y: Vec<f32> = (0..ni * f).map(|_| (lcg(&mut s) - 0.5) * 0.2).collect();
        let x0: Vec<f32> = (0..nu * f).map(|_| lcg(&mut s) * 0.1).collect();
        for steps in [1usize, 3] {
            let want = cg_reference(&c, &x0, &y, f, 0.1, steps);
            let mut x = x0.clone();
            let params = AlsParams {
                regularization: 0.1,
                solver: Solver::ConjugateGradient { steps },
                ..Default::default()
            };
            solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
            let err = max_rel_err(&x, &want);
            assert!(err < 1e-4, "f={f} steps={steps}: {err}");
        }
        let mut x = x0.clone();
        let params = AlsParams {
            regularization: 0.1,
            solver: Solver::Cholesky,
            ..Default::default()
        };
        solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
        let err = max_rel_err(&x, &reference(&c, &y, f, 0.1));
        assert!(err < 1e-4, "f={f} Cholesky: {err}");
    }
}

#[test]
fn cg_matches_the_reference_for_any_factor_count() {
    // factor counts with and without a scalar tail, with odd and even numbers of SIMD vectors
    // (8 lanes with AVX2, 16 with AVX-512)
    for f in [1usize, 7, 16, 20, 33, 64, 100, 128, 136] {
        let (c, x0, y) = problem(40, 70, f, f as u64);
        let want = cg_reference(&c, &x0, &y, f, 0.5, 3);
        let mut x = x0.clone();
        let params = AlsParams {
            regularization: 0.5,
            solver: Solver::ConjugateGradient { steps: 3 },
            ..Default::default()
        };
        solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
        let err = max_rel_err(&x, &want);
        assert!(err < 1e-4, "f={f}: {err}");
    }
}

/// Rendle et al.'s objective (alpha_0, frequency-scaled regularisation): Cholesky exactly, CG
/// approaching it; implicit's convention with nu = 1 scales by the count only (Spark's).
#[test]
fn the_papers_objective_and_scaled_regularization() {
    let f = 6;
    let (c, x0, y) = problem(30, 25, f, 11);
    for (a0, nu) in [(Some(0.3f32), 1.0f32), (Some(0.05), 0.0), (None, 1.0)] {
        let regs: Vec<f64> = (0..c.n_rows)
            .map(|u| {
                let n = (c.indptr[u + 1] - c.indptr[u]) as f64;
                0.05 * (n + a0.unwrap_or(0.0) as f64 * c.n_cols as f64).powf(nu as f64)
            })
            .collect();
        let (g, offset) = match a0 {
            Some(w) => (w as f64, 0.0),
            None => (1.0, 1.0),
        };
        let want = reference_with(&c, &y, f, g, offset, &regs);
        for solver in [Solver::Cholesky, Solver::ConjugateGradient { steps: 40 }] {
            let params = AlsParams {
                regularization: 0.05,
                solver,
                unobserved_weight: a0,
                regularization_exponent: nu,
            };
            let mut x = x0.clone();
            solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
            let err = max_rel_err(&x, &want);
            assert!(err < 1e-3, "{a0:?} {nu} {solver:?}: {err}");
        }
    }
}

/// With one block, an iALS++ epoch is a Cholesky epoch (users, then items); smaller blocks never
/// raise the objective.
/// iALS++ leaves the entries at implicit's offset out of its block systems too: with one block
/// its epoch is still the Cholesky epoch, on data with binary rows, entries of 1 and -1 among
/// others, and rows of -1 only.
#[test]
fn subspace_epoch_with_entries_at_the_offset_is_an_exact_epoch() {
    let f = 9;
    let (mut c, x0, y0) = problem(40, 25, f, 13);
    for u in 0..c.n_rows {
        for k in c.indptr[u] as usize..c.indptr[u + 1] as usize {
            let v = c.data[k];
            c.data[k] = match u % 4 {
                0 => 1.0,
                1 if k % 3 == 0 => v.signum(),
                2 => -1.0,
                _ => v,
            };
        }
    }
    let ct = tacitrec::sparse::transpose(&c.view(), 1).unwrap();
    let params = AlsParams {
        regularization: 0.05,
        solver: Solver::Cholesky,
        ..AlsParams::default()
    };
    let (mut x, mut y) = (x0.clone(), y0.clone());
    solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
    let want = reference(&c, &y0, f, 0.05);
    assert!(max_rel_err(&x, &want) < 1e-4);
    solve(&ct.view(), &mut y, &x, f, &params, 2).unwrap();
    let (mut xs, mut ys) = (x0.clone(), y0.clone());
    subspace::epoch(&c.view(), &mut xs, &mut ys, f, &params, f, 2).unwrap();
    let want: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    assert!(
        max_rel_err(&ys, &want) < 1e-3,
        "{}",
        max_rel_err(&ys, &want)
    );
}

#[test]
fn subspace_epoch_with_one_block_is_an_exact_epoch() {
    let f = 9;
    let (c, x0, y0) = problem(30, 25, f, 12);
    let ct = tacitrec::sparse::transpose(&c.view(), 1).unwrap();
    for a0 in [None, Some(0.2f32)] {
        let params = AlsParams {
            regularization: 0.05,
            solver: Solver::Cholesky,
            unobserved_weight: a0,
            regularization_exponent: 1.0,
        };
        let (mut x, mut y) = (x0.clone(), y0.clone());
        solve(&c.view(), &mut x, &y, f, &params, 2).unwrap();
        solve(&ct.view(), &mut y, &x, f, &params, 2).unwrap();
        for block in [f, 100] {
            let (mut xs, mut ys) = (x0.clone(), y0.clone());
            subspace::epoch(&c.view(), &mut xs, &mut ys, f, &params, block, 2).unwrap();
            let want: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            assert!(max_rel_err(&ys, &want) < 1e-3, "{a0:?} block {block}");
        }
        let (mut xs, mut ys) = (x0.clone(), y0.clone());
        let mut last = objective_loss(&c.view(), &xs, &ys, f, &params, 1).unwrap();
        for _ in 0..4 {
            subspace::epoch(&c.view(), &mut xs, &mut ys, f, &params, 2, 2).unwrap();
            let now = objective_loss(&c.view(), &xs, &ys, f, &params, 1).unwrap();
            assert!(now <= last * (1.0 + 1e-5), "{a0:?}: {now} > {last}");
            last = now;
        }
    }
    let (mut xs, mut ys) = (x0.clone(), y0.clone());
    let err = subspace::epoch(&c.view(), &mut xs, &mut ys, f, &AlsParams::default(), 0, 1);
    assert!(format!("{}", err.unwrap_err()).contains("block_size"));
    let bad = AlsParams {
        unobserved_weight: Some(-1.0),
        ..AlsParams::default()
    };
    let err = subspace::epoch(&c.view(), &mut xs, &mut ys, f, &bad, 2, 1);
    assert!(format!("{}", err.unwrap_err()).contains("unobserved_weight"));
}
