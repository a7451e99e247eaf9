//! Exact top-k of dot products with an int8 first pass (AMX tiles or AVX-512 VNNI), and
//! [`recommend_dot`], the entry point every factor model's recommend and similar_items /
//! similar_users call.
//!
//! # What is computed
//!
//! The result is the full f32 path's ([`recommend_batch`] over a [`DotScorer`]) bit for bit: same
//! ids, order, tie rule (lower item id first) and scores. The first pass only decides which items
//! need an exact score:
//!
//! 1. queries are quantised to int8 per row (symmetric, scale = max|x| / 127); items are sorted
//!    by decreasing largest magnitude (the scan order; large factors first, so thresholds rise
//!    early on trained factors) and quantised in steps of 32 that share one scale (the step's
//!    largest magnitude / 127, which by the order is its first item's, so little precision is
//!    lost); every (query, item) pair gets the integer dot product `I = q_u . q_v` from AMX
//!    `tdpbsud` tiles (32 queries x 32 items per step) where the CPU and OS offer them, else from
//!    `vpdpbusd` (64 int8 multiply-adds per instruction, four times what an f32 FMA does);
//! 2. every pair has an approximate score `a = s_u s_v I` and a rigorous bound `b` with
//!    `|a - e| <= b`, where `e` is the f32 value the full path's GEMM computes for that pair (not
//!    the real dot product: it is `e` that must be reproduced);
//! 3. per query, a heap keeps the k largest lower bounds `a - b` of distinct eligible items; its
//!    smallest is the threshold `T`. Per query and step, `T` becomes one integer threshold that
//!    every item whose `a + b` reaches `T` passes (`int_thresholds`, from the step's largest
//!    bound terms); only lanes that pass get `a` and `b` in f32, and the items whose `a + b >= T`
//!    are appended to a buffer, from which the items with `a + b < T` are dropped when it fills
//!    (`>=` keeps every item tied at the k-th score);
//! 4. before the scan, a seed pass over the first eighth of the scan (1,024 to 8,192 items)
//!    keeps, per query, the largest lower bound of the eligible items in each of the 32 lanes of
//!    a step (`seed_block`); those 32 values, of distinct eligible items, fill the heap, so the
//!    threshold starts near its final value instead of at `-inf` (the scan's later hits in those
//!    slots add candidates but not heap entries, so no item is counted twice);
//! 5. the candidates left at the end (less excluded and liked items) are rescored exactly, with
//!    the same sequence of f32 fused multiply-adds the GEMM performs for one output element, and
//!    selected with the same rule.
//!
//! Why it is exact: at the end, `T` is the k-th largest of lower bounds of distinct eligible
//! items, so at least k of them have `e >= T`, so the k-th best exact score `e_k` is `>= T`. An
//! item in the exact top k (or tied with `e_k`) has `a + b >= e >= e_k >= T`, passes every
//! integer threshold, and survives every filter step (thresholds only rise to `T`). The scan
//! order changes which items are seen first, never the selection: rescoring orders by exact
//! score and id. Excluded and liked items never enter the heap or the seed, and are dropped
//! before rescoring, as the full path skips them.
//!
//! # The bound
//!
//! Notation: `u = 2^-24` (f32 unit roundoff), `d` the number of factors, `x~ = s q` the
//! dequantised row (exact as a real number; for an item `s` is its step's scale), `dx = x - x~`, `gamma_d = d u / (1 - d u)`. Per row
//! we store upper bounds `N >= max(|x|, |x~|)` and `D >= |dx|` (Euclidean norms, computed in f64
//! and rounded up). Then
//!
//! - quantisation: `|u.v - u~.v~| = |du.v + u~.dv| <= |du||v| + |u~||dv| <= Du Nv + Nu Dv`;
//! - first-pass arithmetic: the integer dot product is exact (`|q_u . q_v| <= 127^2 d < 2^24` for
//!   `d <= 1040`, so its conversion to f32 is exact too), and `a = fl(I * fl(s_u s_v))` has
//!   relative error at most `2u + u^2`: `|a - u~.v~| <= (2u + u^2) Nu Nv` (the scales are normal
//!   numbers by the range rule below, so no underflow);
//! - the exact path's own rounding: the GEMM computes each element as a chain of `d` fused
//!   multiply-adds, `|e - u.v| <= gamma_d sum|u_i v_i| + d 2^-149 <= gamma_d Nu Nv + d 2^-149`
//!   (the second term covers gradual underflow of tiny products, half a subnormal spacing per
//!   operation);
//! - our own rounding of `b`, `a + b` and `a - b`: at most `u(|a| + b)` each, covered by adding
//!   `4u Nu Nv` and inflating `b` by `1 + 2^-18`.
//!
//! So `b = Du Nv + Nu (Dv + c Nv + d 2^-109)` with `c = 2u + u^2 + gamma_d + 4u`, stored per item
//! as `X = Nv` and `Y = (Dv + c Nv + d 2^-109)(1 + 2^-18)` and evaluated per pair as one multiply
//! and one fused multiply-add, `b = Du X + Nu Y`. The term `Nu d 2^-109 >= d 2^-149` because a
//! non-zero row has `Nu >= max|u_i| >= 2^-40`; a zero query row has `a = e = 0` exactly.
//!
//! # When the full path runs instead
//!
//! - the CPU lacks AVX-512 VNNI (or is not x86-64), or the caller turned the pass off
//!   ([`FirstPass::NoTiles`] keeps the pass but not the AMX tiles);
//! - a query or item row has a non-finite value, or a non-zero row whose largest magnitude is
//!   outside `[2^-40, 2^40]` (huge values could overflow the exact scores, tiny ones the scales);
//! - fewer than [`WORTH_QUERIES`] queries ([`FirstPass::Auto`]; quantising the items costs about
//!   what scoring a few hundred queries exactly does) or [`MIN_QUERIES`] ([`FirstPass::Always`]);
//! - one factor, k above an eighth of the candidates, or more than
//!   [`MAX_FACTORS`] factors (the GEMM splits longer dot products into blocks, see
//!   [`chain_matches_gemm`]);
//! - item tile or query block shapes for which the GEMM library takes another kernel (one query,
//!   one item, or a tiny product); see [`chain_matches_gemm`].
//!
//! A query whose candidates keep growing past a bound (all scores tied, e.g. a zero query) is
//! rescored against every item with the same exact arithmetic, so memory stays bounded.
//!
//! The item table is quantised once per call (never cached between calls, so nothing goes stale
//! when factors change): a pass over the items that amortises over the queries of a batch, which
//! is why calls with fewer than [`WORTH_QUERIES`] queries take the full path.

