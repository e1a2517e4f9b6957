//! The query-string extractor: parameters that cannot be read get a JSON 422
//! that says which and why. A handler whose parameters are its own (not
//! **compat**) refuses unknown names too (`#[serde(deny_unknown_fields)]`):
//! a mistyped filter would otherwise be dropped and widen what is returned.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The request's query parameters, as `T`.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(Params(q)),
            Err(e) => {
                let text = e.body_text();
                let why = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(ApiError::Invalid(format!(
                    "the query string cannot be used: {why}"
                )))
            }
        }
    }
}
