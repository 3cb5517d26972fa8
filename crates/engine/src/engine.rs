//! The in-process engine handle: a thread running the batch loop behind a bounded
//! channel, and the model's chat template. It is the runner's [`Service`].

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::Instant;

use modelrunner_protocol::server::Service;
use modelrunner_protocol::{
    Chat, EmbedRequest, Embedding, Event, GenerateRequest, Input, Launch, Mode, Prompt, Props,
    RerankRequest, RunnerError, Score, TokenizeRequest,
};
use tokio::sync::{mpsc, oneshot};

use crate::chat::Template;
use crate::worker::{self, load::rss_bytes, Generation, Job, Stats};

/// Requests that may wait for a slot before new ones are refused.
pub const QUEUE_LIMIT: usize = 256;

/// A loaded model. Dropping it stops the engine thread, which frees llama.cpp's handles.
pub struct Engine {
    /// Closed by `Drop`, which ends the engine thread's loop.
    jobs: Option<SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    props: Props,
    template: Template,
}

fn stopped() -> RunnerError {
    RunnerError::internal("the engine thread exited")
}

impl Engine {
    /// Loads the model on a dedicated thread, and its chat template.
    pub async fn load(launch: Launch) -> Result<Engine, RunnerError> {
        let (tx, rx) = sync_channel(QUEUE_LIMIT);
        let (ready_tx, ready_rx) = oneshot::channel();
        let template_file = launch.chat_template.clone();
        let thread = std::thread::Builder::new()
            .name("llama-engine".into())
            .spawn(move || worker::run(launch, rx, ready_tx))
            .map_err(|e| RunnerError::Load {
                message: e.to_string(),
            })?;
        let props = ready_rx.await.map_err(|_| RunnerError::Load {
            message: "the engine thread died while loading".into(),
        })??;
        let template = Template::choose(template_file.as_deref(), &props)?;
        let props = Props {
            chat_format: template.family().name().to_string(),
            ..props
        };
        let engine = Engine {
            jobs: Some(tx),
            thread: Some(thread),
            props,
            template,
        };
        engine.send(Job::Preserve(engine.template.markers()))?;
        Ok(engine)
    }

    /// Facts about the loaded model.
    pub fn props(&self) -> &Props {
        &self.props
    }

    fn send(&self, job: Job) -> Result<(), RunnerError> {
        let tx = self.jobs.as_ref().expect("open until drop");
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => RunnerError::Busy {
                queued: QUEUE_LIMIT,
            },
            TrySendError::Disconnected(_) => stopped(),
        })
    }

    /// What the engine thread is doing (answered between decode steps).
    pub async fn stats(&self) -> Result<Stats, RunnerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Stats(reply))?;
        rx.await.map_err(|_| stopped())
    }

    /// The prompt a conversation renders to.
    pub fn apply_template(&self, chat: &Chat) -> Result<String, RunnerError> {
        Ok(self.template.render(chat)?.prompt)
    }

    /// Starts a generation (a conversation is rendered first); events arrive on the
    /// returned receiver. Dropping the receiver cancels the generation within one decode
    /// step. The request is assumed validated ([`GenerateRequest::validate`]); only what
    /// needs the model is checked here.
    pub fn generate(
        &self,
        req: GenerateRequest,
    ) -> Result<mpsc::UnboundedReceiver<Event>, RunnerError> {
        if self.props.mode != Mode::Completion {
            return Err(self.wrong_mode("completions"));
        }
        let arrived = Instant::now();
        let (prompt, add_special, format, tools) = match req.input {
            Input::Prompt {
                prompt,
                add_special,
            } => (prompt, add_special, None, None),
            Input::Chat(chat) => {
                let r = self.template.render(&chat)?;
                (Prompt::Text(r.prompt), r.add_special, r.format, r.tools)
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Job::Generate(Box::new(Generation {
            prompt,
            add_special,
            options: req.options,
            events: tx,
            arrived,
            format,
            tools,
        })))?;
        Ok(rx)
    }

    /// Tokenizes text (special tokens' text becomes those tokens).
    pub async fn tokenize(&self, text: String, add_special: bool) -> Result<Vec<i32>, RunnerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Tokenize {
            text,
            add_special,
            reply,
        })?;
        rx.await.map_err(|_| stopped())
    }

    /// Turns tokens back into text.
    pub async fn detokenize(&self, tokens: Vec<i32>) -> Result<String, RunnerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Detokenize { tokens, reply })?;
        rx.await.map_err(|_| stopped())?
    }

    /// Embeds inputs (embedding mode only): unit vectors with token counts.
    pub async fn embed(&self, inputs: Vec<Prompt>) -> Result<Vec<Embedding>, RunnerError> {
        if self.props.mode != Mode::Embedding {
            return Err(self.wrong_mode("embeddings"));
        }
        let (reply, rx) = oneshot::channel();
        self.send(Job::Embed { inputs, reply })?;
        rx.await.map_err(|_| stopped())?
    }

    /// Scores documents against a query (reranking mode only), in order.
    pub async fn rerank(&self, req: RerankRequest) -> Result<Vec<Score>, RunnerError> {
        if self.props.mode != Mode::Reranking {
            return Err(self.wrong_mode("reranking scores"));
        }
        let (reply, rx) = oneshot::channel();
        self.send(Job::Rerank {
            query: req.query,
            documents: req.documents,
            reply,
        })?;
        rx.await.map_err(|_| stopped())?
    }

    fn wrong_mode(&self, wanted: &str) -> RunnerError {
        RunnerError::invalid(
            "model",
            format!(
                "this runner was started in {} mode; it gives no {wanted}",
                self.props.mode
            ),
        )
    }
}

impl Service for Engine {
    fn props(&self) -> Props {
        Props {
            rss_bytes: rss_bytes(),
            ..self.props.clone()
        }
    }

    fn generate(
        &self,
        req: GenerateRequest,
    ) -> Result<mpsc::UnboundedReceiver<Event>, RunnerError> {
        Engine::generate(self, req)
    }

    fn apply_template(&self, chat: &Chat) -> Result<String, RunnerError> {
        Engine::apply_template(self, chat)
    }

    async fn tokenize(&self, req: TokenizeRequest) -> Result<Vec<i32>, RunnerError> {
        if let Some(chat) = req.chat {
            let r = self.template.render(&chat)?;
            return Engine::tokenize(self, r.prompt, r.add_special).await;
        }
        Engine::tokenize(self, req.content, req.add_special).await
    }

    async fn detokenize(&self, tokens: Vec<i32>) -> Result<String, RunnerError> {
        Engine::detokenize(self, tokens).await
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Vec<Embedding>, RunnerError> {
        Engine::embed(self, req.input).await
    }

    async fn rerank(&self, req: RerankRequest) -> Result<Vec<Score>, RunnerError> {
        Engine::rerank(self, req).await
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
) -> Result<(String, Event), RunnerError> {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Started { .. } | Event::Reasoning { .. } | Event::ToolCall { .. } => {}
            done @ Event::Done { .. } => return Ok((text, done)),
            Event::Error { error } => return Err(error),
        }
    }
    Err(RunnerError::internal("the stream ended without a result"))
}
