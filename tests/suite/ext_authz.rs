//! Envoy's external authorisation over real gRPC: CheckRequests shaped as
//! Envoy sends them (method, path with its query string, lower-case
//! headers, per-route `context_extensions`, `jwt_authn` metadata) against
//! `serve::run` on 127.0.0.1:0 and the real binary, every kind of answer,
//! section actions with their `resource`, route-file errors at start-up,
//! the bearer token, and the example files against the real route parser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HttpResponse};
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

use ticket_authz::ext_authz::{
    ExtAuthzConfig, IdValue, JWT_AUTHN, MEMBERS, Mapping, RouteTable, SubjectSource, Template,
    Unmatched,
};
use ticket_authz::serve::{self as server, Loader, ServeConfig, ServeError};
use ticket_authz::serve_cmd::dataset_loader;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/envoy")
        .join(name)
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

async fn start(config: ServeConfig, load: Loader) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server::run(
        config,
        server::Listeners::grpc(listener),
        async move {
            let _ = stopped.await;
        },
        load,
        None,
    ));
    Running {
        addr,
        stop: Some(stop),
        handle,
    }
}

async fn client(addr: SocketAddr) -> AuthorizationClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    AuthorizationClient::new(channel)
}

/// A CheckRequest as Envoy's HTTP filter sends it.
#[derive(Default, Clone)]
struct Shaped {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    extensions: Vec<(&'static str, &'static str)>,
    jwt: Vec<(&'static str, Vec<(&'static str, Kind)>)>,
}

fn get(path: &str) -> Shaped {
    Shaped {
        method: "GET",
        path: path.to_owned(),
        ..Shaped::default()
    }
}

impl Shaped {
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    fn user(self, user: &str) -> Self {
        self.header("x-user-id", user)
    }
    fn ext(mut self, pairs: &[(&'static str, &'static str)]) -> Self {
        self.extensions.extend_from_slice(pairs);
        self
    }
    fn jwt(mut self, key: &'static str, claims: Vec<(&'static str, Kind)>) -> Self {
        self.jwt.push((key, claims));
        self
    }

    fn build(&self) -> CheckRequest {
        let mut headers: HashMap<String, String> = [
            (":authority", "tickets.example".to_owned()),
            (":method", self.method.to_owned()),
            (":path", self.path.clone()),
            ("user-agent", "curl/8.5.0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in &self.headers {
            headers.insert((*k).to_owned(), v.clone());
        }
        let metadata_context = (!self.jwt.is_empty()).then(|| {
            let payloads = self
                .jwt
                .iter()
                .map(|(key, claims)| {
                    let payload = Struct {
                        fields: claims
                            .iter()
                            .map(|(k, v)| {
                                (
                                    (*k).to_owned(),
                                    Value {
                                        kind: Some(v.clone()),
                                    },
                                )
                            })
                            .collect(),
                    };
                    (
                        (*key).to_owned(),
                        Value {
                            kind: Some(Kind::StructValue(payload)),
                        },
                    )
                })
                .collect();
            let mut m = Metadata::default();
            m.filter_metadata
                .insert(JWT_AUTHN.to_owned(), Struct { fields: payloads });
            m
        });
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request {
                    http: Some(HttpRequest {
                        id: "7311a9c4".to_owned(),
                        method: self.method.to_owned(),
                        headers,
                        path: self.path.clone(),
                        host: "tickets.example".to_owned(),
                        scheme: "http".to_owned(),
                        protocol: "HTTP/1.1".to_owned(),
                        ..HttpRequest::default()
                    }),
                    ..Request::default()
                }),
                context_extensions: self
                    .extensions
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                metadata_context,
                ..AttributeContext::default()
            }),
        }
    }
}

/// What Envoy would do with an answer.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Forwarded, with these request headers set.
    Ok {
        set: Vec<(String, String)>,
        removed: Vec<String>,
    },
    /// A local reply: gRPC code, HTTP status, JSON body.
    Refused {
        code: i32,
        http: i32,
        body: serde_json::Value,
    },
}

