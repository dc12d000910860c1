//! The products and brands a post names, from a catalogue.
//!
//! A catalogue lists entities, each with the names it goes by. A post names an entity when one
//! of those names occurs in it as whole words, whatever the case: "my pixel 9 died" names
//! "Pixel 9", "pixel 90" and "Pixel9" do not. The default catalogue is the products the
//! ingester's generator writes about; `ENTITIES_FILE` replaces it with a file of lines
//!
//! ```text
//! # comments and blank lines are skipped
//! iPhone 16
//! Galaxy S25: S25, Samsung S25
//! ```
//!
//! (the name, then optionally a colon and more names, comma-separated).

use std::collections::BTreeSet;

/// The products the synthetic generator writes about: the catalogue when none is configured.
pub const DEFAULT_PRODUCTS: &[&str] = &[
    "iPhone 16",
    "Galaxy S25",
    "Pixel 9",
    "MacBook Air",
    "PlayStation 5",
    "Tesla Model 3",
    "AirPods Pro",
    "Kindle",
    "Surface Laptop",
    "Apple Watch",
];

/// A line of a catalogue file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct CatalogueError {
    pub line: usize,
    pub reason: String,
}

/// One entity and the word sequences that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entity {
    name: String,
    names: Vec<Vec<String>>,
}

/// The entities posts are searched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    entities: Vec<Entity>,
}

/// The lowercase words of `text`: runs of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue {
            entities: DEFAULT_PRODUCTS
                .iter()
                .map(|name| Entity {
                    name: (*name).to_owned(),
                    names: vec![words(name)],
                })
                .collect(),
        }
    }
}

impl Catalogue {
    /// Reads a catalogue file's text (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let mut entities: Vec<Entity> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: &str| CatalogueError {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let (name, aliases) = line.split_once(':').unwrap_or((line, ""));
            let name = name.trim();
            if words(name).is_empty() {
                return Err(error("the entity has no name"));
            }
            if entities.iter().any(|e| e.name.eq_ignore_ascii_case(name)) {
                return Err(error(&format!("{name} is listed twice")));
            }
            let mut names = vec![words(name)];
            for alias in aliases.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                let alias_words = words(alias);
                if alias_words.is_empty() {
                    return Err(error(&format!(
                        "the name {alias:?} has no letters or digits"
                    )));
                }
                names.push(alias_words);
            }
            entities.push(Entity {
                name: name.to_owned(),
                names,
            });
        }
        if entities.is_empty() {
            return Err(CatalogueError {
                line: 0,
                reason: "the catalogue lists no entity".into(),
            });
        }
        Ok(Catalogue { entities })
    }

    /// The names of the entities `text` names, sorted.
    pub fn find(&self, text: &str) -> BTreeSet<String> {
        let text = words(text);
        self.entities
            .iter()
            .filter(|entity| {
                entity.names.iter().any(|name| {
                    !name.is_empty() && text.windows(name.len()).any(|window| window == name)
                })
            })
            .map(|entity| entity.name.clone())
            .collect()
    }

    /// How many entities the catalogue lists.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the catalogue lists no entity (never true of a parsed or default one).
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(catalogue: &Catalogue, text: &str) -> Vec<String> {
        catalogue.find(text).into_iter().collect()
    }

    #[test]
    fn the_default_catalogue_finds_whole_names_in_any_case() {
        let catalogue = Catalogue::default();
        assert_eq!(catalogue.len(), DEFAULT_PRODUCTS.len());
        assert_eq!(
            found(&catalogue, "My PIXEL 9 died; the kindle is fine."),
            ["Kindle", "Pixel 9"]
        );
        assert!(found(&catalogue, "pixel 90 and Pixel9 and pixels").is_empty());
        assert_eq!(found(&catalogue, "(Apple Watch)"), ["Apple Watch"]);
    }

    #[test]
    fn a_file_gives_names_aliases_and_comments() {
        let catalogue = Catalogue::parse(
            "# phones\n\nGalaxy S25: S25, Samsung S25\n  iPhone 16  \nAcme Router:acme\n",
        )
        .expect("valid");
        assert_eq!(catalogue.len(), 3);
        assert_eq!(found(&catalogue, "my s25 overheats"), ["Galaxy S25"]);
        assert_eq!(
            found(&catalogue, "ACME support never answers, iphone 16 neither"),
            ["Acme Router", "iPhone 16"]
        );
    }

    #[test]
    fn bad_files_are_refused_with_their_line() {
        let error = |text: &str| Catalogue::parse(text).expect_err("invalid");
        assert_eq!(error("Kindle\n: alias\n").line, 2);
        assert_eq!(error("Kindle\nkindle\n").line, 2);
        assert_eq!(error("Kindle: ok, !!!\n").line, 1);
        assert_eq!(error("# nothing\n\n").line, 0);
        assert!(error("Kindle\nKINDLE").to_string().contains("listed twice"));
    }
}
