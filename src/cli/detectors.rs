//! `aiops detectors`: the configuration API from a shell, for scripts and GitOps. `apply` of a
//! file that matches what is live changes nothing, so a file applied twice makes one version.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use aiops_models::detectors::parse_document;
use aiops_operators::Registry;

use crate::error::{Error, Result};

/// Arguments of `aiops detectors`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    export AIOPS_API_URL=http://127.0.0.1:8080 AIOPS_TOKEN=$(aiops token -c gateway.toml --tenant acme --scopes detectors:read,detectors:write)\n  \
    aiops detectors apply checkout.json\n  \
    aiops detectors history checkout\n  \
    aiops detectors preview checkout --file draft.json --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z")]
pub struct DetectorsArgs {
    /// The gateway serving the configuration API (plain HTTP in this build).
    #[arg(
        long,
        global = true,
        env = "AIOPS_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,

    /// A token with the `detectors:read` (and, to change anything, `detectors:write`) scope.
    #[arg(long, global = true, env = "AIOPS_TOKEN", hide_env_values = true)]
    token: Option<String>,

    #[command(subcommand)]
    command: DetectorsCommand,
}

#[derive(Debug, Subcommand)]
enum DetectorsCommand {
    /// The tenant's configurations.
    List,
    /// One configuration, as JSON.
    Show {
        /// Its name.
        name: String,
    },
    /// Create or update from a file (JSON or TOML: `name`, `config`, optional `reason`);
    /// nothing is written when the live version already says the same.
    Apply {
        /// The file.
        file: PathBuf,
    },
    /// Delete a configuration.
    Delete {
        /// Its name.
        name: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Every version and audit entry of a configuration.
    History {
        /// Its name.
        name: String,
    },
    /// Make an earlier version's content the current one (as a new version).
    Revert {
        /// Its name.
        name: String,
        /// The version to go back to.
        #[arg(value_name = "VERSION")]
        to: u64,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// What a draft would have raised over a range, beside the live version.
    Preview {
        /// The configuration's name.
        name: String,
        /// The draft (a file as `apply` reads it).
        #[arg(long)]
        file: PathBuf,
        /// Start of the range (RFC 3339 or milliseconds since the epoch).
        #[arg(long)]
        from: String,
        /// End of the range.
        #[arg(long)]
        to: String,
    },
}

/// The API at `url` with `token`.
struct Api {
    agent: ureq::Agent,
    url: String,
    token: String,
}

/// An answer: status, `ETag`, JSON body.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Value,
}

impl Api {
    fn new(url: &str, token: Option<String>) -> Result<Api> {
        if url.starts_with("https://") {
            return Err(Error::Usage(
                "this build speaks plain HTTP only: reach the gateway through a local port \
                 (kubectl port-forward, an SSH tunnel) and give --url http://..."
                    .into(),
            ));
        }
        let token = token.ok_or_else(|| {
            Error::Usage(
                "give --token or AIOPS_TOKEN (aiops token --scopes detectors:read,detectors:write mints one)"
                    .into(),
            )
        })?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Api {
            agent,
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer> {
        let url = format!("{}{path}", self.url);
        let authorization = format!("Bearer {}", self.token);
        let failed = |e: ureq::Error| Error::Api(format!("{method} {url}: {e}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url).header("Authorization", &authorization);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            ("DELETE", _) => {
                let mut request = self
                    .agent
                    .delete(&url)
                    .header("Authorization", &authorization);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            (method, body) => {
                let mut request = match method {
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.post(&url),
                }
                .header("Authorization", &authorization)
                .content_type("application/json");
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body.map(Value::to_string).unwrap_or_default())
            }
        }
        .map_err(failed)?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.body_mut().read_to_string().map_err(failed)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, etag, body })
    }

    /// The `ETag` of the live version at `path`, for a change's `If-Match`.
    fn etag(&self, path: &str, what: &str) -> Result<String> {
        let current = self.call("GET", path, &[], None)?;
        let current = self.expect(current, &[200], what)?;
        Ok(current.etag.unwrap_or_default())
    }

    /// `answer` if it has one of `expected`, else an error quoting the API's message.
    fn expect(&self, answer: Answer, expected: &[u16], what: &str) -> Result<Answer> {
        if expected.contains(&answer.status) {
            return Ok(answer);
        }
        let mut message = format!(
            "{what}: {} {}",
            answer.status,
            answer.body["message"].as_str().unwrap_or("")
        );
        if let Some(errors) = answer.body["errors"].as_array() {
            for error in errors {
                message.push_str(&format!(
                    "\n  {}: {}",
                    error["pointer"].as_str().unwrap_or(""),
                    error["message"].as_str().unwrap_or("")
                ));
            }
        }
        Err(Error::Api(message))
    }
}

/// A path segment for a name (names are `[a-z0-9_-]`; anything else is refused by the API).
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A configuration file: JSON, or TOML when it ends in `.toml`.
fn read_file(path: &PathBuf) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    let value: Value = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        serde_json::to_value(table).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
    } else {
        serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
    };
    if !value.is_object() || !value["config"].is_object() {
        return Err(Error::Usage(format!(
            "{}: a configuration file has `name`, a `config` object and an optional `reason`",
            path.display()
        )));
    }
    Ok(value)
}

