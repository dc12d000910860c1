//! The terms of a post.
//!
//! Words are lowercased and cut at anything that is not a letter, a digit or an apostrophe
//! inside a word; stop words, one-letter words, numbers and links are dropped. Two-word phrases
//! join neighbouring words that survive, so "the battery drains fast" gives `battery`,
//! `drains`, `fast`, `battery drains` and `drains fast`. Hashtags and @mentions keep their
//! sign (`#pulse`, `@support`), lowercased. Each term counts once per post: the statistic is
//! about how many posts mention a term, not how loudly one post repeats it.

use std::collections::BTreeSet;

/// Function words that carry no topic: English articles, pronouns, auxiliaries, prepositions
/// and conjunctions, and the fillers of social media.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
    "can", "could", "did", "do", "does", "doing", "down", "during", "each", "even", "few", "for",
    "from", "further", "get", "got", "had", "has", "have", "having", "he", "her", "here", "hers",
    "him", "his", "how", "i", "i'm", "if", "in", "into", "is", "it", "it's", "its", "just", "lol",
    "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or",
    "other", "our", "ours", "out", "over", "own", "really", "same", "she", "should", "so", "some",
    "still", "such", "than", "that", "that's", "the", "their", "theirs", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "would", "you", "your", "yours",
];

/// The terms of one post, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    /// Words and two-word phrases, sorted.
    pub words: BTreeSet<String>,
    /// `#tags`, lowercased, sorted.
    pub hashtags: BTreeSet<String>,
    /// `@names`, lowercased, sorted.
    pub mentions: BTreeSet<String>,
}

impl Terms {
    /// Every term: words and phrases, then hashtags, then mentions.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .chain(&self.hashtags)
            .chain(&self.mentions)
            .map(String::as_str)
    }
}

/// Longest term kept, in characters: anything longer is a run-on token, not something an
/// analyst reads.
pub const MAX_TERM_CHARS: usize = 40;

/// What kind of term a text is, from its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Word,
    Phrase,
    Hashtag,
    Mention,
}

impl Kind {
    /// The kind of a term as [`extract`] writes it.
    pub fn of(term: &str) -> Kind {
        if term.starts_with('#') {
            Kind::Hashtag
        } else if term.starts_with('@') {
            Kind::Mention
        } else if term.contains(' ') {
            Kind::Phrase
        } else {
            Kind::Word
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Word => "word",
            Kind::Phrase => "phrase",
            Kind::Hashtag => "hashtag",
            Kind::Mention => "mention",
        }
    }
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

fn is_link(token: &str) -> bool {
    let lower = token.to_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("www.")
}

/// A word as it is counted, or `None` for one that is not counted.
fn normalise(raw: &str) -> Option<String> {
    let word = raw.trim_matches('\'').to_lowercase();
    let length = word.chars().count();
    let counted = length > 1
        && length <= MAX_TERM_CHARS
        && !word.chars().all(|c| c.is_ascii_digit() || c == '\'')
        && !is_stop_word(&word);
    counted.then_some(word)
}

/// The terms of `text`.
pub fn extract(text: &str) -> Terms {
    let mut terms = Terms::default();
    // The surviving words of the current run; a dropped word or a link ends the run, so a
    // phrase never joins words that were not neighbours.
    let mut previous: Option<String> = None;
    for token in text.split_whitespace() {
        if is_link(token) {
            previous = None;
            continue;
        }
        if let Some(tag) = token.strip_prefix('#').or_else(|| token.strip_prefix('@')) {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
                .to_lowercase();
            if !name.is_empty() && name.chars().count() < MAX_TERM_CHARS {
                let sign = &token[..1];
                let set = if sign == "#" {
                    &mut terms.hashtags
                } else {
                    &mut terms.mentions
                };
                set.insert(format!("{sign}{name}"));
            }
            previous = None;
            continue;
        }
        for piece in token.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
            if piece.is_empty() {
                continue;
            }
            match normalise(piece) {
                Some(word) => {
                    if let Some(before) = previous.take() {
                        terms.words.insert(format!("{before} {word}"));
                    }
                    terms.words.insert(word.clone());
                    previous = Some(word);
                }
                None => previous = None,
            }
        }
        // Punctuation at the end of a token ends the phrase: "slow. Battery" is no phrase.
        if token.ends_with(['.', ',', ';', ':', '!', '?']) {
            previous = None;
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(terms: &Terms) -> Vec<&str> {
        terms.words.iter().map(String::as_str).collect()
    }

    #[test]
    fn the_stop_word_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn words_and_phrases_of_neighbouring_content_words() {
        let terms = extract("The battery drains fast!");
        assert_eq!(
            words(&terms),
            ["battery", "battery drains", "drains", "drains fast", "fast"]
        );
    }

    #[test]
    fn stop_words_numbers_and_links_break_phrases_and_are_dropped() {
        let terms =
            extract("Screen is cracked after 2 days https://example.com/x overheating again");
        assert_eq!(
            words(&terms),
            ["cracked", "days", "overheating", "screen"],
            "no 'screen cracked' (a stop word between), no '2', no link"
        );
    }

    #[test]
    fn sentence_punctuation_ends_a_phrase() {
        let terms = extract("Delivery slow. Battery great");
        assert!(terms.words.contains("delivery slow"));
        assert!(terms.words.contains("battery great"));
        assert!(!terms.words.contains("slow battery"));
    }

    #[test]
    fn hashtags_and_mentions_keep_their_sign_and_lose_their_case() {
        let terms = extract("@Support my #PulseX died, #pulsex again #!");
        assert_eq!(
            terms.hashtags.iter().collect::<Vec<_>>(),
            ["#pulsex"],
            "once per post"
        );
        assert_eq!(terms.mentions.iter().collect::<Vec<_>>(), ["@support"]);
        assert_eq!(words(&terms), ["died"]);
    }

    #[test]
    fn apostrophes_inside_words_stay_and_case_folds() {
        let terms = extract("DON'T buy it. Won't charge");
        assert!(terms.words.contains("don't buy"));
        assert!(terms.words.contains("won't charge"));
        let all: Vec<&str> = terms.all().collect();
        assert!(all.iter().all(|t| t.to_lowercase() == *t));
    }

    #[test]
    fn run_on_tokens_are_not_terms() {
        let long = "a".repeat(MAX_TERM_CHARS + 1);
        let terms = extract(&format!("{long} #{long} fine"));
        assert_eq!(terms.all().collect::<Vec<_>>(), ["fine"]);
    }

    #[test]
    fn the_kind_of_a_term_follows_from_its_form() {
        let terms = extract("Battery drains #fail @support");
        let kinds: Vec<(&str, &str)> = terms.all().map(|t| (t, Kind::of(t).as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("battery", "word"),
                ("battery drains", "phrase"),
                ("drains", "word"),
                ("#fail", "hashtag"),
                ("@support", "mention")
            ]
        );
    }

    #[test]
    fn empty_and_punctuation_only_texts_have_no_terms() {
        assert_eq!(extract(""), Terms::default());
        assert_eq!(extract("!!! ... ?? #"), Terms::default());
    }
}
