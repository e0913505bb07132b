//! The Connect protocol's unary calls of the five RPCs, JSON or binary:
//! the same service as gRPC, in another encoding.
//!
//! A call is decoded here (pbjson's proto3 JSON mapping, or prost), then
//! handed to the very `AuthzService` the gRPC routes serve, with the HTTP
//! headers as its metadata: spans (`traceparent`), metric handles, the
//! decision log and the `rpc` label values are those of the gRPC call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::observe::Rpc;
use super::pb::ticket_authz_server::TicketAuthz as _;
use super::service::AuthzService;

/// The path prefix of the service's RPCs.
const PREFIX: &str = "/ticketauthz.v1.TicketAuthz/";

/// Whether `path` is one of the service's RPC paths.
pub fn serves(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Why a Connect call was refused before or instead of an answer.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("no such method `{0}`")]
    UnknownMethod(String),
    #[error("method {0} is not allowed: Connect unary calls are POST")]
    HttpMethod(Method),
    #[error("content-type: `{0}` is not served; send application/json or application/proto")]
    ContentType(String),
    #[error("content-encoding: `{0}` is not supported; send the body uncompressed")]
    ContentEncoding(String),
    #[error("connect-protocol-version: must be 1, not `{0}`")]
    ProtocolVersion(String),
    #[error("connect-timeout-ms: must be 1 to 10 digits, not `{0}`")]
    Timeout(String),
    #[error("request body: larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("request body: {0}")]
    Read(String),
    #[error("{0}")]
    Decode(String),
    #[error("deadline exceeded")]
    Deadline,
    #[error("response: {0}")]
    Encode(String),
    #[error("{}", .0.message())]
    Status(Status),
}

impl ConnectError {
    fn code(&self) -> Code {
        match self {
            Self::UnknownMethod(_)
            | Self::HttpMethod(_)
            | Self::ContentType(_)
            | Self::ContentEncoding(_) => Code::Unimplemented,
            Self::ProtocolVersion(_) | Self::Timeout(_) | Self::Read(_) | Self::Decode(_) => {
                Code::InvalidArgument
            }
            // Not load: a retry cannot mend it (the common rules' 400).
            Self::TooLarge(_) => Code::InvalidArgument,
            Self::Deadline => Code::DeadlineExceeded,
            Self::Encode(_) => Code::Internal,
            Self::Status(status) => status.code(),
        }
    }

    /// The HTTP status: the protocol's own refusals have theirs, the rest
    /// that of their Connect code.
    fn http_status(&self) -> StatusCode {
        match self {
            Self::UnknownMethod(_) => StatusCode::NOT_FOUND,
            Self::HttpMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => http_status(self.code()),
        }
    }

    /// The Connect error body, JSON whatever the call's encoding.
    fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({
            "code": code_name(self.code()),
            "message": self.to_string(),
        });
        let mut response = bytes_response(
            self.http_status(),
            HeaderValue::from_static("application/json"),
            Bytes::from(body.to_string()),
        );
        if let Self::HttpMethod(_) = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// The Connect name of a gRPC code: the metric label's snake case, but
/// for Connect's American `canceled`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Cancelled => "canceled",
        other => super::observe::code_label(other),
    }
}

/// Connect's HTTP status for a code.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn bytes_response(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// How the call's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Proto,
}

impl Encoding {
    /// From `Content-Type`, parameters (such as `charset`) aside.
    fn of(headers: &HeaderMap) -> Result<Self, ConnectError> {
        let value = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let essence = value.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Ok(Self::Json)
        } else if essence.eq_ignore_ascii_case("application/proto") {
            Ok(Self::Proto)
        } else {
            Err(ConnectError::ContentType(value))
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json",
            Self::Proto => "application/proto",
        })
    }

    fn decode<T: DeserializeOwned + prost::Message + Default>(
        self,
        body: &[u8],
    ) -> Result<T, ConnectError> {
        match self {
            Self::Json => decode_json(body),
            Self::Proto => {
                T::decode(body).map_err(|e| ConnectError::Decode(format!("request body: {e}")))
            }
        }
    }

    fn encode<T: Serialize + prost::Message>(self, message: &T) -> Result<Bytes, ConnectError> {
        match self {
            Self::Json => serde_json::to_vec(message)
                .map(Bytes::from)
                .map_err(|e| ConnectError::Encode(e.to_string())),
            Self::Proto => Ok(Bytes::from(message.encode_to_vec())),
        }
    }
}

/// A JSON message, errors naming the member by its proto field path
/// (`checks[1].action`), as the gRPC messages name fields.
fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ConnectError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let message = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let problem = without_position(e.inner());
        ConnectError::Decode(if path == "." {
            format!("request body: {problem}")
        } else {
            format!("{}: {problem}", proto_names(&path))
        })
    })?;
    deserializer
        .end()
        .map_err(|e| ConnectError::Decode(format!("request body: {}", without_position(&e))))?;
    Ok(message)
}

/// serde_json's message without its "at line L column C" suffix: a field
/// path says more to the caller of a one-line body.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// A member path as the caller wrote it (lowerCamelCase or proto names)
/// in proto names: `checks[0].userId` becomes `checks[0].user_id`.
fn proto_names(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `Connect-Timeout-Ms`: at most 10 digits, as the protocol says.
fn timeout(headers: &HeaderMap) -> Result<Option<Duration>, ConnectError> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let valid = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(ms) if valid => Ok(Some(Duration::from_millis(ms))),
        _ => Err(ConnectError::Timeout(text.into_owned())),
    }
}

