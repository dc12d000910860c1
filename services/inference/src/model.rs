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
    time::{Duration, Instant},
};

use ndarray::Array2;
use ort::{
    session::{Session, builder::GraphOptimizationLevel},
    value::TensorRef,
};
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
}

/// Optional `pulse` section of `config.json` naming the bundle.
#[derive(Debug, Default, serde::Deserialize)]
struct PulseMetadata {
    name: Option<String>,
    version: Option<String>,
    quantization: Option<String>,
}

/// Probabilities over the labels of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// One probability per label, in label order.
    pub probabilities: Vec<f32>,
    /// The text was longer than the model's window and was cut.
    pub truncated: bool,
}

/// Where the time of one [`Classifier::classify`] call went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub tokenization: Duration,
    pub inference: Duration,
}

/// A loaded classifier. `classify` may be called from any thread; runs are serialised on the
/// session, which itself uses the configured intra-op threads.
pub struct Classifier {
    pub name: String,
    pub version: String,
    pub quantization: String,
    pub labels: Vec<String>,
    pub max_sequence_length: usize,
    tokenizer: Tokenizer,
    session: Mutex<Session>,
    needs_token_type_ids: bool,
    output_name: String,
    pad_id: u32,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| ModelError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Classifier {
    /// Loads the model in `dir` with `threads` intra-op threads.
    pub fn load(
        environment: &ort::environment::Environment,
        dir: &Path,
        threads: usize,
        max_sequence_length: usize,
    ) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let config: HfConfig =
            serde_json::from_str(&read(&config_path)?).map_err(|e| ModelError::Config {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        let labels = labels_in_order(&config.id2label).map_err(|reason| ModelError::Config {
            path: config_path.clone(),
            reason,
        })?;
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
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .or_else(|| tokenizer.token_to_id("<pad>"))
            .unwrap_or(0);
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
            .with_inter_threads(1)
            .map_err(runtime_error)?
            .commit_from_file(&model_path)
            .map_err(runtime_error)?;
        let needs_token_type_ids = session
            .inputs()
            .iter()
            .any(|input| input.name() == "token_type_ids");
        let output_name = session
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .find(|n| n == "logits")
            .or_else(|| session.outputs().first().map(|o| o.name().to_owned()))
            .ok_or_else(|| ModelError::Runtime("the model has no output".into()))?;
        let quantization = metadata.quantization.unwrap_or_else(|| "unknown".into());
        Ok(Self {
            name,
            version: metadata.version.unwrap_or_else(|| "unversioned".into()),
            quantization,
            labels,
            max_sequence_length,
            tokenizer,
            session: Mutex::new(session),
            needs_token_type_ids,
            output_name,
            pad_id,
        })
    }

    /// `name@version`, as stored with each analysis.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Classifies `texts` in one model run (padded to the longest text of the call).
    pub fn classify(&self, texts: &[&str]) -> Result<(Vec<Classification>, Timing), ModelError> {
        if texts.is_empty() {
            return Ok((Vec::new(), Timing::default()));
        }
        let started = Instant::now();
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
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
        let truncated: Vec<bool> = encodings
            .iter()
            .map(|e| !e.get_overflowing().is_empty())
            .collect();
        let tokenization = started.elapsed();

        let started = Instant::now();
        let labels = self.labels.len();
        let logits = {
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
            let logits = outputs[self.output_name.as_str()]
                .try_extract_array::<f32>()
                .map_err(runtime_error)?;
            let shape = logits.shape().to_vec();
            if shape != [batch, labels] {
                return Err(ModelError::OutputShape {
                    actual: shape,
                    batch,
                    labels,
                });
            }
            logits.iter().copied().collect::<Vec<f32>>()
        };
        let inference = started.elapsed();
        let results = logits
            .chunks(labels)
            .zip(truncated)
            .map(|(row, truncated)| Classification {
                probabilities: softmax(row),
                truncated,
            })
            .collect();
        Ok((
            results,
            Timing {
                tokenization,
                inference,
            },
        ))
    }
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
