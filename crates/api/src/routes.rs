//! Every route, once: the router is built from this table and `/openapi.json` is
//! generated from it, so the document cannot miss a route or describe one that is gone.

use std::collections::BTreeMap;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Json;
use serde_json::{json, Value};

use crate::openai::{chat, completions, embeddings, helpers, models as oa_models};
use crate::{engines, logs, metrics, misc, models, registry, AppState};

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

fn r(
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

fn at(path: &str, m: MethodRouter<AppState>) -> Serve {
    Serve::Handler(path.to_string(), Box::new(m))
}

fn via(path: &str) -> Serve {
    Serve::Via(path.to_string())
}

const JSON: &str = "application/json";

/// Where the OpenAI-compatible routes live: OpenAI's own prefix, and Docker Model
/// Runner's two.
pub(crate) const OPENAI_PREFIXES: [&str; 3] = ["/v1", "/engines/v1", "/engines/llama.cpp/v1"];

/// The table.
pub(crate) fn table() -> Vec<Route> {
    use Method as M;
    let mut t = Vec::new();
    for p in OPENAI_PREFIXES {
        let path = |s: &str| format!("{p}{s}");
        let mut chat_route = r(
            M::POST,
            &path("/chat/completions"),
            "openai",
            "Chat completion",
            Some((JSON, "OpenAI chat completion request")),
            at(&path("/chat/completions"), post(chat::chat_completions)),
        );
        chat_route.streams = true;
        t.push(chat_route);
        let mut comp = r(
            M::POST,
            &path("/completions"),
            "openai",
            "Text completion",
            Some((JSON, "OpenAI completion request")),
            at(&path("/completions"), post(completions::completions)),
        );
        comp.streams = true;
        t.push(comp);
        t.push(r(
            M::POST,
            &path("/embeddings"),
            "openai",
            "Embeddings",
            Some((JSON, "OpenAI embeddings request")),
            at(&path("/embeddings"), post(embeddings::embeddings)),
        ));
        t.push(r(
            M::GET,
            &path("/models"),
            "openai",
            "List models",
            None,
            at(&path("/models"), get(oa_models::list)),
        ));
        t.push(r(
            M::GET,
            &path("/models/{name}"),
            "openai",
            "One model",
            None,
            at(&path("/models/{*name}"), get(oa_models::get)),
        ));
        t.push(r(
            M::POST,
            &path("/tokenize"),
            "openai",
            "Tokenize text",
            Some((JSON, "{model, content, add_special, with_pieces}")),
            at(&path("/tokenize"), post(helpers::tokenize)),
        ));
        t.push(r(
            M::POST,
            &path("/detokenize"),
            "openai",
            "Detokenize tokens",
            Some((JSON, "{model, tokens}")),
            at(&path("/detokenize"), post(helpers::detokenize)),
        ));
        t.push(r(
            M::POST,
            &path("/apply-template"),
            "openai",
            "Render a chat template",
            Some((JSON, "{model, messages}")),
            at(&path("/apply-template"), post(helpers::apply_template)),
        ));
    }
    // llama-server's own paths, without a prefix.
    t.push(r(
        M::POST,
        "/tokenize",
        "openai",
        "Tokenize text (llama-server path)",
        Some((JSON, "{model, content}")),
        at("/tokenize", post(helpers::tokenize)),
    ));
    t.push(r(
        M::POST,
        "/detokenize",
        "openai",
        "Detokenize tokens (llama-server path)",
        Some((JSON, "{model, tokens}")),
        at("/detokenize", post(helpers::detokenize)),
    ));
    t.push(r(
        M::POST,
        "/apply-template",
        "openai",
        "Render a chat template (llama-server path)",
        Some((JSON, "{model, messages}")),
        at("/apply-template", post(helpers::apply_template)),
    ));

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
        "/health",
        "daemon",
        "Health (no API key needed)",
        None,
        at("/health", get(misc::health)),
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
        at("/openapi.json", get(openapi_json)),
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

/// The OpenAPI 3.1 document of the table.
pub(crate) fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for route in table() {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"},
                               "description": "a model reference (may contain /)"})
            })
            .collect();
        let mut op = json!({
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": format!("{}{}", route.method.as_str().to_ascii_lowercase(),
                route.path.replace(['/', '{', '}', '.', '-'], "_")),
            "responses": {
                "200": {"description": if route.streams { "OK (a JSON object, or a stream when `stream` is true)" } else { "OK" }},
                "default": {"description": "Error", "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if !params.is_empty() {
            op["parameters"] = json!(params);
        }
        let axum_path = match &route.serve {
            Serve::Handler(p, _) | Serve::Via(p) => p,
        };
        if *axum_path != route.path {
            op["x-route"] = json!(axum_path);
        }
        if let Some((media, what)) = route.body {
            op["requestBody"] = json!({"description": what, "content": {media: {"schema": {"type": if media == JSON { "object" } else { "string" }}}}});
        }
        let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "modelrunnerd",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OpenAI-compatible inference and Docker Model Runner's model API.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "Required when the daemon has API keys (not for /health)"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object",
                "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                               "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}},
        },
    })
}

/// `GET /openapi.json`.
async fn openapi_json() -> impl IntoResponse {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[test]
    fn every_operation_is_in_the_document_and_served_somewhere() {
        let doc = openapi();
        let t = table();
        let served: Vec<String> = t
            .iter()
            .filter_map(|r| match &r.serve {
                Serve::Handler(p, _) => Some(p.clone()),
                Serve::Via(_) => None,
            })
            .collect();
        for route in &t {
            let m = route.method.as_str().to_ascii_lowercase();
            assert!(
                doc["paths"][&route.path][&m].is_object(),
                "{m} {} undocumented",
                route.path
            );
            if let Serve::Via(p) = &route.serve {
                assert!(
                    served.contains(p),
                    "{} is served by {p}, which is not a route",
                    route.path
                );
            }
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|ops| ops.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, t.len(), "one operation per table entry");
    }

    #[tokio::test]
    async fn every_documented_operation_reaches_a_handler() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            std::sync::Arc::new(modelrunner_store::Store::open(&dir.path().join("store")).unwrap());
        let scheduler =
            modelrunner_scheduler::Scheduler::new(modelrunner_scheduler::SchedulerConfig {
                run_dir: dir.path().join("run"),
                ..Default::default()
            })
            .unwrap();
        let registry = modelrunner_registry::Registry::new(Default::default()).unwrap();
        let app = crate::router(AppState::new(
            store,
            scheduler,
            crate::ApiConfig::default(),
            registry,
        ));
        for route in table() {
            let path = route.path.replace("{name}", "m");
            let mut req = Request::builder()
                .method(route.method.clone())
                .uri(&path)
                .header("host", "localhost");
            let body = if route.method == Method::POST {
                req = req.header("content-type", "application/json");
                Body::from("{}")
            } else {
                Body::empty()
            };
            let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
            let status = resp.status();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes);
            assert_ne!(status, 405, "{} {path}: {text}", route.method);
            assert!(
                !text.contains("no route for"),
                "{} {path} fell through: {text}",
                route.method
            );
        }
    }
}
