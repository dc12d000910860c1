//! `pulse.v1.InferenceService`: the gRPC face of the engine.
//!
//! [`InferenceApi`] unpacks a request, asks the [`Engine`] (and, by the mode, the
//! [`LlmBackend`]), counts what was answered and packs the response. Engine errors become gRPC
//! statuses in one place, the `From<EngineError> for Status` below.

use std::sync::Arc;

use pulse_proto::v1::{
    Analysis, AnalyzeBatchRequest, AnalyzeBatchResponse, AnalyzeRequest, AnalyzeResponse, Backend,
    GetModelInfoRequest, GetModelInfoResponse, ModelInfo, Task,
    inference_service_server::InferenceService,
};
use tonic::{Request, Response, Status};

use crate::{
    engine::{Engine, EngineError},
    fallback::LlmBackend,
    metrics::InferenceMetrics,
};

/// The status a caller sees for each engine error; the message is the error's own.
impl From<EngineError> for Status {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
        match error {
            EngineError::InvalidInput(_) => Status::invalid_argument(message),
            EngineError::NoModel(_) => Status::failed_precondition(message),
            EngineError::Overloaded { .. } => Status::resource_exhausted(message),
            EngineError::Stopped => Status::unavailable(message),
            EngineError::ModelFailed(_) => Status::internal(message),
        }
    }
}

pub struct InferenceApi {
    engine: Engine,
    llm: Option<LlmBackend>,
    metrics: InferenceMetrics,
    /// The fault-injection marker of `FAULT_FAIL_ON_TEXT`; `None` (the default) injects nothing.
    fail_on_text: Option<String>,
}

impl InferenceApi {
    /// `llm` is `None` in mode `local`.
    pub fn new(engine: Engine, llm: Option<LlmBackend>, metrics: InferenceMetrics) -> Self {
        Self {
            engine,
            llm,
            metrics,
            fail_on_text: None,
        }
    }

    /// Fails every request with a text containing `marker` as a crashing model would (INTERNAL):
    /// a fault-injection hook for tests (`FAULT_FAIL_ON_TEXT`). An empty marker injects nothing.
    pub fn with_fault_fail_on_text(mut self, marker: Option<String>) -> Self {
        self.fail_on_text = marker.filter(|m| !m.is_empty());
        self
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

    /// Validates, runs the local models, then consults the LLM where the mode says so.
    async fn analyze_texts(
        &self,
        texts: Vec<String>,
        requested: &[i32],
    ) -> Result<Vec<Analysis>, EngineError> {
        let jobs = self.engine.jobs(&texts, requested)?;
        if let Some(marker) = &self.fail_on_text
            && let Some(i) = texts.iter().position(|t| t.contains(marker.as_str()))
        {
            tracing::warn!(
                text = i,
                "FAULT_FAIL_ON_TEXT: failing the request on purpose"
            );
            return Err(EngineError::ModelFailed(format!(
                "injected fault: text {i} contains the FAULT_FAIL_ON_TEXT marker"
            )));
        }
        let texts = Arc::new(texts);
        let local = self.engine.analyze_locally(Arc::clone(&texts), &jobs).await;
        match &self.llm {
            None => local,
            Some(llm) => llm.complete(&texts, &jobs, local).await,
        }
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
        let loaded = self.engine.models();
        let models = loaded
            .available_tasks()
            .into_iter()
            .filter_map(|task| {
                loaded.for_task(task).map(|tm| ModelInfo {
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
        let limits = self.engine.limits();
        Ok(Response::new(GetModelInfoResponse {
            models,
            max_batch_size: u32::try_from(limits.max_batch_size).unwrap_or(u32::MAX),
            max_input_chars: u32::try_from(limits.max_input_chars).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn engine_errors_keep_their_codes_and_messages() {
        let cases = [
            (
                EngineError::InvalidInput("text 0 is empty".into()),
                Code::InvalidArgument,
                "text 0 is empty",
            ),
            (
                EngineError::NoModel(Task::Emotion),
                Code::FailedPrecondition,
                "no model is loaded for task TASK_EMOTION",
            ),
            (
                EngineError::Overloaded {
                    queued: 900,
                    limit: 1000,
                },
                Code::ResourceExhausted,
                "the inference queue is full (900 texts waiting, limit 1000)",
            ),
            (
                EngineError::Stopped,
                Code::Unavailable,
                "the batcher has stopped",
            ),
            (
                EngineError::ModelFailed("model m@1 failed: ONNX Runtime: boom".into()),
                Code::Internal,
                "model m@1 failed: ONNX Runtime: boom",
            ),
        ];
        for (error, code, message) in cases {
            let status = Status::from(error);
            assert_eq!((status.code(), status.message()), (code, message));
        }
    }
}
