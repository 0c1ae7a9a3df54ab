//! AdamW (decoupled weight decay) with a linear warm-up and linear decay of the learning rate
//! (the sentence-transformers default schedule).
//!
//! Why not `candle_nn::AdamW`: its moment estimates are private, so a checkpoint could not hold
//! them and a resumed run would restart the optimiser cold. The update is a few tensor ops.

use candle_core::{Tensor, Var};
use std::collections::HashMap;

/// AdamW over named variables; the moments are exposed for checkpoints.
#[derive(Debug)]
pub struct AdamW {
    vars: Vec<(String, Var)>,
    /// First and second moment estimates, by variable name.
    first: HashMap<String, Tensor>,
    second: HashMap<String, Tensor>,
    /// Updates applied so far (for bias correction).
    pub steps: usize,
    pub weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl AdamW {
    /// An optimiser of `vars` with zero moments and the usual betas (0.9, 0.999), eps 1e-6.
    pub fn new(vars: Vec<(String, Var)>, weight_decay: f64) -> candle_core::Result<Self> {
        let mut first = HashMap::new();
        let mut second = HashMap::new();
        for (name, var) in &vars {
            first.insert(name.clone(), var.as_tensor().zeros_like()?);
            second.insert(name.clone(), var.as_tensor().zeros_like()?);
        }
        Ok(Self {
            vars,
            first,
            second,
            steps: 0,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
        })
    }

    /// The variables it updates.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// One update at learning rate `lr` from the gradients of `loss`.
    pub fn step(&mut self, loss: &Tensor, lr: f64) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.steps += 1;
        let t = self.steps as i32;
        let correction1 = 1.0 - self.beta1.powi(t);
        let correction2 = 1.0 - self.beta2.powi(t);
        for (name, var) in &self.vars {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let m = self.first.get(name).ok_or_else(|| missing(name))?;
            let v = self.second.get(name).ok_or_else(|| missing(name))?;
            let m = ((m * self.beta1)? + (grad * (1.0 - self.beta1))?)?;
            let v = ((v * self.beta2)? + (grad.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&m / correction1)? / ((&v / correction2)?.sqrt()? + self.eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - lr * self.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.first.insert(name.clone(), m);
            self.second.insert(name.clone(), v);
        }
        Ok(())
    }

    /// The moments as named tensors (`m.NAME`, `v.NAME`), for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut state = HashMap::new();
        for (name, _) in &self.vars {
            if let (Some(m), Some(v)) = (self.first.get(name), self.second.get(name)) {
                state.insert(format!("m.{name}"), m.clone());
                state.insert(format!("v.{name}"), v.clone());
            }
        }
        state
    }

    /// Restores moments written by [`Self::state`] and the step count.
    pub fn restore(
        &mut self,
        state: &HashMap<String, Tensor>,
        steps: usize,
    ) -> candle_core::Result<()> {
        for (name, _) in &self.vars {
            let get = |key: String| {
                state
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks {key}")))
            };
            self.first.insert(name.clone(), get(format!("m.{name}"))?);
            self.second.insert(name.clone(), get(format!("v.{name}"))?);
        }
        self.steps = steps;
        Ok(())
    }
}

fn missing(name: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("no optimizer state for {name}"))
}

/// The learning rate at `step` (0-based) of `total`: linear from 0 to `peak` over the warm-up
/// steps, then linear down to 0 at the end.
pub fn learning_rate(step: usize, total: usize, peak: f64, warmup_share: f64) -> f64 {
    let warmup = (total as f64 * warmup_share).round() as usize;
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        let remaining = total.saturating_sub(warmup).max(1);
        peak * (total.saturating_sub(step)) as f64 / remaining as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((learning_rate(0, 100, 1.0, 0.1) - 0.1).abs() < 1e-9);
        assert!((learning_rate(9, 100, 1.0, 0.1) - 1.0).abs() < 1e-9);
        assert!((learning_rate(10, 100, 1.0, 0.1) - 1.0).abs() < 1e-9);
        assert!(learning_rate(99, 100, 1.0, 0.1) < 0.02);
        assert!((learning_rate(0, 10, 1.0, 0.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_step_moves_against_the_gradient_and_state_round_trips() {
        let var = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], 0.0).unwrap();
        // loss = sum(w²): the gradient is 2w, so each weight moves toward 0 by about lr.
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        opt.step(&loss, 0.1).unwrap();
        let w = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (w[0] - 0.9).abs() < 1e-4 && (w[1] + 1.9).abs() < 1e-4,
            "{w:?}"
        );
        let state = opt.state();
        let mut other = AdamW::new(vec![("w".into(), var.clone())], 0.0).unwrap();
        other.restore(&state, opt.steps).unwrap();
        assert_eq!(other.steps, 1);
        assert_eq!(
            other.state()["m.w"].to_vec1::<f32>().unwrap(),
            state["m.w"].to_vec1::<f32>().unwrap()
        );
    }
}
