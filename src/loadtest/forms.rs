//! The forms a load run can send the same questions in: gRPC, Connect
//! JSON, AuthZEN and Envoy's ext_authz `Check`. Every request is encoded
//! before the clock starts; HTTP forms travel over the same HTTP/2 channel
//! as gRPC, so a comparison measures the form and not the client.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use http::{HeaderValue, header};
use http_body_util::{BodyExt as _, Full};
use serde_json::json;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tower::{Service as _, ServiceExt as _};

use super::workload::{Kind, Workload};
use crate::core::Action;
use crate::grpc::client::{Client, TokenInterceptor};
use crate::grpc::convert::action_input;
use crate::grpc::pb;
use crate::grpc::pb::ticket_authz_client::TicketAuthzClient;

/// How the questions are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    Grpc,
    Connect,
    Authzen,
    ExtAuthz,
}

impl Form {
    pub const ALL: [Form; 4] = [Form::Grpc, Form::Connect, Form::Authzen, Form::ExtAuthz];

    pub fn name(self) -> &'static str {
        match self {
            Form::Grpc => "grpc",
            Form::Connect => "connect",
            Form::Authzen => "authzen",
            Form::ExtAuthz => "ext-authz",
        }
    }

    /// Parses `grpc,connect,…`: each form once, in the order given.
    pub fn parse_list(text: &str) -> Result<Vec<Form>, String> {
        let mut forms = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let form = Form::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    format!("--forms: unknown form `{name}` (expected grpc, connect, authzen or ext-authz)")
                })?;
            if forms.contains(&form) {
                return Err(format!("--forms: `{name}` is named twice"));
            }
            forms.push(form);
        }
        if forms.is_empty() {
            return Err("--forms: name at least one form".into());
        }
        Ok(forms)
    }

    /// Whether this form has a request for `kind`.
    pub fn sends(self, kind: Kind) -> bool {
        self != Form::ExtAuthz || kind == Kind::Check
    }
}

type ExtClient = AuthorizationClient<InterceptedService<Channel, TokenInterceptor>>;

/// One connection of one form.
#[derive(Debug, Clone)]
pub enum Conn {
    Grpc(Client),
    Http(Http),
    ExtAuthz(ExtClient, Arc<Vec<CheckRequest>>),
}

/// An HTTP form over a gRPC channel: the channel adds scheme and
/// authority, TLS and HTTP/2; the body and path are the form's.
#[derive(Debug, Clone)]
pub struct Http {
    channel: Channel,
    token: Option<HeaderValue>,
    bodies: Arc<Bodies>,
}

/// Encoded requests of each kind, with the path each goes to.
#[derive(Debug)]
struct Bodies {
    paths: [&'static str; 3],
    by_kind: [Vec<Bytes>; 3],
}

impl Conn {
    /// A connection of `form` on `channel`, with requests encoded from
    /// `workload`.
    pub fn new(
        form: Form,
        channel: Channel,
        token: Option<HeaderValue>,
        workload: &Workload,
    ) -> Result<Conn, String> {
        Ok(match form {
            Form::Grpc => {
                let interceptor = TokenInterceptor::new(token);
                Conn::Grpc(TicketAuthzClient::with_interceptor(channel, interceptor))
            }
            Form::Connect => Conn::Http(Http {
                channel,
                token,
                bodies: Arc::new(connect_bodies(workload)?),
            }),
            Form::Authzen => Conn::Http(Http {
                channel,
                token,
                bodies: Arc::new(authzen_bodies(workload)),
            }),
            Form::ExtAuthz => Conn::ExtAuthz(
                AuthorizationClient::with_interceptor(channel, TokenInterceptor::new(token)),
                Arc::new(workload.checks.iter().map(envoy_request).collect()),
            ),
        })
    }

