//! The Kubernetes manifests (`deploy/kubernetes/`): each overlay renders with `kubectl
//! kustomize`, validates against the Kubernetes schemas (`kubernetes-validate --strict`), and
//! agrees with the binary: the configuration files in its ConfigMaps parse with the binary's
//! own configuration types (unknown keys are errors there), the containers' commands are
//! commands of the binary, and — running `aiops gateway` and `aiops run` with those very
//! files, pointed at local services — the probes' paths answer on the ports the probes name,
//! and the metrics the autoscalers read are on the pages Prometheus scrapes.

#![cfg(all(feature = "kafka", feature = "redis"))]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_norway::Value;

use support::{Broker, Redis, Service, serial};

const OVERLAYS: [&str; 2] = ["dev", "production"];
/// The oldest and newest Kubernetes versions the manifests are checked against.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.33.0"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The objects an overlay renders to.
fn render(overlay: &str) -> (String, Vec<Value>) {
    let output = support::kubectl()
        .arg("kustomize")
        .arg(root().join("deploy/kubernetes/overlays").join(overlay))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    // kubectl separates the objects with `---` lines.
    let objects = text
        .split("\n---\n")
        .map(|document| serde_norway::from_str::<Value>(document).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    (text, objects)
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value:?} is not a string"))
}

/// The ConfigMap whose name starts with `prefix` (kustomize appends a hash), its file `file`.
fn config_file(objects: &[Value], prefix: &str, file: &str) -> String {
    let map = kind(objects, "ConfigMap")
        .into_iter()
        .find(|m| text(&m["metadata"]["name"]).starts_with(prefix))
        .unwrap_or_else(|| panic!("no ConfigMap {prefix}-*"));
    text(&map["data"][file]).to_owned()
}

/// The port number of `address` (`0.0.0.0:9100`).
fn port_of(address: &str) -> u64 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

