//! The OpenAPI 3.1 document of the route table.

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::{schemas, table, Answer, Route, Serve, JSON};
use crate::dialect::Dialect;

/// The JSON Schema component of each dialect's error envelope.
fn error_schema(path: &str) -> &'static str {
    match Dialect::of_path(path) {
        Dialect::OpenAi => "Error",
        Dialect::Anthropic => "AnthropicError",
        Dialect::Ollama => "OllamaError",
    }
}

/// The `responses` object of an operation.
fn responses(route: &Route) -> Value {
    let stream_media = match Dialect::of_path(&route.path) {
        Dialect::Ollama => "application/x-ndjson",
        _ => "text/event-stream",
    };
    let json_body = |name: &str| {
        let mut content = json!({ JSON: {"schema": schemas::to(name)} });
        if route.streams {
            content[stream_media] = json!({"schema": {"type": "string"}});
        }
        content
    };
    let description = if route.streams {
        "OK (a JSON object, or a stream when `stream` is true)"
    } else {
        "OK"
    };
    let (status, ok) = match route.gives {
        Some(Answer::Json(name)) => (
            200,
            json!({"description": description, "content": json_body(name)}),
        ),
        Some(Answer::JsonAt(status, name)) => (
            status,
            json!({"description": description, "content": json_body(name)}),
        ),
        Some(Answer::Media(media)) => (
            200,
            json!({"description": description, "content": {media: {}}}),
        ),
        Some(Answer::Empty(status)) => (status, json!({"description": description})),
        None => (200, json!({"description": description})),
    };
    let mut all = json!({
        status.to_string(): ok,
        "default": {"description": "Error", "content": {JSON: {"schema": schemas::to(error_schema(&route.path))}}},
    });
    for (status, name) in route.also {
        all[status.to_string()] =
            json!({"description": name, "content": {JSON: {"schema": schemas::to(name)}}});
    }
    all
}

/// The parameters of an operation: its path's, then its query's.
fn parameters(route: &Route) -> Vec<Value> {
    let path = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let what = match name {
                "name" => "a model reference (may contain /)",
                "id" => "a stored response's ID",
                _ => "a blob digest, sha256:<hex>",
            };
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}, "description": what})
        });
    let query = route.query.iter().map(|(name, kind, required)| {
        json!({"name": name, "in": "query", "required": required, "schema": {"type": kind}})
    });
    path.chain(query).collect()
}

/// The OpenAPI 3.1 document of the table.
pub(crate) fn openapi() -> Value {
    let components = schemas::components();
    let mut paths = serde_json::Map::new();
    for route in table() {
        let mut op = json!({
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": format!("{}{}", route.method.as_str().to_ascii_lowercase(),
                route.path.replace(['/', '{', '}', '.', '-'], "_")),
            "responses": responses(&route),
        });
        let params = parameters(&route);
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
            let schema = match route.takes {
                Some(name) => schemas::to(name),
                None => json!({"type": "string", "format": "binary"}),
            };
            // A body is required when its schema requires a field.
            let required = route.takes.is_none_or(|name| {
                components[name]["required"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
            });
            op["requestBody"] = json!({"description": what, "required": required, "content": {media: {"schema": schema}}});
        }
        let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "modelrunnerd",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OpenAI-, Anthropic-, Ollama- and llama-server-compatible inference, and Docker Model Runner's model API.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "Required when the daemon has API keys (not for /health)"}},
            "schemas": components,
        },
    })
}

