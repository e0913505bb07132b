//! The layers in front of everything on the main port, whatever the
//! protocol: caller authentication, then admission (load shedding). gRPC
//! callers get gRPC statuses; any other request gets HTTP 401 / 429 with a
//! JSON body (the Connect error shape on Connect paths, `{"error": ...}`
//! elsewhere). Health checks pass both untouched, so probes work without a
//! token and under load; the AuthZEN configuration document needs no token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_util::future::{Either, Join, Map, Ready, join, ready};
use http::{HeaderValue, Request, Response, header};
use prometheus_client::metrics::counter::Counter;
use tonic::Status;
use tower::{Layer, Service};

use crate::grpc::connect;

use super::credentials::Tokens;
use crate::telemetry::metrics::{LatencyHistogram, metrics};

/// Paths that no layer here touches: the health service.
const EXEMPT_PREFIX: &str = "/grpc.health.v1.Health/";

/// The `rpc` label of a path no route names.
const OTHER: &str = "other";

/// The AuthZEN discovery document, which its spec says needs no token.
const AUTHZEN_CONFIGURATION: &str = "/.well-known/authzen-configuration";

fn exempt<B>(request: &Request<B>) -> bool {
    request.uri().path().starts_with(EXEMPT_PREFIX)
}

/// What needs no token: health, and exactly `GET` of the AuthZEN
/// configuration document.
fn exempt_from_token<B>(request: &Request<B>) -> bool {
    exempt(request)
        || (request.method() == http::Method::GET && request.uri().path() == AUTHZEN_CONFIGURATION)
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// A response body a refusal can be written into.
pub trait RefusalBody {
    fn from_static(bytes: &'static [u8]) -> Self;
}

impl RefusalBody for tonic::body::Body {
    fn from_static(bytes: &'static [u8]) -> Self {
        tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from_static(bytes)))
    }
}

/// A refusal's JSON bodies: the Connect error for the RPC paths, the
/// `{"error": ...}` of the other HTTP forms elsewhere.
struct Refusal {
    status: http::StatusCode,
    connect: &'static [u8],
    other: &'static [u8],
}

const UNAUTHENTICATED: Refusal = Refusal {
    status: http::StatusCode::UNAUTHORIZED,
    connect: br#"{"code":"unauthenticated","message":"missing or wrong bearer token"}"#,
    other: br#"{"error":"missing or wrong bearer token"}"#,
};

const SHED: Refusal = Refusal {
    status: http::StatusCode::TOO_MANY_REQUESTS,
    connect: br#"{"code":"resource_exhausted","message":"too many requests in progress; retry with backoff"}"#,
    other: br#"{"error":"too many requests in progress; retry with backoff"}"#,
};

/// The HTTP answer of `refusal` to `request`.
fn http_refusal<B, R: RefusalBody>(request: &Request<B>, refusal: &Refusal) -> Response<R> {
    let body = if connect::serves(request.uri().path()) {
        refusal.connect
    } else {
        refusal.other
    };
    let mut response = Response::new(R::from_static(body));
    *response.status_mut() = refusal.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The credentials of `authorization: Bearer <token>`: the scheme is
/// matched without regard to case (RFC 9110 §11.1), the token exactly.
fn bearer_token(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' ').as_bytes())
}

/// Requires `authorization: Bearer <token>` with one of the current tokens
/// (each compared in constant time) when tokens are configured; lets
/// everything through when none are. The set is read per request without a
/// lock, so a rotated token file applies to the next request.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Option<Arc<ArcSwap<Tokens>>>,
}

impl AuthLayer {
    /// One fixed token, or none.
    pub fn new(token: Option<&str>) -> Self {
        Self::rotating(token.map(|t| Arc::new(ArcSwap::from_pointee(Tokens::new([t])))))
    }

    /// The tokens in `tokens` at the time of each request.
    pub fn rotating(tokens: Option<Arc<ArcSwap<Tokens>>>) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Option<Arc<ArcSwap<Tokens>>>,
}

