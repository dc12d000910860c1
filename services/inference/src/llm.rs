//! The external LLM, through any OpenAI-compatible chat API (`async-openai`).
//!
//! The model is asked for a strict JSON object, `{"label": "<one of the labels>", "confidence":
//! <0..1>}`, which is validated before use; anything else counts as a failure. Every call has a
//! deadline and a bounded number of retries, and a circuit breaker stops calling an endpoint that
//! keeps failing, so a dead API costs nothing after a few failures. Callers fall back to the
//! local model whenever this returns an error.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use async_openai::{
    Client,
    config::OpenAIConfig,
    middleware::ReqwestService,
    types::chat::{
        ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
        ChatCompletionRequestUserMessage, CreateChatCompletionRequest, ResponseFormat,
    },
};

/// Settings of the LLM backend.
#[derive(Clone)]
pub struct LlmSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: String,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls before it lets one through.
    pub breaker_cooldown: Duration,
}

impl std::fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("LlmSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("circuit open after repeated failures")]
    CircuitOpen,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("invalid answer: {0}")]
    InvalidAnswer(String),
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// A validated LLM answer: probabilities in the order of the labels asked about.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmAnswer {
    pub probabilities: Vec<f32>,
}

pub struct LlmClassifier {
    client: Client<OpenAIConfig>,
    settings: LlmSettings,
    breaker: Mutex<Breaker>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    label: String,
    confidence: f32,
}

/// Parses and checks an answer against `labels`.
pub fn parse_answer(content: &str, labels: &[String]) -> Result<LlmAnswer, LlmError> {
    let raw: RawAnswer = serde_json::from_str(content.trim())
        .map_err(|e| LlmError::InvalidAnswer(format!("not the expected JSON object: {e}")))?;
    let label = raw.label.trim().to_lowercase();
    let index = labels
        .iter()
        .position(|l| *l == label)
        .ok_or_else(|| LlmError::InvalidAnswer(format!("unknown label {:?}", raw.label)))?;
    if !(0.0..=1.0).contains(&raw.confidence) || raw.confidence.is_nan() {
        return Err(LlmError::InvalidAnswer(format!(
            "confidence {} is outside 0..1",
            raw.confidence
        )));
    }
    // The remaining mass is spread evenly: the LLM names one label, not a distribution.
    let others = labels.len().saturating_sub(1).max(1);
    #[allow(clippy::cast_precision_loss)]
    let rest = (1.0 - raw.confidence) / others as f32;
    let probabilities = (0..labels.len())
        .map(|i| if i == index { raw.confidence } else { rest })
        .collect();
    Ok(LlmAnswer { probabilities })
}

impl LlmClassifier {
    pub fn new(settings: LlmSettings) -> Self {
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.clone())
            .with_api_key(settings.api_key.clone());
        // async-openai retries 5xx and 429 on its own by default; this module owns the retry
        // policy (bounded, inside the deadline), so the client sends each request once.
        let transport = ReqwestService::new(reqwest::Client::new());
        Self {
            client: Client::with_config(config).with_http_service(transport),
            settings,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    fn allow(&self) -> bool {
        let Ok(mut breaker) = self.breaker.lock() else {
            return false;
        };
        match breaker.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                // Half-open: let this call through; one more failure re-opens at once.
                breaker.open_until = None;
                breaker.failures = self.settings.breaker_threshold.saturating_sub(1);
                true
            }
            None => true,
        }
    }

    fn record(&self, ok: bool) {
        if let Ok(mut breaker) = self.breaker.lock() {
            if ok {
                *breaker = Breaker::default();
            } else {
                breaker.failures += 1;
                if breaker.failures >= self.settings.breaker_threshold {
                    breaker.open_until = Some(Instant::now() + self.settings.breaker_cooldown);
                    tracing::warn!(cooldown = ?self.settings.breaker_cooldown, "LLM circuit opened");
                }
            }
        }
    }

    /// Classifies `text` into one of `labels` for `task_name` ("sentiment", "emotion").
    pub async fn classify(
        &self,
        text: &str,
        task_name: &str,
        labels: &[String],
    ) -> Result<LlmAnswer, LlmError> {
        if !self.allow() {
            return Err(LlmError::CircuitOpen);
        }
        let mut last = LlmError::Request("no attempt made".into());
        for attempt in 0..=self.settings.max_retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt.min(5)))).await;
            }
            match tokio::time::timeout(self.settings.timeout, self.ask(text, task_name, labels))
                .await
            {
                Ok(Ok(answer)) => {
                    self.record(true);
                    return Ok(answer);
                }
                // A well-formed but wrong answer will not improve by asking again.
                Ok(Err(e @ LlmError::InvalidAnswer(_))) => {
                    self.record(false);
                    return Err(e);
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = LlmError::Timeout(self.settings.timeout),
            }
        }
        self.record(false);
        Err(last)
    }

    async fn ask(
        &self,
        text: &str,
        task_name: &str,
        labels: &[String],
    ) -> Result<LlmAnswer, LlmError> {
        let system = format!(
            "You classify the {task_name} of social-media posts. Answer with one JSON object and \
             nothing else: {{\"label\": <one of {labels:?}>, \"confidence\": <number from 0 to 1>}}."
        );
        let request = CreateChatCompletionRequest {
            model: self.settings.model.clone(),
            messages: vec![
                ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(
                    system.as_str(),
                )),
                ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(text)),
            ],
            response_format: Some(ResponseFormat::JsonObject),
            temperature: Some(0.0),
            ..CreateChatCompletionRequest::default()
        };
        let response = self
            .client
            .chat()
            .create(request)
            .await
            .map_err(|e| LlmError::Request(e.to_string()))?;
        let content = response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| LlmError::InvalidAnswer("no content".into()))?;
        parse_answer(&content, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["negative", "neutral", "positive"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn strict_answers_only() {
        let ok = parse_answer(r#" {"label": "Positive", "confidence": 0.8} "#, &labels())
            .expect("valid");
        assert_eq!(ok.probabilities.len(), 3);
        assert!((ok.probabilities[2] - 0.8).abs() < 1e-6);
        assert!((ok.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for bad in [
            "positive",
            r#"{"label": "happy", "confidence": 0.8}"#,
            r#"{"label": "positive", "confidence": 1.5}"#,
            r#"{"label": "positive"}"#,
            r#"{"label": "positive", "confidence": 0.5, "extra": 1}"#,
            r#"```json {"label": "positive", "confidence": 0.5}```"#,
        ] {
            assert!(
                matches!(
                    parse_answer(bad, &labels()),
                    Err(LlmError::InvalidAnswer(_))
                ),
                "{bad}"
            );
        }
    }
}
