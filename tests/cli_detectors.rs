//! `aiops detectors` against the `aiops gateway` binary's configuration API: apply is
//! idempotent (a file applied twice makes one version), and list, show, history, revert and
//! delete do what they say, with the API's messages when it refuses.

mod support;

use std::process::Output;

use serde_json::json;
use support::ApiGateway;

fn detectors(gateway: &ApiGateway, token: &str, args: &[&str]) -> Output {
    support::aiops()
        .arg("detectors")
        .args(["--url", &format!("http://{}", gateway.address)])
        .env("AIOPS_TOKEN", token)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn apply_twice_makes_one_version_and_the_other_commands_follow_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = ApiGateway::start(dir.path(), None);
    let token = ApiGateway::token("acme", "gitops");
    let file = dir.path().join("checkout.json");
    let document = |warning: f64| {
        json!({
            "name": "checkout",
            "reason": "from git",
            "config": {"match": {"metric": "latency"}, "detectors": [{"kind": "zscore"}],
                       "alert": {"warning": warning}}
        })
    };
    std::fs::write(&file, document(5.0).to_string()).unwrap();
    let file = file.to_str().unwrap();
    assert!(stdout(&detectors(&gateway, &token, &["apply", file])).contains("version 1 applied"));
    // The same file again: the defaults the server filled in do not count as a change.
    assert!(stdout(&detectors(&gateway, &token, &["apply", file])).contains("unchanged"));
    std::fs::write(dir.path().join("checkout.json"), document(6.0).to_string()).unwrap();
    assert!(stdout(&detectors(&gateway, &token, &["apply", file])).contains("version 2 applied"));
    // TOML says the same as JSON.
    let toml_file = dir.path().join("checkout.toml");
    std::fs::write(
        &toml_file,
        "name = \"checkout\"\n[config]\nmatch = { metric = \"latency\" }\ndetectors = [{ kind = \"zscore\" }]\nalert = { warning = 6.0 }\n",
    )
    .unwrap();
    assert!(
        stdout(&detectors(
            &gateway,
            &token,
            &["apply", toml_file.to_str().unwrap()]
        ))
        .contains("unchanged")
    );

    let list = stdout(&detectors(&gateway, &token, &["list"]));
    assert!(
        list.contains("checkout") && list.contains("gitops"),
        "{list}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&stdout(&detectors(&gateway, &token, &["show", "checkout"]))).unwrap();
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["config"]["alert"]["warning"], 6.0);

    let reverted = stdout(&detectors(
        &gateway,
        &token,
        &["revert", "checkout", "1", "--reason", "too quiet"],
    ));
    assert!(reverted.contains("is version 3"), "{reverted}");
    let history = stdout(&detectors(&gateway, &token, &["history", "checkout"]));
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(
        lines[1].contains("update") && lines[1].contains("/alert/warning"),
        "{history}"
    );
    assert!(
        lines[2].contains("revert") && lines[2].contains("too quiet"),
        "{history}"
    );

    assert!(stdout(&detectors(&gateway, &token, &["delete", "checkout"])).contains("deleted"));
    let gone = detectors(&gateway, &token, &["show", "checkout"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));

    // A refusal shows the API's pointers.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        json!({"name": "bad", "config": {"detectors": [{"kind": "mad", "window": 0}]}}).to_string(),
    )
    .unwrap();
    let refused = detectors(&gateway, &token, &["apply", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("/config/detectors/0/window"), "{message}");
    // Another tenant sees none of it.
    let other = ApiGateway::token("globex", "them");
    assert!(!stdout(&detectors(&gateway, &other, &["list"])).contains("checkout"));
}
