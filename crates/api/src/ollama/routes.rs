//! The Ollama dialect's entries of the route table.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, head, post};

use super::{blobs, embed, generate, manage, show, transfer};
use crate::routes::{at, r, Answer, Route, JSON};

/// The entries.
pub(crate) fn table() -> Vec<Route> {
    use Method as M;
    let mut t = Vec::new();
    // Every request with a JSON body; the generating ones stream.
    let request = |m, path: &str, summary, handler, takes, gives| {
        r(
            m,
            path,
            "ollama",
            summary,
            Some((JSON, "Ollama request")),
            at(path, handler),
        )
        .takes(takes)
        .gives(gives)
    };
    let gen = |path: &str, summary, handler, takes, gives| {
        request(M::POST, path, summary, handler, takes, Answer::Json(gives)).streaming()
    };
    t.push(gen(
        "/api/chat",
        "Ollama: chat (NDJSON unless stream is false)",
        post(generate::chat),
        "OllamaChatRequest",
        "OllamaChatResponse",
    ));
    t.push(gen(
        "/api/generate",
        "Ollama: generate from a prompt (NDJSON unless stream is false)",
        post(generate::generate),
        "OllamaGenerateRequest",
        "OllamaGenerateResponse",
    ));
    t.push(gen(
        "/api/pull",
        "Ollama: pull a model (progress lines)",
        post(transfer::pull),
        "OllamaPullRequest",
        "OllamaProgress",
    ));
    t.push(gen(
        "/api/push",
        "Ollama: push a model (progress lines)",
        post(transfer::push),
        "OllamaPushRequest",
        "OllamaProgress",
    ));
    t.push(gen(
        "/api/create",
        "Ollama: create a model from another or from an uploaded GGUF",
        post(blobs::create),
        "OllamaCreateRequest",
        "OllamaProgress",
    ));
    let plain = [
        (
            M::POST,
            "/api/embed",
            "Ollama: embeddings of one or more inputs",
            post(embed::embed),
            "OllamaEmbedRequest",
            Answer::Json("OllamaEmbedResponse"),
        ),
        (
            M::POST,
            "/api/embeddings",
            "Ollama: the embedding of a prompt (legacy)",
            post(embed::embeddings),
            "OllamaEmbeddingsRequest",
            Answer::Json("OllamaEmbeddingResponse"),
        ),
        (
            M::POST,
            "/api/show",
            "Ollama: a model's details, model_info and capabilities",
            post(show::show),
            "OllamaShowRequest",
            Answer::Json("OllamaShowResponse"),
        ),
        (
            M::POST,
            "/api/copy",
            "Ollama: copy a model to a new name",
            post(manage::copy),
            "OllamaCopyRequest",
            Answer::Empty(200),
        ),
        (
            M::DELETE,
            "/api/delete",
            "Ollama: delete a model",
            delete(manage::delete),
            "OllamaDeleteRequest",
            Answer::Empty(200),
        ),
    ];
    for (m, path, summary, handler, takes, gives) in plain {
        t.push(request(m, path, summary, handler, takes, gives));
    }
    let listings = [
        (
            "/api/tags",
            "Ollama: local models",
            get(manage::tags),
            "OllamaTags",
        ),
        (
            "/api/ps",
            "Ollama: loaded models",
            get(manage::ps),
            "OllamaRunning",
        ),
        (
            "/api/version",
            "Ollama: the version this API matches",
            get(manage::version),
            "Version",
        ),
    ];
    for (path, summary, handler, schema) in listings {
        t.push(
            r(M::GET, path, "ollama", summary, None, at(path, handler)).gives(Answer::Json(schema)),
        );
    }
    let blob = "/api/blobs/{digest}";
    t.push(
        r(
            M::HEAD,
            blob,
            "ollama",
            "Ollama: whether a blob is stored",
            None,
            at(blob, head(blobs::head_blob)),
        )
        .gives(Answer::Empty(200)),
    );
    t.push(
        r(
            M::POST,
            blob,
            "ollama",
            "Ollama: upload a blob (checked against its digest)",
            Some(("application/octet-stream", "the blob's bytes")),
            at(
                blob,
                post(blobs::post_blob).layer(DefaultBodyLimit::disable()),
            ),
        )
        .gives(Answer::Empty(201)),
    );
    t
}
