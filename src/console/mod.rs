//! The web console (`serve --console-listen`): an edge beside gRPC, AuthZEN
//! and ext_authz that renders, as server-side HTML, what the application
//! service and the snapshot it serves already compute: the explorer
//! (search, users, tickets, organisations, groups, the question form) and
//! the playground (a pasted dataset run by `ticket-authz test`'s runner in
//! a private snapshot). It is read-only: GET pages, plus the sign-in form
//! and the playground, which never touch the served data.

mod explore;
mod html;
mod playground;
mod session;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};

pub use playground::{MAX_DATASET_BYTES, TIME_BOUND};
pub use session::{COOKIE_NAME, SessionError, Sessions};

use crate::app::{Authz, CallMetrics, Operation};
use crate::serve::Tokens;

/// The console's one operation name in spans and latency metrics.
const OPERATION: Operation = Operation {
    system: "http",
    service: "ticket_authz.console",
    method: "console",
    span_name: "console",
};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Console {
    app: Authz,
    sessions: Sessions,
    calls: CallMetrics,
    /// Playground runs in progress: at most this many at once.
    runs: Arc<tokio::sync::Semaphore>,
}

type Shared = State<Arc<Console>>;

/// The console's routes, signed-in check and headers, ready for the
/// port's acceptor. `tokens` is the API's token set (`None` only on
/// loopback); `tls` marks the session cookie `Secure`.
pub fn router(
    app: Authz,
    tokens: Option<Arc<ArcSwap<Tokens>>>,
    tls: bool,
) -> Result<Router, SessionError> {
    let console = Arc::new(Console {
        app,
        sessions: Sessions::new(tokens, tls)?,
        calls: CallMetrics::new(OPERATION, &["unavailable", "invalid_argument"]),
        runs: Arc::new(tokio::sync::Semaphore::new(playground::CONCURRENT_RUNS)),
    });
    Ok(Router::new()
        .route("/", get(explore::home))
        .route("/search", get(explore::search))
        .route("/users/{id}", get(explore::user))
        .route("/tickets/{id}", get(explore::ticket))
        .route("/orgs/{id}", get(explore::organisation))
        .route("/groups/{id}", get(explore::group))
        .route("/profiles/{id}", get(explore::profile))
        .route("/companies/{id}", get(explore::company))
        .route("/check", get(explore::check))
        .route("/playground", get(playground::form).post(playground::run))
        .route(
            "/playground/export",
            axum::routing::post(playground::export),
        )
        .route("/login", get(login_form).post(login))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(explore::no_such_page)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&console),
            signed_in,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            playground::MAX_BODY_BYTES,
        ))
        .layer(middleware::from_fn(headers))
        .with_state(console))
}

/// Everything but the assets and the sign-in form needs a session (or the
/// bearer header); without one the answer is the sign-in form, no data.
async fn signed_in(State(console): Shared, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/assets/") || path == "/login" {
        return next.run(request).await;
    }
    if console.sessions.admits(request.headers()) {
        return next.run(request).await;
    }
    let back = if request.method() == Method::GET {
        request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned()
    } else {
        path.to_owned()
    };
    login_page(StatusCode::UNAUTHORIZED, &back, None)
}

/// Headers on every answer: no caching of pages that show data, no
/// framing, scripts and styles from the console itself only.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, serde::Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Debug, serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this console: never another host (`//x`, `/\x`).
fn safe_next(next: &str) -> &str {
    let bytes = next.as_bytes();
    let local = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !next.contains(['\r', '\n']);
    if local { next } else { "/" }
}

fn login_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let body = maud::html! {
        p { "The console uses the service's API token. Enter it once; this browser then keeps a session until the token changes." }
        @if let Some(problem) = problem {
            p.error role="alert" { (problem) }
        }
        form method="post" action="/login" {
            input type="hidden" name="next" value=(safe_next(next));
            label for="token" { "API token" }
            " "
            input #token type="password" name="token" autocomplete="off" required autofocus;
            " "
            button type="submit" { "Sign in" }
        }
    };
    html::status_page(status, "Sign in", None, body)
}

async fn login_form(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    login_page(StatusCode::OK, &q.next, None)
}

async fn login(
    State(console): Shared,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).to_owned();
    if !console.sessions.required() {
        return redirect(&next, None);
    }
    if !console.sessions.token_valid(&form.token) {
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not accepted."),
        );
    }
    redirect(&next, Some(console.sessions.cookie_for(&form.token)))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}
