//! What a post mentions, extracted as it is stored: its terms and the catalogue entities it
//! names (see `pulse_insights`), which the term rollups count for the insights.

use std::path::Path;

use pulse_domain::Post;
use pulse_insights::{entities::Catalogue, terms};
use pulse_store::posts::Mentions;

/// Extracts the mentions of posts against one catalogue.
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    catalogue: Catalogue,
}

impl Extractor {
    /// The extractor of `ENTITIES_FILE`, or of the generator's products without one.
    pub fn from_file(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read ENTITIES_FILE {}: {e}", path.display()))?;
        let catalogue = Catalogue::parse(&text)
            .map_err(|e| anyhow::anyhow!("ENTITIES_FILE {}: {e}", path.display()))?;
        Ok(Self { catalogue })
    }

    /// The words, phrases and @mentions of `post` as terms; the catalogue entities it names and
    /// its hashtags as entities (each counted once, and the entity table reads only entities).
    pub fn mentions(&self, post: &Post) -> Mentions {
        let found = terms::extract(&post.content);
        let mut entities: Vec<String> = self.catalogue.find(&post.content).into_iter().collect();
        entities.extend(found.hashtags);
        Mentions {
            terms: found.words.into_iter().chain(found.mentions).collect(),
            entities,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn post(content: &str) -> Post {
        Post {
            post_id: "p".into(),
            source: "twitter".into(),
            author: "a".into(),
            content: content.into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_complaint_mentions_its_terms_its_product_and_its_hashtags() {
        let mentions = Extractor::default().mentions(&post("My Pixel 9 battery drains #fail"));
        assert!(mentions.terms.contains(&"battery drains".to_owned()));
        assert!(
            !mentions.terms.contains(&"#fail".to_owned()),
            "counted once"
        );
        assert_eq!(mentions.entities, ["Pixel 9", "#fail"]);
    }

    #[test]
    fn a_catalogue_file_replaces_the_default_and_its_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("pulse-entities-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let good = dir.join("good.txt");
        std::fs::write(&good, "# brands\nAcme Phone: acme, AP1\n").expect("write");
        let extractor = Extractor::from_file(Some(&good)).expect("catalogue");
        assert_eq!(
            extractor.mentions(&post("my ap1 died")).entities,
            ["Acme Phone"]
        );
        assert!(extractor.mentions(&post("Pixel 9")).entities.is_empty());
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "Acme\n: alias only\n").expect("write");
        let error = Extractor::from_file(Some(&bad))
            .err()
            .map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("line 2")),
            "{error:?}"
        );
        let missing = Extractor::from_file(Some(&dir.join("missing.txt")));
        assert!(missing.is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
