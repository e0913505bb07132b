//! The Helm chart in `helm/ticket-authz` and its sidecar example, through the
//! real `helm` and `kubernetes-validate`: lint, render the default values and
//! every `ci/*.yaml`, validate every object, and check what the validator
//! cannot (probes, Secret references, budgets, the ServiceMonitor, security
//! settings, refusals). The Grafana dashboard and the PrometheusRule are
//! checked too: the rules by the real `promtool check rules`, and every
//! metric either uses against a real `/metrics` scrape of the binary.
//! Without the tools each test says it skipped; under `CI=true` a missing
//! tool fails it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

const RELEASE: &str = "authz-test";
const NAMESPACE: &str = "authz-ns";
/// The oldest Kubernetes the chart's `kubeVersion` admits: every render is
/// validated against it as well as against the validator's newest.
const OLDEST_KUBERNETES: &str = "1.30.0";

/// Secret names put into every secret-bearing value of one render; each may
/// appear only where a Secret is referenced by name.
const SENTINELS: [(&str, &str); 4] = [
    ("database.postgres.existingSecret", "sentinel-database-url"),
    ("authToken.existingSecret", "sentinel-bearer-token"),
    ("tls.existingSecret", "sentinel-tls-pair"),
    ("tls.clientCA.existingSecret", "sentinel-client-ca"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("helm/ticket-authz")
}

/// A tool from its environment variable, else `PATH`, else the directory
/// `.ci/run` installs it into.
fn find_tool(env_var: &str, name: &str, local: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var} names {}, which is not a file",
            path.display()
        );
        return Some(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(repo().join(local)).filter(|p| p.is_file()))
}

/// Output of a command, which must have run (its exit status is the caller's).
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One `helm template` output: its name, the file it was written to, and
/// its YAML documents as JSON values.
struct Render {
    name: String,
    file: PathBuf,
    docs: Vec<Value>,
}

/// The tools and every render, made once for all the tests of this file.
struct Charts {
    helm: PathBuf,
    validator: PathBuf,
    /// The example application chart with our chart copied into its charts/.
    example: PathBuf,
    renders: Vec<Render>,
}

static CHARTS: OnceLock<Result<Charts, String>> = OnceLock::new();

/// The rendered charts, or `None` (said out loud) when a tool is missing
/// outside CI.
fn charts(test: &str) -> Option<&'static Charts> {
    match CHARTS.get_or_init(prepare) {
        Ok(charts) => Some(charts),
        Err(missing) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{missing} is required under CI=true (.ci/run installs it)"
            );
            eprintln!("skipped {test}: {missing} not found (.ci/run installs it)");
            None
        }
    }
}

fn prepare() -> Result<Charts, String> {
    let helm = find_tool("HELM", "helm", "target/ci-tools/bin/helm").ok_or(
        "helm (PATH, HELM, or target/ci-tools/bin, from ../shared/tools/install-helm)".to_owned(),
    )?;
    let validator = find_tool(
        "KUBERNETES_VALIDATE",
        "kubernetes-validate",
        "target/ci-tools/venv/bin/kubernetes-validate",
    )
    .ok_or(
        "kubernetes-validate (PATH, KUBERNETES_VALIDATE, or target/ci-tools/venv, from PyPI)"
            .to_owned(),
    )?;

    // A directory of our own, so concurrent runs never share files.
    let work = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("helm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    // The example depends on the chart by a file:// path; rather than let
    // `helm dependency build` write into the source tree, assemble the
    // same layout (the chart unpacked under charts/) in the work directory.
    let example = work.join("helm-sidecar");
    copy_dir(&repo().join("examples/helm-sidecar"), &example);
    copy_dir(&chart_dir(), &example.join("charts/ticket-authz"));

    let mut charts = Charts {
        helm,
        validator,
        example,
        renders: Vec::new(),
    };
    let chart = chart_dir();
    let mut sets: Vec<(String, PathBuf, Vec<String>)> =
        vec![("default".to_owned(), chart.clone(), Vec::new())];
    for file in ci_values_files() {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        sets.push((name, chart.clone(), vec!["-f".into(), path_arg(&file)]));
    }
    let mut sentinel = vec![
        "-f".to_owned(),
        path_arg(&chart.join("ci/all-options-values.yaml")),
    ];
    for (key, name) in SENTINELS {
        sentinel.extend(["--set-string".to_owned(), format!("{key}={name}")]);
    }
    sets.push(("sentinel-secrets".to_owned(), chart.clone(), sentinel));
    let example_dir = charts.example.clone();
    sets.push(("example".to_owned(), example_dir.clone(), Vec::new()));
    // The fleet from an application chart: sidecars reading NATS with a
    // token, and the subchart's own relay beside the application.
    sets.push((
        "example-fleet".to_owned(),
        example_dir.clone(),
        [
            "ticket-authz.source=nats",
            "ticket-authz.nats.url=nats://nats.messaging.svc:4222",
            "ticket-authz.nats.credentials.existingSecret=helpdesk-authz-nats",
            "ticket-authz.nats.credentials.credsKey=",
            "ticket-authz.nats.credentials.tokenKey=token",
            "ticket-authz.relay.enabled=true",
        ]
        .iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect(),
    ));
    sets.push((
        "example-plain-container".to_owned(),
        example_dir,
        [
            "ticket-authz.sidecar.native=false",
            "ticket-authz.authToken.existingSecret=helpdesk-authz-token",
            "ticket-authz.tls.existingSecret=helpdesk-authz-tls",
            "ticket-authz.decisionLog.enabled=true",
            "ticket-authz.decisionLog.output=/var/log/authz/decisions.jsonl",
        ]
        .iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect(),
    ));

    for (name, dir, args) in sets {
        let text = charts.template(&dir, &args);
        let file = work.join(format!("{name}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let docs = parse_documents(&text);
        assert!(!docs.is_empty(), "render {name} produced no objects");
        charts.renders.push(Render { name, file, docs });
    }
    Ok(charts)
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// Every `helm/ticket-authz/ci/*.yaml`, sorted; chart-testing's two
/// required ones must be among them.
fn ci_values_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for needed in ["sidecar-values.yaml", "all-options-values.yaml"] {
        assert!(
            files.iter().any(|f| f.ends_with(needed)),
            "ci/{needed} is missing"
        );
    }
    files
}

/// Copies a directory tree, leaving out what `helm dependency build` may
/// have left in a working copy of the example.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "charts" || name == "Chart.lock" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn parse_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| serde_yaml_ng::Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .map(|doc| serde_json::to_value(doc).unwrap())
        .collect()
}

impl Charts {
    fn helm(&self) -> Command {
        Command::new(&self.helm)
    }

    fn template(&self, chart: &Path, args: &[String]) -> String {
        stdout_of(
            self.helm()
                .args(["template", RELEASE])
                .arg(chart)
                .args(["--namespace", NAMESPACE])
                .args(args),
        )
    }

    /// `helm template` of our chart that must fail; returns its stderr.
    fn template_error(&self, chart: &Path, args: &[&str]) -> String {
        let out = run(self
            .helm()
            .args(["template", RELEASE])
            .arg(chart)
            .args(["--namespace", NAMESPACE])
            .args(args));
        assert!(
            !out.status.success(),
            "helm template {args:?} should have failed but rendered:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn render(&self, name: &str) -> &Render {
        self.renders
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no render named {name}"))
    }
}

impl Render {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "render {}: {kind} objects", self.name);
        found[0]
    }

    /// Every pod template with our container in it, and that container.
    fn our_pods(&self) -> Vec<(&Value, &Value)> {
        self.pods_running("serve")
    }

    /// Every pod template of the relay, and its container.
    fn relay_pods(&self) -> Vec<(&Value, &Value)> {
        self.pods_running("relay")
    }

    fn pods_running(&self, command: &str) -> Vec<(&Value, &Value)> {
        self.of_kind("Deployment")
            .into_iter()
            .filter_map(|d| {
                let pod = &d["spec"]["template"]["spec"];
                all_containers(pod)
                    .find(|c| c["args"] == serde_json::json!([command]))
                    .map(|c| (pod, c))
            })
            .collect()
    }

    /// The one Deployment whose pods run `ticket-authz <command>`.
    fn deployment_running(&self, command: &str) -> &Value {
        let found: Vec<&Value> = self
            .of_kind("Deployment")
            .into_iter()
            .filter(|d| {
                all_containers(&d["spec"]["template"]["spec"])
                    .any(|c| c["args"] == serde_json::json!([command]))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "render {}: Deployments running {command}",
            self.name
        );
        found[0]
    }

    /// The one object of a kind with this name.
    fn named(&self, kind: &str, name: &str) -> &Value {
        self.of_kind(kind)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("render {}: no {kind} named {name}", self.name))
    }
}

fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .filter_map(|key| pod[key].as_array())
        .flatten()
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

fn env_value<'a>(container: &'a Value, name: &str) -> &'a str {
    env(container, name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no literal {name} in {container}"))
}

/// The port of a `host:port` listen address.
fn listen_port(addr: &str) -> u64 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().unwrap();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn lint_strict_passes_for_default_and_every_ci_values_file() {
    let Some(charts) = charts("lint_strict_passes_for_default_and_every_ci_values_file") else {
        return;
    };
    let mut runs: Vec<(PathBuf, Vec<String>)> = vec![(chart_dir(), Vec::new())];
    for file in ci_values_files() {
        runs.push((chart_dir(), vec!["-f".into(), path_arg(&file)]));
    }
    runs.push((charts.example.clone(), Vec::new()));
    for (chart, args) in runs {
        let out = stdout_of(
            charts
                .helm()
                .args(["lint", "--strict"])
                .arg(&chart)
                .args(&args),
        );
        assert!(
            out.contains("0 chart(s) failed") && !out.contains("[WARNING]"),
            "helm lint --strict {args:?}:\n{out}"
        );
    }
}