/// The header checks a call passes before its body is read.
fn check_headers(headers: &HeaderMap) -> Result<(), ConnectError> {
    if let Some(version) = headers.get("connect-protocol-version")
        && version.as_bytes() != b"1"
    {
        return Err(ConnectError::ProtocolVersion(
            String::from_utf8_lossy(version.as_bytes()).into_owned(),
        ));
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(ConnectError::ContentEncoding(
            String::from_utf8_lossy(encoding.as_bytes()).into_owned(),
        ));
    }
    Ok(())
}

/// The Connect edge.
#[derive(Debug)]
pub struct Connect {
    service: Arc<AuthzService>,
    max_message_bytes: usize,
}

impl Connect {
    /// Serves calls with `service`, the one the gRPC routes serve too.
    pub fn new(service: Arc<AuthzService>, max_message_bytes: usize) -> Self {
        Self {
            service,
            max_message_bytes,
        }
    }

    /// Answers one Connect call.
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        self.answer(request)
            .await
            .unwrap_or_else(ConnectError::into_response)
    }

    async fn answer(&self, request: Request<Body>) -> Result<Response<Body>, ConnectError> {
        let path = request.uri().path();
        let rpc = Rpc::ALL.into_iter().find(|rpc| rpc.path() == path);
        let rpc = rpc.ok_or_else(|| {
            ConnectError::UnknownMethod(path.trim_start_matches(PREFIX).to_owned())
        })?;
        if request.method() != Method::POST {
            return Err(ConnectError::HttpMethod(request.method().clone()));
        }
        let encoding = Encoding::of(request.headers())?;
        check_headers(request.headers())?;
        let deadline = timeout(request.headers())?;
        let call = self.call(rpc, encoding, request);
        let answer = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, call)
                .await
                .map_err(|_| ConnectError::Deadline)?,
            None => call.await,
        }?;
        Ok(bytes_response(
            StatusCode::OK,
            encoding.content_type(),
            answer,
        ))
    }

    /// Reads the body, decodes it, asks the service and encodes its answer.
    async fn call(
        &self,
        rpc: Rpc,
        encoding: Encoding,
        request: Request<Body>,
    ) -> Result<Bytes, ConnectError> {
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, self.max_message_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    ConnectError::TooLarge(self.max_message_bytes)
                } else {
                    ConnectError::Read(e.to_string())
                }
            })?
            .to_bytes();
        let call = Unary {
            encoding,
            body,
            metadata: MetadataMap::from_headers(parts.headers),
        };
        let s = Arc::clone(&self.service);
        match rpc {
            Rpc::CheckAccess => call.run(|r| async move { s.check_access(r).await }).await,
            Rpc::CheckAccessBatch => {
                call.run(|r| async move { s.check_access_batch(r).await })
                    .await
            }
            Rpc::ListVisibleTickets => {
                call.run(|r| async move { s.list_visible_tickets(r).await })
                    .await
            }
            Rpc::ListTicketViewers => {
                call.run(|r| async move { s.list_ticket_viewers(r).await })
                    .await
            }
            Rpc::GetVisibilityFilter => {
                call.run(|r| async move { s.get_visibility_filter(r).await })
                    .await
            }
            Rpc::ListVisibleResources => {
                call.run(|r| async move { s.list_visible_resources(r).await })
                    .await
            }
        }
    }
}

/// One call's decoded inputs.
struct Unary {
    encoding: Encoding,
    body: Bytes,
    metadata: MetadataMap,
}

impl Unary {
    async fn run<Req, Resp, F, Fut>(self, rpc: F) -> Result<Bytes, ConnectError>
    where
        Req: DeserializeOwned + prost::Message + Default,
        Resp: Serialize + prost::Message,
        F: FnOnce(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let message: Req = self.encoding.decode(&self.body)?;
        let request =
            tonic::Request::from_parts(self.metadata, tonic::Extensions::default(), message);
        let answer = rpc(request).await.map_err(ConnectError::Status)?;
        self.encoding.encode(answer.get_ref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::grpc::pb;

    #[test]
    fn decode_errors_name_the_member_by_its_proto_name() {
        let e = decode_json::<pb::CheckAccessBatchRequest>(
            br#"{"checks": [{"userId": "u"}, {"action": "ACTION_PEEK"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("checks[1].action: unknown variant `ACTION_PEEK`"),
            "{e}"
        );
        let e = decode_json::<pb::CheckAccessRequest>(br#"{"minRevision": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("min_revision: "), "{e}");
        assert!(!e.contains("line 1"), "{e}");
        let e = decode_json::<pb::CheckAccessRequest>(b"{} x")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("request body: trailing characters"), "{e}");
    }

    #[test]
    fn timeouts_are_at_most_ten_digits() {
        let mut headers = HeaderMap::new();
        assert!(timeout(&headers).unwrap().is_none());
        headers.insert("connect-timeout-ms", HeaderValue::from_static("250"));
        assert_eq!(timeout(&headers).unwrap(), Some(Duration::from_millis(250)));
        for bad in ["", "-1", "12345678901", "1.5"] {
            headers.insert("connect-timeout-ms", HeaderValue::from_static(bad));
            assert!(timeout(&headers).is_err(), "{bad}");
        }
    }
}
