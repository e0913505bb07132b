//! The AuthZEN 1.0 endpoints of the real binary, through an HTTP client:
//! every shared scenario (evaluation, batched evaluations, paged searches
//! equal to the gRPC lists), every section scenario (HTTP contract § 4,
//! equal to gRPC's answers), the three semantics, the configuration
//! document, bad input on every member, the token and TLS, and the
//! metrics label and decision log of an endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use common::{Served, free_port, serve};
use ticket_authz::core::{self, Action, Context};
use ticket_authz::dataset::{self, Assertion, Expect, OwnedRequest};
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::snapshot::Snapshot;

/// One HTTP/1.1 (or h2c) connection to the service.
struct Http {
    send: Sender,
    host: String,
    token: Option<String>,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// `host:port` of a served process.
fn host(served: &Served) -> String {
    served.grpc.trim_start_matches("http://").to_owned()
}

impl Http {
    async fn over<S>(stream: S, host: &str) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self {
            send: Sender::H1(send),
            host: host.to_owned(),
            token: None,
        }
    }

    async fn connect(host: &str) -> Self {
        Self::over(TcpStream::connect(host).await.unwrap(), host).await
    }

    /// HTTP/2 with prior knowledge, as gRPC clients speak it.
    async fn connect_h2c(host: &str) -> Self {
        Self::over_h2(TcpStream::connect(host).await.unwrap(), host).await
    }

    async fn over_h2<S>(stream: S, host: &str) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        Self {
            send: Sender::H2(send),
            host: host.to_owned(),
            token: None,
        }
    }

    fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, Value) {
        let (status, headers, bytes) = self.raw(method, path, body, headers).await;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {bytes:?}"))
        };
        (status, headers, value)
    }

    async fn raw(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, Bytes) {
        let uri = match self.send {
            Sender::H1(_) => path.to_owned(),
            Sender::H2(_) => format!("http://{}{path}", self.host),
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if matches!(self.send, Sender::H1(_)) {
            builder = builder.header("host", &self.host);
        }
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(body)).unwrap();
        // A connection takes the next request once the last one is done.
        let response = match &mut self.send {
            Sender::H1(s) => {
                s.ready().await.unwrap();
                s.send_request(request).await.unwrap()
            }
            Sender::H2(s) => {
                s.ready().await.unwrap();
                s.send_request(request).await.unwrap()
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes)
    }

    async fn post(&mut self, path: &str, body: &Value) -> (u16, Value) {
        let (status, _, value) = self
            .request("POST", path, Bytes::from(body.to_string()), &[])
            .await;
        (status, value)
    }

    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let (status, _, value) = self.request("GET", path, Bytes::new(), headers).await;
        (status, value)
    }
}

fn demo() -> String {
    format!("{}/examples/demo.yaml", env!("CARGO_MANIFEST_DIR"))
}

fn user(id: &str) -> Value {
    json!({"type": "user", "id": id})
}

fn ticket(id: &str) -> Value {
    json!({"type": "ticket", "id": id})
}

fn named(name: &str) -> Value {
    json!({"name": name})
}

/// A scenario's access question as an AuthZEN evaluation, by the
/// contract's table (written out here, apart from the edge's own).
fn evaluation_of(r: &OwnedRequest) -> Value {
    let action = r.action.as_deref().unwrap_or("");
    let mut props = serde_json::Map::new();
    let mut set = |key: &str, value: &str| {
        if !value.is_empty() {
            props.insert(key.to_owned(), json!(value));
        }
    };
    let (resource, action) = match action {
        "create" => {
            set("organisation", &r.organisation);
            set("group", &r.group);
            (
                json!({"type": "ticket", "id": "new", "properties": props}),
                named("create"),
            )
        }
        "reassign" => {
            set("group", &r.group);
            (
                ticket(&r.ticket),
                json!({"name": "reassign", "properties": props}),
            )
        }
        "manage_access" => (
            json!({"type": "organisation", "id": r.organisation}),
            named("manage_access"),
        ),
        "company_view" | "company_edit" | "company_manage" => (
            json!({"type": "company", "id": r.company}),
            named(action.trim_start_matches("company_")),
        ),
        "has_flag" => {
            set("flag", &r.flag);
            (
                json!({"type": "group", "id": r.group}),
                json!({"name": "has_flag", "properties": props}),
            )
        }
        other => (ticket(&r.ticket), named(other)),
    };
    json!({"subject": user(&r.user), "action": action, "resource": resource})
}

/// A stored ticket's attributes as `resource.properties`.
fn properties(t: &ticket_authz::model::Ticket) -> Value {
    json!({
        "requester": t.requester,
        "organisation": t.organisation,
        "group": t.group,
        "assignee": t.assignee,
        "ccs": t.ccs,
        "participants": t.participants,
        "status": t.status.name(),
        "created_at": t.created_at.to_string(),
    })
}

/// The member an invalid scenario question names, from the core's field.
fn member_of(action: &str, field: &str) -> &'static str {
    match (action, field) {
        (_, "user_id") => "subject.id",
        (_, "flag") => "action.properties.flag",
        ("create", "group_id") => "resource.properties.group",
        ("create", "organisation_id") => "resource.properties.organisation",
        ("reassign", "group_id") => "action.properties.group",
        _ => "resource.id",
    }
}

fn expected_context(reason: Option<ticket_authz::core::Reason>, context: &Value) -> bool {
    reason.is_none_or(|r| context["reason"] == r.name())
}

fn warning_of(context: &Value) -> Option<&str> {
    context["warning"].as_str()
}

/// Walks a search with `limit`, returning every page's ids and next token.
async fn walk(
    http: &mut Http,
    path: &str,
    mut body: Value,
    limit: u32,
) -> Vec<(Vec<String>, String)> {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        body["page"] = json!({"limit": limit, "token": token});
        let (status, answer) = http.post(path, &body).await;
        assert_eq!(status, 200, "{path} {body}: {answer}");
        assert_eq!(answer["context"]["revision"], 1, "{answer}");
        let ids: Vec<String> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        let next = answer["page"]["next_token"].as_str().unwrap().to_owned();
        pages.push((ids, next.clone()));
        if next.is_empty() {
            return pages;
        }
        token = next;
    }
}

fn ids(pages: &[(Vec<String>, String)]) -> Vec<String> {
    pages.iter().flat_map(|(ids, _)| ids.clone()).collect()
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort_unstable();
    v
}

async fn grpc(served: &Served) -> TicketAuthzClient<tonic::transport::Channel> {
    TicketAuthzClient::connect(served.grpc.clone())
        .await
        .unwrap()
}

/// Every page of a paged list, each as (ids, next token), asking `page`
/// with each token in turn from the empty one.
async fn all_pages<F, Fut>(mut page: F) -> Vec<(Vec<String>, String)>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = (Vec<String>, String)>,
{
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let (ids, next) = page(token).await;
        pages.push((ids, next.clone()));
        if next.is_empty() {
            return pages;
        }
        token = next;
    }
}

/// The gRPC pages of a list at `size`, to hold the AuthZEN pages against.
async fn grpc_visible(
    c: &mut TicketAuthzClient<tonic::transport::Channel>,
    user: &str,
    size: u32,
) -> Vec<(Vec<String>, String)> {
    all_pages(|page_token| {
        let mut c = c.clone();
        let request = pb::ListVisibleTicketsRequest {
            user_id: user.into(),
            page_size: size,
            page_token,
            ..Default::default()
        };
        async move {
            let r = c.list_visible_tickets(request).await.unwrap().into_inner();
            (r.ticket_ids, r.next_page_token)
        }
    })
    .await
}

