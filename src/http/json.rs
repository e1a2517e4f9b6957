//! The JSON body extractor: any JSON value, with errors that say what to fix
//! (400 for text that is not JSON, 413 for a body over the limit).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::Value;

use super::error::ApiError;

/// A request body parsed as JSON.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(
                    "the request body is larger than the server accepts (TAME_LIMITS__BODY_BYTES)"
                        .into(),
                )
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "the request body is empty; send a JSON object".into(),
            ));
        }
        if let Err(e) = std::str::from_utf8(&bytes) {
            return Err(ApiError::BadRequest(format!(
                "the request body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
    }
}
