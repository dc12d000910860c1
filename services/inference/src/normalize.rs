//! Text normalisation a model was trained with, applied before tokenizing.
//!
//! `tweet` is what `models/train/train.py` does to its corpus: URLs become `http`, @mentions
//! become `@user`, runs of whitespace one space. A model must see text shaped like its training
//! data, so a bundle declares this in `config.json` (`pulse.text_normalization`).

/// Normalisations a bundle can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Text is used as it is.
    None,
    /// URLs → `http`, @mentions → `@user`, whitespace collapsed.
    Tweet,
}

impl Normalization {
    pub fn apply(self, text: &str) -> String {
        match self {
            Normalization::None => text.to_owned(),
            Normalization::Tweet => collapse_whitespace(&mask_mentions(&mask_urls(text))),
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

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::Normalization::{None as Plain, Tweet};

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
}