/// Whether two `config` documents say the same once defaults are filled in.
fn same_document(a: &Value, b: &Value) -> bool {
    let registry = Registry::builtin();
    match (parse_document(a, &registry), parse_document(b, &registry)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn run(args: DetectorsArgs) -> Result<()> {
    let api = Api::new(&args.url, args.token)?;
    match args.command {
        DetectorsCommand::List => {
            let answer = api.call("GET", "/api/v1/detectors", &[], None)?;
            let answer = api.expect(answer, &[200], "list")?;
            println!(
                "{:<24} {:>7}  {:<16} {:<24} description",
                "name", "version", "updated by", "updated at"
            );
            for item in answer.body["items"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:>7}  {:<16} {:<24} {}",
                    item["name"].as_str().unwrap_or(""),
                    item["version"],
                    item["updated_by"].as_str().unwrap_or(""),
                    when(&item["updated_at"]),
                    item["config"]["description"].as_str().unwrap_or("")
                );
            }
        }
        DetectorsCommand::Show { name } => {
            let answer = api.call(
                "GET",
                &format!("/api/v1/detectors/{}", segment(&name)),
                &[],
                None,
            )?;
            let answer = api.expect(answer, &[200], "show")?;
            println!(
                "{}",
                serde_json::to_string_pretty(&answer.body).unwrap_or_default()
            );
        }
        DetectorsCommand::Apply { file } => {
            let wanted = read_file(&file)?;
            let name = wanted["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::Usage(format!("{}: `name` is missing", file.display())))?;
            let path = format!("/api/v1/detectors/{}", segment(&name));
            let body = json!({"config": wanted["config"], "reason": wanted["reason"].as_str().unwrap_or("aiops detectors apply")});
            let current = api.call("GET", &path, &[], None)?;
            let answer = match current.status {
                404 => api.call("PUT", &path, &[("If-None-Match", "*")], Some(&body))?,
                200 if same_document(&current.body["config"], &wanted["config"]) => {
                    println!(
                        "{name}: unchanged (version {} already says this)",
                        current.body["version"]
                    );
                    return Ok(());
                }
                200 => {
                    let etag = current.etag.unwrap_or_default();
                    api.call("PUT", &path, &[("If-Match", &etag)], Some(&body))?
                }
                _ => api.expect(current, &[200, 404], "apply")?,
            };
            let answer = api.expect(answer, &[200, 201], "apply")?;
            println!("{name}: version {} applied", answer.body["version"]);
        }
        DetectorsCommand::Delete { name, reason } => {
            let path = format!("/api/v1/detectors/{}", segment(&name));
            let etag = api.etag(&path, "delete")?;
            let answer = api.call(
                "DELETE",
                &path,
                &[("If-Match", &etag), ("X-Change-Reason", &reason)],
                None,
            )?;
            api.expect(answer, &[204], "delete")?;
            println!("{name}: deleted");
        }
        DetectorsCommand::History { name } => {
            let answer = api.call(
                "GET",
                &format!("/api/v1/detectors/{}/history", segment(&name)),
                &[],
                None,
            )?;
            let answer = api.expect(answer, &[200], "history")?;
            for entry in answer.body["audit"].as_array().into_iter().flatten() {
                let changed: Vec<&str> = entry["diff"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["path"].as_str())
                    .collect();
                println!(
                    "v{:<4} {:<8} {:<24} {:<16} {}{}",
                    entry["version"],
                    entry["action"].as_str().unwrap_or(""),
                    when(&entry["at"]),
                    entry["who"].as_str().unwrap_or(""),
                    entry["why"].as_str().unwrap_or(""),
                    if changed.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", changed.join(", "))
                    }
                );
            }
        }
        DetectorsCommand::Revert {
            name,
            to: version,
            reason,
        } => {
            let path = format!("/api/v1/detectors/{}", segment(&name));
            let etag = api.etag(&path, "revert")?;
            let answer = api.call(
                "POST",
                &format!("{path}/revert"),
                &[("If-Match", &etag)],
                Some(&json!({"version": version, "reason": reason})),
            )?;
            let answer = api.expect(answer, &[200], "revert")?;
            println!(
                "{name}: version {version}'s content is version {}",
                answer.body["version"]
            );
        }
        DetectorsCommand::Preview {
            name,
            file,
            from,
            to,
        } => {
            let draft = read_file(&file)?;
            let time = |text: &str| -> Value {
                text.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(text))
            };
            let answer = api.call(
                "POST",
                &format!("/api/v1/detectors/{}/preview", segment(&name)),
                &[],
                Some(&json!({"config": draft["config"], "from": time(&from), "to": time(&to)})),
            )?;
            let answer = api.expect(answer, &[200], "preview")?;
            let body = &answer.body;
            let live = match body["live"]["count"].as_u64() {
                Some(count) => format!("{count} with live version {}", body["live"]["version"]),
                None => "no live version".to_owned(),
            };
            println!(
                "{name}: the draft raises {} events ({live}); {} points scored, {} ms",
                body["draft"]["count"], body["draft"]["points_scored"], body["elapsed_ms"]
            );
            for event in body["draft"]["events"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<8} {} {} score {:.2}",
                    when(&event["timestamp"]),
                    event["severity"].as_str().unwrap_or(""),
                    event["series"]["name"].as_str().unwrap_or(""),
                    event["series"]["labels"],
                    event["score"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
    }
    Ok(())
}

/// Milliseconds since the epoch as RFC 3339.
fn when(value: &Value) -> String {
    value
        .as_i64()
        .map(aiops_schemas::format_rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_path_segments_that_cannot_climb() {
        assert_eq!(segment("checkout-v2"), "checkout-v2");
        assert_eq!(segment("../x"), "%2E%2E%2Fx");
    }

    #[test]
    fn documents_compare_with_their_defaults_filled_in() {
        let short = json!({"detectors": [{"kind": "zscore"}]});
        let mut long =
            serde_json::to_value(parse_document(&short, &Registry::builtin()).unwrap()).unwrap();
        assert!(same_document(&short, &long));
        long["alert"]["warning"] = json!(7.0);
        assert!(!same_document(&short, &long));
    }
}
