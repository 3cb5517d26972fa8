//! Pull and push progress in Docker Model Runner's line format (reference 2.5).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

/// The kind of a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Bytes moved.
    Progress,
    /// Done.
    Success,
    /// Something the user should know; the transfer goes on.
    Warning,
    /// The transfer failed.
    Error,
}

/// Pull or push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Downloading.
    Pull,
    /// Uploading.
    Push,
}

/// One layer's state in a progress line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerProgress {
    /// The layer digest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Its size.
    pub size: u64,
    /// Bytes of it moved so far.
    pub current: u64,
}

/// A progress line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// What this line says.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Human text (clients should render from the numbers).
    pub message: String,
    /// Bytes of the whole artifact.
    pub total: u64,
    /// The layer this line is about.
    pub layer: LayerProgress,
    /// Pull or push.
    pub mode: Mode,
}

impl Progress {
    /// A line without layer figures.
    pub fn plain(kind: Kind, mode: Mode, message: impl Into<String>) -> Progress {
        Progress {
            kind,
            message: message.into(),
            total: 0,
            layer: LayerProgress::default(),
            mode,
        }
    }
}

/// Where progress lines go; `None` drops them.
pub type Sink = Option<UnboundedSender<Progress>>;

/// Reports one layer: at most one line per 100 ms or per MiB, and always the last.
pub struct LayerReporter {
    sink: Sink,
    mode: Mode,
    total: u64,
    id: String,
    size: u64,
    current: u64,
    last_sent: Option<(Instant, u64)>,
}

impl LayerReporter {
    /// A reporter for a layer of `size` bytes in an artifact of `total`.
    pub fn new(sink: Sink, mode: Mode, total: u64, id: String, size: u64) -> Self {
        LayerReporter {
            sink,
            mode,
            total,
            id,
            size,
            current: 0,
            last_sent: None,
        }
    }

    /// Sets the bytes done and reports when due.
    pub fn set(&mut self, current: u64) {
        self.current = current;
        let due = match self.last_sent {
            None => true,
            Some((at, bytes)) => {
                current == self.size
                    || at.elapsed() >= Duration::from_millis(100)
                    || current.saturating_sub(bytes) >= 1 << 20
            }
        };
        if due && self.last_sent.map(|(_, b)| b) != Some(current) {
            self.send();
        }
    }

    /// Adds `n` bytes.
    pub fn add(&mut self, n: u64) {
        self.set(self.current + n);
    }

    /// Reports bytes that throttling held back (call when the transfer pauses).
    pub fn flush(&mut self) {
        if self.last_sent.map(|(_, b)| b) != Some(self.current) {
            self.send();
        }
    }

    fn send(&mut self) {
        self.last_sent = Some((Instant::now(), self.current));
        let verb = match self.mode {
            Mode::Pull => "Downloaded",
            Mode::Push => "Uploaded",
        };
        if let Some(s) = &self.sink {
            let _ = s.send(Progress {
                kind: Kind::Progress,
                message: format!("{verb}: {:.2} MB", self.current as f64 / 1e6),
                total: self.total,
                layer: LayerProgress {
                    id: self.id.clone(),
                    size: self.size,
                    current: self.current,
                },
                mode: self.mode,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_but_the_end_is_always_reported() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut r = LayerReporter::new(Some(tx), Mode::Pull, 10 << 20, "sha256:x".into(), 4 << 20);
        for _ in 0..(4 << 10) {
            r.add(1024);
        }
        let mut lines = Vec::new();
        while let Ok(p) = rx.try_recv() {
            lines.push(p);
        }
        assert!((4..=6).contains(&lines.len()), "{} lines", lines.len());
        let last = lines.last().unwrap();
        assert_eq!(
            (last.layer.current, last.layer.size, last.total),
            (4 << 20, 4 << 20, 10 << 20)
        );
        let json = serde_json::to_string(last).unwrap();
        assert!(json.starts_with(r#"{"type":"progress","message":"Downloaded: 4.19 MB","total":10485760,"layer":{"id":"sha256:x""#), "{json}");
    }
}
