//! The LightFM epoch kernel: mismatched shapes are errors, not panics; one thread is
//! reproducible.

use tacitrec::models::lightfm::{epoch, Data, LightFmParams, Loss, Side};
use tacitrec::sparse::Csr;

fn params(loss: Loss) -> LightFmParams {
    LightFmParams {
        loss,
        ..Default::default()
    }
}

fn run(loss: Loss, n_user_features: usize) -> Result<Vec<f32>, tacitrec::Error> {
    let t: Vec<_> = (0..40usize).map(|k| (k % 10, (k * 7) % 12, 1.0)).collect();
    let x = Csr::from_triplets(10, 12, &t).unwrap();
    let (uf, itf) = (Csr::identity(10), Csr::identity(12));
    let d = 3;
    let mut up: Vec<f32> = (0..n_user_features * (d + 1))
        .map(|k| (k % 7) as f32 * 0.01)
        .collect();
    let (mut ug, mut us) = (vec![1f32; up.len()], vec![0f32; up.len()]);
    let mut ip: Vec<f32> = (0..12 * (d + 1)).map(|k| (k % 5) as f32 * 0.01).collect();
    let (mut ig, mut is) = (vec![1f32; ip.len()], vec![0f32; ip.len()]);
    let data = Data {
        interactions: &x.view(),
        weights: None,
        user_features: &uf.view(),
        item_features: &itf.view(),
    };
    for seed in 0..3 {
        epoch(
            &data,
            Side {
                params: &mut up,
                grad_acc: &mut ug,
                step_acc: &mut us,
            },
            Side {
                params: &mut ip,
                grad_acc: &mut ig,
                step_acc: &mut is,
            },
            d,
            &params(loss),
            seed,
            1,
        )?;
    }
    up.extend_from_slice(&ip);
    Ok(up)
}

#[test]
fn one_thread_is_reproducible_for_every_loss() {
    for loss in [
        Loss::Logistic,
        Loss::Bpr,
        Loss::Warp,
        Loss::WarpKos { k: 2, n: 3 },
    ] {
        let a = run(loss, 10).unwrap();
        assert_eq!(a, run(loss, 10).unwrap());
        assert!(a.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn mismatched_parameters_are_errors() {
    assert!(run(Loss::Warp, 9).is_err());
}
