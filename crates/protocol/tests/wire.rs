//! Both ends of the protocol over a real Unix socket: a stand-in service (the engine
//! needs llama.cpp; this needs nothing) behind `server::serve`, and the typed client.
//! Every answer and every kind of error must arrive as it was sent.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use modelrunner_protocol::server::{serve, Service};
use modelrunner_protocol::{
    Chat, EmbedRequest, Embedding, Event, FinishReason, GenerateRequest, Input, Mode, Prompt,
    Props, RerankRequest, RunnerClient, RunnerError, Score, Timings, TokenizeRequest, Usage,
};

struct Stand;

fn props() -> Props {
    Props {
        slot_context: 64,
        slots: 2,
        trained_context: 128,
        n_vocab: 10,
        n_embd: 3,
        n_params: 1,
        model_bytes: 2,
        rss_bytes: 3,
        threads: 1,
        mode: Mode::Completion,
        chat_template: "t".into(),
        chat_format: "generic".into(),
        bos_token: "<s>".into(),
        eos_token: "</s>".into(),
    }
}

impl Service for Stand {
    fn props(&self) -> Props {
        props()
    }

    fn generate(
        &self,
        req: GenerateRequest,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<Event>, RunnerError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        match req.input {
            Input::Prompt {
                prompt: Prompt::Text(t),
                ..
            } if t == "busy" => return Err(RunnerError::Busy { queued: 17 }),
            Input::Prompt {
                prompt: Prompt::Text(t),
                ..
            } if t == "fail" => {
                let _ = tx.send(Event::Token {
                    text: "a".into(),
                    token: 1,
                    logprobs: None,
                });
                let _ = tx.send(Event::Error {
                    error: RunnerError::internal("decode failed"),
                });
            }
            _ => {
                for (i, t) in ["Once", " upon"].iter().enumerate() {
                    let _ = tx.send(Event::Token {
                        text: (*t).into(),
                        token: i as i32,
                        logprobs: None,
                    });
                }
                let _ = tx.send(Event::Done {
                    finish_reason: FinishReason::Length,
                    stop: None,
                    usage: Usage {
                        prompt_tokens: 3,
                        cached_tokens: 1,
                        completion_tokens: 2,
                    },
                    timings: Timings::default(),
                });
            }
        }
        Ok(rx)
    }

    fn apply_template(&self, chat: &Chat) -> Result<String, RunnerError> {
        if chat.messages.len() > 1 {
            return Err(RunnerError::Template {
                message: "one message only".into(),
            });
        }
        Ok(format!("<{}>", chat.messages.len()))
    }

    async fn tokenize(&self, req: TokenizeRequest) -> Result<Vec<i32>, RunnerError> {
        Ok(req.content.bytes().map(i32::from).collect())
    }

    async fn detokenize(&self, tokens: Vec<i32>) -> Result<String, RunnerError> {
        if tokens.iter().any(|t| *t >= 10) {
            return Err(RunnerError::invalid("tokens", "not in the vocabulary"));
        }
        Ok(format!("{tokens:?}"))
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Vec<Embedding>, RunnerError> {
        // One too few: the client must notice.
        Ok(req
            .input
            .iter()
            .skip(1)
            .map(|_| Embedding {
                embedding: vec![1.0],
                tokens: 1,
            })
            .collect())
    }

    async fn rerank(&self, req: RerankRequest) -> Result<Vec<Score>, RunnerError> {
        if req.query.is_empty() {
            return Err(RunnerError::invalid("query", "empty"));
        }
        // One score per document, the first scored by the query's length.
        Ok(req
            .documents
            .iter()
            .map(|d| Score {
                score: (req.query.len() * d.len()) as f32,
                tokens: (req.query.len() + d.len()) as u32,
            })
            .take(if req.query == "short" { 1 } else { usize::MAX })
            .collect())
    }
}

#[tokio::test]
async fn every_operation_and_error_crosses_the_socket_intact() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("r.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(serve(listener, Arc::new(Stand), std::future::pending()));
    let c = RunnerClient::new(&socket);
    assert!(c.healthy(Duration::from_secs(5)).await);
    assert_eq!(c.props().await.unwrap(), props());
    let events: Vec<Event> = c
        .generate(&GenerateRequest::text("x"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(events.len(), 3);
    assert!(matches!(&events[2], Event::Done { usage, .. } if usage.cached_tokens == 1));
    // The queue length reaches the client (it used to arrive as 0).
    let busy = c
        .generate(&GenerateRequest::text("busy"))
        .await
        .err()
        .unwrap();
    assert_eq!(busy, RunnerError::Busy { queued: 17 });
    let events: Vec<Event> = c
        .generate(&GenerateRequest::text("fail"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        events.last(),
        Some(&Event::Error {
            error: RunnerError::internal("decode failed")
        })
    );
    let one = Chat::new(vec![serde_json::json!({"role": "user"})]);
    assert_eq!(c.apply_template(&one).await.unwrap(), "<1>");
    let two = Chat::new(vec![serde_json::json!({}), serde_json::json!({})]);
    assert!(matches!(
        c.apply_template(&two).await,
        Err(RunnerError::Template { .. })
    ));
    let t = c
        .tokenize(&TokenizeRequest {
            content: "ab".into(),
            add_special: false,
            chat: None,
        })
        .await
        .unwrap();
    assert_eq!(t, vec![97, 98]);
    assert_eq!(c.detokenize(&[1, 2]).await.unwrap(), "[1, 2]");
    assert_eq!(
        c.detokenize(&[11]).await.err().unwrap(),
        RunnerError::invalid("tokens", "not in the vocabulary")
    );
    let e = c
        .embed(&EmbedRequest {
            input: vec![Prompt::Text("a".into()), Prompt::Text("b".into())],
        })
        .await;
    assert!(matches!(e, Err(RunnerError::Internal { .. })), "{e:?}");
    let docs = vec!["xy".to_string(), "xyz".to_string()];
    let scores = c
        .rerank(&RerankRequest {
            query: "qq".into(),
            documents: docs.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        scores.iter().map(|s| s.score).collect::<Vec<_>>(),
        [4.0, 6.0]
    );
    assert_eq!(scores[1].tokens, 5);
    let e = c
        .rerank(&RerankRequest {
            query: String::new(),
            documents: docs.clone(),
        })
        .await;
    assert_eq!(e, Err(RunnerError::invalid("query", "empty")));
    // A short answer is the runner's fault, noticed by the client.
    let e = c
        .rerank(&RerankRequest {
            query: "short".into(),
            documents: docs,
        })
        .await;
    assert!(matches!(e, Err(RunnerError::Internal { .. })), "{e:?}");
}

#[tokio::test]
async fn a_runner_that_is_not_there_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let c = RunnerClient::new(dir.path().join("none.sock"));
    let e = c.props().await.err().unwrap();
    assert!(
        e.is_runner_gone() && matches!(e, RunnerError::Unreachable { .. }),
        "{e:?}"
    );
    assert!(!c.healthy(Duration::from_millis(200)).await);
}
