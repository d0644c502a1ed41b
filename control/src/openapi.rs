//! The API's OpenAPI 3.1 document, served at `/api/v1/openapi.json`. A test walks every
//! operation it lists against the router (and every route against it), so the two cannot drift.

use serde_json::{Value, json};

/// Every `(method, path)` the document describes, in its order.
pub fn operations() -> Vec<(String, String)> {
    let document = document();
    let mut out = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for method in item.keys().filter(|key| *key != "parameters") {
                    out.push((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    out
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn configuration_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": {"ETag": {"description": "the version, quoted: send it back in If-Match", "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Configuration"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let name = json!({
        "name": "name", "in": "path", "required": true,
        "description": "the configuration's name: 1 to 64 of a-z, 0-9, - and _",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}
    });
    let if_match = json!({
        "name": "If-Match", "in": "header", "required": false,
        "description": "the ETag read; required for changes (428 without it), a stale one gets 409",
        "schema": {"type": "string"}
    });
    let write_body = json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Write"}}}
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "aiops configuration API",
            "version": "1",
            "description": "A tenant's detector configurations: versioned, audited, validated. The tenant is the token's; scopes detectors:read and detectors:write decide what a token may do."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/detectors": {
                "get": {
                    "operationId": "listDetectors",
                    "summary": "The tenant's configurations (scope detectors:read)",
                    "responses": {
                        "200": {"description": "the live configurations, by name",
                                "content": {"application/json": {"schema": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Configuration"}}}}}}},
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:read")
                    }
                },
                "post": {
                    "operationId": "createDetector",
                    "summary": "Create a configuration (scope detectors:write)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Create"}}}},
                    "responses": {
                        "201": configuration_response("created, version 1 (or the next number after a delete)"),
                        "400": error_response("the body is not a JSON object"),
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:write"),
                        "409": error_response("a configuration of that name exists; `current` is it"),
                        "413": error_response("the body is over 256 KiB"),
                        "422": error_response("invalid fields; `errors` points at each")
                    }
                }
            },
            "/api/v1/detectors/{name}": {
                "parameters": [name],
                "get": {
                    "operationId": "getDetector",
                    "summary": "One configuration with its ETag (scope detectors:read)",
                    "responses": {
                        "200": configuration_response("the current version"),
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:read"),
                        "404": error_response("the tenant has no such configuration")
                    }
                },
                "put": {
                    "operationId": "replaceDetector",
                    "summary": "Replace a configuration (scope detectors:write); If-Match required, or If-None-Match: * to create",
                    "parameters": [if_match, {"name": "If-None-Match", "in": "header", "required": false, "description": "* to create only if absent", "schema": {"type": "string"}}],
                    "requestBody": write_body,
                    "responses": {
                        "200": configuration_response("the new version"),
                        "201": configuration_response("created"),
                        "400": error_response("the body is not a JSON object"),
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:write"),
                        "404": error_response("no such configuration to replace"),
                        "409": error_response("the If-Match version is stale; `current` is the version there now"),
                        "413": error_response("the body is over 256 KiB"),
                        "422": error_response("invalid fields; `errors` points at each"),
                        "428": error_response("no If-Match")
                    }
                },
                "delete": {
                    "operationId": "deleteDetector",
                    "summary": "Delete a configuration (scope detectors:write); If-Match required",
                    "parameters": [if_match, {"name": "X-Change-Reason", "in": "header", "required": false, "description": "why, for the audit log", "schema": {"type": "string"}}],
                    "responses": {
                        "204": {"description": "deleted; the ETag is the version that records the delete"},
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:write"),
                        "404": error_response("no such configuration"),
                        "409": error_response("the If-Match version is stale"),
                        "428": error_response("no If-Match")
                    }
                }
            },
            "/api/v1/detectors/{name}/history": {
                "parameters": [name],
                "get": {
                    "operationId": "detectorHistory",
                    "summary": "Every version and audit entry, oldest first (scope detectors:read)",
                    "responses": {
                        "200": {"description": "versions (a delete has config null) and the audit log with diffs",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/History"}}}},
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:read"),
                        "404": error_response("the tenant never had such a configuration")
                    }
                }
            },
            "/api/v1/detectors/{name}/revert": {
                "parameters": [name],
                "post": {
                    "operationId": "revertDetector",
                    "summary": "Make an earlier version's content the current one, as a new version (scope detectors:write); If-Match required",
                    "parameters": [if_match],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Revert"}}}},
                    "responses": {
                        "200": configuration_response("the new version"),
                        "400": error_response("the body is not a JSON object"),
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:write"),
                        "404": error_response("no such configuration"),
                        "409": error_response("the If-Match version is stale"),
                        "422": error_response("no such version with content"),
                        "428": error_response("no If-Match")
                    }
                }
            },
            "/api/v1/detectors/{name}/preview": {
                "parameters": [name],
                "post": {
                    "operationId": "previewDetector",
                    "summary": "What a draft would have raised over a range of the tenant's data, beside the live version (scope detectors:read)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PreviewRequest"}}}},
                    "responses": {
                        "200": {"description": "the draft's and the live version's events in the range",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Preview"}}}},
                        "400": error_response("the body is not a JSON object"),
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:read"),
                        "422": error_response("invalid fields; `errors` points at each"),
                        "429": error_response("previews are running already"),
                        "501": error_response("this gateway has no preview data configured"),
                        "502": error_response("the preview could not read its data")
                    }
                }
            },
            "/api/v1/series": {
                "get": {
                    "operationId": "findSeries",
                    "summary": "The tenant's series in the recent preview data that the globs select, with their last points (scope detectors:read)",
                    "parameters": [
                        {"name": "metric", "in": "query", "schema": {"type": "string"}, "description": "glob on the metric name"},
                        {"name": "label", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "KEY=GLOB, repeatable"},
                        {"name": "window_ms", "in": "query", "schema": {"type": "integer", "minimum": 1}, "description": "recent data searched (default one hour)"}
                    ],
                    "responses": {
                        "200": {"description": "the series found",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Found"}}}},
                        "401": error_response("no token, or one that does not verify"),
                        "403": error_response("the token lacks detectors:read"),
                        "422": error_response("a parameter is malformed"),
                        "429": error_response("previews are running already"),
                        "501": error_response("this gateway has no preview data configured"),
                        "502": error_response("the search could not read its data")
                    }
                }
            },
            "/api/v1/presets": {
                "get": {
                    "operationId": "listPresets",
                    "summary": "The built-in presets a configuration can start from (scope detectors:read)",
                    "responses": {
                        "200": {"description": "each with what it catches and ignores",
                                "content": {"application/json": {"schema": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Preset"}}}}}}},
                        "401": error_response("no valid token"),
                        "403": error_response("the token lacks detectors:read")
                    }
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}
                }
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
                        "current": {"oneOf": [{"$ref": "#/components/schemas/Configuration"}, {"type": "null"}]}
                    }
                },
                "FieldError": {
                    "type": "object", "required": ["pointer", "message"],
                    "properties": {"pointer": {"type": "string", "description": "RFC 6901 JSON pointer into the request body"}, "message": {"type": "string"}}
                },
                "Document": {
                    "type": "object", "required": ["detectors"], "additionalProperties": false,
                    "properties": {
                        "description": {"type": "string", "maxLength": 2000},
                        "preset": {"type": "string"},
                        "match": {"type": "object", "additionalProperties": false, "properties": {
                            "metric": {"type": "string", "description": "glob on the metric name"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "globs on label values"}}},
                        "features": {"type": "object"},
                        "detectors": {"type": "array", "minItems": 1, "maxItems": aiops_operators::MAX_DETECTORS, "items": {
                            "type": "object", "required": ["kind"],
                            "properties": {"kind": {"type": "string", "enum": ["zscore", "mad", "range", "seasonal", "iforest", "sequence", "lstm", "newcomer", "stuck", "residual", "jump"]}},
                            "additionalProperties": true}},
                        "ensemble": {"type": "object"},
                        "alert": {"type": "object", "properties": {
                            "warning": {"type": "number"}, "critical": {"type": "number"}, "clear": {"type": "number"},
                            "min_duration": {"type": "integer"}, "clear_after": {"type": "integer"}, "cooldown_ms": {"type": "integer"}, "reannounce": {"type": "number"},
                            "young_points": {"type": "integer"}, "young_warning": {"type": "number"}}}
                    }
                },
                "Configuration": {
                    "type": "object",
                    "required": ["name", "tenant", "version", "updated_by", "updated_at", "reason", "config"],
                    "properties": {
                        "name": {"type": "string"},
                        "tenant": {"type": "string"},
                        "version": {"type": "integer", "minimum": 1},
                        "updated_by": {"type": "string"},
                        "updated_at": {"type": "integer", "description": "milliseconds since the Unix epoch"},
                        "reason": {"type": "string"},
                        "config": {"oneOf": [{"$ref": "#/components/schemas/Document"}, {"type": "null"}]}
                    }
                },
                "Create": {
                    "type": "object", "required": ["name", "config"], "additionalProperties": false,
                    "properties": {"name": {"type": "string"}, "config": {"$ref": "#/components/schemas/Document"}, "reason": {"type": "string"}}
                },
                "Write": {
                    "type": "object", "required": ["config"], "additionalProperties": false,
                    "properties": {"config": {"$ref": "#/components/schemas/Document"}, "reason": {"type": "string"}}
                },
                "Revert": {
                    "type": "object", "required": ["version"], "additionalProperties": false,
                    "properties": {"version": {"type": "integer", "minimum": 1}, "reason": {"type": "string"}}
                },
                "History": {
                    "type": "object",
                    "properties": {
                        "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Configuration"}},
                        "audit": {"type": "array", "items": {"type": "object", "properties": {
                            "seq": {"type": "integer"}, "at": {"type": "integer"}, "tenant": {"type": "string"},
                            "name": {"type": "string"}, "version": {"type": "integer"},
                            "action": {"type": "string", "enum": ["create", "update", "delete", "revert"]},
                            "who": {"type": "string"}, "why": {"type": "string"}, "reverted_to": {"type": "integer"},
                            "diff": {"type": "array", "items": {"type": "object", "properties": {
                                "path": {"type": "string"}, "before": {"type": "string"}, "after": {"type": "string"}}}}}}}
                    }
                },
                "PreviewRequest": {
                    "type": "object", "required": ["config", "from", "to"], "additionalProperties": false,
                    "properties": {
                        "config": {"$ref": "#/components/schemas/Document"},
                        "from": {"oneOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}]},
                        "to": {"oneOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}], "description": "at most 7 days after from"},
                        "warmup_ms": {"type": "integer", "minimum": 0, "description": "history before from read to warm up (default one day)"}
                    }
                },
                "Raised": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "string"}, "count": {"type": "integer"},
                        "events": {"type": "array", "items": {"type": "object"}},
                        "truncated": {"type": "boolean"}, "points_scored": {"type": "integer"}
                    }
                },
                "Preview": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string"}, "from": {"type": "integer"}, "to": {"type": "integer"},
                        "draft": {"$ref": "#/components/schemas/Raised"},
                        "live": {"oneOf": [{"$ref": "#/components/schemas/Raised"}, {"type": "null"}]},
                        "series": {"type": "array", "description": "values over the range of the first 20 series the draft matched, at most 400 points each", "items": {"$ref": "#/components/schemas/SeriesPoints"}},
                        "elapsed_ms": {"type": "integer"}
                    }
                },
                "SeriesPoints": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"}, "name": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "count": {"type": "integer", "description": "points of the series seen"},
                        "points": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]}}
                    }
                },
                "Found": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string"}, "from": {"type": "integer"}, "to": {"type": "integer"},
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/SeriesPoints"}},
                        "truncated": {"type": "boolean"}
                    }
                },
                "Preset": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"}, "title": {"type": "string"},
                        "catches": {"type": "string"}, "ignores": {"type": "string"},
                        "config": {"$ref": "#/components/schemas/Document"}
                    }
                }
            }
        }
    })
}
