//! The OpenAPI 3.1 document of the route table.

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::{table, Serve, JSON};

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
}
