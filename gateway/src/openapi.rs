//! The OpenAPI 3 description of the REST API, served at `/api/openapi.json`.
//!
//! [`ROUTES`] lists every route the gateway serves; a unit test checks the document describes
//! exactly those, and an end-to-end test calls every documented operation, so the document
//! cannot drift from the code unnoticed.

use pulse_store::posts::SEARCH_COUNT_CAP;
use serde_json::{Map, Value, json};

/// Every (method, path) of the REST API, as routed in `server.rs`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/health"),
    ("get", "/api/posts"),
    ("post", "/api/posts"),
    ("get", "/api/posts/export.csv"),
    ("get", "/api/sentiment/distribution"),
    ("get", "/api/sentiment/aggregate"),
    ("get", "/api/alerts"),
    ("get", "/api/insights/drivers"),
    ("get", "/api/insights/entities"),
    ("post", "/api/analyze"),
    ("post", "/api/ws-ticket"),
    ("get", "/api/openapi.json"),
];

/// Routes anyone may call, without a key.
const PUBLIC: &[&str] = &["/api/health", "/api/openapi.json"];

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn filters() -> Vec<Value> {
    let text = json!({"type": "string", "maxLength": 200});
    let time = json!({"type": "string", "format": "date-time"});
    vec![
        query("source", "Only posts from this source", text.clone()),
        query(
            "sentiment",
            "Only posts with this sentiment",
            json!({"type": "string", "enum": ["positive", "neutral", "negative"]}),
        ),
        query("emotion", "Only posts with this emotion", text.clone()),
        query(
            "search",
            "Case-insensitive substring of the content",
            text.clone(),
        ),
        query("author", "Only posts by this author", text),
        query("from", "Posts created at or after (RFC 3339)", time.clone()),
        query("to", "Posts created before (RFC 3339)", time),
    ]
}

fn limit(max: u32) -> Value {
    query(
        "limit",
        "Page size",
        json!({"type": "integer", "minimum": 1, "maximum": max, "default": 50}),
    )
}

fn envelope(data: Value) -> Value {
    json!({
        "description": "Success, in the envelope",
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["data", "metadata", "filters", "timestamp"],
            "properties": {
                "data": data,
                "metadata": {"type": "object"},
                "filters": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        }}},
    })
}

