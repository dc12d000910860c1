//! `pulse.v1.InferenceService` over the loaded classifiers.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pulse_proto::v1::{
    Analysis, AnalyzeBatchRequest, AnalyzeBatchResponse, AnalyzeRequest, AnalyzeResponse, Backend,
    GetModelInfoRequest, GetModelInfoResponse, LabelScore, ModelInfo, Task, TaskResult, Timings,
    inference_service_server::InferenceService,
};
use tonic::{Request, Response, Status};

use crate::model::{Classification, Classifier, Timing};

/// The classifiers, one per task.
#[derive(Debug, Clone)]
pub struct Models {
    pub sentiment: Arc<Classifier>,
    pub emotion: Option<Arc<Classifier>>,
}

impl Models {
    fn for_task(&self, task: Task) -> Option<&Arc<Classifier>> {
        match task {
            Task::Sentiment => Some(&self.sentiment),
            Task::Emotion => self.emotion.as_ref(),
            Task::Unspecified => None,
        }
    }

    fn available_tasks(&self) -> Vec<Task> {
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

pub struct InferenceApi {
    models: Models,
    limits: Limits,
}

impl InferenceApi {
    pub fn new(models: Models, limits: Limits) -> Self {
        Self { models, limits }
    }

    fn tasks(&self, requested: &[i32]) -> Result<Vec<Task>, Status> {
        if requested.is_empty() {
            return Ok(self.models.available_tasks());
        }
        let mut tasks = Vec::new();
        for value in requested {
            let task = Task::try_from(*value)
                .ok()
                .filter(|t| *t != Task::Unspecified)
                .ok_or_else(|| Status::invalid_argument(format!("unknown task {value}")))?;
            if self.models.for_task(task).is_none() {
                return Err(Status::failed_precondition(format!(
                    "no model is loaded for task {}",
                    task.as_str_name()
                )));
            }
            if !tasks.contains(&task) {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    fn validate_texts(&self, texts: &[String]) -> Result<(), Status> {
        if texts.is_empty() {
            return Err(Status::invalid_argument("no texts given"));
        }
        if texts.len() > self.limits.max_batch_size {
            return Err(Status::invalid_argument(format!(
                "batch of {} texts is over the limit of {}",
                texts.len(),
                self.limits.max_batch_size
            )));
        }
        for (i, text) in texts.iter().enumerate() {
            if text.trim().is_empty() {
                return Err(Status::invalid_argument(format!("text {i} is empty")));
            }
            let chars = text.chars().count();
            if chars > self.limits.max_input_chars {
                return Err(Status::invalid_argument(format!(
                    "text {i} has {chars} characters, over the limit of {}",
                    self.limits.max_input_chars
                )));
            }
        }
        Ok(())
    }

    /// Validates, then runs every task over `texts` on a blocking thread.
    async fn analyze_texts(
        &self,
        texts: Vec<String>,
        requested: &[i32],
    ) -> Result<Vec<Analysis>, Status> {
        self.validate_texts(&texts)?;
        let tasks = self.tasks(requested)?;
        let jobs: Vec<(Task, Arc<Classifier>)> = tasks
            .iter()
            .filter_map(|t| self.models.for_task(*t).map(|m| (*t, Arc::clone(m))))
            .collect();
        let received = Instant::now();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let queue = received.elapsed();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let mut analyses: Vec<Analysis> = vec![Analysis::default(); texts.len()];
            for (task, model) in jobs {
                let (results, timing) = model.classify(&refs).map_err(|e| {
                    tracing::error!(error = %e, model = %model.id(), "inference failed");
                    Status::internal(format!("inference failed: {e}"))
                })?;
                for (analysis, result) in analyses.iter_mut().zip(results) {
                    analysis.truncated |= result.truncated;
                    analysis.results.push(task_result(
                        task,
                        &model,
                        &result,
                        timing,
                        queue,
                        texts.len(),
                    ));
                }
            }
            Ok(analyses)
        })
        .await
        .map_err(|e| Status::internal(format!("inference task failed: {e}")))?
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn task_result(
    task: Task,
    model: &Classifier,
    result: &Classification,
    timing: Timing,
    queue: Duration,
    batch: usize,
) -> TaskResult {
    let mut scores: Vec<LabelScore> = model
        .labels
        .iter()
        .zip(&result.probabilities)
        .map(|(label, score)| LabelScore {
            label: label.clone(),
            score: *score,
        })
        .collect();
    scores.sort_by(|a, b| b.score.total_cmp(&a.score));
    let top = scores.first().cloned().unwrap_or_default();
    // A batch's run time is shared by its texts.
    let share = u32::try_from(batch.max(1)).unwrap_or(u32::MAX);
    TaskResult {
        task: task.into(),
        label: top.label,
        score: top.score,
        scores,
        model: model.id(),
        backend: Backend::Local.into(),
        timings: Some(Timings {
            tokenization_us: micros(timing.tokenization / share),
            queue_us: micros(queue),
            inference_us: micros(timing.inference / share),
        }),
    }
}

#[tonic::async_trait]
impl InferenceService for InferenceApi {
    #[tracing::instrument(name = "inference.analyze", skip_all)]
    async fn analyze(
        &self,
        request: Request<AnalyzeRequest>,
    ) -> Result<Response<AnalyzeResponse>, Status> {
        let request = request.into_inner();
        let mut analyses = self
            .analyze_texts(vec![request.text], &request.tasks)
            .await?;
        Ok(Response::new(AnalyzeResponse {
            analysis: analyses.pop(),
        }))
    }

    #[tracing::instrument(name = "inference.analyze_batch", skip_all, fields(batch.size))]
    async fn analyze_batch(
        &self,
        request: Request<AnalyzeBatchRequest>,
    ) -> Result<Response<AnalyzeBatchResponse>, Status> {
        let request = request.into_inner();
        tracing::Span::current().record("batch.size", request.texts.len());
        let analyses = self.analyze_texts(request.texts, &request.tasks).await?;
        Ok(Response::new(AnalyzeBatchResponse { analyses }))
    }

    async fn get_model_info(
        &self,
        _request: Request<GetModelInfoRequest>,
    ) -> Result<Response<GetModelInfoResponse>, Status> {
        let models = self
            .models
            .available_tasks()
            .into_iter()
            .filter_map(|task| {
                self.models.for_task(task).map(|m| ModelInfo {
                    task: task.into(),
                    name: m.name.clone(),
                    version: m.version.clone(),
                    labels: m.labels.clone(),
                    quantization: m.quantization.clone(),
                    max_sequence_length: u32::try_from(m.max_sequence_length).unwrap_or(u32::MAX),
                })
            })
            .collect();
        Ok(Response::new(GetModelInfoResponse {
            models,
            max_batch_size: u32::try_from(self.limits.max_batch_size).unwrap_or(u32::MAX),
            max_input_chars: u32::try_from(self.limits.max_input_chars).unwrap_or(u32::MAX),
        }))
    }
}
