//! `POST /api/v1/jobs`: accept an image and a crop, store both durably, enqueue, answer 202.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Serialize;
use ugatit_model::Direction;

use super::{Api, ApiError};
use crate::blobs::BlobKey;
use crate::jobs::{unix_now, CropRequest, JobError, JobId, JobSpec};
use crate::links::token_hash;
use crate::metrics::Rejection;

/// Seconds a client is asked to wait when the queue is full or the server is stopping.
const RETRY_AFTER_FULL: u64 = 10;
/// How far past `--max-upload` a body is still read (and thrown away) so that the client gets
/// its 413 instead of a reset connection; past this the connection is closed.
const DRAIN_FACTOR: usize = 4;

/// The 202 answer.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub id: JobId,
    pub status_url: String,
    pub delete_token: String,
}

/// The form's fields, checked for syntax.
#[derive(Debug, Default)]
struct Form {
    image: Option<Bytes>,
    crop: Option<String>,
    direction: Option<String>,
    email: Option<String>,
}

pub async fn upload(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let answer = accept(&api, peer, &headers, body).await;
    match &answer {
        Ok(_) => api.metrics.accepted(),
        Err(ApiError {
            rejection: Some(why),
            ..
        }) => api.metrics.rejected(*why),
        Err(_) => {}
    }
    answer.map(|a| (StatusCode::ACCEPTED, Json(a)))
}

/// The flow: admit, read, check, store, enqueue.
async fn accept(
    api: &Api,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, ApiError> {
    let draining = || {
        ApiError::rejected(
            Rejection::Draining,
            "the server is shutting down; try again",
        )
        .retry_after(RETRY_AFTER_FULL)
    };
    if api.draining() {
        return Err(draining());
    }
    if let Some(limiter) = &api.limiter {
        let client = api.client(peer, headers);
        limiter.check(client, Instant::now()).map_err(|wait| {
            ApiError::rejected(
                Rejection::RateLimited,
                format!(
                    "more than {} uploads in an hour from {client}",
                    api.config.rate_limit
                ),
            )
            .retry_after(wait)
        })?;
    }
    let _permit = api.uploads.acquire().await.map_err(ApiError::internal)?;
    let bytes = read_limited(body, api.config.max_upload).await?;
    let form = parse_form(headers, bytes).await?;
    let image = form.image.ok_or_else(|| {
        ApiError::rejected(Rejection::BadRequest, "missing the image field (the file)")
    })?;
    let crop = parse_crop(form.crop.as_deref())?;
    check_direction(form.direction.as_deref(), api.config.direction)?;
    let email = form.email.map(|e| check_email(&e)).transpose()?;
    let (width, height) = check_image(image.clone(), api.config.max_pixels).await?;
    check_crop(crop, width, height)?;
    let full = || {
        ApiError::rejected(
            Rejection::QueueFull,
            format!(
                "the queue is full ({} jobs waiting); try again later",
                api.config.queue_size
            ),
        )
        .retry_after(RETRY_AFTER_FULL)
    };
    if api.jobs.queue_len().await.map_err(ApiError::internal)? >= api.config.queue_size {
        return Err(full());
    }

    let id = JobId::random().map_err(ApiError::internal)?;
    let delete_token = api.signer.delete_token(&id);
    let now = unix_now();
    let spec = JobSpec {
        crop,
        email,
        delete_hash: token_hash(&delete_token),
        created_at: now,
        expires_at: now.saturating_add(api.config.link_ttl.as_secs()),
    };
    let input = BlobKey::input(&id);
    api.blobs
        .put(&input, image)
        .await
        .map_err(ApiError::internal)?;
    if let Err(e) = api.jobs.enqueue(&id, &spec, api.config.queue_size).await {
        if let Err(d) = api.blobs.delete(&input).await {
            eprintln!("api: {d}");
        }
        return Err(match e {
            JobError::QueueFull { .. } => full(),
            other => ApiError::internal(other),
        });
    }
    api.wake.notify_one();
    Ok(Accepted {
        status_url: format!("/api/v1/jobs/{id}"),
        id,
        delete_token,
    })
}

/// The body, refused with 413 when over `max` bytes. An oversized body is read on (up to
/// [`DRAIN_FACTOR`] times `max`) and dropped, so the client reads the answer.
async fn read_limited(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::rejected(Rejection::BadRequest, format!("reading the upload: {e}"))
        })?;
        total = total.saturating_add(chunk.len());
        if total <= max {
            buf.extend_from_slice(&chunk);
        } else if total > max.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if total > max {
        return Err(ApiError::rejected(
            Rejection::TooLarge,
            format!("the upload is over --max-upload {max} bytes"),
        ));
    }
    Ok(buf.freeze())
}

