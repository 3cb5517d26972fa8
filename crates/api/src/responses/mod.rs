//! The OpenAI Responses dialect, under `/v1`, `/engines/v1` and `/engines/llama.cpp/v1`:
//! `POST /responses` (collected, streamed or in the background), `GET` and `DELETE
//! /responses/{id}`, `GET /responses/{id}/input_items`, `POST /responses/{id}/cancel`.
//! `decode` builds the conversation (from a stored one with `previous_response_id`),
//! `encode` the response object and its events, `items` converts items, `stored`
//! keeps responses across restarts.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod items;
pub(crate) mod stored;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};

use crate::extract::ApiQuery;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::AbortHandle;
use tracing::{info, instrument};

use crate::extract::ApiJson;
use crate::pipeline::respond::{answer, respond};
use crate::pipeline::{self, Generation};
use crate::routes::{at, r, Answer, Route, JSON};
use crate::{ApiError, AppState};
use encode::{Identity, ResponsesEncoder};
pub use stored::Limits;

/// The stored responses and the background ones still running.
pub(crate) struct ResponsesState {
    pub stored: Arc<stored::Responses>,
    running: Mutex<HashMap<String, AbortHandle>>,
}

impl ResponsesState {
    pub(crate) fn new(stored: stored::Responses) -> ResponsesState {
        ResponsesState {
            stored: Arc::new(stored),
            running: Mutex::new(HashMap::new()),
        }
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "there is no stored response {id:?}: it was never stored (store: false), was deleted, or expired"
    ))
}

/// `POST /v1/responses`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let rs = &state.responses;
    let req = decode::create(&body, &rs.stored, state.config.reasoning_format)?;
    tracing::Span::current().record("model", req.generation.model.as_str());
    let store = req.store.then(|| (rs.stored.clone(), req.history));
    let who = Identity::new(req.echo, store);
    if req.background {
        return Ok(background(&state, req.generation, who).into_response());
    }
    let running = pipeline::start(&state, &req.generation).await?;
    respond(running, req.stream, ResponsesEncoder::new(who)).await
}

/// Starts a background response; answers with it in progress.
fn background(state: &AppState, generation: Generation, who: Identity) -> Json<Value> {
    let first = who.response("in_progress", Vec::new(), Value::Null, Value::Null);
    who.keep(&first);
    let id = who.id.clone();
    let task_state = state.clone();
    let mut running = state.responses.running.lock().expect("running lock");
    let task = tokio::spawn(async move {
        let s = &task_state;
        match pipeline::start(s, &generation).await {
            Ok(r) => match answer(r).await {
                Ok(a) => drop(who.finished(&a)),
                Err(e) => drop(who.failed(&e, Vec::new())),
            },
            Err(e) => drop(who.failed(&e, Vec::new())),
        }
        s.responses
            .running
            .lock()
            .expect("running lock")
            .remove(&who.id);
    });
    running.insert(id, task.abort_handle());
    Json(first)
}

/// `GET /v1/responses/{id}`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct RetrieveQuery {
    #[serde(default)]
    stream: bool,
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RetrieveQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.stream {
        return Err(ApiError::invalid(
            "stream",
            "a stored response is not replayed as a stream; GET it without stream",
        ));
    }
    let r = state
        .responses
        .stored
        .get(&id)
        .ok_or_else(|| missing(&id))?;
    Ok(Json(r.response.clone()))
}

/// `DELETE /v1/responses/{id}` (a background one still running is stopped).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(t) = state
        .responses
        .running
        .lock()
        .expect("running lock")
        .remove(&id)
    {
        t.abort();
    }
    if !state.responses.stored.delete(&id) {
        return Err(missing(&id));
    }
    Ok(Json(
        json!({"id": id, "object": "response.deleted", "deleted": true}),
    ))
}

