//! Active learning: which unlabelled sentences are worth labelling next
//! (`stancekit suggest` runs it from [`crate::commands::suggest`]; the
//! simulation in `examples/simulate_active.rs` runs the same selection).
//!
//! Every (sentence, target) pair of the pool has the model's label
//! probabilities. A strategy ranks each target's pairs by how much a label
//! would teach ([`Strategy`]); the picks then go round the targets, each
//! taking its best sentence not yet taken, so that a target the model finds
//! easy still gets its share. `diverse` (the default) ranks by entropy but
//! keeps only a shortlist of the most uncertain, and among it picks by
//! k-center greedy on sentence embeddings ([`kcenter`]): each pick is the
//! shortlisted sentence farthest from everything labelled or picked, and a
//! near-duplicate of either is never picked. Uncertainty alone fills a round
//! with variants of one confusing sentence; coverage alone picks outliers the
//! model is already sure of.

pub mod kcenter;
pub mod pool;
mod suggestion;

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use kcenter::KCenter;
pub use pool::{read_pool, PoolSentence};
pub use suggestion::{is_suggestions_file, read_suggestions, LabelProbs, Suggestion};

use crate::Result;

/// How informative a label on a (sentence, target) pair is taken to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The most uncertain (by entropy), spread out: k-center greedy on sentence embeddings
    /// within a shortlist of the most uncertain; never two near-duplicates.
    #[default]
    Diverse,
    /// The highest entropy of the label probabilities.
    Entropy,
    /// The smallest gap between the two likeliest labels.
    Margin,
    /// Uniformly at random (the baseline to beat).
    Random,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Diverse => "diverse",
            Strategy::Entropy => "entropy",
            Strategy::Margin => "margin",
            Strategy::Random => "random",
        }
    }
}

/// `diverse` shortlists this many times each target's share of the picks: wide
/// enough for coverage to choose, narrow enough that every pick is uncertain.
pub const SHORTLIST: usize = 10;

/// Cosine distance below which two sentences count as near-duplicates (cosine
/// similarity 0.95: a changed word or two, the same sentence re-quoted).
pub const NEAR_DUPLICATE: f64 = 0.05;

/// One pool sentence as the model scored it: (target index, label
/// probabilities) for each target it was scored on.
pub type Scored = Vec<(usize, Vec<f32>)>;

/// What to pick.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub n: usize,
    pub strategy: Strategy,
    /// Draws of `random`; the same pool, model and seed give the same picks.
    pub seed: u64,
    /// Target indices run below this.
    pub targets: usize,
    /// `diverse`'s shortlist per target, in multiples of the target's share ([`SHORTLIST`]).
    pub shortlist: usize,
}

/// One picked sentence and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Index into the pool.
    pub item: usize,
    /// The target whose turn picked it.
    pub target: usize,
    /// The strategy's score of (item, target): normalised entropy, 1 − margin, or the random draw.
    pub score: f64,
    /// 1-based rank of the item among the target's pairs by that score.
    pub rank: usize,
    /// `diverse`: cosine distance to the nearest labelled or earlier-picked sentence
    /// (none when there was nothing yet to be near).
    pub distance: Option<f64>,
}

/// Sentence embeddings of pool items, asked for only by `diverse` and only for its shortlist.
pub type Embed<'a> = dyn FnMut(&[usize]) -> Result<Vec<Vec<f32>>> + 'a;

/// Picks up to `request.n` items of `pool`, balanced over targets.
/// `labelled`: embeddings of sentences already labelled, which `diverse` covers first.
pub fn select(pool: &[Scored], request: &Request, embed: &mut Embed, labelled: &[Vec<f32>]) -> Result<Vec<Pick>> {
    let rankings = rank(pool, request);
    match request.strategy {
        Strategy::Diverse => diverse(&rankings, (request.n, request.shortlist), embed, labelled),
        _ => Ok(round_robin(&rankings, request.n)),
    }
}

/// Per target, its (item, score) pairs, best first (ties: pool order).
fn rank(pool: &[Scored], request: &Request) -> Vec<Vec<(usize, f64)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let mut rankings = vec![Vec::new(); request.targets];
    for (item, scored) in pool.iter().enumerate() {
        for (target, probs) in scored {
            let score = match request.strategy {
                Strategy::Diverse | Strategy::Entropy => entropy(probs),
                Strategy::Margin => 1.0 - margin(probs),
                Strategy::Random => rng.random(),
            };
            rankings[*target].push((item, score));
        }
    }
    for ranking in &mut rankings {
        ranking.sort_by(|a, b| b.1.total_cmp(&a.1));
    }
    rankings
}

