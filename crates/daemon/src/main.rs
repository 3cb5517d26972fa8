//! modelrunnerd: wiring only. Configuration, logging, the store, the HTTP server.

mod access;
mod config;
mod logbuf;
mod notify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use modelrunner_api::logs::LogBuffer;
use modelrunner_api::{router, ApiConfig, AppState};
use modelrunner_registry::Registry;
use modelrunner_scheduler::{Scheduler, SchedulerConfig};
use modelrunner_store::Store;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use config::{Command, Config, LogFormat};

/// Sets up logging to stderr and into the buffer `GET /logs` serves (without colours).
fn init_logging(format: LogFormat, level: &str) -> Arc<LogBuffer> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // RUST_LOG, when set, wins over --log-level.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let buffer = Arc::new(LogBuffer::new(10_000));
    let (to_stderr, to_buffer) = match format {
        LogFormat::Text => (
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .boxed(),
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(logbuf::Sink(buffer.clone()))
                .boxed(),
        ),
        LogFormat::Json => (
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(logbuf::Sink(buffer.clone()))
                .boxed(),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(to_stderr)
        .with(to_buffer)
        .init();
    buffer
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    info!("shutting down: no new connections; waiting for requests in flight");
}

/// Where runner sockets live: `<store>/run`, unless that path is too long for a Unix
/// socket address (108 bytes), then a directory under /tmp named after the store.
fn run_dir(store: &Path) -> PathBuf {
    let dir = store.join("run");
    if dir.as_os_str().len() + 40 < 108 {
        return dir;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(store, &mut h);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!(
        "modelrunner-{uid}-{:016x}",
        std::hash::Hasher::finish(&h)
    ))
}

fn scheduler_config(config: &Config) -> anyhow::Result<SchedulerConfig> {
    let s = &config.serving;
    Ok(SchedulerConfig {
        program: match &s.runner_program {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("while finding the modelrunnerd binary")?,
        },
        run_dir: run_dir(&config.store),
        settings_file: Some(config.store.join("engines.json")),
        keep_alive: s.keep_alive,
        runner: modelrunner_protocol::Settings {
            parallel: Some(s.parallel),
            threads: s.threads,
            gpu_layers: Some(s.gpu_layers),
            ..Default::default()
        },
        max_queue: s.max_queue,
        memory_limit: s.memory_limit.map(|m| m.0),
        default_context: s.default_context,
        gpu: cfg!(feature = "cuda"),
        health_interval: s.health_interval.0,
        ..SchedulerConfig::default()
    })
}

async fn serve(config: Config, log_buffer: Arc<LogBuffer>) -> anyhow::Result<()> {
    let store = tokio::task::spawn_blocking({
        let root = config.store.clone();
        move || Store::open(&root)
    })
    .await?
    .with_context(|| format!("while opening the store at {}", config.store.display()))?;
    let scheduler =
        Scheduler::new(scheduler_config(&config)?).context("while starting the model scheduler")?;
    let listens: Vec<std::net::SocketAddr> = [config.access.listen.0, config.access.ollama_listen]
        .into_iter()
        .flatten()
        .collect();
    let api = ApiConfig {
        body_limit: config.storage.body_limit,
        load_limit: config.storage.max_load_size,
        pull_on_first_use: config.storage.pull_on_first_use.map(|s| s.0),
        loopback_hosts_only: listens.iter().all(|a| a.ip().is_loopback()),
        api_keys: config.api_keys.clone(),
        cors_origins: config.access.cors_origins.clone(),
        reasoning_format: match config.serving.reasoning_format {
            config::Reasoning::Auto => modelrunner_protocol::ReasoningFormat::Auto,
            config::Reasoning::None => modelrunner_protocol::ReasoningFormat::None,
        },
        responses_dir: Some(config.store.join("responses")),
        responses_limits: modelrunner_api::ResponsesLimits {
            max_count: config.storage.responses_max_count,
            max_bytes: config.storage.responses_max_bytes,
            max_age: config.storage.responses_max_age.0,
        },
    };
    let registry =
        Registry::new(config.registries.clone()).context("while setting up the registry client")?;
    let state =
        AppState::new(Arc::new(store), scheduler.clone(), api, registry).with_logs(log_buffer);
    state.preload(
        config.storage.models_dir.clone(),
        config.serving.prefetch.clone(),
        config.serving.preload.clone(),
    );
    let app = router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let limits = modelrunner_api::ConnLimits {
        header_timeout: config.storage.header_timeout.0,
        body_timeout: config.storage.body_timeout.0,
        max_connections: config.storage.max_connections,
    };
    let mut servers = Vec::new();
    for listen in listens {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("while binding {listen}"))?;
        let addr = listener.local_addr()?;
        info!(%addr, store = %config.store.display(), "listening");
        // A machine-readable line for scripts and tests that bind port 0.
        println!("listening on http://{addr}");
        servers.push(tokio::spawn(modelrunner_api::run(
            listener,
            app.clone(),
            limits,
            stopped(),
        )));
    }
    if let Some(path) = &config.access.socket {
        let listener = bind_unix(path)?;
        info!(socket = %path.display(), "listening");
        println!("listening on unix://{}", path.display());
        servers.push(tokio::spawn(modelrunner_api::run_unix(
            listener,
            app.clone(),
            limits,
            stopped(),
        )));
    }
    notify::ready();
    shutdown_signal().await;
    notify::stopping();
    let _ = stop_tx.send(true);
    let all = futures::future::join_all(servers);
    match tokio::time::timeout(config.serving.shutdown_timeout.0, all).await {
        Ok(results) => {
            for r in results {
                r??;
            }
        }
        Err(_) => {
            warn!(timeout = %config.serving.shutdown_timeout, "requests still running at the shutdown timeout; stopping them")
        }
    }
    if let Some(path) = &config.access.socket {
        let _ = std::fs::remove_file(path);
    }
    scheduler.shutdown().await;
    info!("stopped");
    Ok(())
}