impl<S> Auth<S> {
    fn admits<B>(&self, request: &Request<B>) -> bool {
        let Some(tokens) = &self.tokens else {
            return true;
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(bearer_token)
            .unwrap_or_default();
        tokens.load().admits(presented)
    }
}

impl<S, B, R> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    R: Default + RefusalBody,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<R>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if exempt_from_token(&request) || self.admits(&request) {
            return Either::Right(self.inner.call(request));
        }
        let response = if is_grpc(&request) {
            Status::unauthenticated("missing or wrong bearer token").into_http()
        } else {
            let mut response = http_refusal(&request, &UNAUTHENTICATED);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        };
        Either::Left(ready(Ok(response)))
    }
}

/// Bounds each gRPC call by the deadline its caller sent (`grpc-timeout`),
/// as tonic's own server did: past it the call is dropped and answered
/// `DEADLINE_EXCEEDED`. Calls without the header are passed through as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

/// The `grpc-timeout` header (up to 8 digits and a unit, per the gRPC HTTP/2
/// protocol); anything else is ignored, as tonic ignores it.
fn grpc_timeout<B>(request: &Request<B>) -> Option<Duration> {
    let value = request.headers().get("grpc-timeout")?.to_str().ok()?;
    let unit = value.chars().last()?;
    let digits = value.get(..value.len() - unit.len_utf8())?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

type Bounded<F, T> = Map<tokio::time::Timeout<F>, fn(Result<T, tokio::time::error::Elapsed>) -> T>;

fn expired<R: Default, E>(
    result: Result<Result<Response<R>, E>, tokio::time::error::Elapsed>,
) -> Result<Response<R>, E> {
    result.unwrap_or_else(|_| Ok(Status::deadline_exceeded("deadline exceeded").into_http()))
}

impl<S, B, R> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<S::Future, Bounded<S::Future, Result<Response<R>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match grpc_timeout(&request).filter(|_| is_grpc(&request)) {
            None => Either::Left(self.inner.call(request)),
            Some(deadline) => {
                let expired: fn(_) -> _ = expired;
                let bounded = tokio::time::timeout(deadline, self.inner.call(request));
                Either::Right(futures_util::FutureExt::map(bounded, expired))
            }
        }
    }
}

/// What is counted when a request of one route is shed: the counter is
/// made with the layer (so it shows at zero from start), the latency
/// series at the first refusal (see [`crate::app::CallMetrics`] for why
/// lazily).
#[derive(Debug)]
struct ShedMetrics {
    path: &'static str,
    label: &'static str,
    requests: Counter,
    latency: OnceLock<LatencyHistogram>,
}

impl ShedMetrics {
    fn new(path: &'static str, label: &'static str) -> Self {
        Self {
            path,
            label,
            requests: metrics().shed(label),
            latency: OnceLock::new(),
        }
    }

    fn record(&self, seconds: f64) {
        self.requests.inc();
        self.latency
            .get_or_init(|| metrics().rpc_duration(self.label, "resource_exhausted"))
            .observe(seconds, None, None);
    }
}

/// What every clone of the layer shares: one allocation, so a request
/// clones one `Arc`, and a count of requests in progress that admission
/// and release each change with one atomic operation (a semaphore would
/// take its waiters' lock on every release, though nothing ever waits).
#[derive(Debug)]
pub struct ShedState {
    in_progress: AtomicUsize,
    limit: usize,
    routes: Box<[ShedMetrics]>,
    other: ShedMetrics,
}

/// Bounds the requests in progress; beyond the bound a request is refused
/// at once (RESOURCE_EXHAUSTED, or 429) instead of queueing.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    state: Arc<ShedState>,
}

impl ShedLayer {
    /// `routes` are the paths served, each with its bounded `rpc` label;
    /// any other path is counted as `other`.
    pub fn new(max_concurrent: usize, routes: &[(&'static str, &'static str)]) -> Self {
        Self {
            state: Arc::new(ShedState {
                in_progress: AtomicUsize::new(0),
                limit: max_concurrent.max(1),
                routes: routes
                    .iter()
                    .map(|(path, label)| ShedMetrics::new(path, label))
                    .collect(),
                other: ShedMetrics::new("", OTHER),
            }),
        }
    }

