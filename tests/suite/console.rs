//! The web console over HTTP on 127.0.0.1:0 (`serve::run` with a console
//! listener): the token prompt and sessions, no data without a token, a
//! stored XSS attempt rendered inert, the playground's bounds, that
//! nothing can be changed through it, and that the playground counts every
//! shared scenario file as `ticket-authz test` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use ticket_authz::console::{COOKIE_NAME, MAX_DATASET_BYTES};
use ticket_authz::serve::{self as server, Loader, ServeConfig, ServeError, TokenSource};
use ticket_authz::serve_cmd::dataset_loader;

const TOKEN: &str = "console-test-token";

/// Where the console listens, and how to reach it (TLS or not).
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
}

struct Running {
    console: Target,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
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

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml")
}

async fn start_with(config: ServeConfig, load: Loader) -> Running {
    start_reached(config, load, None).await
}

/// [`start_with`], reaching the console with `tls` when it is set.
async fn start_reached(
    config: ServeConfig,
    load: Loader,
    tls: Option<tokio_rustls::TlsConnector>,
) -> Running {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = console.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = server::Listeners {
        grpc,
        health: None,
        metrics: None,
        console: Some(console),
    };
    let handle = tokio::spawn(server::run(
        config,
        listeners,
        async move {
            let _ = stopped.await;
        },
        load,
        None,
    ));
    let running = Running {
        console: Target { addr, tls },
        stop: Some(stop),
        handle,
    };
    // Serving once the first page shows a revision.
    for _ in 0..200 {
        let r = get(&running.console, "/", Some(&bearer())).await;
        if r.status == 200 {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the console never served the data");
}

async fn start(load: Loader) -> Running {
    start_with(
        ServeConfig {
            auth_token: Some(TokenSource::from(TOKEN)),
            ..ServeConfig::default()
        },
        load,
    )
    .await
}

fn bearer() -> (String, String) {
    ("authorization".into(), format!("Bearer {TOKEN}"))
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection (`connection: close`).
async fn send(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let tcp = TcpStream::connect(target.addr).await.unwrap();
    let raw = match &target.tls {
        None => exchange(tcp, target.addr, method, path, headers, body).await,
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let stream = tls.connect(name, tcp).await.unwrap();
            exchange(stream, target.addr, method, path, headers, body).await
        }
    };
    parse(&raw)
}

/// Writes one request and reads the whole answer.
async fn exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // A refused body may be answered before it is all read; the answer
    // still arrives.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    raw
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

async fn get(target: &Target, path: &str, auth: Option<&(String, String)>) -> Answer {
    let headers: Vec<(String, String)> = auth.into_iter().cloned().collect();
    send(target, "GET", path, &headers, b"").await
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (k, v) in fields {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(
            &percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    out.into_bytes()
}

async fn post_form(
    target: &Target,
    path: &str,
    auth: Option<&(String, String)>,
    fields: &[(&str, &str)],
) -> Answer {
    let mut headers: Vec<(String, String)> = auth.into_iter().cloned().collect();
    headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    send(target, "POST", path, &headers, &form(fields)).await
}

/// Signs in with the token through the form.
async fn sign_in(target: &Target) -> Answer {
    post_form(target, "/login", None, &[("token", TOKEN), ("next", "/")]).await
}

/// The session cookie a sign-in set, as a `cookie` request header.
fn cookie_of(answer: &Answer) -> (String, String) {
    let set = answer.header("set-cookie").expect("a session cookie");
    ("cookie".into(), set.split(';').next().unwrap().to_owned())
}

/// The text of the element with this id (`<span id="passed">3</span>`).
fn element(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let after = &body[at..];
    let start = after.find('>').unwrap() + 1;
    let end = after[start..].find('<').unwrap() + start;
    after[start..end].to_owned()
}

#[tokio::test]
async fn the_token_is_asked_for_once_and_no_token_means_no_data() {
    let s = start(dataset_loader(demo())).await;
    for path in [
        "/",
        "/users/paul",
        "/tickets/1004",
        "/search?q=paul",
        "/check?user=paul&action=view&ticket=1004",
        "/orgs/northwind",
    ] {
        let r = get(&s.console, path, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.body.contains("name=\"token\""), "{path}: no token prompt");
        for secret in [
            "Paul Becker",
            "Northwind Traders",
            "BrightDesk",
            "Contoso",
            "revision",
        ] {
            assert!(
                !r.body.contains(secret),
                "{path} shows {secret} without a token"
            );
        }
    }
    let wrong = post_form(
        &s.console,
        "/login",
        None,
        &[("token", "nope"), ("next", "/users/paul")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let signed = post_form(
        &s.console,
        "/login",
        None,
        &[("token", TOKEN), ("next", "/users/paul")],
    )
    .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.header("location"), Some("/users/paul"));
    let set = signed.header("set-cookie").unwrap();
    assert!(set.starts_with(&format!("{COOKIE_NAME}=")), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "Secure without TLS: {set}");
    assert!(!set.contains(TOKEN), "the cookie carries the token: {set}");
    let cookie = cookie_of(&signed);
    let page = get(&s.console, "/users/paul", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Paul Becker"));
    assert_eq!(element(&page.body, "revision"), "1");
    // Only a path here may be the place to go back to.
    let away = post_form(
        &s.console,
        "/login",
        None,
        &[("token", TOKEN), ("next", "//evil.example/")],
    )
    .await;
    assert_eq!(away.header("location"), Some("/"));
    s.stop().await;
}

#[tokio::test]
async fn a_session_ends_when_the_token_file_changes() {
    let dir = std::env::temp_dir().join(format!("ta-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let s = start_with(
        ServeConfig {
            auth_token: Some(TokenSource::File(file.clone())),
            credentials_check_interval: Duration::from_millis(100),
            ..ServeConfig::default()
        },
        dataset_loader(demo()),
    )
    .await;
    let signed = sign_in(&s.console).await;
    let cookie = cookie_of(&signed);
    assert_eq!(
        get(&s.console, "/users/nina", Some(&cookie)).await.status,
        200
    );
    std::fs::write(&file, "another-token\n").unwrap();
    let mut ended = false;
    for _ in 0..100 {
        if get(&s.console, "/users/nina", Some(&cookie)).await.status == 401 {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ended,
        "the old session still shows data after the token changed"
    );
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_token_only_loopback_may_serve_the_console() {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let result = server::run(
        ServeConfig::default(),
        server::Listeners {
            grpc,
            health: None,
            metrics: None,
            console: Some(console),
        },
        std::future::pending(),
        dataset_loader(demo()),
        None,
    )
    .await;
    let error = result.expect_err("a console on 0.0.0.0 without a token started");
    assert!(error.to_string().contains("loopback"), "{error}");
    // On loopback it serves without asking for a token.
    let s = start_with(ServeConfig::default(), dataset_loader(demo())).await;
    let page = get(&s.console, "/users/paul", None).await;
    assert_eq!(page.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn the_explorer_shows_derivations_reasons_and_explanations() {
    let s = start(dataset_loader(demo())).await;
    let auth = bearer();
    let found = get(&s.console, "/search?q=becker", Some(&auth)).await;
    assert!(
        found.body.contains("href=\"/users/paul\""),
        "{}",
        found.body
    );
    let paul = get(&s.console, "/users/paul", Some(&auth)).await;
    assert!(paul.body.contains("through partnership"), "{}", paul.body);
    assert!(paul.body.contains("href=\"/orgs/brightdesk\""));
    assert!(paul.body.contains("href=\"/tickets/1004\""));
    assert!(paul.body.contains("ORGANISATION"));
    let lena = get(&s.console, "/users/lena", Some(&auth)).await;
    assert!(
        lena.body.contains("propagates to its descendants"),
        "{}",
        lena.body
    );
    assert!(lena.body.contains("href=\"/profiles/team-lead\""));
    let audrey = get(&s.console, "/users/audrey", Some(&auth)).await;
    assert!(audrey.body.contains("* covers every group"));
    let ticket = get(&s.console, "/tickets/1003", Some(&auth)).await;
    assert!(ticket.body.contains("href=\"/users/nina\"") && ticket.body.contains("CC"));
    let denied = get(
        &s.console,
        "/check?user=paul&action=view&ticket=1005",
        Some(&auth),
    )
    .await;
    assert_eq!(denied.status, 200);
    assert_eq!(element(&denied.body, "verdict"), "denied");
    assert_eq!(element(&denied.body, "reason"), "NO_MATCHING_RULE");
    assert!(
        denied.body.contains("not a member of fabrikam"),
        "{}",
        denied.body
    );
    let invalid = get(&s.console, "/check?user=paul&action=view", Some(&auth)).await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.body.contains("ticket_id"), "{}", invalid.body);
    assert_eq!(
        get(&s.console, "/users/nobody", Some(&auth)).await.status,
        404
    );
    s.stop().await;
}

const XSS: &str = r#"
organisations:
  - { id: "o<b>1", name: "<img src=x onerror=alert(1)>" }
users:
  - { id: "u\"><script>alert(2)</script>", name: "<script>alert(1)</script>", created_at: 2026-01-01T00:00:00Z, organisations: ["o<b>1"] }
"#;

#[tokio::test]
async fn a_stored_xss_attempt_in_a_name_is_rendered_inert() {
    let dir = std::env::temp_dir().join(format!("ta-console-xss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("xss.yaml");
    std::fs::write(&file, XSS).unwrap();
    let s = start(dataset_loader(file)).await;
    let auth = bearer();
    for path in [
        "/search?q=script",
        "/search?q=img",
        "/users/u%22%3E%3Cscript%3Ealert(2)%3C%2Fscript%3E",
        "/orgs/o%3Cb%3E1",
    ] {
        let page = get(&s.console, path, Some(&auth)).await;
        assert_eq!(page.status, 200, "{path}");
        for live in ["<script>alert", "<img src=x", "<b>1"] {
            assert!(
                !page.body.contains(live),
                "{path} renders {live} as markup:\n{}",
                page.body
            );
        }
        assert!(page.body.contains("&lt;"), "{path}: nothing escaped");
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
    }
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_playground_refuses_input_over_its_bound() {
    let s = start(dataset_loader(demo())).await;
    let auth = bearer();
    let big = format!("# {}\n", "x".repeat(MAX_DATASET_BYTES));
    let r = post_form(&s.console, "/playground", Some(&auth), &[("dataset", &big)]).await;
    assert_eq!(r.status, 413);
    assert!(
        element(&r.body, "refused").contains("at most"),
        "{}",
        r.body
    );
    // Far past the body bound: refused before it is read.
    let huge = "a".repeat(MAX_DATASET_BYTES * 4);
    let r = post_form(
        &s.console,
        "/playground",
        Some(&auth),
        &[("dataset", &huge)],
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("id=\"refused\""), "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn nothing_can_be_changed_through_the_console() {
    let s = start(dataset_loader(demo())).await;
    let auth = bearer();
    let before = get(&s.console, "/users/paul", Some(&auth)).await;
    for method in ["PUT", "DELETE", "PATCH", "POST"] {
        for path in [
            "/",
            "/users/paul",
            "/tickets/1004",
            "/orgs/northwind",
            "/check",
            "/search",
        ] {
            let r = send(
                &s.console,
                method,
                path,
                std::slice::from_ref(&auth),
                b"name=x",
            )
            .await;
            assert_eq!(r.status, 405, "{method} {path}");
        }
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        let r = send(
            &s.console,
            method,
            "/playground",
            std::slice::from_ref(&auth),
            b"",
        )
        .await;
        assert_eq!(r.status, 405, "{method} /playground");
    }
    // A playground run with other data for the same ids leaves the served
    // data as it was.
    let other = "users:\n  - { id: paul, name: Someone Else, created_at: 2026-01-01T00:00:00Z, kind: superadmin }\n";
    let ran = post_form(
        &s.console,
        "/playground",
        Some(&auth),
        &[("dataset", other)],
    )
    .await;
    assert_eq!(ran.status, 200);
    let after = get(&s.console, "/users/paul", Some(&auth)).await;
    assert_eq!(before.body, after.body);
    assert!(after.body.contains("Paul Becker") && !after.body.contains("Someone Else"));
    s.stop().await;
}

#[tokio::test]
async fn the_playground_shows_problems_where_they_are() {
    let s = start(dataset_loader(demo())).await;
    let auth = bearer();
    let dangling = "users:\n  - { id: ann, created_at: 2026-01-01T00:00:00Z, company: nowhere }\n";
    let r = post_form(
        &s.console,
        "/playground",
        Some(&auth),
        &[("dataset", dangling)],
    )
    .await;
    assert_eq!(element(&r.body, "failed"), "1");
    assert!(r.body.contains("<code>company</code>"), "{}", r.body);
    assert!(r.body.contains("ann"), "{}", r.body);
    let broken = "users:\n  - { id: ann\n    created_at: [\n";
    let r = post_form(
        &s.console,
        "/playground",
        Some(&auth),
        &[("dataset", broken)],
    )
    .await;
    assert!(r.body.contains("id=\"line\""), "{}", r.body);
    assert!(element(&r.body, "line").parse::<usize>().unwrap() >= 2);
    assert!(element(&r.body, "column").parse::<usize>().is_ok());
    // A failing check comes with its explanation.
    let failing = "users:\n  - { id: ann, created_at: 2026-01-01T00:00:00Z }\ntickets:\n  - { id: t1, created_at: 2026-01-02T00:00:00Z, requester: ann }\nassertions:\n  - { user: ann, action: view, ticket: t1, expect: allow }\n  - { user: ann, action: delete, ticket: t1, expect: allow }\n";
    let r = post_form(
        &s.console,
        "/playground",
        Some(&auth),
        &[("dataset", failing)],
    )
    .await;
    assert_eq!(element(&r.body, "passed"), "1");
    assert_eq!(element(&r.body, "failed"), "1");
    assert!(r.body.contains("class=\"explanation\""), "{}", r.body);
    // The export is the text as submitted.
    let exported = post_form(
        &s.console,
        "/playground/export",
        Some(&auth),
        &[("dataset", failing), ("name", "mine.yaml")],
    )
    .await;
    assert_eq!(exported.status, 200);
    assert_eq!(exported.body, failing);
    assert_eq!(
        exported.header("content-disposition"),
        Some("attachment; filename=\"mine.yaml\"")
    );
    s.stop().await;
}

#[tokio::test]
async fn the_playground_counts_every_shared_scenario_as_ticket_authz_test_does() {
    let s = start(dataset_loader(demo())).await;
    let auth = bearer();
    let mut files = common::scenario_files();
    files.extend(common::section_scenario_files());
    files.push(demo());
    for file in files {
        let mut out = Vec::new();
        ticket_authz::cli::run_test(std::slice::from_ref(&file), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let last = out.lines().last().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let r = post_form(
            &s.console,
            "/playground",
            Some(&auth),
            &[("dataset", &text), ("name", &name)],
        )
        .await;
        assert_eq!(r.status, 200, "{name}");
        let shown = format!(
            "{} passed, {} failed",
            element(&r.body, "passed"),
            element(&r.body, "failed")
        );
        assert_eq!(shown, last, "{name}");
        assert!(!shown.starts_with("0 passed"), "{name}: nothing ran");
    }
    s.stop().await;
}

#[tokio::test]
async fn under_tls_the_console_uses_the_main_ports_certificate_and_secure_cookies() {
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = server::TlsPem {
        cert: cert.pem().into_bytes(),
        key: key.serialize_pem().into_bytes(),
        client_ca: None,
    };
    let s = start_reached(
        ServeConfig {
            tls: Some(tls.into()),
            auth_token: Some(TokenSource::from(TOKEN)),
            ..ServeConfig::default()
        },
        dataset_loader(demo()),
        Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            client,
        ))),
    )
    .await;
    let signed = sign_in(&s.console).await;
    let set = signed.header("set-cookie").unwrap();
    assert!(set.contains("; Secure"), "{set}");
    let page = get(&s.console, "/users/paul", Some(&cookie_of(&signed))).await;
    assert!(page.body.contains("Paul Becker"));
    // Plaintext gets no page.
    let plain = Target {
        addr: s.console.addr,
        tls: None,
    };
    let mut tcp = TcpStream::connect(plain.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw).await;
    assert!(!String::from_utf8_lossy(&raw).contains("HTTP/1.1 200"));
    s.stop().await;
}

#[test]
fn the_flag_refuses_a_console_off_loopback_without_a_token() {
    let out = common::bin()
        .args([
            "serve",
            "--dataset",
            "examples/demo.yaml",
            "--console-listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--console-listen") && err.contains("loopback"),
        "{err}"
    );
}