/// Binds the daemon's Unix socket: a stale socket file from an earlier run is replaced
/// (anything else at the path is an error), and the socket gets mode 0660 so that the
/// daemon's group may use it.
fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("while removing the stale socket {}", path.display()))?,
        Ok(_) => anyhow::bail!(
            "--socket (socket) {} exists and is not a socket",
            path.display()
        ),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("while binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("while setting the mode of {}", path.display()))?;
    Ok(listener)
}

/// The hidden runner subcommand: one model, served on a Unix socket.
/// The async runtime of the daemon and of runners: one thread. Their async work is
/// light (HTTP, proxying tokens; blocking store work and llama.cpp have threads of their
/// own), and with one thread a token crossing a process wakes one thread, not a pool:
/// measured 40% more single-stream tokens/s on a tiny model on 2 cores than the
/// multi-threaded runtime. It also keeps every runner spawn on this long-lived thread,
/// which the parent-death signal follows.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs the hidden `runner-baseline` subcommand: the runner's runtime and llama.cpp's
/// backend without a model; prints the resident memory.
fn runner_baseline() -> std::process::ExitCode {
    let rt = runtime();
    match rt.block_on(async { modelrunner_engine::baseline_rss() }) {
        Ok(b) => {
            println!("{b}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("modelrunnerd runner-baseline: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_runner(launch: modelrunner_protocol::Launch) -> std::process::ExitCode {
    let rt = runtime();
    match rt.block_on(modelrunner_engine::runner::serve(launch)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}{e:#}", modelrunner_scheduler::RUNNER_FAILURE_PREFIX);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `fsck` or `gc` on the store; returns whether the store is healthy.
fn maintain(config: &Config, m: Command) -> anyhow::Result<bool> {
    let store = Store::open(&config.store).with_context(|| {
        format!(
            "while opening the store at {} (is modelrunnerd running?)",
            config.store.display()
        )
    })?;
    match m {
        Command::Fsck { repair } => {
            let r = store.fsck(repair)?;
            println!("checked {} blobs", r.blobs_checked);
            for d in &r.corrupt_blobs {
                println!("corrupt blob {d}{}", if repair { " (removed)" } else { "" });
            }
            for (d, file) in &r.changed_links {
                let bad = r.corrupt_blobs.contains(d);
                println!(
                    "linked file {} changed since it was linked (blob {d}){}",
                    file.display(),
                    match (bad, repair) {
                        (true, true) => ": its bytes no longer verify; the store's link was removed, the file left alone",
                        (true, false) => ": its bytes no longer verify",
                        (false, true) => ": touched, bytes intact; recorded anew",
                        (false, false) => ": touched, bytes intact (--repair records it anew)",
                    }
                );
            }
            for f in &r.stray_files {
                println!("stray file {f}{}", if repair { " (removed)" } else { "" });
            }
            for (id, why) in &r.broken_models {
                println!("broken model {id}: {why}");
            }
            println!(
                "{}",
                if r.is_clean() {
                    "store is clean"
                } else {
                    "store has problems"
                }
            );
            Ok(r.is_clean())
        }
        Command::Runner { .. } | Command::RunnerBaseline | Command::HashKey { .. } => {
            unreachable!("handled before")
        }
        Command::Gc => {
            let r = store.gc()?;
            println!(
                "removed {} blobs and {} manifests, {} bytes freed",
                r.blobs_removed.len(),
                r.manifests_removed.len(),
                r.bytes_freed
            );
            Ok(true)
        }
    }
}

fn main() -> std::process::ExitCode {
    let (matches, mut args) = Config::args();
    let command = args.command.take();
    if let Some(Command::HashKey { generate }) = command {
        return match access::hash_key(generate) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("modelrunnerd: {e:#}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let config = match Config::resolve(&matches, &args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("modelrunnerd: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if matches!(command, Some(Command::RunnerBaseline)) {
        return runner_baseline();
    }
    if args.print_config {
        print!("{}", toml::to_string(&config).expect("config serialises"));
        return std::process::ExitCode::SUCCESS;
    }
    let log_buffer = init_logging(config.logging.log_format, &config.logging.log_level);
    match command {
        Some(Command::Runner { launch }) => run_runner(*launch),
        Some(m) => match maintain(&config, m) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("modelrunnerd: {e:#}");
                std::process::ExitCode::from(2)
            }
        },
        None => match runtime().block_on(serve(config, log_buffer)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("modelrunnerd: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
