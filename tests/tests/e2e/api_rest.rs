//! The REST API end to end: every endpoint and filter through the gateway, in the envelope,
//! with its error paths; paging by offset and by cursor; the CSV export and its row cap; the
//! OpenAPI document against the routes; request ids, CORS, gzip, rate limiting and the health
//! endpoint's 503.
//!
//! The request/response checks are tables of [`Case`]s: a request (method, path, query,
//! headers, body) and what its answer must be (status, error code, JSON, headers, text).
//! [`run_cases`] sends them in order and fails once, naming every case that did not pass and
//! how.

use std::{
    collections::{BTreeSet, HashSet},
    time::Duration,
};

use anyhow::ensure;
use chrono::{SecondsFormat, Utc};
use pulse_e2e::{Options, Platform};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

const POSITIVE: &str = "I absolutely love this phone, the camera is stunning";
const NEGATIVE: &str = "The update broke everything, worst release ever";
/// A text the CSV export must quote: quotes, commas and a line break.
const TRICKY: &str = "Arrived on Tuesday, \"as promised\", with commas\nand a second line";
/// A text that would be SQL if anything spliced it into a statement.
const INJECTION: &str = "'; DROP TABLE social_media_posts; --";

/// `EXPORT_MAX_ROWS` of the gateway under test: below the bulk posts, so the cap is reached.
const EXPORT_CAP: u32 = 1_100;

fn ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---- cases ------------------------------------------------------------------------------------

/// One request and what its answer must be.
struct Case {
    name: String,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, &'static str)>,
    body: Body,
    status: Status,
    checks: Vec<Check>,
}

enum Body {
    Empty,
    /// Sent as it is, as `application/json`.
    Json(String),
    /// Sent as it is, without a content type.
    Raw(&'static str),
    /// `chunks` chunks of `size` spaces, streamed without a Content-Length.
    Chunked {
        chunks: usize,
        size: usize,
    },
}

enum Status {
    Is(u16),
    /// Any 2xx.
    Success,
    /// Neither 404 nor 405: the path is routed, and for this method.
    Routed,
}

/// The answer to a case's request.
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    /// The body as JSON; `Null` when it is not JSON.
    json: Value,
}

/// What an answer must satisfy; the error says how it does not.
type Check = Box<dyn Fn(&Answer) -> Result<(), String> + Send + Sync>;

impl Case {
    fn new(method: Method, name: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            status: Status::Is(200),
            checks: Vec::new(),
        }
    }

    fn get(name: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Method::GET, name, path)
    }

    fn post(name: impl Into<String>, path: impl Into<String>, body: Body) -> Self {
        Self {
            body,
            ..Self::new(Method::POST, name, path)
        }
    }

    /// A query parameter, encoded by the client.
    fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The answer has status `status` and passes every check.
    fn expect(self, status: u16, checks: impl IntoIterator<Item = Check>) -> Self {
        self.expect_status(Status::Is(status), checks)
    }

    fn expect_status(mut self, status: Status, checks: impl IntoIterator<Item = Check>) -> Self {
        self.status = status;
        self.checks.extend(checks);
        self
    }

    /// The answer is the error envelope, with `status` and `code`.
    fn fails(self, status: u16, code: &'static str) -> Self {
        self.expect(status, error(code))
    }

    async fn send(&self, client: &reqwest::Client, base: &str) -> anyhow::Result<Answer> {
        let mut request = client.request(self.method.clone(), format!("{base}{}", self.path));
        if !self.query.is_empty() {
            request = request.query(&self.query);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, *value);
        }
        request = match &self.body {
            Body::Empty => request,
            Body::Json(text) => request
                .header("content-type", "application/json")
                .body(text.clone()),
            Body::Raw(text) => request.body(*text),
            &Body::Chunked { chunks, size } => {
                let chunks = futures::stream::iter(
                    (0..chunks).map(move |_| Ok::<_, std::io::Error>(vec![b' '; size])),
                );
                request.body(reqwest::Body::wrap_stream(chunks))
            }
        };
        Answer::read(request.send().await?).await
    }
}

