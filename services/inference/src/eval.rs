//! `pulse-inference eval`: accuracy and macro-F1 of a task's model on a labelled JSONL file
//! (`{"text": "...", "label": "..."}` per line), through the same tokenizer and ONNX session the
//! service uses.

use std::{
    io::{BufRead, BufReader},
    path::Path,
};

use anyhow::Context;

use crate::{model::Encoding, service::TaskModel};

/// One labelled example.
#[derive(Debug, serde::Deserialize)]
struct Example {
    text: String,
    label: String,
}

/// What `eval` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub labels: Vec<String>,
    pub examples: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub f1: Vec<f64>,
    /// `confusion[truth][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Reads `path`; labels must be among the model's.
fn read_examples(path: &Path, labels: &[String]) -> anyhow::Result<Vec<(String, usize)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let example: Example =
            serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        let label = example.label.to_lowercase();
        let index = labels
            .iter()
            .position(|l| *l == label)
            .with_context(|| format!("line {}: label {label:?} is not one of {labels:?}", n + 1))?;
        out.push((example.text, index));
    }
    Ok(out)
}

/// Scores a confusion matrix.
pub fn score(labels: Vec<String>, confusion: Vec<Vec<u64>>) -> Report {
    let n = labels.len();
    let total: u64 = confusion.iter().flatten().sum();
    let correct: u64 = (0..n).map(|i| confusion[i][i]).sum();
    let f1: Vec<f64> = (0..n)
        .map(|i| {
            let tp = confusion[i][i] as f64;
            let predicted: u64 = (0..n).map(|t| confusion[t][i]).sum();
            let actual: u64 = confusion[i].iter().sum();
            let precision = if predicted == 0 {
                0.0
            } else {
                tp / predicted as f64
            };
            let recall = if actual == 0 { 0.0 } else { tp / actual as f64 };
            if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            }
        })
        .collect();
    Report {
        examples: usize::try_from(total).unwrap_or(usize::MAX),
        accuracy: if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        },
        macro_f1: f1.iter().sum::<f64>() / n.max(1) as f64,
        f1,
        confusion,
        labels,
    }
}

/// Evaluates `tm` on the file at `path`, `batch` texts per run.
pub fn evaluate(tm: &TaskModel, path: &Path, batch: usize) -> anyhow::Result<Report> {
    let labels = tm.labels().to_vec();
    let examples = read_examples(path, &labels)?;
    let n = labels.len();
    let mut confusion = vec![vec![0u64; n]; n];
    for chunk in examples.chunks(batch.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        let encodings = tm.model.tokenize(&texts)?;
        let refs: Vec<&Encoding> = encodings.iter().collect();
        let scores = tm.model.run(&refs)?;
        for ((_, truth), heads) in chunk.iter().zip(scores) {
            let probabilities = heads.get(tm.head).context("missing head")?;
            let predicted = probabilities
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            confusion[*truth][predicted] += 1;
        }
    }
    Ok(score(labels, confusion))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "examples  {}", self.examples)?;
        writeln!(f, "accuracy  {:.4}", self.accuracy)?;
        writeln!(f, "macro-F1  {:.4}", self.macro_f1)?;
        for (label, f1) in self.labels.iter().zip(&self.f1) {
            writeln!(f, "  F1 {label:<10} {f1:.4}")?;
        }
        writeln!(
            f,
            "confusion (rows: truth, columns: predicted, order {:?})",
            self.labels
        )?;
        for row in &self.confusion {
            writeln!(f, "  {row:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_confusion_matrix() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let report = score(labels, vec![vec![8, 2], vec![1, 9]]);
        assert_eq!(report.examples, 20);
        assert!((report.accuracy - 0.85).abs() < 1e-9);
        // a: precision 8/9, recall 8/10; b: precision 9/11, recall 9/10.
        let f1_a = 2.0 * (8.0 / 9.0) * 0.8 / (8.0 / 9.0 + 0.8);
        let f1_b = 2.0 * (9.0 / 11.0) * 0.9 / (9.0 / 11.0 + 0.9);
        assert!((report.f1[0] - f1_a).abs() < 1e-9);
        assert!((report.macro_f1 - (f1_a + f1_b) / 2.0).abs() < 1e-9);
    }
}