    /// A place among the requests in progress, if one is free.
    fn admit(&self) -> Option<Admitted> {
        let before = self.state.in_progress.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(Arc::clone(&self.state));
        // Over the bound: dropping the place gives it back.
        (before < self.state.limit).then_some(admitted)
    }
}

/// One request's place among those in progress, given back on drop
/// (public only because it is part of [`Shed`]'s future type).
#[derive(Debug)]
pub struct Admitted(Arc<ShedState>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    layer: ShedLayer,
}

/// The inner call with its place held until it completes.
type Held<F, T> = Map<Join<F, Ready<Admitted>>, fn((T, Admitted)) -> T>;

fn release<T>((result, _place): (T, Admitted)) -> T {
    result
}

impl<S, B, R> Service<Request<B>> for Shed<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    R: Default + RefusalBody,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<
        Ready<Result<Response<R>, S::Error>>,
        Either<S::Future, Held<S::Future, Result<Response<R>, S::Error>>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if exempt(&request) {
            return Either::Right(Either::Left(self.inner.call(request)));
        }
        if let Some(place) = self.layer.admit() {
            let call = join(self.inner.call(request), ready(place));
            let release: fn(_) -> _ = release;
            return Either::Right(Either::Right(futures_util::FutureExt::map(call, release)));
        }
        // Timed only when refused: an admitted call's latency is the
        // route's own to record.
        let started = Instant::now();
        let state = &self.layer.state;
        let path = request.uri().path();
        let metrics = state
            .routes
            .iter()
            .find(|m| m.path == path)
            .unwrap_or(&state.other);
        let response = if is_grpc(&request) {
            Status::resource_exhausted("too many requests in progress; retry with backoff")
                .into_http()
        } else {
            http_refusal(&request, &SHED)
        };
        metrics.record(started.elapsed().as_secs_f64());
        Either::Left(ready(Ok(response)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::future::poll_fn;

    use super::*;

    impl RefusalBody for String {
        fn from_static(bytes: &'static [u8]) -> Self {
            String::from_utf8_lossy(bytes).into_owned()
        }
    }

    /// Answers 200 with an empty body.
    #[derive(Clone)]
    struct Ok200;

    impl Service<Request<()>> for Ok200 {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = Ready<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            ready(Ok(Response::new("answered".to_owned())))
        }
    }

    async fn send<S: Service<Request<()>, Response = Response<String>, Error = Infallible>>(
        service: &mut S,
        request: Request<()>,
    ) -> Response<String> {
        poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        service.call(request).await.unwrap()
    }

    fn request(path: &str, headers: &[(&'static str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[tokio::test]
    async fn other_protocols_get_401_with_a_bearer_challenge() {
        let mut auth = AuthLayer::new(Some("t0ken")).layer(Ok200);
        let refused = send(&mut auth, request("/v1/evaluation", &[])).await;
        assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let wrong = send(
            &mut auth,
            request("/v1/evaluation", &[("authorization", "Bearer nope")]),
        )
        .await;
        assert_eq!(wrong.status(), http::StatusCode::UNAUTHORIZED);
        for credentials in ["Bearer t0ken", "bearer t0ken", "BEARER  t0ken"] {
            let ok = send(
                &mut auth,
                request("/v1/evaluation", &[("authorization", credentials)]),
            )
            .await;
            assert_eq!(ok.body(), "answered", "{credentials}");
        }
        // gRPC callers get the gRPC status, health passes without a token.
        let grpc = send(
            &mut auth,
            request("/x.Y/Z", &[("content-type", "application/grpc")]),
        )
        .await;
        assert_eq!(grpc.headers()["grpc-status"], "16");
        let health = send(&mut auth, request("/grpc.health.v1.Health/Check", &[])).await;
        assert_eq!(health.body(), "answered");
    }

    #[tokio::test]
    async fn http_refusals_are_json_in_the_shape_of_their_form() {
        let mut auth = AuthLayer::new(Some("t0ken")).layer(Ok200);
        let connect = send(
            &mut auth,
            request("/ticketauthz.v1.TicketAuthz/CheckAccess", &[]),
        )
        .await;
        assert_eq!(connect.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(connect.headers()[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_str(connect.body()).unwrap();
        assert_eq!(body["code"], "unauthenticated");
        let other = send(&mut auth, request("/access/v1/evaluation", &[])).await;
        let body: serde_json::Value = serde_json::from_str(other.body()).unwrap();
        assert_eq!(body["error"], "missing or wrong bearer token");

        let layer = ShedLayer::new(1, &[]);
        let mut busy = layer.layer(Pending);
        poll_fn(|cx| busy.poll_ready(cx)).await.unwrap();
        let _held = busy.call(request("/x", &[]));
        let mut shed = layer.layer(Ok200);
        let connect = send(
            &mut shed,
            request("/ticketauthz.v1.TicketAuthz/ListVisibleTickets", &[]),
        )
        .await;
        assert_eq!(connect.status(), http::StatusCode::TOO_MANY_REQUESTS);
        let body: serde_json::Value = serde_json::from_str(connect.body()).unwrap();
        assert_eq!(body["code"], "resource_exhausted");
        let other = send(&mut shed, request("/access/v1/evaluation", &[])).await;
        let body: serde_json::Value = serde_json::from_str(other.body()).unwrap();
        assert!(body["error"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn only_get_of_the_authzen_configuration_needs_no_token() {
        let mut auth = AuthLayer::new(Some("t0ken")).layer(Ok200);
        let get = send(&mut auth, request(AUTHZEN_CONFIGURATION, &[])).await;
        assert_eq!(get.body(), "answered");
        let post = Request::builder()
            .method(http::Method::POST)
            .uri(AUTHZEN_CONFIGURATION)
            .body(())
            .unwrap();
        let post = send(&mut auth, post).await;
        assert_eq!(post.status(), http::StatusCode::UNAUTHORIZED);
        let below = send(
            &mut auth,
            request("/.well-known/authzen-configuration/x", &[]),
        )
        .await;
        assert_eq!(below.status(), http::StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_grpc_call_past_its_deadline_is_answered_deadline_exceeded() {
        let mut bounded = DeadlineLayer.layer(Pending);
        let grpc = [
            ("content-type", "application/grpc"),
            ("grpc-timeout", "50m"),
        ];
        let late = send(&mut bounded, request("/a.B/C", &grpc)).await;
        assert_eq!(late.headers()["grpc-status"], "4");
        let mut fast = DeadlineLayer.layer(Ok200);
        let ok = send(&mut fast, request("/a.B/C", &grpc)).await;
        assert_eq!(ok.body(), "answered");
        for (value, expected) in [
            ("1H", Some(Duration::from_secs(3600))),
            ("250u", Some(Duration::from_micros(250))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("123456789S", None),
            ("5x", None),
            ("m", None),
            ("", None),
        ] {
            assert_eq!(
                grpc_timeout(&request("/", &[("grpc-timeout", value)])),
                expected,
                "{value}"
            );
        }
    }

    /// Never answers, so that its callers hold their permits.
    #[derive(Clone)]
    struct Pending;

    impl Service<Request<()>> for Pending {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::future::Pending<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::pending()
        }
    }

    #[tokio::test]
    async fn beyond_the_bound_other_protocols_get_429_and_health_passes() {
        let layer = ShedLayer::new(1, &[("/a.B/C", "C")]);
        let mut busy = layer.layer(Pending);
        poll_fn(|cx| busy.poll_ready(cx)).await.unwrap();
        let held = busy.call(request("/a.B/C", &[]));
        let mut shed = layer.layer(Ok200);
        let refused = send(&mut shed, request("/v1/evaluation", &[])).await;
        assert_eq!(refused.status(), http::StatusCode::TOO_MANY_REQUESTS);
        let grpc = send(
            &mut shed,
            request("/a.B/C", &[("content-type", "application/grpc+proto")]),
        )
        .await;
        assert_eq!(grpc.headers()["grpc-status"], "8");
        let health = send(&mut shed, request("/grpc.health.v1.Health/Check", &[])).await;
        assert_eq!(health.body(), "answered");
        drop(held);
        let ok = send(&mut shed, request("/v1/evaluation", &[])).await;
        assert_eq!(ok.body(), "answered");
    }
}
