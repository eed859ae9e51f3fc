//! The OpenAPI 3.1 document: what is not a route. Paths and the schemas they reference are
//! added by the router itself (`routes::router`), from the same list that routes them.

use serde_json::{Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Stride API", description = "Self-hostable fitness tracking."),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The error answers every operation can give, declared once in `components/responses` and
/// referenced from each operation that does not describe its own: 401 where the operation needs
/// a token, 503 and 504 everywhere (every route reads the database under the request's
/// deadline).
const COMMON_RESPONSES: [(&str, &str, &str, bool); 3] = [
    ("401", "Unauthenticated", "Missing, invalid or expired token", true),
    ("503", "Unavailable", "Database unavailable; see Retry-After where given", false),
    ("504", "DeadlineExceeded", "Deadline exceeded", false),
];

fn declare_common_responses(doc: &mut Value) {
    for (_, name, description, _) in COMMON_RESPONSES {
        doc["components"]["responses"][name] = json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
        });
    }
    let api_paths = doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.iter_mut());
    for (_, methods) in api_paths.filter(|(path, _)| path.starts_with("/api/")) {
        for operation in methods.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            let secured = operation.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            for (status, name, _, needs_token) in COMMON_RESPONSES {
                if (secured || !needs_token) && operation["responses"].get(status).is_none() {
                    operation["responses"][status] = json!({ "$ref": format!("#/components/responses/{name}") });
                }
            }
        }
    }
}

