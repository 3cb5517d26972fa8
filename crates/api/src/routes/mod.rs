//! Every route, once: the router is built from this table and `/openapi.json` is
//! generated from it (`openapi`), so the document cannot miss a route or describe one
//! that is gone. Each dialect contributes its entries (`openai::routes`); Docker Model
//! Runner's model and engine API and the daemon's own routes are listed here.

use std::collections::BTreeMap;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, post, MethodRouter};

use crate::{engines, logs, metrics, misc, models, registry, ui, AppState};

mod openapi;
mod schemas;

/// How a documented operation is served.
pub(crate) enum Serve {
    /// By this handler at this axum path.
    Handler(String, Box<MethodRouter<AppState>>),
    /// By the handler of another entry at this axum path (a wildcard route that
    /// dispatches on the rest of the path).
    Via(String),
}

/// One documented operation.
pub(crate) struct Route {
    pub method: Method,
    /// The OpenAPI path, e.g. `/models/{name}/push`.
    pub path: String,
    pub summary: &'static str,
    pub tag: &'static str,
    /// The request body, when there is one: its media type and a description.
    pub body: Option<(&'static str, &'static str)>,
    /// Whether the answer streams (server-sent events or progress lines) on request.
    pub streams: bool,
    /// The component schema of a JSON request body (`schemas`).
    pub takes: Option<&'static str>,
    /// What a successful answer is.
    pub gives: Option<Answer>,
    /// Query parameters.
    pub query: &'static [Query],
    /// Answers besides success and the dialect's error: status and component schema.
    pub also: &'static [(u16, &'static str)],
    pub serve: Serve,
}

/// A query parameter: its name, JSON Schema type, and whether it is required.
pub(crate) type Query = (&'static str, &'static str, bool);

/// What a successful answer carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// A JSON body of this component schema, with status 200.
    Json(&'static str),
    /// A JSON body of this component schema, with this status.
    JsonAt(u16, &'static str),
    /// A body of another media type.
    Media(&'static str),
    /// No body, with this status.
    Empty(u16),
}

impl Route {
    /// The request body's component schema.
    pub(crate) fn takes(mut self, schema: &'static str) -> Self {
        self.takes = Some(schema);
        self
    }

    /// The successful answer.
    pub(crate) fn gives(mut self, answer: Answer) -> Self {
        self.gives = Some(answer);
        self
    }

    /// The query parameters.
    pub(crate) fn query(mut self, params: &'static [Query]) -> Self {
        self.query = params;
        self
    }

    /// Answers besides success and the dialect's error.
    pub(crate) fn also(mut self, answers: &'static [(u16, &'static str)]) -> Self {
        self.also = answers;
        self
    }

    /// Streams on request (server-sent events, or NDJSON in Ollama's dialect).
    pub(crate) fn streaming(mut self) -> Self {
        self.streams = true;
        self
    }
}

pub(crate) fn r(
    method: Method,
    path: &str,
    tag: &'static str,
    summary: &'static str,
    body: Option<(&'static str, &'static str)>,
    serve: Serve,
) -> Route {
    Route {
        method,
        path: path.to_string(),
        summary,
        tag,
        body,
        streams: false,
        takes: None,
        gives: None,
        query: &[],
        also: &[],
        serve,
    }
}

pub(crate) fn at(path: &str, m: MethodRouter<AppState>) -> Serve {
    Serve::Handler(path.to_string(), Box::new(m))
}

pub(crate) fn via(path: &str) -> Serve {
    Serve::Via(path.to_string())
}

pub(crate) const JSON: &str = "application/json";

