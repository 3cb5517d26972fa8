//! The typed client of one runner's socket: one method per runner operation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RunnerError;
use crate::event::{
    answers, EmbedRequest, Embedding, Event, Props, RerankRequest, Score, TokenizeRequest,
};
use crate::request::{Chat, GenerateRequest};
use crate::routes;

/// A client of one runner's socket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RunnerClient {
    socket: PathBuf,
}

/// The connection half of a request to the runner: it does the socket I/O and must be
/// polled while the response is read.
type Conn = std::pin::Pin<Box<dyn std::future::Future<Output = hyper::Result<()>> + Send>>;

/// Sends one request on a fresh connection; returns the response head and the
/// connection, which the caller polls (itself, or on a task) while it reads the body.
async fn send_on(
    socket: &Path,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(hyper::Response<hyper::body::Incoming>, Conn), RunnerError> {
    let stream =
        tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| RunnerError::Unreachable {
                message: e.to_string(),
            })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| RunnerError::Unreachable {
            message: e.to_string(),
        })?;
    let mut conn: Conn = Box::pin(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "runner")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request builds");
    let gone = |e: hyper::Error| RunnerError::Interrupted {
        message: e.to_string(),
    };
    let response = sender.send_request(req);
    tokio::pin!(response);
    let resp = tokio::select! {
        r = &mut response => r.map_err(gone)?,
        r = &mut conn => {
            r.map_err(gone)?;
            return Err(RunnerError::Interrupted { message: "the runner closed the connection".into() });
        }
    };
    Ok((resp, conn))
}

async fn read_body(resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, RunnerError> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|e| RunnerError::Interrupted {
            message: e.to_string(),
        })?
        .to_bytes())
}

impl RunnerClient {
    /// A client for the runner at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        RunnerClient {
            socket: socket.into(),
        }
    }

    /// Calls a JSON route and reads its typed answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, RunnerError> {
        let body = body.map_or_else(Vec::new, |b| serde_json::to_vec(b).expect("serialises"));
        let (resp, conn) = send_on(&self.socket, method, path, body).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let status = resp.status();
        let bytes = read_body(resp).await?;
        if !status.is_success() {
            return Err(RunnerError::from_body(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| RunnerError::internal(format!("a malformed answer to {path}: {e}")))
    }

    /// Whether the runner answers within `timeout`.
    pub async fn healthy(&self, timeout: Duration) -> bool {
        let check = self.call::<answers::Health>(Method::GET, routes::HEALTH, None::<&()>);
        matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(_)))
    }

    /// What the runner serves.
    pub async fn props(&self) -> Result<Props, RunnerError> {
        self.call(Method::GET, routes::PROPS, None::<&()>).await
    }

    /// The prompt a conversation renders to, exactly as a generation would feed it.
    pub async fn apply_template(&self, chat: &Chat) -> Result<String, RunnerError> {
        let r: answers::Rendered = self
            .call(Method::POST, routes::APPLY_TEMPLATE, Some(chat))
            .await?;
        Ok(r.prompt)
    }

    /// Text into token IDs.
    pub async fn tokenize(&self, req: &TokenizeRequest) -> Result<Vec<i32>, RunnerError> {
        let r: answers::Tokens = self.call(Method::POST, routes::TOKENIZE, Some(req)).await?;
        Ok(r.tokens)
    }

    /// Token IDs into text.
    pub async fn detokenize(&self, tokens: &[i32]) -> Result<String, RunnerError> {
        let body = answers::Detokenize {
            tokens: tokens.to_vec(),
        };
        let r: answers::Content = self
            .call(Method::POST, routes::DETOKENIZE, Some(&body))
            .await?;
        Ok(r.content)
    }

    /// Embeddings of the inputs (a runner in embedding mode), one per input, in order.
    pub async fn embed(&self, req: &EmbedRequest) -> Result<Vec<Embedding>, RunnerError> {
        let r: answers::Embeddings = self.call(Method::POST, routes::EMBED, Some(req)).await?;
        if r.data.len() != req.input.len() {
            return Err(RunnerError::internal(format!(
                "the runner gave {} embeddings for {} inputs",
                r.data.len(),
                req.input.len()
            )));
        }
        Ok(r.data)
    }

    /// Relevance scores of the documents for the query (a runner in reranking mode), one
    /// per document, in order.
    pub async fn rerank(&self, req: &RerankRequest) -> Result<Vec<Score>, RunnerError> {
        let r: answers::Scores = self.call(Method::POST, routes::RERANK, Some(req)).await?;
        if r.data.len() != req.documents.len() {
            return Err(RunnerError::internal(format!(
                "the runner gave {} scores for {} documents",
                r.data.len(),
                req.documents.len()
            )));
        }
        Ok(r.data)
    }

    /// Starts a generation. A request the runner refuses at once is an error here; a
    /// runner that dies mid-way ends the stream with an `Error` event. Dropping the
    /// stream cancels the generation.
    pub async fn generate(
        &self,
        req: &GenerateRequest,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, RunnerError> {
        let body = serde_json::to_vec(req).expect("serialises");
        let (resp, conn) = send_on(&self.socket, Method::POST, routes::GENERATE, body).await?;
        if !resp.status().is_success() {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let status = resp.status().as_u16();
            return Err(RunnerError::from_body(status, &read_body(resp).await?));
        }
        Ok(events(resp.into_body(), conn))
    }
}

/// The NDJSON events of a response body. The connection is polled by the stream itself,
/// not on a task of its own: each token then wakes one task instead of two (this runs
/// for every token).
fn events(body: hyper::body::Incoming, conn: Conn) -> impl Stream<Item = Event> + Send + 'static {
    let interrupted = |message: String| Event::Error {
        error: RunnerError::Interrupted { message },
    };
    futures::stream::unfold(
        (body, Vec::new(), false, Some(conn)),
        move |(mut body, mut buf, done, mut conn)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let ev = Event::from_line(&line);
                    let end = ev.is_last();
                    return Some((ev, (body, buf, end, conn)));
                }
                let frame = match conn.as_mut() {
                    Some(c) => tokio::select! {
                        biased;
                        f = body.frame() => f,
                        _ = c => {
                            // The connection is done; the body holds what is left.
                            conn = None;
                            continue;
                        }
                    },
                    None => body.frame().await,
                };
                match frame {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            buf.extend_from_slice(d);
                        }
                    }
                    Some(Err(e)) => {
                        let ev = interrupted(format!("mid-stream: {e}"));
                        return Some((ev, (body, buf, true, conn)));
                    }
                    None => {
                        let ev = interrupted("the stream ended without a result".into());
                        return Some((ev, (body, buf, true, conn)));
                    }
                }
            }
        },
    )
}
