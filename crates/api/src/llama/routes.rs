//! llama-server's native routes in the route table.

use axum::http::Method;
use axum::routing::{get, post};

use super::{completion, embedding, infill, props, rerank};
use crate::openai::routes::PREFIXES;
use crate::routes::{at, r, Answer::Json, Route, JSON};

/// The entries.
pub(crate) fn table() -> Vec<Route> {
    use Method as M;
    let mut t = Vec::new();
    for path in ["/completion", "/completions"] {
        let e = r(
            M::POST,
            path,
            "llama-server",
            "llama-server: native completion (n_predict, n_probs, samplers, timings)",
            Some((JSON, "llama-server completion request")),
            at(path, post(completion::completion)),
        );
        t.push(
            e.takes("NativeCompletionRequest")
                .gives(Json("NativeCompletion"))
                .streaming(),
        );
    }
    let fill = r(
        M::POST,
        "/infill",
        "llama-server",
        "llama-server: code infilling (input_prefix, input_suffix, input_extra) with the model's FIM tokens",
        Some((JSON, "llama-server infill request")),
        at("/infill", post(infill::handler)),
    );
    t.push(
        fill.takes("InfillRequest")
            .gives(Json("NativeCompletion"))
            .streaming(),
    );
    let chat = r(
        M::POST,
        "/chat/completions",
        "llama-server",
        "Chat completion (llama-server's unprefixed path)",
        Some((JSON, "OpenAI chat completion request")),
        at(
            "/chat/completions",
            post(crate::openai::chat::chat_completions),
        ),
    );
    t.push(
        chat.takes("ChatCompletionRequest")
            .gives(Json("ChatCompletion"))
            .streaming(),
    );
    for path in ["/embedding", "/embeddings"] {
        t.push(
            r(
                M::POST,
                path,
                "llama-server",
                "llama-server: native embeddings ([{index, embedding: [[...]]}])",
                Some((JSON, "{content, embd_normalize}")),
                at(path, post(embedding::embedding)),
            )
            .takes("NativeEmbeddingRequest")
            .gives(Json("NativeEmbeddings")),
        );
    }
    // llama-server's, Docker Model Runner's, and Cohere's v2 path.
    let mut rerank_paths: Vec<String> = [
        "/rerank",
        "/reranking",
        "/engines/rerank",
        "/engines/llama.cpp/rerank",
        "/v2/rerank",
    ]
    .map(String::from)
    .to_vec();
    for p in PREFIXES {
        rerank_paths.extend([format!("{p}/rerank"), format!("{p}/reranking")]);
    }
    for path in &rerank_paths {
        t.push(r(
            M::POST,
            path,
            "llama-server",
            "Reranking (Jina/Cohere: query, documents, top_n, return_documents; TEI: texts) with a rank-pooling model",
            Some((JSON, "{model, query, documents, top_n, return_documents}")),
            at(path, post(rerank::rerank)),
        )
        .takes("RerankRequest")
        .gives(Json("Reranked")));
    }
    t.push(
        r(
            M::GET,
            "/props",
            "llama-server",
            "llama-server: the model's properties (?model=)",
            None,
            at("/props", get(props::props)),
        )
        .query(&[("model", "string", false)])
        .gives(Json("Props")),
    );
    t.push(
        r(
            M::GET,
            "/slots",
            "llama-server",
            "llama-server: the loaded model's slots (?model=)",
            None,
            at("/slots", get(props::slots)),
        )
        .query(&[("model", "string", false)])
        .gives(Json("Slots")),
    );
    for path in ["/health", "/v1/health"] {
        t.push(
            r(
                M::GET,
                path,
                "daemon",
                "Health, no API key needed: 503 while a model loads and none is ready",
                None,
                at(path, get(props::health)),
            )
            .also(&[(503, "Loading")])
            .gives(Json("Health")),
        );
    }
    t
}
