//! The objective every ALS solver minimises, in its two conventions, and its regularisation.
//!
//! With confidences `c_ui` (the stored values times alpha; preference `p_ui = 1` for `c > 0`, 0
//! for `c < 0`, confidence `|c|`) and scores `s_ui = x_u . y_i`:
//!
//! * implicit's convention (`unobserved_weight = None`, Hu, Koren & Volinsky 2008 as implicit 0.7
//!   implements it): `sum_obs |c| (p - s)^2 + sum_missing s^2`. A missing entry weighs 1 and an
//!   observed one weighs `|c|` *instead*; row u solves
//!   `(YtY + sum_obs (|c| - 1) y y^T + reg_u I) x_u = sum_obs c+ y`.
//! * Rendle, Zhang & Koren 2022 ("Revisiting the performance of iALS on item recommendation
//!   benchmarks", `unobserved_weight = Some(alpha_0)`): `sum_obs |c| (p - s)^2 + alpha_0 sum_all
//!   s^2`, every entry, observed ones included, pushed to 0 with weight `alpha_0`; row u solves
//!   `(alpha_0 YtY + sum_obs |c| y y^T + reg_u I) x_u = sum_obs c+ y`. With binary data and
//!   alpha = 1 this is the paper's `sum_S (1 - s)^2 + alpha_0 sum_all s^2`.
//!
//! Both are `(g YtY + sum_obs (|c| - o) y y^T + reg_u I) x_u = sum_obs c+ y` with the Gram weight
//! `g` and the observed offset `o`: `(1, 1)` and `(alpha_0, 0)`. The regularisation of a row with
//! `n` stored entries, against `N` fixed rows, is `reg * (n + alpha_0 N)^nu` (the paper's
//! frequency-scaled regularisation); implicit's convention counts the entries only,
//! `reg * n^nu`, which with `nu = 1` is Spark MLlib's `regParam * numRatings` (ALS-WR, Zhou et
//! al. 2008). `nu = 0` is a constant `reg`.

use super::AlsParams;
use crate::error::{Error, Result};
use crate::sparse::CsrView;

impl AlsParams {
    /// Raises InvalidArgument naming the first parameter that is not finite and `>= 0`.
    pub(super) fn check(&self) -> Result<()> {
        let finite = |name: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(name, format!("must be >= 0, got {v}")))
            }
        };
        finite("regularization", self.regularization)?;
        if let Some(w) = self.unobserved_weight {
            finite("unobserved_weight", w)?;
        }
        finite("regularization_exponent", self.regularization_exponent)
    }

    /// The weight `g` of the Gram term `g YtY`.
    #[inline]
    pub(super) fn gram_weight(&self) -> f32 {
        self.unobserved_weight.unwrap_or(1.0)
    }

    /// The offset `o` taken from an observed confidence in the system's `(|c| - o) y y^T`.
    #[inline]
    pub(super) fn observed_offset(&self) -> f32 {
        if self.unobserved_weight.is_some() {
            0.0
        } else {
            1.0
        }
    }

    /// Whether the regularisation depends on the row (`regularization_exponent != 0`).
    #[inline]
    pub(super) fn scaled_regularization(&self) -> bool {
        self.regularization_exponent != 0.0
    }

    /// The regularisation of a row with `stored` entries against `fixed` rows of fixed factors.
    pub fn row_regularization(&self, stored: usize, fixed: usize) -> f32 {
        if !self.scaled_regularization() {
            return self.regularization;
        }
        let a0 = self.unobserved_weight.unwrap_or(0.0) as f64;
        let n = stored as f64 + a0 * fixed as f64;
        (self.regularization as f64 * n.powf(self.regularization_exponent as f64)) as f32
    }

    /// The regularisation of every row of `c` against `fixed` rows of fixed factors.
    pub(super) fn row_regularizations(&self, c: &CsrView<'_>, fixed: usize) -> Vec<f32> {
        (0..c.n_rows())
            .map(|r| self.row_regularization(c.row_range(r).len(), fixed))
            .collect()
    }
}