/// Entropy of a distribution divided by that of the uniform one: 0 sure, 1 clueless.
pub fn entropy(probs: &[f32]) -> f64 {
    if probs.len() < 2 {
        return 0.0;
    }
    let h: f64 = probs.iter().map(|&p| p as f64).filter(|&p| p > 0.0).map(|p| -p * p.ln()).sum();
    h / (probs.len() as f64).ln()
}

/// The gap between the two largest probabilities.
pub fn margin(probs: &[f32]) -> f64 {
    let (mut first, mut second) = (0f64, 0f64);
    for &p in probs {
        let p = p as f64;
        if p > first {
            (first, second) = (p, first);
        } else if p > second {
            second = p;
        }
    }
    first - second
}

/// The targets take turns; each takes its best-ranked item not yet taken.
fn round_robin(rankings: &[Vec<(usize, f64)>], n: usize) -> Vec<Pick> {
    let mut taken = HashSet::new();
    let mut next = vec![0usize; rankings.len()];
    let mut picks = Vec::new();
    let mut turn = Turns::new(rankings.len());
    while picks.len() < n {
        let Some(target) = turn.next() else { break };
        let ranking = &rankings[target];
        while next[target] < ranking.len() && taken.contains(&ranking[next[target]].0) {
            next[target] += 1;
        }
        let Some(&(item, score)) = ranking.get(next[target]) else {
            turn.retire(target);
            continue;
        };
        taken.insert(item);
        picks.push(Pick { item, target, score, rank: next[target] + 1, distance: None });
    }
    picks
}

/// Each target's shortlist of its most uncertain items, then k-center greedy
/// over them with the targets taking turns.
fn diverse(
    rankings: &[Vec<(usize, f64)>],
    (n, factor): (usize, usize),
    embed: &mut Embed,
    labelled: &[Vec<f32>],
) -> Result<Vec<Pick>> {
    let present = rankings.iter().filter(|r| !r.is_empty()).count().max(1);
    let shortlist = n.div_ceil(present) * factor.max(1);
    let lists: Vec<&[(usize, f64)]> = rankings.iter().map(|r| &r[..r.len().min(shortlist)]).collect();
    let mut items: Vec<usize> = lists.iter().flat_map(|l| l.iter().map(|p| p.0)).collect();
    items.sort_unstable();
    items.dedup();
    let mut space = KCenter::new(embed(&items)?, labelled);
    let slot = |item: usize| items.binary_search(&item).expect("a shortlisted item");
    let mut picks = Vec::new();
    let mut turn = Turns::new(rankings.len());
    while picks.len() < n {
        let Some(target) = turn.next() else { break };
        // The farthest; among equals (nothing to be near yet) the most uncertain, which comes first.
        let distance = |item: usize| space.distance(slot(item));
        let best = lists[target]
            .iter()
            .enumerate()
            .filter(|(_, (item, _))| distance(*item) > NEAR_DUPLICATE)
            .reduce(|best, next| if distance(next.1 .0) > distance(best.1 .0) { next } else { best });
        let Some((rank, &(item, score))) = best else {
            turn.retire(target);
            continue;
        };
        let distance = space.distance(slot(item));
        space.add_centre(slot(item));
        picks.push(Pick { item, target, score, rank: rank + 1, distance: distance.is_finite().then_some(distance) });
    }
    Ok(picks)
}

/// Targets in turn, 0, 1, …, 0, 1, …, skipping those with nothing left.
struct Turns {
    live: Vec<bool>,
    at: usize,
}

impl Turns {
    fn new(targets: usize) -> Self {
        Self { live: vec![true; targets], at: 0 }
    }

    fn retire(&mut self, target: usize) {
        self.live[target] = false;
    }
}

impl Iterator for Turns {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let k = self.live.len();
        let target = (0..k).map(|i| (self.at + i) % k).find(|&t| self.live[t])?;
        self.at = target + 1;
        Some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(strategy: Strategy, n: usize) -> Request {
        Request { n, strategy, seed: 3, targets: 2, shortlist: SHORTLIST }
    }

