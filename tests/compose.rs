//! The production topology of `docker-compose.yml`, checked without a Docker engine (these
//! machines have none): the services are there with images or a build, the ports are published,
//! the stateful services have health checks the others wait for, and the configuration files the
//! services mount exist and are valid aiops configurations.

use std::collections::BTreeSet;
use std::path::Path;

use aiops_pipeline::metrics::Stage;
use serde_norway::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mut value: Value = serde_norway::from_str(&text).unwrap();
    // Resolve the `<<: *pipeline` merges as Compose does.
    value.apply_merge().unwrap();
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_topology_has_every_service_with_an_image_or_a_build() {
    let compose = compose();
    let names: BTreeSet<String> = compose["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "kafka",
        "redis",
        "scylla",
        "pipeline-1",
        "pipeline-2",
        "gateway-1",
        "gateway-2",
        "prometheus",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(names, expected);
    for name in &names {
        let s = service(&compose, name);
        assert!(
            s.get("image").is_some() || s.get("build").is_some(),
            "{name} has neither image nor build"
        );
    }
    // Kafka in KRaft mode: broker and controller in one node, no ZooKeeper.
    let kafka = &service(&compose, "kafka")["environment"];
    assert_eq!(
        kafka["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller")
    );
    assert!(kafka.get("KAFKA_ZOOKEEPER_CONNECT").is_none());
    assert!(
        service(&compose, "kafka")["image"]
            .as_str()
            .unwrap()
            .starts_with("apache/kafka")
    );
}

#[test]
fn ports_health_checks_and_dependencies_hold_together() {
    let compose = compose();
    let published = |name: &str| strings(&service(&compose, name)["ports"]);
    assert_eq!(published("kafka"), ["29092:29092"]);
    assert_eq!(published("redis"), ["6379:6379"]);
    assert_eq!(published("scylla"), ["9042:9042"]);
    assert_eq!(published("gateway-1"), ["8081:8080"]);
    assert_eq!(published("gateway-2"), ["8082:8080"]);
    assert_eq!(published("prometheus"), ["9090:9090"]);
    // No host port is published twice.
    let mut hosts = BTreeSet::new();
    for name in compose["services"].as_mapping().unwrap().keys() {
        for port in published(name.as_str().unwrap()) {
            let host = port.split(':').next().unwrap().to_owned();
            assert!(hosts.insert(host), "host port of {port} published twice");
        }
    }
    for name in ["kafka", "redis", "scylla", "gateway-1", "gateway-2"] {
        let test = strings(&service(&compose, name)["healthcheck"]["test"]);
        assert!(!test.is_empty(), "{name} has no health check");
    }
    // Both pipelines wait for healthy Kafka, Redis and Scylla; the gateways for Redis.
    for pipeline in ["pipeline-1", "pipeline-2"] {
        let depends = &service(&compose, pipeline)["depends_on"];
        for needed in ["kafka", "redis", "scylla"] {
            assert_eq!(
                depends[needed]["condition"].as_str(),
                Some("service_healthy"),
                "{pipeline} on {needed}"
            );
        }
        let command = strings(&service(&compose, pipeline)["command"]);
        assert_eq!(command[0], "run");
    }
    for gateway in ["gateway-1", "gateway-2"] {
        let s = service(&compose, gateway);
        assert_eq!(
            s["depends_on"]["redis"]["condition"].as_str(),
            Some("service_healthy")
        );
        assert_eq!(strings(&s["command"])[0], "gateway");
        assert!(
            strings(&s["healthcheck"]["test"])
                .iter()
                .any(|t| t.contains("/readyz"))
        );
    }
    // Every dependency names a service, and nothing depends on itself.
    let names: BTreeSet<&str> = compose["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for (name, s) in compose["services"].as_mapping().unwrap() {
        if let Some(depends) = s.get("depends_on").and_then(Value::as_mapping) {
            for dependency in depends.keys() {
                let dependency = dependency.as_str().unwrap();
                assert!(
                    names.contains(dependency),
                    "{name:?} depends on unknown {dependency}"
                );
                assert_ne!(Some(dependency), name.as_str());
            }
        }
    }
    // The pipelines share one consumer group, so a partition moves between them on every
    // rebalance or failure, and its next owner must find the checkpoint the last one wrote:
    // both mount the same state volume at the configured checkpoint directory. (Regression:
    // each had its own volume, so a moved partition restarted with empty detector state.)
    let pipeline =
        aiops_pipeline::PipelineConfig::from_file(&root().join("deploy/aiops.toml")).unwrap();
    let dir = pipeline.checkpoint.dir.display().to_string();
    let state_mount = |name: &str| {
        strings(&service(&compose, name)["volumes"])
            .into_iter()
            .find(|v| v.ends_with(&format!(":{dir}")))
            .unwrap_or_else(|| panic!("{name} mounts nothing at the checkpoint directory {dir}"))
    };
    assert_eq!(state_mount("pipeline-1"), state_mount("pipeline-2"));
    assert!(
        !state_mount("pipeline-1").starts_with("./"),
        "a named volume"
    );
}

#[test]
fn the_mounted_files_exist_and_are_valid_configurations() {
    let compose = compose();
    for (name, s) in compose["services"].as_mapping().unwrap() {
        for volume in strings(&s["volumes"]) {
            if let Some(path) = volume.strip_prefix("./") {
                let file = path.split(':').next().unwrap();
                assert!(root().join(file).exists(), "{name:?} mounts missing {file}");
            }
        }
    }
    let pipeline =
        aiops_pipeline::PipelineConfig::from_file(&root().join("deploy/aiops.toml")).unwrap();
    pipeline.validate_for_run().unwrap();
    assert_eq!(pipeline.kafka.as_ref().unwrap().brokers, "kafka:9092");
    assert_eq!(pipeline.models.scylla.as_deref(), Some("scylla:9042"));
    assert!(pipeline.drift.enabled);
    let gateway =
        aiops_gateway::config::GatewayConfig::from_file(&root().join("deploy/gateway.toml"));
    assert!(
        gateway.is_ok()
            || gateway
                .as_ref()
                .is_err_and(|e| e.to_string().contains("aiops-gateway-key")),
        "{gateway:?}"
    );
    let prometheus: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("deploy/prometheus.yml")).unwrap(),
    )
    .unwrap();
    let targets =
        |job: usize| strings(&prometheus["scrape_configs"][job]["static_configs"][0]["targets"]);
    assert_eq!(targets(0), ["gateway-1:9095", "gateway-2:9095"]);
    assert_eq!(targets(1), ["pipeline-1:9100", "pipeline-2:9100"]);
    assert_eq!(
        pipeline.pipeline.metrics_listen.map(|a| a.port()),
        Some(9100),
        "the pipelines serve what Prometheus scrapes"
    );
    // The image builds the binary with the ScyllaDB store the topology uses.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("--features scylla"));
    assert!(dockerfile.contains("ENTRYPOINT [\"aiops\"]"));
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_the_services_serve() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    // What the pipeline and the gateway serve.
    // A pipeline that has seen one of everything, so every family has samples.
    let counters = aiops_pipeline::Counters::default();
    for stage in [Stage::Parse, Stage::Score, Stage::Drift, Stage::Sink] {
        counters.time_stage(stage, Some(0), std::time::Duration::from_micros(30));
    }
    counters.checkpoint_completed(std::time::Duration::from_millis(3));
    let gateway = aiops_gateway::metrics::Metrics::default().render(0);
    let served: BTreeSet<String> = [counters.prometheus(), gateway]
        .iter()
        .flat_map(|page| page.lines())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_owned))
        .collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("aiops_"))
                .collect();
            assert!(!names.is_empty(), "{expr} queries no aiops metric");
            for name in names {
                assert!(served.contains(name), "{expr}: {name} is not served");
                queried += 1;
            }
        }
    }
    assert!(queried >= 19);
}