fn seen(r: CheckResponse) -> Seen {
    let code = r.status.as_ref().map_or(0, |s| s.code);
    match r.http_response {
        Some(HttpResponse::OkResponse(ok)) if code == 0 => {
            for h in &ok.headers {
                // OVERWRITE_IF_EXISTS_OR_ADD: the client's values go.
                assert_eq!(h.append_action, 2, "{h:?}");
                // Not the deprecated `append`, which old and new Envoys read alike
                // only when absent.
                #[allow(deprecated)]
                let append = &h.append;
                assert!(append.is_none(), "{h:?}");
            }
            Seen::Ok {
                set: ok
                    .headers
                    .into_iter()
                    .map(|h| {
                        let h = h.header.unwrap();
                        (h.key, h.value)
                    })
                    .collect(),
                removed: ok.headers_to_remove,
            }
        }
        Some(HttpResponse::DeniedResponse(d)) if code != 0 => Seen::Refused {
            code,
            http: d.status.map_or(0, |s| s.code),
            body: serde_json::from_str(&d.body).unwrap(),
        },
        other => panic!("status {code} with {other:?}"),
    }
}

fn allowed(reason: &str, revision: u64) -> Seen {
    Seen::Ok {
        set: vec![
            ("x-ticket-authz-reason".to_owned(), reason.to_owned()),
            ("x-ticket-authz-revision".to_owned(), revision.to_string()),
        ],
        removed: vec![],
    }
}

fn refused(code: tonic::Code, http: i32, body: serde_json::Value) -> Seen {
    Seen::Refused {
        code: code as i32,
        http,
        body,
    }
}

fn denied(reason: &str) -> Seen {
    refused(
        tonic::Code::PermissionDenied,
        403,
        serde_json::json!({ "reason": reason }),
    )
}

async fn ask(c: &mut AuthorizationClient<Channel>, shaped: &Shaped) -> Seen {
    seen(c.check(shaped.build()).await.unwrap().into_inner())
}

const VIEW: [(&str, &str); 3] = [
    ("ticket_authz.action", "view"),
    ("ticket_authz.path", "/api/v1/tickets/{ticket}"),
    ("ticket_authz.ticket", "{ticket}"),
];

fn routes() -> Arc<RouteTable> {
    Arc::new(RouteTable::load(&example("routes.yaml")).unwrap())
}

