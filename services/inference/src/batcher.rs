//! The dynamic batcher: one queue shared by every connection, one thread running the models.
//!
//! Requests are tokenized by their callers and queued with their token counts. The runner
//! thread takes every queued request (up to `max_batch_texts`), waits up to `max_wait` for more
//! when the queue ran dry early, then, per model, sorts the texts by length and cuts them into
//! runs whose padded size (texts × longest) stays within `max_batch_tokens`, so short texts are
//! not padded to a long one. While a batch runs, new requests queue up and form the next batch:
//! under load, batches grow by themselves. The queue is bounded in texts; a request that would
//! overflow it is refused at once ([`BatchError::Full`]) instead of waiting without limit.
//!
//! The batcher knows nothing of gRPC: it answers with a [`BatchError`], which the engine turns
//! into its own error (`crate::engine::EngineError`).

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex},
    thread,
    time::{Duration, Instant},
};

use tokenizers::Encoding;
use tokio::sync::oneshot;

use crate::{
    metrics::InferenceMetrics,
    model::{Classifier, HeadScores},
};

/// How the runner forms batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Most texts taken from the queue for one batch.
    pub max_batch_texts: usize,
    /// Most padded tokens (texts × longest) in one model run.
    pub max_batch_tokens: usize,
    /// How long the runner waits for more requests when the queue ran dry early.
    pub max_wait: Duration,
    /// Most texts waiting in the queue; more are refused.
    pub max_queued_texts: usize,
}

/// One model's work within a request: which task it answers and the tokenized texts.
pub struct ModelWork {
    pub model: Arc<Classifier>,
    pub encodings: Vec<Encoding>,
}

/// What a request gets back: per model in request order, per text, every head's label
/// probabilities, and the time the batch's runs took.
#[derive(Debug)]
pub struct BatchReply {
    pub probabilities: Vec<Vec<HeadScores>>,
    pub queue: Duration,
    pub inference: Duration,
    /// Texts in the batch this request ran in (across all requests).
    pub batch_texts: usize,
}

struct Job {
    work: Vec<ModelWork>,
    texts: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Result<BatchReply, BatchError>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    texts: usize,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// Why a request got no results.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Refused: queuing it would overflow the queue.
    #[error("the inference queue is full ({queued} texts waiting, limit {limit})")]
    Full { queued: usize, limit: usize },
    /// Refused, or dropped unanswered: the runner has stopped.
    #[error("the batcher has stopped")]
    Stopped,
    /// Queued and run, but a model run over its texts failed.
    #[error("model {model} failed: {reason}")]
    ModelFailed { model: String, reason: String },
}

/// Handle to the batcher; cheap to clone. The runner thread stops when the last handle drops.
#[derive(Clone)]
pub struct Batcher {
    shared: Arc<Shared>,
    policy: BatchPolicy,
    _owner: Arc<Owner>,
}

/// Closes the queue when the last [`Batcher`] handle goes away.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.0.queue.lock() {
            queue.closed = true;
        }
        self.0.ready.notify_all();
    }
}

impl Batcher {
    /// Starts the runner thread.
    pub fn start(policy: BatchPolicy, metrics: InferenceMetrics) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        let runner = Arc::clone(&shared);
        thread::Builder::new()
            .name("pulse-batcher".into())
            .spawn(move || run(&runner, policy, &metrics))?;
        Ok(Self {
            _owner: Arc::new(Owner(Arc::clone(&shared))),
            shared,
            policy,
        })
    }

    /// Texts waiting now.
    pub fn queued_texts(&self) -> usize {
        self.shared.queue.lock().map_or(0, |q| q.texts)
    }

    /// Queues `work` (all entries over the same texts) and waits for its results.
    pub async fn submit(&self, work: Vec<ModelWork>) -> Result<BatchReply, BatchError> {
        let texts = work.first().map_or(0, |w| w.encodings.len());
        let (tx, rx) = oneshot::channel();
        {
            let mut queue = self.shared.queue.lock().map_err(|_| BatchError::Stopped)?;
            if queue.closed {
                return Err(BatchError::Stopped);
            }
            if queue.texts + texts > self.policy.max_queued_texts && !queue.jobs.is_empty() {
                return Err(BatchError::Full {
                    queued: queue.texts,
                    limit: self.policy.max_queued_texts,
                });
            }
            queue.texts += texts;
            queue.jobs.push_back(Job {
                work,
                texts,
                enqueued: Instant::now(),
                reply: tx,
            });
        }
        self.shared.ready.notify_one();
        // A dropped sender means the runner went away without answering.
        rx.await.unwrap_or(Err(BatchError::Stopped))
    }
}