/// `POST /v1/responses/{id}/cancel`: stops a background response.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rs = &state.responses;
    let r = rs.stored.get(&id).ok_or_else(|| missing(&id))?;
    if r.response["background"] != true {
        return Err(ApiError::invalid(
            "response_id",
            format!("response {id:?} did not run in the background; only background responses can be cancelled"),
        ));
    }
    let task = rs.running.lock().expect("running lock").remove(&id);
    let Some(task) = task else {
        return Ok(Json(r.response.clone()));
    };
    task.abort();
    info!(id, "cancelled a background response");
    // The task may have finished before it was stopped.
    let now = rs.stored.get(&id).ok_or_else(|| missing(&id))?;
    if now.response["status"] != "in_progress" {
        return Ok(Json(now.response.clone()));
    }
    let mut rec = (*now).clone();
    rec.response["status"] = json!("cancelled");
    rs.stored.put(rec.clone());
    Ok(Json(rec.response))
}

/// `input_items`' query.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemsQuery {
    limit: Option<usize>,
    order: Option<String>,
    after: Option<String>,
}

/// `GET /v1/responses/{id}/input_items`: the conversation's input items, newest first
/// unless `order=asc`.
pub(crate) async fn input_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> Result<Json<Value>, ApiError> {
    let r = state
        .responses
        .stored
        .get(&id)
        .ok_or_else(|| missing(&id))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 100"));
    }
    let mut list: Vec<&Value> = r.history.iter().collect();
    match q.order.as_deref() {
        None | Some("desc") => list.reverse(),
        Some("asc") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "order",
                format!("order must be asc or desc, got {other:?}"),
            ))
        }
    }
    if let Some(after) = &q.after {
        let at = list
            .iter()
            .position(|it| it["id"] == after.as_str())
            .ok_or_else(|| {
                ApiError::invalid(
                    "after",
                    format!("there is no item {after:?} in this response's input"),
                )
            })?;
        list.drain(..=at);
    }
    let has_more = list.len() > limit;
    list.truncate(limit);
    let first = list
        .first()
        .map(|it| it["id"].clone())
        .unwrap_or(Value::Null);
    let last = list
        .last()
        .map(|it| it["id"].clone())
        .unwrap_or(Value::Null);
    Ok(Json(
        json!({"object": "list", "data": list, "first_id": first,
                    "last_id": last, "has_more": has_more}),
    ))
}

/// The dialect's entries of the route table.
pub(crate) fn table() -> Vec<Route> {
    use Method as M;
    let mut t = Vec::new();
    for p in crate::openai::routes::PREFIXES {
        let path = |s: &str| format!("{p}{s}");
        let c = r(
            M::POST,
            &path("/responses"),
            "openai",
            "Create a response (OpenAI Responses)",
            Some((JSON, "OpenAI ResponseCreateParams")),
            at(&path("/responses"), post(create)),
        );
        t.push(
            c.takes("ResponseCreateRequest")
                .gives(Answer::Json("Response"))
                .streaming(),
        );
        t.push(
            r(
                M::GET,
                &path("/responses/{id}"),
                "openai",
                "A stored response",
                None,
                at(&path("/responses/{id}"), get(retrieve).delete(delete)),
            )
            .gives(Answer::Json("Response")),
        );
        t.push(
            r(
                M::DELETE,
                &path("/responses/{id}"),
                "openai",
                "Delete a stored response",
                None,
                crate::routes::via(&path("/responses/{id}")),
            )
            .gives(Answer::Json("ResponseDeleted")),
        );
        t.push(
            r(
                M::GET,
                &path("/responses/{id}/input_items"),
                "openai",
                "A stored response's input items (?limit, order, after)",
                None,
                at(&path("/responses/{id}/input_items"), get(input_items)),
            )
            .query(&[
                ("limit", "integer", false),
                ("order", "string", false),
                ("after", "string", false),
            ])
            .gives(Answer::Json("InputItems")),
        );
        t.push(
            r(
                M::POST,
                &path("/responses/{id}/cancel"),
                "openai",
                "Cancel a background response",
                None,
                at(&path("/responses/{id}/cancel"), post(cancel)),
            )
            .gives(Answer::Json("Response")),
        );
    }
    t
}