/// Writes every rule the server enforces into the served document, from the domain's own
/// constants and lists, so that the two cannot drift apart: what a schema-driven client (or a
/// fuzzer) reads as valid, the server accepts, and what it reads as invalid, the server refuses.
/// The derive macros cannot state rules computed at run time (the time zones), so the rules
/// are applied here, in one place, to the finished document.
pub(crate) fn state_the_rules(doc: &mut Value) {
    declare_common_responses(doc);
    use stride_domain::{
        DisplayName, Distance, MovingTime, Password, Sport, StartedAt, TimeZone, Title, Username, Visibility,
    };
    // A display name holds no control character and keeps a character other than the blanks
    // it is trimmed of. The blanks are spelled out, being exactly what Rust's `trim` removes
    // once control characters are refused: a regex `\s` differs by engine (ECMAScript counts
    // U+FEFF, Python's `re` does not), and the fuzzer found the gap such a difference leaves.
    // Control characters and the bidirectional overrides and isolates (`is_forbidden_in_text`).
    const CONTROL: &str = "\\u0000-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069";
    const BLANK: &str = " \\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    let display_name = json!({
        "minLength": 1,
        "maxLength": DisplayName::MAX_CHARS,
        "pattern": format!("^[^{CONTROL}]*[^{CONTROL}{BLANK}][^{CONTROL}]*$"),
    });
    let timezones: Vec<Value> = TimeZone::names().map(Value::from).collect();
    let sports: Vec<Value> = Sport::ALL.iter().map(|s| Value::from(s.as_str())).collect();
    let visibilities: Vec<Value> = Visibility::ALL.iter().map(|v| Value::from(v.as_str())).collect();
    let started_at = json!({
        "format": "date-time",
        // From 1900, with an offset, and never second 60 (a leap second). It must also be at
        // most one day after now, which no schema can say.
        "pattern": format!(
            "^(19|[2-9][0-9])[0-9]{{2}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-5][0-9](\\.[0-9]+)?(Z|[+-][0-9]{{2}}:[0-9]{{2}})$"
        ),
        "description": format!("RFC 3339 with an offset, from {} to one day after now; no leap second", StartedAt::EARLIEST_YEAR),
    });
    let activity = [
        ("sport", json!({ "enum": sports })),
        (
            "title",
            json!({
                "maxLength": Title::MAX_CHARS,
                "pattern": "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$",
            }),
        ),
        ("started_at", started_at),
        ("duration_s", json!({ "minimum": 1, "maximum": MovingTime::MAX_SECONDS })),
        ("distance_m", json!({ "minimum": 0, "maximum": Distance::MAX_METRES })),
        ("visibility", json!({ "enum": visibilities })),
        (
            "description",
            json!({
                "maxLength": stride_domain::Description::MAX_CHARS,
                "pattern": "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$",
            }),
        ),
        (
            "start_latlng",
            json!({
                "type": ["array", "null"],
                "prefixItems": [
                    { "type": "number", "minimum": -90, "maximum": 90 },
                    { "type": "number", "minimum": -180, "maximum": 180 },
                ],
                "items": false,
                "minItems": 2,
                "maxItems": 2,
            }),
        ),
    ];
    let rules: Vec<(&str, &str, Value)> = [
        (
            "RegisterRequest",
            "username",
            json!({ "pattern": format!("^[A-Za-z0-9_]{{{},{}}}$", Username::MIN_LEN, Username::MAX_LEN) }),
        ),
        ("RegisterRequest", "password", json!({ "minLength": Password::MIN_CHARS, "maxLength": Password::MAX_CHARS })),
        ("RegisterRequest", "display_name", display_name.clone()),
        ("RegisterRequest", "timezone", json!({ "enum": timezones })),
        ("UpdateMeRequest", "display_name", display_name),
        ("UpdateMeRequest", "timezone", json!({ "enum": timezones })),
        ("ZoneRequest", "lat", json!({ "minimum": -90, "maximum": 90 })),
        ("ZoneRequest", "lon", json!({ "minimum": -180, "maximum": 180 })),
        (
            "ZoneRequest",
            "radius_m",
            json!({ "minimum": stride_domain::PrivacyZone::MIN_RADIUS_M, "maximum": stride_domain::PrivacyZone::MAX_RADIUS_M }),
        ),
        ("ImportForm", "sport", json!({ "enum": sports })),
        ("ImportForm", "visibility", json!({ "enum": visibilities })),
    ]
    .into_iter()
    .chain(activity.iter().map(|(field, rule)| ("CreateActivityRequest", *field, rule.clone())))
    .chain(activity.iter().map(|(field, rule)| ("UpdateActivityRequest", *field, rule.clone())))
    .collect();
    for (schema, field, rule) in rules {
        let property = &mut doc["components"]["schemas"][schema]["properties"][field];
        let nullable = property["type"].as_array().is_some_and(|types| types.contains(&Value::from("null")));
        merge(property, rule);
        if nullable && let Some(values) = property.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    let operations = doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut());
    for operation in operations.flat_map(|methods| methods.as_object_mut().into_iter().flat_map(|m| m.values_mut())) {
        let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
        for parameter in parameters.into_iter().flatten() {
            match parameter["name"].as_str() {
                Some("limit") => {
                    // Optional (20 by default); the derive cannot tell, its field being text.
                    parameter["required"] = false.into();
                    merge(&mut parameter["schema"], json!({ "minimum": 1, "maximum": 100 }));
                }
                Some("weeks") => {
                    parameter["required"] = false.into();
                    merge(&mut parameter["schema"], json!({ "minimum": 1, "maximum": stride_services::MAX_WEEKS }));
                }
                Some("keys") => {
                    // Comma-separated stream keys, each one of the seven.
                    let key = "(time|latlng|altitude|distance|heartrate|cadence|power)";
                    merge(&mut parameter["schema"], json!({ "pattern": format!("^{key}(,{key})*$") }));
                }
                Some("resolution") => merge(&mut parameter["schema"], json!({ "enum": ["low", "medium", "high"] })),
                // Records need a sport; totals by period take one or none (empty is none).
                Some("sport") => {
                    let mut values = sports.clone();
                    if parameter["required"] != true {
                        values.push("".into());
                    }
                    merge(&mut parameter["schema"], json!({ "enum": values }));
                }
                Some("period") => merge(&mut parameter["schema"], json!({ "enum": ["month", "year", ""] })),
                Some("count") => {
                    parameter["required"] = false.into();
                    merge(&mut parameter["schema"], json!({ "minimum": 1, "maximum": stride_services::MAX_PERIODS }));
                }
                Some("Idempotency-Key") => {
                    merge(&mut parameter["schema"], json!({ "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }))
                }
                _ => {}
            }
        }
        // Every body is checked for its size before it is read and for its type before it is
        // parsed.
        if operation.get("requestBody").is_some() {
            let error = json!({
                "description": "",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
            });
            for (status, description) in [("413", "Body too large"), ("415", "Not JSON")] {
                let responses = &mut operation["responses"];
                if responses.get(status).is_none() {
                    let mut response = error.clone();
                    response["description"] = description.into();
                    responses[status] = response;
                }
            }
        }
    }
}

fn merge(target: &mut Value, rule: Value) {
    if let (Some(target), Value::Object(rule)) = (target.as_object_mut(), rule) {
        target.extend(rule);
    }
}
