//! The upload page, `GET /`: the files under `web/`, compiled into the binary so that
//! `ugatit-serve --model M` serves it with nothing to install or build. The page talks to the
//! API on its own origin; a copy hosted elsewhere sets `<html data-api="...">` instead (and the
//! service lists that host in `--cors-origin`).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What the page may load: its own script, style sheet and icon; the API on its own origin;
/// the chosen photo, shown from a `blob:` URL before upload; and the result, which with
/// `--results` in a bucket is the store's presigned `https:` URL. No inline script or style,
/// no plugins, no framing, no form posted anywhere (the upload is a `fetch`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: https:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// One embedded file and the path it is served at.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

static ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/app.js"),
    },
    Asset {
        path: "/assets/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/style.css"),
    },
    Asset {
        path: "/assets/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../web/icon.svg"),
    },
];

/// The page's routes (`/` and `/assets/...`), to merge into the service's router whatever
/// its state type.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

fn serve(asset: &'static Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Result links carry their signature in the query string: never pass it on.
            (header::REFERRER_POLICY, "no-referrer"),
            // Small files that a new binary may change: fetched afresh every time.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router::<()>().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn every_file_is_served_with_its_type_and_the_policy() {
        for asset in &ASSETS {
            let response = get(asset.path).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], asset.content_type);
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body, asset.body.as_bytes());
        }
        assert_eq!(
            get("/assets/missing.js").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    /// Every `/assets/...` file the page names is one this router serves.
    #[test]
    fn the_page_names_only_served_files() {
        let page = ASSETS[0].body;
        let named: Vec<&str> = page
            .split(['"', '\''])
            .filter(|part| part.starts_with("/assets/"))
            .collect();
        assert_eq!(named.len(), ASSETS.len() - 1, "{named:?}");
        for path in named {
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "{path} is not served"
            );
        }
    }

    /// The policy allows no inline script or style, so the markup must carry none: no script
    /// element without `src`, no `<style>`, no `style=` or `on...=` attributes.
    #[test]
    fn the_page_needs_no_inline_script_or_style() {
        let page = ASSETS[0].body.to_ascii_lowercase();
        assert!(!page.contains("<style"));
        assert!(!page.contains(" style="));
        for script in page.split("<script").skip(1) {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains(" src="), "inline <script{tag}>");
        }
        let handler = page.split_whitespace().find(|word| {
            word.strip_prefix("on")
                .and_then(|rest| rest.split_once('='))
                .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_alphabetic()))
        });
        assert_eq!(handler, None, "inline event handler");
    }
}
