//! L2-regularised logistic regression, fitted by Newton's method (IRLS).
//!
//! Why not a library: with ~50 features the Newton step is a 50×50 Cholesky
//! solve, so the exact optimum takes a dozen iterations and a few dozen
//! lines, with no numeric stack to compile and no sign convention to trip
//! over (`linfa-logistic` models the majority class). The positive class
//! here is always `churn = true`.
//!
//! Explanations are exact: with `ref` the training mean of each feature,
//! `logit = baseline + Σ w_j (x_j − ref_j)` where
//! `baseline = intercept + Σ w_j ref_j`.

use serde::{Deserialize, Serialize};

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    /// L2 penalty on the weights (not on the intercept), in sum-of-losses
    /// units (scikit-learn's `C` is its inverse).
    pub l2: f64,
    pub intercept: f64,
    pub weights: Vec<f64>,
    /// Training mean of each feature: the reference point of explanations.
    pub reference: Vec<f64>,
}

impl Logistic {
    /// The log-odds of churn.
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.intercept + dot(&self.weights, x)
    }

    /// The log-odds at the reference point.
    pub fn baseline(&self) -> f64 {
        self.intercept + dot(&self.weights, &self.reference)
    }

    /// Adds `weight ×` each feature's contribution to `contrib` and returns
    /// `weight × baseline`; the two add up to `weight × logit(x)`.
    pub fn explain_into(&self, x: &[f64], weight: f64, contrib: &mut [f64]) -> f64 {
        for ((c, (w, xi)), r) in contrib
            .iter_mut()
            .zip(self.weights.iter().zip(x))
            .zip(&self.reference)
        {
            *c += weight * w * (xi - r);
        }
        weight * self.baseline()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits on rows `x` (each of the same length) and labels `y`.
pub fn fit(x: &[Vec<f64>], y: &[bool], l2: f64) -> Logistic {
    let n = x.len();
    let d = x.first().map_or(0, Vec::len);
    let p = d + 1; // parameter 0 is the intercept
    let mut beta = vec![0.0; p];
    let positives = y.iter().filter(|&&v| v).count() as f64;
    let rate = (positives / n.max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
    beta[0] = (rate / (1.0 - rate)).ln();

    let mut hessian = vec![0.0; p * p];
    let mut gradient = vec![0.0; p];
    for _ in 0..100 {
        hessian.fill(0.0);
        gradient.fill(0.0);
        for (row, &label) in x.iter().zip(y) {
            let z = beta[0] + dot(&beta[1..], row);
            let prob = sigmoid(z);
            let residual = prob - f64::from(u8::from(label));
            let curvature = (prob * (1.0 - prob)).max(1e-12);
            accumulate(&mut gradient, &mut hessian, row, residual, curvature);
        }
        for j in 1..p {
            gradient[j] += l2 * beta[j];
            hessian[j * p + j] += l2;
        }
        // Fill the lower triangle from the upper one.
        for i in 0..p {
            for j in 0..i {
                hessian[i * p + j] = hessian[j * p + i];
            }
        }
        let step = cholesky_solve(&mut hessian, &gradient, p);
        let mut largest = 0.0f64;
        for (b, s) in beta.iter_mut().zip(&step) {
            *b -= s;
            largest = largest.max(s.abs());
        }
        if largest < 1e-10 {
            break;
        }
    }

    let mut reference = vec![0.0; d];
    for row in x {
        for (r, v) in reference.iter_mut().zip(row) {
            *r += v;
        }
    }
    reference.iter_mut().for_each(|r| *r /= n.max(1) as f64);
    Logistic {
        l2,
        intercept: beta[0],
        weights: beta[1..].to_vec(),
        reference,
    }
}

/// Adds one row's terms to the gradient and the upper triangle of the
/// Hessian (parameter 0 is the intercept, whose feature is 1).
fn accumulate(gradient: &mut [f64], hessian: &mut [f64], row: &[f64], residual: f64, curv: f64) {
    let p = gradient.len();
    gradient[0] += residual;
    hessian[0] += curv;
    for (j, &xj) in row.iter().enumerate() {
        if xj == 0.0 {
            continue;
        }
        gradient[j + 1] += residual * xj;
        let cx = curv * xj;
        hessian[j + 1] += cx; // (0, j+1)
        let line = &mut hessian[(j + 1) * p..(j + 2) * p];
        for (h, &xk) in line[j + 1..].iter_mut().zip(&row[j..]) {
            *h += cx * xk;
        }
    }
}

/// Solves `A s = b` for a symmetric positive definite `A` (overwritten by
/// its Cholesky factor).
fn cholesky_solve(a: &mut [f64], b: &[f64], p: usize) -> Vec<f64> {
    for j in 0..p {
        let mut diag = a[j * p + j];
        for k in 0..j {
            diag -= a[j * p + k] * a[j * p + k];
        }
        let diag = diag.max(1e-300).sqrt();
        a[j * p + j] = diag;
        for i in j + 1..p {
            let mut v = a[i * p + j];
            for k in 0..j {
                v -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = v / diag;
        }
    }
    let mut s = b.to_vec();
    for i in 0..p {
        for k in 0..i {
            s[i] -= a[i * p + k] * s[k];
        }
        s[i] /= a[i * p + i];
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            s[i] -= a[k * p + i] * s[k];
        }
        s[i] /= a[i * p + i];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_direction() {
        // y = 1 exactly when x0 > x1: the fitted weights must say so.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let a = f64::from(i % 17) / 17.0;
            let b = f64::from(i % 13) / 13.0;
            x.push(vec![a, b]);
            y.push(a > b);
        }
        let model = fit(&x, &y, 1.0);
        assert!(
            model.weights[0] > 1.0 && model.weights[1] < -1.0,
            "{model:?}"
        );
    }

    #[test]
    fn explanation_adds_up_to_the_logit() {
        let x = vec![
            vec![1.0, 0.0, 0.5],
            vec![0.0, 1.0, -0.5],
            vec![1.0, 1.0, 2.0],
        ];
        let y = vec![true, false, true];
        let model = fit(&x, &y, 1.0);
        let mut contrib = vec![0.0; 3];
        let base = model.explain_into(&x[1], 1.0, &mut contrib);
        let total = base + contrib.iter().sum::<f64>();
        assert!((total - model.logit(&x[1])).abs() < 1e-12);
    }
}
