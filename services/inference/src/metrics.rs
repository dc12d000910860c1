//! The inference service's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct InferenceMetrics {
    /// Texts answered, by task and backend (`local`, `llm`).
    pub texts: IntCounterVec,
    /// Time requests waited for the batcher, by model.
    pub queue_seconds: HistogramVec,
    /// Model run time, by model.
    pub inference_seconds: HistogramVec,
    /// Texts per model run.
    pub batch_texts: Histogram,
    /// Texts waiting for the batcher.
    pub queued_texts: IntGauge,
    /// Requests refused because the queue was full.
    pub overloaded: prometheus::IntCounter,
    /// LLM calls by outcome (`ok`, `invalid`, `timeout`, `error`, `circuit_open`).
    pub llm_calls: IntCounterVec,
    /// Results the LLM was asked for but the local model answered, by reason.
    pub llm_fallbacks: IntCounterVec,
}

impl InferenceMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let seconds = prometheus::exponential_buckets(0.0001, 2.0, 18)?;
        let texts = IntCounterVec::new(
            Opts::new(
                "pulse_inference_texts_total",
                "Texts answered, by task and backend",
            ),
            &["task", "backend"],
        )?;
        let queue_seconds = HistogramVec::new(
            HistogramOpts::new(
                "pulse_inference_queue_seconds",
                "Time waited for the batcher",
            )
            .buckets(seconds.clone()),
            &["model"],
        )?;
        let inference_seconds = HistogramVec::new(
            HistogramOpts::new("pulse_inference_run_seconds", "Model run time per batch")
                .buckets(seconds),
            &["model"],
        )?;
        let batch_texts = Histogram::with_opts(
            HistogramOpts::new("pulse_inference_batch_texts", "Texts per model run")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        let queued_texts = IntGauge::new(
            "pulse_inference_queued_texts",
            "Texts waiting for the batcher",
        )?;
        let overloaded = prometheus::IntCounter::new(
            "pulse_inference_overloaded_total",
            "Requests refused with RESOURCE_EXHAUSTED because the queue was full",
        )?;
        let llm_calls = IntCounterVec::new(
            Opts::new("pulse_llm_calls_total", "LLM calls by outcome"),
            &["outcome"],
        )?;
        let llm_fallbacks = IntCounterVec::new(
            Opts::new(
                "pulse_llm_fallbacks_total",
                "Local answers kept after the LLM was asked, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(texts.clone()))?;
        registry.register(Box::new(queue_seconds.clone()))?;
        registry.register(Box::new(inference_seconds.clone()))?;
        registry.register(Box::new(batch_texts.clone()))?;
        registry.register(Box::new(queued_texts.clone()))?;
        registry.register(Box::new(overloaded.clone()))?;
        registry.register(Box::new(llm_calls.clone()))?;
        registry.register(Box::new(llm_fallbacks.clone()))?;
        Ok(Self {
            texts,
            queue_seconds,
            inference_seconds,
            batch_texts,
            queued_texts,
            overloaded,
            llm_calls,
            llm_fallbacks,
        })
    }
}