#[cfg(target_arch = "x86_64")]
use super::batch::{check_liked, filled};
use super::batch::{recommend_batch, Candidates, TopKResult};
use super::dot::DotScorer;
#[cfg(target_arch = "x86_64")]
use super::select::{from_rank_key, rank_key};
use crate::error::Result;
#[cfg(target_arch = "x86_64")]
use crate::sparse::sorted_contains;
use crate::sparse::CsrView;
use ndarray::ArrayView2;

/// Whether [`recommend_dot`] may use the reduced-precision first pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FirstPass {
    /// Where the CPU has it, the call qualifies (see the module docs) and it has at least
    /// [`WORTH_QUERIES`] queries.
    #[default]
    Auto,
    /// Wherever the CPU has it and the call qualifies, from [`MIN_QUERIES`] queries (for tests
    /// and comparisons; results are identical).
    Always,
    /// Always the full f32 path (for tests and comparisons; results are identical).
    Off,
    /// As `Always`, with AVX-512 VNNI only even where the CPU has AMX tiles (for tests and
    /// comparisons; results are identical).
    NoTiles,
}

/// Parameters of [`recommend_dot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DotParams {
    pub first_pass: FirstPass,
    /// Divide each item's scores by its row's norm ([`DotScorer::cosine`]); the full path runs.
    pub cosine: bool,
}

/// Queries below which the first pass does not run (one block of the full path's GEMM).
pub const MIN_QUERIES: usize = 64;
/// Queries below which [`FirstPass::Auto`] takes the full path: quantising the items (a pass
/// over them in scan order, in parallel) costs about what scoring 300-400 queries exactly does,
/// measured at 20,000 and 200,000 items x 64 factors (benches/compare/RESULTS.md).
pub const WORTH_QUERIES: usize = 512;
/// Factors above which the first pass is not used (the GEMM splits the dot product into blocks
/// of 512, which a single chain would not reproduce).
pub const MAX_FACTORS: usize = 512;

