//! The Ollama dialect's entries of the route table.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, head, post};

use super::{blobs, embed, generate, manage, show, transfer};
use crate::routes::{at, r, Route, JSON};

/// The entries.
pub(crate) fn table() -> Vec<Route> {
    use Method as M;
    let mut t = Vec::new();
    let gen = |path: &str, summary, handler| {
        let mut e = r(
            M::POST,
            path,
            "ollama",
            summary,
            Some((JSON, "Ollama request")),
            at(path, handler),
        );
        e.streams = true;
        e
    };
    t.push(gen(
        "/api/chat",
        "Ollama: chat (NDJSON unless stream is false)",
        post(generate::chat),
    ));
    t.push(gen(
        "/api/generate",
        "Ollama: generate from a prompt (NDJSON unless stream is false)",
        post(generate::generate),
    ));
    t.push(gen(
        "/api/pull",
        "Ollama: pull a model (progress lines)",
        post(transfer::pull),
    ));
    t.push(gen(
        "/api/push",
        "Ollama: push a model (progress lines)",
        post(transfer::push),
    ));
    t.push(gen(
        "/api/create",
        "Ollama: create a model from another or from an uploaded GGUF",
        post(blobs::create),
    ));
    let plain = [
        (
            M::POST,
            "/api/embed",
            "Ollama: embeddings of one or more inputs",
            post(embed::embed),
        ),
        (
            M::POST,
            "/api/embeddings",
            "Ollama: the embedding of a prompt (legacy)",
            post(embed::embeddings),
        ),
        (
            M::POST,
            "/api/show",
            "Ollama: a model's details, model_info and capabilities",
            post(show::show),
        ),
        (
            M::POST,
            "/api/copy",
            "Ollama: copy a model to a new name",
            post(manage::copy),
        ),
        (
            M::DELETE,
            "/api/delete",
            "Ollama: delete a model",
            delete(manage::delete),
        ),
    ];
    for (m, path, summary, handler) in plain {
        t.push(r(
            m,
            path,
            "ollama",
            summary,
            Some((JSON, "Ollama request")),
            at(path, handler),
        ));
    }
    t.push(r(
        M::GET,
        "/api/tags",
        "ollama",
        "Ollama: local models",
        None,
        at("/api/tags", get(manage::tags)),
    ));
    t.push(r(
        M::GET,
        "/api/ps",
        "ollama",
        "Ollama: loaded models",
        None,
        at("/api/ps", get(manage::ps)),
    ));
    t.push(r(
        M::GET,
        "/api/version",
        "ollama",
        "Ollama: the version this API matches",
        None,
        at("/api/version", get(manage::version)),
    ));
    let blob = "/api/blobs/{digest}";
    t.push(r(
        M::HEAD,
        blob,
        "ollama",
        "Ollama: whether a blob is stored",
        None,
        at(blob, head(blobs::head_blob)),
    ));
    t.push(r(
        M::POST,
        blob,
        "ollama",
        "Ollama: upload a blob (checked against its digest)",
        Some(("application/octet-stream", "the blob's bytes")),
        at(
            blob,
            post(blobs::post_blob).layer(DefaultBodyLimit::disable()),
        ),
    ));
    t
}
