//! The five RPCs as Connect unary calls on the real binary: `curl` over
//! HTTP/1.1 and HTTP/2 (h2c, and h2/http1.1 by ALPN over TLS), every shared
//! scenario through Connect JSON equal to the gRPC answer, binary
//! `application/proto`, bad input naming the member, tokens, TLS, mutual
//! TLS, deadlines, shedding, and the PHP example client.
//!
//! Without `curl` or `php` a test says it skipped; under `CI=true` a
//! missing tool fails it (`.ci/run` installs php).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message as _;
use serde_json::{Value, json};
use tonic::transport::Channel;

use common::{Served, serve};
use ticket_authz::core::Action;
use ticket_authz::dataset::{self, Assertion, OwnedRequest};
use ticket_authz::grpc::convert::action_code;
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;

const RPC: &str = "/ticketauthz.v1.TicketAuthz/";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml")
}

fn serve_demo(extra: &[&str]) -> Served {
    let demo = demo();
    let mut args = vec!["--dataset", demo.to_str().unwrap()];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    serve(&args, &[])
}

/// `name` on the PATH, or `None` (said out loud) outside CI.
fn tool(test: &str, name: &str) -> Option<()> {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is required under CI=true (.ci/run installs it)"
    );
    eprintln!("skipped {test}: {name} not found");
    None
}

/// An HTTP answer: status, content type, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The Connect error's code and message, after checking its shape.
    fn error(&self) -> (u16, String, String) {
        assert!(
            self.content_type.starts_with("application/json"),
            "{self:?}"
        );
        let v = self.json();
        (
            self.status,
            v["code"].as_str().unwrap().to_owned(),
            v["message"].as_str().unwrap().to_owned(),
        )
    }
}

