//! `pulse-inference eval`: how good a task's model is on a labelled JSONL file, through the same
//! tokenizer and ONNX session the service uses, so the model card's figures can be reproduced.
//!
//! A line is `{"text": "...", "label": "..."}`, optionally with `"labels": [...]` when a text
//! carries several (GoEmotions). Single-label files get accuracy, macro-F1, macro-recall (the
//! TweetEval metric) and the expected calibration error of the top score. Files with multi-label
//! lines get the same top-1 figures over their single-label lines, plus the multi-label macro-F1
//! over every line: a label counts as predicted when its score reaches the threshold, and the
//! top label always does.

use std::{
    io::{BufRead, BufReader},
    path::Path,
};

use anyhow::Context;

use crate::{engine::TaskModel, model::Encoding};

/// Bins of the expected calibration error (equal width over [0, 1]).
const CALIBRATION_BINS: usize = 15;

/// One labelled example as read from the file.
#[derive(Debug, serde::Deserialize)]
struct Line {
    text: String,
    label: String,
    #[serde(default)]
    labels: Vec<String>,
}

/// One example, labels as indices into the model's labels.
struct Example {
    text: String,
    labels: Vec<usize>,
}

/// The multi-label figures of a file whose lines may carry several labels.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLabel {
    pub examples: usize,
    pub threshold: f32,
    pub macro_f1: f64,
    pub f1: Vec<f64>,
}

/// What `eval` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub labels: Vec<String>,
    /// Single-label examples, which the top-1 figures below are computed on.
    pub examples: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub macro_recall: f64,
    /// Expected calibration error of the top score: how far "0.9" is from "right 9 times in 10".
    pub calibration_error: f64,
    pub f1: Vec<f64>,
    /// `confusion[truth][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    pub multi_label: Option<MultiLabel>,
}

/// Reads `path`; labels must be among the model's.
fn read_examples(path: &Path, labels: &[String]) -> anyhow::Result<Vec<Example>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let index = |n: usize, label: &str| {
        let label = label.to_lowercase();
        labels
            .iter()
            .position(|l| *l == label)
            .with_context(|| format!("line {n}: label {label:?} is not one of {labels:?}"))
    };
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        let mut gold = vec![index(n + 1, &parsed.label)?];
        for label in &parsed.labels {
            let i = index(n + 1, label)?;
            if !gold.contains(&i) {
                gold.push(i);
            }
        }
        out.push(Example {
            text: parsed.text,
            labels: gold,
        });
    }
    Ok(out)
}

/// F1 from true positives, false positives and false negatives.
fn f1(tp: u64, fp: u64, fn_: u64) -> f64 {
    if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    }
}

/// Scores a confusion matrix.
pub fn score(labels: Vec<String>, confusion: Vec<Vec<u64>>) -> Report {
    let n = labels.len();
    let total: u64 = confusion.iter().flatten().sum();
    let correct: u64 = (0..n).map(|i| confusion[i][i]).sum();
    let f1s: Vec<f64> = (0..n)
        .map(|i| {
            let predicted: u64 = (0..n).map(|t| confusion[t][i]).sum();
            let actual: u64 = confusion[i].iter().sum();
            f1(
                confusion[i][i],
                predicted - confusion[i][i],
                actual - confusion[i][i],
            )
        })
        .collect();
    let recalls: Vec<f64> = (0..n)
        .filter_map(|i| {
            let actual: u64 = confusion[i].iter().sum();
            (actual > 0).then(|| confusion[i][i] as f64 / actual as f64)
        })
        .collect();
    Report {
        examples: usize::try_from(total).unwrap_or(usize::MAX),
        accuracy: if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        },
        macro_f1: f1s.iter().sum::<f64>() / n.max(1) as f64,
        macro_recall: recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
        calibration_error: 0.0,
        f1: f1s,
        confusion,
        labels,
        multi_label: None,
    }
}

/// Expected calibration error over (top score, was the top label right) pairs.
pub fn calibration_error(predictions: &[(f32, bool)]) -> f64 {
    if predictions.is_empty() {
        return 0.0;
    }
    let mut bins = [(0usize, 0.0f64, 0usize); CALIBRATION_BINS];
    for &(confidence, right) in predictions {
        let bin = ((f64::from(confidence) * CALIBRATION_BINS as f64).ceil() as usize)
            .clamp(1, CALIBRATION_BINS)
            - 1;
        bins[bin].0 += 1;
        bins[bin].1 += f64::from(confidence);
        bins[bin].2 += usize::from(right);
    }
    let total = predictions.len() as f64;
    bins.iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|&(count, confidence, right)| {
            let count = count as f64;
            count / total * (right as f64 / count - confidence / count).abs()
        })
        .sum()
}

