//! Small dense solves that the libraries do not do fast enough for ALS: many small symmetric
//! positive definite systems, one per vector lane, factorised (Cholesky) and solved together.
//!
//! faer's LLT factorises one matrix at a time; at ALS sizes (32..256) its loops are short and
//! dependent, even with a tuned recursion threshold. Interleaving as many systems as a vector has
//! lanes runs the same scalar algorithm on all of them at full vector width
//! (`benches/compare/als.py` measures the Cholesky solver against implicit's).
//!
//! [`gemv`]'s kernels multiply a vector with a block of rows that stays in L1.

mod gemv;
pub(crate) mod svd;

pub(crate) use gemv::{dots_weighted_sum, row_norms, streamed_dots, weighted_sum_by};

use crate::simd::{Arch, Lanes, WithSimd};

/// A 64-bit fingerprint of the values' bits (and their count): what a cache of something derived
/// from a factor matrix (its Gram matrix, its normalised rows) compares to notice that the
/// matrix changed, in place included. Four accumulators of vector lanes each take every fourth
/// vector of the bits through a multiply, xor-shift, multiply round (a bijection of the lane for
/// a given word, so changing one word always changes its lane), then the lanes, the tail and
/// the count are folded by xxHash64's round and finalisation: near memory speed, not
/// cryptographic. The value depends on the vector width, so it is compared within one process
/// only.
#[cfg_attr(not(feature = "python"), allow(dead_code))] // used by the Python bindings
pub fn fingerprint(values: &[f32]) -> u64 {
    let words: &[u32] = pulp::bytemuck::cast_slice(values);
    Arch::new().dispatch(Fingerprint { words })
}

struct Fingerprint<'a> {
    words: &'a [u32],
}

/// [`fingerprint`]'s lane round: `((acc + w m2) ^ (.. >> 15)) m1` with `k = [m1, m2, 15]`.
#[inline(always)]
fn lane_round<S: Lanes>(simd: S, k: [S::u32s; 3], acc: S::u32s, w: S::u32s) -> S::u32s {
    let x = simd.add_u32s(acc, simd.mul_u32s(w, k[1]));
    let x = simd.xor_u32s(x, simd.wrapping_dyn_shr_u32s(x, k[2]));
    simd.mul_u32s(x, k[0])
}

