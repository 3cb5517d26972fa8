//! `modelrunner logs [-f] [--tail N]`: the daemon's log, runner output included.

use std::io::Write;

use anyhow::Context;
use futures::StreamExt;
use reqwest::Method;

use crate::client::Client;

/// Prints the log; with `follow`, keeps printing new lines until interrupted.
pub async fn logs(c: &Client, follow: bool, tail: Option<usize>) -> anyhow::Result<()> {
    let mut path = format!("/logs?follow={follow}");
    if let Some(n) = tail {
        path.push_str(&format!("&tail={n}"));
    }
    let resp = c.send(c.request(Method::GET, &path)).await?;
    let mut body = resp.bytes_stream();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("while reading the daemon's log")?;
        if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
            // The reader went away (`| head`): not an error.
            return Ok(());
        }
    }
    Ok(())
}
