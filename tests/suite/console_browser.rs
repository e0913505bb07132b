//! The web console in a real browser: chromium driven through
//! chromium-driver (WebDriver) by fantoccini. Covers the token prompt,
//! search, the user page of a partner's member with its derived
//! membership, a denial's explanation, the playground with a passing and
//! a failing assertion, and a dataset with errors. Without chromium the
//! test says it skipped; under CI=true that is a failure. With
//! CONSOLE_SCREENSHOTS=DIR it saves the README's screenshots there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::net::TcpListener;

use ticket_authz::serve::{self as server, ServeConfig, TokenSource};
use ticket_authz::serve_cmd::dataset_loader;

const TOKEN: &str = "browser-test-token";

/// The driver process; killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// chromium-driver and chromium, from `CHROMEDRIVER` / `CHROMIUM` or PATH.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let driver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| on_path("chromedriver"))?;
    let browser = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| on_path("chromium"))?;
    Some((driver, browser))
}

async fn shot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("CONSOLE_SCREENSHOTS") else {
        return;
    };
    let png = c.screenshot().await.unwrap();
    std::fs::write(Path::new(&dir).join(name), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Replaces the playground's text and runs it.
async fn run_dataset(c: &Client, base: &str, dataset: &str) {
    c.goto(&format!("{base}/playground")).await.unwrap();
    let editor = c.find(Locator::Id("dataset")).await.unwrap();
    editor.clear().await.unwrap();
    editor.send_keys(dataset).await.unwrap();
    c.find(Locator::Id("run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("summary"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium() {
    let Some((driver, browser)) = tools() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "chromium and chromium-driver are required under CI=true"
        );
        eprintln!(
            "skipped: chromium or chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let port = common::free_port();
    let _driver = Driver(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", console.local_addr().unwrap());
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::run(
        ServeConfig {
            auth_token: Some(TokenSource::from(TOKEN)),
            ..ServeConfig::default()
        },
        server::Listeners {
            grpc,
            health: None,
            metrics: None,
            console: Some(console),
        },
        async move {
            let _ = stopped.await;
        },
        dataset_loader(demo),
        None,
    ));

    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900"],
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = client.expect("chromedriver did not start");

    // The token prompt, then the page asked for.
    c.goto(&format!("{base}/users/paul")).await.unwrap();
    let token = c.wait().for_element(Locator::Id("token")).await.unwrap();
    assert!(!c.source().await.unwrap().contains("Paul Becker"));
    shot(&c, "console-sign-in.png").await;
    token.send_keys(TOKEN).await.unwrap();
    token.send_keys("\u{E007}").await.unwrap(); // Enter
    let memberships = text(&c, "#memberships").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/users/paul");
    // Paul is BrightDesk staff: a member of its clients by the partnership.
    assert!(memberships.contains("northwind"), "{memberships}");
    assert!(
        memberships.contains("through partnership brightdesk"),
        "{memberships}"
    );
    assert!(text(&c, "#revision").await == "1");
    shot(&c, "console-user.png").await;

    // Search from the header, by keyboard.
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.send_keys("northwind\u{E007}").await.unwrap();
    c.wait()
        .for_element(Locator::Css("a[href='/orgs/northwind']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text(&c, "h1").await.contains("Organisation northwind"));

    // A denial and its explanation, through the question form.
    c.goto(&format!("{base}/check")).await.unwrap();
    let form = c.form(Locator::Id("question")).await.unwrap();
    form.set_by_name("user", "paul").await.unwrap();
    form.set_by_name("ticket", "1005").await.unwrap();
    form.submit().await.unwrap();
    assert_eq!(text(&c, "#verdict").await, "denied");
    let steps = text(&c, "#explanation").await;
    assert!(steps.contains("not a member of fabrikam"), "{steps}");
    shot(&c, "console-denial.png").await;

    // The playground: one passing and one failing assertion.
    let dataset = "users:\n- { id: ann, created_at: 2026-01-01T00:00:00Z }\ntickets:\n- { id: t1, created_at: 2026-01-02T00:00:00Z, requester: ann }\nassertions:\n- { user: ann, action: view, ticket: t1, expect: allow, reason: REQUESTER }\n- { user: ann, action: delete, ticket: t1, expect: allow }\n";
    run_dataset(&c, &base, dataset).await;
    assert_eq!(text(&c, "#passed").await, "1");
    assert_eq!(text(&c, "#failed").await, "1");
    assert!(text(&c, ".explanation").await.contains("denied"));
    shot(&c, "console-playground.png").await;

    // A dataset with errors: each problem by entity and field.
    run_dataset(
        &c,
        &base,
        "users:\n- { id: ann, created_at: 2026-01-01T00:00:00Z, company: nowhere }\n",
    )
    .await;
    let problems = text(&c, "#problems").await;
    assert!(
        problems.contains("company") && problems.contains("nowhere"),
        "{problems}"
    );

    // A phone-sized screen: the user page still reads.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/users/paul")).await.unwrap();
    assert!(text(&c, "#memberships").await.contains("partnership"));
    shot(&c, "console-phone.png").await;

    c.close().await.unwrap();
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
