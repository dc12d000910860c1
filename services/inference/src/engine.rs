//! The inference engine: the loaded models and the local analysis path, with no transport.
//!
//! A request becomes jobs ([`Engine::jobs`]: its texts checked against the [`Limits`], its tasks
//! matched to a [`TaskModel`]); [`Engine::analyze_locally`] tokenizes the texts, runs them
//! through the shared [`Batcher`] and turns each head's probabilities into scored
//! [`TaskResult`]s ([`task_result`], [`scored`]). Everything that can go wrong is an
//! [`EngineError`]; the gRPC edge (`crate::grpc`) maps it to a status code, so nothing here
//! knows the transport.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pulse_proto::v1::{Analysis, Backend, LabelScore, Task, TaskResult, Timings};

use crate::{
    batcher::{BatchError, BatchPolicy, Batcher, ModelWork},
    metrics::InferenceMetrics,
    model::{Classifier, ModelError, is_truncated},
};

/// Why the engine gave no analyses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The request itself is wrong: no texts, too many, too long, an unknown task, untokenizable.
    #[error("{0}")]
    InvalidInput(String),
    /// A valid task, but no model is loaded for it.
    #[error("no model is loaded for task {}", .0.as_str_name())]
    NoModel(Task),
    /// The batcher's queue is full; the caller may retry later.
    #[error("the inference queue is full ({queued} texts waiting, limit {limit})")]
    Overloaded { queued: usize, limit: usize },
    /// The batcher has shut down.
    #[error("the batcher has stopped")]
    Stopped,
    /// A model run (or the work around it) failed; the message says which and why.
    #[error("{0}")]
    ModelFailed(String),
}

impl From<BatchError> for EngineError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Full { queued, limit } => Self::Overloaded { queued, limit },
            BatchError::Stopped => Self::Stopped,
            e @ BatchError::ModelFailed { .. } => Self::ModelFailed(e.to_string()),
        }
    }
}

/// A model and the head of it that answers a task.
#[derive(Debug, Clone)]
pub struct TaskModel {
    pub model: Arc<Classifier>,
    pub head: usize,
}

impl TaskModel {
    pub fn labels(&self) -> &[String] {
        self.model
            .heads
            .get(self.head)
            .map_or(&[], |h| h.labels.as_slice())
    }
}

/// The classifiers, one per task (possibly the same model with two heads).
#[derive(Debug, Clone)]
pub struct Models {
    pub sentiment: TaskModel,
    pub emotion: Option<TaskModel>,
}

impl Models {
    /// The model answering `task`, if one is loaded.
    pub fn for_task(&self, task: Task) -> Option<&TaskModel> {
        match task {
            Task::Sentiment => Some(&self.sentiment),
            Task::Emotion => self.emotion.as_ref(),
            Task::Unspecified => None,
        }
    }

    /// The tasks a model is loaded for, sentiment first.
    pub fn available_tasks(&self) -> Vec<Task> {
        let mut tasks = vec![Task::Sentiment];
        if self.emotion.is_some() {
            tasks.push(Task::Emotion);
        }
        tasks
    }
}

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch_size: usize,
    pub max_input_chars: usize,
}

/// A task of a request and the model that answers it.
pub type Job = (Task, TaskModel);

/// The models, the limits requests are held to, and the batcher every request shares.
pub struct Engine {
    models: Models,
    limits: Limits,
    batcher: Batcher,
    metrics: InferenceMetrics,
}

impl Engine {
    /// Starts the batcher's runner thread over `models`.
    pub fn start(
        models: Models,
        limits: Limits,
        policy: BatchPolicy,
        metrics: InferenceMetrics,
    ) -> std::io::Result<Self> {
        Ok(Self {
            batcher: Batcher::start(policy, metrics.clone())?,
            models,
            limits,
            metrics,
        })
    }

