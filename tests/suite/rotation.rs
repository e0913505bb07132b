//! Credential rotation without a restart: the server certificate, the
//! client CA and the token file, each swapped in a directory laid out as
//! Kubernetes mounts a Secret (`..data` a symlink to a timestamped
//! directory, each file a symlink through it, a new version published by
//! renaming a new `..data` link over the old). New connections get the new
//! material, open ones keep working, and a bad file keeps the old material
//! and is counted in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use ticket_authz::core::Action;
use ticket_authz::grpc::convert::action_code;
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::serve::{self as server, ServeConfig, ServeError, TlsFiles, TokenSource};
use ticket_authz::serve_cmd::dataset_loader;

/// How long a reload may take to be observed before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

/// A directory laid out like a mounted Kubernetes Secret.
struct Mount {
    dir: PathBuf,
    versions: usize,
}

impl Mount {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ticket-authz-rotation-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, versions: 0 }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Publishes a new version holding `files`, as the kubelet does: write a
    /// new timestamped directory, point a fresh link at it, rename that
    /// link over `..data`. Each file's top-level link is made once.
    fn publish(&mut self, files: &[(&str, &[u8])]) {
        self.versions += 1;
        let version = format!(
            "..2026_12_01_00_00_{:02}.{}",
            self.versions,
            std::process::id()
        );
        std::fs::create_dir(self.dir.join(&version)).unwrap();
        for (name, bytes) in files {
            std::fs::write(self.dir.join(&version).join(name), bytes).unwrap();
        }
        let staged = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &staged).unwrap();
        std::fs::rename(&staged, self.dir.join("..data")).unwrap();
        for (name, _) in files {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A certificate authority that signs leaf certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Self {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name` and its key, both PEM.
    fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

struct Running {
    addr: SocketAddr,
    health: SocketAddr,
    metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    async fn start(config: ServeConfig) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (
            grpc.local_addr().unwrap(),
            health.local_addr().unwrap(),
            metrics.local_addr().unwrap(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
        let handle = tokio::spawn(server::run(
            config,
            server::Listeners {
                grpc,
                health: Some(health),
                metrics: Some(metrics),
                console: None,
            },
            async move {
                let _ = stopped.await;
            },
            dataset_loader(demo),
            None,
        ));
        let running = Self {
            addr: addrs.0,
            health: addrs.1,
            metrics: addrs.2,
            stop: Some(stop),
            handle,
        };
        running.wait_serving().await;
        running
    }

    async fn wait_serving(&self) {
        let ch = Endpoint::from_shared(format!("http://{}", self.health))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let client = HealthClient::new(ch);
        eventually("the service serves", || {
            let mut client = client.clone();
            async move {
                client
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status == 1)
            }
        })
        .await;
    }

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

    /// The value of a credential counter, 0 when not yet exported.
    fn counter(&self, name: &str, credential: &str) -> f64 {
        let mut stream = std::net::TcpStream::connect(self.metrics).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let series = format!("{name}{{credential=\"{credential}\"}} ");
        response
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }
}

const RELOADS: &str = "ticket_authz_credential_reloads_total";
const ERRORS: &str = "ticket_authz_credential_reload_errors_total";

/// Polls `condition` until it holds, failing after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < DEADLINE, "never observed: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check() -> pb::CheckAccessRequest {
    pb::CheckAccessRequest {
        user_id: "nils".into(),
        action: action_code(Action::View),
        ticket_id: "1001".into(),
        ..Default::default()
    }
}

/// A new TLS connection trusting only `ca`, with a client identity.
async fn connect(
    addr: SocketAddr,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// Whether a call on `ch` is answered.
async fn answered(ch: Channel) -> bool {
    TicketAuthzClient::new(ch)
        .check_access(check())
        .await
        .is_ok()
}

/// Whether a new connection trusting only `ca` (with `identity`) gets an answer.
async fn served(addr: SocketAddr, ca: &str, identity: Option<&(String, String)>) -> bool {
    match connect(addr, ca, identity).await {
        Ok(ch) => answered(ch).await,
        Err(_) => false,
    }
}

fn tls_config(mount: &Mount, client_ca: bool) -> ServeConfig {
    ServeConfig {
        tls: Some(
            TlsFiles {
                cert: mount.path("tls.crt"),
                key: mount.path("tls.key"),
                client_ca: client_ca.then(|| mount.path("ca.crt")),
            }
            .into(),
        ),
        // Long, so that only the directory watch can explain a quick reload.
        credentials_check_interval: Duration::from_secs(3600),
        ..ServeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_server_certificate_serves_new_connections_and_open_ones_stay() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old_cert, old_key) = old_ca.leaf("localhost");
    let (new_cert, new_key) = new_ca.leaf("localhost");
    let mut mount = Mount::new("certificate");
    mount.publish(&[
        ("tls.crt", old_cert.as_bytes()),
        ("tls.key", old_key.as_bytes()),
    ]);
    let running = Running::start(tls_config(&mount, false)).await;
    let open = connect(running.addr, &old_ca.pem(), None).await.unwrap();
    assert!(answered(open.clone()).await);
    assert!(!served(running.addr, &new_ca.pem(), None).await);
    let reloads = running.counter(RELOADS, "certificate");

    mount.publish(&[
        ("tls.crt", new_cert.as_bytes()),
        ("tls.key", new_key.as_bytes()),
    ]);
    let new_trust = new_ca.pem();
    eventually(
        "a new connection trusting only the new CA is served",
        || served(running.addr, &new_trust, None),
    )
    .await;
    assert!(
        !served(running.addr, &old_ca.pem(), None).await,
        "a new connection still got the old certificate"
    );
    assert_eq!(running.counter(RELOADS, "certificate"), reloads + 1.0);
    // The connection opened before the rotation is still the same one: a
    // reconnect would have to trust the new CA, and this client does not.
    for _ in 0..3 {
        assert!(
            answered(open.clone()).await,
            "the open connection was dropped"
        );
    }

    // A key that does not belong to the certificate, then PEM garbage: the
    // new certificate stays in use, and each bad version is counted.
    for (cert, key) in [
        (new_cert.as_bytes(), old_key.as_bytes()),
        (
            b"-----BEGIN CERTIFICATE-----\nbm9wZQ==\n".as_slice(),
            new_key.as_bytes(),
        ),
    ] {
        let errors = running.counter(ERRORS, "certificate");
        mount.publish(&[("tls.crt", cert), ("tls.key", key)]);
        eventually("the bad certificate is counted", || async {
            running.counter(ERRORS, "certificate") > errors
        })
        .await;
        assert!(served(running.addr, &new_ca.pem(), None).await);
    }
    assert_eq!(running.counter(RELOADS, "certificate"), reloads + 1.0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_client_ca_admits_its_clients_and_refuses_the_old_ones() {
    let server_ca = Ca::new("server CA");
    let (cert, key) = server_ca.leaf("localhost");
    let (old_clients, new_clients) = (Ca::new("old client CA"), Ca::new("new client CA"));
    let old_client = old_clients.leaf("client.example");
    let new_client = new_clients.leaf("client.example");
    let mut mount = Mount::new("client-ca");
    let files = |ca: &str| {
        [
            ("tls.crt", cert.clone().into_bytes()),
            ("tls.key", key.clone().into_bytes()),
            ("ca.crt", ca.as_bytes().to_vec()),
        ]
    };
    let publish = |mount: &mut Mount, ca: &str| {
        let files = files(ca);
        let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        mount.publish(&borrowed);
    };
    publish(&mut mount, &old_clients.pem());
    let running = Running::start(tls_config(&mount, true)).await;
    let trusted = server_ca.pem();
    let open = connect(running.addr, &trusted, Some(&old_client))
        .await
        .unwrap();
    assert!(answered(open.clone()).await);
    assert!(!served(running.addr, &trusted, Some(&new_client)).await);
    assert!(!served(running.addr, &trusted, None).await);

    publish(&mut mount, &new_clients.pem());
    eventually("a client of the new CA is admitted", || {
        served(running.addr, &trusted, Some(&new_client))
    })
    .await;
    assert!(
        !served(running.addr, &trusted, Some(&old_client)).await,
        "a client of the old CA was admitted on a new connection"
    );
    assert!(!served(running.addr, &trusted, None).await);
    assert!(answered(open).await, "the open connection was dropped");

    let errors = running.counter(ERRORS, "client_ca");
    publish(&mut mount, "not a certificate\n");
    eventually("the bad client CA is counted", || async {
        running.counter(ERRORS, "client_ca") > errors
    })
    .await;
    assert!(served(running.addr, &trusted, Some(&new_client)).await);
    assert!(!served(running.addr, &trusted, Some(&old_client)).await);
    running.stop().await;
}

/// A server requiring the tokens in `file`, and a plaintext channel to it.
async fn token_server(file: &Path, interval: Duration) -> (Running, Channel) {
    let running = Running::start(ServeConfig {
        auth_token: Some(TokenSource::File(file.to_path_buf())),
        credentials_check_interval: interval,
        ..ServeConfig::default()
    })
    .await;
    let ch = Endpoint::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (running, ch)
}

/// Whether a call with `token` is answered (false: `UNAUTHENTICATED`).
async fn authenticated(ch: Channel, token: &str) -> bool {
    let mut r = Request::new(check());
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match TicketAuthzClient::new(ch).check_access(r).await {
        Ok(_) => true,
        Err(e) if e.code() == Code::Unauthenticated => false,
        Err(e) => panic!("{token}: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_overlaps_old_and_new_tokens() {
    let mut mount = Mount::new("token");
    mount.publish(&[("token", b"old-token\n")]);
    let (running, ch) = token_server(&mount.path("token"), Duration::from_secs(3600)).await;
    let with = |token: &'static str| authenticated(ch.clone(), token);
    let reloads = running.counter(RELOADS, "token");
    assert!(with("old-token").await);
    assert!(!with("new-token").await);

    // Both during the overlap, blank lines and whitespace aside.
    mount.publish(&[("token", b"  old-token\n\n\tnew-token  \n")]);
    eventually("the new token is accepted", || with("new-token")).await;
    assert!(
        with("old-token").await,
        "the old token ended with the overlap"
    );

    mount.publish(&[("token", b"new-token\n")]);
    eventually("the old token is refused", || async {
        !with("old-token").await
    })
    .await;
    assert!(with("new-token").await);
    // Other tests in this process reload tokens too.
    assert!(running.counter(RELOADS, "token") >= reloads + 2.0);

    for bad in [b" \n\n".as_slice(), b"\xff\xfe-token\n".as_slice()] {
        let errors = running.counter(ERRORS, "token");
        mount.publish(&[("token", bad)]);
        eventually("the bad token file is counted", || async {
            running.counter(ERRORS, "token") > errors
        })
        .await;
        assert!(with("new-token").await, "a bad file replaced the token");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_check_catches_a_change_without_an_event() {
    // The configured path is a link to a file in another directory, and
    // only that file changes: nothing happens in the watched directory, so
    // only the periodic comparison of contents can notice.
    let outside = Mount::new("outside");
    std::fs::write(outside.path("token"), b"first-token\n").unwrap();
    let watched = Mount::new("watched");
    std::os::unix::fs::symlink(outside.path("token"), watched.path("token")).unwrap();
    let (running, ch) = token_server(&watched.path("token"), Duration::from_millis(200)).await;
    std::fs::write(outside.path("token"), b"second-token\n").unwrap();
    eventually("the changed token is accepted", || {
        authenticated(ch.clone(), "second-token")
    })
    .await;
    running.stop().await;
}
