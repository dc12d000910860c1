//! Text normalisation a model was trained with, applied before tokenizing.
//!
//! `tweet` is what `models/train/train.py` does to its corpus: URLs become `http`, @mentions
//! become `@user`, runs of whitespace one space. `tweet_emoji` also names each emoji
//! (`models/train/emoji_names.py`): a WordPiece vocabulary without emoji reads them all as
//! `[UNK]`, so 😍 and 😡 would look alike. A model must see text shaped like its training data,
//! so a bundle declares this in `config.json` (`pulse.text_normalization`).

use std::collections::HashMap;
use std::sync::LazyLock;

/// Normalisations a bundle can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Text is used as it is.
    None,
    /// URLs → `http`, @mentions → `@user`, whitespace collapsed.
    Tweet,
    /// As `Tweet`, and each emoji → its name (😂 → `face with tears of joy`).
    TweetEmoji,
}

impl Normalization {
    pub fn apply(self, text: &str) -> String {
        match self {
            Normalization::None => text.to_owned(),
            Normalization::Tweet => collapse_whitespace(&mask_mentions(&mask_urls(text))),
            Normalization::TweetEmoji => {
                collapse_whitespace(&name_emoji(&mask_mentions(&mask_urls(text))))
            }
        }
    }
}

fn starts_with_ignore_case(haystack: &str, prefix: &str) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// `(?i)(https?://|www\.)\S+` → `http`.
fn mask_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let prefix = ["https://", "http://", "www."]
            .into_iter()
            .find(|p| starts_with_ignore_case(rest, p));
        if let Some(prefix) = prefix {
            let tail = &rest[prefix.len()..];
            let body = tail.find(char::is_whitespace).unwrap_or(tail.len());
            if body > 0 {
                out.push_str("http");
                rest = &tail[body..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `@\w+` → `@user`.
fn mask_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '@' && chars.peek().is_some_and(|(_, n)| is_word(*n)) {
            while chars.peek().is_some_and(|(_, n)| is_word(*n)) {
                chars.next();
            }
            out.push_str("@user");
        } else {
            out.push(c);
        }
    }
    out
}

/// The table the training script reads too, so both name every emoji alike: one
/// `code point (hex) <TAB> name` per line, from the Unicode character names.
static EMOJI_NAMES: LazyLock<HashMap<char, &'static str>> = LazyLock::new(|| {
    include_str!("emoji_names.tsv")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (code, name) = line.split_once('\t')?;
            Some((char::from_u32(u32::from_str_radix(code, 16).ok()?)?, name))
        })
        .collect()
});

/// Characters that only change how a neighbouring emoji looks: variation selectors, the
/// zero-width joiner, the keycap, skin tones and the regional-indicator letters of flags.
fn is_emoji_modifier(c: char) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' | '\u{20E3}')
        || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
        || ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Each emoji → ` name `, a run of the same emoji named once; modifiers dropped.
fn name_emoji(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = None;
    for c in text.chars().filter(|&c| !is_emoji_modifier(c)) {
        match EMOJI_NAMES.get(&c) {
            None => {
                out.push(c);
                previous = None;
            }
            Some(name) if previous != Some(c) => {
                out.push(' ');
                out.push_str(name);
                out.push(' ');
                previous = Some(c);
            }
            Some(_) => {}
        }
    }
    out
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::EMOJI_NAMES;
    use super::Normalization::{None as Plain, Tweet, TweetEmoji};

    #[test]
    fn tweet_normalisation_matches_the_training_script() {
        assert_eq!(
            Tweet.apply(
                "  @Apple_Support my phone died!!\n\nsee HTTPS://t.co/x1 and www.a.com/b?c=d "
            ),
            "@user my phone died!! see http and http"
        );
        assert_eq!(
            Tweet.apply("mail me@home, (http://x.y) @ lone"),
            "mail me@user, (http @ lone"
        );
        assert_eq!(Tweet.apply("http:// alone www."), "http:// alone www.");
        assert_eq!(Tweet.apply("@josé ça va"), "@user ça va");
        assert_eq!(Plain.apply("  @a  b "), "  @a  b ");
    }

    /// The training side's doctests (`models/train/emoji_names.py`) hold the same cases.
    #[test]
    fn tweet_emoji_names_emoji_as_the_training_script_does() {
        let cases = [
            (
                "How many more days until opening day? 😩 ",
                "How many more days until opening day? weary face",
            ),
            ("#usa🇺🇸 #USA", "#usa #USA"),
            (
                "😂😂😂 lol 😂 ❤️ ok",
                "face with tears of joy lol face with tears of joy heavy black heart ok",
            ),
            ("im stuck ☹️ ", "im stuck white frowning face"),
            ("👍🏽 great", "thumbs up sign great"),
            (
                "heart ♥ star ★ ™ ©",
                "heart black heart suit star black star ™ ©",
            ),
            ("@bob😡http://x.y", "@user pouting face http"),
        ];
        for (text, named) in cases {
            assert_eq!(TweetEmoji.apply(text), named, "{text}");
        }
        assert_eq!(Tweet.apply("ok 😂"), "ok 😂");
    }

    #[test]
    fn every_line_of_the_emoji_table_parses() {
        let lines = include_str!("emoji_names.tsv")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .count();
        assert_eq!(EMOJI_NAMES.len(), lines);
        assert!(lines > 3_000, "{lines}");
    }
}
