//! The in-process engine handle: a thread running the batch loop, and a bounded channel.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::error::EngineError;
use crate::protocol::{Event, GenerateRequest, Prompt, Props};
use crate::worker::{self, EngineConfig, Job};

/// Requests that may wait for a slot before new ones are refused.
pub const QUEUE_LIMIT: usize = 256;

/// A loaded model. Dropping it stops the engine thread, which frees llama.cpp's handles.
pub struct Engine {
    /// Closed by `Drop`, which ends the engine thread's loop.
    jobs: Option<SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    props: Props,
}

impl Engine {
    /// Loads the model on a dedicated thread.
    pub async fn load(config: EngineConfig) -> Result<Engine, EngineError> {
        let (tx, rx) = sync_channel(QUEUE_LIMIT);
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("llama-engine".into())
            .spawn(move || worker::run(config, rx, ready_tx))
            .map_err(|e| EngineError::Load(e.to_string()))?;
        let props = ready_rx
            .await
            .map_err(|_| EngineError::Load("the engine thread died while loading".into()))??;
        Ok(Engine {
            jobs: Some(tx),
            thread: Some(thread),
            props,
        })
    }

    /// Facts about the loaded model.
    pub fn props(&self) -> &Props {
        &self.props
    }

    fn send(&self, job: Job) -> Result<(), EngineError> {
        let tx = self.jobs.as_ref().expect("open until drop");
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => EngineError::Busy {
                queued: QUEUE_LIMIT,
            },
            TrySendError::Disconnected(_) => EngineError::Stopped("engine thread exited".into()),
        })
    }

    /// Starts a generation; events arrive on the returned receiver. Dropping the receiver
    /// cancels the generation within one decode step.
    pub fn generate(
        &self,
        req: GenerateRequest,
    ) -> Result<mpsc::UnboundedReceiver<Event>, EngineError> {
        req.validate(self.props.n_vocab)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Job::Generate {
            req: Box::new(req),
            events: tx,
            arrived: Instant::now(),
        })?;
        Ok(rx)
    }

    /// Tokenizes text.
    pub async fn tokenize(
        &self,
        text: String,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<i32>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Tokenize {
            text,
            add_special,
            parse_special,
            reply,
        })?;
        rx.await
            .map_err(|_| EngineError::Stopped("engine thread exited".into()))
    }

    /// Turns tokens back into text.
    pub async fn detokenize(&self, tokens: Vec<i32>) -> Result<String, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Detokenize { tokens, reply })?;
        rx.await
            .map_err(|_| EngineError::Stopped("engine thread exited".into()))?
    }

    /// Embeds inputs (embedding mode only); returns unit vectors and token counts.
    pub async fn embed(&self, inputs: Vec<Prompt>) -> Result<Vec<(Vec<f32>, u32)>, EngineError> {
        if !self.props.embeddings {
            return Err(EngineError::InvalidParam {
                param: "model".into(),
                message: "this runner was started for completions, not embeddings".into(),
            });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Job::Embed { inputs, reply })?;
        rx.await
            .map_err(|_| EngineError::Stopped("engine thread exited".into()))?
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Collects a whole generation: text, and the final event.
pub async fn collect(
    mut rx: mpsc::UnboundedReceiver<Event>,
) -> Result<(String, Event), EngineError> {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            done @ Event::Done { .. } => return Ok((text, done)),
            Event::Error { message, .. } => return Err(EngineError::Internal(message)),
        }
    }
    Err(EngineError::Stopped(
        "the stream ended without a result".into(),
    ))
}