/// The table.
pub(crate) fn table() -> Vec<Route> {
    use Answer::*;
    use Method as M;
    let mut t = crate::openai::routes::table();
    t.extend(crate::anthropic::table());
    t.extend(crate::responses::table());
    t.extend(crate::ollama::routes::table());
    t.extend(crate::llama::routes::table());
    t.push(
        r(
            M::GET,
            "/engines/ps",
            "engines",
            "Running models",
            None,
            at("/engines/ps", get(engines::ps)),
        )
        .gives(Json("RunningModels")),
    );
    t.push(
        r(
            M::GET,
            "/engines/status",
            "engines",
            "Backend status",
            None,
            at("/engines/status", get(engines::status)),
        )
        .gives(Json("EngineStatus")),
    );
    t.push(
        r(
            M::POST,
            "/engines/unload",
            "engines",
            "Unload idle models",
            Some((JSON, "{all, models}")),
            at("/engines/unload", post(engines::unload)),
        )
        .takes("UnloadRequest")
        .gives(Json("Unloaded")),
    );
    for p in ["/engines/_configure", "/engines/llama.cpp/_configure"] {
        t.push(
            r(
                M::POST,
                p,
                "engines",
                "Configure a model's runtime (context size, slots, keep-alive, flags)",
                Some((JSON, "Docker Model Runner ConfigureRequest")),
                at(p, post(engines::configure)),
            )
            .takes("ConfigureRequest")
            .gives(JsonAt(202, "Message")),
        );
        t.push(
            r(
                M::GET,
                p,
                "engines",
                "Saved runtime configurations",
                None,
                at(p, get(engines::configurations)),
            )
            .gives(Json("Configurations")),
        );
    }
    t.push(
        r(
            M::GET,
            "/engines/df",
            "engines",
            "Disk usage",
            None,
            at("/engines/df", get(misc::disk_usage)),
        )
        .gives(Json("DiskUsage")),
    );

    t.push(
        r(
            M::GET,
            "/models",
            "models",
            "List local models",
            None,
            at("/models", get(models::list_models)),
        )
        .gives(Json("LocalModels")),
    );
    t.push(
        r(
            M::POST,
            "/models/create",
            "models",
            "Pull a model from a registry (streams progress lines)",
            Some((JSON, "{from, bearer-token}")),
            at("/models/create", post(registry::create)),
        )
        .takes("CreateRequest")
        .gives(Media("application/json")),
    );
    t.push(
        r(
            M::POST,
            "/models/load",
            "models",
            "Load a model archive (tar)",
            Some((
                "application/x-tar",
                "blobs/sha256/... and manifest.json last",
            )),
            at(
                "/models/load",
                post(models::load_model).layer(DefaultBodyLimit::disable()),
            ),
        )
        .query(&[("link", "string", false), ("allow_copy", "boolean", false)])
        .gives(Json("Loaded")),
    );
    t.push(
        r(
            M::DELETE,
            "/models/purge",
            "models",
            "Remove every model",
            None,
            at("/models/purge", delete(models::purge_models)),
        )
        .gives(Empty(200)),
    );
    let wildcard = "/models/{*rest}";
    t.push(
        r(
            M::GET,
            "/models/{name}",
            "models",
            "One local model (?remote=true: from its registry)",
            None,
            at(
                wildcard,
                get(models::get_or_export)
                    .post(models::post_model_action)
                    .delete(models::delete_model),
            ),
        )
        .gives(Json("LocalModel")),
    );
    t.push(
        r(
            M::GET,
            "/models/{name}/export",
            "models",
            "Export a model as a tar archive",
            None,
            via(wildcard),
        )
        .gives(Media("application/x-tar")),
    );
    t.push(
        r(
            M::POST,
            "/models/{name}/tag",
            "models",
            "Tag a model (?repo=&tag=)",
            None,
            via(wildcard),
        )
        .query(&[("repo", "string", true), ("tag", "string", true)])
        .gives(JsonAt(201, "Tagged")),
    );
    t.push(
        r(
            M::POST,
            "/models/{name}/push",
            "models",
            "Push a model to its registry (streams progress lines)",
            Some((JSON, "{bearer-token} (optional)")),
            via(wildcard),
        )
        .takes("PushRequest")
        .gives(Media("application/json")),
    );
    t.push(
        r(
            M::DELETE,
            "/models/{name}",
            "models",
            "Remove a tag, or a model by ID (?force)",
            None,
            via(wildcard),
        )
        .query(&[("force", "boolean", false)])
        .gives(Json("Removed")),
    );

    t.push(
        r(
            M::GET,
            "/",
            "daemon",
            "Liveness line; the chat page when the client accepts text/html",
            None,
            at("/", get(ui::root)),
        )
        .gives(Media("text/plain")),
    );
    t.push(
        r(
            M::GET,
            "/ui/{file}",
            "daemon",
            "A file of the chat page (script, style sheet, icon)",
            None,
            at("/ui/{file}", get(ui::file)),
        )
        .gives(Media("text/javascript")),
    );
    t.push(
        r(
            M::GET,
            "/version",
            "daemon",
            "Daemon version",
            None,
            at("/version", get(misc::version)),
        )
        .gives(Json("Version")),
    );
    t.push(
        r(
            M::GET,
            "/metrics",
            "daemon",
            "Prometheus metrics",
            None,
            at("/metrics", get(metrics::metrics)),
        )
        .gives(Media("text/plain")),
    );
    t.push(
        r(
            M::GET,
            "/logs",
            "daemon",
            "Recent log lines (?follow=true, ?tail=N)",
            None,
            at("/logs", get(logs::logs)),
        )
        .query(&[("tail", "integer", false)])
        .gives(Media("text/plain")),
    );
    t.push(
        r(
            M::GET,
            "/openapi.json",
            "daemon",
            "This document",
            None,
            at("/openapi.json", get(openapi::openapi_json)),
        )
        .gives(Json("OpenApi")),
    );
    t
}

/// The methods the table answers at `path` (for a 405's message), in table order.
pub(crate) fn methods_at(path: &str) -> Vec<Method> {
    static PATTERNS: std::sync::OnceLock<Vec<(Vec<String>, Method)>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        table()
            .into_iter()
            .map(|r| (r.path.split('/').map(String::from).collect(), r.method))
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    let mut out: Vec<Method> = Vec::new();
    for (pattern, method) in patterns {
        if matches(pattern, &segments) && !out.contains(method) {
            out.push(method.clone());
        }
    }
    out
}

/// Whether `segments` fit `pattern`, where `{x}` stands for one or more segments (a
/// model reference may contain `/`).
fn matches(pattern: &[String], segments: &[&str]) -> bool {
    match (pattern.split_first(), segments.split_first()) {
        (None, None) => true,
        (Some((p, rest)), Some((s, more))) if p.starts_with('{') => {
            !s.is_empty() && (matches(rest, more) || matches(pattern, more))
        }
        (Some((p, rest)), Some((s, more))) => p == s && matches(rest, more),
        _ => false,
    }
}

/// The axum routes of the table, methods merged per path.
pub(crate) fn routes() -> BTreeMap<String, MethodRouter<AppState>> {
    let mut by_path: BTreeMap<String, MethodRouter<AppState>> = BTreeMap::new();
    for route in table() {
        if let Serve::Handler(path, m) = route.serve {
            let merged = match by_path.remove(&path) {
                Some(existing) => existing.merge(*m),
                None => *m,
            };
            by_path.insert(path, merged);
        }
    }
    by_path
}