#[test]
fn every_render_is_valid_kubernetes() {
    let Some(charts) = charts("every_render_is_valid_kubernetes") else {
        return;
    };
    let files: Vec<&Path> = charts.renders.iter().map(|r| r.file.as_path()).collect();
    // The validator has no schema for the Prometheus Operator's kinds nor
    // Istio's (it warns and passes them); every other object must be
    // checked, and those are asserted field by field in their own tests.
    let expected = charts
        .renders
        .iter()
        .flat_map(|r| &r.docs)
        .filter(|d| {
            let api = d["apiVersion"].as_str().unwrap_or_default();
            api != "monitoring.coreos.com/v1" && !api.contains(".istio.io/")
        })
        .count();
    for version in [None, Some(OLDEST_KUBERNETES)] {
        let mut cmd = Command::new(&charts.validator);
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        let out = stdout_of(cmd.args(&files));
        let passed = out
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        assert_eq!(
            passed, expected,
            "kubernetes-validate (version {version:?}) checked {passed} of {expected} objects:\n{out}"
        );
    }
}

#[test]
fn probes_are_grpc_on_the_plaintext_health_port() {
    let Some(charts) = charts("probes_are_grpc_on_the_plaintext_health_port") else {
        return;
    };
    let mut pods = 0;
    for render in &charts.renders {
        for (_, container) in render.our_pods() {
            pods += 1;
            let health = listen_port(env_value(container, "TICKET_AUTHZ_HEALTH_LISTEN"));
            assert_ne!(
                health,
                listen_port(env_value(container, "TICKET_AUTHZ_LISTEN")),
                "{}: health shares the main port",
                render.name
            );
            let declared = container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"].as_str().unwrap().ends_with("health"))
                .unwrap();
            assert_eq!(declared["containerPort"], health, "{}", render.name);
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let p = &container[probe];
                let handler: Vec<&String> = p.as_object().unwrap().keys().collect();
                assert!(
                    p["grpc"]["port"] == health
                        && ["httpGet", "tcpSocket", "exec"]
                            .iter()
                            .all(|h| p.get(*h).is_none()),
                    "{}: {probe} is not a gRPC probe on port {health}: {handler:?}",
                    render.name
                );
            }
            assert_eq!(
                container["readinessProbe"]["grpc"]["service"], "ticketauthz.v1.TicketAuthz",
                "{}",
                render.name
            );
            // Sized for large first loads: at least five minutes.
            let startup = &container["startupProbe"];
            let budget = startup["periodSeconds"].as_u64().unwrap()
                * startup["failureThreshold"].as_u64().unwrap();
            assert!(budget >= 300, "{}: startup budget {budget} s", render.name);
        }
    }
    // default, all-options, postgres, sqlite-persistent, sentinel, two examples.
    assert!(pods >= 7, "only {pods} pods rendered");
}

#[test]
fn secrets_are_referenced_never_inlined() {
    let Some(charts) = charts("secrets_are_referenced_never_inlined") else {
        return;
    };
    for render in &charts.renders {
        let text = std::fs::read_to_string(&render.file).unwrap();
        assert!(
            !text.contains("postgres://") && render.of_kind("Secret").is_empty(),
            "{}: a database URL or a Secret object is in the render",
            render.name
        );
    }

    // Each sentinel Secret name appears exactly where a Secret is named.
    let render = charts.render("sentinel-secrets");
    for (key, sentinel) in SENTINELS {
        let mut places = Vec::new();
        for doc in &render.docs {
            find_string(doc, sentinel, String::new(), &mut places);
        }
        assert!(!places.is_empty(), "{key}: {sentinel} is not referenced");
        for place in &places {
            assert!(
                place.ends_with("/secretKeyRef/name") || place.ends_with("/secret/secretName"),
                "{key}: {sentinel} appears at {place}"
            );
        }
    }
    let (pod, container) = render.our_pods()[0];
    let url = env(container, "TICKET_AUTHZ_DATABASE_URL").unwrap();
    assert!(url.get("value").is_none(), "{url}");
    assert_eq!(
        url["valueFrom"]["secretKeyRef"]["name"],
        "sentinel-database-url"
    );

    // The file settings point into read-only mounts of the right Secrets.
    for (var, secret) in [
        ("TICKET_AUTHZ_AUTH_TOKEN_FILE", "sentinel-bearer-token"),
        ("TICKET_AUTHZ_TLS_CERT", "sentinel-tls-pair"),
        ("TICKET_AUTHZ_TLS_KEY", "sentinel-tls-pair"),
        ("TICKET_AUTHZ_CLIENT_CA", "sentinel-client-ca"),
    ] {
        let path = Path::new(env_value(container, var));
        let mount = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| path.parent() == Some(Path::new(m["mountPath"].as_str().unwrap())))
            .unwrap_or_else(|| panic!("{var}: nothing mounted at {}", path.display()));
        assert_eq!(mount["readOnly"], true, "{var}");
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(volume["secret"]["secretName"], secret, "{var}");
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(
            volume["secret"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["path"] == file),
            "{var}: the Secret volume has no {file}"
        );
    }

    // There is no value a URL could be written into.
    let error = charts.template_error(
        &chart_dir(),
        &["--set", "database.postgres.url=postgres://user:pw@db/app"],
    );
    assert!(error.contains("additional properties"), "{error}");
}

/// Records the JSON-pointer-like path of every string equal to `needle`.
fn find_string(value: &Value, needle: &str, path: String, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s == needle => found.push(path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_string(item, needle, format!("{path}/{i}"), found);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                find_string(v, needle, format!("{path}/{k}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn disruption_budget_is_present_exactly_when_enabled() {
    let Some(charts) = charts("disruption_budget_is_present_exactly_when_enabled") else {
        return;
    };
    for (name, budget) in [
        ("default", Some(("maxUnavailable", serde_json::json!(1)))),
        (
            "postgres-values",
            Some(("maxUnavailable", serde_json::json!(1))),
        ),
        (
            "all-options-values",
            Some(("minAvailable", serde_json::json!("50%"))),
        ),
        ("sqlite-persistent-values", None),
        ("sidecar-values", None),
    ] {
        let render = charts.render(name);
        let found = render.of_kind("PodDisruptionBudget");
        let Some((field, value)) = budget else {
            assert!(found.is_empty(), "{name}: unexpected budget");
            continue;
        };
        assert_eq!(found.len(), 1, "{name}");
        let spec = &found[0]["spec"];
        assert_eq!(spec[field], value, "{name}");
        assert_eq!(spec.as_object().unwrap().len(), 2, "{name}: {spec}");
        let pod_labels = &render.one("Deployment")["spec"]["template"]["metadata"]["labels"];
        assert!(
            labels_match(&spec["selector"]["matchLabels"], pod_labels),
            "{name}: the budget selects no pod of ours"
        );
    }
}

#[test]
fn service_monitor_scrapes_the_services_metrics_port() {
    let Some(charts) = charts("service_monitor_scrapes_the_services_metrics_port") else {
        return;
    };
    for name in [
        "default",
        "postgres-values",
        "sqlite-persistent-values",
        "sidecar-values",
    ] {
        assert!(
            charts.render(name).of_kind("ServiceMonitor").is_empty(),
            "{name}: ServiceMonitor without metrics.serviceMonitor.enabled"
        );
    }
    let render = charts.render("all-options-values");
    let monitor = render.one("ServiceMonitor");
    let service = render.one("Service");
    let deployment = render.one("Deployment");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert!(
        labels_match(
            &monitor["spec"]["selector"]["matchLabels"],
            &service["metadata"]["labels"]
        ),
        "the ServiceMonitor's selector does not match the Service's labels"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        serde_json::json!([NAMESPACE])
    );
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["scheme"], "http");
    assert_eq!(endpoint["interval"], "15s");
    assert_eq!(endpoint["scrapeTimeout"], "5s");
    assert_eq!(endpoint["relabelings"][0]["targetLabel"], "node");
    assert_eq!(endpoint["metricRelabelings"][0]["action"], "drop");

    // port name -> Service port -> container port -> the metrics listener.
    let service_port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == endpoint["port"])
        .unwrap_or_else(|| panic!("the Service has no port named {}", endpoint["port"]));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let container_port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == service_port["targetPort"])
        .unwrap();
    assert_eq!(
        container_port["containerPort"],
        listen_port(env_value(container, "TICKET_AUTHZ_METRICS_LISTEN"))
    );
    assert!(
        labels_match(
            &service["spec"]["selector"],
            &deployment["spec"]["template"]["metadata"]["labels"]
        ),
        "the Service selects no pod of ours"
    );
}