/// Takes the next batch, blocking until there is one; `None` once closed and drained.
fn take_batch(shared: &Shared, policy: BatchPolicy) -> Option<Vec<Job>> {
    let mut queue = shared.queue.lock().ok()?;
    while queue.jobs.is_empty() {
        if queue.closed {
            return None;
        }
        queue = shared.ready.wait(queue).ok()?;
    }
    let mut batch = Vec::new();
    let mut texts = 0;
    let deadline = Instant::now() + policy.max_wait;
    loop {
        while let Some(job) = queue.jobs.front() {
            if !batch.is_empty() && texts + job.texts > policy.max_batch_texts {
                break;
            }
            texts += job.texts;
            queue.texts -= job.texts;
            batch.extend(queue.jobs.pop_front());
        }
        let now = Instant::now();
        if texts >= policy.max_batch_texts
            || !queue.jobs.is_empty()
            || now >= deadline
            || queue.closed
        {
            return Some(batch);
        }
        queue = shared.ready.wait_timeout(queue, deadline - now).ok()?.0;
    }
}

fn run(shared: &Shared, policy: BatchPolicy, metrics: &InferenceMetrics) {
    while let Some(jobs) = take_batch(shared, policy) {
        if let Ok(queue) = shared.queue.lock() {
            metrics
                .queued_texts
                .set(i64::try_from(queue.texts).unwrap_or(i64::MAX));
        }
        execute(jobs, policy, metrics);
    }
}

/// One text of one job for one model.
struct Slot {
    job: usize,
    work: usize,
    text: usize,
    len: usize,
}

fn execute(jobs: Vec<Job>, policy: BatchPolicy, metrics: &InferenceMetrics) {
    let started = Instant::now();
    let batch_texts = jobs.iter().map(|j| j.texts).sum();
    let mut results: Vec<Result<Vec<Vec<HeadScores>>, BatchError>> = jobs
        .iter()
        .map(|job| {
            Ok(job
                .work
                .iter()
                .map(|w| vec![Vec::new(); w.encodings.len()])
                .collect())
        })
        .collect();
    let mut inference: Vec<Duration> = vec![Duration::ZERO; jobs.len()];

    // Group the slots by model (by identity), so each model runs once per chunk of texts.
    let mut models: Vec<(Arc<Classifier>, Vec<Slot>)> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for (w, work) in job.work.iter().enumerate() {
            let slots = match models.iter_mut().find(|(m, _)| Arc::ptr_eq(m, &work.model)) {
                Some((_, slots)) => slots,
                None => {
                    models.push((Arc::clone(&work.model), Vec::new()));
                    match models.last_mut() {
                        Some((_, slots)) => slots,
                        None => continue,
                    }
                }
            };
            slots.extend(work.encodings.iter().enumerate().map(|(t, e)| Slot {
                job: j,
                work: w,
                text: t,
                len: e.len(),
            }));
        }
    }

    for (model, mut slots) in models {
        slots.sort_by_key(|s| s.len);
        let mut start = 0;
        while start < slots.len() {
            // Sorted ascending, so the last slot taken is the longest: grow while it fits.
            let mut end = start + 1;
            while end < slots.len()
                && end - start < policy.max_batch_texts
                && (end + 1 - start) * slots[end].len.max(1) <= policy.max_batch_tokens
            {
                end += 1;
            }
            let chunk = &slots[start..end];
            let encodings: Vec<&Encoding> = chunk
                .iter()
                .map(|s| &jobs[s.job].work[s.work].encodings[s.text])
                .collect();
            let run_started = Instant::now();
            let outcome = model.run(&encodings);
            let elapsed = run_started.elapsed();
            let model_id = model.id();
            metrics.batch_texts.observe(chunk.len() as f64);
            metrics
                .inference_seconds
                .with_label_values(&[model_id.as_str()])
                .observe(elapsed.as_secs_f64());
            match outcome {
                Ok(probabilities) => {
                    for (slot, p) in chunk.iter().zip(probabilities) {
                        if let Ok(per_work) = &mut results[slot.job] {
                            per_work[slot.work][slot.text] = p;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, model = %model.id(), "model run failed");
                    for slot in chunk {
                        results[slot.job] = Err(BatchError::ModelFailed {
                            model: model.id(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            let mut seen: Vec<usize> = chunk.iter().map(|s| s.job).collect();
            seen.sort_unstable();
            seen.dedup();
            for j in seen {
                inference[j] += elapsed;
            }
            start = end;
        }
    }

    for ((job, result), inference) in jobs.into_iter().zip(results).zip(inference) {
        let queue = started.saturating_duration_since(job.enqueued);
        for work in &job.work {
            metrics
                .queue_seconds
                .with_label_values(&[work.model.id().as_str()])
                .observe(queue.as_secs_f64());
        }
        // The caller may have gone (deadline, cancellation): nothing to do then.
        let _ = job.reply.send(result.map(|probabilities| BatchReply {
            probabilities,
            queue,
            inference,
            batch_texts,
        }));
    }
}