/// `GET /openapi.json`.
pub(crate) async fn openapi_json() -> impl IntoResponse {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppState;
    use axum::body::Body;
    use axum::http::Method;
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

    /// Every `$ref` in `v`.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_operation_has_its_schemas_and_every_reference_resolves() {
        for route in table() {
            let what = format!("{} {}", route.method, route.path);
            assert!(route.gives.is_some(), "{what} says nothing of its answer");
            if route.body.is_some_and(|(media, _)| media == JSON) {
                assert!(route.takes.is_some(), "{what} has no request schema");
            }
        }
        let doc = openapi();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        let components = doc["components"]["schemas"].as_object().unwrap();
        for r in &all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(components.contains_key(name), "{r} is not defined");
        }
        for name in components.keys() {
            let used = all.iter().any(|r| r.ends_with(&format!("/{name}")));
            assert!(used, "schema {name} is defined and never used");
        }
    }

    #[test]
    fn errors_have_the_shape_of_their_dialect() {
        let doc = openapi();
        let default = |path: &str, m: &str| {
            doc["paths"][path][m]["responses"]["default"]["content"][JSON]["schema"]["$ref"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(default("/v1/messages", "post").ends_with("/AnthropicError"));
        assert!(default("/api/chat", "post").ends_with("/OllamaError"));
        assert!(default("/v1/chat/completions", "post").ends_with("/Error"));
        assert!(default("/models/{name}", "get").ends_with("/Error"));
    }

    /// The router over an empty store.
    fn app(dir: &std::path::Path) -> axum::Router {
        let store =
            std::sync::Arc::new(modelrunner_store::Store::open(&dir.join("store")).unwrap());
        let scheduler =
            modelrunner_scheduler::Scheduler::new(modelrunner_scheduler::SchedulerConfig {
                run_dir: dir.join("run"),
                ..Default::default()
            })
            .unwrap();
        let registry = modelrunner_registry::Registry::new(Default::default()).unwrap();
        crate::router(AppState::new(
            store,
            scheduler,
            crate::ApiConfig::default(),
            registry,
        ))
    }

    /// Asserts the router has a handler for `method path`.
    async fn reaches_a_handler(app: &axum::Router, method: Method, path: &str) {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", "localhost");
        let body = if method == Method::POST {
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
        assert_ne!(status, 405, "{method} {path}: {text}");
        assert!(
            !text.contains("no route for"),
            "{method} {path} fell through: {text}"
        );
    }

    #[tokio::test]
    async fn every_documented_operation_reaches_a_handler() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        for route in table() {
            let path = route.path.replace("{name}", "m");
            reaches_a_handler(&app, route.method.clone(), &path).await;
        }
    }

    /// The routes clients call, written down apart from the table (from the docs of
    /// OpenAI, Anthropic, Docker Model Runner and llama-server): each is served and
    /// documented.
    #[tokio::test]
    async fn the_routes_clients_call_are_served_and_documented() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let doc = openapi();
        let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
        let known = [
            (&post, "/v1/chat/completions", "/v1/chat/completions"),
            (
                &post,
                "/engines/v1/chat/completions",
                "/engines/v1/chat/completions",
            ),
            (
                &post,
                "/engines/llama.cpp/v1/completions",
                "/engines/llama.cpp/v1/completions",
            ),
            (&post, "/v1/embeddings", "/v1/embeddings"),
            (&get, "/v1/models", "/v1/models"),
            (&get, "/v1/models/ai/smollm2", "/v1/models/{name}"),
            (&post, "/v1/messages", "/v1/messages"),
            (
                &post,
                "/v1/messages/count_tokens",
                "/v1/messages/count_tokens",
            ),
            (&post, "/anthropic/v1/messages", "/anthropic/v1/messages"),
            (&post, "/v1/responses", "/v1/responses"),
            (&get, "/v1/responses/resp_1", "/v1/responses/{id}"),
            (&delete, "/v1/responses/resp_1", "/v1/responses/{id}"),
            (
                &get,
                "/v1/responses/resp_1/input_items",
                "/v1/responses/{id}/input_items",
            ),
            (
                &post,
                "/v1/responses/resp_1/cancel",
                "/v1/responses/{id}/cancel",
            ),
            (&post, "/tokenize", "/tokenize"),
            (&post, "/apply-template", "/apply-template"),
            (&post, "/models/create", "/models/create"),
            (&get, "/models", "/models"),
            (&get, "/models/ai/smollm2", "/models/{name}"),
            (&delete, "/models/ai/smollm2", "/models/{name}"),
            (&get, "/engines/ps", "/engines/ps"),
            (&get, "/engines/status", "/engines/status"),
            (&post, "/engines/_configure", "/engines/_configure"),
            (&get, "/health", "/health"),
            (&post, "/api/chat", "/api/chat"),
            (&post, "/api/generate", "/api/generate"),
            (&post, "/api/embed", "/api/embed"),
            (&post, "/api/embeddings", "/api/embeddings"),
            (&get, "/api/tags", "/api/tags"),
            (&post, "/api/show", "/api/show"),
            (&get, "/api/ps", "/api/ps"),
            (&post, "/api/pull", "/api/pull"),
            (&post, "/api/push", "/api/push"),
            (&post, "/api/create", "/api/create"),
            (&post, "/api/copy", "/api/copy"),
            (&delete, "/api/delete", "/api/delete"),
            (&get, "/api/version", "/api/version"),
            (&post, "/completion", "/completion"),
            (&post, "/completions", "/completions"),
            (&post, "/chat/completions", "/chat/completions"),
            (&post, "/embedding", "/embedding"),
            (&post, "/embeddings", "/embeddings"),
            (&get, "/props", "/props"),
            (&get, "/slots", "/slots"),
            (&get, "/v1/health", "/v1/health"),
            (
                &Method::HEAD,
                &format!("/api/blobs/sha256:{}", "0".repeat(64)),
                "/api/blobs/{digest}",
            ),
        ];
        for (method, path, documented) in known {
            reaches_a_handler(&app, method.clone(), path).await;
            let m = method.as_str().to_ascii_lowercase();
            assert!(
                doc["paths"][documented][&m].is_object(),
                "{m} {documented} undocumented"
            );
        }
    }

    /// `?link=` names a file on the daemon's machine: only a local peer may ask. The
    /// same request from a local peer goes on to the store (and is refused there, for
    /// a file that does not exist), so the gate is what stopped the others.
    #[tokio::test]
    async fn linking_is_for_local_clients_only() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        for (peer, status, code) in [
            (None, 403, "link_not_local"),
            (Some(false), 403, "link_not_local"),
            (Some(true), 400, "cannot_link"),
        ] {
            let mut req = Request::builder()
                .method(Method::POST)
                .uri("/models/load?link=/nowhere/m.gguf")
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap();
            if let Some(local) = peer {
                req.extensions_mut().insert(crate::serve::Peer { local });
            }
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{peer:?}");
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["code"], code, "{peer:?}: {body}");
            assert_eq!(body["error"]["param"], "link", "{peer:?}: {body}");
        }
    }
}
