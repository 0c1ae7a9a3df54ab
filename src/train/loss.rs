//! The two losses of the paper's recipe, on L2-normalised embeddings (so a dot product is the
//! cosine similarity):
//! - ContrastiveLoss (Hadsell et al.): distance d = 1 − cos; a relevant pair costs d²/2, an
//!   irrelevant one max(0, margin − d)²/2; the mean over the batch;
//! - MultipleNegativesRankingLoss: row i of the scaled similarity matrix of queries and items is
//!   a softmax classification whose right answer is item i; every other item of the batch is a
//!   negative.

use candle_core::{Tensor, D};

/// ContrastiveLoss of pairs: `queries` and `items` [n, hidden], `labels` [n] (1 or 0).
pub fn contrastive(
    queries: &Tensor,
    items: &Tensor,
    labels: &Tensor,
    margin: f64,
) -> candle_core::Result<Tensor> {
    let distance = (1.0 - (queries * items)?.sum(D::Minus1)?)?;
    let pull = labels.mul(&distance.sqr()?)?;
    let push = (1.0 - labels)?.mul(&(margin - &distance)?.relu()?.sqr()?)?;
    ((pull + push)? * 0.5)?.mean_all()
}

/// MultipleNegativesRankingLoss: `queries[i]` belongs with `items[i]`.
pub fn multiple_negatives_ranking(
    queries: &Tensor,
    items: &Tensor,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let n = queries.dim(0)?;
    let scores = (queries.matmul(&items.t()?)? * scale)?;
    let targets = Tensor::arange(0u32, n as u32, queries.device())?;
    candle_nn::loss::cross_entropy(&scores, &targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn unit(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let n = (r[0] * r[0] + r[1] * r[1]).sqrt();
                [r[0] / n, r[1] / n]
            })
            .collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    fn scalar(t: Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn contrastive_matches_its_formula() {
        // Pair 0: identical and relevant (0); pair 1: orthogonal and relevant (d = 1 → 0.5);
        // pair 2: orthogonal, irrelevant, beyond the margin (0); pair 3: identical, irrelevant
        // (d = 0 → margin² / 2).
        let q = unit(&[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]);
        let d = unit(&[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]);
        let labels = Tensor::new(&[1f32, 1.0, 0.0, 0.0], &Device::Cpu).unwrap();
        let loss = scalar(contrastive(&q, &d, &labels, 0.5).unwrap());
        let expected = (0.0 + 0.5 + 0.0 + 0.125) / 4.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
    }

    #[test]
    fn mnrl_is_low_when_each_query_is_closest_to_its_own_item() {
        let q = unit(&[[1.0, 0.0], [0.0, 1.0]]);
        let right = unit(&[[1.0, 0.1], [0.1, 1.0]]);
        let swapped = unit(&[[0.1, 1.0], [1.0, 0.1]]);
        let good = scalar(multiple_negatives_ranking(&q, &right, 20.0).unwrap());
        let bad = scalar(multiple_negatives_ranking(&q, &swapped, 20.0).unwrap());
        assert!(good < 0.01 && bad > 10.0, "{good} {bad}");
    }
}
