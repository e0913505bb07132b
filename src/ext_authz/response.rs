//! The answers Envoy acts on (http-api.md §3): `OK` with the reason and
//! revision set on the upstream request, else a local reply with its HTTP
//! status and a JSON body.

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::Code;

/// The upstream request header carrying the allowing reason.
pub const REASON_HEADER: &str = "x-ticket-authz-reason";
/// The upstream request header carrying the revision decided at.
pub const REVISION_HEADER: &str = "x-ticket-authz-revision";

/// Replaces every value a client sent under `key`. Envoy applies the
/// response's `headers_to_remove` after its headers, so naming these
/// headers there would drop the values set here; overwriting alone
/// already discards what the client sent.
fn overwrite(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            ..HeaderValue::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn status(code: Code, message: &str) -> Option<rpc::Status> {
    Some(rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: Vec::new(),
    })
}

/// Let the request through, telling the upstream why and at which
/// revision; without a revision (no question was asked) a client's
/// revision header is removed instead.
pub fn allowed(reason: &str, revision: Option<u64>) -> CheckResponse {
    let mut headers = vec![overwrite(REASON_HEADER, reason)];
    let mut headers_to_remove = Vec::new();
    match revision {
        Some(r) => headers.push(overwrite(REVISION_HEADER, &r.to_string())),
        None => headers_to_remove.push(REVISION_HEADER.to_owned()),
    }
    CheckResponse {
        status: status(Code::Ok, ""),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..OkHttpResponse::default()
        })),
        ..CheckResponse::default()
    }
}

/// Refuse the request with `http` and a JSON `body`.
pub fn refused(code: Code, http: u16, body: &serde_json::Value) -> CheckResponse {
    let body = body.to_string();
    CheckResponse {
        status: status(code, &body),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(http),
            }),
            headers: vec![overwrite("content-type", "application/json")],
            body,
        })),
        ..CheckResponse::default()
    }
}

/// A denial, with its reason name.
pub fn denied(reason: &str) -> CheckResponse {
    refused(
        Code::PermissionDenied,
        403,
        &serde_json::json!({ "reason": reason }),
    )
}

/// A request the mapping or the service cannot answer, with its error.
pub fn error(code: Code, http: u16, message: &str) -> CheckResponse {
    refused(code, http, &serde_json::json!({ "error": message }))
}