async fn grpc_viewers(
    c: &mut TicketAuthzClient<tonic::transport::Channel>,
    ticket: &str,
    size: u32,
) -> Vec<(Vec<String>, String)> {
    all_pages(|page_token| {
        let mut c = c.clone();
        let request = pb::ListTicketViewersRequest {
            ticket_id: ticket.into(),
            page_size: size,
            page_token,
            ..Default::default()
        };
        async move {
            let r = c.list_ticket_viewers(request).await.unwrap().into_inner();
            (r.user_ids, r.next_page_token)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_scenario_through_authzen() {
    for file in common::scenario_files() {
        let name = file.display().to_string();
        let loaded = dataset::load_file(&file).unwrap();
        let snap = Snapshot::build(&loaded.dataset).unwrap();
        let served = serve(&["--dataset", name.as_str()], &[]);
        let mut http = Http::connect(&host(&served)).await;
        let mut c = grpc(&served).await;
        let mut batch = Vec::new();
        let mut batch_expect = Vec::new();
        for assertion in &loaded.assertions {
            match assertion {
                Assertion::Check {
                    index,
                    request,
                    expect,
                    reason,
                    warning,
                } => {
                    let body = evaluation_of(request);
                    let (status, answer) = http.post("/access/v1/evaluation", &body).await;
                    let at = format!("{name} assertions[{index}] {request}: {body} → {answer}");
                    if *expect == Expect::Invalid {
                        assert_eq!(status, 400, "{at}");
                        let field = core::check(
                            &snap,
                            &request.as_request(),
                            Context::at(common::now(&snap)),
                        )
                        .unwrap_err()
                        .field();
                        let member = member_of(request.action.as_deref().unwrap_or(""), field);
                        assert!(
                            answer["error"]
                                .as_str()
                                .unwrap()
                                .starts_with(&format!("{member}: ")),
                            "{at}"
                        );
                        continue;
                    }
                    assert_eq!(status, 200, "{at}");
                    assert_eq!(answer["decision"], *expect == Expect::Allow, "{at}");
                    assert!(expected_context(*reason, &answer["context"]), "{at}");
                    assert_eq!(
                        warning_of(&answer["context"]),
                        warning.map(|w| w.name()),
                        "{at}"
                    );
                    assert_eq!(answer["context"]["revision"], 1, "{at}");
                    // The stored ticket's attributes inline, without its id
                    // and under an id nothing stores: the same answer.
                    let stored = loaded
                        .dataset
                        .tickets
                        .iter()
                        .find(|t| t.id == request.ticket);
                    let ticket_action = Action::parse(request.action.as_deref().unwrap_or(""))
                        .is_some_and(Action::is_ticket_action);
                    if let Some(t) = stored.filter(|_| ticket_action) {
                        for id in ["", "not-stored-anywhere"] {
                            let mut inline = body.clone();
                            inline["resource"] =
                                json!({"type": "ticket", "id": id, "properties": properties(t)});
                            let (status, i) = http.post("/access/v1/evaluation", &inline).await;
                            assert_eq!((status, &i), (200, &answer), "{at}: inline as `{id}`");
                            batch.push(inline);
                            batch_expect.push(i);
                        }
                    }
                    batch.push(body);
                    batch_expect.push(answer);
                }
                Assertion::VisibleTickets {
                    index,
                    user: u,
                    tickets,
                } => {
                    let body = json!({
                        "subject": user(u), "action": named("view"), "resource": {"type": "ticket"}
                    });
                    for limit in [1, 2, 100] {
                        let pages =
                            walk(&mut http, "/access/v1/search/resource", body.clone(), limit)
                                .await;
                        assert_eq!(
                            ids(&pages),
                            sorted(tickets),
                            "{name} assertions[{index}] at {limit}"
                        );
                        assert_eq!(
                            pages,
                            grpc_visible(&mut c, u, limit).await,
                            "{name} {u} at {limit}"
                        );
                    }
                }
                Assertion::Viewers {
                    index,
                    ticket: t,
                    users,
                } => {
                    let body = json!({
                        "subject": {"type": "user"}, "action": named("view"), "resource": ticket(t)
                    });
                    for limit in [1, 2, 100] {
                        let pages =
                            walk(&mut http, "/access/v1/search/subject", body.clone(), limit).await;
                        assert_eq!(
                            ids(&pages),
                            sorted(users),
                            "{name} assertions[{index}] at {limit}"
                        );
                        assert_eq!(
                            pages,
                            grpc_viewers(&mut c, t, limit).await,
                            "{name} {t} at {limit}"
                        );
                    }
                }
                // The section files are served by the test below.
                Assertion::VisibleResources { .. } => {
                    panic!("{name}: a ticket scenario with a section list")
                }
            }
        }
        // Every user's visible tickets and every ticket's viewers, not
        // only those the file asserts, equal the gRPC pages.
        for u in &loaded.dataset.users {
            let body = json!({"subject": user(&u.id), "action": named("view"), "resource": {"type": "ticket"}});
            let pages = walk(&mut http, "/access/v1/search/resource", body, 2).await;
            assert_eq!(
                pages,
                grpc_visible(&mut c, &u.id, 2).await,
                "{name} {}",
                u.id
            );
        }
        for t in &loaded.dataset.tickets {
            let body = json!({"subject": {"type": "user"}, "action": named("view"), "resource": ticket(&t.id)});
            let pages = walk(&mut http, "/access/v1/search/subject", body, 2).await;
            assert_eq!(
                pages,
                grpc_viewers(&mut c, &t.id, 2).await,
                "{name} {}",
                t.id
            );
        }
        // The file's well-formed checks in one batch: the same answers.
        let (status, answer) = http
            .post("/access/v1/evaluations", &json!({"evaluations": batch}))
            .await;
        assert_eq!(status, 200, "{name}: {answer}");
        let results = answer["evaluations"].as_array().unwrap();
        assert_eq!(results.len(), batch_expect.len(), "{name}");
        for (got, want) in results.iter().zip(&batch_expect) {
            assert_eq!(got, want, "{name}");
        }
        served.terminate();
    }
}

/// The AuthZEN resource type and action name of a section action, by the
/// contract's § 4 (written out here, apart from the edge's own).
fn section_form(action: &str) -> Option<(&'static str, &str)> {
    [
        ("project_", "project"),
        ("task_", "task"),
        ("wiki_", "wiki_page"),
        ("inventory_", "inventory_item"),
        ("invoice_", "invoice"),
        ("lead_", "lead"),
        ("agenda_", "agenda_event"),
        ("download_", "download"),
        ("user_", "user"),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| Some((kind, action.strip_prefix(prefix)?)))
}

/// A section scenario's question as an AuthZEN evaluation; its ticket
/// questions as the ticket scenarios' are.
fn section_evaluation_of(r: &OwnedRequest) -> Value {
    match section_form(r.action.as_deref().unwrap_or("")) {
        Some((kind, name)) => json!({
            "subject": user(&r.user),
            "action": named(name),
            "resource": {"type": kind, "id": r.resource},
        }),
        None => evaluation_of(r),
    }
}

/// gRPC's answer to a scenario question: (allowed, reason name), or the
/// field an invalid question names.
async fn grpc_check(
    c: &mut TicketAuthzClient<tonic::transport::Channel>,
    r: &OwnedRequest,
) -> Result<(bool, &'static str), String> {
    match c.check_access(common::wire_check(r)).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            let reason = ticket_authz::grpc::convert::reason_of(answer.reason).unwrap();
            Ok((answer.allowed, reason.name()))
        }
        Err(status) => Err(status.message().to_owned()),
    }
}

/// The gRPC pages of `ListVisibleResources` at `size`.
async fn grpc_resources(
    c: &mut TicketAuthzClient<tonic::transport::Channel>,
    user: &str,
    kind: ticket_authz::model::ResourceKind,
    size: u32,
) -> Vec<(Vec<String>, String)> {
    let code = ticket_authz::grpc::convert::resource_kind_code(kind);
    all_pages(|page_token| {
        let mut c = c.clone();
        let request = pb::ListVisibleResourcesRequest {
            user_id: user.into(),
            kind: code,
            page_size: size,
            page_token,
            min_revision: 0,
        };
        async move {
            let r = c
                .list_visible_resources(request)
                .await
                .unwrap()
                .into_inner();
            (r.resource_ids, r.next_page_token)
        }
    })
    .await
}

/// Every section scenario through AuthZEN (HTTP contract § 4): each check
/// as an evaluation, equal to the file and to gRPC's answer; each
/// resource's action search equal to gRPC's checks of every action of its
/// kind but `_create`; each list as a resource search at three page sizes,
/// equal to the file and to gRPC's pages; and every check, ticket checks
/// mixed in, in one evaluations batch with the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_section_scenario_through_authzen() {
    for source in common::section_scenario_files() {
        // A ticket beside the sections, so that the batch mixes the two.
        let dir = scratch("sections");
        let file = dir.join(source.file_name().unwrap());
        let text = std::fs::read_to_string(&source).unwrap()
            + "\ntickets:\n  - { id: authzen-t1, created_at: 2025-02-01T00:00:00Z, requester: wes }\n";
        std::fs::write(&file, text).unwrap();
        let name = source.display().to_string();
        let loaded = dataset::load_file(&file).unwrap();
        let served = serve(&["--dataset", file.to_str().unwrap()], &[]);
        let mut http = Http::connect(&host(&served)).await;
        let mut c = grpc(&served).await;
        let mut batch = vec![
            eval("wes", "view", "authzen-t1"),
            eval("nia", "edit", "authzen-t1"),
        ];
        let mut batch_expect = Vec::new();
        for body in &batch {
            let (status, answer) = http.post("/access/v1/evaluation", body).await;
            assert_eq!(status, 200, "{answer}");
            batch_expect.push(answer);
        }
        assert_eq!(batch_expect[0]["decision"], true, "{}", batch_expect[0]);
        let mut searched = std::collections::BTreeSet::new();
        let mut sections_checked = 0;
        for assertion in &loaded.assertions {
            match assertion {
                Assertion::Check {
                    index,
                    request,
                    expect,
                    reason,
                    ..
                } => {
                    let body = section_evaluation_of(request);
                    let (status, answer) = http.post("/access/v1/evaluation", &body).await;
                    let at = format!("{name} assertions[{index}] {request}: {body} → {answer}");
                    let by_grpc = grpc_check(&mut c, request).await;
                    if *expect == Expect::Invalid {
                        assert_eq!(status, 400, "{at}");
                        let message = by_grpc.unwrap_err();
                        let (field, problem) = message.split_once(": ").unwrap();
                        let member = match field {
                            "user_id" => "subject.id",
                            "resource_id" => "resource.id",
                            other => panic!("{at}: unexpected field {other}"),
                        };
                        assert_eq!(
                            answer["error"].as_str().unwrap(),
                            format!("{member}: {problem}"),
                            "{at}"
                        );
                        continue;
                    }
                    assert_eq!(status, 200, "{at}");
                    let (allowed, grpc_reason) = by_grpc.unwrap();
                    assert_eq!(answer["decision"], *expect == Expect::Allow, "{at}");
                    assert_eq!(answer["decision"], allowed, "{at}");
                    assert_eq!(answer["context"]["reason"], grpc_reason, "{at}");
                    assert!(expected_context(*reason, &answer["context"]), "{at}");
                    assert_eq!(answer["context"]["revision"], 1, "{at}");
                    let action = request.action.as_deref().unwrap_or("");
                    if let Some((kind, _)) = section_form(action) {
                        sections_checked += 1;
                        if !request.resource.is_empty() {
                            searched.insert((request.user.clone(), kind, request.resource.clone()));
                        }
                    }
                    batch.push(body);
                    batch_expect.push(answer);
                }
                Assertion::VisibleResources {
                    index,
                    user: u,
                    kind,
                    ids: want,
                } => {
                    let body = json!({
                        "subject": user(u), "action": named("view"), "resource": {"type": kind.name()}
                    });
                    for limit in [1, 2, 100] {
                        let pages =
                            walk(&mut http, "/access/v1/search/resource", body.clone(), limit)
                                .await;
                        for (ids, _) in &pages {
                            assert!(ids.len() <= limit as usize, "{name} assertions[{index}]");
                        }
                        assert_eq!(
                            ids(&pages),
                            sorted(want),
                            "{name} assertions[{index}] at {limit}"
                        );
                        assert_eq!(
                            pages,
                            grpc_resources(&mut c, u, *kind, limit).await,
                            "{name} {u} {} at {limit}",
                            kind.name()
                        );
                    }
                }
                Assertion::VisibleTickets { .. } | Assertion::Viewers { .. } => {}
            }
        }
        assert!(sections_checked > 0, "{name}: no section checks");
        // Action search on every resource a check names: the actions of
        // its kind but `_create`, in enum order, that gRPC allows.
        for (u, kind, resource) in &searched {
            let body = json!({"subject": user(u), "resource": {"type": kind, "id": resource}});
            let (status, answer) = http.post("/access/v1/search/action", &body).await;
            assert_eq!(status, 200, "{body}: {answer}");
            let mut want = Vec::new();
            for action in Action::ALL {
                let Some((k, short)) = section_form(action.name()) else {
                    continue;
                };
                if k != *kind || short == "create" {
                    continue;
                }
                let question = OwnedRequest {
                    user: u.clone(),
                    action: Some(action.name().to_owned()),
                    resource: resource.clone(),
                    ..OwnedRequest::default()
                };
                if grpc_check(&mut c, &question).await.unwrap().0 {
                    want.push(named(short));
                }
            }
            assert_eq!(answer["results"], json!(want), "{body}");
            assert_eq!(answer["context"]["revision"], 1, "{body}");
        }
        // Every user's visible resources of every kind, not only those
        // the file asserts, equal the gRPC pages.
        for u in &loaded.dataset.users {
            for &kind in ticket_authz::model::ResourceKind::ALL {
                let body = json!({
                    "subject": user(&u.id), "action": named("view"), "resource": {"type": kind.name()}
                });
                let pages = walk(&mut http, "/access/v1/search/resource", body, 2).await;
                assert_eq!(
                    pages,
                    grpc_resources(&mut c, &u.id, kind, 2).await,
                    "{name} {} {}",
                    u.id,
                    kind.name()
                );
            }
        }
        // The file's well-formed checks and the ticket checks in one batch:
        // the same answers, in request order.
        let (status, answer) = http
            .post("/access/v1/evaluations", &json!({"evaluations": batch}))
            .await;
        assert_eq!(status, 200, "{name}: {answer}");
        let results = answer["evaluations"].as_array().unwrap();
        assert_eq!(results.len(), batch_expect.len(), "{name}");
        for (got, want) in results.iter().zip(&batch_expect) {
            assert_eq!(got, want, "{name}");
        }
        served.terminate();
    }
}

/// Bad section members are 400s naming the member, and decide nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_section_members_are_named() {
    let file = common::section_scenario_files()[0].clone();
    let served = serve(&["--dataset", file.to_str().unwrap()], &[]);
    let mut http = Http::connect(&host(&served)).await;
    let on = |kind: &str, id: &str, action: &str| json!({"subject": user("pia"), "action": named(action), "resource": {"type": kind, "id": id}});
    let long = "x".repeat(129);
    let search = |u: &str, action: &str, kind: &str, page: Value| json!({"subject": user(u), "action": named(action), "resource": {"type": kind}, "page": page});
    let (ev, evs) = ("/access/v1/evaluation", "/access/v1/evaluations");
    let (sr, sa) = ("/access/v1/search/resource", "/access/v1/search/action");
    let no_page = json!({});
    let cases: Vec<(&str, Value, &str)> = vec![
        (ev, on("project", "", "view"), "resource.id: "),
        (ev, on("project", &long, "create"), "resource.id: "),
        (ev, on("task", "plan", "create"), "action.name: "),
        (ev, on("user", "wes", "view"), "action.name: "),
        (ev, on("wiki", "welcome", "view"), "resource.type: "),
        (ev, on("wiki_page", "welcome", "wiki_view"), "action.name: "),
        (
            evs,
            json!({"evaluations": [on("project", "move", "view"), on("invoice", "", "edit")]}),
            "evaluations[1].resource.id: ",
        ),
        (
            sr,
            search("pia", "view", "user", no_page.clone()),
            "resource.type: ",
        ),
        (
            sr,
            search("pia", "edit", "task", no_page.clone()),
            "action.name: ",
        ),
        (
            sr,
            search("", "view", "task", no_page.clone()),
            "subject.id: ",
        ),
        (
            sr,
            search("pia", "view", "task", json!({"limit": 0})),
            "page.limit: ",
        ),
        (
            sr,
            search("pia", "view", "task", json!({"token": "not-a-token"})),
            "page.token: ",
        ),
        (
            sa,
            json!({"subject": user("pia"), "resource": {"type": "lead"}}),
            "resource.id: ",
        ),
        (
            sa,
            json!({"subject": user("pia"), "resource": {"type": "leads", "id": "x"}}),
            "resource.type: ",
        ),
    ];
    for (path, body, member) in cases {
        let (status, answer) = http.post(path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(member), "{path} {body}: {error}");
    }
    // The same forms well made are answered: `_create` takes any id, and
    // `user` is a type of checks and action search.
    for (kind, id, action, allowed) in [
        ("project", "anything", "create", true),
        ("project", "", "create", true),
        ("user", "wes", "manage", false),
    ] {
        let (status, answer) = http
            .post("/access/v1/evaluation", &on(kind, id, action))
            .await;
        assert_eq!(
            (status, &answer["decision"]),
            (200, &json!(allowed)),
            "{answer}"
        );
    }
    let body = json!({"subject": user("uma"), "resource": {"type": "user", "id": "wes"}});
    let (status, answer) = http.post(sa, &body).await;
    assert_eq!(
        (status, &answer["results"]),
        (200, &json!([named("manage")])),
        "{answer}"
    );
    let body = json!({"subject": user("eda"), "resource": {"type": "wiki_page", "id": "pricing"}});
    let (status, answer) = http.post(sa, &body).await;
    assert_eq!(
        (status, &answer["results"]),
        (200, &json!([named("view"), named("edit"), named("manage")])),
        "{answer}"
    );
    served.terminate();
}

