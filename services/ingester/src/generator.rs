//! The seed's synthetic post generator.
//!
//! Posts are drawn 40% positive, 30% neutral, 30% negative from templates with a product
//! substituted in, by random authors on random sources, so a fresh platform has a realistic
//! mix to show before real posts arrive.

use chrono::Utc;
use pulse_domain::Post;
use rand::{Rng, seq::IndexedRandom};

const POSITIVE: &[&str] = &[
    "Absolutely love the new {product}! Best purchase I've made this year.",
    "The {product} exceeded all my expectations. Highly recommend it!",
    "Just got my {product} and I'm so impressed with the quality.",
    "{product} customer support was amazing, fixed my issue in minutes.",
    "Can't believe how fast the {product} is. Totally worth it!",
    "The new update to {product} is fantastic, great job team!",
    "Five stars for {product}, it works perfectly.",
    "So happy with my {product}, the design is beautiful.",
];

const NEUTRAL: &[&str] = &[
    "Just picked up the {product}. Will see how it goes.",
    "Anyone else using the {product}? Looking for opinions.",
    "The {product} arrived today, setting it up now.",
    "Comparing the {product} with a couple of alternatives.",
    "Is the {product} available in other colors?",
    "Reading the manual for the {product} before I start.",
    "The {product} launch event is scheduled for next week.",
    "Thinking about switching to the {product}.",
];

const NEGATIVE: &[&str] = &[
    "Really disappointed with the {product}. It broke after two days.",
    "The {product} is overpriced and underwhelming.",
    "Worst customer service ever from {product}, still waiting for a refund.",
    "My {product} keeps crashing, this is so frustrating.",
    "Do not buy the {product}, total waste of money.",
    "The latest {product} update ruined everything, terrible.",
    "Returned my {product}, the quality is awful.",
    "Hate how slow the {product} has become.",
];

/// The products posts are about: the default entity catalogue of the insights, so that the
/// synthetic stream names what the insights look for.
const PRODUCTS: &[&str] = pulse_insights::entities::DEFAULT_PRODUCTS;

const SOURCES: &[&str] = &["twitter", "reddit", "facebook", "instagram"];

const FIRST: &[&str] = &[
    "alex", "sam", "jordan", "casey", "riley", "morgan", "taylor", "jamie", "drew", "quinn",
];
const LAST: &[&str] = &[
    "tech", "fan", "reviews", "daily", "guru", "life", "news", "hub",
];

/// The sentiment a template was written with (the generator's ground truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intended {
    Positive,
    Neutral,
    Negative,
}

/// Draws the intended sentiment with the seed's 40/30/30 mix.
pub fn draw_sentiment(rng: &mut impl Rng) -> Intended {
    match rng.random_range(0..100) {
        0..40 => Intended::Positive,
        40..70 => Intended::Neutral,
        _ => Intended::Negative,
    }
}

/// One synthetic post and the sentiment it was written with.
pub fn generate(rng: &mut impl Rng) -> (Post, Intended) {
    let intended = draw_sentiment(rng);
    let templates = match intended {
        Intended::Positive => POSITIVE,
        Intended::Neutral => NEUTRAL,
        Intended::Negative => NEGATIVE,
    };
    let template = templates.choose(rng).copied().unwrap_or(NEUTRAL[0]);
    let product = PRODUCTS.choose(rng).copied().unwrap_or(PRODUCTS[0]);
    let source = SOURCES.choose(rng).copied().unwrap_or(SOURCES[0]);
    let author = format!(
        "{}_{}{}",
        FIRST.choose(rng).copied().unwrap_or("user"),
        LAST.choose(rng).copied().unwrap_or("x"),
        rng.random_range(1..1000)
    );
    let post = Post {
        post_id: format!("gen-{}", uuid::Uuid::now_v7()),
        source: source.to_owned(),
        author,
        content: template.replace("{product}", product),
        created_at: Utc::now(),
    };
    (post, intended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn mix_is_forty_thirty_thirty_and_posts_are_valid() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 20_000;
        let mut counts = [0u32; 3];
        for _ in 0..n {
            let (post, intended) = generate(&mut rng);
            assert_eq!(post.validate(Utc::now()), Ok(()));
            assert!(!post.content.contains("{product}"));
            counts[intended as usize] += 1;
        }
        let share = |c: u32| f64::from(c) / f64::from(n);
        assert!((share(counts[0]) - 0.40).abs() < 0.02, "{counts:?}");
        assert!((share(counts[1]) - 0.30).abs() < 0.02, "{counts:?}");
        assert!((share(counts[2]) - 0.30).abs() < 0.02, "{counts:?}");
    }
}
