//! Preview through the `aiops gateway` binary's configuration API over a file of points (the
//! embedded mode): the draft's events equal what `aiops replay` gives once the draft is the
//! configuration, the live version's events come beside them, and another tenant's series in
//! the same data never show.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use support::http::{points, preset_document, request};

const START_MS: i64 = 1_700_006_400_000;
const DAY_MS: i64 = 24 * 3_600_000;

fn document(warning: f64) -> Value {
    preset_document("request-latency", warning)
}

/// (series, timestamp, severity, score) of each event: what two runs of the same chain share
/// whatever version they were stamped with.
fn outcomes<'a>(
    events: impl Iterator<Item = &'a Value>,
) -> BTreeSet<(String, i64, String, String)> {
    events
        .map(|e| {
            (
                e["series"]["key"].as_str().unwrap().to_owned(),
                e["timestamp"].as_i64().unwrap(),
                e["severity"].as_str().unwrap().to_owned(),
                e["score"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_preview_equals_a_replay_of_the_draft_and_shows_the_live_version_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("points.jsonl");
    let mut text = points("shop", 12, 1_440, START_MS);
    text.push_str(&points("rival", 4, 1_440, START_MS));
    std::fs::write(&data, text).unwrap();
    let gateway = support::ApiGateway::start(dir.path(), Some(&data));
    let store = support::ApiGateway::store(dir.path());
    let address = gateway.address;
    let token = support::ApiGateway::token("shop", "alice");

    let (status, _, live) = request(
        address,
        "POST",
        "/api/v1/detectors",
        &token,
        &[],
        Some(&json!({"name": "latency", "config": document(2.0)})),
    );
    assert_eq!(status, 201, "{live}");
    let (from, to) = (START_MS + DAY_MS / 2, START_MS + DAY_MS);
    let (status, _, preview) = request(
        address,
        "POST",
        "/api/v1/detectors/latency/preview",
        &token,
        &[],
        Some(&json!({"config": document(3.0), "from": from, "to": to})),
    );
    assert_eq!(status, 200, "{preview}");
    let draft = preview["draft"]["events"].as_array().unwrap();
    let live_events = preview["live"]["events"].as_array().unwrap();
    assert_eq!(preview["live"]["version"], "1");
    assert!(!draft.is_empty() && !live_events.is_empty(), "{preview}");
    assert!(
        draft.len() < live_events.len(),
        "a higher warning threshold raises less: {} vs {}",
        draft.len(),
        live_events.len()
    );
    for event in draft.iter().chain(live_events) {
        assert_eq!(
            event["tenant"], "shop",
            "another tenant's series in a preview"
        );
        let at = event["timestamp"].as_i64().unwrap();
        assert!((from..=to).contains(&at));
    }
    assert_eq!(preview["draft"]["count"], draft.len());

    // The draft becomes version 2; a replay of the same data and range gives its events.
    let (status, _, _) = request(
        address,
        "PUT",
        "/api/v1/detectors/latency",
        &token,
        &[("If-Match", "\"1\"")],
        Some(&json!({"config": document(3.0)})),
    );
    assert_eq!(status, 200);
    let run_config = dir.path().join("run.toml");
    std::fs::write(&run_config, support::LIGHT_DEFAULT_TEMPLATE).unwrap();
    let replayed = dir.path().join("replayed.jsonl");
    let output = support::aiops()
        .args(["replay", "--quiet", "--input"])
        .arg(&data)
        .arg("--store")
        .arg(&store)
        .arg("--config")
        .arg(&run_config)
        .args(["--from", &from.to_string(), "--to", &to.to_string(), "-o"])
        .arg(&replayed)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replay: Vec<Value> = std::fs::read_to_string(&replayed)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_the_configuration: Vec<&Value> = replay
        .iter()
        .filter(|e| e["template"] == "latency")
        .collect();
    assert!(
        of_the_configuration
            .iter()
            .all(|e| e["model_version"] == "shop.latency@2")
    );
    assert_eq!(
        outcomes(of_the_configuration.into_iter()),
        outcomes(draft.iter()),
        "preview and replay of the same draft"
    );

    // Bad ranges and drafts get 422 at the field.
    let (status, _, refused) = request(
        address,
        "POST",
        "/api/v1/detectors/latency/preview",
        &token,
        &[],
        Some(&json!({"config": {"detectors": []}, "from": to, "to": from})),
    );
    assert_eq!(status, 422, "{refused}");
    let pointers: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/to") && pointers.contains(&"/config/detectors"),
        "{pointers:?}"
    );
}

#[test]
fn a_preview_charts_the_matched_series_and_a_search_finds_only_the_tenants_series() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("points.jsonl");
    let mut text = points("shop", 25, 1_440, START_MS);
    text.push_str(&points("rival", 4, 1_440, START_MS));
    std::fs::write(&data, text).unwrap();
    let gateway = support::ApiGateway::start(dir.path(), Some(&data));
    let address = gateway.address;
    let token = support::ApiGateway::token("shop", "alice");

    // The chart of a preview: the first 20 of the 25 matched series by name and labels, each
    // over the range only, decimated to at most 400 of its 721 points there.
    let (from, to) = (START_MS + DAY_MS / 2, START_MS + DAY_MS);
    let (status, _, preview) = request(
        address,
        "POST",
        "/api/v1/detectors/latency/preview",
        &token,
        &[],
        Some(&json!({"config": document(3.0), "from": from, "to": to})),
    );
    assert_eq!(status, 200, "{preview}");
    let charted = preview["series"].as_array().unwrap();
    assert_eq!(charted.len(), 20, "{}", charted.len());
    let hosts: Vec<&str> = charted
        .iter()
        .map(|s| s["labels"]["host"].as_str().unwrap())
        .collect();
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(hosts, sorted, "by name and labels");
    for series in charted {
        let points = series["points"].as_array().unwrap();
        assert!(
            (200..=400).contains(&points.len()),
            "{} points",
            points.len()
        );
        assert!(
            series["count"].as_u64().unwrap() >= 720,
            "{}",
            series["count"]
        );
        let times: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "in time order");
        assert!(
            times.iter().all(|t| (from..=to).contains(t)),
            "within the range"
        );
    }
    // Every event of the draft is on a point of a series the data has.
    assert!(preview["draft"]["count"].as_u64().unwrap() > 0);

    // Search: the tenant's series only, narrowed by label globs, with their last points.
    let search = |query: &str| {
        request(
            address,
            "GET",
            &format!("/api/v1/series?{query}"),
            &token,
            &[],
            None,
        )
    };
    let (status, _, found) = search("metric=lat*&window_ms=3600000");
    assert_eq!(status, 200, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 25, "the 25 series of shop, none of rival's");
    let newest = START_MS + 1_439 * 60_000;
    assert_eq!(found["to"], newest);
    assert_eq!(found["from"], newest - 3_600_000);
    for item in items {
        let points = item["points"].as_array().unwrap();
        assert_eq!(points.len(), 61, "the last hour of minutely points");
        assert_eq!(points.last().unwrap()[0], newest);
    }
    let (status, _, found) = search("metric=latency&label=host%3Dh1*");
    assert_eq!(status, 200, "{found}");
    let hosts: BTreeSet<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["labels"]["host"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "h1", "h10", "h11", "h12", "h13", "h14", "h15", "h16", "h17", "h18", "h19",
    ]
    .into_iter()
    .collect();
    assert_eq!(hosts, expected);
    let (status, _, found) = search("metric=nothing-like-it");
    assert_eq!(status, 200);
    assert_eq!(found["items"], json!([]));

    // Malformed parameters are 422s that name them.
    let (status, _, refused) = search("label=host&window_ms=0&colour=red");
    assert_eq!(status, 422, "{refused}");
    let pointers: BTreeSet<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/label", "/window_ms", "/colour"].into_iter().collect()
    );
    // A token without detectors:read may not search.
    let reader_less = support::ws::token("shop", &["anomalies"], 600);
    let (status, _, _) = request(
        address,
        "GET",
        "/api/v1/series?metric=latency",
        &reader_less,
        &[],
        None,
    );
    assert_eq!(status, 403);
}
