//! `GET /logs`: the daemon's recent log lines (runner output included, tagged by model),
//! and with `?follow=true` the new ones as they come.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::State;

use crate::extract::ApiQuery;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::{ApiError, AppState};

/// The last lines of the log, and a channel of new ones.
pub struct LogBuffer {
    lines: Mutex<VecDeque<String>>,
    capacity: usize,
    tx: broadcast::Sender<String>,
}

impl LogBuffer {
    /// Keeps the last `capacity` lines.
    pub fn new(capacity: usize) -> LogBuffer {
        let (tx, _) = broadcast::channel(1024);
        LogBuffer {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity,
            tx,
        }
    }

    /// Adds one line (without its newline).
    pub fn push(&self, line: String) {
        let mut l = self.lines.lock().unwrap();
        if l.len() == self.capacity {
            l.pop_front();
        }
        l.push_back(line.clone());
        drop(l);
        let _ = self.tx.send(line);
    }

    fn tail(&self, n: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap();
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }
}

/// `GET /logs` query.
#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    #[serde(default)]
    follow: Option<String>,
    #[serde(default)]
    tail: Option<usize>,
}

/// `GET /logs[?follow=true][&tail=N]`.
pub(crate) async fn logs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Response, ApiError> {
    let Some(buffer) = state.logs.clone() else {
        return Err(ApiError::not_found("this daemon keeps no log buffer"));
    };
    let follow = q
        .follow
        .as_deref()
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1");
    // Subscribe before reading the tail, so no line falls between them.
    let rx = buffer.tx.subscribe();
    let mut head = String::new();
    for l in buffer.tail(q.tail.unwrap_or(usize::MAX)) {
        head.push_str(&l);
        head.push('\n');
    }
    let content = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !follow {
        return Ok((content, head).into_response());
    }
    let first =
        futures::stream::once(async move { Ok::<_, std::convert::Infallible>(Bytes::from(head)) });
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        let text = match rx.recv().await {
            Ok(line) => line + "\n",
            Err(broadcast::error::RecvError::Lagged(n)) => format!("... {n} lines skipped ...\n"),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(Bytes::from(text)), rx))
    });
    use futures::StreamExt;
    Ok((content, Body::from_stream(first.chain(rest))).into_response())
}

#[cfg(test)]
mod tests {
    use super::LogBuffer;

    #[test]
    fn the_buffer_keeps_the_last_lines() {
        let b = LogBuffer::new(3);
        for i in 0..5 {
            b.push(format!("line {i}"));
        }
        assert_eq!(b.tail(10), vec!["line 2", "line 3", "line 4"]);
        assert_eq!(b.tail(1), vec!["line 4"]);
    }
}