    pub fn models(&self) -> &Models {
        &self.models
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks `texts` against the limits, then resolves the `requested` tasks (as the wire
    /// carries them; none means every loaded one) to their models, each task once.
    pub fn jobs(&self, texts: &[String], requested: &[i32]) -> Result<Vec<Job>, EngineError> {
        self.validate_texts(texts)?;
        let tasks = self.tasks(requested)?;
        Ok(tasks
            .into_iter()
            .filter_map(|t| self.models.for_task(t).map(|m| (t, m.clone())))
            .collect())
    }

    fn tasks(&self, requested: &[i32]) -> Result<Vec<Task>, EngineError> {
        if requested.is_empty() {
            return Ok(self.models.available_tasks());
        }
        let mut tasks = Vec::new();
        for value in requested {
            let task = Task::try_from(*value)
                .ok()
                .filter(|t| *t != Task::Unspecified)
                .ok_or_else(|| EngineError::InvalidInput(format!("unknown task {value}")))?;
            if self.models.for_task(task).is_none() {
                return Err(EngineError::NoModel(task));
            }
            if !tasks.contains(&task) {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    fn validate_texts(&self, texts: &[String]) -> Result<(), EngineError> {
        let invalid = |message: String| Err(EngineError::InvalidInput(message));
        if texts.is_empty() {
            return invalid("no texts given".into());
        }
        if texts.len() > self.limits.max_batch_size {
            return invalid(format!(
                "batch of {} texts is over the limit of {}",
                texts.len(),
                self.limits.max_batch_size
            ));
        }
        for (i, text) in texts.iter().enumerate() {
            if text.trim().is_empty() {
                return invalid(format!("text {i} is empty"));
            }
            let chars = text.chars().count();
            if chars > self.limits.max_input_chars {
                return invalid(format!(
                    "text {i} has {chars} characters, over the limit of {}",
                    self.limits.max_input_chars
                ));
            }
        }
        Ok(())
    }

    /// Tokenizes (on a blocking thread), then runs every job through the batcher; one
    /// analysis per text, one result per job in job order.
    pub async fn analyze_locally(
        &self,
        texts: Arc<Vec<String>>,
        jobs: &[Job],
    ) -> Result<Vec<Analysis>, EngineError> {
        let tokenize_started = Instant::now();
        // One unit of work per distinct model: two heads of one model share its run.
        let mut models: Vec<Arc<Classifier>> = Vec::new();
        let routes: Vec<usize> = jobs
            .iter()
            .map(
                |(_, tm)| match models.iter().position(|m| Arc::ptr_eq(m, &tm.model)) {
                    Some(i) => i,
                    None => {
                        models.push(Arc::clone(&tm.model));
                        models.len() - 1
                    }
                },
            )
            .collect();
        let (work, truncated) = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let mut truncated = vec![false; refs.len()];
            let mut work = Vec::with_capacity(models.len());
            for model in models {
                let encodings = model.tokenize(&refs)?;
                for (flag, encoding) in truncated.iter_mut().zip(&encodings) {
                    *flag |= is_truncated(encoding);
                }
                work.push(ModelWork { model, encodings });
            }
            Ok::<_, ModelError>((work, truncated))
        })
        .await
        .map_err(|e| EngineError::ModelFailed(format!("tokenization task failed: {e}")))?
        .map_err(|e| EngineError::InvalidInput(format!("cannot tokenize: {e}")))?;
        let tokenization = tokenize_started.elapsed();
        let reply = self.batcher.submit(work).await.map_err(|e| {
            if matches!(e, BatchError::Full { .. }) {
                self.metrics.overloaded.inc();
            }
            EngineError::from(e)
        })?;
        let timings = Timings {
            tokenization_us: micros(tokenization),
            queue_us: micros(reply.queue),
            inference_us: micros(reply.inference),
        };
        let mut analyses: Vec<Analysis> = truncated
            .into_iter()
            .map(|truncated| Analysis {
                results: Vec::with_capacity(jobs.len()),
                truncated,
            })
            .collect();
        for ((task, tm), work) in jobs.iter().zip(routes) {
            let Some(per_text) = reply.probabilities.get(work) else {
                return Err(EngineError::ModelFailed(
                    "the batcher lost a model's results".into(),
                ));
            };
            for (analysis, heads) in analyses.iter_mut().zip(per_text) {
                let probabilities = heads.get(tm.head).map_or(&[][..], Vec::as_slice);
                analysis
                    .results
                    .push(task_result(*task, tm, probabilities, timings));
            }
        }
        Ok(analyses)
    }
}

/// A duration in whole microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The local model's result for `task`.
pub fn task_result(
    task: Task,
    tm: &TaskModel,
    probabilities: &[f32],
    timings: Timings,
) -> TaskResult {
    scored(
        task,
        tm.labels(),
        probabilities,
        tm.model.id(),
        Backend::Local,
        timings,
    )
}

/// A task result from label probabilities (in label order), most probable label first.
pub fn scored(
    task: Task,
    labels: &[String],
    probabilities: &[f32],
    model: String,
    backend: Backend,
    timings: Timings,
) -> TaskResult {
    let mut scores: Vec<LabelScore> = labels
        .iter()
        .zip(probabilities)
        .map(|(label, score)| LabelScore {
            label: label.clone(),
            score: *score,
        })
        .collect();
    scores.sort_by(|a, b| b.score.total_cmp(&a.score));
    let top = scores.first().cloned().unwrap_or_default();
    TaskResult {
        task: task.into(),
        label: top.label,
        score: top.score,
        scores,
        model,
        backend: backend.into(),
        timings: Some(timings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batcher_errors_become_engine_errors_with_their_messages() {
        let full = EngineError::from(BatchError::Full {
            queued: 7,
            limit: 8,
        });
        assert_eq!(
            full,
            EngineError::Overloaded {
                queued: 7,
                limit: 8
            }
        );
        assert_eq!(
            full.to_string(),
            "the inference queue is full (7 texts waiting, limit 8)"
        );
        assert_eq!(EngineError::from(BatchError::Stopped), EngineError::Stopped);
        assert_eq!(
            EngineError::from(BatchError::ModelFailed {
                model: "m@1".into(),
                reason: "ONNX Runtime: boom".into(),
            }),
            EngineError::ModelFailed("model m@1 failed: ONNX Runtime: boom".into())
        );
    }

    #[test]
    fn scored_puts_the_most_probable_label_first() {
        let labels = ["negative", "neutral", "positive"].map(String::from);
        let result = scored(
            Task::Sentiment,
            &labels,
            &[0.2, 0.1, 0.7],
            "m@1".into(),
            Backend::Local,
            Timings::default(),
        );
        assert_eq!(result.label, "positive");
        assert!((result.score - 0.7).abs() < 1e-6);
        let order: Vec<&str> = result.scores.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(order, ["positive", "negative", "neutral"]);
    }
}
