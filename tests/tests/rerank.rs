//! Reranking over real HTTP with a generated Qwen3-Reranker-shaped model (rank pooling, a
//! two-label head): Jina/Cohere and TEI answers sorted best first and cut to `top_n`,
//! scores that are the model's (deterministic, distinct, P(yes) in 0..1), token counts
//! that show how each pair was joined (the GGUF's rerank prompt, or BOS query document
//! without one), bad requests as 400s naming the field, and the modes kept apart.

use modelrunner_e2e::Daemon;
use modelrunner_testkit::RERANK_PROMPT;
use serde_json::{json, Value};

const DOCS: [&str; 4] = [
    "A machine is a physical system that uses power.",
    "Learning is the process of acquiring new understanding.",
    "Machine learning is a field of study in artificial intelligence.",
    "Paris est une grande ville.",
];

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(d.u(path))
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

fn ok(d: &Daemon, path: &str, body: &Value) -> Value {
    let (s, v) = post(d, path, body);
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// Token count of `text` as the model's completion runner tokenizes it.
fn count(d: &Daemon, model: &str, text: &str, add_special: bool) -> u64 {
    let v = ok(
        d,
        "/tokenize",
        &json!({"model": model, "content": text, "add_special": add_special}),
    );
    v["tokens"].as_array().unwrap().len() as u64
}

#[test]
fn documents_come_back_ordered_by_the_models_scores() {
    let d = Daemon::start(&[]);
    d.package_reranker("rr", true);
    let body = json!({"model": "rr", "query": "Machine learning is", "documents": DOCS});
    let v = ok(&d, "/v1/rerank", &body);
    assert_eq!(v["object"], "list", "{v}");
    assert_eq!(v["model"], "rr");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["relevance_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores.iter().all(|s| *s > 0.0 && *s < 1.0), "{scores:?}");
    assert!(
        scores[0] > scores[3],
        "the model tells documents apart: {scores:?}"
    );
    let mut indices: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    for r in results {
        let i = r["index"].as_u64().unwrap() as usize;
        assert_eq!(r["document"]["text"], DOCS[i], "documents by default: {r}");
    }
    indices.sort();
    assert_eq!(indices, [0, 1, 2, 3]);
    // The same pairs score the same, on every alias and in the TEI shape.
    let again = ok(&d, "/rerank", &body);
    assert_eq!(again["results"], v["results"]);
    let tei = ok(
        &d,
        "/engines/llama.cpp/v1/rerank",
        &json!({"model": "rr", "query": "Machine learning is", "texts": DOCS, "top_n": 2}),
    );
    let tei = tei.as_array().unwrap();
    assert_eq!(tei.len(), 2);
    for (t, r) in tei.iter().zip(results) {
        assert_eq!(t["index"], r["index"]);
        assert_eq!(t["score"], r["relevance_score"]);
        assert!(t.get("text").is_none(), "{t}");
    }
    // Each pair is the GGUF's rerank prompt with the query and document filled in.
    let prompts: u64 = DOCS
        .iter()
        .map(|doc| {
            let p = RERANK_PROMPT
                .replace("{query}", "Machine learning is")
                .replace("{document}", doc);
            count(&d, "rr", &p, false)
        })
        .sum();
    assert_eq!(v["usage"]["prompt_tokens"], prompts, "{v}");
    assert_eq!(v["usage"]["total_tokens"], prompts);
    // top_n cuts the best; without documents only indices and scores come back.
    let top = ok(
        &d,
        "/v1/rerank",
        &json!({"model": "rr", "query": "Machine learning is", "documents": DOCS,
                "top_n": 2, "return_documents": false}),
    );
    let top = top["results"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0]["index"], results[0]["index"]);
    assert!(top[0].get("document").is_none(), "{}", top[0]);
    let many = ok(
        &d,
        "/reranking",
        &json!({"model": "rr", "query": "q", "documents": DOCS, "top_n": 99}),
    );
    assert_eq!(many["results"].as_array().unwrap().len(), 4);
    // Structured documents (Jina's and Cohere's objects) score as their text.
    let objects: Vec<Value> = DOCS.iter().map(|t| json!({"text": t})).collect();
    let o = ok(
        &d,
        "/v1/rerank",
        &json!({"model": "rr", "query": "Machine learning is", "documents": objects}),
    );
    assert_eq!(o["results"], v["results"]);
}

#[test]
fn without_a_rerank_prompt_the_pair_is_joined_with_special_tokens() {
    let d = Daemon::start(&[]);
    d.package_reranker("plain", false);
    let v = ok(
        &d,
        "/v1/rerank",
        &json!({"query": "tell me", "documents": ["a story", "the sea"]}),
    );
    // The vocabulary adds BOS and no EOS or SEP: BOS, the query, the document.
    let q = count(&d, "plain", "tell me", false);
    let want =
        2 * (1 + q) + count(&d, "plain", "a story", false) + count(&d, "plain", "the sea", false);
    assert_eq!(v["usage"]["prompt_tokens"], want, "{v}");
}

#[test]
fn bad_rerank_requests_name_the_field_and_modes_stay_apart() {
    let d = Daemon::start(&[]);
    d.package_reranker("rr", true);
    let cases = [
        (
            json!({"model": "rr", "query": "q", "documents": []}),
            "documents",
        ),
        (
            json!({"model": "rr", "query": "q", "documents": null}),
            "documents",
        ),
        (
            json!({"model": "rr", "query": "q", "documents": 123}),
            "documents",
        ),
        (
            json!({"model": "rr", "query": "q", "documents": [1, 2, 3]}),
            "documents[0]",
        ),
        (
            json!({"model": "rr", "query": "q", "documents": [{"title": "x"}]}),
            "documents[0].text",
        ),
        (json!({"model": "rr", "documents": ["a"]}), "query"),
        (
            json!({"model": "rr", "query": 5, "documents": ["a"]}),
            "query",
        ),
        (
            json!({"model": "rr", "query": "q", "documents": ["a"], "top_n": 0}),
            "top_n",
        ),
        (
            json!({"model": "rr", "query": "q", "documents": ["a"], "return_documents": "yes"}),
            "return_documents",
        ),
        (json!({"model": "rr", "query": "q", "texts": "a"}), "texts"),
    ];
    for (body, param) in cases {
        let (s, v) = post(&d, "/v1/rerank", &body);
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    // A document over the context names the documents.
    let long = "word ".repeat(3000);
    let (s, v) = post(
        &d,
        "/rerank",
        &json!({"model": "rr", "query": "q", "documents": [long]}),
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "documents", "{v}");
    // A reranker gives no embeddings, and a model without a rank head gives no scores.
    let (s, v) = post(&d, "/v1/embeddings", &json!({"model": "rr", "input": "x"}));
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "model", "{v}");
    assert!(v.to_string().contains("is a reranker"), "{v}");
    d.package_tiny("plain", 1);
    let (s, v) = post(
        &d,
        "/v1/rerank",
        &json!({"model": "plain", "query": "q", "documents": ["a"]}),
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "model", "{v}");
    assert!(v.to_string().contains("not a reranker"), "{v}");
    // The daemon keeps serving the reranker.
    ok(
        &d,
        "/v1/rerank",
        &json!({"model": "rr", "query": "q", "documents": ["a"]}),
    );
}