/// A Rust Connect client (hyper-util), HTTP/1.1 or h2c.
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    fn new(served: &Served, http2: bool) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.http2_only(http2);
        Self {
            client: builder.build_http(),
            base: served.grpc.clone(),
        }
    }

    async fn send(
        &self,
        http_method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(http_method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn json(&self, method: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            &format!("{RPC}{method}"),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// A call that must succeed, its answer decoded by the pbjson mapping.
    async fn call<T: serde::de::DeserializeOwned>(&self, method: &str, body: &Value) -> T {
        let answer = self.json(method, body).await;
        assert_eq!(answer.status, 200, "{method} {body}: {answer:?}");
        assert_eq!(answer.content_type, "application/json");
        serde_json::from_slice(&answer.body).unwrap()
    }
}

async fn grpc(served: &Served) -> TicketAuthzClient<Channel> {
    TicketAuthzClient::connect(served.grpc.clone())
        .await
        .unwrap()
}

/// The JSON of a scenario's check: the action by name as a JSON caller
/// sends it; a name that is no action can only travel as a number.
fn check_json(r: &OwnedRequest) -> Value {
    let action = match r.action.as_deref() {
        None | Some("") => json!("ACTION_UNSPECIFIED"),
        Some(name) => match Action::parse(name) {
            Some(a) => json!(format!("ACTION_{}", a.name().to_uppercase())),
            None => json!(999),
        },
    };
    json!({
        "userId": r.user, "action": action, "ticketId": r.ticket,
        "organisationId": r.organisation, "groupId": r.group,
        "companyId": r.company, "flag": r.flag, "resourceId": r.resource,
    })
}

#[tokio::test]
async fn every_shared_scenario_through_connect_json_equals_grpc() {
    let mut files = common::scenario_files();
    files.push(demo());
    files.extend(common::section_scenario_files());
    for file in files {
        let loaded = dataset::load_file(&file).unwrap();
        let served = serve(&["--dataset", file.to_str().unwrap()], &[]);
        let mut g = grpc(&served).await;
        let http = Http::new(&served, false);
        let mut checks = Vec::new();
        for assertion in &loaded.assertions {
            match assertion {
                Assertion::Check { index, request, .. } => {
                    let at = format!("{}: assertions[{index}] {request}", file.display());
                    let body = check_json(request);
                    let answer = http.json("CheckAccess", &body).await;
                    match g.check_access(common::wire_check(request)).await {
                        Ok(want) => {
                            assert_eq!(answer.status, 200, "{at}: {answer:?}");
                            let got: pb::CheckAccessResponse =
                                serde_json::from_slice(&answer.body).unwrap();
                            assert_eq!(got, want.into_inner(), "{at}");
                            // Written at their defaults too, named in lowerCamelCase.
                            let raw = answer.json();
                            assert!(raw["allowed"].is_boolean(), "{at}: {raw}");
                            assert!(raw["revision"].is_string(), "{at}: {raw}");
                            checks.push(body);
                        }
                        Err(status) => {
                            let (http_status, code, message) = answer.error();
                            assert_eq!(
                                (http_status, code.as_str()),
                                (400, "invalid_argument"),
                                "{at}"
                            );
                            // An unknown action number fails in the JSON
                            // mapping, before the service; it still names
                            // the field.
                            if body["action"].is_number() {
                                assert!(message.starts_with("action: "), "{at}: {message}");
                            } else {
                                assert_eq!(message, status.message(), "{at}");
                            }
                        }
                    }
                }
                Assertion::VisibleTickets { user, .. } => {
                    let mut token = String::new();
                    loop {
                        let want = g
                            .list_visible_tickets(pb::ListVisibleTicketsRequest {
                                user_id: user.clone(),
                                page_size: 2,
                                page_token: token.clone(),
                                ..Default::default()
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        let got: pb::ListVisibleTicketsResponse = http
                            .call(
                                "ListVisibleTickets",
                                &json!({"userId": user, "pageSize": 2, "pageToken": token}),
                            )
                            .await;
                        assert_eq!(got, want, "{}: visible tickets of {user}", file.display());
                        if want.next_page_token.is_empty() {
                            break;
                        }
                        token = want.next_page_token;
                    }
                    let want = g
                        .get_visibility_filter(pb::GetVisibilityFilterRequest {
                            user_id: user.clone(),
                            min_revision: 0,
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let got: pb::GetVisibilityFilterResponse = http
                        .call("GetVisibilityFilter", &json!({"user_id": user}))
                        .await;
                    assert_eq!(got, want, "{}: filter of {user}", file.display());
                }
                Assertion::Viewers { ticket, .. } => {
                    let want = g
                        .list_ticket_viewers(pb::ListTicketViewersRequest {
                            ticket_id: ticket.clone(),
                            page_size: 1000,
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let got: pb::ListTicketViewersResponse = http
                        .call(
                            "ListTicketViewers",
                            &json!({"ticketId": ticket, "pageSize": 1000}),
                        )
                        .await;
                    assert_eq!(got, want, "{}: viewers of {ticket}", file.display());
                }
                Assertion::VisibleResources { user, kind, .. } => {
                    let code = ticket_authz::grpc::convert::resource_kind_code(*kind);
                    let mut token = String::new();
                    loop {
                        let want = g
                            .list_visible_resources(pb::ListVisibleResourcesRequest {
                                user_id: user.clone(),
                                kind: code,
                                page_size: 2,
                                page_token: token.clone(),
                                min_revision: 0,
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        // The kind by its enum name, as the JSON mapping writes it.
                        let name = format!("RESOURCE_KIND_{}", kind.name().to_uppercase());
                        let got: pb::ListVisibleResourcesResponse = http
                            .call(
                                "ListVisibleResources",
                                &json!({"userId": user, "kind": name, "pageSize": 2, "pageToken": token}),
                            )
                            .await;
                        assert_eq!(got, want, "{}: visible {kind} of {user}", file.display());
                        if want.next_page_token.is_empty() {
                            break;
                        }
                        token = want.next_page_token;
                    }
                }
            }
        }
        if !checks.is_empty() {
            let batch = pb::CheckAccessBatchRequest {
                checks: checks
                    .iter()
                    .map(|c| serde_json::from_value(c.clone()).unwrap())
                    .collect(),
                min_revision: 1,
            };
            let want = g.check_access_batch(batch).await.unwrap().into_inner();
            let got: pb::CheckAccessBatchResponse = http
                .call(
                    "CheckAccessBatch",
                    &json!({"checks": checks, "minRevision": "1"}),
                )
                .await;
            assert_eq!(got, want, "{}: batch", file.display());
        }
    }
}

/// `curl` with ARGS; the body and the last line `STATUS HTTP-VERSION`.
fn curl(args: &[&str]) -> (String, u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, last) = text.rsplit_once('\n').unwrap();
    let (status, version) = last.split_once(' ').unwrap();
    (body.to_owned(), status.parse().unwrap(), version.to_owned())
}

/// An RPC's method name, a request body and a check of its answer.
type Call = (&'static str, Value, fn(&Value) -> bool);

/// The five RPCs.
fn five_calls() -> Vec<Call> {
    vec![
        (
            "CheckAccess",
            json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"}),
            |v| v["allowed"] == true && v["reason"].is_string() && v["revision"] == "1",
        ),
        (
            "CheckAccessBatch",
            json!({"checks": [{"user_id": "nils", "action": "ACTION_VIEW", "ticket_id": "1001"}]}),
            |v| v["results"][0]["allowed"] == true && v["revision"] == "1",
        ),
        ("ListVisibleTickets", json!({"userId": "nils"}), |v| {
            v["ticketIds"].as_array().is_some_and(|a| !a.is_empty())
        }),
        ("ListTicketViewers", json!({"ticketId": "1001"}), |v| {
            v["userIds"].as_array().is_some_and(|a| !a.is_empty())
        }),
        ("GetVisibilityFilter", json!({"userId": "nils"}), |v| {
            v["filter"].is_object() && v["revision"] == "1"
        }),
    ]
}

#[test]
fn curl_calls_the_five_rpcs_over_http1_and_h2c() {
    if tool("curl_calls_the_five_rpcs_over_http1_and_h2c", "curl").is_none() {
        return;
    }
    let served = serve_demo(&[]);
    for (flag, version) in [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")] {
        for (method, body, ok) in five_calls() {
            let url = format!("{}{RPC}{method}", served.grpc);
            let (out, status, v) = curl(&[
                flag,
                "-H",
                "Content-Type: application/json",
                "-H",
                "Connect-Protocol-Version: 1",
                "--data",
                &body.to_string(),
                &url,
            ]);
            assert_eq!((status, v.as_str()), (200, version), "{method}: {out}");
            let answer: Value = serde_json::from_str(&out).unwrap();
            assert!(ok(&answer), "{method} over {flag}: {answer}");
        }
    }
}

#[tokio::test]
async fn binary_proto_calls_answer_in_proto_and_errors_in_json() {
    let served = serve_demo(&[]);
    for http2 in [false, true] {
        let http = Http::new(&served, http2);
        let request = pb::CheckAccessRequest {
            user_id: "nils".into(),
            action: action_code(Action::View),
            ticket_id: "1001".into(),
            ..Default::default()
        };
        let answer = http
            .send(
                "POST",
                &format!("{RPC}CheckAccess"),
                &[("content-type", "application/proto")],
                request.encode_to_vec(),
            )
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.content_type, "application/proto");
        let got = pb::CheckAccessResponse::decode(answer.body.clone()).unwrap();
        let want = grpc(&served)
            .await
            .check_access(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got, want);

        let bad = pb::CheckAccessRequest {
            user_id: String::new(),
            ..request
        };
        let answer = http
            .send(
                "POST",
                &format!("{RPC}CheckAccess"),
                &[("content-type", "application/proto")],
                bad.encode_to_vec(),
            )
            .await;
        assert_eq!(
            answer.error(),
            (
                400,
                "invalid_argument".into(),
                "user_id: must not be empty".into()
            )
        );
        let garbage = http
            .send(
                "POST",
                &format!("{RPC}ListVisibleTickets"),
                &[("content-type", "application/proto")],
                vec![0xff, 0xff, 0xff],
            )
            .await;
        let (status, code, message) = garbage.error();
        assert_eq!((status, code.as_str()), (400, "invalid_argument"));
        assert!(message.starts_with("request body: "), "{message}");
    }
}

/// One member set to a value of the wrong type, and the field it names.
fn wrong_types() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("CheckAccess", json!({"userId": 5}), "user_id"),
        ("CheckAccess", json!({"action": "ACTION_PEEK"}), "action"),
        ("CheckAccess", json!({"action": 4.5}), "action"),
        // An enum number the proto does not define fails in the mapping.
        ("CheckAccess", json!({"action": 42}), "action"),
        ("CheckAccess", json!({"ticketId": []}), "ticket_id"),
        (
            "CheckAccess",
            json!({"organisationId": 1}),
            "organisation_id",
        ),
        ("CheckAccess", json!({"groupId": {}}), "group_id"),
        ("CheckAccess", json!({"companyId": true}), "company_id"),
        ("CheckAccess", json!({"flag": 3}), "flag"),
        (
            "CheckAccess",
            json!({"minRevision": "seven"}),
            "min_revision",
        ),
        ("CheckAccess", json!({"min_revision": -1}), "min_revision"),
        ("CheckAccess", json!({"explain": "yes"}), "explain"),
        ("CheckAccessBatch", json!({"checks": {}}), "checks"),
        (
            "CheckAccessBatch",
            json!({"checks": [{}, {"action": "ACTION_NOPE"}]}),
            "checks[1].action",
        ),
        (
            "CheckAccessBatch",
            json!({"minRevision": true}),
            "min_revision",
        ),
        ("ListVisibleTickets", json!({"userId": 1}), "user_id"),
        (
            "ListVisibleTickets",
            json!({"pageSize": "many"}),
            "page_size",
        ),
        ("ListVisibleTickets", json!({"pageToken": 1}), "page_token"),
        (
            "ListVisibleTickets",
            json!({"organisationId": []}),
            "organisation_id",
        ),
        ("ListVisibleTickets", json!({"groupId": 2}), "group_id"),
        (
            "ListVisibleTickets",
            json!({"statuses": "open"}),
            "statuses",
        ),
        (
            "ListVisibleTickets",
            json!({"minRevision": {}}),
            "min_revision",
        ),
        ("ListTicketViewers", json!({"ticketId": 1}), "ticket_id"),
        ("ListTicketViewers", json!({"pageSize": -3}), "page_size"),
        (
            "ListTicketViewers",
            json!({"pageToken": false}),
            "page_token",
        ),
        (
            "ListTicketViewers",
            json!({"minRevision": "x"}),
            "min_revision",
        ),
        (
            "GetVisibilityFilter",
            json!({"userId": null, "x": 1, "user_id": 9}),
            "user_id",
        ),
        (
            "GetVisibilityFilter",
            json!({"minRevision": []}),
            "min_revision",
        ),
    ]
}

#[tokio::test]
async fn bad_input_on_every_member_is_a_400_naming_it() {
    let served = serve_demo(&[]);
    let http = Http::new(&served, false);
    for (method, body, field) in wrong_types() {
        let (status, code, message) = http.json(method, &body).await.error();
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_argument"),
            "{method} {body}"
        );
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{method} {body}: {message}"
        );
    }
    // The service's own refusals, quoted as gRPC quotes them.
    let mut g = grpc(&served).await;
    let domain: Vec<(&str, Value)> = vec![
        (
            "CheckAccess",
            json!({"action": "ACTION_VIEW", "ticketId": "1001"}),
        ),
        ("CheckAccess", json!({"userId": "nils"})),
        (
            "CheckAccess",
            json!({"userId": "nils", "action": "ACTION_VIEW"}),
        ),
        ("CheckAccessBatch", json!({"checks": []})),
        (
            "CheckAccessBatch",
            json!({"checks": [{"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1"}, {"action": "ACTION_VIEW"}]}),
        ),
        (
            "ListVisibleTickets",
            json!({"userId": "nils", "pageSize": 5000}),
        ),
        (
            "ListVisibleTickets",
            json!({"userId": "nils", "pageToken": "garbage"}),
        ),
        ("ListVisibleTickets", json!({})),
        ("ListTicketViewers", json!({})),
        ("GetVisibilityFilter", json!({})),
    ];
    for (method, body) in domain {
        let want = match method {
            "CheckAccess" => g
                .check_access(
                    serde_json::from_value::<pb::CheckAccessRequest>(body.clone()).unwrap(),
                )
                .await
                .map(drop),
            "CheckAccessBatch" => g
                .check_access_batch(
                    serde_json::from_value::<pb::CheckAccessBatchRequest>(body.clone()).unwrap(),
                )
                .await
                .map(drop),
            "ListVisibleTickets" => g
                .list_visible_tickets(
                    serde_json::from_value::<pb::ListVisibleTicketsRequest>(body.clone()).unwrap(),
                )
                .await
                .map(drop),
            "ListTicketViewers" => g
                .list_ticket_viewers(
                    serde_json::from_value::<pb::ListTicketViewersRequest>(body.clone()).unwrap(),
                )
                .await
                .map(drop),
            _ => g
                .get_visibility_filter(
                    serde_json::from_value::<pb::GetVisibilityFilterRequest>(body.clone()).unwrap(),
                )
                .await
                .map(drop),
        }
        .unwrap_err();
        let (status, code, message) = http.json(method, &body).await.error();
        assert_eq!(
            (status, code.as_str(), message.as_str()),
            (400, "invalid_argument", want.message()),
            "{method} {body}"
        );
    }
    // Malformed JSON names where it broke off, or the body; the data is
    // unchanged after all this.
    for (body, start) in [
        (&b"{\"userId\": "[..], "user_id: "),
        (b"not json", "request body: "),
        (b"", "request body: "),
        (b"[]", "request body: "),
    ] {
        let (status, code, message) = http
            .send(
                "POST",
                &format!("{RPC}CheckAccess"),
                &[("content-type", "application/json")],
                body.to_vec(),
            )
            .await
            .error();
        assert_eq!((status, code.as_str()), (400, "invalid_argument"));
        assert!(message.starts_with(start), "{message}");
    }
    let ok: pb::CheckAccessResponse = http
        .call(
            "CheckAccess",
            &json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"}),
        )
        .await;
    assert!(ok.allowed);
}

#[tokio::test]
async fn the_mapping_reads_names_numbers_and_strings_and_ignores_unknown_fields() {
    let served = serve_demo(&[]);
    let http = Http::new(&served, true);
    let forms = [
        json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001", "minRevision": "1"}),
        json!({"user_id": "nils", "action": 1, "ticket_id": "1001", "min_revision": 1}),
        json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001", "shoeSize": 44, "nested": {"a": [1]}}),
    ];
    let mut answers = Vec::new();
    for body in forms {
        let answer = http.json("CheckAccess", &body).await;
        assert_eq!(answer.status, 200, "{body}: {answer:?}");
        answers.push(answer.json());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0]["allowed"], true);
    assert_eq!(answers[0]["revision"], "1");
    assert_eq!(answers[0]["warning"], "REASON_UNSPECIFIED");
    assert!(answers[0]["explanation"].is_array());
    // Explanations and a charset parameter.
    let answer = http
        .send(
            "POST",
            &format!("{RPC}CheckAccess"),
            &[("content-type", "application/json; charset=utf-8")],
            json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001", "explain": true})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(!answer.json()["explanation"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn protocol_refusals_have_their_status_and_connect_code() {
    let served = serve_demo(&["--max-message-bytes", "2048", "--revision-wait", "5s"]);
    let http = Http::new(&served, false);
    let json_ct = [("content-type", "application/json")];
    let body = || {
        json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"})
            .to_string()
            .into_bytes()
    };
    // HTTP method, RPC, headers, body; the status and Connect code wanted.
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("GET", "CheckAccess", vec![], vec![], 405, "unimplemented"),
        ("POST", "Nope", json_ct.to_vec(), body(), 404, "unimplemented"),
        (
            "POST",
            "CheckAccess",
            vec![("content-type", "text/plain")],
            body(),
            415,
            "unimplemented",
        ),
        ("POST", "CheckAccess", vec![], body(), 415, "unimplemented"),
        (
            "POST",
            "CheckAccess",
            vec![
                ("content-type", "application/json"),
                ("connect-protocol-version", "2"),
            ],
            body(),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "CheckAccess",
            vec![
                ("content-type", "application/json"),
                ("connect-timeout-ms", "soon"),
            ],
            body(),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "CheckAccessBatch",
            json_ct.to_vec(),
            json!({"checks": vec![json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"}); 100]})
                .to_string()
                .into_bytes(),
            400,
            "invalid_argument",
        ),
    ];
    for (http_method, method, headers, body, status, code) in cases {
        let answer = http
            .send(http_method, &format!("{RPC}{method}"), &headers, body)
            .await;
        let (got_status, got_code, message) = answer.error();
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{http_method} {method} {headers:?}: {message}"
        );
    }
    // A deadline shorter than a revision wait: 504; the wait itself times
    // out as 503 unavailable.
    let late =
        json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001", "minRevision": "99"});
    let started = std::time::Instant::now();
    let answer = http
        .send(
            "POST",
            &format!("{RPC}CheckAccess"),
            &[
                ("content-type", "application/json"),
                ("connect-timeout-ms", "200"),
            ],
            late.to_string().into_bytes(),
        )
        .await;
    assert_eq!(answer.error().1, "deadline_exceeded");
    assert_eq!(answer.status, 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test]
async fn excess_connect_calls_are_shed_with_a_connect_error() {
    let served = serve_demo(&["--max-concurrent-requests", "1", "--revision-wait", "1s"]);
    let http = std::sync::Arc::new(Http::new(&served, false));
    let slow = {
        let http = std::sync::Arc::clone(&http);
        tokio::spawn(async move {
            http.json(
                "CheckAccess",
                &json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001", "minRevision": 99}),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let shed = http
        .json("ListVisibleTickets", &json!({"userId": "nils"}))
        .await;
    assert_eq!(shed.error().0, 429);
    assert_eq!(shed.error().1, "resource_exhausted");
    let waited = slow.await.unwrap();
    assert_eq!(waited.error().0, 503);
    assert_eq!(waited.error().1, "unavailable");
}

#[tokio::test]
async fn a_bearer_token_is_required_when_configured() {
    let dir = tempdir("token");
    let token = dir.join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let served = serve_demo(&["--auth-token-file", token.to_str().unwrap()]);
    let http = Http::new(&served, false);
    let body = json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"});
    let refused = http.json("CheckAccess", &body).await;
    assert_eq!(refused.error().0, 401);
    assert_eq!(refused.error().1, "unauthenticated");
    let answer = http
        .send(
            "POST",
            &format!("{RPC}CheckAccess"),
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer s3cret"),
            ],
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["allowed"], true);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ticket-authz-connect-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CA, a server certificate for `localhost` and a client certificate.
fn pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A subject of its own: with rcgen's default for both, a leaf's
    // issuer equals its subject and OpenSSL takes it for self-signed.
    params
        .distinguished_name
        .push(DnType::CommonName, "ticket-authz connect test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for name in ["server", "client"] {
        let key = KeyPair::generate().unwrap();
        let host = if name == "server" {
            "localhost"
        } else {
            "client.example"
        };
        let cert = CertificateParams::new(vec![host.to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

#[test]
fn curl_over_tls_and_mutual_tls_with_alpn_h2_and_http1() {
    if tool(
        "curl_over_tls_and_mutual_tls_with_alpn_h2_and_http1",
        "curl",
    )
    .is_none()
    {
        return;
    }
    let dir = tempdir("tls");
    pki(&dir);
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let body = json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"}).to_string();
    for mutual in [false, true] {
        let mut args = vec![
            "--tls-cert".to_owned(),
            p("server.pem"),
            "--tls-key".to_owned(),
            p("server.key"),
        ];
        if mutual {
            args.extend(["--client-ca".to_owned(), p("ca.pem")]);
        }
        let mut all = vec!["--dataset".to_owned(), demo().to_str().unwrap().to_owned()];
        all.extend(args);
        let served = serve(&all, &[]);
        let port = served.grpc.rsplit(':').next().unwrap().to_owned();
        let url = format!("https://localhost:{port}{RPC}CheckAccess");
        let resolve = format!("localhost:{port}:127.0.0.1");
        let (cert, key, ca) = (p("client.pem"), p("client.key"), p("ca.pem"));
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let mut args = vec![
                flag,
                "--cacert",
                &ca,
                "--resolve",
                &resolve,
                "-H",
                "Content-Type: application/json",
                "--data",
                &body,
            ];
            if mutual {
                args.extend(["--cert", &cert, "--key", &key]);
            }
            args.push(&url);
            let (out, status, v) = curl(&args);
            assert_eq!(
                (status, v.as_str()),
                (200, version),
                "mutual {mutual}: {out}"
            );
            assert_eq!(
                serde_json::from_str::<Value>(&out).unwrap()["allowed"],
                true
            );
        }
        // Plaintext on a TLS port, and no client certificate under mTLS, fail.
        let plain = Command::new("curl")
            .args([
                "-sS",
                "--http1.1",
                "-H",
                "Content-Type: application/json",
                "--data",
                &body,
            ])
            .arg(format!("http://127.0.0.1:{port}{RPC}CheckAccess"))
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&plain.stdout).contains("allowed"));
        if mutual {
            let anonymous = Command::new("curl")
                .args(["-sS", "--cacert", &ca, "--resolve", &resolve])
                .args([
                    "-H",
                    "Content-Type: application/json",
                    "--data",
                    &body,
                    &url,
                ])
                .output()
                .unwrap();
            assert!(
                !anonymous.status.success()
                    && !String::from_utf8_lossy(&anonymous.stdout).contains("allowed"),
                "served without a client certificate"
            );
        }
    }
}

#[test]
fn the_php_example_client_checks_and_lists() {
    let test = "the_php_example_client_checks_and_lists";
    if tool(test, "php").is_none() {
        return;
    }
    let modules = Command::new("php").arg("-m").output().unwrap();
    let has_curl = String::from_utf8_lossy(&modules.stdout)
        .lines()
        .any(|l| l.trim() == "curl");
    if !has_curl {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "php's curl extension is required under CI=true (.ci/run installs php-curl)"
        );
        eprintln!("skipped {test}: php has no curl extension");
        return;
    }
    let dir = tempdir("php");
    let token = dir.join("token");
    std::fs::write(&token, "php-t0ken").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/php/ticket_authz.php");
    for with_token in [false, true] {
        let served = if with_token {
            serve_demo(&["--auth-token-file", token.to_str().unwrap()])
        } else {
            serve_demo(&[])
        };
        let mut cmd = Command::new("php");
        cmd.arg(&script).env("TICKET_AUTHZ_URL", &served.grpc);
        if with_token {
            cmd.env("TICKET_AUTHZ_TOKEN", "php-t0ken");
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "php: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The script's own demo: a check, a denied check and the list.
        assert!(stdout.contains("nils may view 1001: yes"), "{stdout}");
        assert!(stdout.contains("tickets nils may view: "), "{stdout}");
        assert!(stdout.contains("1001"), "{stdout}");
        assert!(
            stdout.contains("error: invalid_argument: user_id: must not be empty"),
            "{stdout}"
        );
        if with_token {
            let mut cmd = Command::new("php");
            cmd.arg(&script).env("TICKET_AUTHZ_URL", &served.grpc);
            let out = cmd.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("unauthenticated"), "{stdout}");
        }
    }
}

#[tokio::test]
async fn connect_calls_count_and_log_as_their_rpc_as_grpc_calls_do() {
    let dir = tempdir("observe");
    let log = dir.join("decisions.jsonl");
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let served = serve_demo(&[
        "--metrics-listen",
        &metrics,
        "--decision-log",
        log.to_str().unwrap(),
    ]);
    let body = json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"});
    let request: pb::CheckAccessRequest = serde_json::from_value(body.clone()).unwrap();
    assert!(
        grpc(&served)
            .await
            .check_access(request)
            .await
            .unwrap()
            .into_inner()
            .allowed
    );
    let http = Http::new(&served, false);
    let answer: pb::CheckAccessResponse = http.call("CheckAccess", &body).await;
    assert!(answer.allowed);
    let _: pb::ListVisibleTicketsResponse = http
        .call("ListVisibleTickets", &json!({"userId": "nils"}))
        .await;

    let scrape = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: format!("http://{metrics}"),
    };
    let text = scrape.send("GET", "/metrics", &[], vec![]).await;
    let text = String::from_utf8_lossy(&text.body);
    let count = |rpc: &str, outcome: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("ticket_authz_rpc_duration_seconds_count{")
                    && l.contains(&format!("rpc=\"{rpc}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.parse::<f64>().unwrap())
    };
    // One series per RPC, whichever encoding the call came in.
    assert_eq!(count("CheckAccess", "allowed"), Some(2.0), "{text}");
    assert_eq!(count("ListVisibleTickets", "ok"), Some(1.0), "{text}");
    assert!(served.terminate().success());
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["rpc"] == "CheckAccess" && l["allowed"] == true)
    );
}

/// A collector keeping the spans it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut kept = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                kept.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_call_joins_the_callers_trace_as_the_rpc_span() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let demo = demo();
    let served = serve(
        &["--dataset", demo.to_str().unwrap()],
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{collector_addr}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ],
    );
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{parent}-01");
    let answer = Http::new(&served, false)
        .send(
            "POST",
            &format!("{RPC}CheckAccess"),
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent),
            ],
            json!({"userId": "nils", "action": "ACTION_VIEW", "ticketId": "1001"})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let hex = |text: &str| -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    };
    let started = std::time::Instant::now();
    let span = loop {
        let found = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == "ticketauthz.v1.TicketAuthz/CheckAccess")
            .cloned();
        if let Some(span) = found {
            break span;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no CheckAccess span reached the collector"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(span.trace_id, hex(trace), "joins the caller's trace");
    assert_eq!(
        span.parent_span_id,
        hex(parent),
        "child of the caller's span"
    );
    served.terminate();
}
