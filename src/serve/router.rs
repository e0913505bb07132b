//! The main port's dispatch: gRPC (by content type) to the tonic routes,
//! and the HTTP forms (by path) to their edges: Connect calls of the five
//! RPCs, the AuthZEN endpoints and their configuration document. The rest
//! is a 404. Layers (deadline, bearer token, shedding) wrap this whole
//! service, so every form passes them alike.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Request, Response, header};
use tonic::body::Body;
use tower::Service;

use crate::authzen;
use crate::grpc::connect::{self, Connect};

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Grpc,
    Connect,
    Authzen,
    NotFound,
}

fn route<B>(request: &Request<B>) -> Route {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let path = request.uri().path();
    if grpc {
        Route::Grpc
    } else if connect::serves(path) {
        Route::Connect
    } else if authzen::serves(path) {
        Route::Authzen
    } else {
        Route::NotFound
    }
}

/// The HTTP edges, shared by every connection.
#[derive(Debug)]
pub(crate) struct HttpEdges {
    pub connect: Connect,
    pub authzen: authzen::Endpoints,
}

/// gRPC routes `G` and the HTTP edges behind one tower service.
#[derive(Debug, Clone)]
pub(crate) struct MainRouter<G> {
    grpc: G,
    http: Arc<HttpEdges>,
}

impl<G> MainRouter<G> {
    pub fn new(grpc: G, http: HttpEdges) -> Self {
        Self {
            grpc,
            http: Arc::new(http),
        }
    }
}

impl<G, B> Service<Request<B>> for MainRouter<G>
where
    G: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    G::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.grpc.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match route(&request) {
            Route::Grpc => Box::pin(self.grpc.call(request)),
            Route::Connect => {
                let http = Arc::clone(&self.http);
                Box::pin(async move { Ok(http.connect.handle(request.map(Body::new)).await) })
            }
            Route::Authzen => {
                let http = Arc::clone(&self.http);
                Box::pin(async move { Ok(http.authzen.handle(request.map(Body::new)).await) })
            }
            Route::NotFound => Box::pin(std::future::ready(Ok(not_found()))),
        }
    }
}

/// A JSON 404 for a path no edge serves.
fn not_found() -> Response<Body> {
    let mut response = Response::new(Body::new(http_body_util::Full::new(
        bytes::Bytes::from_static(br#"{"error":"no such endpoint"}"#),
    )));
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