#[test]
fn containers_run_locked_down() {
    let Some(charts) = charts("containers_run_locked_down") else {
        return;
    };
    let mut relays = 0;
    for render in &charts.renders {
        for (pod, container) in render.our_pods().into_iter().chain(render.relay_pods()) {
            let name = &render.name;
            let relay = container["args"] == serde_json::json!(["relay"]);
            relays += usize::from(relay);
            let sc = &container["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true, "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["privileged"], false, "{name}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{name}"
            );
            assert!(sc["capabilities"].get("add").is_none(), "{name}");
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
            if name.starts_with("example") && !relay {
                // The pod is the application's; its own settings are its own.
                continue;
            }
            assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            // Longer than the preStop sleep plus the drain, or the kubelet cuts it short.
            let grace = env_value(container, "TICKET_AUTHZ_SHUTDOWN_GRACE");
            let grace: u64 = grace.trim_end_matches('s').parse().unwrap();
            let sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap_or(0);
            assert!(
                pod["terminationGracePeriodSeconds"].as_u64().unwrap() > grace + sleep,
                "{name}"
            );
        }
    }
    // fleet-values and example-fleet.
    assert!(relays >= 2, "only {relays} relay pods rendered");
}

#[test]
fn every_mount_has_a_volume_and_writable_paths_are_volumes() {
    let Some(charts) = charts("every_mount_has_a_volume_and_writable_paths_are_volumes") else {
        return;
    };
    for render in &charts.renders {
        for (pod, container) in render.our_pods().into_iter().chain(render.relay_pods()) {
            let volumes: BTreeSet<&str> = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            let mounts = container["volumeMounts"].as_array().unwrap();
            let mounted: BTreeSet<&str> = mounts
                .iter()
                .map(|m| m["mountPath"].as_str().unwrap())
                .collect();
            assert_eq!(
                mounted.len(),
                mounts.len(),
                "{}: a path mounted twice",
                render.name
            );
            for mount in mounts {
                assert!(
                    volumes.contains(mount["name"].as_str().unwrap()),
                    "{}: mount {} has no volume",
                    render.name,
                    mount["name"]
                );
            }
            assert!(mounted.contains("/tmp"), "{}", render.name);
            // Files the service reads sit in a mounted directory; the
            // snapshot copy's directory is a mount of its own.
            for var in [
                "TICKET_AUTHZ_NATS_CREDS",
                "TICKET_AUTHZ_NATS_TOKEN_FILE",
                "TICKET_AUTHZ_NATS_TLS_CA",
            ] {
                if env(container, var).is_some() {
                    let dir = Path::new(env_value(container, var)).parent().unwrap();
                    assert!(
                        mounted.contains(dir.to_str().unwrap()),
                        "{}: {var} is not in a mounted directory",
                        render.name
                    );
                }
            }
            if env(container, "TICKET_AUTHZ_SNAPSHOT_DIR").is_some() {
                let dir = env_value(container, "TICKET_AUTHZ_SNAPSHOT_DIR");
                assert!(mounted.contains(dir), "{}: snapshot dir", render.name);
            }
            let url = env(container, "TICKET_AUTHZ_DATABASE_URL");
            if let Some(path) = url
                .and_then(|u| u["value"].as_str())
                .and_then(|u| u.strip_prefix("sqlite://"))
            {
                let dir = Path::new(path).parent().unwrap().to_str().unwrap();
                assert!(
                    mounted.contains(dir),
                    "{}: SQLite dir {dir} is not a volume",
                    render.name
                );
            }
            if let Some(log) = env(container, "TICKET_AUTHZ_DECISION_LOG") {
                let log = log["value"].as_str().unwrap();
                if log != "stdout" {
                    let dir = Path::new(log).parent().unwrap().to_str().unwrap();
                    assert!(mounted.contains(dir), "{}: decision log dir", render.name);
                }
            }
        }
    }
}