fn errors(codes: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for code in codes {
        let description = match *code {
            "400" => {
                "Invalid input (code: UNKNOWN_PARAMETER, OUT_OF_RANGE, INVALID_DATE, INVALID_PARAMETER, INVALID_RANGE, PARAMETER_TOO_LONG, INVALID_BODY, BODY_TOO_LARGE, INVALID_ARGUMENT)"
            }
            "401" => {
                "No usable API key (UNAUTHENTICATED: missing, malformed, unknown, revoked or expired), with WWW-Authenticate: Bearer"
            }
            "403" => {
                "The key lacks the scope this operation needs (INSUFFICIENT_SCOPE), or a page of a foreign origin (CORS_FORBIDDEN)"
            }
            "422" => "This Idempotency-Key was used with a different body (IDEMPOTENCY_KEY_REUSED)",
            "429" => {
                "Rate limited per client address or per key (RATE_LIMITED, with Retry-After), too many exports at once (EXPORT_BUSY), or upstream RESOURCE_EXHAUSTED"
            }
            "503" => "A dependency is unavailable",
            "504" => "An upstream call timed out",
            _ => "Error",
        };
        out.insert(
            (*code).to_owned(),
            json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    out
}

fn operation(summary: &str, parameters: Vec<Value>, ok: (&str, Value), codes: &[&str]) -> Value {
    let mut responses = errors(codes);
    responses.insert(ok.0.to_owned(), ok.1);
    json!({"summary": summary, "parameters": parameters, "responses": responses})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// The document.
pub fn document() -> Value {
    let posts = json!({"type": "array", "items": {"$ref": "#/components/schemas/Post"}});
    let mut list_params = filters();
    list_params.push(limit(500));
    list_params.push(query(
        "offset",
        "Posts to skip; not with cursor. Deep offsets read every skipped post: page by cursor instead",
        json!({"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0}),
    ));
    list_params.push(query(
        "cursor",
        "Start after the last post of an earlier page: its metadata.next_cursor, unchanged \
         (opaque). Not with offset; a malformed cursor is 400 INVALID_ARGUMENT",
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": crate::params::MAX_CURSOR_PARAM}),
    ));
    let list_metadata = json!({
        "type": "object",
        "required": ["total", "total_is_lower_bound", "limit", "returned", "next_cursor"],
        "properties": {
            "total": {"type": "integer", "description": "Posts matching the filter (may lag new posts by a moment)"},
            "total_is_lower_bound": {"type": "boolean", "description": format!("true when total is a lower bound: a text search stops counting past {SEARCH_COUNT_CAP} matches")},
            "limit": {"type": "integer"},
            "offset": {"type": "integer", "nullable": true, "description": "null when paging by cursor"},
            "returned": {"type": "integer"},
            "next_cursor": {"type": "string", "nullable": true, "description": "Pass as cursor for the next page; null on the last page"},
        },
    });
    let mut list = envelope(posts);
    list["content"]["application/json"]["schema"]["properties"]["metadata"] = list_metadata;
    let mut export_params = filters();
    export_params.push(query(
        "limit",
        "Most rows to export; at most the gateway's EXPORT_MAX_ROWS (default 100000), which is also the default",
        json!({"type": "integer", "minimum": 1}),
    ));
    let mut distribution_params = filters();
    distribution_params.push(query(
        "by_source",
        "Also break down per source",
        json!({"type": "boolean"}),
    ));
    let mut aggregate_params = filters();
    aggregate_params.push(query(
        "bucket",
        "Bucket width",
        json!({"type": "string", "enum": ["minute", "hour", "day"], "default": "hour"}),
    ));
    let mut publish = operation(
        "Publish posts into the processing stream; one result per post. Needs the write scope. \
         Stored post ids are `<key id>:<post_id>`: each key has its own namespace. With an \
         Idempotency-Key, a retry gets the first answer back (Idempotent-Replayed: true) and \
         stores nothing twice",
        vec![
            json!({"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1 to 255 visible ASCII characters; answers are kept IDEMPOTENCY_HOURS (24)",
            "schema": {"type": "string", "maxLength": 255}}),
        ],
        (
            "200",
            envelope(
                json!({"type": "array", "items": {"$ref": "#/components/schemas/PublishResult"}}),
            ),
        ),
        &["400", "422", "429", "503", "504"],
    );
    publish["requestBody"] = json_body(json!({
        "type": "object", "required": ["posts"], "additionalProperties": false,
        "properties": {"posts": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["source", "author", "content"], "additionalProperties": false,
            "properties": {
                "post_id": {"type": "string", "maxLength": crate::routes::MAX_CLIENT_POST_ID_LEN, "description": "Defaults to a new UUID (derived from the Idempotency-Key when there is one)"},
                "source": {"type": "string"}, "author": {"type": "string"}, "content": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time", "description": "Defaults to now"},
            },
        }}},
    }));
    let mut analyze = operation(
        "Analyse a text ad hoc with the loaded models",
        vec![],
        (
            "200",
            envelope(json!({"type": "object", "properties": {
                "sentiment": {"$ref": "#/components/schemas/TaskResult"},
                "emotion": {"$ref": "#/components/schemas/TaskResult"},
                "truncated": {"type": "boolean"},
            }})),
        ),
        &["400", "429", "503", "504"],
    );
    analyze["requestBody"] = json_body(json!({
        "type": "object", "required": ["text"], "additionalProperties": false,
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": pulse_domain::MAX_CONTENT_CHARS},
            "tasks": {"type": "array", "items": {"type": "string", "enum": ["sentiment", "emotion"]}},
        },
    }));
    let insight_params = |extra: Vec<Value>| {
        let time = json!({"type": "string", "format": "date-time"});
        let mut params = vec![
            query(
                "from",
                "Start of the window (RFC 3339); default one hour before to",
                time.clone(),
            ),
            query("to", "End of the window (RFC 3339); default now", time),
            query(
                "baseline",
                "Length of the baseline window, which ends where the window starts: seconds, or 30m, 24h, 7d (1 minute to 31 days); default the window's own length",
                json!({"type": "string", "pattern": "^[0-9]+[smhd]?$"}),
            ),
        ];
        params.extend(extra);
        params
    };
    let drivers_params = insight_params(vec![
        query(
            "sentiment",
            "Whose drivers: the posts of this sentiment, or all posts",
            json!({"type": "string", "enum": ["negative", "positive", "neutral", "all"], "default": "negative"}),
        ),
        query(
            "limit",
            "Most drivers",
            json!({"type": "integer", "minimum": 1, "maximum": 50, "default": 10}),
        ),
    ]);
    let entities_params = insight_params(vec![query(
        "limit",
        "Most entities, by volume in the window",
        json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
    )]);
    let window_schema = json!({"type": "object", "properties": {
        "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
    }});
    let counts_schema = json!({"type": "object", "properties": {
        "positive": {"type": "integer"}, "neutral": {"type": "integer"}, "negative": {"type": "integer"},
    }});
    let drivers_schema = json!({"type": "object", "properties": {
        "window": {"$ref": "#/components/schemas/Window"},
        "baseline": {"$ref": "#/components/schemas/Window"},
        "sentiment": {"type": "string"},
        "posts": {"type": "integer", "description": "Posts of the sentiment in the window"},
        "baseline_posts": {"type": "integer"},
        "threshold": {"type": "number", "description": "The score a term needed"},
        "terms_tested": {"type": "integer"},
        "drivers": {"type": "array", "items": {"type": "object", "properties": {
            "term": {"type": "string"},
            "kind": {"type": "string", "enum": ["word", "phrase", "hashtag", "mention", "entity"]},
            "score": {"type": "number", "description": "z of the weighted log-odds ratio"},
            "log_odds": {"type": "number"},
            "count": {"type": "integer", "description": "Posts of the sentiment in the window that mention it"},
            "baseline_count": {"type": "integer"},
            "share": {"type": "number"}, "baseline_share": {"type": "number"},
            "sentiment_split": {"$ref": "#/components/schemas/SentimentCounts"},
            "examples": {"type": "array", "maxItems": 2, "items": {"type": "object", "properties": {
                "post_id": {"type": "string"}, "source": {"type": "string"}, "author": {"type": "string"},
                "content": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                "sentiment_label": {"type": "string"},
            }}},
        }}},
    }});
    let entity_schema = json!({"type": "object", "properties": {
        "entity": {"type": "string"},
        "kind": {"type": "string", "enum": ["entity", "hashtag"]},
        "posts": {"type": "integer"}, "positive": {"type": "integer"}, "neutral": {"type": "integer"}, "negative": {"type": "integer"},
        "baseline_posts": {"type": "integer"}, "baseline_positive": {"type": "integer"},
        "baseline_neutral": {"type": "integer"}, "baseline_negative": {"type": "integer"},
        "change": {"type": "object", "description": "posts: relative change in volume; positive/neutral/negative: change in share (fraction points); null without baseline posts", "properties": {
            "posts": {"type": "number", "nullable": true}, "positive": {"type": "number", "nullable": true},
            "neutral": {"type": "number", "nullable": true}, "negative": {"type": "number", "nullable": true},
        }},
    }});
    let csv = json!({
        "description": "CSV (RFC 4180), streamed, as an attachment, newest post first. It holds \
            at most X-Export-Row-Cap rows and ends there: a file with that many rows while \
            X-Total-Count is larger was cut at the cap (narrow the filter, e.g. by from/to, to \
            export the rest)",
        "headers": {
            "Content-Disposition": {"schema": {"type": "string"}},
            "X-Total-Count": {"description": "Posts matching the filter", "schema": {"type": "integer"}},
            "X-Total-Count-Is-Lower-Bound": {"description": format!("true when X-Total-Count is a lower bound: a text search stops counting past {SEARCH_COUNT_CAP} matches"), "schema": {"type": "boolean"}},
            "X-Export-Row-Cap": {"description": "Most rows this file holds: EXPORT_MAX_ROWS, or the lower limit asked for", "schema": {"type": "integer"}},
        },
        "content": {"text/csv": {"schema": {"type": "string"}}},
    });
    let ws_ticket = operation(
        "A single-use ticket for the live feed, for browsers (which cannot send Authorization on a \
         WebSocket): open /ws/sentiment?ticket=... within expires_in_seconds. Needs the read scope",
        vec![],
        (
            "200",
            envelope(json!({"type": "object", "properties": {
                "ticket": {"type": "string"}, "expires_in_seconds": {"type": "integer"},
            }})),
        ),
        &["429", "503"],
    );
    let mut document = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Pulse API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Real-time sentiment analysis. Every response carries x-request-id. \
                Live events: WebSocket /ws/sentiment (messages connected, new_post, metrics_update, \
                alert; send {\"type\":\"subscribe\",\"source\":...,\"sentiment\":...} to filter new_post), \
                with Authorization: Bearer or ?ticket= from POST /api/ws-ticket. Every operation but \
                health and this document needs an API key (Authorization: Bearer pk_...) with the \
                operation's scope: read for every GET, write to publish, analyze to analyse; the \
                gateway may allow reads without a key (PUBLIC_READS).",
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/health": {"get": operation("Each dependency's state; 503 when the database is unreachable", vec![], ("200", envelope(json!({"type": "object"}))), &["503"])},
            "/api/posts": {
                "get": operation("Analysed posts, newest first (created_at, then post_id); page by offset or by cursor", list_params, ("200", list), &["400", "429", "503", "504"]),
                "post": publish,
            },
            "/api/posts/export.csv": {"get": operation("The filtered posts as CSV, at most X-Export-Row-Cap rows; a cell that would start a spreadsheet formula (=, +, -, @) gets a leading apostrophe", export_params, ("200", csv), &["400", "429", "503", "504"])},
            "/api/sentiment/distribution": {"get": operation("Counts and percentages per sentiment and emotion (cached 60 s); the range is counted in whole minutes (from rounded down, to up)", distribution_params, ("200", envelope(json!({"type": "object"}))), &["400", "429", "503", "504"])},
            "/api/sentiment/aggregate": {"get": operation("Sentiment counts per time bucket, empty buckets included; each bucket counts its whole width (from rounded down, to up)", aggregate_params, ("200", envelope(json!({"type": "array", "items": {"type": "object"}}))), &["400", "429", "503", "504"])},
            "/api/alerts": {"get": operation("Raised alerts, newest first; details.drivers names the terms and entities that drove each (as in /api/insights/drivers: term, kind, score, count, baseline_count, share, baseline_share)", vec![limit(500), query("since", "Alerts triggered at or after (RFC 3339)", json!({"type": "string", "format": "date-time"}))], ("200", envelope(json!({"type": "array", "items": {"type": "object"}}))), &["400", "429", "503", "504"])},
            "/api/insights/drivers": {"get": operation("What drives a sentiment: the terms and entities whose share among the window's posts of that sentiment rose against the baseline by more than chance explains (weighted log-odds with an informative Dirichlet prior; the threshold is the Bonferroni bound over every term tested). Windows are counted in whole minutes (whole hours from six hours on); empty drivers means nothing stands out", drivers_params, ("200", envelope(json!({"$ref": "#/components/schemas/Drivers"}))), &["400", "429", "503", "504"])},
            "/api/insights/entities": {"get": operation("Per entity (catalogue products and brands, hashtags): posts by sentiment in the window and the baseline, and the change", entities_params, ("200", envelope(json!({"type": "object", "properties": {
                "window": {"$ref": "#/components/schemas/Window"},
                "baseline": {"$ref": "#/components/schemas/Window"},
                "entities": {"type": "array", "items": {"$ref": "#/components/schemas/EntitySentiment"}},
            }}))), &["400", "429", "503", "504"])},
            "/api/analyze": {"post": analyze},
            "/api/ws-ticket": {"post": ws_ticket},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {}}}}}},
        },
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key made by `pulse-store keys create`: pk_<id>_<secret>"},
        }, "schemas": {
            "Error": {"type": "object", "required": ["error", "code", "timestamp"], "properties": {
                "error": {"type": "string"}, "code": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
            }},
            "Post": {"type": "object", "properties": {
                "post_id": {"type": "string"}, "source": {"type": "string"}, "author": {"type": "string"},
                "content": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                "sentiment_label": {"type": "string", "nullable": true}, "confidence_score": {"type": "number", "nullable": true},
                "emotion": {"type": "string", "nullable": true}, "analyses": {"type": "array", "items": {"type": "object"}},
            }},
            "Window": window_schema,
            "SentimentCounts": counts_schema,
            "Drivers": drivers_schema,
            "EntitySentiment": entity_schema,
            "PublishResult": {"type": "object", "properties": {
                "post_id": {"type": "string"}, "accepted": {"type": "boolean"},
                "entry_id": {"type": "string", "nullable": true}, "error": {"type": "string", "nullable": true},
            }},
            "TaskResult": {"type": "object", "properties": {
                "label": {"type": "string"}, "score": {"type": "number"},
                "scores": {"type": "object", "additionalProperties": {"type": "number"}},
                "model": {"type": "string"}, "backend": {"type": "string", "enum": ["local", "llm", "unspecified"]},
                "timings": {"type": "object", "properties": {
                    "tokenization_us": {"type": "integer"}, "queue_us": {"type": "integer"}, "inference_us": {"type": "integer"},
                }},
            }},
        }},
    });
    // Public operations need no key; every other one can be refused for its key or scope.
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, operations) in paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            for operation in operations
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                if public {
                    operation["security"] = json!([]);
                } else if let Some(responses) = operation["responses"].as_object_mut() {
                    responses.extend(errors(&["401", "403"]));
                }
            }
        }
    }
    document
}

