//! The seed's synthetic post generator.
//!
//! Posts are drawn 40% positive, 30% neutral, 30% negative from templates with a product
//! substituted in, by random authors on random sources, so a fresh platform has a realistic
//! mix to show before real posts arrive. [`complaint`] writes the complaints of the
//! `scenario` tool's burst: battery and overheating trouble with one product.

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

/// Complaints about one product, for a burst the insights should explain: every one is
/// clearly negative and names the product and "battery drains" or "overheating" (most both),
/// so those are the terms that stand out.
pub const COMPLAINTS: &[&str] = &[
    "My {product} battery drains in two hours and it keeps overheating. So disappointed.",
    "{product} overheating again, battery drains overnight. Awful.",
    "The {product} battery drains even when I'm not using it, and it's overheating in my hand. Terrible.",
    "Since the last update my {product} keeps overheating and the battery drains twice as fast. Really frustrating.",
    "Returning my {product}. Constant overheating and the battery drains overnight, total waste of money.",
    "Is anyone else's {product} overheating? Mine gets too hot to touch, this is unacceptable.",
    "{product} battery drains from full to dead in an afternoon. Horrible, I regret buying it.",
    "Support ignored me for a week while my {product} kept overheating and the battery drains constantly. Worst purchase ever.",
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
    let post = Post {
        post_id: format!("gen-{}", uuid::Uuid::now_v7()),
        source: source(rng),
        author: author(rng),
        content: template.replace("{product}", product),
        created_at: Utc::now(),
    };
    (post, intended)
}

/// One complaint about `product` (a [`COMPLAINTS`] template), by a random author on a random
/// source.
pub fn complaint(rng: &mut impl Rng, product: &str) -> Post {
    let template = COMPLAINTS.choose(rng).copied().unwrap_or(COMPLAINTS[0]);
    Post {
        post_id: format!("gen-{}", uuid::Uuid::now_v7()),
        source: source(rng),
        author: author(rng),
        content: template.replace("{product}", product),
        created_at: Utc::now(),
    }
}

fn source(rng: &mut impl Rng) -> String {
    SOURCES
        .choose(rng)
        .copied()
        .unwrap_or(SOURCES[0])
        .to_owned()
}

fn author(rng: &mut impl Rng) -> String {
    format!(
        "{}_{}{}",
        FIRST.choose(rng).copied().unwrap_or("user"),
        LAST.choose(rng).copied().unwrap_or("x"),
        rng.random_range(1..1000)
    )
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

    #[test]
    fn complaints_are_negative_name_the_product_and_the_terms() {
        const NEGATIVE_WORDS: &[&str] = &[
            "awful",
            "terrible",
            "worst",
            "disappointed",
            "frustrating",
            "waste of money",
            "unacceptable",
            "horrible",
            "regret",
        ];
        const POSITIVE_WORDS: &[&str] = &["love", "great", "amazing", "recommend", "happy"];
        assert!((6..=8).contains(&COMPLAINTS.len()));
        for template in COMPLAINTS {
            let lower = template.to_lowercase();
            assert!(template.contains("{product}"), "{template}");
            assert!(
                lower.contains("battery drains") || lower.contains("overheating"),
                "{template}"
            );
            assert!(
                NEGATIVE_WORDS.iter().any(|w| lower.contains(w)),
                "not clearly negative: {template}"
            );
            assert!(
                !POSITIVE_WORDS.iter().any(|w| lower.contains(w)),
                "{template}"
            );
        }
        let both = COMPLAINTS
            .iter()
            .filter(|t| t.contains("battery drains") && t.contains("overheating"))
            .count();
        assert!(both * 2 > COMPLAINTS.len(), "most name both terms");

        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let post = complaint(&mut rng, "Pixel 9");
            assert_eq!(post.validate(Utc::now()), Ok(()));
            assert!(post.content.contains("Pixel 9"), "{}", post.content);
            assert!(!post.content.contains("{product}"));
        }
    }
}
