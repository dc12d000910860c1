//! When and how the external LLM replaces local results.
//!
//! Modes: `local` (never), `fallback` (when the local model fails, or when its confidence is
//! below a threshold), `external` (always, keeping the local result whenever the LLM's answer is
//! invalid, late or refused). Either way a text is never left without an answer while the local
//! model works.
//!
//! [`LlmBackend::complete`] applies the mode to what the engine answered. This module builds on
//! the engine's types ([`Job`], [`EngineError`], [`scored`]) and knows nothing of gRPC.

use std::{sync::Arc, time::Instant};

use futures::{StreamExt, stream};
use pulse_proto::v1::{Analysis, Backend, Task, TaskResult, Timings};

use crate::{
    engine::{EngineError, Job, micros, scored},
    llm::{LlmClassifier, LlmError},
    metrics::InferenceMetrics,
};

/// How the LLM is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LlmMode {
    Local,
    External,
    Fallback,
}

pub struct LlmBackend {
    pub mode: LlmMode,
    pub classifier: LlmClassifier,
    /// In `fallback` mode, local results below this confidence are sent to the LLM.
    pub confidence_threshold: f32,
    /// LLM calls in flight at once per request.
    pub concurrency: usize,
    pub metrics: InferenceMetrics,
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::Emotion => "emotion",
        Task::Sentiment | Task::Unspecified => "sentiment",
    }
}

impl LlmBackend {
    /// The engine's answer (`local`) as the mode wants it: in `external` mode every result is
    /// asked of the LLM, in `fallback` mode those below the confidence threshold; when the
    /// engine failed, the LLM answers everything or the engine's error stands.
    pub async fn complete(
        &self,
        texts: &Arc<Vec<String>>,
        jobs: &[Job],
        local: Result<Vec<Analysis>, EngineError>,
    ) -> Result<Vec<Analysis>, EngineError> {
        match local {
            Ok(mut analyses) => {
                let threshold = self.confidence_threshold;
                let external = self.mode == LlmMode::External;
                self.consult(texts, jobs, &mut analyses, |r| {
                    external || r.score < threshold
                })
                .await;
                Ok(analyses)
            }
            Err(error) => {
                tracing::warn!(%error, "local inference failed; asking the LLM");
                self.answer_all(texts, jobs).await.ok_or(error)
            }
        }
    }

    async fn ask(&self, text: &str, task: Task, labels: &[String]) -> Option<TaskResult> {
        let started = Instant::now();
        let answer = self
            .classifier
            .classify(text, task_name(task), labels)
            .await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(LlmError::CircuitOpen) => "circuit_open",
            Err(LlmError::Timeout(_)) => "timeout",
            Err(LlmError::InvalidAnswer(_)) => "invalid",
            Err(LlmError::Request(_)) => "error",
        };
        self.metrics.llm_calls.with_label_values(&[outcome]).inc();
        match answer {
            Ok(answer) => Some(scored(
                task,
                labels,
                &answer.probabilities,
                format!("llm:{}", self.classifier.model()),
                Backend::Llm,
                Timings {
                    inference_us: micros(started.elapsed()),
                    ..Timings::default()
                },
            )),
            Err(e) => {
                self.metrics
                    .llm_fallbacks
                    .with_label_values(&[outcome])
                    .inc();
                tracing::warn!(error = %e, task = task_name(task), "LLM answer not used");
                None
            }
        }
    }

    /// Replaces the local results `select` picks with LLM answers where those are valid.
    pub async fn consult(
        &self,
        texts: &Arc<Vec<String>>,
        jobs: &[Job],
        analyses: &mut [Analysis],
        select: impl Fn(&TaskResult) -> bool,
    ) {
        let mut wanted = Vec::new();
        for (i, analysis) in analyses.iter().enumerate() {
            for (r, result) in analysis.results.iter().enumerate() {
                if select(result) {
                    wanted.push((i, r));
                }
            }
        }
        let answers: Vec<((usize, usize), Option<TaskResult>)> = stream::iter(wanted)
            .map(|(i, r)| async move {
                let (task, model) = &jobs[r];
                ((i, r), self.ask(&texts[i], *task, model.labels()).await)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for ((i, r), answer) in answers {
            if let Some(answer) = answer {
                analyses[i].results[r] = answer;
            }
        }
    }

    /// Every task of every text from the LLM; `None` unless all of them were answered.
    pub async fn answer_all(
        &self,
        texts: &Arc<Vec<String>>,
        jobs: &[Job],
    ) -> Option<Vec<Analysis>> {
        let answers: Vec<Option<TaskResult>> =
            stream::iter((0..texts.len()).flat_map(|i| (0..jobs.len()).map(move |r| (i, r))))
                .map(|(i, r)| async move {
                    let (task, model) = &jobs[r];
                    self.ask(&texts[i], *task, model.labels()).await
                })
                .buffered(self.concurrency.max(1))
                .collect()
                .await;
        let mut answers = answers.into_iter();
        (0..texts.len())
            .map(|_| {
                let results = (0..jobs.len())
                    .map(|_| answers.next().flatten())
                    .collect::<Option<Vec<_>>>()?;
                Some(Analysis {
                    results,
                    truncated: false,
                })
            })
            .collect()
    }
}