/// The multipart fields; unknown or repeated fields are refused.
async fn parse_form(headers: &HeaderMap, body: Bytes) -> Result<Form, ApiError> {
    let bad = |m: String| ApiError::rejected(Rejection::BadRequest, m);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| bad("expected a multipart/form-data body".into()))?;
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = Form::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let slot_taken = match name.as_str() {
            "image" => form.image.is_some(),
            "crop" => form.crop.is_some(),
            "direction" => form.direction.is_some(),
            "email" => form.email.is_some(),
            _ => {
                return Err(bad(format!(
                    "unknown field {name:?} (expected image, crop, direction, email)"
                )))
            }
        };
        if slot_taken {
            return Err(bad(format!("field {name:?} given twice")));
        }
        let data = field
            .bytes()
            .await
            .map_err(|e| bad(format!("malformed multipart body: {e}")))?;
        let text = || {
            String::from_utf8(data.to_vec())
                .map(|s| s.trim().to_string())
                .map_err(|_| bad(format!("field {name:?} is not UTF-8 text")))
        };
        match name.as_str() {
            "image" => form.image = Some(data.clone()),
            "crop" => form.crop = Some(text()?),
            "direction" => form.direction = Some(text()?),
            _ => form.email = Some(text()?),
        }
    }
    Ok(form)
}

/// `crop`: absent or empty for the centre square, `"auto"`, or `{"x","y","w","h"}`.
fn parse_crop(crop: Option<&str>) -> Result<CropRequest, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Box4 {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
    }
    match crop.unwrap_or_default() {
        "" | "center" | "centre" => Ok(CropRequest::Center),
        "auto" | "\"auto\"" => Ok(CropRequest::Auto),
        json => {
            let b: Box4 = serde_json::from_str(json).map_err(|e| {
                ApiError::rejected(
                    Rejection::BadRequest,
                    format!(
                        "crop must be {{\"x\":..,\"y\":..,\"w\":..,\"h\":..}} in pixels or \"auto\" ({e})"
                    ),
                )
            })?;
            if b.w == 0 || b.h == 0 {
                return Err(ApiError::rejected(
                    Rejection::BadImage,
                    format!("crop {},{},{},{} is empty", b.x, b.y, b.w, b.h),
                ));
            }
            Ok(CropRequest::Box {
                x: b.x,
                y: b.y,
                w: b.w,
                h: b.h,
            })
        }
    }
}

fn check_direction(asked: Option<&str>, served: Direction) -> Result<(), ApiError> {
    let Some(asked) = asked.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let asked: Direction = asked
        .parse()
        .map_err(|e: String| ApiError::rejected(Rejection::BadRequest, e))?;
    if asked != served {
        return Err(ApiError::rejected(
            Rejection::BadRequest,
            format!(
                "this server translates {}, not {}",
                served.as_str(),
                asked.as_str()
            ),
        ));
    }
    Ok(())
}

/// A plausible address (the mailer checks it fully): one `@`, no spaces, at most 254 bytes.
fn check_email(email: &str) -> Result<String, ApiError> {
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email.to_string())
    } else {
        Err(ApiError::rejected(
            Rejection::BadRequest,
            format!("email {email:?} is not an address"),
        ))
    }
}

/// Decodes the image (off the async threads; the pixel limit is checked before decoding) and
/// returns its size after EXIF orientation.
async fn check_image(bytes: Bytes, max_pixels: u64) -> Result<(u32, u32), ApiError> {
    let decoded = tokio::task::spawn_blocking(move || {
        ugatit_io::image_file::decode_rgb(&bytes, max_pixels).map(|img| img.dimensions())
    })
    .await
    .map_err(ApiError::internal)?;
    decoded.map_err(|e| ApiError::rejected(Rejection::BadImage, format!("image: {e}")))
}

fn check_crop(crop: CropRequest, width: u32, height: u32) -> Result<(), ApiError> {
    if let CropRequest::Box { x, y, w, h } = crop {
        let fits = u64::from(x) + u64::from(w) <= u64::from(width)
            && u64::from(y) + u64::from(h) <= u64::from(height);
        if !fits {
            return Err(ApiError::rejected(
                Rejection::BadImage,
                format!("crop {x},{y},{w},{h} is outside the {width}x{height} image"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_parse_as_the_form_sends_them() {
        assert_eq!(parse_crop(None).unwrap(), CropRequest::Center);
        assert_eq!(parse_crop(Some("auto")).unwrap(), CropRequest::Auto);
        assert_eq!(
            parse_crop(Some(r#"{"x":1,"y":2,"w":3,"h":4}"#)).unwrap(),
            CropRequest::Box {
                x: 1,
                y: 2,
                w: 3,
                h: 4
            }
        );
        let empty = parse_crop(Some(r#"{"x":1,"y":2,"w":0,"h":4}"#)).unwrap_err();
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        let bad = parse_crop(Some("1,2,3,4")).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(check_crop(
            CropRequest::Box {
                x: 10,
                y: 0,
                w: 91,
                h: 10
            },
            100,
            100
        )
        .is_err());
    }

    #[test]
    fn emails_and_directions_are_checked() {
        assert!(check_email("a@b.example").is_ok());
        assert!(check_email("a b@c").is_err());
        assert!(check_email("ab").is_err());
        assert!(check_direction(Some("b2a"), Direction::A2B).is_err());
        assert!(check_direction(Some("a2b"), Direction::A2B).is_ok());
        assert!(check_direction(None, Direction::A2B).is_ok());
    }
}