fn eval(u: &str, action: &str, t: &str) -> Value {
    json!({"subject": user(u), "action": named(action), "resource": ticket(t)})
}

fn decisions(answer: &Value) -> Vec<bool> {
    answer["evaluations"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect()
}

/// Decision-log lines written for `rpc`, waiting a little for the writer.
fn logged(log: &std::path::Path, rpc: &str, at_least: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines: Vec<Value> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|l: &Value| l["rpc"] == rpc)
            .collect();
        if lines.len() >= at_least || started.elapsed() > Duration::from_secs(3) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ticket-authz-authzen-{name}-{}", free_port()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_defaults_and_the_three_semantics() {
    let dir = scratch("semantics");
    let log = dir.join("decisions.jsonl");
    let served = serve(
        &[
            "--dataset",
            &demo(),
            "--decision-log",
            log.to_str().unwrap(),
        ],
        &[],
    );
    let mut http = Http::connect(&host(&served)).await;
    // paul views 1004 (ORGANISATION) but may not delete it.
    let items = json!([
        {"action": named("view")},
        {"action": named("delete")},
        {"action": named("view"), "subject": user("audrey")},
        {"action": named("delete")},
    ]);
    let base = json!({"subject": user("paul"), "resource": ticket("1004"), "evaluations": items});
    let (status, all) = http.post("/access/v1/evaluations", &base).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(decisions(&all), [true, false, true, false]);
    assert_eq!(all["evaluations"][2]["context"]["reason"], "GROUP_FLAG");
    assert_eq!(all["evaluations"][0]["context"]["revision"], 1);
    assert_eq!(logged(&log, "authzen.evaluations", 4).len(), 4);

    let mut deny = base.clone();
    deny["options"] = json!({"evaluations_semantic": "deny_on_first_deny"});
    let (status, answer) = http.post("/access/v1/evaluations", &deny).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(decisions(&answer), [true, false]);

    let mut permit = base.clone();
    permit["options"] = json!({"evaluations_semantic": "permit_on_first_permit"});
    let (status, answer) = http.post("/access/v1/evaluations", &permit).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(decisions(&answer), [true]);
    // What came after the stop was not decided: 4 + 2 + 1 records.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(logged(&log, "authzen.evaluations", 7).len(), 7);

    let mut explicit = base.clone();
    explicit["options"] = json!({"evaluations_semantic": "execute_all"});
    assert_eq!(
        decisions(&http.post("/access/v1/evaluations", &explicit).await.1),
        [true, false, true, false]
    );

    // No evaluations: one evaluation of the top-level members, with context.
    let (status, one) = http
        .post(
            "/access/v1/evaluations",
            &json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"),
                    "context": {"explain": true}}),
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(decisions(&one), [true]);
    assert!(
        one["evaluations"][0]["context"]["explanation"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
    let (_, empty) = http
        .post(
            "/access/v1/evaluations",
            &json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"), "evaluations": []}),
        )
        .await;
    assert_eq!(decisions(&empty), [true]);

    // 1000 is the most; 1001 is refused whole, naming `evaluations`.
    let many: Vec<Value> = (0..1000).map(|_| json!({})).collect();
    let mut big = json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"), "evaluations": many});
    let (status, answer) = http.post("/access/v1/evaluations", &big).await;
    assert_eq!(status, 200);
    assert_eq!(decisions(&answer).len(), 1000);
    big["evaluations"].as_array_mut().unwrap().push(json!({}));
    let (status, answer) = http.post("/access/v1/evaluations", &big).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"],
        "evaluations: a request holds 1 to 1000 evaluations, not 1001"
    );

    // A min_revision above the data: 503 naming both revisions.
    let (status, answer) = http
        .post(
            "/access/v1/evaluation",
            &json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"),
                    "context": {"min_revision": 9}}),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("min_revision 9"),
        "{answer}"
    );
    // An item's own context does not drop the request's min_revision:
    // the members are merged, so this still waits for revision 9.
    let (status, answer) = http
        .post(
            "/access/v1/evaluations",
            &json!({"subject": user("paul"), "action": named("view"),
                    "context": {"min_revision": 9},
                    "evaluations": [{"resource": ticket("1004"), "context": {"explain": true}}]}),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    // A requester member makes the ticket inline even when null: a 400,
    // never the stored ticket of that id.
    let (status, answer) = http
        .post(
            "/access/v1/evaluation",
            &json!({"subject": user("nina"), "action": named("view"),
                    "resource": {"type": "ticket", "id": "1001",
                                 "properties": {"requester": null, "organisation": "contoso"}}}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            400,
            Some("resource.properties.requester: must not be empty")
        ),
        "{answer}"
    );
    served.terminate();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_and_action_search_answer_as_the_access_model() {
    let served = serve(&["--dataset", &demo()], &[]);
    let mut http = Http::connect(&host(&served)).await;
    let (status, answer) = http
        .post("/access/v1/evaluation", &eval("paul", "view", "1004"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"decision": true, "context": {"reason": "ORGANISATION", "warning": null, "revision": 1}})
    );
    let (_, denied) = http
        .post("/access/v1/evaluation", &eval("carla", "view", "1004"))
        .await;
    assert_eq!(denied["decision"], false);
    // A ticket page's buttons: the five ticket actions, in order.
    let search = |u: &str, t: &str| json!({"subject": user(u), "resource": ticket(t)});
    let names = |a: &Value| -> Vec<String> {
        a["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, root) = http
        .post("/access/v1/search/action", &search("root", "1004"))
        .await;
    assert_eq!(status, 200, "{root}");
    assert_eq!(names(&root), ["view", "comment", "edit", "close", "delete"]);
    assert_eq!(root["context"]["revision"], 1);
    let (_, paul) = http
        .post("/access/v1/search/action", &search("paul", "1004"))
        .await;
    assert_eq!(names(&paul), ["view"]);
    let (_, audrey) = http
        .post("/access/v1/search/action", &search("audrey", "1004"))
        .await;
    for action in ["view", "comment", "edit", "close", "delete"] {
        let (_, one) = http
            .post("/access/v1/evaluation", &eval("audrey", action, "1004"))
            .await;
        assert_eq!(
            one["decision"],
            names(&audrey).contains(&action.to_owned()),
            "{action}"
        );
    }
    // The same over HTTP/2 (h2c).
    let mut h2 = Http::connect_h2c(&host(&served)).await;
    let (status, again) = h2
        .post("/access/v1/search/action", &search("paul", "1004"))
        .await;
    assert_eq!((status, names(&again)), (200, vec!["view".to_owned()]));
    // Methods and paths the contract does not have.
    let (status, headers, answer) = http
        .request("GET", "/access/v1/evaluation", Bytes::new(), &[])
        .await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    assert!(answer["error"].as_str().is_some());
    let (status, answer) = http.post("/access/v1/evaluate", &json!({})).await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().is_some());
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_document_names_absolute_urls() {
    let endpoints = [
        ("access_evaluation_endpoint", "/access/v1/evaluation"),
        ("access_evaluations_endpoint", "/access/v1/evaluations"),
        ("search_subject_endpoint", "/access/v1/search/subject"),
        ("search_resource_endpoint", "/access/v1/search/resource"),
        ("search_action_endpoint", "/access/v1/search/action"),
    ];
    let served = serve(&["--dataset", &demo()], &[]);
    let h = host(&served);
    let mut http = Http::connect(&h).await;
    let (status, doc) = http.get("/.well-known/authzen-configuration", &[]).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["policy_decision_point"], format!("http://{h}"));
    for (key, path) in endpoints {
        assert_eq!(doc[key], format!("http://{h}{path}"), "{key}");
    }
    // The URL a caller can follow: the endpoint it names answers.
    let url = doc["access_evaluation_endpoint"].as_str().unwrap();
    let path = url.trim_start_matches(&format!("http://{h}"));
    assert_eq!(http.post(path, &eval("paul", "view", "1004")).await.0, 200);
    // From the Host the caller used.
    let mut proxied = Http::connect(&h).await;
    proxied.host = "authz.internal:8443".into();
    let (_, doc) = proxied.get("/.well-known/authzen-configuration", &[]).await;
    assert_eq!(
        doc["search_action_endpoint"],
        "http://authz.internal:8443/access/v1/search/action"
    );
    // HTTP/2 carries the authority instead of Host.
    let mut h2 = Http::connect_h2c(&h).await;
    let (_, doc) = h2.get("/.well-known/authzen-configuration", &[]).await;
    assert_eq!(
        doc["access_evaluations_endpoint"],
        format!("http://{h}/access/v1/evaluations")
    );
    let (status, headers, _) = http
        .request(
            "POST",
            "/.well-known/authzen-configuration",
            Bytes::new(),
            &[],
        )
        .await;
    assert_eq!(
        (status, &headers["allow"]),
        (405, &http::HeaderValue::from_static("GET"))
    );
    served.terminate();

    // With --public-url (its env here), whatever the request says.
    let served = serve(
        &["--dataset", &demo()],
        &[(
            "TICKET_AUTHZ_PUBLIC_URL",
            "https://authz.example.com/pdp/".to_owned(),
        )],
    );
    let mut http = Http::connect(&host(&served)).await;
    let (_, doc) = http.get("/.well-known/authzen-configuration", &[]).await;
    assert_eq!(
        doc["policy_decision_point"],
        "https://authz.example.com/pdp"
    );
    for (key, path) in endpoints {
        assert_eq!(
            doc[key],
            format!("https://authz.example.com/pdp{path}"),
            "{key}"
        );
    }
    served.terminate();

    for bad in [
        "authz.example.com",
        "ftp://authz.example.com",
        "https://x.example/?a=1",
    ] {
        let out = common::bin()
            .args(["serve", "--dataset", &demo(), "--public-url", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("--public-url: `{bad}`")),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_member_is_a_400_naming_it_and_decides_nothing() {
    let dir = scratch("bad");
    let log = dir.join("decisions.jsonl");
    let served = serve(
        &[
            "--dataset",
            &demo(),
            "--decision-log",
            log.to_str().unwrap(),
            "--max-message-bytes",
            "4096",
        ],
        &[],
    );
    let mut http = Http::connect(&host(&served)).await;
    let long = "x".repeat(129);
    let ok = eval("paul", "view", "1004");
    let with = |path: &[&str], value: Value| {
        let mut body = ok.clone();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let without = |outer: &str, key: &str| {
        let mut body = ok.clone();
        body[outer].as_object_mut().unwrap().remove(key);
        body
    };
    let ev = "/access/v1/evaluation";
    let evs = "/access/v1/evaluations";
    let sr = "/access/v1/search/resource";
    let ss = "/access/v1/search/subject";
    let sa = "/access/v1/search/action";
    let search_r =
        json!({"subject": user("paul"), "action": named("view"), "resource": {"type": "ticket"}});
    let search_s =
        json!({"subject": {"type": "user"}, "action": named("view"), "resource": ticket("1004")});
    let set = |base: &Value, path: &[&str], value: Value| {
        let mut body = base.clone();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (ev, json!([1]), "body: must be a JSON object, not an array"),
        (
            ev,
            json!({"action": named("view"), "resource": ticket("1004")}),
            "subject: required",
        ),
        (
            ev,
            with(&["subject"], json!("paul")),
            "subject: must be an object, not a string",
        ),
        (
            ev,
            without("subject", "type"),
            "subject.type: required (`user`)",
        ),
        (
            ev,
            with(&["subject", "type"], json!("group")),
            "subject.type: unknown subject type `group`, expected `user`",
        ),
        (
            ev,
            with(&["subject", "id"], json!(7)),
            "subject.id: must be a string, not a number",
        ),
        (
            ev,
            with(&["subject", "id"], json!("")),
            "subject.id: must not be empty",
        ),
        (
            ev,
            with(&["subject", "id"], json!(long)),
            "subject.id: id is 129 bytes long, more than the limit of 128",
        ),
        (
            ev,
            without("resource", "type"),
            "resource.type: must not be empty",
        ),
        (
            ev,
            with(&["resource", "type"], json!("invoices")),
            "resource.type: unknown resource type `invoices`, expected one of `ticket`, `organisation`, `company`, `group`, \
             `project`, `task`, `wiki_page`, `inventory_item`, `invoice`, `lead`, `agenda_event`, `download`, `user`",
        ),
        (
            ev,
            without("resource", "id"),
            "resource.id: required by the view action",
        ),
        (
            ev,
            with(&["resource", "id"], json!(["1004"])),
            "resource.id: must be a string, not an array",
        ),
        (
            ev,
            with(&["resource", "properties"], json!(1)),
            "resource.properties: must be an object, not a number",
        ),
        (ev, with(&["action"], json!(null)), "action: required"),
        (
            ev,
            with(&["action", "name"], json!("")),
            "action.name: must not be empty",
        ),
        (
            ev,
            with(&["action", "name"], json!("peek")),
            "action.name: unknown action `peek` for resource type `ticket`",
        ),
        (
            ev,
            with(&["action", "name"], json!("manage_access")),
            "action.name: unknown action `manage_access` for resource type `ticket`",
        ),
        (
            ev,
            with(&["action", "properties"], json!([])),
            "action.properties: must be an object, not an array",
        ),
        (
            ev,
            with(&["action"], named("reassign")),
            "action.properties.group: required by the reassign action",
        ),
        (
            ev,
            with(
                &["action"],
                json!({"name": "reassign", "properties": {"group": "*"}}),
            ),
            "action.properties.group: `*` is only allowed with has_flag",
        ),
        (
            ev,
            json!({"subject": user("op"), "action": {"name": "has_flag", "properties": {"flag": "XX"}}, "resource": {"type": "group", "id": "support"}}),
            "action.properties.flag: unknown flag `XX` (flags are upper-case names such as IR or IW)",
        ),
        (
            ev,
            json!({"subject": user("op"), "action": named("has_flag"), "resource": {"type": "group", "id": "support"}}),
            "action.properties.flag: required by the has_flag action",
        ),
        (
            ev,
            json!({"subject": user("ann"), "action": named("create"), "resource": {"type": "ticket", "id": "new", "properties": {"group": "*"}}}),
            "resource.properties.group: `*` is only allowed with has_flag",
        ),
        (
            ev,
            json!({"subject": user("ann"), "action": named("create"), "resource": {"type": "ticket", "id": "new", "properties": {"organisation": long}}}),
            "resource.properties.organisation: id is 129 bytes long, more than the limit of 128",
        ),
        (
            ev,
            json!({"subject": user("ann"), "action": named("manage_access"), "resource": {"type": "organisation"}}),
            "resource.id: required by the manage_access action",
        ),
        (
            ev,
            json!({"subject": user("ann"), "action": named("view"), "resource": {"type": "company", "id": ""}}),
            "resource.id: required by the company_view action",
        ),
        (
            ev,
            with(&["context"], json!(true)),
            "context: must be an object, not a boolean",
        ),
        (
            ev,
            with(&["context"], json!({"min_revision": -1})),
            "context.min_revision: must be a non-negative integer, not -1",
        ),
        (
            ev,
            with(&["context"], json!({"min_revision": "3"})),
            "context.min_revision: must be a non-negative integer, not a string",
        ),
        (
            ev,
            with(&["context"], json!({"explain": "yes"})),
            "context.explain: must be a boolean, not a string",
        ),
        (
            evs,
            json!({"evaluations": {}}),
            "evaluations: must be an array, not an object",
        ),
        (
            evs,
            json!({"subject": user("paul"), "resource": ticket("1004"), "evaluations": [{"action": named("view")}, 3]}),
            "evaluations[1]: must be an object, not a number",
        ),
        (
            evs,
            json!({"subject": user("paul"), "resource": ticket("1004"), "evaluations": [{"action": named("view")}, {"action": named("view"), "subject": user("")}]}),
            "evaluations[1].subject.id: must not be empty",
        ),
        (
            evs,
            json!({"subject": user("paul"), "resource": ticket("1004"), "evaluations": [{"action": named("view")}, {}]}),
            "evaluations[1].action: required",
        ),
        (
            evs,
            json!({"subject": user("paul"), "action": named("view"), "evaluations": [{"resource": ticket("1004")}, {"resource": {"type": "ticket", "id": 5}}]}),
            "evaluations[1].resource.id: must be a string, not a number",
        ),
        (
            evs,
            json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"), "options": {"evaluations_semantic": "first"}}),
            "options.evaluations_semantic: unknown semantic `first`, expected one of execute_all, deny_on_first_deny, permit_on_first_permit",
        ),
        (
            evs,
            json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"), "options": 1}),
            "options: must be an object, not a number",
        ),
        (
            sr,
            set(&search_r, &["action", "name"], json!("edit")),
            "action.name: resource search answers `view` only, not `edit`",
        ),
        (
            sr,
            set(&search_r, &["resource", "type"], json!("organisation")),
            "resource.type: resource search answers on `ticket` and the section types (project, task, \
             wiki_page, inventory_item, invoice, lead, agenda_event, download), not `organisation`",
        ),
        (
            sr,
            set(&search_r, &["subject", "id"], json!("")),
            "subject.id: must not be empty",
        ),
        (
            sr,
            set(
                &search_r,
                &["resource", "properties"],
                json!({"statuses": ["open", "done"]}),
            ),
            "resource.properties.statuses[1]: unknown status `done`, expected one of new, open, pending, on_hold, solved, closed",
        ),
        (
            sr,
            set(
                &search_r,
                &["resource", "properties"],
                json!({"statuses": "open"}),
            ),
            "resource.properties.statuses: must be an array of strings, not a string",
        ),
        (
            sr,
            set(
                &search_r,
                &["resource", "properties"],
                json!({"group": long}),
            ),
            "resource.properties.group: id is 129 bytes long, more than the limit of 128",
        ),
        (
            sr,
            set(
                &search_r,
                &["resource", "properties"],
                json!({"organisation": 1}),
            ),
            "resource.properties.organisation: must be a string, not a number",
        ),
        (
            sr,
            set(&search_r, &["page"], json!({"limit": 0})),
            "page.limit: must be 1 to 1000, not 0",
        ),
        (
            sr,
            set(&search_r, &["page"], json!({"limit": 1001})),
            "page.limit: must be 1 to 1000, not 1001",
        ),
        (
            sr,
            set(&search_r, &["page"], json!({"limit": "2"})),
            "page.limit: must be a non-negative integer, not a string",
        ),
        (
            sr,
            set(&search_r, &["page"], json!({"token": 2})),
            "page.token: must be a string, not a number",
        ),
        (
            ss,
            set(&search_s, &["resource", "id"], json!("")),
            "resource.id: must not be empty",
        ),
        (
            ss,
            set(&search_s, &["subject", "type"], json!("group")),
            "subject.type: unknown subject type `group`, expected `user`",
        ),
        (
            ss,
            set(&search_s, &["action", "name"], json!("comment")),
            "action.name: subject search answers `view` only, not `comment`",
        ),
        (
            sa,
            json!({"subject": user("paul"), "resource": {"type": "ticket"}}),
            "resource.id: required by the view action",
        ),
        (
            sa,
            json!({"subject": user("paul"), "resource": {"type": "company", "id": "c"}}),
            "resource.type: action search answers on `ticket` and the section types (project, task, \
             wiki_page, inventory_item, invoice, lead, agenda_event, download, user), not `company`",
        ),
        (sa, json!({"resource": ticket("1004")}), "subject: required"),
    ];
    for (path, body, want) in &cases {
        let (status, answer) = http.post(path, body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(*want)),
            "{path} {body}"
        );
    }
    // Not JSON at all, and a body over --max-message-bytes.
    let (status, _, answer) = http
        .request("POST", ev, Bytes::from_static(b"{\"subject\":"), &[])
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("body: not JSON"),
        "{answer}"
    );
    let huge = json!({"subject": user("paul"), "action": named("view"), "resource": ticket("1004"), "pad": "x".repeat(5000)});
    // A fresh connection: the refused body is left unread.
    let (status, answer) = Http::connect(&host(&served)).await.post(ev, &huge).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("body: more than the limit of 4096 bytes"))
    );
    // Page tokens: a malformed one, and one issued for another query.
    let (_, first) = http
        .post(sr, &set(&search_r, &["page"], json!({"limit": 1})))
        .await;
    let token = first["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    let (status, answer) = http
        .post(sr, &set(&search_r, &["page"], json!({"token": "!!"})))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("page.token: "),
        "{answer}"
    );
    let other = set(
        &set(&search_r, &["subject", "id"], json!("root")),
        &["page"],
        json!({"token": token}),
    );
    let (status, answer) = http.post(sr, &other).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("page.token: "),
        "{answer}"
    );
    // Nothing was decided: no decision-log record for any of them; a good
    // call afterwards is logged, so the log was on.
    std::thread::sleep(Duration::from_millis(300));
    for rpc in [
        "authzen.evaluation",
        "authzen.evaluations",
        "authzen.search_action",
    ] {
        assert!(logged(&log, rpc, 0).is_empty(), "{rpc} logged");
    }
    assert_eq!(http.post(ev, &ok).await.0, 200);
    assert_eq!(logged(&log, "authzen.evaluation", 1).len(), 1);
    served.terminate();
    std::fs::remove_dir_all(&dir).ok();
}

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

