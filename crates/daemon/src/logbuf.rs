//! A `tracing` writer that feeds formatted log lines into the API's [`LogBuffer`].

use std::sync::Arc;

use modelrunner_api::logs::LogBuffer;
use tracing_subscriber::fmt::MakeWriter;

/// Makes one [`LineWriter`] per event.
#[derive(Clone)]
pub struct Sink(pub Arc<LogBuffer>);

/// Collects one formatted event and hands its lines to the buffer when dropped.
pub struct LineWriter {
    buffer: Arc<LogBuffer>,
    pending: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        // Span fields are formatted once, by the first layer that sees them (the one to
        // stderr, with colours), so escape codes are removed here.
        for line in String::from_utf8_lossy(&self.pending).lines() {
            if !line.is_empty() {
                self.buffer.push(modelrunner_scheduler::strip_ansi(line));
            }
        }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            buffer: self.0.clone(),
            pending: Vec::new(),
        }
    }
}
