//! The main port's own acceptor: TCP with `TCP_NODELAY`, an optional TLS
//! handshake with the config current when the connection arrives (so a
//! rotated certificate or client CA applies to new connections and open
//! ones keep theirs), then HTTP/2 or HTTP/1.1 on each connection with one
//! shared tower service. Stopping closes the port and drains open
//! connections gracefully; the caller bounds how long.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::Service;

/// A handshake not done by then is dropped, so that a caller that connects
/// and sends nothing holds no task for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (EMFILE, ENOBUFS) the loop waits, from this ...
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// ... doubling up to this, instead of spinning on the error.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// tonic's default HTTP/2 keep-alive timeout (used only with an interval).
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP settings of every connection, as tonic's `Server` sets them by
/// default (no keep-alive pings, no stream limit, hyper's window sizes and
/// header list limit), plus HTTP/1.1 for the HTTP forms.
fn http() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_connection_window_size(None)
        .initial_stream_window_size(None)
        .max_concurrent_streams(None)
        .keep_alive_interval(None)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .adaptive_window(false)
        .max_pending_accept_reset_streams(None)
        .max_local_error_reset_streams(None)
        .max_frame_size(None);
    // hyper enforces its HTTP/1 header read timeout only with a timer.
    builder.http1().timer(TokioTimer::new());
    builder
}

/// Serves `service` on every connection `listener` accepts until `stop`,
/// then stops accepting (the port closes), asks each open connection to
/// finish its calls (HTTP/2 GOAWAY) and returns when all have. Dropping
/// the future closes the connections still open.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<Arc<ArcSwap<ServerConfig>>>,
    service: S,
    stop: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http = http();
    let service = TowerToHyperService::new(service);
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = BACKOFF_MIN;
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended
                    && e.is_panic()
                {
                    tracing::warn!(error = %e, "a connection task panicked");
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = BACKOFF_MIN;
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "accepting a connection failed; retrying");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        // Without it a response written while the previous one is
        // unacknowledged waits for the client's delayed ACK (40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // The config current now: a rotation after this point applies to
        // the next connection, not to this one.
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.load_full()));
        let (http, service, draining) = (http.clone(), service.clone(), draining.clone());
        connections.spawn(async move {
            match acceptor {
                None => connection(&http, stream, service, draining).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(&acceptor, stream).await {
                        connection(&http, tls, service, draining).await;
                    }
                }
            }
        });
    }
    // Closes the port: new callers are refused at once rather than hanging.
    drop(listener);
    drain.send_replace(true);
    while connections.join_next().await.is_some() {}
}

/// The TLS handshake; a failure ends this connection only.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}

/// Serves one connection until it ends, or, once draining starts, until
/// its calls in progress have finished.
async fn connection<I, S, B>(
    http: &auto::Builder<TokioExecutor>,
    io: I,
    service: TowerToHyperService<S>,
    mut draining: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = async {
            // The guard it returns must not live across the drain below.
            let _ = draining.wait_for(|d| *d).await;
        } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Answers every request with an empty 204.
    #[derive(Clone)]
    struct NoContent;

    impl Service<Request<Incoming>> for NoContent {
        type Response = Response<http_body_util::Empty<hyper::body::Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Incoming>) -> Self::Future {
            let mut response = Response::new(http_body_util::Empty::new());
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            std::future::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn plaintext_http1_is_served_and_stopping_closes_the_port() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, None, NoContent, async move {
            let _ = stopped.await;
        }));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
        stop.send(()).unwrap();
        server.await.unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the port is still open"
        );
    }
}