fn wait_for(address: &str, path: &str, timeout: Duration) -> (u16, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(answer) = support::http_get(address, path)
            && (answer.0 == 200 || Instant::now() > deadline)
        {
            return answer;
        }
        assert!(Instant::now() < deadline, "{address}{path} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_overlay_renders_validates_and_matches_the_binary() {
    if !support::available(&[Service::Kubernetes, Service::Tansu, Service::Redis]) {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    for overlay in OVERLAYS {
        let (rendered, objects) = render(overlay);

        // The Kubernetes schemas, strictly (unknown fields are errors). The ServiceMonitor is
        // the Prometheus Operator's, whose schema kubernetes-validate does not have: it is
        // checked by hand below.
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &rendered).unwrap();
        for version in KUBERNETES_VERSIONS {
            let output = support::kubernetes_validate()
                .args(["--strict", "--quiet", "-k", version])
                .arg(&file)
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "{overlay} against Kubernetes {version}: {said}"
            );
            for line in said.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.contains("Couldn't find schema for kind ServiceMonitor"),
                    "{overlay} against Kubernetes {version}: {line}"
                );
            }
        }

        // Every object lives in the overlay's namespace, which the overlay creates.
        let namespace = text(&kind(&objects, "Namespace")[0]["metadata"]["name"]).to_owned();
        for object in objects.iter().filter(|o| o["kind"] != "Namespace") {
            assert_eq!(object["metadata"]["namespace"], namespace.as_str());
        }

        // The configuration files parse with the binary's own types (unknown keys are errors).
        let pipeline_toml = config_file(&objects, "aiops-pipeline-config", "aiops.toml");
        let pipeline: aiops_pipeline::PipelineConfig =
            toml::from_str(&pipeline_toml).unwrap_or_else(|e| panic!("{overlay} aiops.toml: {e}"));
        let gateway_toml = config_file(&objects, "aiops-gateway-config", "gateway.toml");
        let gateway: aiops_gateway::config::GatewayConfig =
            toml::from_str(&gateway_toml).unwrap_or_else(|e| panic!("{overlay} gateway.toml: {e}"));
        let admin = pipeline
            .pipeline
            .metrics_listen
            .as_ref()
            .expect("the pipeline's admin endpoint is on: its probes and metrics need it")
            .to_string();

        // Each Deployment: its command is one of the binary's, its config file is the mounted
        // ConfigMap's, its named ports are the ones the configuration listens on, and its
        // probes use those ports.
        let expected_ports: BTreeMap<&str, BTreeMap<&str, u64>> = [
            ("aiops-pipeline", [("admin", port_of(&admin))].into()),
            (
                "aiops-gateway",
                [
                    ("client", u64::from(gateway.listen.port())),
                    (
                        "admin",
                        u64::from(gateway.admin_listen.expect("admin_listen").port()),
                    ),
                ]
                .into(),
            ),
        ]
        .into();
        for deployment in kind(&objects, "Deployment") {
            let name = text(&deployment["metadata"]["name"]);
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let args: Vec<&str> = container["args"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            let help = support::aiops().args([args[0], "--help"]).output().unwrap();
            assert!(help.status.success(), "{name}: `aiops {}`", args[0]);
            // Every AIOPS_ variable the container sets is one the command reads (its help
            // lists the environment overrides).
            let help_text = String::from_utf8_lossy(&help.stdout);
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let variable = text(&variable["name"]);
                assert!(
                    !variable.starts_with("AIOPS_") || help_text.contains(variable),
                    "{name}: `aiops {}` does not read {variable}",
                    args[0]
                );
            }
            let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
            let mount = container["volumeMounts"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|m| config_path.starts_with(text(&m["mountPath"])))
                .unwrap_or_else(|| panic!("{name}: nothing mounted at {config_path}"));
            let volume = deployment["spec"]["template"]["spec"]["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap();
            let map = text(&volume["configMap"]["name"]);
            let file = config_path.rsplit('/').next().unwrap();
            assert!(
                objects.iter().any(|o| o["kind"] == "ConfigMap"
                    && o["metadata"]["name"] == map
                    && !o["data"][file].is_null()),
                "{name}: {config_path} is not in ConfigMap {map}"
            );
            let ports: BTreeMap<&str, u64> = container["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|p| (text(&p["name"]), p["containerPort"].as_u64().unwrap()))
                .collect();
            assert_eq!(
                &ports, &expected_ports[name],
                "{name}: container ports against the configuration"
            );
            for probe in ["livenessProbe", "readinessProbe"] {
                let port = text(&container[probe]["httpGet"]["port"]);
                assert!(ports.contains_key(port), "{name} {probe} on {port}");
            }
        }

        // Services, HPAs, PDBs and the ServiceMonitor point at what exists.
        for service in kind(&objects, "Service") {
            let selected = &service["spec"]["selector"]["app.kubernetes.io/name"];
            let deployment = named(&objects, "Deployment", text(selected));
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            for port in service["spec"]["ports"].as_sequence().unwrap() {
                let target = text(&port["targetPort"]);
                assert!(
                    container["ports"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == target),
                    "Service {:?} targets port {target}",
                    service["metadata"]["name"]
                );
            }
        }
        for autoscaler in kind(&objects, "HorizontalPodAutoscaler") {
            named(
                &objects,
                "Deployment",
                text(&autoscaler["spec"]["scaleTargetRef"]["name"]),
            );
        }
        for budget in kind(&objects, "PodDisruptionBudget") {
            let selected = &budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"];
            named(&objects, "Deployment", text(selected));
        }
        let monitor = &kind(&objects, "ServiceMonitor")[0];
        assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
        let scraped = text(&monitor["spec"]["endpoints"][0]["port"]);
        let monitored: BTreeSet<&str> =
            monitor["spec"]["selector"]["matchExpressions"][0]["values"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(text)
                .collect();
        for service in kind(&objects, "Service") {
            let name = text(&service["spec"]["selector"]["app.kubernetes.io/name"]);
            assert!(monitored.contains(name), "{name} is not scraped");
            assert!(
                service["spec"]["ports"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == scraped),
                "{name}'s Service has no port {scraped}"
            );
        }
    }

    // The production overlay's files, run: the probes' paths answer on the admin ports, and
    // the metrics the autoscalers read are on the pages Prometheus scrapes. Only the
    // addresses of the dependencies (and the listening ports, to run beside other tests)
    // are changed; ScyllaDB is not run here, so the pipeline keeps its models on disk.
    let (_, objects) = render("production");
    let (broker, redis) = (Broker::start(), Redis::start());
    broker.ensure_topic("metrics", 2);
    let pipeline_admin = format!("127.0.0.1:{}", support::free_port());
    let pipeline_toml = config_file(&objects, "aiops-pipeline-config", "aiops.toml")
        .replace("0.0.0.0:9100", &pipeline_admin)
        .replace("kafka-bootstrap.kafka:9092", &broker.address())
        .replace("redis://redis.redis:6379", &redis.url(0))
        .replace(
            "scylla = \"scylla-client.scylla:9042\"",
            &format!("dir = \"{}\"", dir.path().join("models").display()),
        );
    let pipeline_file = dir.path().join("aiops.toml");
    std::fs::write(&pipeline_file, pipeline_toml).unwrap();
    let pipeline = support::Pipeline::start(&pipeline_file, &[]);
    // Its checkpoints go to Redis, as the manifests' configuration says (no volume to write).
    assert!(pipeline_toml_says_redis(&pipeline_file));

    let (client, gateway_admin) = (support::free_port(), support::free_port());
    let key = dir.path().join("key");
    std::fs::write(&key, "a-signing-key-of-at-least-32-bytes-for-the-test").unwrap();
    let gateway_toml = config_file(&objects, "aiops-gateway-config", "gateway.toml")
        .replace("0.0.0.0:8080", &format!("127.0.0.1:{client}"))
        .replace("0.0.0.0:9095", &format!("127.0.0.1:{gateway_admin}"))
        .replace("redis://redis.redis:6379", &redis.url(0))
        .replace(
            "/run/secrets/aiops-gateway-key/key",
            &key.display().to_string(),
        );
    let gateway_file = dir.path().join("gateway.toml");
    std::fs::write(&gateway_file, gateway_toml).unwrap();
    let mut gateway = support::aiops()
        .args(["gateway", "--config"])
        .arg(&gateway_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let admins = [
        ("aiops-pipeline", pipeline_admin.clone()),
        ("aiops-gateway", format!("127.0.0.1:{gateway_admin}")),
    ];
    for (name, address) in &admins {
        let container =
            &named(&objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0];
        for probe in ["livenessProbe", "readinessProbe"] {
            let path = text(&container[probe]["httpGet"]["path"]);
            let (status, body) = wait_for(address, path, Duration::from_secs(60));
            assert_eq!(status, 200, "{name} {probe} {path}: {body}");
        }
    }
    // What the autoscalers scale on is exported by the process they scale.
    for autoscaler in kind(&objects, "HorizontalPodAutoscaler") {
        let target = text(&autoscaler["spec"]["scaleTargetRef"]["name"]);
        let address = &admins.iter().find(|(n, _)| *n == target).unwrap().1;
        let (_, page) = wait_for(address, "/metrics", Duration::from_secs(10));
        for metric in autoscaler["spec"]["metrics"].as_sequence().unwrap() {
            let name = match text(&metric["type"]) {
                "Pods" => text(&metric["pods"]["metric"]["name"]),
                "External" => text(&metric["external"]["metric"]["name"]),
                _ => continue,
            };
            assert!(
                page.contains(&format!("# TYPE {name} gauge")),
                "{target} does not export {name}: {page}"
            );
        }
    }
    support::kill_child(&mut gateway, "-TERM");
    drop(pipeline);
}

fn pipeline_toml_says_redis(path: &std::path::Path) -> bool {
    let config: aiops_pipeline::PipelineConfig =
        toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.checkpoint.store == aiops_pipeline::config::CheckpointStore::Redis
}
