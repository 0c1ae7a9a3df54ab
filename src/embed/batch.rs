//! Dynamic batching of concurrent embedding calls: texts that arrive while a batch is being
//! embedded wait and go together into the next one. One ONNX Runtime call for many short
//! queries costs little more than a call for one, so under concurrent load (the server embeds
//! each request's query text) throughput grows with the batch instead of queueing behind one
//! lock. Calls block, so callers on an async runtime run them on its blocking pool.

use super::{EmbedError, EmbedResult, Embedder};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Most texts embedded in one call of the inner embedder.
pub const MAX_BATCH: usize = 32;

#[derive(Default)]
struct State {
    /// Texts waiting for the next batch, with their ticket.
    queue: Vec<(u64, String)>,
    /// Finished results, by ticket, until their caller takes them.
    done: HashMap<u64, Result<Vec<f32>, String>>,
    /// True while some caller is running a batch.
    busy: bool,
    next_ticket: u64,
}

/// An [`Embedder`] that batches concurrent calls to another one.
pub struct BatchingEmbedder {
    inner: Arc<dyn Embedder>,
    state: Mutex<State>,
    ready: Condvar,
}

impl std::fmt::Debug for BatchingEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingEmbedder")
            .field("model_id", &self.inner.model_id())
            .finish_non_exhaustive()
    }
}

impl BatchingEmbedder {
    /// Batches calls to `inner`.
    pub fn new(inner: Arc<dyn Embedder>) -> Self {
        Self {
            inner,
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        }
    }

    fn poisoned() -> EmbedError {
        EmbedError::Runtime("embedding batcher lock poisoned".into())
    }

    /// Embeds one text, in a batch with whatever else is waiting.
    fn embed_one(&self, text: &str) -> EmbedResult<Vec<f32>> {
        let mut state = self.state.lock().map_err(|_| Self::poisoned())?;
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push((ticket, text.to_owned()));
        loop {
            if let Some(result) = state.done.remove(&ticket) {
                return result.map_err(EmbedError::Runtime);
            }
            if !state.busy {
                // Lead the next batch: take what waits (our text among it), embed without the
                // lock so that new texts can queue meanwhile, then hand out the results.
                state.busy = true;
                let take = state.queue.len().min(MAX_BATCH);
                let batch: Vec<(u64, String)> = state.queue.drain(..take).collect();
                drop(state);
                let texts: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
                let result = self.inner.embed(&texts);
                state = self.state.lock().map_err(|_| Self::poisoned())?;
                state.busy = false;
                match result {
                    Ok(vectors) if vectors.len() == batch.len() => {
                        for ((t, _), v) in batch.iter().zip(vectors) {
                            state.done.insert(*t, Ok(v));
                        }
                    }
                    Ok(vectors) => {
                        let message =
                            format!("{} vectors for {} texts", vectors.len(), batch.len());
                        for (t, _) in &batch {
                            state.done.insert(*t, Err(message.clone()));
                        }
                    }
                    Err(e) => {
                        for (t, _) in &batch {
                            state.done.insert(*t, Err(e.to_string()));
                        }
                    }
                }
                self.ready.notify_all();
                continue;
            }
            state = self.ready.wait(state).map_err(|_| Self::poisoned())?;
        }
    }
}

impl Embedder for BatchingEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>> {
        match texts {
            [one] => Ok(vec![self.embed_one(one)?]),
            // Batches of their own (indexing) go straight through.
            _ => self.inner.embed(texts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Embeds a text as [len, 1] and records the batch sizes it was called with.
    struct Recorder {
        calls: Mutex<Vec<usize>>,
        in_flight: AtomicUsize,
    }

    impl Embedder for Recorder {
        fn model_id(&self) -> &str {
            "recorder"
        }
        fn dim(&self) -> usize {
            2
        }
        fn embed(&self, texts: &[&str]) -> EmbedResult<Vec<Vec<f32>>> {
            assert_eq!(
                self.in_flight.fetch_add(1, Ordering::SeqCst),
                0,
                "one batch at a time"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            self.calls.lock().unwrap().push(texts.len());
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
    }

    #[test]
    fn concurrent_calls_share_batches_and_get_their_own_vectors() {
        let recorder = Arc::new(Recorder {
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        });
        let batcher = Arc::new(BatchingEmbedder::new(recorder.clone()));
        let threads: Vec<_> = (1..=24)
            .map(|n| {
                let batcher = batcher.clone();
                std::thread::spawn(move || {
                    let text = "x".repeat(n);
                    let v = batcher.embed(&[&text]).unwrap();
                    assert_eq!(v, vec![vec![n as f32, 1.0]]);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let calls = recorder.calls.lock().unwrap();
        assert_eq!(calls.iter().sum::<usize>(), 24);
        assert!(calls.len() < 24, "some calls were batched: {calls:?}");
        assert!(calls.iter().all(|&n| n <= MAX_BATCH));
    }
}
