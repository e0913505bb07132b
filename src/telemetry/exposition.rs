//! `GET /metrics`: the registry in the format the scraper asks for.
//! OpenMetrics 1.0 (with exemplars) when `Accept` names
//! `application/openmetrics-text`, else the Prometheus text format 0.0.4,
//! which has no exemplars, `# UNIT` or `# EOF` and which `promtool check
//! metrics` accepts.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue, VARY};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{prometheus_text, text};

use super::metrics::metrics;

/// The `Content-Type` of an OpenMetrics answer.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of a Prometheus text answer.
pub const PROMETHEUS_TEXT: &str = prometheus_text::CONTENT_TYPE;

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::PrometheusText => PROMETHEUS_TEXT,
        }
    }
}

/// One media range of `Accept`: its type and its weight.
fn media_range(range: &str) -> (String, Option<String>, f32) {
    let mut parts = range.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut version = None;
    let mut q = 1.0;
    for param in parts {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            "version" => version = Some(value.to_owned()),
            // A weight that does not parse counts as refused.
            "q" => q = value.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    (media, version, q)
}

/// The format `accept` asks for: OpenMetrics (any version this service
/// speaks, 0.0.1 or 1.0.0) when it names it with a weight at least that
/// of the plain text format; the Prometheus text format otherwise,
/// including for a missing header and `*/*`.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::PrometheusText;
    };
    let (mut openmetrics, mut plain) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let (media, version, q) = media_range(range);
        match media.as_str() {
            "application/openmetrics-text"
                if version
                    .as_deref()
                    .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
            {
                openmetrics = openmetrics.max(q);
            }
            "text/plain" => plain = plain.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= plain {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    }
}

/// The whole registry in `format`.
pub fn render(format: Format) -> Result<String, std::fmt::Error> {
    let mut body = String::with_capacity(16 * 1024);
    match format {
        Format::OpenMetrics => text::encode(&mut body, metrics().registry())?,
        Format::PrometheusText => prometheus_text::encode(&mut body, metrics().registry())?,
    }
    Ok(body)
}

fn respond<B>(request: &Request<B>) -> Response<Full<Bytes>> {
    let format = negotiate(request.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => match render(format) {
            Ok(body) => (StatusCode::OK, format.content_type(), body),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "metrics could not be encoded\n".to_owned(),
            ),
        },
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Caches must not hand one format to a client that asked for the other.
    headers.insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// The `/metrics` endpoint as a service, served by the main port's
/// acceptor (`serve::listen`, without TLS), so that the metrics port backs
/// off on accept errors and drains on shutdown as the main port does.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsEndpoint;

impl<B> tower::Service<Request<B>> for MetricsEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(respond(&request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_when_named_text_otherwise() {
        // What Prometheus 2 and 3 send.
        for accept in [
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "application/openmetrics-text; version=0.0.1",
            "Application/OpenMetrics-Text",
        ] {
            assert_eq!(negotiate(Some(accept)), Format::OpenMetrics, "{accept}");
        }
        for accept in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain;version=0.0.4"),
            Some("application/openmetrics-text;version=2.0.0"),
            Some("application/openmetrics-text;q=0"),
            Some("application/openmetrics-text;q=0.2,text/plain;q=0.9"),
            Some("application/json"),
        ] {
            assert_eq!(negotiate(accept), Format::PrometheusText, "{accept:?}");
        }
    }

    #[test]
    fn only_openmetrics_ends_with_eof() {
        // Families without series are left out: give the latency one a series.
        metrics().rpc_duration("CheckAccess", "allowed");
        let om = render(Format::OpenMetrics).unwrap_or_default();
        let text = render(Format::PrometheusText).unwrap_or_default();
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# UNIT ticket_authz_rpc_duration_seconds seconds"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        assert!(text.contains("# TYPE ticket_authz_decisions_total counter\n"));
    }
}
