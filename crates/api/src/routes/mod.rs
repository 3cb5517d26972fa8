//! Every route, once: the router is built from this table and `/openapi.json` is
//! generated from it (`openapi`), so the document cannot miss a route or describe one
//! that is gone. Each dialect contributes its entries (`openai::routes`); Docker Model
//! Runner's model and engine API and the daemon's own routes are listed here.

use std::collections::BTreeMap;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, post, MethodRouter};

use crate::{engines, logs, metrics, misc, models, registry, AppState};

mod openapi;

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
    pub serve: Serve,
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
    use Method as M;
    let mut t = crate::openai::routes::table();
    t.extend(crate::anthropic::table());
    t.extend(crate::responses::table());
    t.extend(crate::ollama::routes::table());
    t.extend(crate::llama::routes::table());
    t.push(r(
        M::GET,
        "/engines/ps",
        "engines",
        "Running models",
        None,
        at("/engines/ps", get(engines::ps)),
    ));
    t.push(r(
        M::GET,
        "/engines/status",
        "engines",
        "Backend status",
        None,
        at("/engines/status", get(engines::status)),
    ));
    t.push(r(
        M::POST,
        "/engines/unload",
        "engines",
        "Unload idle models",
        Some((JSON, "{all, models}")),
        at("/engines/unload", post(engines::unload)),
    ));
    for p in ["/engines/_configure", "/engines/llama.cpp/_configure"] {
        t.push(r(
            M::POST,
            p,
            "engines",
            "Configure a model's runtime (context size, slots, keep-alive, flags)",
            Some((JSON, "Docker Model Runner ConfigureRequest")),
            at(p, post(engines::configure)),
        ));
        t.push(r(
            M::GET,
            p,
            "engines",
            "Saved runtime configurations",
            None,
            at(p, get(engines::configurations)),
        ));
    }
    t.push(r(
        M::GET,
        "/engines/df",
        "engines",
        "Disk usage",
        None,
        at("/engines/df", get(misc::disk_usage)),
    ));

    t.push(r(
        M::GET,
        "/models",
        "models",
        "List local models",
        None,
        at("/models", get(models::list_models)),
    ));
    t.push(r(
        M::POST,
        "/models/create",
        "models",
        "Pull a model from a registry (streams progress lines)",
        Some((JSON, "{from, bearer-token}")),
        at("/models/create", post(registry::create)),
    ));
    t.push(r(
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
    ));
    t.push(r(
        M::DELETE,
        "/models/purge",
        "models",
        "Remove every model",
        None,
        at("/models/purge", delete(models::purge_models)),
    ));
    let wildcard = "/models/{*rest}";
    t.push(r(
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
    ));
    t.push(r(
        M::GET,
        "/models/{name}/export",
        "models",
        "Export a model as a tar archive",
        None,
        via(wildcard),
    ));
    t.push(r(
        M::POST,
        "/models/{name}/tag",
        "models",
        "Tag a model (?repo=&tag=)",
        None,
        via(wildcard),
    ));
    t.push(r(
        M::POST,
        "/models/{name}/push",
        "models",
        "Push a model to its registry (streams progress lines)",
        Some((JSON, "{bearer-token} (optional)")),
        via(wildcard),
    ));
    t.push(r(
        M::DELETE,
        "/models/{name}",
        "models",
        "Remove a tag, or a model by ID (?force)",
        None,
        via(wildcard),
    ));

    t.push(r(
        M::GET,
        "/",
        "daemon",
        "Liveness line",
        None,
        at("/", get(misc::root)),
    ));
    t.push(r(
        M::GET,
        "/version",
        "daemon",
        "Daemon version",
        None,
        at("/version", get(misc::version)),
    ));
    t.push(r(
        M::GET,
        "/metrics",
        "daemon",
        "Prometheus metrics",
        None,
        at("/metrics", get(metrics::metrics)),
    ));
    t.push(r(
        M::GET,
        "/logs",
        "daemon",
        "Recent log lines (?follow=true, ?tail=N)",
        None,
        at("/logs", get(logs::logs)),
    ));
    t.push(r(
        M::GET,
        "/openapi.json",
        "daemon",
        "This document",
        None,
        at("/openapi.json", get(openapi::openapi_json)),
    ));
    t
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