    /// Sends request `pick` of `kind`; the answer is read and dropped.
    /// Anything but a success (for ext_authz: an answer, allowed or not)
    /// is an error.
    pub async fn send(
        &mut self,
        workload: &Workload,
        kind: Kind,
        pick: usize,
    ) -> Result<(), String> {
        let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
        match self {
            Conn::Grpc(client) => match kind {
                Kind::Check => {
                    let mut req = workload.checks[pick % workload.checks.len()].clone();
                    if let Some(ticket) = workload.cold.as_ref().and_then(|c| c.ticket(pick)) {
                        ticket.clone_into(&mut req.ticket_id);
                    }
                    client.check_access(req).await.map(drop).map_err(status)
                }
                Kind::Batch => {
                    let req = workload.batches[pick % workload.batches.len()].clone();
                    client
                        .check_access_batch(req)
                        .await
                        .map(drop)
                        .map_err(status)
                }
                Kind::List => {
                    let req = workload.lists[pick % workload.lists.len()].clone();
                    client
                        .list_visible_tickets(req)
                        .await
                        .map(drop)
                        .map_err(status)
                }
            },
            Conn::ExtAuthz(client, requests) => {
                let req = requests[pick % requests.len()].clone();
                let answer = client.check(req).await.map_err(status)?.into_inner();
                // A decision either way is an answer; 400 or 503 inside it is not.
                match answer.status.map_or(0, |s| s.code) {
                    0 | 7 => Ok(()),
                    code => Err(format!("ext_authz answered with status code {code}")),
                }
            }
            Conn::Http(http) => http.send(kind, pick).await,
        }
    }
}

impl Http {
    async fn send(&mut self, kind: Kind, pick: usize) -> Result<(), String> {
        let pool = &self.bodies.by_kind[kind.index()];
        let Some(body) = pool.get(pick % pool.len().max(1)) else {
            return Err(format!("no {} requests in this form", kind.name()));
        };
        let mut request = http::Request::post(self.bodies.paths[kind.index()])
            .header(header::CONTENT_TYPE, "application/json")
            .body(tonic::body::Body::new(Full::new(body.clone())))
            .map_err(|e| e.to_string())?;
        if let Some(token) = &self.token {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, token.clone());
        }
        let channel = self.channel.ready().await.map_err(|e| e.to_string())?;
        let response = channel.call(request).await.map_err(|e| e.to_string())?;
        let code = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if code != http::StatusCode::OK {
            return Err(format!("HTTP {code}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(())
    }
}

fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Bytes, String> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| format!("encoding a request: {e}"))
}

/// The proto3 JSON of the workload's messages, for Connect.
fn connect_bodies(workload: &Workload) -> Result<Bodies, String> {
    let rpc = |name: &str| -> &'static str {
        match name {
            "CheckAccess" => "/ticketauthz.v1.TicketAuthz/CheckAccess",
            "CheckAccessBatch" => "/ticketauthz.v1.TicketAuthz/CheckAccessBatch",
            _ => "/ticketauthz.v1.TicketAuthz/ListVisibleTickets",
        }
    };
    Ok(Bodies {
        paths: Kind::ALL.map(|k| rpc(k.name())),
        by_kind: [
            workload
                .checks
                .iter()
                .map(json_bytes)
                .collect::<Result<_, _>>()?,
            workload
                .batches
                .iter()
                .map(json_bytes)
                .collect::<Result<_, _>>()?,
            workload
                .lists
                .iter()
                .map(json_bytes)
                .collect::<Result<_, _>>()?,
        ],
    })
}

/// The access-model name of a wire action (the workload sends ticket
/// actions only).
fn action_name(code: i32) -> &'static str {
    match action_input(code) {
        crate::core::ActionInput::Known(a) => a.name(),
        _ => Action::View.name(),
    }
}

fn evaluation(check: &pb::CheckAccessRequest) -> serde_json::Value {
    json!({
        "subject": {"type": "user", "id": check.user_id},
        "action": {"name": action_name(check.action)},
        "resource": {"type": "ticket", "id": check.ticket_id},
    })
}

/// The same questions as AuthZEN evaluation, evaluations and resource
/// search bodies.
fn authzen_bodies(workload: &Workload) -> Bodies {
    let encode = |v: serde_json::Value| Bytes::from(v.to_string());
    Bodies {
        paths: [
            "/access/v1/evaluation",
            "/access/v1/evaluations",
            "/access/v1/search/resource",
        ],
        by_kind: [
            workload
                .checks
                .iter()
                .map(|c| encode(evaluation(c)))
                .collect(),
            workload
                .batches
                .iter()
                .map(|b| {
                    let items: Vec<_> = b.checks.iter().map(evaluation).collect();
                    encode(json!({ "evaluations": items }))
                })
                .collect(),
            workload
                .lists
                .iter()
                .map(|l| {
                    encode(json!({
                        "subject": {"type": "user", "id": l.user_id},
                        "action": {"name": "view"},
                        "resource": {"type": "ticket"},
                        // gRPC's 0 is the default size; AuthZEN spells it out.
                        "page": {"limit": match l.page_size {
                            0 => crate::core::DEFAULT_PAGE_SIZE,
                            n => n,
                        }},
                    }))
                })
                .collect(),
        ],
    }
}

/// A check as Envoy would send it for `GET /api/v1/tickets/{id}` on a
/// route whose `context_extensions` name the action and the ticket.
fn envoy_request(check: &pb::CheckAccessRequest) -> CheckRequest {
    let path = format!("/api/v1/tickets/{}", check.ticket_id);
    let headers: HashMap<String, String> = [
        (":authority", "tickets.example"),
        (":method", "GET"),
        (":path", path.as_str()),
        ("x-user-id", check.user_id.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".to_owned(),
                    path: path.clone(),
                    headers,
                    ..HttpRequest::default()
                }),
                ..Request::default()
            }),
            context_extensions: [
                ("ticket_authz.action", action_name(check.action)),
                ("ticket_authz.ticket", check.ticket_id.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..AttributeContext::default()
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_in_order_and_name_the_flag_on_error() {
        assert_eq!(
            Form::parse_list("grpc, authzen,ext-authz").unwrap(),
            [Form::Grpc, Form::Authzen, Form::ExtAuthz]
        );
        assert!(Form::parse_list("soap").unwrap_err().contains("`soap`"));
        assert!(Form::parse_list("grpc,grpc").unwrap_err().contains("twice"));
        assert!(Form::parse_list(" ,").unwrap_err().contains("--forms"));
    }
}