#[test]
fn sqlite_stays_on_one_replica_on_a_volume() {
    let Some(charts) = charts("sqlite_stays_on_one_replica_on_a_volume") else {
        return;
    };
    let default = charts.render("default");
    let deployment = default.one("Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let (pod, container) = default.our_pods()[0];
    assert_eq!(
        env_value(container, "TICKET_AUTHZ_DATABASE_URL"),
        "sqlite:///data/ticket-authz.db"
    );
    let data = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ticket-authz-data")
        .unwrap();
    assert!(data.get("emptyDir").is_some(), "{data}");

    let persistent = charts.render("sqlite-persistent-values");
    let claim = persistent.one("PersistentVolumeClaim");
    let (pod, _) = persistent.our_pods()[0];
    let data = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ticket-authz-data")
        .unwrap();
    assert_eq!(
        data["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );

    let chart = chart_dir();
    let persistent_values = path_arg(&chart.join("ci/sqlite-persistent-values.yaml"));
    for args in [
        &["--set", "replicaCount=2"][..],
        &["--set", "autoscaling.enabled=true"][..],
        &["-f", persistent_values.as_str(), "--set", "replicaCount=3"][..],
    ] {
        let error = charts.template_error(&chart, args);
        assert!(
            error.contains("SQLite allows only one replica"),
            "{args:?}: {error}"
        );
    }
    let error = charts.template_error(&chart, &["--set", "database.type=postgres"]);
    assert!(
        error.contains("database.postgres.existingSecret"),
        "{error}"
    );

    // With PostgreSQL, several replicas roll over one at a time.
    let postgres = charts.render("postgres-values").one("Deployment");
    assert_eq!(postgres["spec"]["replicas"], 3);
    assert_eq!(
        postgres["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    // With autoscaling the HPA owns the replica count.
    let all = charts.render("all-options-values");
    assert!(all.one("Deployment")["spec"].get("replicas").is_none());
    let hpa = all.one("HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        all.one("Deployment")["metadata"]["name"]
    );
    assert_eq!(hpa["spec"]["minReplicas"], 3);
}

#[test]
fn every_option_reaches_the_container() {
    let Some(charts) = charts("every_option_reaches_the_container") else {
        return;
    };
    let render = charts.render("all-options-values");
    let (_, c) = render.our_pods()[0];
    for (var, value) in [
        ("TICKET_AUTHZ_LISTEN", "[::]:50051"),
        ("TICKET_AUTHZ_HEALTH_LISTEN", "0.0.0.0:8081"),
        ("TICKET_AUTHZ_METRICS_LISTEN", "0.0.0.0:9090"),
        ("TICKET_AUTHZ_NOTIFY", "listen"),
        ("TICKET_AUTHZ_POLL_INTERVAL", "2s"),
        ("TICKET_AUTHZ_REVISION_WAIT", "500ms"),
        ("TICKET_AUTHZ_TICKET_CACHE", "256MiB"),
        ("TICKET_AUTHZ_MAX_CONCURRENT_REQUESTS", "2048"),
        ("TICKET_AUTHZ_MAX_MESSAGE_BYTES", "8388608"),
        ("TICKET_AUTHZ_SHUTDOWN_GRACE", "20s"),
        ("TICKET_AUTHZ_LOG_FORMAT", "json"),
        ("TICKET_AUTHZ_LOG_FILTER", "info,ticket_authz=debug"),
        (
            "TICKET_AUTHZ_DECISION_LOG",
            "/var/log/ticket-authz/decisions.jsonl",
        ),
        ("TICKET_AUTHZ_DECISION_LOG_SAMPLE", "0.25"),
        ("TICKET_AUTHZ_TRACE_SUBJECTS", "true"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://otel-collector.observability.svc:4317",
        ),
        ("OTEL_SERVICE_NAME", "ticket-authz"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
    ] {
        assert_eq!(env_value(c, var), value, "{var}");
    }
    let extra = env(c, "OTEL_EXPORTER_OTLP_HEADERS").unwrap();
    assert_eq!(extra["valueFrom"]["secretKeyRef"]["name"], "otel-headers");
    // Every variable is set once.
    let names: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "{names:?}"
    );

    // The defaults: JSON logs, metrics on, no traces, no decision log.
    let (_, d) = charts.render("default").our_pods()[0];
    assert_eq!(env_value(d, "TICKET_AUTHZ_LOG_FORMAT"), "json");
    assert_eq!(env_value(d, "TICKET_AUTHZ_METRICS_LISTEN"), "0.0.0.0:9090");
    assert_eq!(env_value(d, "TICKET_AUTHZ_LISTEN"), "0.0.0.0:50051");
    for unset in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "TICKET_AUTHZ_DECISION_LOG",
        "TICKET_AUTHZ_TICKET_CACHE",
    ] {
        assert!(env(d, unset).is_none(), "{unset} set by default");
    }

    // A size the service would refuse is refused by the chart's schema.
    let error = charts.template_error(&chart_dir(), &["--set", "server.ticketCache=lots"]);
    assert!(error.contains("ticketCache"), "{error}");

    // The network policy opens the health port to all and gRPC to the listed peers.
    let policy = render.one("NetworkPolicy");
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    let rule_for = |port: u64| {
        ingress
            .iter()
            .find(|r| r["ports"][0]["port"] == port)
            .unwrap_or_else(|| panic!("no ingress rule for port {port}"))
    };
    assert!(rule_for(8081).get("from").is_none());
    assert_eq!(
        rule_for(50051)["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "helpdesk-api"
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
}

#[test]
fn sidecar_example_renders_a_pod_with_both_containers() {
    let Some(charts) = charts("sidecar_example_renders_a_pod_with_both_containers") else {
        return;
    };
    for (name, native) in [("example", true), ("example-plain-container", false)] {
        let render = charts.render(name);
        let deployments = render.of_kind("Deployment");
        assert_eq!(
            deployments.len(),
            1,
            "{name}: only the application's Deployment"
        );
        let pod = &deployments[0]["spec"]["template"]["spec"];
        let names = |key: &str| -> Vec<String> {
            pod[key]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|c| c["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        if native {
            assert_eq!(names("initContainers"), ["ticket-authz"], "{name}");
            assert_eq!(names("containers"), ["api"], "{name}");
            assert_eq!(
                pod["initContainers"][0]["restartPolicy"], "Always",
                "{name}"
            );
        } else {
            assert!(names("initContainers").is_empty(), "{name}");
            assert_eq!(names("containers"), ["api", "ticket-authz"], "{name}");
            assert!(
                pod["containers"][1].get("restartPolicy").is_none(),
                "{name}"
            );
        }
        let (_, ours) = render.our_pods()[0];
        // Only the pod's own containers reach the gRPC port.
        assert!(
            env_value(ours, "TICKET_AUTHZ_LISTEN").starts_with("127.0.0.1:"),
            "{name}"
        );
        assert_eq!(
            env(ours, "TICKET_AUTHZ_DATABASE_URL").unwrap()["valueFrom"]["secretKeyRef"]["name"],
            "helpdesk-authz-database"
        );
        for port in ours["ports"].as_array().unwrap() {
            assert!(
                port["name"].as_str().unwrap().starts_with("authz-"),
                "{name}: {port}"
            );
        }
        // The application's Service exposes the sidecar's metrics port by name.
        let service = render.one("Service");
        assert!(
            service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["targetPort"] == "authz-metrics"),
            "{name}"
        );
    }

    // Including the sidecar while the subchart would render its own Deployment is refused.
    let error = charts.template_error(&charts.example, &["--set", "ticket-authz.mode=deployment"]);
    assert!(error.contains("ticket-authz.mode=sidecar"), "{error}");
}

/// The ConfigMap carrying the Grafana dashboard in a render, if any.
fn dashboard_map(render: &Render) -> Option<&Value> {
    render
        .of_kind("ConfigMap")
        .into_iter()
        .find(|m| m["data"].get("ticket-authz.json").is_some())
}

/// The chart's dashboard file, parsed.
fn dashboard_file() -> Value {
    let path = chart_dir().join("dashboards/ticket-authz.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel of a dashboard, rows' nested panels included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        out.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Every PromQL expression of a dashboard: its panels' targets and its
/// query variables.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let targets = all_panels(dashboard)
        .into_iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .map(|t| t["expr"].as_str().unwrap().to_owned());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| v["query"]["query"].as_str().unwrap().to_owned());
    targets.chain(variables).collect()
}

fn rules_of(rule: &Value) -> Vec<&Value> {
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect()
}

/// Every identifier starting with `ticket_authz_` in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ticket_authz_") {
        let starts_word = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let len = rest[at..].find(|c| !is_ident(c)).unwrap_or(rest.len() - at);
        if starts_word {
            names.insert(rest[at..at + len].to_owned());
        }
        rest = &rest[at + len..];
    }
    names
}

/// An optional object that only the renders of `all-options-values.yaml`
/// (the sentinel render uses it too) turn on.
fn off_unless_all_options(charts: &Charts, value: &str, present: impl Fn(&Render) -> bool) {
    for render in &charts.renders {
        let all_options =
            ["all-options-values", "sentinel-secrets"].contains(&render.name.as_str());
        assert_eq!(
            present(render),
            all_options,
            "{}: rendered exactly when {value}",
            render.name
        );
    }
}

#[test]
fn dashboard_config_map_carries_a_valid_dashboard_when_enabled() {
    let Some(charts) = charts("dashboard_config_map_carries_a_valid_dashboard_when_enabled") else {
        return;
    };
    off_unless_all_options(charts, "metrics.grafanaDashboard.enabled", |r| {
        dashboard_map(r).is_some()
    });
    let map = dashboard_map(charts.render("all-options-values")).unwrap();
    let meta = &map["metadata"];
    assert_eq!(meta["labels"]["grafana_dashboard"], "1");
    assert_eq!(meta["labels"]["example.com/team"], "platform");
    assert_eq!(meta["annotations"]["grafana_folder"], "Authorization");
    assert_eq!(meta["namespace"], "monitoring");

    let text = map["data"]["ticket-authz.json"].as_str().unwrap();
    let dashboard: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the dashboard in the ConfigMap is not JSON: {e}"));
    assert_eq!(dashboard, dashboard_file(), "the ConfigMap alters the file");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() > 0);
    assert!(!dashboard["uid"].as_str().unwrap().is_empty());

    // A data source variable of type prometheus, and namespace/job/pod
    // variables that every query is filtered by.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    for name in ["namespace", "job", "pod"] {
        assert_eq!(variable(name)["type"], "query", "${name}");
        assert_eq!(variable(name)["datasource"]["uid"], "${datasource}");
    }

    let panels = all_panels(&dashboard);
    let ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "panel ids repeat: {ids:?}"
    );
    // Laid out on Grafana's 24-column grid without overlaps (Grafana would
    // otherwise move panels about on load).
    let cells: Vec<[u64; 4]> = panels
        .iter()
        .map(|p| ["x", "y", "w", "h"].map(|k| p["gridPos"][k].as_u64().unwrap()))
        .collect();
    for (i, [x, y, w, h]) in cells.iter().enumerate() {
        assert!(
            x + w <= 24 && *w > 0 && *h > 0,
            "panel {}: {cells:?}",
            ids[i]
        );
        for [x2, y2, w2, h2] in &cells[i + 1..] {
            let apart = x + w <= *x2 || x2 + w2 <= *x || y + h <= *y2 || y2 + h2 <= *y;
            assert!(apart, "panel {} overlaps another: {cells:?}", ids[i]);
        }
    }
    let mut titles = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        titles.insert(title);
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no target");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or("");
            assert!(!expr.trim().is_empty(), "{title}: a target without expr");
            for selector in ["namespace=\"$namespace\"", "job=\"$job\"", "pod=~\"$pod\""] {
                assert!(expr.contains(selector), "{title}: {expr} lacks {selector}");
            }
        }
    }
    let exprs = dashboard_exprs(&dashboard).join("\n");
    for (what, metric) in [
        ("latency", "ticket_authz_rpc_duration_seconds_bucket"),
        ("decisions", "ticket_authz_decisions_total"),
        ("revision", "ticket_authz_revision"),
        ("change lag", "ticket_authz_change_lag_seconds_bucket"),
        ("caught-up age", "ticket_authz_caught_up_age_seconds"),
        ("full reloads", "ticket_authz_full_reloads_total"),
        ("held back", "ticket_authz_held_back"),
        ("shed requests", "ticket_authz_shed_requests_total"),
        ("serving", "ticket_authz_serving"),
    ] {
        assert!(
            metric_names(&exprs).contains(metric),
            "no {what} panel ({metric})"
        );
    }
    for quantile in ["0.5", "0.9", "0.99"] {
        assert!(
            exprs.contains(&format!("histogram_quantile({quantile}, sum by (rpc, le)")),
            "no p{quantile} latency per RPC"
        );
    }
    assert!(titles.contains("Error ratio"), "{titles:?}");

    // Turned on alone: the sidecar's default label, in the release's namespace.
    let text = charts.template(
        &chart_dir(),
        &[
            "--set".into(),
            "metrics.grafanaDashboard.enabled=true".into(),
        ],
    );
    let docs = parse_documents(&text);
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("a dashboard ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(map["metadata"]["namespace"], NAMESPACE);
    assert!(map["metadata"].get("annotations").is_none());
}

/// The alerts the chart defines, each with a section of that name in the
/// chart's README.
const ALERTS: [&str; 10] = [
    "TicketAuthzChangeLagHigh",
    "TicketAuthzCaughtUpAgeHigh",
    "TicketAuthzCaughtUpAgeCritical",
    "TicketAuthzHeldBack",
    "TicketAuthzShedding",
    "TicketAuthzErrorRatioHigh",
    "TicketAuthzNotServing",
    "TicketAuthzCredentialReloadFailed",
    "TicketAuthzTaskFailed",
    "TicketAuthzAbsent",
];

