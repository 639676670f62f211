//! A job's status, and deleting a job with its delete token.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{Api, ApiError};
use crate::blobs::BlobKey;
use crate::jobs::{Job, JobId, JobState};
use crate::links::token_matches;

/// `GET /api/v1/jobs/{id}`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub id: JobId,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The job `id` names, or 404 (a malformed id names no job).
pub async fn find(api: &Api, id: &str) -> Result<Job, ApiError> {
    let not_found = || ApiError::not_found(format_args!("job {id}"));
    let id: JobId = id.parse().map_err(|_| not_found())?;
    api.jobs
        .get(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)
}

pub async fn status(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Json<Status>, ApiError> {
    let job = find(&api, &id).await?;
    let mut status = Status {
        id: job.id.clone(),
        status: job.state.name(),
        position: None,
        result_url: None,
        error: None,
    };
    match &job.state {
        JobState::Queued => {
            status.position = api
                .jobs
                .position(&job.id)
                .await
                .map_err(ApiError::internal)?;
        }
        JobState::Running => {}
        JobState::Done => status.result_url = Some(result_url(&api, &job).await),
        JobState::Failed(e) => status.error = Some(e.clone()),
    }
    Ok(Json(status))
}

/// The bucket's presigned URL where the blob store makes one, else our signed `/r/` link.
async fn result_url(api: &Api, job: &Job) -> String {
    let exp = job.spec.expires_at;
    match api
        .blobs
        .presigned_url(&BlobKey::result(&job.id), exp)
        .await
    {
        Ok(Some(url)) => url,
        Ok(None) => api.signer.result_path(&job.id, exp),
        Err(e) => {
            eprintln!("api: {e}");
            api.signer.result_path(&job.id, exp)
        }
    }
}

/// `DELETE /api/v1/jobs/{id}` with `Authorization: Bearer <delete_token>`.
pub async fn delete(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::forbidden("missing the header Authorization: Bearer <delete_token>")
        })?;
    remove(&api, &id, token.trim()).await
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /d/{id}?token=`: the delete link in emails.
pub async fn delete_link(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = q
        .token
        .ok_or_else(|| ApiError::forbidden("missing ?token= (the delete token)"))?;
    remove(&api, &id, &token).await
}

/// Checks the token, then removes the record first and the blobs after: a worker that
/// finishes the job afterwards finds it gone and removes its result itself.
async fn remove(api: &Api, id: &str, token: &str) -> Result<Json<serde_json::Value>, ApiError> {
    let job = find(api, id).await?;
    if !token_matches(token, &job.spec.delete_hash) {
        return Err(ApiError::forbidden("wrong delete token"));
    }
    api.jobs.delete(&job.id).await.map_err(ApiError::internal)?;
    for key in [BlobKey::input(&job.id), BlobKey::result(&job.id)] {
        api.blobs.delete(&key).await.map_err(ApiError::internal)?;
    }
    Ok(Json(serde_json::json!({ "deleted": job.id })))
}
