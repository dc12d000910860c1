//! The workload: texts of the shape the platform sees.

use std::{io::BufRead, path::Path};

use anyhow::Context;
use rand::{SeedableRng, rngs::StdRng};

/// `count` posts from the ingester's generator, seeded so every run sees the same texts.
pub fn generated(count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..count)
        .map(|_| pulse_ingester::generator::generate(&mut rng).0.content)
        .collect()
}

/// The `text` field of every line of a JSONL file.
pub fn from_jsonl(path: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Line {
        text: String,
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut texts = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        texts.push(parsed.text);
    }
    anyhow::ensure!(!texts.is_empty(), "{} holds no texts", path.display());
    Ok(texts)
}
