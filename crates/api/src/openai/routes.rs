//! The OpenAI dialect's routes, under OpenAI's own prefix and Docker Model Runner's
//! two, and llama-server's helper routes without a prefix.

use axum::http::Method;
use axum::routing::{get, post};

use super::{chat, completions, embeddings, helpers, models};
use crate::routes::{at, r, Answer::Json, Route, JSON};

/// Where the OpenAI-compatible routes live: OpenAI's own prefix, and Docker Model
/// Runner's two.
pub(crate) const PREFIXES: [&str; 3] = ["/v1", "/engines/v1", "/engines/llama.cpp/v1"];

/// The dialect's entries of the route table.
pub(crate) fn table() -> Vec<Route> {
    use Method as M;
    let mut t = Vec::new();
    for p in PREFIXES {
        let path = |s: &str| format!("{p}{s}");
        t.push(
            r(
                M::POST,
                &path("/chat/completions"),
                "openai",
                "Chat completion",
                Some((JSON, "OpenAI chat completion request")),
                at(&path("/chat/completions"), post(chat::chat_completions)),
            )
            .takes("ChatCompletionRequest")
            .gives(Json("ChatCompletion"))
            .streaming(),
        );
        t.push(
            r(
                M::POST,
                &path("/completions"),
                "openai",
                "Text completion",
                Some((JSON, "OpenAI completion request")),
                at(&path("/completions"), post(completions::completions)),
            )
            .takes("CompletionRequest")
            .gives(Json("Completion"))
            .streaming(),
        );
        t.push(
            r(
                M::POST,
                &path("/embeddings"),
                "openai",
                "Embeddings",
                Some((JSON, "OpenAI embeddings request")),
                at(&path("/embeddings"), post(embeddings::embeddings)),
            )
            .takes("EmbeddingsRequest")
            .gives(Json("Embeddings")),
        );
        t.push(
            r(
                M::GET,
                &path("/models"),
                "openai",
                "List models",
                None,
                at(&path("/models"), get(models::list)),
            )
            .gives(Json("ModelList")),
        );
        t.push(
            r(
                M::GET,
                &path("/models/{name}"),
                "openai",
                "One model",
                None,
                at(&path("/models/{*name}"), get(models::get)),
            )
            .gives(Json("Model")),
        );
        t.push(
            r(
                M::POST,
                &path("/tokenize"),
                "openai",
                "Tokenize text",
                Some((JSON, "{model, content, add_special, with_pieces}")),
                at(&path("/tokenize"), post(helpers::tokenize)),
            )
            .takes("TokenizeRequest")
            .gives(Json("Tokens")),
        );
        t.push(
            r(
                M::POST,
                &path("/detokenize"),
                "openai",
                "Detokenize tokens",
                Some((JSON, "{model, tokens}")),
                at(&path("/detokenize"), post(helpers::detokenize)),
            )
            .takes("DetokenizeRequest")
            .gives(Json("Detokenized")),
        );
        t.push(
            r(
                M::POST,
                &path("/apply-template"),
                "openai",
                "Render a chat template",
                Some((JSON, "{model, messages}")),
                at(&path("/apply-template"), post(helpers::apply_template)),
            )
            .takes("ApplyTemplateRequest")
            .gives(Json("AppliedTemplate")),
        );
    }
    // llama-server's own paths, without a prefix.
    t.push(
        r(
            M::POST,
            "/tokenize",
            "openai",
            "Tokenize text (llama-server path)",
            Some((JSON, "{model, content}")),
            at("/tokenize", post(helpers::tokenize)),
        )
        .takes("TokenizeRequest")
        .gives(Json("Tokens")),
    );
    t.push(
        r(
            M::POST,
            "/detokenize",
            "openai",
            "Detokenize tokens (llama-server path)",
            Some((JSON, "{model, tokens}")),
            at("/detokenize", post(helpers::detokenize)),
        )
        .takes("DetokenizeRequest")
        .gives(Json("Detokenized")),
    );
    t.push(
        r(
            M::POST,
            "/apply-template",
            "openai",
            "Render a chat template (llama-server path)",
            Some((JSON, "{model, messages}")),
            at("/apply-template", post(helpers::apply_template)),
        )
        .takes("ApplyTemplateRequest")
        .gives(Json("AppliedTemplate")),
    );

    t
}