/// Whether `path` is a documented route under any method (for 405 versus 404).
pub fn is_known_path(path: &str) -> bool {
    ROUTES.iter().any(|(_, p)| *p == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_exactly_the_routes() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut routed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routed.sort();
        assert_eq!(documented, routed);
    }

    #[test]
    fn paging_by_cursor_and_the_export_cap_are_documented() {
        let doc = document();
        let names = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        };
        assert!(names("/api/posts").contains(&"cursor".to_owned()));
        assert!(names("/api/posts/export.csv").contains(&"limit".to_owned()));
        let metadata = &doc["paths"]["/api/posts"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["properties"]["metadata"];
        assert_eq!(metadata["properties"]["next_cursor"]["nullable"], true);
        let csv = &doc["paths"]["/api/posts/export.csv"]["get"]["responses"]["200"];
        assert!(csv["headers"]["X-Export-Row-Cap"].is_object());
    }

    #[test]
    fn keys_are_documented_where_needed() {
        let doc = document();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
        for (method, path) in ROUTES {
            let operation = &doc["paths"][path][method];
            let public = PUBLIC.contains(path);
            assert_eq!(
                operation["security"] == json!([]),
                public,
                "{method} {path}"
            );
            assert_eq!(
                operation["responses"]["401"].is_object(),
                !public,
                "{method} {path}"
            );
        }
    }
}
