//! `GET /r/{id}.png?exp=UNIX&sig=HEX`: a result, to whoever holds an unexpired signed link.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{Api, ApiError};
use crate::blobs::BlobKey;
use crate::jobs::{unix_now, JobId};
use crate::links::LinkError;

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    exp: Option<String>,
    sig: Option<String>,
}

pub async fn result(
    State(api): State<Arc<Api>>,
    Path(file): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let forged = || ApiError::forbidden(LinkError::BadSignature.to_string());
    let id: JobId = file
        .strip_suffix(".png")
        .and_then(|s| s.parse().ok())
        .ok_or_else(forged)?;
    let exp: u64 = q.exp.and_then(|e| e.parse().ok()).ok_or_else(forged)?;
    let sig = q.sig.ok_or_else(forged)?;
    api.signer
        .verify(&id, exp, &sig, unix_now())
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    let png = api
        .blobs
        .get(&BlobKey::result(&id))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(format_args!("result for job {id} (deleted or not done)"))
        })?;
    let max_age = exp.saturating_sub(unix_now());
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (header::CACHE_CONTROL, format!("private, max-age={max_age}")),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{id}.png\""),
            ),
        ],
        png,
    ))
}
