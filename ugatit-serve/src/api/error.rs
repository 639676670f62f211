//! Error answers: a status, `{"error": "..."}` naming the problem, and for 429 and 503 a
//! `Retry-After`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::metrics::Rejection;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u64>,
    /// Counted under this reason in `/metrics` when an upload is refused.
    pub rejection: Option<Rejection>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            rejection: None,
        }
    }

    /// An upload refused for `why`, with the status that reason answers.
    pub fn rejected(why: Rejection, message: impl Into<String>) -> Self {
        let status = match why {
            Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BadRequest => StatusCode::BAD_REQUEST,
            Rejection::BadImage => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::QueueFull | Rejection::Draining => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        };
        Self {
            rejection: Some(why),
            ..Self::new(status, message)
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no {what}"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A store failure: 500, logged, and reported by its one-line message.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        eprintln!("api: {e}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
