//! Who may talk to the dashboard: whoever holds the access token printed with its URL.
//!
//! The token (32 bytes from the operating system's CSPRNG, hex) arrives once in the query
//! (`/?token=…`); the server answers with an `HttpOnly`, `SameSite=Strict` cookie and a
//! redirect to the same page without the token, so it leaves the address bar and the
//! history. Every later request must carry the cookie; anything else is refused with 401.
//!
//! Other defences, because a page on another site can make the browser send requests here:
//! the `Host` must be this loopback address (no DNS rebinding), a request that writes must be
//! a POST whose `Origin` (when sent) is this server and whose form carries the page's CSRF
//! value. This module must never log or echo a token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::UiError;
use crate::page::Failure;
use crate::server::AppState;

/// Draws a fresh secret: 32 random bytes as 64 hex digits.
pub fn random_secret() -> Result<String, UiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| UiError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookie's name: one per port, since cookies do not tell ports apart and two
/// dashboards may run side by side.
pub fn cookie_name(port: u16) -> String {
    format!("infty_ui_{port}")
}

/// The middleware in front of every route.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if !host_allowed(&state, headers) {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "this dashboard answers on its loopback address only",
        )
        .into_response();
    }
    if let Some(given) = query_token(request.uri()) {
        if !same_secret(&given, &state.token) {
            return refused();
        }
        if request.method() != Method::GET {
            return refused();
        }
        let cookie = format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            cookie_name(state.port),
            state.token
        );
        let target = strip_token(request.uri());
        let mut response = Redirect::to(&target).into_response();
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    if !cookie_token(headers, state.port).is_some_and(|given| same_secret(&given, &state.token)) {
        return refused();
    }
    if request.method() != Method::GET && !origin_allowed(&state, headers) {
        return Failure::new(StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    next.run(request).await
}

fn refused() -> Response {
    Failure::new(
        StatusCode::UNAUTHORIZED,
        "open the address `infty ui` printed: it carries the access token",
    )
    .into_response()
}

fn host_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    state.hosts.iter().any(|allowed| allowed == host)
}

fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok())
        && site != "same-origin"
    {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()) {
        None => true,
        Some(origin) => state
            .hosts
            .iter()
            .any(|host| origin == format!("http://{host}")),
    }
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
}

fn strip_token(uri: &Uri) -> String {
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    if rest.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    }
}

fn cookie_token(headers: &HeaderMap, port: u16) -> Option<String> {
    let name = cookie_name(port);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }

    #[test]
    fn fresh_secrets_differ() {
        let a = random_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_secret().unwrap());
    }

    #[test]
    fn the_token_leaves_the_address() {
        let cases = [
            ("/?token=x", "/"),
            ("/runs/a?token=x&before=3", "/runs/a?before=3"),
            ("/?status=failed&token=x", "/?status=failed"),
        ];
        for (uri, expected) in cases {
            assert_eq!(strip_token(&uri.parse().unwrap()), expected, "{uri}");
        }
    }
}