/// Multi-label macro-F1: a label is predicted when its score reaches `threshold`, and the top
/// label always is.
pub fn multi_label(
    scores: &[Vec<f32>],
    gold: &[Vec<usize>],
    labels: usize,
    threshold: f32,
) -> MultiLabel {
    let mut counts = vec![(0u64, 0u64, 0u64); labels];
    for (probabilities, truth) in scores.iter().zip(gold) {
        let top = argmax(probabilities);
        for (label, count) in counts.iter_mut().enumerate() {
            let predicted =
                label == top || probabilities.get(label).is_some_and(|p| *p >= threshold);
            match (predicted, truth.contains(&label)) {
                (true, true) => count.0 += 1,
                (true, false) => count.1 += 1,
                (false, true) => count.2 += 1,
                (false, false) => {}
            }
        }
    }
    let f1s: Vec<f64> = counts
        .iter()
        .map(|&(tp, fp, fn_)| f1(tp, fp, fn_))
        .collect();
    MultiLabel {
        examples: scores.len(),
        threshold,
        macro_f1: f1s.iter().sum::<f64>() / labels.max(1) as f64,
        f1: f1s,
    }
}

fn argmax(probabilities: &[f32]) -> usize {
    probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Evaluates `tm` on the file at `path`, `batch` texts per run. `threshold` is used for files
/// with multi-label lines.
pub fn evaluate(
    tm: &TaskModel,
    path: &Path,
    batch: usize,
    threshold: f32,
) -> anyhow::Result<Report> {
    let labels = tm.labels().to_vec();
    let examples = read_examples(path, &labels)?;
    let mut scores = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        let encodings = tm.model.tokenize(&texts)?;
        let refs: Vec<&Encoding> = encodings.iter().collect();
        for heads in tm.model.run(&refs)? {
            scores.push(heads.get(tm.head).context("missing head")?.clone());
        }
    }
    let n = labels.len();
    let mut confusion = vec![vec![0u64; n]; n];
    let mut confidences = Vec::new();
    for (example, probabilities) in examples.iter().zip(&scores) {
        if let [truth] = example.labels[..] {
            let predicted = argmax(probabilities);
            confusion[truth][predicted] += 1;
            confidences.push((probabilities[predicted], predicted == truth));
        }
    }
    let mut report = score(labels, confusion);
    report.calibration_error = calibration_error(&confidences);
    if examples.iter().any(|e| e.labels.len() > 1) {
        let gold: Vec<Vec<usize>> = examples.iter().map(|e| e.labels.clone()).collect();
        report.multi_label = Some(multi_label(&scores, &gold, n, threshold));
    }
    Ok(report)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(multi) = &self.multi_label {
            writeln!(f, "multi-label ({} examples)", multi.examples)?;
            writeln!(f, "  threshold {:.2}", multi.threshold)?;
            writeln!(f, "  macro-F1  {:.4}", multi.macro_f1)?;
            for (label, f1) in self.labels.iter().zip(&multi.f1) {
                writeln!(f, "    F1 {label:<10} {f1:.4}")?;
            }
            writeln!(f, "top-1 on the single-label examples")?;
        }
        writeln!(f, "examples  {}", self.examples)?;
        writeln!(f, "accuracy  {:.4}", self.accuracy)?;
        writeln!(f, "macro-F1  {:.4}", self.macro_f1)?;
        writeln!(f, "macro-recall  {:.4}", self.macro_recall)?;
        writeln!(
            f,
            "calibration error (ECE, {CALIBRATION_BINS} bins)  {:.4}",
            self.calibration_error
        )?;
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
        assert!((report.macro_recall - (0.8 + 0.9) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn calibration_error_is_the_gap_between_confidence_and_accuracy() {
        // Always 0.9 sure and right 9 times in 10: calibrated.
        let calibrated: Vec<(f32, bool)> = (0..10).map(|i| (0.9, i < 9)).collect();
        assert!(calibration_error(&calibrated) < 1e-6);
        // Always 0.9 sure and right half the time: 0.4 off.
        let overconfident: Vec<(f32, bool)> = (0..10).map(|i| (0.9, i < 5)).collect();
        assert!((calibration_error(&overconfident) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn multi_label_counts_the_top_label_and_every_label_over_the_threshold() {
        let scores = vec![vec![0.6, 0.35, 0.05], vec![0.2, 0.7, 0.1]];
        let gold = vec![vec![0, 1], vec![2]];
        let report = multi_label(&scores, &gold, 3, 0.3);
        // Text 1 predicts {0, 1} (both right); text 2 predicts {1} (wrong, misses 2).
        // Label 0: tp 1 -> F1 1. Label 1: tp 1, fp 1 -> 2/3. Label 2: fn 1 -> 0.
        assert!((report.f1[0] - 1.0).abs() < 1e-9);
        assert!((report.f1[1] - 2.0 / 3.0).abs() < 1e-9);
        assert!(report.f1[2].abs() < 1e-9);
        assert!((report.macro_f1 - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-9);
    }
}
