//! k-center greedy (Sener & Savarese's core-set selection): keep, for every
//! candidate, its cosine distance to the nearest centre (a labelled or picked
//! sentence); the next pick is the candidate farthest from all of them, which
//! then becomes a centre. Each added centre costs one pass over the candidates.

/// Candidates' unit vectors and their distance to the nearest centre.
pub struct KCenter {
    vectors: Vec<Vec<f32>>,
    nearest: Vec<f64>,
}

impl KCenter {
    /// `candidates` and `centres` are embeddings of any length (normalised here);
    /// without centres every distance is infinite.
    pub fn new(candidates: Vec<Vec<f32>>, centres: &[Vec<f32>]) -> Self {
        let vectors: Vec<Vec<f32>> = candidates.into_iter().map(unit).collect();
        let centres: Vec<Vec<f32>> = centres.iter().cloned().map(unit).collect();
        let nearest = vectors
            .iter()
            .map(|v| centres.iter().map(|c| cosine_distance(v, c)).fold(f64::INFINITY, f64::min))
            .collect();
        Self { vectors, nearest }
    }

    /// Cosine distance (1 − cosine similarity) of candidate `i` to its nearest centre.
    pub fn distance(&self, i: usize) -> f64 {
        self.nearest[i]
    }

    /// Makes candidate `i` a centre.
    pub fn add_centre(&mut self, i: usize) {
        let centre = self.vectors[i].clone();
        for (v, nearest) in self.vectors.iter().zip(&mut self.nearest) {
            *nearest = nearest.min(cosine_distance(v, &centre));
        }
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Of unit vectors.
fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    1.0 - a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_shrink_as_centres_are_added() {
        let mut space = KCenter::new(vec![vec![3.0, 0.0], vec![0.0, 2.0], vec![1.0, 1.0]], &[]);
        assert!(space.distance(0).is_infinite());
        space.add_centre(0);
        assert_eq!(space.distance(0), 0.0);
        assert!((space.distance(1) - 1.0).abs() < 1e-9);
        assert!((space.distance(2) - (1.0 - 0.5f64.sqrt())).abs() < 1e-6);
        let labelled = KCenter::new(vec![vec![0.0, 5.0]], &[vec![0.0, 1.0], vec![1.0, 0.0]]);
        assert!(labelled.distance(0).abs() < 1e-9);
    }
}