/// Top-`k` items by dot product of each row of `queries` with `item_factors` among `candidates`,
/// skipping `liked` (one row per query): exactly [`recommend_batch`] over a [`DotScorer`], with
/// the int8 first pass where it applies (see the module docs).
pub fn recommend_dot(
    queries: ArrayView2<'_, f32>,
    item_factors: ArrayView2<'_, f32>,
    candidates: &Candidates,
    liked: Option<&CsrView<'_>>,
    k: usize,
    num_threads: usize,
    params: DotParams,
) -> Result<TopKResult> {
    let scorer = DotScorer::new(queries, item_factors, candidates)?;
    let scorer = if params.cosine {
        scorer.cosine()
    } else {
        scorer
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = params;
    #[cfg(target_arch = "x86_64")]
    {
        let wanted = match params.first_pass {
            _ if params.cosine => false,
            FirstPass::Off => false,
            FirstPass::Auto => queries.nrows() >= WORTH_QUERIES,
            FirstPass::Always | FirstPass::NoTiles => true,
        };
        if wanted {
            // asked only here: the first call asks Linux for the tile state
            let tiles = params.first_pass != FirstPass::NoTiles && x86::cpu_has_amx();
            if let Some(res) = x86::first_pass(&scorer, candidates, liked, k, num_threads, tiles)? {
                return Ok(res);
            }
        }
    }
    recommend_batch(&scorer, candidates, liked, k, num_threads)
}

/// Whether the first pass would run for these sizes on this CPU with [`FirstPass::Always`] (the
/// row checks aside); for tests and benchmarks.
pub fn first_pass_applies(n_queries: usize, n_positions: usize, factors: usize, k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::cpu_has_vnni() && sizes_qualify(n_queries, n_positions, factors, k)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (n_queries, n_positions, factors, k);
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn sizes_qualify(nq: usize, np: usize, f: usize, k: usize) -> bool {
    let (bq, tp) = DotScorer::TILE;
    nq >= MIN_QUERIES
        && (2..=MAX_FACTORS).contains(&f)
        && k >= 1
        && k.saturating_mul(8) <= np
        // every block of queries and every tile of items the full path multiplies must be one
        // whose elements the GEMM computes as a single chain of fused multiply-adds
        && chain_matches_gemm(bq.min(nq), tp.min(np), f)
        && chain_matches_gemm(nq % bq, tp.min(np), f)
        && chain_matches_gemm(bq.min(nq), np % tp, f)
        && chain_matches_gemm(nq % bq, np % tp, f)
}

/// Whether faer's GEMM computes every element of an `m x n` product with `f`-long rows as one
/// chain of fused multiply-adds in index order, which [`exact_dot`] reproduces (a zero
/// dimension has no elements, so it qualifies). Checked on many shapes by the tests (against
/// faer itself): faer sends one-row and one-column products to its matrix-vector kernels (which
/// split the sum across vector lanes), products of at most 16^3 multiply-adds to its small-matrix
/// kernels, one factor to a rank-one update (a plain product, whose exact zero can be `-0.0`
/// where the chain gives `+0.0`), and splits dot products longer than 512 into blocks.
pub fn chain_matches_gemm(m: usize, n: usize, f: usize) -> bool {
    m == 0
        || n == 0
        || (m >= 2 && n >= 2 && m * n * f > 16 * 16 * 16 && (2..=MAX_FACTORS).contains(&f))
}

/// `sum_i a[i] b[i]` as one chain of fused multiply-adds in index order: the value the GEMM
/// computes for one element (see [`chain_matches_gemm`]). The chain starts from `+0.0`, as the
/// GEMM's accumulators do, which fixes the sign of an exact zero.
pub fn exact_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .fold(0.0f32, |acc, (x, y)| x.mul_add(*y, acc))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::batch::{Candidates, TopKResult};
    use super::super::dot::DotScorer;
    use super::super::select::TopK;
    use super::*;
    use crate::error::{try_vec, Result};
    use crate::parallel;
    use rayon::prelude::*;
    use std::arch::x86_64::*;

    pub(super) fn cpu_has_vnni() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("fma")
    }

    /// Whether AMX int8 tiles can be used: the CPU has them, the OS enables their state, and
    /// Linux granted this process the tile data (asked once; a process may use them from then
    /// on, as oneDNN and PyTorch do).
    pub(super) fn cpu_has_amx() -> bool {
        use std::sync::atomic::{AtomicU8, Ordering};
        static STATE: AtomicU8 = AtomicU8::new(0);
        match STATE.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let ok = cpu_has_vnni() && amx_available();
                STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
                ok
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn amx_available() -> bool {
        // SAFETY: cpuid is on every x86-64 CPU; xgetbv runs only where cpuid says OSXSAVE.
        unsafe {
            if __cpuid(0).eax < 7 {
                return false;
            }
            // AMX-TILE (bit 24) and AMX-INT8 (bit 25)
            if (__cpuid_count(7, 0).edx >> 24) & 3 != 3 || (__cpuid(1).ecx >> 27) & 1 == 0 {
                return false;
            }
            // the OS saves tile configuration and data (XCR0 bits 17, 18)
            if (xcr0() >> 17) & 3 != 3 {
                return false;
            }
            // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
            let r: i64;
            std::arch::asm!(
                "syscall",
                inlateout("rax") 158i64 => r,
                in("rdi") 0x1023i64,
                in("rsi") 18i64,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
            r == 0
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn amx_available() -> bool {
        false
    }

    #[cfg(target_os = "linux")]
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        _xgetbv(0)
    }

    /// The tile shapes: every tile 16 rows of 64 bytes; tmm0-3 the scores of 2 x 16 queries x
    /// 2 panels of 16 items, tmm4-5 the queries, tmm6-7 the panels.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const TILE_CONFIG: TileConfig = {
        let mut c = [0u8; 64];
        c[0] = 1; // palette 1
        let mut t = 0;
        while t < 8 {
            c[16 + 2 * t] = 64; // bytes per row
            c[48 + t] = 16; // rows
            t += 1;
        }
        TileConfig(c)
    };

    /// Configures the tiles for [`tile_scores`] (until [`tile_release`]).
    ///
    /// # Safety
    /// [`cpu_has_amx`] must hold.
    unsafe fn tile_configure() {
        std::arch::asm!("ldtilecfg [{}]", in(reg) TILE_CONFIG.0.as_ptr(), options(nostack, readonly));
    }

    /// # Safety
    /// [`cpu_has_amx`] must hold.
    unsafe fn tile_release() {
        std::arch::asm!("tilerelease", options(nostack, nomem));
    }

    /// The integer scores (with the unsigned offset: `q_u . q_v + 128 sum(q_u)`) of queries
    /// `qa..qa + 32` against both panels of step `s`, into `buf[q][panel]`.
    ///
    /// # Safety
    /// The tiles are configured ([`tile_configure`]); `items.kq` is a multiple of 16; `qb`
    /// holds `qa + 32 <= 64` packed queries.
    #[inline]
    unsafe fn tile_scores(items: &QItems, qb: &QBlock, s: usize, qa: usize, buf: &mut ScoreBuf) {
        let kq = items.kq;
        let b0 = items.bytes.as_ptr().add(s * STEP * kq * 4);
        let b1 = b0.add(PANEL * kq * 4);
        let a0 = (qb.packed.as_ptr() as *const u8).add(qa * kq * 4);
        let a1 = a0.add(16 * kq * 4);
        let stride_a = kq * 4;
        std::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
        for j in 0..kq / 16 {
            std::arch::asm!(
                "tileloadd tmm4, [{a0} + {sa}*1]",
                "tileloadd tmm5, [{a1} + {sa}*1]",
                "tileloadd tmm6, [{b0} + {sb}*1]",
                "tileloadd tmm7, [{b1} + {sb}*1]",
                "tdpbsud tmm0, tmm4, tmm6",
                "tdpbsud tmm1, tmm4, tmm7",
                "tdpbsud tmm2, tmm5, tmm6",
                "tdpbsud tmm3, tmm5, tmm7",
                a0 = in(reg) a0.add(j * 64),
                a1 = in(reg) a1.add(j * 64),
                b0 = in(reg) b0.add(j * 1024),
                b1 = in(reg) b1.add(j * 1024),
                sa = in(reg) stride_a,
                sb = in(reg) 64usize,
                options(nostack, readonly)
            );
        }
        let c = buf.0.as_mut_ptr().add(qa) as *mut u8;
        std::arch::asm!(
            "tilestored [{c0} + {sc}*1], tmm0",
            "tilestored [{c1} + {sc}*1], tmm1",
            "tilestored [{c2} + {sc}*1], tmm2",
            "tilestored [{c3} + {sc}*1], tmm3",
            c0 = in(reg) c,
            c1 = in(reg) c.add(64),
            c2 = in(reg) c.add(16 * 128),
            c3 = in(reg) c.add(16 * 128 + 64),
            sc = in(reg) 128usize,
            options(nostack)
        );
    }

    /// One step's integer scores for a block: `[query][panel][lane]`.
    #[repr(C, align(64))]
    struct ScoreBuf([[[i32; PANEL]; 2]; BLOCK]);

    /// Items per panel (one 512-bit vector of 4 int8 values each) and panels per kernel step.
    const PANEL: usize = 16;
    const STEP: usize = 2 * PANEL;
    /// Queries per kernel group and per block.
    const GROUP: usize = 8;
    const BLOCK: usize = 64;
    /// Steps of the seed pass (see [`seed_block`]).
    const SEED_STEPS: usize = 32;

    /// Per-row quantisation: scale, and the bounds `N >= max(|x|, |x~|)`, `D >= |x - x~|`.
    #[derive(Clone, Copy, Default)]
    struct RowQ {
        scale: f32,
        norm: f32,
        resid: f32,
        sum: i32,
    }

    const TINY: f32 = 9.094947e-13; // 2^-40
    const HUGE: f32 = 1.0995116e12; // 2^40

    /// The largest magnitude of `x`, or `None` when the row is outside the first pass's range
    /// (a non-finite value, or a non-zero maximum outside `[2^-40, 2^40]`).
    fn row_max(x: &[f32]) -> Option<f32> {
        // by the bits of the magnitudes: they order as the values do, and infinities and NaNs
        // come above every finite value (a loop without an exit, which the compiler vectorises)
        let bits = x
            .iter()
            .fold(0i32, |m, v| m.max((v.to_bits() & 0x7fff_ffff) as i32));
        if bits >= f32::INFINITY.to_bits() as i32 {
            return None;
        }
        let m = f32::from_bits(bits as u32);
        (m == 0.0 || (TINY..=HUGE).contains(&m)).then_some(m)
    }

    /// Quantises `x` with its own scale into `out` (its first `x.len()` values; the rest stay
    /// zero), or `None` when the row is outside the first pass's range.
    fn quantize_row(x: &[f32], out: &mut [i8]) -> Option<RowQ> {
        let m = row_max(x)?;
        if m == 0.0 {
            out.fill(0);
            return Some(RowQ::default());
        }
        Some(quantize_with(x, m / 127.0, out))
    }

    /// Quantises `x` with `scale` (at least `max|x| / 127`, positive; values are clamped to
    /// +-127), and bounds the result.
    fn quantize_with(x: &[f32], scale: f32, out: &mut [i8]) -> RowQ {
        let inv = 1.0 / scale;
        let (mut nx, mut nq, mut r2) = (0.0f64, 0.0f64, 0.0f64);
        let mut sum = 0i32;
        for (o, &v) in out.iter_mut().zip(x) {
            // nearest integer without a libm call (ties away from zero; any rounding works, the
            // bound uses the actual residuals)
            let mag = ((v * inv).abs() + 0.5).min(127.0) as i32;
            let q = if v < 0.0 { -mag } else { mag };
            *o = q as i8;
            sum += q;
            // the dequantised value scale * q is exact in f64 (24 + 7 bits)
            let xq = scale as f64 * q as f64;
            let dv = v as f64 - xq;
            nx += v as f64 * v as f64;
            nq += xq * xq;
            r2 += dv * dv;
        }
        let up = |s: f64| (s.sqrt() * (1.0 + 1.0 / (1u64 << 20) as f64)) as f32;
        RowQ {
            scale,
            norm: up(nx.max(nq)),
            resid: up(r2),
            sum,
        }
    }

    /// `c` of the module docs for `d` factors.
    fn bound_coefficient(d: usize) -> f64 {
        let u = f32::EPSILON as f64 / 2.0;
        let gamma = d as f64 * u / (1.0 - d as f64 * u);
        2.0 * u + u * u + gamma + 4.0 * u
    }

    /// The items in the kernel's layout, in scan order: slots sorted by decreasing largest
    /// magnitude (`perm[slot]` is the item position; ties in position order), in steps of 32
    /// slots that share one quantisation scale (so a step's integer scores compare with one
    /// integer threshold per query). Each step is two panels of 16 items, each `kq` vectors of
    /// 16 x 4 bytes (item j's factors 4c..4c+4 in bytes 4j..4j+4 of vector c), offset by 128 to
    /// unsigned. Per slot the bound terms `X`, `Y`; per step the scale, its inverse and the
    /// largest `X` and `Y` (in f64).
    struct QItems {
        kq: usize,
        perm: Vec<u32>,
        bytes: Vec<u8>,
        x: Vec<f32>,
        y: Vec<f32>,
        steps: Vec<StepQ>,
    }

    /// The inverse scale stored for a zero row or step: large enough that any non-zero
    /// numerator saturates the integer threshold, small enough that two multiply to a finite
    /// number (non-zero rows' inverses are below 2^48).
    const ZERO_INV: f64 = 3.273390607896142e150; // 2^500

    #[derive(Clone, Copy, Default)]
    struct StepQ {
        scale: f32,
        inv: f64,
        xm: f64,
        ym: f64,
    }

    /// Rows ahead of the one being quantised whose factors are requested from memory: the rows
    /// are read in scan order, scattered over the item matrix.
    const QUANTIZE_AHEAD: usize = 16;

    /// [`QItems`] of `items` (`n` rows of `f`), built in parallel in the pool of `num_threads`;
    /// `None` when a row is outside the first pass's range.
    fn quantize_items(
        items: &[f32],
        n: usize,
        f: usize,
        kq: usize,
        num_threads: usize,
    ) -> Result<Option<QItems>> {
        let padded = n.div_ceil(STEP) * STEP;
        let cause = || format!("{n} items x {f} factors");
        let what = "the quantised item factors";
        let mut maxes = try_vec(n, 0u64, what, cause)?;
        let in_range = parallel::install(num_threads, || {
            maxes
                .par_iter_mut()
                .enumerate()
                .with_min_len(4096)
                .all(|(p, key)| {
                    let Some(m) = row_max(&items[p * f..(p + 1) * f]) else {
                        return false;
                    };
                    // decreasing magnitude, then position
                    *key = rank_key(m, p as u32);
                    true
                })
        })?;
        if !in_range {
            return Ok(None);
        }
        // the keys are distinct (they hold the position): the order is the sequential sort's
        parallel::install(num_threads, || maxes.par_sort_unstable())?;
        let perm: Vec<u32> = maxes.iter().map(|&key| key as u32).collect();
        let mut bytes = try_vec(padded * kq * 4, 128u8, what, cause)?;
        let mut x = try_vec(padded, 0f32, what, cause)?;
        let mut y = x.clone();
        let zero = StepQ {
            inv: ZERO_INV,
            ..StepQ::default()
        };
        let mut steps = try_vec(padded / STEP, zero, what, cause)?;
        let c = bound_coefficient(f);
        let abs = f as f64 * 2f64.powi(-109);
        let row_of = |p: u32| &items[p as usize * f..(p as usize + 1) * f];
        // each step (its scale, its two panels of bytes, its slots' bound terms) on its own
        parallel::install(num_threads, || {
            steps
                .par_iter_mut()
                .zip(bytes.par_chunks_mut(STEP * kq * 4))
                .zip(x.par_chunks_mut(STEP).zip(y.par_chunks_mut(STEP)))
                .enumerate()
                .with_min_len(64)
                .for_each_init(
                    || vec![0i8; f],
                    |row, (s, ((st, bytes), (x, y)))| {
                        let slots = s * STEP..((s + 1) * STEP).min(n);
                        // the step's largest magnitude is its first slot's
                        let m = from_rank_key(maxes[slots.start]).0;
                        if m == 0.0 {
                            return;
                        }
                        let scale = m / 127.0;
                        st.scale = scale;
                        st.inv = 1.0 / scale as f64;
                        for slot in slots {
                            if let Some(&ahead) = perm.get(slot + QUANTIZE_AHEAD) {
                                for line in row_of(ahead).iter().step_by(16) {
                                    crate::simd::prefetch(line);
                                }
                            }
                            let r = quantize_with(row_of(perm[slot]), scale, row);
                            let (l, j) = (slot % STEP, slot % PANEL);
                            let base = (l / PANEL) * kq * 64;
                            for (i, &q) in row.iter().enumerate() {
                                bytes[base + (i / 4) * 64 + j * 4 + i % 4] = (q as i32 + 128) as u8;
                            }
                            x[l] = r.norm;
                            let yv =
                                (r.resid as f64 + c * r.norm as f64 + abs) * (1.0 + 2f64.powi(-18));
                            y[l] = yv as f32 * (1.0 + f32::EPSILON);
                            st.xm = st.xm.max(x[l] as f64);
                            st.ym = st.ym.max(y[l] as f64);
                        }
                    },
                )
        })?;
        Ok(Some(QItems {
            kq,
            perm,
            bytes,
            x,
            y,
            steps,
        }))
    }

    /// One block of (up to 64) queries: int8 rows packed 4 to an i32, and per query the scale,
    /// the unsigned-offset correction `128 sum(q)`, `Du` (inflated) and `Nu`.
    struct QBlock {
        packed: Vec<i32>,
        scale: [f32; BLOCK],
        corr: [i32; BLOCK],
        du: [f32; BLOCK],
        nu: [f32; BLOCK],
        /// `du`, `nu` in f64, and `1 / scale` ([`ZERO_INV`] for a zero or padding query)
        du64: [f64; BLOCK],
        nu64: [f64; BLOCK],
        inv: [f64; BLOCK],
    }

    impl QBlock {
        fn new(kq: usize) -> Self {
            QBlock {
                packed: vec![0; BLOCK * kq],
                scale: [0.0; BLOCK],
                corr: [0; BLOCK],
                du: [0.0; BLOCK],
                nu: [0.0; BLOCK],
                du64: [0.0; BLOCK],
                nu64: [0.0; BLOCK],
                inv: [ZERO_INV; BLOCK],
            }
        }

        /// Fills the block from `rows` (at most 64 rows of `f`); padding queries are zero.
        fn fill(&mut self, rows: &[f32], f: usize, kq: usize, row: &mut [i8]) {
            let mb = rows.len() / f;
            self.packed.fill(0);
            self.scale = [0.0; BLOCK];
            self.corr = [0; BLOCK];
            self.du = [0.0; BLOCK];
            self.nu = [0.0; BLOCK];
            self.du64 = [0.0; BLOCK];
            self.nu64 = [0.0; BLOCK];
            self.inv = [ZERO_INV; BLOCK];
            for q in 0..mb {
                // the caller checked every row's range, so quantize_row succeeds
                let r = quantize_row(&rows[q * f..(q + 1) * f], &mut row[..f]).unwrap_or_default();
                for c in 0..kq {
                    let mut b = [0u8; 4];
                    for (i, b) in b.iter_mut().enumerate() {
                        *b = row
                            .get(4 * c + i)
                            .filter(|_| 4 * c + i < f)
                            .map_or(0, |&v| v as u8);
                    }
                    self.packed[q * kq + c] = i32::from_le_bytes(b);
                }
                self.scale[q] = r.scale;
                self.corr[q] = 128 * r.sum;
                self.du[q] = r.resid * (1.0 + 1.0 / (1 << 18) as f32);
                self.nu[q] = r.norm;
                self.du64[q] = self.du[q] as f64;
                self.nu64[q] = self.nu[q] as f64;
                if r.scale > 0.0 {
                    self.inv[q] = 1.0 / r.scale as f64;
                }
            }
        }
    }

    /// A candidate: position and `a + b`.
    #[derive(Clone, Copy)]
    struct Cand {
        p: u32,
        hi: f32,
    }

    /// Per-query state of a block's first pass: the candidates that reached the threshold when
    /// they were scanned, compacted now and then.
    struct QState {
        /// the best k lower bounds so far; its threshold is `T`
        lower: TopK,
        cands: Vec<Cand>,
        /// compaction happens when `cands` reaches this length
        cap: usize,
        /// too many candidates (scores tied in masses): rescore every position
        full: bool,
    }

    /// What the kernel calls on the (rare) lanes whose `a + b` reaches the query's threshold.
    struct Hits<'a> {
        excluded: &'a [u32],
        liked: &'a [Vec<u32>],
        states: &'a mut [QState],
        thresholds: &'a mut [f32; BLOCK],
        /// item position of each scan slot
        perm: &'a [u32],
        max_cap: usize,
        /// slots below this were offered to the heap by the seed pass (as lane maxima)
        seed_slots: usize,
    }

    impl Hits<'_> {
        #[cold]
        #[inline(never)]
        fn hit(&mut self, q: usize, s0: usize, mut mask: u16, hi: &[f32; 16], lo: &[f32; 16]) {
            let st = &mut self.states[q];
            while mask != 0 {
                let l = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let Some(&pu) = self.perm.get(s0 + l) else {
                    break;
                };
                // excluded and liked items are dropped when the candidates are rescored; only
                // a lower bound that would raise the threshold needs the check now (the heap
                // must hold distinct eligible items only; one below the threshold cannot raise
                // it; the seed pass offered the seed slots' best already)
                st.cands.push(Cand { p: pu, hi: hi[l] });
                if lo[l] >= self.thresholds[q]
                    && s0 + l >= self.seed_slots
                    && !sorted_contains(self.excluded, pu)
                    && !sorted_contains(&self.liked[q], pu)
                {
                    st.lower.push(lo[l], pu);
                    self.thresholds[q] = st.lower.threshold();
                }
                if st.cands.len() >= st.cap {
                    let t = self.thresholds[q];
                    st.cands.retain(|c| c.hi >= t);
                    if st.cands.len() > st.cap / 2 {
                        if st.cap >= self.max_cap {
                            st.full = true;
                            st.cands = Vec::new();
                            self.thresholds[q] = f32::INFINITY;
                            return;
                        }
                        st.cap *= 2;
                    }
                }
            }
        }
    }

    /// The integer thresholds of 8 queries (`q0..q0 + 8`) for one step: every slot whose
    /// `a + b` (as [`check_lanes`] computes it in f32) reaches the query's `t` has an integer
    /// score `>=` it. With `s = s_q s_step`, `a` is `I s` rounded (relative error <= 2u + u^2),
    /// `b <= bm = du Xm + nu Ym` up to its rounding (relative 2u), and their sum is rounded once
    /// more, so `a + b >= t` implies `I s >= t - bm (1 + 1e-6) - 1e-6 nu Xm` (as
    /// `|I s| <= Nu Nv <= nu Xm`). The quotient by `s` is computed in f64 (relative error
    /// ~1e-15) and lowered by a margin before the floor; infinite thresholds and zero scales
    /// ([`ZERO_INV`]) saturate to `i32::MIN` (every lane is checked) or `i32::MAX` (none is; no
    /// integer score comes near it).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F; `q0 + 8 <= 64`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn int_thresholds(qb: &QBlock, t: &[f32; BLOCK], q0: usize, st: &StepQ) -> [i32; 8] {
        let t = _mm512_cvtps_pd(_mm256_loadu_ps(t.as_ptr().add(q0)));
        let du = _mm512_loadu_pd(qb.du64.as_ptr().add(q0));
        let nu = _mm512_loadu_pd(qb.nu64.as_ptr().add(q0));
        let inv = _mm512_mul_pd(
            _mm512_loadu_pd(qb.inv.as_ptr().add(q0)),
            _mm512_set1_pd(st.inv),
        );
        let bm = _mm512_fmadd_pd(
            du,
            _mm512_set1_pd(st.xm),
            _mm512_mul_pd(nu, _mm512_set1_pd(st.ym)),
        );
        let big = _mm512_fmadd_pd(
            bm,
            _mm512_set1_pd(1.0 + 1e-6),
            _mm512_mul_pd(nu, _mm512_set1_pd(1e-6 * st.xm)),
        );
        let r = _mm512_mul_pd(_mm512_sub_pd(t, big), inv);
        let lim = 4294967296.0; // 2^32
        let r = _mm512_min_pd(_mm512_max_pd(r, _mm512_set1_pd(-lim)), _mm512_set1_pd(lim));
        let r = _mm512_sub_pd(
            _mm512_fnmadd_pd(_mm512_abs_pd(r), _mm512_set1_pd(1e-9), r),
            _mm512_set1_pd(2.0),
        );
        let r = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(r);
        let r = _mm512_min_pd(
            _mm512_max_pd(r, _mm512_set1_pd(i32::MIN as f64)),
            _mm512_set1_pd(i32::MAX as f64),
        );
        let mut out = [0i32; 8];
        _mm256_storeu_si256(out.as_mut_ptr() as *mut _, _mm512_cvtpd_epi32(r));
        out
    }

    /// The integer scores of 8 queries (`q0..`) against the two panels of a step: accumulators
    /// start at `-128 sum(q_u)`, undoing the unsigned offset of the item bytes.
    macro_rules! accumulate {
        ($qb:expr, $qp:expr, $b0:expr, $b1:expr, $kq:expr, $q0:expr) => {{
            let mut acc = [[_mm512_setzero_si512(); 2]; GROUP];
            for i in 0..GROUP {
                let c = _mm512_set1_epi32(-$qb.corr[$q0 + i]);
                acc[i] = [c, c];
            }
            for c in 0..$kq {
                let v0 = _mm512_loadu_si512($b0.add(c * 64) as *const _);
                let v1 = _mm512_loadu_si512($b1.add(c * 64) as *const _);
                for i in 0..GROUP {
                    let a = _mm512_set1_epi32(*$qp.add(($q0 + i) * $kq + c));
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], v0, a);
                    acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], v1, a);
                }
            }
            acc
        }};
    }

    /// The seed pass over the first `eligible.len() / 64` steps of one block: per query, the
    /// largest lower bound `a - b` in each of the 32 lanes of a step (over the slots whose bit is
    /// set in `eligible[q * steps + s]`: real items, not excluded, not liked), into `lanes`
    /// (`-inf` where none). Lanes hold distinct items, so the k-th largest of a query's 32 is
    /// the k-th largest lower bound of k distinct eligible items: a valid threshold to start the
    /// scan from, near the one the running heap would reach after these steps, without the heap
    /// work for every item that beats a still-low threshold.
    ///
    /// # Safety
    /// As [`scan_block`]; `eligible` holds `64 * steps` masks, `steps <= items.steps.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn seed_block<const TILES: bool>(
        items: &QItems,
        qb: &QBlock,
        ng: usize,
        eligible: &[u32],
        lanes: &mut [[f32; STEP]; BLOCK],
    ) {
        let kq = items.kq;
        let steps = eligible.len() / BLOCK;
        let bytes = items.bytes.as_ptr();
        let qp = qb.packed.as_ptr();
        let mut lm = [[_mm512_set1_ps(f32::NEG_INFINITY); 2]; BLOCK];
        let mut buf = ScoreBuf([[[0; PANEL]; 2]; BLOCK]);
        for (s, st) in items.steps[..steps].iter().enumerate() {
            if TILES {
                for qa in (0..ng * GROUP).step_by(32) {
                    tile_scores(items, qb, s, qa, &mut buf);
                }
            }
            let s0 = s * STEP;
            let b0 = bytes.add(s0 * kq * 4);
            let b1 = b0.add(PANEL * kq * 4);
            let xs = [
                _mm512_loadu_ps(items.x.as_ptr().add(s0)),
                _mm512_loadu_ps(items.x.as_ptr().add(s0 + PANEL)),
            ];
            let ys = [
                _mm512_loadu_ps(items.y.as_ptr().add(s0)),
                _mm512_loadu_ps(items.y.as_ptr().add(s0 + PANEL)),
            ];
            for g in 0..ng {
                let q0 = g * GROUP;
                let acc = if TILES {
                    from_buf(&buf, qb, q0)
                } else {
                    accumulate!(qb, qp, b0, b1, kq, q0)
                };
                for i in 0..GROUP {
                    let q = q0 + i;
                    let e = eligible[q * steps + s];
                    let sq = _mm512_set1_ps(qb.scale[q] * st.scale);
                    let du = _mm512_set1_ps(qb.du[q]);
                    let nu = _mm512_set1_ps(qb.nu[q]);
                    for h in 0..2 {
                        let a = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][h]), sq);
                        let b = _mm512_fmadd_ps(du, xs[h], _mm512_mul_ps(nu, ys[h]));
                        let m = (e >> (16 * h)) as u16;
                        lm[q][h] = _mm512_mask_max_ps(lm[q][h], m, lm[q][h], _mm512_sub_ps(a, b));
                    }
                }
            }
        }
        for q in 0..ng * GROUP {
            _mm512_storeu_ps(lanes[q].as_mut_ptr(), lm[q][0]);
            _mm512_storeu_ps(lanes[q].as_mut_ptr().add(PANEL), lm[q][1]);
        }
    }

    /// 8 queries' (`q0..`) integer scores from a [`ScoreBuf`], less the unsigned offset.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F; `q0 + 8 <= 64`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn from_buf(buf: &ScoreBuf, qb: &QBlock, q0: usize) -> [[__m512i; 2]; GROUP] {
        std::array::from_fn(|i| {
            let c = _mm512_set1_epi32(qb.corr[q0 + i]);
            let row = &buf.0[q0 + i];
            [
                _mm512_sub_epi32(_mm512_loadu_si512(row[0].as_ptr() as *const _), c),
                _mm512_sub_epi32(_mm512_loadu_si512(row[1].as_ptr() as *const _), c),
            ]
        })
    }

    /// The first pass over one block of queries against all item slots.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `qb.packed` holds `ng * 8` queries of `items.kq`
    /// values, `ng * 8 <= 64`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::needless_range_loop)] // the accumulators are indexed by query and panel
    unsafe fn scan_block<const TILES: bool>(
        items: &QItems,
        qb: &QBlock,
        ng: usize,
        hits: &mut Hits<'_>,
    ) {
        let kq = items.kq;
        let bytes = items.bytes.as_ptr();
        let qp = qb.packed.as_ptr();
        let mut buf = ScoreBuf([[[0; PANEL]; 2]; BLOCK]);
        for (s, st) in items.steps.iter().enumerate() {
            let s0 = s * STEP;
            let b0 = bytes.add(s0 * kq * 4);
            let b1 = b0.add(PANEL * kq * 4);
            if TILES {
                for qa in (0..ng * GROUP).step_by(32) {
                    tile_scores(items, qb, s, qa, &mut buf);
                }
            }
            for g in 0..ng {
                let q0 = g * GROUP;
                let acc = if TILES {
                    from_buf(&buf, qb, q0)
                } else {
                    accumulate!(qb, qp, b0, b1, kq, q0)
                };
                let thr = int_thresholds(qb, hits.thresholds, q0, st);
                for i in 0..GROUP {
                    let t = _mm512_set1_epi32(thr[i]);
                    let m0 = _mm512_cmpge_epi32_mask(acc[i][0], t);
                    let m1 = _mm512_cmpge_epi32_mask(acc[i][1], t);
                    if (m0 | m1) != 0 {
                        check_lanes(items, qb, q0 + i, s, [m0, m1], acc[i], hits);
                    }
                }
            }
        }
    }

    /// The exact `a + b >= t` test on the lanes of one query and step that passed the integer
    /// threshold, and the hits.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    unsafe fn check_lanes(
        items: &QItems,
        qb: &QBlock,
        q: usize,
        s: usize,
        masks: [u16; 2],
        acc: [__m512i; 2],
        hits: &mut Hits<'_>,
    ) {
        let sq = _mm512_set1_ps(qb.scale[q] * items.steps[s].scale);
        let du = _mm512_set1_ps(qb.du[q]);
        let nu = _mm512_set1_ps(qb.nu[q]);
        for h in 0..2 {
            if masks[h] == 0 {
                continue;
            }
            let s0 = s * STEP + h * PANEL;
            let xs = _mm512_loadu_ps(items.x.as_ptr().add(s0));
            let ys = _mm512_loadu_ps(items.y.as_ptr().add(s0));
            let a = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[h]), sq);
            let b = _mm512_fmadd_ps(du, xs, _mm512_mul_ps(nu, ys));
            let hi = _mm512_add_ps(a, b);
            let t = _mm512_set1_ps(hits.thresholds[q]);
            let mask = _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(masks[h], hi, t);
            if mask != 0 {
                let lo = _mm512_sub_ps(a, b);
                let (mut his, mut los) = ([0f32; 16], [0f32; 16]);
                _mm512_storeu_ps(his.as_mut_ptr(), hi);
                _mm512_storeu_ps(los.as_mut_ptr(), lo);
                hits.hit(q, s0, mask, &his, &los);
            }
        }
    }

    /// Exact scores of `u` against 8 item rows at once: [`exact_dot`]'s chains, interleaved.
    ///
    /// # Safety
    /// The CPU must have FMA.
    #[target_feature(enable = "fma")]
    unsafe fn exact_dot8(u: &[f32], rows: [&[f32]; 8]) -> [f32; 8] {
        let n = u.len();
        let rows: [&[f32]; 8] = std::array::from_fn(|j| &rows[j][..n]);
        let mut acc = [0.0f32; 8];
        for i in 0..n {
            let x = u[i];
            for j in 0..8 {
                acc[j] = x.mul_add(rows[j][i], acc[j]);
            }
        }
        acc
    }

    /// Offers the exact scores of `u` at `positions` to `heap`.
    fn rescore(
        u: &[f32],
        items: &[f32],
        f: usize,
        candidates: &Candidates,
        positions: &[u32],
        heap: &mut TopK,
    ) {
        let row = |p: u32| &items[p as usize * f..(p as usize + 1) * f];
        for c in positions.chunks(8) {
            // a short last chunk repeats its last position
            let rows = std::array::from_fn(|j| row(c[j.min(c.len() - 1)]));
            // SAFETY: only called after cpu_has_vnni(), which includes FMA.
            let s = unsafe { exact_dot8(u, rows) };
            for (j, &p) in c.iter().enumerate() {
                if s[j] >= heap.threshold() {
                    heap.push(s[j], candidates.item(p as usize));
                }
            }
        }
    }

    struct Worker {
        qb: QBlock,
        row: Vec<i8>,
        states: Vec<QState>,
        liked: Vec<Vec<u32>>,
        heap: TopK,
        positions: Vec<u32>,
        eligible: Vec<u32>,
        lanes: Box<[[f32; STEP]; BLOCK]>,
    }

    /// The first pass, or `None` where the full path must run (see the module docs).
    #[allow(clippy::needless_range_loop)] // per-query arrays of the block, indexed alike
    pub(super) fn first_pass(
        scorer: &DotScorer<'_>,
        candidates: &Candidates,
        liked: Option<&CsrView<'_>>,
        k: usize,
        num_threads: usize,
        tiles: bool,
    ) -> Result<Option<TopKResult>> {
        if scorer.is_cosine() {
            return Ok(None); // the bounds are for dot products
        }
        let (queries, items, nq, np, f) = scorer.parts();
        check_liked(liked, nq, candidates)?;
        let k = k.min(candidates.available());
        if !cpu_has_vnni() || !sizes_qualify(nq, np, f, k) {
            return Ok(None);
        }
        if (0..nq).any(|q| row_max(&queries[q * f..(q + 1) * f]).is_none()) {
            return Ok(None);
        }
        // the tiles take 64 factors at a time (zero padding)
        let kq = if tiles {
            f.div_ceil(64) * 16
        } else {
            f.div_ceil(4)
        };
        let Some(qitems) = quantize_items(items, np, f, kq, num_threads)? else {
            return Ok(None);
        };
        let mut ids = filled(nq, k, -1i32)?;
        let mut scores = filled(nq, k, f32::NEG_INFINITY)?;
        let excluded = candidates.excluded();
        let stop = parallel::stop_flag();
        let kq = qitems.kq;
        // candidates a query keeps before a compaction, and before it is rescored in full
        let cap = (4 * k).max(128);
        let max_cap = (64 * k).max(4096).min(np / 2).max(cap);
        // the seed pass (see seed_block): over the first eighth of the steps (at least
        // SEED_STEPS, at most 8 times that), where k fits in the 32 lanes and the scan is long
        // enough to repay it
        let n_steps = qitems.steps.len();
        let seed_steps = if k <= STEP / 2 && n_steps >= 2 * SEED_STEPS {
            (n_steps / 8).clamp(SEED_STEPS, 8 * SEED_STEPS)
        } else {
            0
        };
        let seed_slots = seed_steps * STEP;
        let mut slot_of = Vec::new();
        let mut base = vec![0u32; seed_steps];
        if seed_steps > 0 {
            slot_of = try_vec(np, 0u32, "the item slots", || format!("{np} items"))?;
            for (slot, &p) in qitems.perm.iter().enumerate() {
                slot_of[p as usize] = slot as u32;
            }
            for slot in 0..seed_slots.min(np) {
                base[slot / STEP] |= 1 << (slot % STEP);
            }
            for &p in excluded {
                let slot = slot_of[p as usize] as usize;
                if slot < seed_slots {
                    base[slot / STEP] &= !(1 << (slot % STEP));
                }
            }
        }

        parallel::for_each_block(
            num_threads,
            &mut ids,
            &mut scores,
            k,
            BLOCK,
            || Worker {
                qb: QBlock::new(kq),
                row: vec![0i8; kq * 4],
                states: (0..BLOCK)
                    .map(|_| QState {
                        lower: TopK::new(k),
                        cands: Vec::new(),
                        cap,
                        full: false,
                    })
                    .collect(),
                liked: vec![Vec::new(); BLOCK],
                heap: TopK::new(k),
                positions: Vec::new(),
                eligible: vec![0u32; BLOCK * seed_steps],
                lanes: Box::new([[f32::NEG_INFINITY; STEP]; BLOCK]),
            },
            |w, block, ids_b, scores_b| {
                if stop.is_set() {
                    return;
                }
                let q0 = block * BLOCK;
                let mb = (nq - q0).min(BLOCK);
                w.qb.fill(&queries[q0 * f..(q0 + mb) * f], f, kq, &mut w.row);
                let mut thresholds = [f32::INFINITY; BLOCK];
                for q in 0..mb {
                    thresholds[q] = f32::NEG_INFINITY;
                    let st = &mut w.states[q];
                    st.cands.clear();
                    st.lower.clear();
                    st.cap = cap;
                    st.full = false;
                    w.liked[q].clear();
                    if let Some(l) = liked {
                        let (cols, _) = l.row(q0 + q);
                        w.liked[q]
                            .extend(cols.iter().filter_map(|&c| candidates.position(c as u32)));
                        w.liked[q].sort_unstable();
                    }
                }
                if seed_steps > 0 {
                    for q in 0..BLOCK {
                        let e = &mut w.eligible[q * seed_steps..(q + 1) * seed_steps];
                        if q >= mb {
                            e.fill(0);
                            continue;
                        }
                        e.copy_from_slice(&base);
                        for &p in &w.liked[q] {
                            let slot = slot_of[p as usize] as usize;
                            if slot < seed_slots {
                                e[slot / STEP] &= !(1 << (slot % STEP));
                            }
                        }
                    }
                    // SAFETY: as for scan_block below; eligible holds 64 * seed_steps
                    // masks and seed_steps <= the item steps.
                    let ng = mb.div_ceil(GROUP);
                    unsafe {
                        if tiles {
                            tile_configure();
                            seed_block::<true>(&qitems, &w.qb, ng, &w.eligible, &mut w.lanes);
                            tile_release();
                        } else {
                            seed_block::<false>(&qitems, &w.qb, ng, &w.eligible, &mut w.lanes);
                        }
                    }
                    for q in 0..mb {
                        // each lane's maximum is a distinct eligible item's lower
                        // bound (ids stand in: the heap's ids only order ties)
                        let st = &mut w.states[q];
                        for (lane, &v) in w.lanes[q].iter().enumerate() {
                            if v > f32::NEG_INFINITY {
                                st.lower.push(v, u32::MAX - lane as u32);
                            }
                        }
                        thresholds[q] = st.lower.threshold();
                    }
                }
                let mut hits = Hits {
                    excluded,
                    liked: &w.liked,
                    states: &mut w.states,
                    thresholds: &mut thresholds,
                    perm: &qitems.perm,
                    max_cap,
                    seed_slots,
                };
                // SAFETY: cpu_has_vnni() checked the features; the block holds
                // mb.div_ceil(8) * 8 <= 64 packed queries.
                // With tiles, cpu_has_amx() held and kq is a multiple of 16.
                unsafe {
                    let ng = mb.div_ceil(GROUP);
                    if tiles {
                        tile_configure();
                        scan_block::<true>(&qitems, &w.qb, ng, &mut hits);
                        tile_release();
                    } else {
                        scan_block::<false>(&qitems, &w.qb, ng, &mut hits);
                    }
                }
                for q in 0..mb {
                    let u = &queries[(q0 + q) * f..(q0 + q + 1) * f];
                    let st = &w.states[q];
                    w.positions.clear();
                    if st.full {
                        w.positions.extend((0..np as u32).filter(|p| {
                            !sorted_contains(excluded, *p) && !sorted_contains(&w.liked[q], *p)
                        }));
                    } else {
                        let t = st.lower.threshold();
                        w.positions.extend(st.cands.iter().filter_map(|c| {
                            (c.hi >= t
                                && !sorted_contains(excluded, c.p)
                                && !sorted_contains(&w.liked[q], c.p))
                            .then_some(c.p)
                        }));
                    }
                    w.heap.clear();
                    rescore(u, items, f, candidates, &w.positions, &mut w.heap);
                    let r = q * k..(q + 1) * k;
                    w.heap.write_sorted(&mut ids_b[r.clone()], &mut scores_b[r]);
                }
            },
        )?;
        stop.check()?;
        Ok(Some(TopKResult {
            n_queries: nq,
            k,
            ids,
            scores,
        }))
    }
}