#[test]
fn prometheus_rule_is_scoped_to_the_release_and_documented() {
    let Some(charts) = charts("prometheus_rule_is_scoped_to_the_release_and_documented") else {
        return;
    };
    off_unless_all_options(charts, "metrics.prometheusRule.enabled", |r| {
        !r.of_kind("PrometheusRule").is_empty()
    });
    let render = charts.render("all-options-values");
    let rule = render.one("PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let rules = rules_of(rule);
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(names, ALERTS);

    // The Prometheus Operator names a ServiceMonitor's job after the Service.
    let service = render.one("Service")["metadata"]["name"].as_str().unwrap();
    let selector = format!("{{job=\"{service}\",namespace=\"{NAMESPACE}\"");
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    for r in &rules {
        let alert = r["alert"].as_str().unwrap();
        let expr = r["expr"].as_str().unwrap();
        for metric in metric_names(expr) {
            assert!(
                expr.contains(&format!("{metric}{selector}")),
                "{alert}: {metric} is not scoped by {selector} in {expr}"
            );
        }
        assert!(
            ["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap()),
            "{alert}"
        );
        for annotation in ["summary", "description"] {
            assert!(
                !r["annotations"][annotation].as_str().unwrap().is_empty(),
                "{alert}: {annotation}"
            );
        }
        let runbook = r["annotations"]["runbook_url"].as_str().unwrap();
        assert_eq!(
            runbook,
            format!(
                "https://git.example.com/platform/ticket-authz/-/blob/main/helm/ticket-authz/README.md#{}",
                alert.to_lowercase()
            )
        );
        assert!(
            readme.contains(&format!("\n### {alert}\n")),
            "the chart README has no section for {alert}"
        );
    }
    // The values' thresholds and durations reach the rules.
    let find = |alert: &str| *rules.iter().find(|r| r["alert"] == alert).unwrap();
    for (alert, threshold, duration, severity) in [
        ("TicketAuthzChangeLagHigh", "> 20", "15m", "warning"),
        ("TicketAuthzCaughtUpAgeHigh", "> 90", "3m", "critical"),
        ("TicketAuthzCaughtUpAgeCritical", "> 600", "2m", "critical"),
        ("TicketAuthzShedding", "> 0.5", "10m", "warning"),
        ("TicketAuthzErrorRatioHigh", "> 0.02", "5m", "critical"),
        ("TicketAuthzHeldBack", "== 1", "5m", "warning"),
        ("TicketAuthzNotServing", "== 0", "10m", "warning"),
    ] {
        let r = find(alert);
        assert!(
            r["expr"].as_str().unwrap().ends_with(threshold),
            "{alert}: {}",
            r["expr"]
        );
        assert_eq!(r["for"], duration, "{alert}");
        assert_eq!(r["labels"]["severity"], severity, "{alert}");
    }
    // The increase alerts fire at once, over their window.
    for (alert, window, severity) in [
        ("TicketAuthzCredentialReloadFailed", "[30m]", "warning"),
        ("TicketAuthzTaskFailed", "[10m]", "critical"),
    ] {
        let r = find(alert);
        let expr = r["expr"].as_str().unwrap();
        assert!(
            expr.contains(window) && expr.ends_with("> 0"),
            "{alert}: {expr}"
        );
        assert!(r.get("for").is_none(), "{alert}");
        assert_eq!(r["labels"]["severity"], severity, "{alert}");
    }
    assert!(
        find("TicketAuthzAbsent")["expr"]
            .as_str()
            .unwrap()
            .starts_with("absent(ticket_authz_serving{")
    );
    assert!(
        find("TicketAuthzErrorRatioHigh")["expr"]
            .as_str()
            .unwrap()
            .contains(",outcome!~\"allowed|denied|ok\"}")
    );

    // An alert turned off is left out; a selector replaces the default scope.
    let text = charts.template(
        &chart_dir(),
        &[
            "--set".into(),
            "metrics.prometheusRule.enabled=true".into(),
            "--set".into(),
            "metrics.prometheusRule.alerts.shedding.enabled=false".into(),
            "--set-string".into(),
            "metrics.prometheusRule.selector=job=\"helpdesk\"".into(),
        ],
    );
    let docs = parse_documents(&text);
    let rule = docs.iter().find(|d| d["kind"] == "PrometheusRule").unwrap();
    let rules = rules_of(rule);
    assert!(rules.iter().all(|r| r["alert"] != "TicketAuthzShedding"));
    assert_eq!(rules.len(), ALERTS.len() - 1);
    for r in rules {
        assert!(
            r["expr"].as_str().unwrap().contains("{job=\"helpdesk\""),
            "{}",
            r["expr"]
        );
    }

    // Alerts on metrics that are not served, or a sidecar without a scope, are refused.
    let chart = chart_dir();
    let error = charts.template_error(
        &chart,
        &[
            "--set",
            "metrics.enabled=false",
            "--set",
            "metrics.prometheusRule.enabled=true",
        ],
    );
    assert!(error.contains("need metrics.enabled"), "{error}");
    let error = charts.template_error(
        &chart,
        &[
            "--set",
            "mode=sidecar",
            "--set",
            "metrics.prometheusRule.enabled=true",
        ],
    );
    assert!(error.contains("metrics.prometheusRule.selector"), "{error}");
}

#[test]
fn promtool_accepts_the_rendered_rules() {
    let Some(charts) = charts("promtool_accepts_the_rendered_rules") else {
        return;
    };
    let Some(promtool) = required_tool(
        "promtool_accepts_the_rendered_rules",
        find_tool("PROMTOOL", "promtool", "target/ci-tools/bin/promtool"),
        "promtool (PATH, PROMTOOL, or target/ci-tools/bin, from the Debian package prometheus)",
    ) else {
        return;
    };
    // The values of ci/all-options-values.yaml, and the chart's defaults.
    let defaults = charts.template(
        &chart_dir(),
        &["--set".into(), "metrics.prometheusRule.enabled=true".into()],
    );
    let defaults = parse_documents(&defaults);
    let rendered = [
        (
            "all-options",
            charts.render("all-options-values").one("PrometheusRule"),
        ),
        (
            "defaults",
            defaults
                .iter()
                .find(|d| d["kind"] == "PrometheusRule")
                .unwrap(),
        ),
    ];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, rule) in rendered {
        // A rules file is the PrometheusRule's spec; JSON is YAML.
        let file = dir.join(format!("{name}.rules.yaml"));
        std::fs::write(&file, serde_json::to_string_pretty(&rule["spec"]).unwrap()).unwrap();
        let out = stdout_of(Command::new(&promtool).args(["check", "rules"]).arg(&file));
        assert!(
            out.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
            "{name}: {out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tool this test needs besides helm: `None` (said out loud) when it is
/// missing outside CI.
fn required_tool(test: &str, found: Option<PathBuf>, what: &str) -> Option<PathBuf> {
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} is required under CI=true (.ci/run installs it)"
        );
        eprintln!("skipped {test}: {what} not found (.ci/run installs it)");
    }
    found
}

/// The body of `GET /metrics` from a metrics listener.
fn metrics_text(addr: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: prometheus\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

/// The value of an unlabelled sample.
fn gauge(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn every_metric_in_the_dashboard_and_the_rules_is_served() {
    let Some(charts) = charts("every_metric_in_the_dashboard_and_the_rules_is_served") else {
        return;
    };
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for expr in dashboard_exprs(&dashboard_file()) {
        wanted.extend(metric_names(&expr));
    }
    let rule = charts.render("all-options-values").one("PrometheusRule");
    for r in rules_of(rule) {
        wanted.extend(metric_names(r["expr"].as_str().unwrap()));
    }
    assert!(wanted.len() > 5, "{wanted:?}");

    // The demo dataset in a SQLite database the service follows, so that
    // a change can be applied and the freshness histograms get samples.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scrape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("authz.db").display());
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let served = common::serve(
        &[
            "--dataset",
            "examples/demo.yaml",
            "--database-url",
            &url,
            "--replace",
            "--notify",
            "poll",
            "--poll-interval",
            "50ms",
            "--metrics-listen",
            &metrics,
        ],
        &[],
    );
    for (user, action) in [("paul", "view"), ("carla", "comment")] {
        let out = common::bin()
            .args(["check", "--server", &served.grpc, "--user", user])
            .args(["--action", action, "--ticket", "1004"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = gauge(&metrics_text(&metrics), "ticket_authz_revision").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'carla')")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let started = std::time::Instant::now();
    let body = loop {
        let body = metrics_text(&metrics);
        if gauge(&body, "ticket_authz_revision").unwrap() > before {
            break body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the change was not applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    served.terminate();
    let _ = std::fs::remove_dir_all(&dir);

    // Families by `# TYPE`, and the sample names actually present.
    let mut families: std::collections::BTreeMap<&str, &str> = Default::default();
    let mut samples: BTreeSet<&str> = BTreeSet::new();
    for line in body.lines() {
        if let Some(typed) = line.strip_prefix("# TYPE ") {
            let (name, kind) = typed.split_once(' ').unwrap();
            families.insert(name, kind.trim());
        } else if !line.starts_with('#') && !line.is_empty() {
            samples.insert(line.split(['{', ' ']).next().unwrap());
        }
    }
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| {
            // A histogram's samples carry suffixes its family lacks; so
            // may a counter's `_total`, as OpenMetrics writes its family.
            let suffixed = [
                ("_bucket", "histogram"),
                ("_sum", "histogram"),
                ("_count", "histogram"),
                ("_sum", "summary"),
                ("_count", "summary"),
                ("_total", "counter"),
            ];
            let family = suffixed
                .iter()
                .find_map(|(suffix, kind)| {
                    let base = name.strip_suffix(suffix)?;
                    (families.get(base) == Some(kind)).then_some(base)
                })
                .unwrap_or(name);
            !families.contains_key(family) || !samples.contains(name.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard or the rules use metrics that /metrics does not serve: {missing:?}\n{body}"
    );
}

#[test]
fn istio_wiring_renders_the_service_entry_policy_and_route_table() {
    let Some(charts) = charts("istio_wiring_renders_the_service_entry_policy_and_route_table")
    else {
        return;
    };
    let render = charts.render("istio-values");
    let entry = render.one("ServiceEntry");
    assert_eq!(entry["apiVersion"], "networking.istio.io/v1");
    assert_eq!(entry["metadata"]["name"], "helpdesk-authz-ext-authz");
    assert_eq!(entry["metadata"]["namespace"], serde_json::Value::Null);
    let spec = &entry["spec"];
    assert_eq!(spec["hosts"], serde_json::json!(["helpdesk-authz.local"]));
    assert_eq!(
        spec["endpoints"],
        serde_json::json!([{ "address": "127.0.0.1" }])
    );
    assert_eq!(
        spec["ports"],
        serde_json::json!([{ "name": "grpc", "number": 50051, "protocol": "GRPC" }])
    );
    assert_eq!(spec["resolution"], "STATIC");

    let policy = render.one("AuthorizationPolicy");
    assert_eq!(policy["apiVersion"], "security.istio.io/v1");
    let spec = &policy["spec"];
    assert_eq!(spec["action"], "CUSTOM");
    assert_eq!(spec["provider"]["name"], "ticket-authz");
    assert_eq!(
        spec["selector"]["matchLabels"],
        serde_json::json!({ "app.kubernetes.io/name": "helpdesk-api" })
    );
    assert_eq!(
        spec["rules"][0]["to"][0]["operation"]["paths"],
        serde_json::json!(["/api/v1/tickets/*"])
    );

    // The route table is a ConfigMap the real parser accepts.
    let map = render
        .of_kind("ConfigMap")
        .into_iter()
        .find(|m| m["metadata"]["name"] == "helpdesk-authz-ext-authz-routes")
        .expect("the routes ConfigMap");
    let text = map["data"]["routes.yaml"].as_str().unwrap();
    let table = ticket_authz::ext_authz::RouteTable::parse("routes.yaml", text).unwrap();
    assert_eq!(table.len(), 2);

    // Off by default, and no ServiceEntry for a Deployment (its Service is
    // the provider's host).
    for name in ["default", "all-options-values"] {
        let r = charts.render(name);
        assert!(r.of_kind("AuthorizationPolicy").is_empty(), "{name}");
        assert!(r.of_kind("ServiceEntry").is_empty(), "{name}");
    }
    let deployment = charts.template(
        &chart_dir(),
        &[
            "--set".to_owned(),
            "istio.enabled=true".to_owned(),
            "--set".to_owned(),
            "istio.selector.app=helpdesk".to_owned(),
        ],
    );
    let docs = parse_documents(&deployment);
    assert!(docs.iter().all(|d| d["kind"] != "ServiceEntry"));
    assert_eq!(
        docs.iter()
            .filter(|d| d["kind"] == "AuthorizationPolicy")
            .count(),
        1
    );
    let error = charts.template_error(&chart_dir(), &["--set", "istio.enabled=true"]);
    assert!(error.contains("istio.selector"), "{error}");
}

#[test]
fn ext_authz_values_reach_the_container() {
    let Some(charts) = charts("ext_authz_values_reach_the_container") else {
        return;
    };
    let (_, d) = charts.render("default").our_pods()[0];
    assert_eq!(
        env_value(d, "TICKET_AUTHZ_EXT_AUTHZ_USER_HEADER"),
        "x-user-id"
    );
    assert_eq!(env_value(d, "TICKET_AUTHZ_EXT_AUTHZ_UNMATCHED"), "deny");
    for unset in [
        "TICKET_AUTHZ_EXT_AUTHZ_JWT_CLAIM",
        "TICKET_AUTHZ_EXT_AUTHZ_ROUTES",
    ] {
        assert!(env(d, unset).is_none(), "{unset} set by default");
    }
    let render = charts.render("all-options-values");
    let (pod, c) = render.our_pods()[0];
    assert_eq!(
        env_value(c, "TICKET_AUTHZ_EXT_AUTHZ_USER_HEADER"),
        "x-remote-user"
    );
    assert_eq!(env_value(c, "TICKET_AUTHZ_EXT_AUTHZ_JWT_CLAIM"), "sub");
    assert_eq!(env_value(c, "TICKET_AUTHZ_EXT_AUTHZ_UNMATCHED"), "allow");
    let file = env_value(c, "TICKET_AUTHZ_EXT_AUTHZ_ROUTES");
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ticket-authz-ext-authz-routes")
        .expect("the routes mount");
    assert!(
        file.starts_with(mount["mountPath"].as_str().unwrap()),
        "{file}"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ticket-authz-ext-authz-routes")
        .expect("the routes volume");
    assert_eq!(volume["configMap"]["name"], "authz-ext-authz-routes");
    // The table is read at start, so a change must roll the pods.
    let deployment = render.one("Deployment");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert!(
        annotations["checksum/ext-authz-routes"].is_string(),
        "{annotations}"
    );
}

/// `helm template` of our chart with these `--set` values, parsed.
fn template_with(charts: &Charts, sets: &[&str]) -> Vec<Value> {
    let args: Vec<String> = sets
        .iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect();
    parse_documents(&charts.template(&chart_dir(), &args))
}

/// The least a relay needs: PostgreSQL from a Secret and a NATS server.
const RELAY_MINIMUM: [&str; 4] = [
    "relay.enabled=true",
    "database.type=postgres",
    "database.postgres.existingSecret=authz-database",
    "nats.url=nats://nats.messaging.svc:4222",
];

fn pod_labels(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["metadata"]["labels"]
}

fn volume_named<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
}

/// The Secret volume item behind a file setting: (Secret name, key), after
/// checking that the file's directory is a read-only mount of that volume.
fn secret_file<'a>(pod: &'a Value, container: &'a Value, var: &str) -> (&'a str, &'a str) {
    let path = Path::new(env_value(container, var));
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| path.parent() == Some(Path::new(m["mountPath"].as_str().unwrap())))
        .unwrap_or_else(|| panic!("{var}: nothing mounted at {}", path.display()));
    assert_eq!(mount["readOnly"], true, "{var}");
    assert!(
        mount.get("subPath").is_none(),
        "{var}: a subPath never sees rotations"
    );
    let volume = volume_named(pod, mount["name"].as_str().unwrap()).unwrap();
    let file = path.file_name().unwrap().to_str().unwrap();
    let item = volume["secret"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{var}: {volume} is not a Secret volume with items"))
        .iter()
        .find(|i| i["path"] == file)
        .unwrap_or_else(|| panic!("{var}: the Secret volume has no {file}"));
    (
        volume["secret"]["secretName"].as_str().unwrap(),
        item["key"].as_str().unwrap(),
    )
}

#[test]
fn relay_is_a_deployment_of_its_own_that_no_serving_object_selects() {
    let Some(charts) = charts("relay_is_a_deployment_of_its_own_that_no_serving_object_selects")
    else {
        return;
    };
    // Off unless asked for.
    for render in &charts.renders {
        let fleet = ["fleet-values", "example-fleet"].contains(&render.name.as_str());
        assert_eq!(
            render.relay_pods().len(),
            usize::from(fleet),
            "{}: relay pods",
            render.name
        );
    }

    // Two replicas by default, running `ticket-authz relay` from the same image.
    let docs = template_with(charts, &RELAY_MINIMUM);
    let relays: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == "Deployment" && d["metadata"]["name"] == "authz-test-ticket-authz-relay"
        })
        .collect();
    assert_eq!(relays.len(), 1);
    assert_eq!(relays[0]["spec"]["replicas"], 2);
    let containers: Vec<&Value> = all_containers(&relays[0]["spec"]["template"]["spec"]).collect();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["args"], serde_json::json!(["relay"]));
    assert!(
        containers[0].get("command").is_none(),
        "the image's entrypoint runs it"
    );
    let budget = docs
        .iter()
        .find(|d| {
            d["kind"] == "PodDisruptionBudget"
                && d["metadata"]["name"] == "authz-test-ticket-authz-relay"
        })
        .expect("the relay's budget");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);

    let render = charts.render("fleet-values");
    let serving = render.deployment_running("serve");
    let relay = render.deployment_running("relay");
    assert_eq!(relay["metadata"]["name"], "authz-test-ticket-authz-relay");
    assert_eq!(relay["spec"]["replicas"], 2);
    let relay_container = &relay["spec"]["template"]["spec"]["containers"][0];
    let serving_container = &serving["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(relay_container["image"], serving_container["image"]);
    // No gRPC port: the relay takes no calls.
    let ports: Vec<&str> = relay_container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["health", "metrics"]);
    assert_eq!(relay_container["resources"]["limits"]["memory"], "1536Mi");
    let relay_pod = &relay["spec"]["template"]["spec"];
    assert_eq!(relay_pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(relay_pod["tolerations"][0]["value"], "authz");
    assert_eq!(relay_pod["priorityClassName"], "high-priority");
    assert!(relay_pod["affinity"]["podAntiAffinity"].is_object());
    assert_eq!(relay_pod["terminationGracePeriodSeconds"], 40);
    assert_eq!(pod_labels(relay)["app.kubernetes.io/component"], "relay");

    // Each Deployment's selector picks its own pods only: overlapping
    // selectors would make the two fight over each other's pods.
    let relay_labels = pod_labels(relay);
    let serving_labels = pod_labels(serving);
    for (what, deployment, own, other) in [
        ("serving", serving, serving_labels, relay_labels),
        ("relay", relay, relay_labels, serving_labels),
    ] {
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        assert!(
            labels_match(selector, own),
            "{what}: selects none of its pods"
        );
        assert!(
            !labels_match(selector, other),
            "{what}: selects the other's pods"
        );
    }
    // The serving pods' Service, budget and policy never count a relay;
    // the relay's never count a serving pod.
    let serving_name = "authz-test-ticket-authz";
    let relay_name = "authz-test-ticket-authz-relay";
    for (kind, field) in [
        ("Service", &["spec", "selector"][..]),
        (
            "PodDisruptionBudget",
            &["spec", "selector", "matchLabels"][..],
        ),
        ("NetworkPolicy", &["spec", "podSelector", "matchLabels"][..]),
    ] {
        let at = |object: &Value| field.iter().fold(object.clone(), |v, k| v[*k].clone());
        let ours = at(render.named(kind, serving_name));
        assert!(labels_match(&ours, serving_labels), "serving {kind}");
        assert!(
            !labels_match(&ours, relay_labels),
            "serving {kind} selects relays"
        );
        let theirs = at(render.named(kind, relay_name));
        assert!(labels_match(&theirs, relay_labels), "relay {kind}");
        assert!(
            !labels_match(&theirs, serving_labels),
            "relay {kind} selects serving pods"
        );
    }
    let relay_budget = &render.named("PodDisruptionBudget", relay_name)["spec"];
    assert_eq!(relay_budget["maxUnavailable"], 1, "{relay_budget}");
    // The relay's metrics Service is headless, for Prometheus alone.
    let relay_service = render.named("Service", relay_name);
    assert_eq!(relay_service["spec"]["clusterIP"], "None");
    let service_ports: Vec<&str> = relay_service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(service_ports, ["metrics"]);

    // A ServiceMonitor each, each selecting its own Service only.
    let serving_service = render.named("Service", serving_name);
    for (monitor, own, other) in [
        (serving_name, serving_service, relay_service),
        (relay_name, relay_service, serving_service),
    ] {
        let selector = &render.named("ServiceMonitor", monitor)["spec"]["selector"]["matchLabels"];
        assert!(
            labels_match(selector, &own["metadata"]["labels"]),
            "{monitor}"
        );
        assert!(
            !labels_match(selector, &other["metadata"]["labels"]),
            "{monitor}"
        );
    }
    assert_eq!(
        render.named("ServiceMonitor", relay_name)["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    // metrics port -> Service targetPort -> the relay's metrics listener.
    let metrics = relay_container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == relay_service["spec"]["ports"][0]["targetPort"])
        .unwrap();
    assert_eq!(
        metrics["containerPort"],
        listen_port(env_value(relay_container, "TICKET_AUTHZ_METRICS_LISTEN"))
    );

    // In a sidecar's chart the relay is the subchart's own Deployment,
    // with the ServiceAccount it runs as.
    let example = charts.render("example-fleet");
    let relay = example.deployment_running("relay");
    let account = relay["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    assert_eq!(
        example.named("ServiceAccount", account)["automountServiceAccountToken"],
        false
    );
    assert_eq!(
        example.deployment_running("serve")["metadata"]["name"],
        "authz-test-helpdesk-api"
    );
}

#[test]
fn relay_probes_are_grpc_on_its_health_port() {
    let Some(charts) = charts("relay_probes_are_grpc_on_its_health_port") else {
        return;
    };
    let mut relays = 0;
    for render in &charts.renders {
        for (_, container) in render.relay_pods() {
            relays += 1;
            let name = &render.name;
            let health = listen_port(env_value(container, "TICKET_AUTHZ_HEALTH_LISTEN"));
            let declared = container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "health")
                .unwrap();
            assert_eq!(declared["containerPort"], health, "{name}");
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let p = &container[probe];
                assert_eq!(p["grpc"]["port"], health, "{name}: {probe}");
                assert_eq!(p["grpc"]["service"], "", "{name}: {probe}");
                for other in ["httpGet", "tcpSocket", "exec"] {
                    assert!(p.get(other).is_none(), "{name}: {probe} has {other}");
                }
            }
            // The relay's first load reads the whole database too.
            let startup = &container["startupProbe"];
            let budget = startup["periodSeconds"].as_u64().unwrap()
                * startup["failureThreshold"].as_u64().unwrap();
            assert!(budget >= 300, "{name}: startup budget {budget} s");
        }
    }
    assert_eq!(relays, 2, "fleet-values and example-fleet");
}

#[test]
fn relay_env_carries_the_database_secret_and_the_nats_settings() {
    let Some(charts) = charts("relay_env_carries_the_database_secret_and_the_nats_settings") else {
        return;
    };
    let render = charts.render("fleet-values");
    let (pod, c) = render.relay_pods()[0];
    let url = env(c, "TICKET_AUTHZ_DATABASE_URL").unwrap();
    assert!(url.get("value").is_none(), "{url}");
    assert_eq!(
        url["valueFrom"]["secretKeyRef"],
        serde_json::json!({ "name": "authz-database", "key": "url" })
    );
    for (var, value) in [
        ("TICKET_AUTHZ_DATABASE_MAX_CONNECTIONS", "2"),
        ("TICKET_AUTHZ_NOTIFY", "listen"),
        ("TICKET_AUTHZ_POLL_INTERVAL", "2s"),
        (
            "TICKET_AUTHZ_NATS_URL",
            "tls://nats-0.nats.messaging.svc:4222,tls://nats-1.nats.messaging.svc:4222",
        ),
        ("TICKET_AUTHZ_STREAM", "HELPDESK_AUTHZ"),
        ("TICKET_AUTHZ_SUBJECT", "helpdesk.authz.changes"),
        ("TICKET_AUTHZ_BUCKET", "helpdesk_authz"),
        ("TICKET_AUTHZ_SNAPSHOT_EVERY", "5000"),
        ("TICKET_AUTHZ_STREAM_MAX_AGE", "48h"),
        ("TICKET_AUTHZ_LEASE", "15s"),
        ("TICKET_AUTHZ_HEALTH_LISTEN", "0.0.0.0:8081"),
        ("TICKET_AUTHZ_METRICS_LISTEN", "0.0.0.0:9090"),
        ("TICKET_AUTHZ_SHUTDOWN_GRACE", "15s"),
        ("TICKET_AUTHZ_LOG_FORMAT", "json"),
        ("TICKET_AUTHZ_LOG_FILTER", "info,ticket_authz=debug"),
        ("RUST_BACKTRACE", "1"),
    ] {
        assert_eq!(env_value(c, var), value, "{var}");
    }
    // The .creds file and the CA come from their Secrets' keys.
    assert_eq!(
        secret_file(pod, c, "TICKET_AUTHZ_NATS_CREDS"),
        ("authz-nats-user", "authz.creds")
    );
    assert_eq!(
        secret_file(pod, c, "TICKET_AUTHZ_NATS_TLS_CA"),
        ("nats-internal-ca", "ca.crt")
    );
    assert!(env(c, "TICKET_AUTHZ_NATS_TOKEN_FILE").is_none());
    // A relay serves no calls and holds no snapshot copy.
    for unset in ["TICKET_AUTHZ_LISTEN", "TICKET_AUTHZ_SNAPSHOT_DIR"] {
        assert!(env(c, unset).is_none(), "{unset} on the relay");
    }
    let names: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "{names:?}"
    );

    // The defaults; no credential files without their Secrets.
    let docs = template_with(charts, &RELAY_MINIMUM);
    let relay = docs
        .iter()
        .find(|d| {
            d["kind"] == "Deployment" && d["metadata"]["name"] == "authz-test-ticket-authz-relay"
        })
        .unwrap();
    let c = &relay["spec"]["template"]["spec"]["containers"][0];
    for (var, value) in [
        ("TICKET_AUTHZ_DATABASE_MAX_CONNECTIONS", "4"),
        ("TICKET_AUTHZ_NATS_URL", "nats://nats.messaging.svc:4222"),
        ("TICKET_AUTHZ_STREAM", "TICKET_AUTHZ"),
        ("TICKET_AUTHZ_SUBJECT", "ticket_authz.changes"),
        ("TICKET_AUTHZ_BUCKET", "ticket_authz"),
        ("TICKET_AUTHZ_SNAPSHOT_EVERY", "10m"),
        ("TICKET_AUTHZ_STREAM_MAX_AGE", "24h"),
        ("TICKET_AUTHZ_LEASE", "10s"),
        ("TICKET_AUTHZ_NOTIFY", "listen"),
        ("TICKET_AUTHZ_SHUTDOWN_GRACE", "10s"),
    ] {
        assert_eq!(env_value(c, var), value, "{var}");
    }
    assert_eq!(
        env(c, "TICKET_AUTHZ_DATABASE_URL").unwrap()["valueFrom"]["secretKeyRef"]["name"],
        "authz-database"
    );
    for unset in [
        "TICKET_AUTHZ_NATS_CREDS",
        "TICKET_AUTHZ_NATS_TOKEN_FILE",
        "TICKET_AUTHZ_NATS_TLS_CA",
    ] {
        assert!(env(c, unset).is_none(), "{unset} without a Secret");
    }
    // A revision count given as a number reaches the flag as digits, also
    // from a values file, where Helm holds numbers as floats.
    let fleet = path_arg(&chart_dir().join("ci/fleet-values.yaml"));
    for (how, set, every) in [
        ("--set", "relay.snapshotEvery=1000", "1000"),
        ("--set-json", "relay.snapshotEvery=10000000", "10000000"),
    ] {
        let args = ["-f", fleet.as_str(), how, set].map(str::to_owned);
        let docs = parse_documents(&charts.template(&chart_dir(), &args));
        let relay = docs
            .iter()
            .find(|d| {
                d["kind"] == "Deployment"
                    && d["metadata"]["name"] == "authz-test-ticket-authz-relay"
            })
            .unwrap();
        let c = &relay["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(env_value(c, "TICKET_AUTHZ_SNAPSHOT_EVERY"), every, "{how}");
    }
}

#[test]
fn nats_source_serving_pods_read_nats_and_never_the_database() {
    let Some(charts) = charts("nats_source_serving_pods_read_nats_and_never_the_database") else {
        return;
    };
    // This chart's own Deployment, with a .creds file and a CA.
    let render = charts.render("fleet-values");
    let serving = render.deployment_running("serve");
    assert_eq!(serving["spec"]["replicas"], 3);
    assert_eq!(serving["spec"]["strategy"]["type"], "RollingUpdate");
    let (pod, c) = render.our_pods()[0];
    for (var, value) in [
        (
            "TICKET_AUTHZ_NATS_URL",
            "tls://nats-0.nats.messaging.svc:4222,tls://nats-1.nats.messaging.svc:4222",
        ),
        ("TICKET_AUTHZ_STREAM", "HELPDESK_AUTHZ"),
        ("TICKET_AUTHZ_SUBJECT", "helpdesk.authz.changes"),
        ("TICKET_AUTHZ_BUCKET", "helpdesk_authz"),
        (
            "TICKET_AUTHZ_SNAPSHOT_DIR",
            "/var/lib/ticket-authz/snapshot",
        ),
        ("TICKET_AUTHZ_SNAPSHOT_INTERVAL", "2m"),
    ] {
        assert_eq!(env_value(c, var), value, "{var}");
    }
    assert_eq!(
        secret_file(pod, c, "TICKET_AUTHZ_NATS_CREDS"),
        ("authz-nats-user", "authz.creds")
    );
    assert_eq!(
        secret_file(pod, c, "TICKET_AUTHZ_NATS_TLS_CA"),
        ("nats-internal-ca", "ca.crt")
    );
    // The warm-start copy is on an emptyDir of its own.
    let snapshot = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/ticket-authz/snapshot")
        .expect("the snapshot mount");
    let volume = volume_named(pod, snapshot["name"].as_str().unwrap()).unwrap();
    assert!(volume.get("emptyDir").is_some(), "{volume}");

    // The sidecar of an application chart, with a token.
    let example = charts.render("example-fleet");
    let (app_pod, sidecar) = example.our_pods()[0];
    assert_eq!(
        env_value(sidecar, "TICKET_AUTHZ_NATS_URL"),
        "nats://nats.messaging.svc:4222"
    );
    assert_eq!(
        secret_file(app_pod, sidecar, "TICKET_AUTHZ_NATS_TOKEN_FILE"),
        ("helpdesk-authz-nats", "token")
    );
    assert!(env(sidecar, "TICKET_AUTHZ_NATS_CREDS").is_none());
    let (_, relay) = example.relay_pods()[0];
    assert_eq!(
        env_value(relay, "TICKET_AUTHZ_NATS_TOKEN_FILE"),
        env_value(sidecar, "TICKET_AUTHZ_NATS_TOKEN_FILE")
    );

    // Neither reaches for the database: no URL, no follow settings, no file.
    for (name, pod, c) in [
        ("fleet-values", pod, c),
        ("example-fleet", app_pod, sidecar),
    ] {
        for unset in [
            "TICKET_AUTHZ_DATABASE_URL",
            "TICKET_AUTHZ_DATABASE_MAX_CONNECTIONS",
            "TICKET_AUTHZ_NOTIFY",
            "TICKET_AUTHZ_POLL_INTERVAL",
            "TICKET_AUTHZ_TICKET_CACHE",
        ] {
            assert!(env(c, unset).is_none(), "{name}: {unset} with source nats");
        }
        assert!(volume_named(pod, "ticket-authz-data").is_none(), "{name}");
    }
    // The default SQLite claim is not made for pods that do not use it.
    let docs = template_with(
        charts,
        &[
            "source=nats",
            "nats.url=nats://nats:4222",
            "database.sqlite.storage=persistentVolumeClaim",
        ],
    );
    assert!(docs.iter().all(|d| d["kind"] != "PersistentVolumeClaim"));
    let serving = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(serving["spec"]["strategy"]["type"], "RollingUpdate");

    // Restricted egress lets both reach NATS on its port, and only that peer.
    for policy in render.of_kind("NetworkPolicy") {
        let name = &policy["metadata"]["name"];
        let egress = policy["spec"]["egress"].as_array().unwrap();
        let nats = egress
            .iter()
            .find(|r| r["ports"] == serde_json::json!([{ "port": 4222, "protocol": "TCP" }]))
            .unwrap_or_else(|| panic!("{name}: no egress rule for NATS"));
        assert_eq!(
            nats["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "messaging",
            "{name}"
        );
        // The database rule is kept for the relay (and harmless for the others).
        assert!(
            egress.iter().any(|r| r["ports"][0]["port"] == 5432),
            "{name}"
        );
    }
    assert_eq!(render.of_kind("NetworkPolicy").len(), 2);
    // With source database, no NATS rule is added.
    let policy = charts.render("all-options-values").one("NetworkPolicy");
    assert!(
        policy["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ports"][0]["port"] != 4222),
        "{policy}"
    );
}

#[test]
fn nats_credentials_are_mounted_secrets_never_values() {
    let Some(charts) = charts("nats_credentials_are_mounted_secrets_never_values") else {
        return;
    };
    let fleet = path_arg(&chart_dir().join("ci/fleet-values.yaml"));
    let sentinels = [
        ("nats.credentials.existingSecret", "sentinel-nats-user"),
        ("nats.tls.caSecret", "sentinel-nats-ca"),
        (
            "database.postgres.existingSecret",
            "sentinel-relay-database",
        ),
    ];
    let mut args = vec!["-f".to_owned(), fleet];
    for (key, name) in sentinels {
        args.extend(["--set-string".to_owned(), format!("{key}={name}")]);
    }
    let docs = parse_documents(&charts.template(&chart_dir(), &args));
    for (key, sentinel) in sentinels {
        let mut places = Vec::new();
        for doc in &docs {
            find_string(doc, sentinel, String::new(), &mut places);
        }
        assert!(!places.is_empty(), "{key}: {sentinel} is not referenced");
        for place in &places {
            assert!(
                place.ends_with("/secretKeyRef/name") || place.ends_with("/secret/secretName"),
                "{key}: {sentinel} appears at {place}"
            );
        }
    }
    // No value takes a password, and the URL refuses one.
    let error = charts.template_error(&chart_dir(), &["--set", "nats.password=hunter2"]);
    assert!(error.contains("additional properties"), "{error}");
    let error = charts.template_error(
        &chart_dir(),
        &[
            "--set",
            "source=nats",
            "--set",
            "nats.url=nats://authz:hunter2@nats:4222",
        ],
    );
    assert!(error.contains("/nats/url"), "{error}");
}

#[test]
fn fleet_refuses_combinations_that_cannot_work() {
    let Some(charts) = charts("fleet_refuses_combinations_that_cannot_work") else {
        return;
    };
    let chart = chart_dir();
    let nats = "nats.url=nats://nats:4222";
    for (sets, message) in [
        (
            &["relay.enabled=true", nats][..],
            "relay.enabled needs database.type=postgres",
        ),
        (
            &["source=nats", nats, "server.ticketCache=256MiB"][..],
            "server.ticketCache reads tickets from the database, so it needs source=database",
        ),
        (
            &["source=nats"][..],
            "source=nats and relay.enabled need nats.url",
        ),
        (
            &RELAY_MINIMUM[..3],
            "source=nats and relay.enabled need nats.url",
        ),
        (
            &["source=nats", nats, "server.databaseMaxConnections=4"][..],
            "server.databaseMaxConnections needs source=database",
        ),
        (
            &[
                "source=nats",
                nats,
                "nats.credentials.existingSecret=nats-user",
                "nats.credentials.tokenKey=token",
            ][..],
            "exactly one of nats.credentials.credsKey",
        ),
        (
            &[
                &RELAY_MINIMUM[..],
                &["relay.terminationGracePeriodSeconds=10"],
            ]
            .concat()[..],
            "relay.terminationGracePeriodSeconds (10) must exceed relay.shutdownGraceSeconds (10)",
        ),
        (
            &["server.snapshotDir=/tmp"][..],
            "server.snapshotDir must be a directory of its own",
        ),
        (
            &["server.snapshotDir=/data"][..],
            "server.snapshotDir must be a directory of its own",
        ),
    ] {
        let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", *s]).collect();
        let error = charts.template_error(&chart, &args);
        assert!(error.contains(message), "{sets:?}: {error}");
    }
    // The fleet's own sidecar, without a URL, is refused from the
    // application's chart too.
    let error = charts.template_error(&charts.example, &["--set", "ticket-authz.source=nats"]);
    assert!(error.contains("need nats.url"), "{error}");
    // A bad source is the schema's to refuse.
    let error = charts.template_error(&chart, &["--set", "source=kafka"]);
    assert!(error.contains("/source"), "{error}");
}

#[test]
fn example_depends_on_the_charts_own_version() {
    // `helm dependency build examples/helm-sidecar`, as its Chart.yaml
    // says to run, finds no chart unless the versions agree.
    let version = |path: &str| -> Vec<String> {
        let text = std::fs::read_to_string(repo().join(path)).unwrap();
        let chart: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let mut found = vec![chart["version"].as_str().unwrap_or_default().to_owned()];
        if let Some(deps) = chart["dependencies"].as_sequence() {
            found.extend(
                deps.iter()
                    .filter(|d| d["name"].as_str() == Some("ticket-authz"))
                    .map(|d| d["version"].as_str().unwrap().to_owned()),
            );
        }
        found
    };
    let ours = version("helm/ticket-authz/Chart.yaml")[0].clone();
    let example = version("examples/helm-sidecar/Chart.yaml");
    assert_eq!(example[1..], [ours], "examples/helm-sidecar/Chart.yaml");
}
