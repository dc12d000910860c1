//! A sequence classifier: tokenizer + ONNX graph + label names.
//!
//! Any Hugging Face `*ForSequenceClassification` export works: the directory holds
//! `model.onnx` (inputs `input_ids`, `attention_mask` and, for BERT-style models,
//! `token_type_ids`; output `logits` of shape `[batch, labels]`), `tokenizer.json` and
//! `config.json` with `id2label`. Padding and truncation are set here explicitly, whatever the
//! tokenizer file carries, so results never depend on how the tokenizer was saved.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use ndarray::Array2;
use ort::{
    session::{Session, builder::GraphOptimizationLevel},
    value::TensorRef,
};
pub use tokenizers::Encoding;

use crate::normalize::Normalization;
use tokenizers::{Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model output has shape {actual:?}, expected [{batch}, {labels}]")]
    OutputShape {
        actual: Vec<usize>,
        batch: usize,
        labels: usize,
    },
}

fn runtime_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Runtime(e.to_string())
}

/// The subset of a Hugging Face `config.json` the service reads.
#[derive(Debug, serde::Deserialize)]
struct HfConfig {
    id2label: BTreeMap<String, String>,
    #[serde(default, rename = "_name_or_path")]
    name_or_path: Option<String>,
    #[serde(default)]
    pulse: Option<PulseMetadata>,
    #[serde(default)]
    pad_token_id: Option<u32>,
}

/// Optional `pulse` section of `config.json` naming the bundle and, for a graph with several
/// classification heads on one encoder, each head's output and labels.
#[derive(Debug, Default, serde::Deserialize)]
struct PulseMetadata {
    name: Option<String>,
    version: Option<String>,
    quantization: Option<String>,
    #[serde(default)]
    heads: BTreeMap<String, HeadConfig>,
    #[serde(default)]
    text_normalization: Option<Normalization>,
    #[serde(default)]
    calibration: Calibration,
}

/// What the bundle's training fitted on its dev splits (`pulse.calibration` in `config.json`).
/// Temperatures are already folded into the graph's logits; they are kept for the record.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct Calibration {
    /// Score from which an emotion counts as present when a text may carry several (GoEmotions'
    /// multi-label protocol; the top emotion always counts).
    #[serde(default)]
    pub emotion_multilabel_threshold: Option<f32>,
}

#[derive(Debug, serde::Deserialize)]
struct HeadConfig {
    output: String,
    id2label: BTreeMap<String, String>,
}

/// One classification output of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The task it answers ("sentiment", "emotion"), or "default" for a plain HF export.
    pub name: String,
    pub output: String,
    pub labels: Vec<String>,
}

/// Probabilities of one text: per head, per label (in label order).
pub type HeadScores = Vec<Vec<f32>>;

/// Probabilities over the labels of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Per head, one probability per label, in label order.
    pub probabilities: HeadScores,
    /// The text was longer than the model's window and was cut.
    pub truncated: bool,
}

/// A loaded classifier. Tokenizing is thread-safe; runs are serialised on the session, which
/// itself uses the configured intra-op threads.
pub struct Classifier {
    pub name: String,
    pub version: String,
    pub quantization: String,
    pub heads: Vec<Head>,
    pub max_sequence_length: usize,
    /// Applied to every text before tokenizing.
    pub normalization: Normalization,
    pub calibration: Calibration,
    tokenizer: Tokenizer,
    session: Mutex<Session>,
    needs_token_type_ids: bool,
    pad_id: u32,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("heads", &self.heads)
            .finish_non_exhaustive()
    }
}

/// The id that pads a batch. Masked positions do not change a float graph's scores, but an int8
/// graph scales its activations over the whole batch, padding included, so the model's own pad
/// token matters. `config.json` names it first: MPNet's vocabulary also holds a `[PAD]` (id 4)
/// that is not its padding token (`<pad>`, 1).
fn pad_id(config_pad_token_id: Option<u32>, tokenizer: &Tokenizer) -> u32 {
    config_pad_token_id
        .or_else(|| tokenizer.get_padding().map(|p| p.pad_id))
        .or_else(|| tokenizer.token_to_id("[PAD]"))
        .or_else(|| tokenizer.token_to_id("<pad>"))
        .unwrap_or(0)
}

fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| ModelError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Classifier {
    /// Loads the model in `dir` with `threads` intra-op threads, which spin between runs only
    /// when `spinning` is set.
    pub fn load(
        environment: &ort::environment::Environment,
        dir: &Path,
        threads: usize,
        spinning: bool,
        max_sequence_length: usize,
    ) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let config: HfConfig =
            serde_json::from_str(&read(&config_path)?).map_err(|e| ModelError::Config {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        let config_error = |reason: String| ModelError::Config {
            path: config_path.clone(),
            reason,
        };
        let default_labels = labels_in_order(&config.id2label).map_err(config_error)?;
        let metadata = config.pulse.unwrap_or_default();
        let dir_name = dir
            .file_name()
            .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
        let name = metadata
            .name
            .or(config.name_or_path.filter(|n| !n.is_empty()))
            .unwrap_or(dir_name);

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| ModelError::Read {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        let pad_id = pad_id(config.pad_token_id, &tokenizer);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_sequence_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;

        let model_path = dir.join("model.onnx");
        let session = Session::builder(environment)
            .map_err(runtime_error)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(runtime_error)?
            .with_intra_threads(threads)
            .map_err(runtime_error)?
            .with_intra_op_spinning(spinning)
            .map_err(runtime_error)?
            .with_inter_threads(1)
            .map_err(runtime_error)?
            .commit_from_file(&model_path)
            .map_err(runtime_error)?;
        let needs_token_type_ids = session
            .inputs()
            .iter()
            .any(|input| input.name() == "token_type_ids");
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .collect();
        let heads = if metadata.heads.is_empty() {
            let output = outputs
                .iter()
                .find(|n| *n == "logits")
                .or_else(|| outputs.first())
                .cloned()
                .ok_or_else(|| ModelError::Runtime("the model has no output".into()))?;
            vec![Head {
                name: "default".into(),
                output,
                labels: default_labels,
            }]
        } else {
            let mut heads = Vec::new();
            for (name, head) in &metadata.heads {
                if !outputs.contains(&head.output) {
                    return Err(config_error(format!(
                        "head {name} names output {:?}, the graph has {outputs:?}",
                        head.output
                    )));
                }
                heads.push(Head {
                    name: name.clone(),
                    output: head.output.clone(),
                    labels: labels_in_order(&head.id2label).map_err(config_error)?,
                });
            }
            heads
        };
        let quantization = metadata.quantization.unwrap_or_else(|| "unknown".into());
        Ok(Self {
            name,
            version: metadata.version.unwrap_or_else(|| "unversioned".into()),
            quantization,
            heads,
            max_sequence_length,
            normalization: metadata.text_normalization.unwrap_or(Normalization::None),
            calibration: metadata.calibration,
            tokenizer,
            session: Mutex::new(session),
            needs_token_type_ids,
            pad_id,
        })
    }

    /// The head answering `task`: the one named after it, or the only one.
    pub fn head_for(&self, task: &str) -> Option<usize> {
        self.heads
            .iter()
            .position(|h| h.name == task)
            .or_else(|| (self.heads.len() == 1).then_some(0))
    }

    /// `name@version`, as stored with each analysis.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Tokenizes `texts` with this model's tokenizer (truncated to its window, unpadded).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>, ModelError> {
        let result = if self.normalization == Normalization::None {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        } else {
            let normalized: Vec<String> =
                texts.iter().map(|t| self.normalization.apply(t)).collect();
            self.tokenizer.encode_batch(normalized, true)
        };
        result.map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// Runs the model once over `encodings`, padded to the longest of them; returns, per
    /// encoding, every head's probabilities.
    pub fn run(&self, encodings: &[&Encoding]) -> Result<Vec<HeadScores>, ModelError> {
        if encodings.is_empty() {
            return Ok(Vec::new());
        }
        let batch = encodings.len();
        let width = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Array2::<i64>::from_elem((batch, width), i64::from(self.pad_id));
        let mut mask = Array2::<i64>::zeros((batch, width));
        let mut types = Array2::<i64>::zeros((batch, width));
        for (row, encoding) in encodings.iter().enumerate() {
            for (col, ((&id, &m), &t)) in encoding
                .get_ids()
                .iter()
                .zip(encoding.get_attention_mask())
                .zip(encoding.get_type_ids())
                .enumerate()
            {
                ids[[row, col]] = i64::from(id);
                mask[[row, col]] = i64::from(m);
                types[[row, col]] = i64::from(t);
            }
        }
        let mut session = self
            .session
            .lock()
            .map_err(|_| ModelError::Runtime("a previous run panicked".into()))?;
        let ids = TensorRef::from_array_view(&ids).map_err(runtime_error)?;
        let mask = TensorRef::from_array_view(&mask).map_err(runtime_error)?;
        let outputs = if self.needs_token_type_ids {
            let types = TensorRef::from_array_view(&types).map_err(runtime_error)?;
            session.run(ort::inputs![
                "input_ids" => ids,
                "attention_mask" => mask,
                "token_type_ids" => types,
            ])
        } else {
            session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
        }
        .map_err(runtime_error)?;
        let mut scores: Vec<HeadScores> = vec![Vec::with_capacity(self.heads.len()); batch];
        for head in &self.heads {
            let logits = outputs[head.output.as_str()]
                .try_extract_array::<f32>()
                .map_err(runtime_error)?;
            let labels = head.labels.len();
            let shape = logits.shape().to_vec();
            if shape != [batch, labels] {
                return Err(ModelError::OutputShape {
                    actual: shape,
                    batch,
                    labels,
                });
            }
            let flat: Vec<f32> = logits.iter().copied().collect();
            for (text, row) in scores.iter_mut().zip(flat.chunks(labels)) {
                text.push(softmax(row));
            }
        }
        Ok(scores)
    }

    /// Tokenizes and classifies `texts` in one run (for tools and tests; the service batches
    /// through [`crate::batcher`]).
    pub fn classify(&self, texts: &[&str]) -> Result<Vec<Classification>, ModelError> {
        let encodings = self.tokenize(texts)?;
        let refs: Vec<&Encoding> = encodings.iter().collect();
        let probabilities = self.run(&refs)?;
        Ok(probabilities
            .into_iter()
            .zip(&encodings)
            .map(|(probabilities, encoding)| Classification {
                probabilities,
                truncated: is_truncated(encoding),
            })
            .collect())
    }
}

/// True when the text did not fit the model's window.
pub fn is_truncated(encoding: &Encoding) -> bool {
    !encoding.get_overflowing().is_empty()
}

/// `id2label` as a dense list; ids must be exactly 0..n.
fn labels_in_order(id2label: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let mut pairs: Vec<(usize, String)> = id2label
        .iter()
        .map(|(id, label)| {
            id.parse::<usize>()
                .map(|id| (id, label.to_lowercase()))
                .map_err(|_| format!("id2label key {id:?} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    pairs.sort();
    if pairs.is_empty() || pairs.iter().enumerate().any(|(i, (id, _))| i != *id) {
        return Err("id2label must map 0..n without gaps".into());
    }
    Ok(pairs.into_iter().map(|(_, label)| label).collect())
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_a_distribution() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
        // Large logits do not overflow.
        let p = softmax(&[1000.0, 0.0]);
        assert!((p[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_models_own_pad_token_comes_first() {
        let vocab = [("<s>", 0), ("<pad>", 1), ("[PAD]", 4)]
            .into_iter()
            .map(|(token, id)| (token.to_owned(), id))
            .collect();
        let model = tokenizers::models::wordlevel::WordLevel::builder()
            .vocab(vocab)
            .unk_token("<s>".into())
            .build()
            .expect("a word-level model over a fixed vocabulary");
        let tokenizer = Tokenizer::new(model);
        assert_eq!(pad_id(Some(1), &tokenizer), 1);
        assert_eq!(pad_id(None, &tokenizer), 4);
    }

    #[test]
    fn id2label_must_be_dense() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert_eq!(
            labels_in_order(&map(&[("1", "POSITIVE"), ("0", "NEGATIVE")])),
            Ok(vec!["negative".to_owned(), "positive".to_owned()])
        );
        assert!(labels_in_order(&map(&[("0", "a"), ("2", "b")])).is_err());
        assert!(labels_in_order(&map(&[("x", "a")])).is_err());
        assert!(labels_in_order(&map(&[])).is_err());
    }
}