impl Answer {
    async fn read(response: reqwest::Response) -> anyhow::Result<Self> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok(Self {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// How the answer differs from `status` and `checks`: every difference, none when it
    /// passes.
    fn problems(&self, status: &Status, checks: &[Check]) -> Vec<String> {
        let status_ok = match status {
            Status::Is(expected) => self.status == *expected,
            Status::Success => (200..300).contains(&self.status),
            Status::Routed => self.status != 404 && self.status != 405,
        };
        let mut problems = Vec::new();
        if !status_ok {
            let expected = match status {
                Status::Is(expected) => expected.to_string(),
                Status::Success => "2xx".into(),
                Status::Routed => "neither 404 nor 405".into(),
            };
            problems.push(format!(
                "status {}, expected {expected}: {}",
                self.status,
                self.excerpt()
            ));
        }
        problems.extend(checks.iter().filter_map(|check| check(self).err()));
        problems
    }

    fn excerpt(&self) -> String {
        shorten(&self.text)
    }
}

/// `text` cut to a few hundred characters, for a failure's message.
fn shorten(text: &str) -> String {
    const MOST: usize = 400;
    match text.char_indices().nth(MOST) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// Sends every case in order to `base` (`http://host:port`); fails once at the end, naming
/// each case whose answer was not as expected, and how.
async fn run_cases(client: &reqwest::Client, base: &str, cases: &[Case]) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for case in cases {
        let problems = match case.send(client, base).await {
            Ok(answer) => answer.problems(&case.status, &case.checks),
            Err(e) => vec![format!("no answer: {e:#}")],
        };
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    Ok(())
}

/// The JSON at `pointer` is `expected`.
fn at(pointer: &'static str, expected: impl Into<Value>) -> Check {
    let expected = expected.into();
    Box::new(move |answer| {
        let got = answer.json.pointer(pointer).unwrap_or(&Value::Null);
        if *got == expected {
            Ok(())
        } else {
            Err(format!(
                "{pointer} is {}, expected {expected}",
                shorten(&got.to_string())
            ))
        }
    })
}

/// `derive` of the JSON body is `expected` (`what` names what is derived).
fn derived(what: &'static str, derive: fn(&Value) -> Value, expected: Value) -> Check {
    Box::new(move |answer| {
        let got = derive(&answer.json);
        if got == expected {
            Ok(())
        } else {
            Err(format!("{what}: {got}, expected {expected}"))
        }
    })
}

/// The JSON at `pointer` satisfies `holds` (`what` says what it should be).
fn that(pointer: &'static str, what: &'static str, holds: fn(&Value) -> bool) -> Check {
    Box::new(move |answer| {
        let got = answer.json.pointer(pointer).unwrap_or(&Value::Null);
        if holds(got) {
            Ok(())
        } else {
            Err(format!(
                "{pointer} should be {what}, is {}",
                shorten(&got.to_string())
            ))
        }
    })
}

/// The body, as text, satisfies `holds`.
fn text(what: &'static str, holds: impl Fn(&str) -> bool + Send + Sync + 'static) -> Check {
    Box::new(move |answer| {
        if holds(&answer.text) {
            Ok(())
        } else {
            Err(format!("expected {what}: {}", answer.excerpt()))
        }
    })
}

/// Header `name` is there, and its value satisfies `holds`.
fn header(
    name: &'static str,
    what: &'static str,
    holds: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Check {
    Box::new(
        move |answer| match answer.headers.get(name).map(|v| v.to_str()) {
            Some(Ok(value)) if holds(value) => Ok(()),
            value => Err(format!("header {name} should be {what}, is {value:?}")),
        },
    )
}

/// The error envelope: `code`, a message and a timestamp.
fn error(code: &'static str) -> Vec<Check> {
    vec![
        at("/code", code),
        that("/error", "a message", Value::is_string),
        that("/timestamp", "a string", Value::is_string),
    ]
}

/// A stored post id without its publisher's namespace (`<key id>:`).
fn own_id(id: &str) -> &str {
    id.split_once(':').map_or(id, |(_, own)| own)
}

/// The publisher's own post ids of a ListPosts answer, in order.
fn post_ids(v: &Value) -> Value {
    v["data"]
        .as_array()
        .map(|posts| {
            posts
                .iter()
                .map(|p| json!(own_id(p["post_id"].as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default()
}

/// Pages through `/api/posts?{query}` by following `next_cursor` until it is null: the post ids
/// in the order received, and how many pages it took. Every page must report the same total.
async fn follow_cursors(
    client: &reqwest::Client,
    base: &str,
    query: &str,
) -> anyhow::Result<(Vec<String>, usize)> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut totals = BTreeSet::new();
    for page in 1..=100 {
        let mut request = client.get(format!("{base}/api/posts?{query}"));
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let answer = Answer::read(request.send().await?).await?;
        ensure!(
            answer.status == 200,
            "page {page} of {query}: {}",
            answer.excerpt()
        );
        let page_ids = post_ids(&answer.json);
        ids.extend(
            page_ids
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_owned)),
        );
        totals.insert(answer.json["metadata"]["total"].to_string());
        match &answer.json["metadata"]["next_cursor"] {
            Value::Null => {
                ensure!(totals.len() == 1, "totals differ between pages: {totals:?}");
                return Ok((ids, page));
            }
            Value::String(next) => cursor = Some(next.clone()),
            other => anyhow::bail!("page {page} of {query}: next_cursor is {other}"),
        }
    }
    anyhow::bail!("{query}: next_cursor never ended")
}

/// Parses RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// Whether a CSV export holds a row whose `content` is `content`.
fn exported(text: &str, content: &str) -> bool {
    let rows = parse_csv(text);
    let column = rows
        .first()
        .and_then(|header| header.iter().position(|c| c == "content"))
        .unwrap_or(0);
    rows.iter()
        .any(|r| r.get(column).is_some_and(|c| c == content))
}

// ---- the API with data -------------------------------------------------------------------------

/// Five posts and a bad one, published through the gateway.
fn publishing() -> Case {
    let body = json!({"posts": [
        {"post_id": "r-1", "source": "reddit", "author": "alice", "content": POSITIVE, "created_at": ago(5)},
        {"post_id": "r-2", "source": "reddit", "author": "bob", "content": NEGATIVE, "created_at": ago(4)},
        {"post_id": "t-1", "source": "twitter", "author": "alice", "content": TRICKY, "created_at": ago(3)},
        {"post_id": "t-2", "source": "twitter", "author": "carol", "content": "50%_off is the worst deal ever, terrible", "created_at": ago(2)},
        {"post_id": "t-3", "source": "twitter", "author": "dave", "content": INJECTION, "created_at": ago(1)},
        {"post_id": "bad id", "source": "twitter", "author": "eve", "content": "x"},
    ]});
    Case::post(
        "publish: per-item results, the bad item refused on its own",
        "/api/posts",
        Body::Json(body.to_string()),
    )
    .expect(
        200,
        [
            at("/metadata/accepted", 5),
            at("/metadata/rejected", 1),
            that(
                "/data",
                "6 results, the first 5 accepted with an entry id",
                |d| {
                    d.as_array().is_some_and(|results| {
                        results.len() == 6
                            && results[..5]
                                .iter()
                                .all(|r| r["accepted"] == true && r["entry_id"].is_string())
                    })
                },
            ),
            at("/data/5/accepted", false),
            // Stored under the publishing key's namespace: `<12 hex digits>:r-1`.
            that("/data/0/post_id", "r-1 in the key's namespace", |id| {
                id.as_str().is_some_and(|id| {
                    id.split_once(':').is_some_and(|(ns, own)| {
                        ns.len() == 12 && ns.bytes().all(|b| b.is_ascii_hexdigit()) && own == "r-1"
                    })
                })
            }),
            that("/data/5/error", "a reason", |e| {
                e.as_str().is_some_and(|e| !e.is_empty())
            }),
        ],
    )
}

/// Every read, filter and analysis of the API, once the five published posts are stored.
fn reads() -> Vec<Case> {
    let total = |n: u64| at("/metadata/total", n);
    let mut cases = vec![
        // ListPosts: envelope, newest first, honest total with limit/offset.
        Case::get("list: the envelope, newest first", "/api/posts").expect(
            200,
            [
                that("/timestamp", "a string", Value::is_string),
                that("/filters", "an object", Value::is_object),
                total(5),
                derived(
                    "post ids",
                    post_ids,
                    json!(["t-3", "t-2", "t-1", "r-2", "r-1"]),
                ),
            ],
        ),
        Case::get("list: a page", "/api/posts?limit=2&offset=3").expect(
            200,
            [
                total(5),
                at("/metadata/returned", 2),
                that("/data/0/post_id", "r-2, namespaced", |id| {
                    id.as_str().is_some_and(|id| own_id(id) == "r-2")
                }),
                that("/data/0/analyses", "not empty", |a| {
                    a.as_array().is_some_and(|a| !a.is_empty())
                }),
                // The last page: nothing after it.
                at("/metadata/next_cursor", Value::Null),
            ],
        ),
        Case::get("list: a page with more after it", "/api/posts?limit=2").expect(
            200,
            [
                at("/metadata/offset", 0),
                that("/metadata/next_cursor", "a URL-safe cursor", |c| {
                    c.as_str().is_some_and(|c| {
                        !c.is_empty()
                            && c.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
                }),
            ],
        ),
        Case::get(
            "list: exactly the last post on a full page is still the last page",
            "/api/posts?limit=5",
        )
        .expect(
            200,
            [
                at("/metadata/returned", 5),
                at("/metadata/next_cursor", Value::Null),
            ],
        ),
    ];

    // Every filter.
    for (query, expected) in [
        ("source=reddit".to_owned(), 2),
        ("author=alice".to_owned(), 2),
        ("search=ARRIVED%20on".to_owned(), 1),
        ("search=50%25_off".to_owned(), 1),
        ("search=50%25_x".to_owned(), 0),
        ("emotion=no-such-emotion".to_owned(), 0),
        ("sentiment=positive&source=reddit".to_owned(), 1),
        ("sentiment=negative&source=reddit".to_owned(), 1),
        (
            format!("from={}&to={}", ago(3).replace('+', "%2B"), ago(1)),
            2,
        ),
    ] {
        cases.push(
            Case::get(format!("filter {query}"), format!("/api/posts?{query}"))
                .expect(200, [total(expected)]),
        );
    }
    cases.extend([
        Case::get("filter emotion=JOY", "/api/posts?emotion=JOY").expect(
            200,
            [that("/data", "joyful posts only", |d| {
                d.as_array()
                    .is_some_and(|d| d.iter().all(|p| p["emotion"] == "joy"))
            })],
        ),
        Case::get("filter sentiment=negative", "/api/posts?sentiment=negative").expect(
            200,
            [
                that("/data", "negative posts only", |d| {
                    d.as_array()
                        .is_some_and(|d| d.iter().all(|p| p["sentiment_label"] == "negative"))
                }),
                at("/filters/sentiment", "negative"),
            ],
        ),
        // SQL injection is data: it matches as text (and nothing changes, checked after).
        Case::get("filter: injection in search and author", "/api/posts")
            .query("search", INJECTION)
            .query("author", "dave' OR '1'='1")
            .expect(200, [total(0)]),
        Case::get("filter: injection text is found as text", "/api/posts")
            .query("search", INJECTION)
            .expect(200, [total(1)]),
        // Distribution (per source on request) and aggregate buckets without gaps.
        Case::get(
            "distribution by source",
            "/api/sentiment/distribution?by_source=true",
        )
        .expect(
            200,
            [
                at("/data/total", 5),
                that("/data/sentiment", "percentages summing to 100", |s| {
                    let shares: f64 = s
                        .as_array()
                        .map(|s| s.iter().filter_map(|c| c["percentage"].as_f64()).sum())
                        .unwrap_or_default();
                    (shares - 100.0).abs() < 1e-6
                }),
                derived(
                    "the sources",
                    |v| {
                        let sources: BTreeSet<&str> = v["data"]["sources"]
                            .as_array()
                            .map(|s| s.iter().filter_map(|s| s["source"].as_str()).collect())
                            .unwrap_or_default();
                        json!(sources)
                    },
                    json!(["reddit", "twitter"]),
                ),
            ],
        ),
        Case::get(
            "distribution of one source",
            "/api/sentiment/distribution?source=reddit",
        )
        .expect(200, [at("/data/total", 2)]),
        Case::get(
            "aggregate by minute",
            format!("/api/sentiment/aggregate?bucket=minute&from={}", ago(10)),
        )
        .expect(
            200,
            [
                that("/data", "a bucket per minute, 10 or more", |b| {
                    b.as_array().is_some_and(|b| b.len() >= 10)
                }),
                derived(
                    "posts in all buckets",
                    |v| {
                        let buckets = v["data"].as_array().map(Vec::as_slice).unwrap_or_default();
                        json!(
                            buckets
                                .iter()
                                .filter_map(|b| b["total"].as_u64())
                                .sum::<u64>()
                        )
                    },
                    json!(5),
                ),
                that("/data", "with an empty bucket, not a gap", |b| {
                    b.as_array()
                        .is_some_and(|b| b.iter().any(|b| b["total"] == 0))
                }),
            ],
        ),
        Case::get("alerts: none", "/api/alerts?limit=10").expect(200, [at("/data", json!([]))]),
        // Ad-hoc analysis.
        Case::post(
            "analyze: sentiment",
            "/api/analyze",
            Body::Json(json!({"text": POSITIVE, "tasks": ["sentiment"]}).to_string()),
        )
        .expect(
            200,
            [
                at("/data/sentiment/label", "positive"),
                that("/data/sentiment/score", "over 0.5", |s| {
                    s.as_f64().is_some_and(|s| s > 0.5)
                }),
                that("/data/sentiment/scores", "a score per label", |s| {
                    s.as_object().is_some_and(|s| s.len() >= 2)
                }),
                that("/data/sentiment/model", "a name", |m| {
                    m.as_str().is_some_and(|m| !m.is_empty())
                }),
                at("/data/sentiment/backend", "local"),
                that(
                    "/data/sentiment/timings/inference_us",
                    "microseconds",
                    Value::is_u64,
                ),
            ],
        ),
        Case::post(
            "analyze: the default tasks",
            "/api/analyze",
            Body::Json(json!({"text": NEGATIVE}).to_string()),
        )
        .expect(200, [at("/data/sentiment/label", "negative")]),
    ]);
    cases
}

/// Bad input: a code for each (and nothing stored, checked after).
fn bad_input() -> Vec<Case> {
    let mut cases = Vec::new();
    for (path, status, code) in [
        ("/api/posts?colour=red", 400, "UNKNOWN_PARAMETER"),
        ("/api/posts?limit=0", 400, "OUT_OF_RANGE"),
        ("/api/posts?limit=501", 400, "OUT_OF_RANGE"),
        ("/api/posts?offset=-1", 400, "OUT_OF_RANGE"),
        ("/api/posts?from=2026-13-45", 400, "INVALID_DATE"),
        (
            "/api/posts?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "INVALID_RANGE",
        ),
        (
            "/api/sentiment/distribution?by_source=maybe",
            400,
            "INVALID_PARAMETER",
        ),
        (
            "/api/sentiment/aggregate?bucket=week",
            400,
            "INVALID_PARAMETER",
        ),
        ("/api/alerts?since=now", 400, "INVALID_DATE"),
        ("/api/alerts?limit=100000", 400, "OUT_OF_RANGE"),
        (
            "/api/posts/export.csv?sentiment=angry",
            400,
            "INVALID_PARAMETER",
        ),
        ("/api/posts/export.csv?limit=0", 400, "OUT_OF_RANGE"),
        ("/api/posts/export.csv?limit=1101", 400, "OUT_OF_RANGE"),
        ("/api/analyze", 405, "METHOD_NOT_ALLOWED"),
        ("/api/nope", 404, "NOT_FOUND"),
        (
            "/api/insights/drivers?sentiment=angry",
            400,
            "INVALID_PARAMETER",
        ),
        (
            "/api/insights/drivers?baseline=1w",
            400,
            "INVALID_PARAMETER",
        ),
        ("/api/insights/drivers?limit=51", 400, "OUT_OF_RANGE"),
        (
            "/api/insights/drivers?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/api/insights/entities?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "INVALID_RANGE",
        ),
        (
            "/api/insights/entities?source=twitter",
            400,
            "UNKNOWN_PARAMETER",
        ),
    ] {
        cases.push(Case::get(format!("bad input: GET {path}"), path).fails(status, code));
    }
    // Cursors: malformed (refused by its shape here, or by analytics, which reads it), or
    // combined with an offset; each message names the parameter.
    let names_cursor = || {
        that("/error", "a message naming cursor", |e| {
            e.as_str().is_some_and(|m| m.contains("cursor"))
        })
    };
    for (name, cursor, offset) in [
        ("a cursor not in base64", "a+b/c", None),
        ("a cursor of an unknown version", "not-a-cursor", None),
        ("a cursor too short", "AQ", None),
        ("a cursor of 300 characters", &*"A".repeat(300), None),
        ("a cursor and an offset", "AQAAAAAAAAAAYQ", Some("0")),
    ] {
        let mut case =
            Case::get(format!("bad input: {name}"), "/api/posts").query("cursor", cursor);
        if let Some(offset) = offset {
            case = case.query("offset", offset);
        }
        cases.push(
            case.expect(
                400,
                error("INVALID_ARGUMENT")
                    .into_iter()
                    .chain([names_cursor()]),
            ),
        );
    }
    cases.push(
        Case::get("bad input: a search of 10,000 characters", "/api/posts")
            .query("search", "x".repeat(10_000))
            .fails(400, "PARAMETER_TOO_LONG"),
    );
    for (name, path, body, code) in [
        ("analyze: not JSON", "/api/analyze", "{not json".to_owned(), "INVALID_BODY"),
        ("analyze: an unknown field", "/api/analyze", json!({"text": "x", "extra": 1}).to_string(), "INVALID_BODY"),
        ("analyze: no text", "/api/analyze", json!({}).to_string(), "INVALID_BODY"),
        ("analyze: a blank text", "/api/analyze", json!({"text": "  "}).to_string(), "INVALID_PARAMETER"),
        ("analyze: an unknown task", "/api/analyze", json!({"text": "x", "tasks": ["summary"]}).to_string(), "INVALID_PARAMETER"),
        ("analyze: a text too long", "/api/analyze", json!({"text": "x".repeat(6_000)}).to_string(), "PARAMETER_TOO_LONG"),
        ("publish: no posts", "/api/posts", json!({"posts": []}).to_string(), "OUT_OF_RANGE"),
        ("publish: a bad created_at", "/api/posts", json!({"posts": [{"source": "a", "author": "b", "content": "c", "created_at": "soon"}]}).to_string(), "INVALID_DATE"),
        ("publish: a body over the limit", "/api/posts", json!({"posts": [{"source": "a", "author": "b", "content": "x".repeat(2_000_000)}]}).to_string(), "BODY_TOO_LARGE"),
    ] {
        // A body over the limit is refused before it is read: no other request may follow
        // on its connection while the client is still writing it.
        cases.push(
            Case::post(format!("bad input: {name}"), path, Body::Json(body))
                .header("connection", "close")
                .fails(400, code),
        );
    }
    // A chunked body (no Content-Length) over the limit is refused the same way.
    cases.push(
        Case::post(
            "bad input: publish: a chunked body over the limit",
            "/api/posts",
            Body::Chunked {
                chunks: 40,
                size: 64 * 1024,
            },
        )
        .header("connection", "close")
        .fails(400, "BODY_TOO_LARGE"),
    );
    cases
}

/// The CSV export and the headers: request ids, CORS and gzip.
fn exports_and_headers() -> Vec<Case> {
    vec![
        // CSV export: streamed, quoted, an attachment, the same filters.
        Case::get("export: CSV", "/api/posts/export.csv?source=twitter").expect(
            200,
            [
                header("content-type", "CSV", |v| v.starts_with("text/csv")),
                header("content-disposition", "an attachment", |v| {
                    v.starts_with("attachment; filename=")
                }),
                header("x-export-row-cap", "EXPORT_MAX_ROWS", |v| {
                    v == EXPORT_CAP.to_string()
                }),
                header("x-total-count", "3", |v| v == "3"),
                text("a header and the 3 twitter posts", |t| {
                    parse_csv(t).len() == 4
                }),
                text("post_id first", |t| {
                    parse_csv(t)
                        .first()
                        .and_then(|header| header.first())
                        .is_some_and(|c| c == "post_id")
                }),
                text("rows as wide as the header", |t| {
                    let rows = parse_csv(t);
                    rows.iter().all(|r| r.len() == rows[0].len())
                }),
                text("the quoted text as it was", |t| exported(t, TRICKY)),
                text("the injection text as it was", |t| exported(t, INJECTION)),
            ],
        ),
        // Request ids: generated, or kept when well-formed.
        Case::get("request id: generated", "/api/alerts").expect(
            200,
            [header("x-request-id", "a UUID", |v| {
                uuid::Uuid::parse_str(v).is_ok()
            })],
        ),
        Case::get("request id: a well-formed one is kept", "/api/nope")
            .header("x-request-id", "trace-abc.123")
            .expect(
                404,
                [header("x-request-id", "the caller's", |v| {
                    v == "trace-abc.123"
                })],
            ),
        Case::get("request id: a malformed one is replaced", "/api/nope")
            .header("x-request-id", "bad id<script>")
            .expect(
                404,
                [header("x-request-id", "a new one", |v| {
                    !v.is_empty() && v != "bad id<script>"
                })],
            ),
        // CORS preflight of a listed origin, with the key's header, and gzip.
        Case::new(Method::OPTIONS, "CORS preflight", "/api/posts")
            .header("origin", "https://dashboard.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .expect_status(
                Status::Success,
                [header("access-control-allow-origin", "that origin", |v| {
                    v == "https://dashboard.example"
                })],
            ),
        Case::get("gzip", "/api/posts")
            .header("accept-encoding", "gzip")
            .expect(200, [header("content-encoding", "gzip", |v| v == "gzip")]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_filter_and_error_path() -> anyhow::Result<()> {
    let platform = Platform::start(
        "api",
        Options {
            gateway_config: |config| {
                config.export_max_rows = EXPORT_CAP;
                config.cors_allowed_origins = "https://dashboard.example".into();
            },
            ..Options::default()
        },
    )
    .await?;
    let client = platform.http()?;
    let base = platform.gateway_url("");

    run_cases(&client, &base, &[publishing()]).await?;
    Platform::wait_until(Duration::from_secs(60), || async {
        Ok(platform.counts().await? == (5, 5))
    })
    .await?;
    run_cases(&client, &base, &reads()).await?;
    // Following next_cursor from the first page to the last: every post once, in order.
    let (ids, pages) = follow_cursors(&client, &base, "limit=2").await?;
    assert_eq!(ids, ["t-3", "t-2", "t-1", "r-2", "r-1"]);
    assert_eq!(pages, 3);
    let (ids, pages) = follow_cursors(&client, &base, "limit=1&source=twitter").await?;
    assert_eq!(ids, ["t-3", "t-2", "t-1"]);
    assert_eq!(pages, 3);
    run_cases(&client, &base, &bad_input()).await?;
    // Neither the injection nor any bad input stored or changed anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(platform.counts().await?, (5, 5));
    run_cases(&client, &base, &exports_and_headers()).await?;

    // Many pages: rows written straight to the database, exported without gaps or repeats.
    let extra: usize = 1_234;
    {
        let pool = pulse_store::connect_pool(&platform.database.url, 1)?;
        let mut db = pool.get().await?;
        let created = Utc::now() - chrono::Duration::hours(1);
        let posts: Vec<pulse_domain::Post> = (0..extra)
            .map(|i| pulse_domain::Post {
                post_id: format!("bulk-{i}"),
                source: "bulk".into(),
                author: "loader".into(),
                content: format!("bulk post {i}, \"quoted\""),
                created_at: created + chrono::Duration::milliseconds(i as i64),
            })
            .collect();
        let analyses: Vec<pulse_domain::Analysis> = posts
            .iter()
            .map(|p| pulse_domain::Analysis {
                post_id: p.post_id.clone(),
                model_name: "test-model".into(),
                sentiment_label: "neutral".into(),
                confidence_score: 0.9,
                emotion: None,
                emotion_score: None,
                emotion_model: None,
                analyzed_at: Utc::now(),
            })
            .collect();
        pulse_store::posts::insert_analysed(&mut db, &posts, &analyses).await?;
    }
    // Newest first: bulk-1233 down to bulk-0.
    let newest = move |n: usize| -> Vec<String> {
        (0..extra)
            .rev()
            .take(n)
            .map(|i| format!("bulk-{i}"))
            .collect()
    };
    let (ids, pages) = follow_cursors(&client, &base, "limit=500&source=bulk").await?;
    ensure!(
        ids == newest(extra) && pages == 3,
        "by cursor: {pages} pages, {} posts",
        ids.len()
    );
    // The export: pages by cursor, ends at the cap (1,100 of 1,234) or at a lower limit, each
    // time with the newest posts in order and none twice.
    let exported_ids = |t: &str| -> Vec<String> {
        parse_csv(t)
            .into_iter()
            .skip(1)
            .filter_map(|r| r.into_iter().next())
            .collect()
    };
    let capped = newest(EXPORT_CAP as usize);
    let bulk = vec![
        Case::get(
            "export: many pages, cut at the cap",
            "/api/posts/export.csv?source=bulk",
        )
        .expect(
            200,
            [
                header("x-export-row-cap", "EXPORT_MAX_ROWS", |v| {
                    v == EXPORT_CAP.to_string()
                }),
                header("x-total-count", "every bulk post", move |v| {
                    v == extra.to_string()
                }),
                text(
                    "the newest posts up to the cap, in order, once each",
                    move |t| exported_ids(t) == capped,
                ),
            ],
        ),
        Case::get(
            "export: a limit under the cap",
            "/api/posts/export.csv?source=bulk&limit=600",
        )
        .expect(
            200,
            [
                header("x-export-row-cap", "the limit", |v| v == "600"),
                text("the newest 600 posts, in order", move |t| {
                    exported_ids(t) == newest(600)
                }),
            ],
        ),
    ];
    run_cases(&client, &base, &bulk).await?;

    // The OpenAPI document: every documented operation is routed (never the catch-all).
    let doc = Case::get("the OpenAPI document", "/api/openapi.json")
        .send(&client, &base)
        .await?;
    ensure!(doc.status == 200, "{}", doc.excerpt());
    assert_eq!(doc.json["openapi"], "3.0.3");
    let paths = doc.json["paths"].as_object().cloned().unwrap_or_default();
    let mut documented = Vec::new();
    for (path, operations) in &paths {
        for method in operations.as_object().into_iter().flat_map(|o| o.keys()) {
            let case = match method.as_str() {
                "get" => Case::get(format!("documented: get {path}"), path),
                "post" => Case::post(format!("documented: post {path}"), path, Body::Raw("{}")),
                other => anyhow::bail!("undocumented method {other}"),
            };
            documented.push(case.expect_status(Status::Routed, []));
        }
    }
    run_cases(&client, &base, &documented).await?;
    assert_eq!(documented.len(), pulse_gateway::openapi::ROUTES.len());
    for (method, path) in pulse_gateway::openapi::ROUTES {
        assert!(
            paths.get(*path).is_some_and(|p| p.get(*method).is_some()),
            "{method} {path}"
        );
    }

    platform.shutdown().await
}

/// Only a gateway, in front of services that are not there: the rate limiter, CORS, and
/// health's 503 when analytics (and so the database) cannot be reached. Reads are public here,
/// so no key (and no database of keys) is needed to reach the missing analytics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_unhealthy_dependencies() -> anyhow::Result<()> {
    use clap::Parser;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let prefix = pulse_testkit::unique_name("ratelimit");
    let mut config = pulse_gateway::Config::parse_from(["pulse-gateway"]);
    config.addr = addr;
    config.admin.addr = Some("127.0.0.1:0".parse()?);
    // Port 9 (discard) is closed on loopback: every upstream is unreachable.
    config.analytics_url = "http://127.0.0.1:9".into();
    config.inference.url = "http://127.0.0.1:9".into();
    config.ingester_url = "http://127.0.0.1:9".into();
    config.upstream_timeout = Duration::from_secs(1);
    config.redis.url = pulse_settings::ConnectionUrl::new(pulse_testkit::redis_url());
    config.redis.prefix.clone_from(&prefix);
    config.rate_limit_requests = 5;
    config.rate_limit_window = Duration::from_secs(60);
    config.cors_allowed_origins = "https://dashboard.example".into();
    config.public_reads = true;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        pulse_gateway::serve(&config, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let url = |path: &str| format!("{base}{path}");
    pulse_e2e::Platform::wait_until(Duration::from_secs(10), || async {
        Ok(client.get(url("/healthz")).send().await.is_ok())
    })
    .await?;

    // Four requests of the five the window allows.
    run_cases(
        &client,
        &base,
        &[
            Case::get("health without the database", "/api/health").expect(
                503,
                [
                    at("/data/status", "unhealthy"),
                    at("/data/dependencies/database", "unreachable"),
                ],
            ),
            Case::get("posts without analytics", "/api/posts").fails(503, "SERVICE_UNAVAILABLE"),
            // A disallowed origin is refused; an allowed one gets the header.
            Case::get("a foreign origin", "/api/openapi.json")
                .header("origin", "https://evil.example")
                .fails(403, "CORS_FORBIDDEN"),
            Case::get("the dashboard's origin", "/api/openapi.json")
                .header("origin", "https://dashboard.example")
                .expect(
                    200,
                    [header("access-control-allow-origin", "that origin", |v| {
                        v == "https://dashboard.example"
                    })],
                ),
        ],
    )
    .await?;

    // At most 5 requests per window: within a few more, one is refused.
    let mut limited = None;
    for _ in 0..6 {
        let response = client.get(url("/api/openapi.json")).send().await?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = limited.ok_or_else(|| anyhow::anyhow!("never rate limited"))?;
    let mut checks = error("RATE_LIMITED");
    checks.push(header("retry-after", "1 to 60 seconds", |v| {
        v.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))
    }));
    let problems = Answer::read(limited)
        .await?
        .problems(&Status::Is(429), &checks);
    ensure!(
        problems.is_empty(),
        "over the limit: {}",
        problems.join("; ")
    );
    // Probes and the dashboard are not limited.
    assert_eq!(
        client.get(url("/healthz")).send().await?.status(),
        StatusCode::OK
    );

    let _ = stop.send(());
    server.await??;
    pulse_testkit::delete_redis_keys(&prefix).await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws, timeout: Duration) -> anyhow::Result<Option<Value>> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await else {
            return Ok(None);
        };
        let Some(message) = next else {
            return Ok(None);
        };
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message? {
            return Ok(Some(serde_json::from_str(&text)?));
        }
    }
}

/// Sends a text message and returns the first reply of type `want`.
async fn request(ws: &mut Ws, text: &str, want: &str) -> anyhow::Result<Value> {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        text.to_owned(),
    ))
    .await?;
    while let Some(v) = next_json(ws, Duration::from_secs(5)).await? {
        if v["type"] == want {
            return Ok(v);
        }
    }
    anyhow::bail!("no {want} reply to {text}")
}

/// Post ids of the new_post messages that arrive within `timeout`.
async fn new_posts(ws: &mut Ws, timeout: Duration) -> anyhow::Result<HashSet<String>> {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(v) = next_json(ws, left).await? else {
            return Ok(seen);
        };
        if v["type"] == "new_post" {
            seen.insert(own_id(v["data"]["post_id"].as_str().unwrap_or_default()).to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_clients_receive_live_events_through_their_filters() -> anyhow::Result<()> {
    let platform = Platform::start("apiws", Options::default()).await?;
    let mut everything = tokio_tungstenite::connect_async(platform.ws_request()?)
        .await?
        .0;
    let mut reddit = tokio_tungstenite::connect_async(platform.ws_request()?)
        .await?
        .0;
    let mut negative = tokio_tungstenite::connect_async(platform.ws_request()?)
        .await?
        .0;
    for ws in [&mut everything, &mut reddit, &mut negative] {
        let hello = next_json(ws, Duration::from_secs(5)).await?;
        assert_eq!(hello.map(|h| h["type"].clone()), Some(json!("connected")));
    }
    let pong = request(&mut everything, r#"{"type":"ping"}"#, "pong").await?;
    assert!(pong["timestamp"].is_string());
    let error = request(
        &mut reddit,
        r#"{"type":"subscribe","sentiment":"furious"}"#,
        "error",
    )
    .await?;
    assert_eq!(error["data"]["code"], "INVALID_MESSAGE");
    let ok = request(
        &mut reddit,
        r#"{"type":"subscribe","source":"reddit"}"#,
        "subscribed",
    )
    .await?;
    assert_eq!(ok["data"]["source"], "reddit");
    request(
        &mut negative,
        r#"{"type":"subscribe","sentiment":"negative"}"#,
        "subscribed",
    )
    .await?;

    // The feed is live once a first post reaches the unfiltered client.
    let client = platform.http()?;
    let publish = |posts: Value| {
        let client = client.clone();
        let url = platform.gateway_url("/api/posts");
        async move {
            client
                .post(url)
                .json(&json!({ "posts": posts }))
                .send()
                .await?
                .error_for_status()?;
            anyhow::Ok(())
        }
    };
    for attempt in 0..20 {
        publish(json!([{"post_id": format!("warm-{attempt}"), "source": "warmup", "author": "t", "content": "Warming up"}])).await?;
        if !new_posts(&mut everything, Duration::from_secs(2))
            .await?
            .is_empty()
        {
            break;
        }
    }
    publish(json!([
        {"post_id": "ws-r-pos", "source": "reddit", "author": "a", "content": POSITIVE},
        {"post_id": "ws-r-neg", "source": "reddit", "author": "a", "content": NEGATIVE},
        {"post_id": "ws-t-pos", "source": "twitter", "author": "a", "content": POSITIVE},
        {"post_id": "ws-t-neg", "source": "twitter", "author": "a", "content": NEGATIVE},
    ]))
    .await?;
    let wanted: HashSet<String> = ["ws-r-pos", "ws-r-neg", "ws-t-pos", "ws-t-neg"]
        .map(String::from)
        .into();
    let all = new_posts(&mut everything, Duration::from_secs(20)).await?;
    assert!(wanted.is_subset(&all), "{all:?}");
    let only = |seen: HashSet<String>| -> HashSet<String> {
        seen.into_iter()
            .filter(|id| id.starts_with("ws-"))
            .collect()
    };
    assert_eq!(
        only(new_posts(&mut reddit, Duration::from_secs(3)).await?),
        ["ws-r-pos", "ws-r-neg"].map(String::from).into()
    );
    assert_eq!(
        only(new_posts(&mut negative, Duration::from_secs(3)).await?),
        ["ws-r-neg", "ws-t-neg"].map(String::from).into()
    );
    platform.shutdown().await
}
