//! The runner process: one model, served over a Unix socket to the daemon with the
//! protocol's routes. A crash here (a panic, a llama.cpp abort) ends only this process.

use std::sync::Arc;
use std::time::Duration;

use modelrunner_protocol::{Launch, RunnerError};
use tracing::info;

use crate::engine::Engine;

/// Loads the model the launch describes and serves it until the parent goes away.
pub async fn serve(launch: Launch) -> Result<(), RunnerError> {
    let socket = launch.socket.clone();
    let engine = Engine::load(launch).await?;
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).map_err(|e| {
        tracing::warn!(socket = %socket.display(), cause = %e, "cannot bind the runner's socket");
        RunnerError::Load {
            message: format!("cannot listen on the runner's socket: {e}"),
        }
    })?;
    info!(socket = %socket.display(), "runner ready");
    let parent = std::os::unix::process::parent_id();
    let orphaned = async move {
        // PR_SET_PDEATHSIG is the main guard; this catches a parent that died before it
        // was set.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if std::os::unix::process::parent_id() != parent {
                info!("parent exited; runner stopping");
                return;
            }
        }
    };
    modelrunner_protocol::server::serve(listener, Arc::new(engine), orphaned)
        .await
        .map_err(|e| RunnerError::internal(e.to_string()))
}