impl WithSimd for Fingerprint<'_> {
    type Output = u64;

    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> u64 {
        const P1: u64 = 0x9E37_79B1_85EB_CA87;
        const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
        const P3: u64 = 0x1656_67B1_9E37_79F9;
        #[inline(always)]
        fn fold(acc: u64, word: u64) -> u64 {
            acc.wrapping_add(word.wrapping_mul(P2))
                .rotate_left(31)
                .wrapping_mul(P1)
        }
        let (vecs, tail) = S::as_simd_u32s(self.words);
        let k = [
            simd.splat_u32s(0x9E37_79B1),
            simd.splat_u32s(0x85EB_CA77),
            simd.splat_u32s(15),
        ];
        let mut acc: [S::u32s; 4] =
            std::array::from_fn(|l| simd.splat_u32s(0x1656_67B1u32.wrapping_mul(l as u32 + 1)));
        let mut quads = vecs.chunks_exact(4);
        for quad in quads.by_ref() {
            acc[0] = lane_round(simd, k, acc[0], quad[0]);
            acc[1] = lane_round(simd, k, acc[1], quad[1]);
            acc[2] = lane_round(simd, k, acc[2], quad[2]);
            acc[3] = lane_round(simd, k, acc[3], quad[3]);
        }
        for (l, &v) in quads.remainder().iter().enumerate() {
            acc[l] = lane_round(simd, k, acc[l], v);
        }
        let mut h = (self.words.len() as u64).wrapping_mul(P3);
        for acc in acc {
            let lanes: &[u32] = pulp::bytemuck::cast_slice(std::slice::from_ref(&acc));
            for &l in lanes {
                h = fold(h, l as u64);
            }
        }
        for &w in tail {
            h = fold(h, w as u64 | 1 << 32);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

/// Solves `A_l x_l = b_l` for every lane `l` of the interleaved systems in place: `a` holds
/// `f x f` matrices column-major and interleaved (element `(i, k)` of lane `l` at
/// `(k * f + i) * lanes + l`; only the lower triangle is read, and it is overwritten by the
/// Cholesky factor `L`), `b` the right-hand sides (`b_l[i]` at `i * lanes + l`), overwritten by
/// the solutions. `lanes` is `S::F32_LANES`. Returns the first lane below `live` whose matrix is
/// not positive definite (a pivot `<= 0` or NaN); lanes from `live` on are not checked (padding:
/// give them the identity).
#[inline(always)]
pub(crate) fn cholesky_solve_lanes<S: Lanes>(
    simd: S,
    a: &mut [f32],
    b: &mut [f32],
    f: usize,
    live: usize,
) -> Result<(), usize> {
    let lanes = S::F32_LANES;
    let live = live.min(lanes);
    let one = simd.splat_f32s(1.0);
    // right-looking: column j is finished, then subtracted from the columns after it
    for j in 0..f {
        let d = (j * f + j) * lanes;
        if let Some(l) = a[d..d + live].iter().position(|&v| v.is_nan() || v <= 0.0) {
            return Err(l);
        }
        let av = &mut S::as_mut_simd_f32s(&mut a[..f * f * lanes]).0;
        let (done, rest) = av.split_at_mut((j + 1) * f);
        let col_j = &mut done[j * f..];
        let ljj = simd.sqrt_f32s(col_j[j]);
        col_j[j] = ljj;
        let inv = simd.div_f32s(one, ljj);
        for v in &mut col_j[j + 1..] {
            *v = simd.mul_f32s(*v, inv);
        }
        let col_j = &col_j[..];
        for (k, col_k) in (j + 1..f).zip(rest.chunks_exact_mut(f)) {
            let lkj = col_j[k];
            for (x, &lij) in col_k[k..].iter_mut().zip(&col_j[k..]) {
                *x = simd.negate_mul_add_e_f32s(lij, lkj, *x);
            }
        }
    }
    // L z = b, then L^T x = z (as dot products down the columns of L)
    let av = &S::as_simd_f32s(&a[..f * f * lanes]).0;
    let rv = &mut S::as_mut_simd_f32s(&mut b[..f * lanes]).0;
    for j in 0..f {
        let col_j = &av[j * f..(j + 1) * f];
        let zj = simd.div_f32s(rv[j], col_j[j]);
        rv[j] = zj;
        for (r, &lij) in rv[j + 1..].iter_mut().zip(&col_j[j + 1..]) {
            *r = simd.negate_mul_add_e_f32s(lij, zj, *r);
        }
    }
    for i in (0..f).rev() {
        let col_i = &av[i * f..(i + 1) * f];
        let mut acc = rv[i];
        for (&lji, &xj) in col_i[i + 1..].iter().zip(&rv[i + 1..]) {
            acc = simd.negate_mul_add_e_f32s(lji, xj, acc);
        }
        rv[i] = simd.div_f32s(acc, col_i[i]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Arch, WithSimd};

    struct Solve<'a> {
        a: &'a mut [f32],
        b: &'a mut [f32],
        f: usize,
        live: usize,
    }

    impl WithSimd for Solve<'_> {
        type Output = (usize, Result<(), usize>);
        fn with_simd<S: Lanes>(self, simd: S) -> Self::Output {
            let r = cholesky_solve_lanes(simd, self.a, self.b, self.f, self.live);
            (S::F32_LANES, r)
        }
    }

    fn lanes() -> usize {
        crate::simd::f32_lanes(Arch::new())
    }

    /// `M M^T + f I` for a pseudo-random `M`, row-major, in f64.
    fn spd(f: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64) / (1u64 << 31) as f64 - 0.5
        };
        let m: Vec<f64> = (0..f * f).map(|_| next()).collect();
        let mut a = vec![0f64; f * f];
        for i in 0..f {
            for k in 0..f {
                a[i * f + k] = (0..f).map(|t| m[i * f + t] * m[k * f + t]).sum::<f64>();
            }
            a[i * f + i] += f as f64;
        }
        a
    }

    /// Gaussian elimination in f64.
    fn solve_dense(a: &[f64], b: &[f64]) -> Vec<f64> {
        let f = b.len();
        let mut m: Vec<Vec<f64>> = (0..f)
            .map(|i| {
                let mut r = a[i * f..(i + 1) * f].to_vec();
                r.push(b[i]);
                r
            })
            .collect();
        for c in 0..f {
            let pivot = m[c].clone();
            for (r, row) in m.iter_mut().enumerate() {
                if r != c {
                    let q = row[c] / pivot[c];
                    for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                        *x -= q * p;
                    }
                }
            }
        }
        (0..f).map(|i| m[i][f] / m[i][i]).collect()
    }

    #[test]
    fn every_lane_matches_a_dense_solve() {
        let lanes = lanes();
        for f in [1usize, 2, 5, 16, 33, 64] {
            let systems: Vec<(Vec<f64>, Vec<f64>)> = (0..lanes)
                .map(|l| {
                    let a = spd(f, (f * 100 + l) as u64);
                    let b = (0..f).map(|i| ((i + l) % 7) as f64 - 3.0).collect();
                    (a, b)
                })
                .collect();
            let mut a = vec![0f32; f * f * lanes];
            let mut b = vec![0f32; f * lanes];
            for (l, (al, bl)) in systems.iter().enumerate() {
                for k in 0..f {
                    for i in k..f {
                        a[(k * f + i) * lanes + l] = al[i * f + k] as f32;
                    }
                    b[k * lanes + l] = bl[k] as f32;
                }
            }
            let (_, r) = Arch::new().dispatch(Solve {
                a: &mut a,
                b: &mut b,
                f,
                live: lanes,
            });
            assert_eq!(r, Ok(()));
            for (l, (al, bl)) in systems.iter().enumerate() {
                let want = solve_dense(al, bl);
                for (i, w) in want.iter().enumerate() {
                    let got = b[i * lanes + l] as f64;
                    assert!((got - w).abs() < 1e-4 * (1.0 + w.abs()), "f={f} lane {l}");
                }
            }
        }
    }

    #[test]
    fn the_first_lane_that_is_not_positive_definite_is_reported() {
        let (lanes, f) = (lanes(), 3);
        let identity = |a: &mut [f32], l: usize| {
            for k in 0..f {
                a[(k * f + k) * lanes + l] = 1.0;
            }
        };
        let mut a = vec![0f32; f * f * lanes];
        for l in 0..lanes {
            identity(&mut a, l);
        }
        let last = lanes - 1;
        a[(f + 1) * lanes + last] = -1.0; // lane `last`: second pivot negative
        let mut b = vec![0f32; f * lanes];
        let run =
            |a: &mut [f32], b: &mut [f32], live| Arch::new().dispatch(Solve { a, b, f, live }).1;
        assert_eq!(run(&mut a.clone(), &mut b, lanes), Err(last));
        // padding lanes are not checked
        assert_eq!(run(&mut a.clone(), &mut b, last), Ok(()));
        let mut nan = a.clone();
        nan[(f + 1) * lanes + last] = 1.0;
        nan[last] = f32::NAN;
        assert_eq!(run(&mut nan, &mut b, lanes), Err(last));
    }

    #[test]
    fn fingerprint_changes_with_any_value_bit_order_and_length() {
        let base: Vec<f32> = (0..37).map(|i| i as f32 * 0.25 - 3.0).collect();
        let h = fingerprint(&base);
        assert_eq!(h, fingerprint(&base.clone()));
        for e in [0, 5, 15, 16, 31, 32, 36] {
            for bit in [0, 13, 31] {
                let mut v = base.clone();
                v[e] = f32::from_bits(v[e].to_bits() ^ (1 << bit));
                assert_ne!(fingerprint(&v), h, "value {e} bit {bit}");
            }
        }
        let mut swapped = base.clone();
        swapped.swap(3, 20);
        assert_ne!(fingerprint(&swapped), h);
        assert_ne!(fingerprint(&base[..36]), h);
        assert_ne!(fingerprint(&[0.0]), fingerprint(&[0.0, 0.0]));
        assert_ne!(fingerprint(&[0.0]), fingerprint(&[-0.0]));
    }
}