async fn serving(config: ServeConfig) -> (Running, AuthorizationClient<Channel>) {
    let running = start(config, dataset_loader(demo())).await;
    let mut c = client(running.addr).await;
    // Until the first load publishes, every answer is UNAVAILABLE.
    let started = Instant::now();
    loop {
        let probe = get("/api/v1/tickets/1001").user("nina").ext(&VIEW);
        match ask(&mut c, &probe).await {
            Seen::Refused { http: 503, .. } => {
                assert!(started.elapsed() < Duration::from_secs(10), "never loaded");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ => break,
        }
    }
    (running, c)
}

#[tokio::test]
async fn context_extensions_map_envoy_requests_to_decisions() {
    let (running, mut c) = serving(ServeConfig::default()).await;
    // The requester views her ticket; the query string is not the path.
    let view = get("/api/v1/tickets/1001?expand=comments&x=%2F").ext(&VIEW);
    assert_eq!(
        ask(&mut c, &view.clone().user("nina")).await,
        allowed("REQUESTER", 1)
    );
    assert_eq!(
        ask(&mut c, &view.clone().user("alex")).await,
        allowed("GROUP_FLAG", 1)
    );
    assert_eq!(
        ask(&mut c, &view.clone().user("carla")).await,
        denied("NO_MATCHING_RULE")
    );
    assert_eq!(
        ask(&mut c, &view.clone().user("ghost")).await,
        denied("UNKNOWN_USER")
    );
    let unknown = get("/api/v1/tickets/9999").ext(&VIEW).user("nina");
    assert_eq!(ask(&mut c, &unknown).await, denied("UNKNOWN_RESOURCE"));
    // A client's own reason and revision headers are overwritten.
    let forged = view
        .clone()
        .user("nina")
        .header("x-ticket-authz-reason", "SUPERADMIN")
        .header("x-ticket-authz-revision", "999");
    assert_eq!(ask(&mut c, &forged).await, allowed("REQUESTER", 1));
    // A placeholder is one segment, percent-decoded: `1001` spelt `%31001`.
    let encoded = get("/api/v1/tickets/%31001").ext(&VIEW).user("nina");
    assert_eq!(ask(&mut c, &encoded).await, allowed("REQUESTER", 1));
    // Literal ids need no template.
    let literal = get("/anything").user("lena").ext(&[
        ("ticket_authz.action", "delete"),
        ("ticket_authz.ticket", "1001"),
    ]);
    assert_eq!(ask(&mut c, &literal).await, allowed("GROUP_FLAG", 1));
    let kb = get("/kb").user("lena").ext(&[
        ("ticket_authz.action", "has_flag"),
        ("ticket_authz.flag", "KR"),
        ("ticket_authz.group", "service-desk"),
    ]);
    assert_eq!(ask(&mut c, &kb).await, allowed("GROUP_FLAG", 1));
    running.stop().await;
}

fn invalid(message: &str) -> Seen {
    refused(
        tonic::Code::InvalidArgument,
        400,
        serde_json::json!({ "error": message }),
    )
}

#[tokio::test]
async fn bad_mappings_and_headers_are_400_naming_the_member() {
    let (running, mut c) = serving(ServeConfig::default()).await;
    let cases: Vec<(Shaped, &str)> = vec![
        (
            get("/x").ext(&[("ticket_authz.action", "view")]),
            "ticket_authz.ticket: required by the view action",
        ),
        (
            get("/x").ext(&[
                ("ticket_authz.action", "viwe"),
                ("ticket_authz.ticket", "1"),
            ]),
            "ticket_authz.action: unknown action `viwe`",
        ),
        (
            get("/x").ext(&[
                ("ticket_authz.actoin", "view"),
                ("ticket_authz.ticket", "1"),
            ]),
            "ticket_authz.actoin: unknown member (expected path, action or one of the ids)",
        ),
        (
            get("/x").ext(&[("ticket_authz.ticket", "1")]),
            "ticket_authz.action: required when any ticket_authz. key is given",
        ),
        (
            get("/x").ext(&[
                ("ticket_authz.action", "view"),
                ("ticket_authz.tikcet", "1"),
            ]),
            "ticket_authz.tikcet: unknown member (expected path, action or one of the ids)",
        ),
        (
            get("/x").ext(&[
                ("ticket_authz.action", "view"),
                ("ticket_authz.ticket", "{t}"),
            ]),
            "ticket_authz.ticket: `{t}` is not a placeholder of the path template",
        ),
        (
            get("/other/1").ext(&VIEW),
            "ticket_authz.path: the request path `/other/1` does not match the template `/api/v1/tickets/{ticket}`",
        ),
        (
            get("/api/v1/tickets/1001/").ext(&VIEW),
            "ticket_authz.path: the request path `/api/v1/tickets/1001/` does not match the template `/api/v1/tickets/{ticket}`",
        ),
        (
            get("/x").ext(&[
                ("ticket_authz.action", "has_flag"),
                ("ticket_authz.group", "*"),
                ("ticket_authz.flag", "XX"),
            ]),
            "ticket_authz.flag: unknown flag `XX` (flags are upper-case names such as IR or IW)",
        ),
        (
            get("/api/v1/tickets/1001")
                .ext(&VIEW)
                .header("x-ticket-authz-min-revision", "soon"),
            "x-ticket-authz-min-revision: `soon` is not a revision number",
        ),
    ];
    for (shaped, message) in cases {
        let shaped = shaped.user("nina");
        assert_eq!(
            ask(&mut c, &shaped).await,
            invalid(message),
            "{}",
            shaped.path
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn no_subject_is_401_and_jwt_claims_name_the_user() {
    let (running, mut c) = serving(ServeConfig::default()).await;
    let no_subject = refused(
        tonic::Code::Unauthenticated,
        401,
        serde_json::json!({ "reason": "NO_SUBJECT" }),
    );
    let view = get("/api/v1/tickets/1001").ext(&VIEW);
    assert_eq!(ask(&mut c, &view).await, no_subject);
    assert_eq!(ask(&mut c, &view.clone().user("")).await, no_subject);
    running.stop().await;

    let config = ServeConfig {
        ext_authz: ExtAuthzConfig {
            subject: SubjectSource::JwtClaim("sub".to_owned()),
            ..ExtAuthzConfig::default()
        },
        ..ServeConfig::default()
    };
    let (running, mut c) = serving_jwt(config).await;
    // The header is not trusted once a claim is configured.
    assert_eq!(ask(&mut c, &view.clone().user("nina")).await, no_subject);
    let s = |v: &str| Kind::StringValue(v.to_owned());
    let jwt = view
        .clone()
        .jwt("idp-b", vec![("sub", s("nina"))])
        .jwt("idp-a", vec![("iss", s("https://idp.example"))])
        .jwt("idp-c", vec![("sub", s("carla"))]);
    // idp-a has no `sub`; idp-b is the first that does, by key.
    assert_eq!(ask(&mut c, &jwt).await, allowed("REQUESTER", 1));
    let other = view
        .clone()
        .jwt("idp", vec![("email", s("nina@northwind.example"))]);
    assert_eq!(ask(&mut c, &other).await, no_subject);
    // The first payload carrying the claim decides, even when its value
    // is no id: another issuer's payload is not read instead.
    let empty_first = view
        .clone()
        .jwt("idp-a", vec![("sub", s(""))])
        .jwt("idp-b", vec![("sub", s("nina"))]);
    assert_eq!(ask(&mut c, &empty_first).await, no_subject);
    running.stop().await;
}

/// `serving` with a subject only a JWT gives.
async fn serving_jwt(config: ServeConfig) -> (Running, AuthorizationClient<Channel>) {
    let running = start(config, dataset_loader(demo())).await;
    let mut c = client(running.addr).await;
    let started = Instant::now();
    let probe = get("/api/v1/tickets/1001")
        .ext(&VIEW)
        .jwt("p", vec![("sub", Kind::StringValue("nina".to_owned()))]);
    while matches!(ask(&mut c, &probe).await, Seen::Refused { http: 503, .. }) {
        assert!(started.elapsed() < Duration::from_secs(10), "never loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (running, c)
}

#[tokio::test]
async fn the_route_table_maps_requests_without_context_extensions() {
    let config = ServeConfig {
        ext_authz: ExtAuthzConfig {
            routes: Some(routes()),
            ..ExtAuthzConfig::default()
        },
        ..ServeConfig::default()
    };
    let (running, mut c) = serving(config).await;
    let cases = [
        (
            get("/api/v1/tickets/1001?x=1").user("nils"),
            allowed("ORGANISATION", 1),
        ),
        (
            get("/api/v1/tickets/1001/comments")
                .method("POST")
                .user("nils"),
            denied("NO_MATCHING_RULE"),
        ),
        (
            get("/api/v1/tickets/1001").method("PATCH").user("lena"),
            allowed("GROUP_FLAG", 1),
        ),
        (
            get("/api/v1/tickets/1001/close")
                .method("POST")
                .user("nina"),
            allowed("REQUESTER", 1),
        ),
        (
            get("/api/v1/tickets/1001").method("DELETE").user("alex"),
            denied("NO_MATCHING_RULE"),
        ),
        // No route: denied; a trailing slash is another path.
        (
            get("/api/v1/tickets/1001/").user("nina"),
            denied("NO_ROUTE"),
        ),
        (get("/api/v1/users").user("nina"), denied("NO_ROUTE")),
        (
            get("/api/v1/tickets/1001").method("PUT").user("nina"),
            denied("NO_ROUTE"),
        ),
    ];
    for (shaped, want) in &cases {
        assert_eq!(
            &ask(&mut c, shaped).await,
            want,
            "{} {}",
            shaped.method,
            shaped.path
        );
    }
    // context_extensions win over the table.
    let both = get("/api/v1/tickets/1001").user("lena").ext(&[
        ("ticket_authz.action", "delete"),
        ("ticket_authz.ticket", "1001"),
    ]);
    assert_eq!(ask(&mut c, &both).await, allowed("GROUP_FLAG", 1));
    running.stop().await;

    let config = ServeConfig {
        ext_authz: ExtAuthzConfig {
            routes: Some(routes()),
            unmatched: Unmatched::Allow,
            ..ExtAuthzConfig::default()
        },
        ..ServeConfig::default()
    };
    let (running, mut c) = serving(config).await;
    let unmatched = get("/healthz")
        .user("nina")
        .header("x-ticket-authz-revision", "999");
    assert_eq!(
        ask(&mut c, &unmatched).await,
        Seen::Ok {
            set: vec![("x-ticket-authz-reason".to_owned(), "NO_ROUTE".to_owned())],
            removed: vec!["x-ticket-authz-revision".to_owned()],
        }
    );
    // A matched route is still checked.
    let denied_view = get("/api/v1/tickets/1001").user("carla");
    assert_eq!(ask(&mut c, &denied_view).await, denied("NO_MATCHING_RULE"));
    // Respellings of a mapped route, which a ticketing system may serve
    // as that route, do not pass as unmatched: they are refused.
    for path in [
        "/api/v1/tickets/1001/",
        "//api/v1/tickets/1001",
        "/api/v1/tick%65ts/1001",
        "/API/v1/tickets/1001",
        "/api/v1/./tickets/1001",
    ] {
        let respelt = get(path).user("carla");
        assert_eq!(ask(&mut c, &respelt).await, denied("NO_ROUTE"), "{path}");
    }
    // HEAD is GET without a body: a GET route decides it.
    let head = get("/api/v1/tickets/1001").method("HEAD").user("carla");
    assert_eq!(ask(&mut c, &head).await, denied("NO_MATCHING_RULE"));
    running.stop().await;
}

#[tokio::test]
async fn unavailable_until_loaded_and_when_a_revision_is_not_there() {
    let never: Loader = Box::pin(std::future::pending());
    let running = start(ServeConfig::default(), never).await;
    let mut c = client(running.addr).await;
    let view = get("/api/v1/tickets/1001").ext(&VIEW).user("nina");
    assert_eq!(
        ask(&mut c, &view).await,
        refused(
            tonic::Code::Unavailable,
            503,
            serde_json::json!({ "error": "no data loaded yet" })
        )
    );
    running.stop().await;

    let config = ServeConfig {
        revision_wait: Duration::from_millis(50),
        ..ServeConfig::default()
    };
    let (running, mut c) = serving(config).await;
    let at = |r: &str| view.clone().header("x-ticket-authz-min-revision", r);
    assert_eq!(ask(&mut c, &at("1")).await, allowed("REQUESTER", 1));
    match ask(&mut c, &at("2")).await {
        Seen::Refused { code, http, body } => {
            assert_eq!((code, http), (tonic::Code::Unavailable as i32, 503));
            assert!(
                body["error"].as_str().unwrap().contains("min_revision 2"),
                "{body}"
            );
        }
        other => panic!("{other:?}"),
    }
    running.stop().await;
}

/// Serving the section scenario's data, waiting until it is loaded.
async fn serving_sections(config: ServeConfig) -> (Running, AuthorizationClient<Channel>) {
    let file = common::section_scenario_files()[0].clone();
    let running = start(config, dataset_loader(file)).await;
    let mut c = client(running.addr).await;
    let started = Instant::now();
    let probe = get("/p/move").user("pia").ext(&PROJECT_VIEW);
    while let Seen::Refused { http: 503, .. } = ask(&mut c, &probe).await {
        assert!(started.elapsed() < Duration::from_secs(10), "never loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (running, c)
}

const PROJECT_VIEW: [(&str, &str); 3] = [
    ("ticket_authz.action", "project_view"),
    ("ticket_authz.path", "/p/{p}"),
    ("ticket_authz.resource", "{p}"),
];

/// Section actions (access model §8) through `context_extensions`:
/// `ticket_authz.resource` names the resource, literal or from the path;
/// the `_create` actions need none; a mapping without it is a 400 naming
/// the key.
#[tokio::test]
async fn section_actions_take_their_resource_from_the_route() {
    let (running, mut c) = serving_sections(ServeConfig::default()).await;
    let view = get("/p/move").ext(&PROJECT_VIEW);
    let cases = [
        (view.clone().user("pia"), allowed("OWNER", 1)),
        (view.clone().user("nia"), allowed("ROLE", 1)),
        (view.clone().user("eda"), denied("NO_MATCHING_RULE")),
        (
            get("/p/nowhere").ext(&PROJECT_VIEW).user("pia"),
            denied("UNKNOWN_RESOURCE"),
        ),
        (
            get("/projects")
                .user("pia")
                .ext(&[("ticket_authz.action", "project_create")]),
            allowed("GROUP_FLAG", 1),
        ),
        (
            get("/admin").user("uma").ext(&[
                ("ticket_authz.action", "user_manage"),
                ("ticket_authz.resource", "wes"),
            ]),
            allowed("GROUP_FLAG", 1),
        ),
        (
            get("/tasks/labels").user("ali").ext(&[
                ("ticket_authz.action", "task_edit"),
                ("ticket_authz.path", "/tasks/{t}"),
                ("ticket_authz.resource", "{t}"),
            ]),
            allowed("ROLE", 1),
        ),
        (
            get("/wiki")
                .user("nia")
                .ext(&[("ticket_authz.action", "wiki_view")]),
            invalid("ticket_authz.resource: required by the wiki_view action"),
        ),
        (
            get("/wiki/netdocs").user("nia").ext(&[
                ("ticket_authz.action", "wiki_view"),
                ("ticket_authz.path", "/wiki/{w}"),
                ("ticket_authz.resource", "{page}"),
            ]),
            invalid("ticket_authz.resource: `{page}` is not a placeholder of the path template"),
        ),
    ];
    for (shaped, want) in cases {
        assert_eq!(ask(&mut c, &shaped).await, want, "{}", shaped.path);
    }
    running.stop().await;
}

/// The example route table's section routes on the section scenario.
#[tokio::test]
async fn the_example_route_table_maps_section_requests() {
    let config = ServeConfig {
        ext_authz: ExtAuthzConfig {
            routes: Some(routes()),
            ..ExtAuthzConfig::default()
        },
        ..ServeConfig::default()
    };
    let (running, mut c) = serving_sections(config).await;
    let cases = [
        (get("/api/v1/projects/move").user("wes"), allowed("ROLE", 1)),
        (
            get("/api/v1/projects").method("POST").user("wes"),
            denied("NO_MATCHING_RULE"),
        ),
        (
            get("/api/v1/projects/move/tasks/labels")
                .method("PATCH")
                .user("ali"),
            allowed("ROLE", 1),
        ),
        (
            get("/api/v1/wiki/welcome").user("cus"),
            allowed("PUBLIC", 1),
        ),
        (
            get("/api/v1/inventory/phone").user("wes"),
            allowed("ASSOCIATED", 1),
        ),
        (
            get("/api/v1/invoices/inv-b").method("DELETE").user("fay"),
            denied("NO_MATCHING_RULE"),
        ),
        (
            get("/api/v1/users/boss").method("PUT").user("uma"),
            denied("NO_MATCHING_RULE"),
        ),
        (
            get("/api/v1/users/wes").method("PUT").user("uma"),
            allowed("GROUP_FLAG", 1),
        ),
    ];
    for (shaped, want) in cases {
        assert_eq!(
            ask(&mut c, &shaped).await,
            want,
            "{} {}",
            shaped.method,
            shaped.path
        );
    }
    running.stop().await;
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ta-extauthz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_route_file_stops_start_up_naming_file_line_and_member() {
    let dir = scratch("badroutes");
    let cases = [
        (
            "- method: GET\n  path: /t/{id}\n  action: veiw\n  ticket: '{id}'\n",
            ":3: routes[0].action: unknown action `veiw`",
        ),
        (
            "- path: /t/{id}\n  action: view\n  ticket: '{id}'\n- path: /u/{id}\n  action: view\n  tickte: '{id}'\n",
            ":6: routes[1].tickte: unknown member",
        ),
        (
            "- path: /t/{id}\n  action: view\n  ticket: '{tid}'\n",
            ":3: routes[0].ticket: `{tid}` is not a placeholder of the path template",
        ),
        (
            "- path: /companies/{c}\n  action: company_view\n",
            ":1: routes[0].company: required by the company_view action",
        ),
        (
            "- path: /wiki/{w}\n  action: wiki_view\n",
            ":1: routes[0].resource: required by the wiki_view action",
        ),
        (
            "- path: /wiki/{w}\n  action: wiki_view\n  resource: '{page}'\n",
            ":3: routes[0].resource: `{page}` is not a placeholder of the path template",
        ),
        (
            "- path: /t\n  action: [view]\n",
            ":2: routes[0].action: must be a string",
        ),
        (
            "- path: /t/{id\n  action: view\n",
            ":1: routes[0].path: `/t/{id`",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("routes{i}.yaml"), text);
        let out = common::bin()
            .arg("serve")
            .arg("--dataset")
            .arg(demo())
            .arg("--ext-authz-routes")
            .arg(&file)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", common::free_port()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let prefix = format!("ticket-authz serve: --ext-authz-routes: {}", file.display());
        assert!(
            stderr.starts_with(&prefix) && stderr.contains(want),
            "case {i}: want `{prefix}…{want}`, got {stderr}"
        );
    }
}

#[tokio::test]
async fn the_binary_serves_ext_authz_behind_the_bearer_token_with_its_flags() {
    let dir = scratch("binary");
    let tokens = write(&dir, "tokens", "envoy-token\n");
    let log = dir.join("decisions.jsonl");
    let args: Vec<std::ffi::OsString> = vec![
        "--dataset".into(),
        demo().into(),
        "--auth-token-file".into(),
        tokens.into(),
        "--decision-log".into(),
        log.clone().into(),
    ];
    let served = common::serve(
        &args,
        &[
            (
                "TICKET_AUTHZ_EXT_AUTHZ_ROUTES",
                example("routes.yaml").display().to_string(),
            ),
            (
                "TICKET_AUTHZ_EXT_AUTHZ_USER_HEADER",
                "X-Remote-User".to_owned(),
            ),
            ("TICKET_AUTHZ_EXT_AUTHZ_UNMATCHED", "deny".to_owned()),
        ],
    );
    let channel = Endpoint::from_shared(served.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = AuthorizationClient::new(channel);
    let view = get("/api/v1/tickets/1001").header("x-remote-user", "nina");
    let err = c.check(view.build()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let with = |token: &str| {
        let mut r = tonic::Request::new(view.build());
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    let err = c.check(with("wrong")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let answer = c.check(with("envoy-token")).await.unwrap().into_inner();
    assert_eq!(seen(answer), allowed("REQUESTER", 1));
    // The decision log covers ext_authz under its own rpc name.
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("ext_authz.Check")) {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["rpc"], "ext_authz.Check", "{line}");
            assert!(line.contains("\"nina\""), "{line}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no record in {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(served);
}

/// Every `context_extensions` block of a YAML tree, as key → value maps.
fn extension_blocks(node: &serde_yaml_ng::Value, out: &mut Vec<HashMap<String, String>>) {
    match node {
        serde_yaml_ng::Value::Mapping(map) => {
            for (k, v) in map {
                if k.as_str() == Some("context_extensions") {
                    let block = v
                        .as_mapping()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().unwrap().to_owned(),
                                v.as_str().unwrap().to_owned(),
                            )
                        })
                        .collect();
                    out.push(block);
                } else {
                    extension_blocks(v, out);
                }
            }
        }
        serde_yaml_ng::Value::Sequence(items) => {
            for v in items {
                extension_blocks(v, out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_envoy_example_and_route_table_ask_the_same_valid_questions() {
    let text = std::fs::read_to_string(example("envoy.yaml")).unwrap();
    let bootstrap: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut blocks = Vec::new();
    extension_blocks(&bootstrap, &mut blocks);
    let table = routes();
    let mut actions = Vec::new();
    for block in &blocks {
        let action = block["ticket_authz.action"].clone();
        let template = Template::parse(&block["ticket_authz.path"]).unwrap();
        let ids = MEMBERS.map(|m| {
            block
                .get(&format!("ticket_authz.{m}"))
                .map(|v| IdValue::parse(m, v).unwrap())
        });
        let mapping = Mapping {
            action: action.clone(),
            template: Some(template),
            ids,
        };
        mapping.check_bindings().unwrap();
        mapping.check_question().unwrap();
        // The route Envoy matches asks what the table asks for it.
        let method = match action.as_str() {
            "view" => "GET",
            "edit" => "PATCH",
            "delete" => "DELETE",
            _ => "POST",
        };
        let path = block["ticket_authz.path"].replace("{ticket}", "T-1");
        let from_table = table.find(method, &path).unwrap();
        assert_eq!(mapping.resolve(&path).unwrap(), from_table, "{action}");
        actions.push(action);
    }
    actions.sort();
    assert_eq!(actions, ["close", "comment", "delete", "edit", "view"]);
    // The ticket routes, then seven of the sections (served below).
    assert_eq!(table.len(), 12);
    // The filter fails closed and points at the sidecar.
    for needle in [
        "failure_mode_allow: false",
        "envoy.filters.http.ext_authz",
        "port_value: 50051",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    assert!(!text.contains("\n                      with_request_body:"));
}