async fn connect_tls(addr: &str, ca: &str, alpn: &[u8]) -> std::io::Result<Http> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    Ok(if alpn == b"h2" {
        Http::over_h2(tls, addr).await
    } else {
        Http::over(tls, addr).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_tls_guard_the_endpoints() {
    let dir = scratch("guard");
    let pki = pki();
    for (name, text) in [
        ("ca.pem", &pki.ca),
        ("cert.pem", &pki.cert),
        ("key.pem", &pki.key),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(dir.join("tokens"), "s3cret\n").unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let served = serve(
        &[
            "--dataset",
            &demo(),
            "--tls-cert",
            &path("cert.pem"),
            "--tls-key",
            &path("key.pem"),
            "--auth-token-file",
            &path("tokens"),
        ],
        &[],
    );
    let h = host(&served);
    let body = eval("paul", "view", "1004");
    let endpoints = [
        ("/access/v1/evaluation", body.clone()),
        ("/access/v1/evaluations", body.clone()),
        (
            "/access/v1/search/resource",
            json!({"subject": user("paul"), "action": named("view"), "resource": {"type": "ticket"}}),
        ),
        (
            "/access/v1/search/subject",
            json!({"subject": {"type": "user"}, "action": named("view"), "resource": ticket("1004")}),
        ),
        (
            "/access/v1/search/action",
            json!({"subject": user("paul"), "resource": ticket("1004")}),
        ),
    ];
    let mut anonymous = connect_tls(&h, &pki.ca, b"http/1.1").await.unwrap();
    let mut wrong = connect_tls(&h, &pki.ca, b"http/1.1")
        .await
        .unwrap()
        .with_token("guess");
    let mut caller = connect_tls(&h, &pki.ca, b"http/1.1")
        .await
        .unwrap()
        .with_token("s3cret");
    for (path, body) in &endpoints {
        let (status, headers, answer) = anonymous
            .request("POST", path, Bytes::from(body.to_string()), &[])
            .await;
        assert_eq!(status, 401, "{path}: {answer}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(wrong.post(path, body).await.0, 401, "{path}");
        let (status, answer) = caller.post(path, body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    // The configuration document is public: discovery comes before the
    // token (and a POST there is no exemption).
    let (status, doc) = anonymous
        .get("/.well-known/authzen-configuration", &[])
        .await;
    assert_eq!(status, 200, "{doc}");
    let (status, _, _) = anonymous
        .request(
            "POST",
            "/.well-known/authzen-configuration",
            Bytes::new(),
            &[],
        )
        .await;
    assert_eq!(status, 401);
    // Over TLS the document's URLs are https.
    let (status, doc) = caller.get("/.well-known/authzen-configuration", &[]).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(
        doc["access_evaluation_endpoint"],
        format!("https://{h}/access/v1/evaluation")
    );
    // HTTP/2 over TLS (ALPN h2) answers the same.
    let mut h2 = connect_tls(&h, &pki.ca, b"h2")
        .await
        .unwrap()
        .with_token("s3cret");
    let (status, answer) = h2.post("/access/v1/evaluation", &body).await;
    assert_eq!(
        (status, &answer["decision"]),
        (200, &json!(true)),
        "{answer}"
    );
    assert_eq!(h2.post("/access/v1/evaluation", &body).await.0, 200);
    // Plaintext gets no answer from a TLS port.
    let mut plain = Http::connect(&h).await;
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        let request = http::Request::post("/access/v1/evaluation")
            .header("host", &h)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        match &mut plain.send {
            Sender::H1(s) => s.send_request(request).await.map(|r| r.status()),
            Sender::H2(_) => unreachable!(),
        }
    })
    .await;
    assert!(
        !matches!(refused, Ok(Ok(s)) if s == 200),
        "plaintext was served"
    );
    served.terminate();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_has_its_own_metrics_label_and_decision_log_rpc() {
    let dir = scratch("observe");
    let log = dir.join("decisions.jsonl");
    let metrics = format!("127.0.0.1:{}", free_port());
    let served = serve(
        &[
            "--dataset",
            &demo(),
            "--decision-log",
            log.to_str().unwrap(),
            "--metrics-listen",
            &metrics,
        ],
        &[],
    );
    let mut http = Http::connect(&host(&served)).await;
    for _ in 0..3 {
        assert_eq!(
            http.post("/access/v1/evaluation", &eval("paul", "view", "1004"))
                .await
                .1["decision"],
            true
        );
    }
    assert_eq!(
        http.post("/access/v1/evaluation", &eval("carla", "view", "1004"))
            .await
            .1["decision"],
        false
    );
    assert_eq!(
        http.post("/access/v1/evaluation", &eval("", "view", "1004"))
            .await
            .0,
        400
    );
    let (status, _) = http
        .post(
            "/access/v1/search/action",
            &json!({"subject": user("paul"), "resource": ticket("1004")}),
        )
        .await;
    assert_eq!(status, 200);
    let records = logged(&log, "authzen.evaluation", 4);
    assert_eq!(records.len(), 4, "{records:?}");
    assert_eq!(records[0]["request"]["user_id"], "paul");
    assert_eq!(records[0]["request"]["action"], "view");
    assert_eq!(records[0]["request"]["ticket_id"], "1004");
    assert_eq!(records[0]["reason"], "ORGANISATION");
    assert!(records[0]["request"].get("ticket_inline").is_none());
    assert_eq!(logged(&log, "authzen.search_action", 5).len(), 5);
    // A ticket decided on its attributes says so in the record.
    let inline = json!({"subject": user("nils"), "action": named("view"),
        "resource": {"type": "ticket", "id": "1004",
                     "properties": {"requester": "nina", "organisation": "northwind"}}});
    assert_eq!(http.post("/access/v1/evaluation", &inline).await.0, 200);
    let records = logged(&log, "authzen.evaluation", 5);
    assert_eq!(records[4]["request"]["ticket_inline"], true, "{records:?}");
    assert_eq!(records[4]["request"]["ticket_id"], "1004");

    let mut scrape = Http::connect(&metrics).await;
    let (status, _, body) = scrape.raw("GET", "/metrics", Bytes::new(), &[]).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    let count = |rpc: &str, outcome: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("ticket_authz_rpc_duration_seconds_count{")
                    && l.contains(&format!("rpc=\"{rpc}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit_once(' '))
            .map_or(0.0, |(_, v)| v.parse().unwrap())
    };
    // Three stored-ticket answers and the inline one.
    assert_eq!(count("authzen.evaluation", "allowed"), 4.0, "{text}");
    assert_eq!(count("authzen.evaluation", "denied"), 1.0);
    assert_eq!(count("authzen.evaluation", "invalid_argument"), 1.0);
    assert_eq!(count("authzen.search_action", "ok"), 1.0);
    // Shedding counts under the endpoint's label too: its series exists.
    assert!(
        text.lines()
            .any(|l| l.starts_with("ticket_authz_shed_requests_total{")
                && l.contains("rpc=\"authzen.evaluations\"")),
        "{text}"
    );
    served.terminate();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_sent_inline_is_decided_on_its_attributes() {
    let served = serve(&["--dataset", &demo()], &[]);
    let mut http = Http::connect(&host(&served)).await;
    let northwind = json!({"requester": "nina", "organisation": "northwind", "group": "hardware", "status": "open"});
    let ask = |u: &str, action: &str, id: &str, props: &Value| {
        json!({"subject": user(u), "action": named(action),
               "resource": {"type": "ticket", "id": id, "properties": props}})
    };
    let decided = |a: &Value| {
        (
            a["decision"].as_bool().unwrap(),
            a["context"]["reason"].as_str().unwrap().to_owned(),
        )
    };
    // nils is in northwind and sees its tickets; carla (contoso) does not.
    let (status, nils) = http
        .post(
            "/access/v1/evaluation",
            &ask("nils", "view", "", &northwind),
        )
        .await;
    assert_eq!(status, 200, "{nils}");
    assert_eq!(nils["decision"], true, "{nils}");
    let (_, carla) = http
        .post(
            "/access/v1/evaluation",
            &ask("carla", "view", "new", &northwind),
        )
        .await;
    assert_eq!(carla["decision"], false);
    // The attributes win over the stored ticket of that id (1003 is carla's).
    let (_, over) = http
        .post(
            "/access/v1/evaluation",
            &ask("carla", "view", "1003", &northwind),
        )
        .await;
    assert_eq!(decided(&over), decided(&carla));
    // Ids the data does not know match nothing; a CC still sees it.
    let strange = json!({"requester": "someone-else", "organisation": "no-such-org",
                         "group": "no-such-group", "ccs": ["nobody", "nils"]});
    let (_, cc) = http
        .post("/access/v1/evaluation", &ask("nils", "view", "", &strange))
        .await;
    assert_eq!(decided(&cc), (true, "CC".to_owned()));
    let (_, other) = http
        .post("/access/v1/evaluation", &ask("carla", "view", "", &strange))
        .await;
    assert_eq!(other["decision"], false);
    assert_ne!(other["context"]["reason"], "UNKNOWN_RESOURCE");
    // Action search on an inline ticket: its requester's buttons.
    let own = json!({"requester": "carla", "organisation": "contoso", "status": "open"});
    let (status, buttons) = http
        .post(
            "/access/v1/search/action",
            &json!({"subject": user("carla"), "resource": {"type": "ticket", "properties": own}}),
        )
        .await;
    assert_eq!(status, 200, "{buttons}");
    let names: Vec<&str> = buttons["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for action in ["view", "comment", "edit", "close", "delete"] {
        let (_, one) = http
            .post("/access/v1/evaluation", &ask("carla", action, "", &own))
            .await;
        assert_eq!(
            one["decision"],
            names.contains(&action),
            "{action}: {buttons}"
        );
    }
    assert!(
        names.contains(&"view") && names.contains(&"comment"),
        "{buttons}"
    );
    // Properties without `requester` are no ticket: the stored one decides.
    let (_, stored) = http
        .post(
            "/access/v1/evaluation",
            &ask("carla", "view", "1003", &json!({"status": "done"})),
        )
        .await;
    assert_eq!(stored["decision"], true, "{stored}");
    // Bad attributes name their member; in a batch, with the index.
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut p = northwind.clone();
        f(&mut p);
        ask("nils", "view", "", &p)
    };
    let long = "x".repeat(129);
    let cases = [
        (
            bad(&|p| p["requester"] = json!("")),
            "resource.properties.requester: must not be empty",
        ),
        (
            bad(&|p| p["requester"] = json!(3)),
            "resource.properties.requester: must be a string, not a number",
        ),
        (
            bad(&|p| p["status"] = json!("done")),
            "resource.properties.status: unknown status `done`, expected one of new, open, pending, on_hold, solved, closed",
        ),
        (
            bad(&|p| p["group"] = json!("*")),
            "resource.properties.group: `*` names every group, not the group of a ticket",
        ),
        (
            bad(&|p| p["assignee"] = json!(long)),
            "resource.properties.assignee: id is 129 bytes long, more than the limit of 128",
        ),
        (
            bad(&|p| p["ccs"] = json!("nils")),
            "resource.properties.ccs: must be an array of strings, not a string",
        ),
        (
            bad(&|p| p["participants"] = json!(["a", 1])),
            "resource.properties.participants[1]: must be a string, not a number",
        ),
        (
            bad(&|p| p["ccs"] = json!([long])),
            "resource.properties.ccs: id is 129 bytes long, more than the limit of 128",
        ),
        (
            bad(&|p| p["organisation"] = json!(false)),
            "resource.properties.organisation: must be a string, not a boolean",
        ),
    ];
    for (body, want) in &cases {
        let (status, answer) = http.post("/access/v1/evaluation", body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(*want)),
            "{body}"
        );
    }
    let (status, answer) = http
        .post(
            "/access/v1/evaluation",
            &bad(&|p| p["created_at"] = json!("yesterday")),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("resource.properties.created_at: "),
        "{answer}"
    );
    let batch = json!({"evaluations": [ask("nils", "view", "", &northwind), cases[2].0.clone()]});
    let (status, answer) = http.post("/access/v1/evaluations", &batch).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("evaluations[1].resource.properties.status: "),
        "{answer}"
    );
    served.terminate();
}

/// Served from PostgreSQL, the HTTP forms answer as gRPC does and follow
/// the database: a CC added in SQL is seen at the revision that added it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_forms_answer_from_postgresql_and_follow_it() {
    let Some(url) = common::pg_database("http_forms").await else {
        return;
    };
    let out = common::bin()
        .args(["import", "--database-url", &url, "examples/demo.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = serve(&["--database-url", &url], &[]);
    let mut http = Http::connect(&host(&served)).await;
    let question = eval("carla", "view", "1001");
    let (status, before) = http.post("/access/v1/evaluation", &question).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["decision"], false, "{before}");
    let revision = before["context"]["revision"].as_u64().unwrap();
    let connect = json!({"userId": "carla", "action": "ACTION_VIEW", "ticketId": "1001"});
    let (status, answer) = http
        .post("/ticketauthz.v1.TicketAuthz/CheckAccess", &connect)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["revision"], revision.to_string());

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'carla')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    // The next revision, waited for through each form's own min_revision.
    let mut later = question.clone();
    later["context"] = json!({"min_revision": revision + 1});
    let started = Instant::now();
    let after = loop {
        let (status, answer) = http.post("/access/v1/evaluation", &later).await;
        if status == 200 || started.elapsed() > Duration::from_secs(20) {
            break answer;
        }
        assert_eq!(status, 503, "{answer}");
    };
    assert_eq!(after["decision"], true, "{after}");
    assert_eq!(after["context"]["reason"], "CC", "{after}");
    let seen = after["context"]["revision"].as_u64().unwrap();
    assert!(seen > revision);
    let mut connect_later = connect.clone();
    connect_later["minRevision"] = json!(seen);
    let (status, answer) = http
        .post("/ticketauthz.v1.TicketAuthz/CheckAccess", &connect_later)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(answer["reason"], "REASON_CC");
    let (_, search) = http
        .post(
            "/access/v1/search/resource",
            &json!({"subject": user("carla"), "action": named("view"),
                    "resource": {"type": "ticket"}, "context": {"min_revision": seen}}),
        )
        .await;
    let found: Vec<&str> = search["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["1001", "1003"], "{search}");
    served.terminate();
}