    /// Item i is scored on target i % 2 with a confidence that falls as i grows.
    fn pool(size: usize) -> Vec<Scored> {
        (0..size)
            .map(|i| {
                let sure = 0.95 - 0.6 * i as f32 / size as f32;
                vec![(i % 2, vec![sure, (1.0 - sure) * 0.5, (1.0 - sure) * 0.5])]
            })
            .collect()
    }

    fn no_embeddings(_: &[usize]) -> Result<Vec<Vec<f32>>> {
        panic!("only diverse embeds")
    }

    #[test]
    fn entropy_and_margin_are_normalised() {
        assert!((entropy(&[1.0 / 3.0; 3]) - 1.0).abs() < 1e-6);
        assert_eq!(entropy(&[1.0, 0.0, 0.0]), 0.0);
        assert!((margin(&[0.5, 0.3, 0.2]) - 0.2).abs() < 1e-6);
        assert!((margin(&[0.2, 0.3, 0.5]) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn uncertainty_strategies_take_the_least_sure_first_turn_by_turn() {
        for strategy in [Strategy::Entropy, Strategy::Margin] {
            let picks = select(&pool(10), &request(strategy, 4), &mut no_embeddings, &[]).unwrap();
            let items: Vec<(usize, usize)> = picks.iter().map(|p| (p.item, p.target)).collect();
            assert_eq!(items, [(8, 0), (9, 1), (6, 0), (7, 1)], "{strategy:?}");
            assert_eq!(picks[2].rank, 2);
        }
    }

    #[test]
    fn a_target_that_runs_out_leaves_the_rest_to_the_others() {
        let mut pool = pool(6);
        pool.push(vec![(0, vec![0.4, 0.3, 0.3])]);
        pool.extend((0..3).map(|_| vec![(0, vec![0.9, 0.05, 0.05])]));
        let picks = select(&pool, &request(Strategy::Entropy, 9), &mut no_embeddings, &[]).unwrap();
        assert_eq!(picks.iter().filter(|p| p.target == 1).count(), 3);
        assert_eq!(picks.len(), 9);
        let all = select(&pool, &request(Strategy::Entropy, 50), &mut no_embeddings, &[]).unwrap();
        assert_eq!(all.len(), pool.len(), "every item once, never twice");
    }

    #[test]
    fn random_depends_on_the_seed_only() {
        let a = select(&pool(40), &request(Strategy::Random, 10), &mut no_embeddings, &[]).unwrap();
        let b = select(&pool(40), &request(Strategy::Random, 10), &mut no_embeddings, &[]).unwrap();
        assert_eq!(a, b);
        let other = Request { seed: 4, ..request(Strategy::Random, 10) };
        assert_ne!(a, select(&pool(40), &other, &mut no_embeddings, &[]).unwrap());
    }

    #[test]
    fn diverse_skips_near_duplicates_and_covers_what_is_labelled() {
        // Items 0–3 on target 0, all equally unsure; 0, 1 and 2 point the same way.
        let unsure = vec![0.34f32, 0.33, 0.33];
        let pool: Vec<Scored> = (0..4).map(|_| vec![(0, unsure.clone())]).collect();
        let vectors = [vec![1.0f32, 0.0], vec![1.0, 0.01], vec![0.99, 0.0], vec![0.0, 1.0]];
        let mut embed = |items: &[usize]| Ok(items.iter().map(|&i| vectors[i].clone()).collect());
        let one_target = Request { targets: 1, ..request(Strategy::Diverse, 4) };
        let picks = select(&pool, &one_target, &mut embed, &[]).unwrap();
        let items: Vec<usize> = picks.iter().map(|p| p.item).collect();
        assert_eq!(items, [0, 3], "the first is the most uncertain, then the far one; no near-duplicate");
        assert_eq!(picks[0].distance, None);
        assert!((picks[1].distance.unwrap() - 1.0).abs() < 1e-6);
        // With [1, 0] already labelled, only the far sentence is new.
        let picks = select(&pool, &one_target, &mut embed, &[vec![2.0, 0.0]]).unwrap();
        assert_eq!(picks.iter().map(|p| p.item).collect::<Vec<_>>(), [3]);
    }
}
