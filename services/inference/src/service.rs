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

use crate::{
    batcher::{Batcher, ModelWork, SubmitError, SubmitOutcome},
    fallback::{LlmBackend, LlmMode},
    metrics::InferenceMetrics,
    model::{Classifier, is_truncated},
};

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
    fn for_task(&self, task: Task) -> Option<&TaskModel> {
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
    batcher: Batcher,
    llm: Option<LlmBackend>,
    metrics: InferenceMetrics,
}

impl InferenceApi {
    /// `llm` is `None` in mode `local`.
    pub fn new(
        models: Models,
        limits: Limits,
        batcher: Batcher,
        llm: Option<LlmBackend>,
        metrics: InferenceMetrics,
    ) -> Self {
        Self {
            models,
            limits,
            batcher,
            llm,
            metrics,
        }
    }

    fn count(&self, analyses: &[Analysis]) {
        for result in analyses.iter().flat_map(|a| &a.results) {
            let task = if result.task == i32::from(Task::Emotion) {
                "emotion"
            } else {
                "sentiment"
            };
            let backend = if result.backend == i32::from(Backend::Llm) {
                "llm"
            } else {
                "local"
            };
            self.metrics.texts.with_label_values(&[task, backend]).inc();
        }
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

    /// Validates, runs the local models, then consults the LLM where the mode says so.
    async fn analyze_texts(
        &self,
        texts: Vec<String>,
        requested: &[i32],
    ) -> Result<Vec<Analysis>, Status> {
        self.validate_texts(&texts)?;
        let tasks = self.tasks(requested)?;
        let jobs: Vec<(Task, TaskModel)> = tasks
            .iter()
            .filter_map(|t| self.models.for_task(*t).map(|m| (*t, m.clone())))
            .collect();
        let texts = Arc::new(texts);
        let local = self.analyze_locally(Arc::clone(&texts), &jobs).await;
        let Some(llm) = &self.llm else {
            return local;
        };
        match local {
            Ok(mut analyses) => {
                let threshold = llm.confidence_threshold;
                let external = llm.mode == LlmMode::External;
                llm.consult(&texts, &jobs, &mut analyses, |r| {
                    external || r.score < threshold
                })
                .await;
                Ok(analyses)
            }
            Err(status) => {
                tracing::warn!(%status, "local inference failed; asking the LLM");
                llm.answer_all(&texts, &jobs).await.ok_or(status)
            }
        }
    }

    /// Tokenizes (on a blocking thread), then runs every task through the batcher.
    async fn analyze_locally(
        &self,
        texts: Arc<Vec<String>>,
        jobs: &[(Task, TaskModel)],
    ) -> Result<Vec<Analysis>, Status> {
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
            Ok::<_, crate::model::ModelError>((work, truncated))
        })
        .await
        .map_err(|e| Status::internal(format!("tokenization task failed: {e}")))?
        .map_err(|e| Status::invalid_argument(format!("cannot tokenize: {e}")))?;
        let tokenization = tokenize_started.elapsed();
        let reply = self
            .batcher
            .submit(work)
            .await
            .map_err(|outcome| match outcome {
                SubmitOutcome::Refused(e @ SubmitError::Full { .. }) => {
                    self.metrics.overloaded.inc();
                    Status::resource_exhausted(e.to_string())
                }
                SubmitOutcome::Refused(e @ SubmitError::Stopped) => {
                    Status::unavailable(e.to_string())
                }
                SubmitOutcome::Failed(e) => Status::internal(e),
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
                return Err(Status::internal("the batcher lost a model's results"));
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

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pub(crate) fn task_result(
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
pub(crate) fn scored(
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
        self.count(&analyses);
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
        self.count(&analyses);
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
                self.models.for_task(task).map(|tm| ModelInfo {
                    task: task.into(),
                    name: tm.model.name.clone(),
                    version: tm.model.version.clone(),
                    labels: tm.labels().to_vec(),
                    quantization: tm.model.quantization.clone(),
                    max_sequence_length: u32::try_from(tm.model.max_sequence_length)
                        .unwrap_or(u32::MAX),
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
