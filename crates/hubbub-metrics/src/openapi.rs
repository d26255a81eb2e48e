//! The OpenAPI entries of `/api/metrics` and `/api/alerts`.

use serde_json::{json, Value};

/// `(paths, schemas)`.
pub(crate) fn fragment() -> (Value, Value) {
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let ok = |d: &str, schema: Value| json!({"description": d, "content": {"application/json": {"schema": schema}}});
    let metric = json!({"name": "metric", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,200}$"}});
    let window = json!({"name": "window", "in": "query", "required": false, "schema": {"type": "string", "enum": ["1m", "5m", "1h", "24h", "7d"], "default": "1h"}});
    let limit = |default: u64| json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": default}});
    let denied = || {
        [
            ("401", error("No or wrong credentials.")),
            ("403", error("Not allowed.")),
        ]
    };
    let with = |mut base: serde_json::Map<String, Value>| {
        for (k, v) in denied() {
            base.insert(k.into(), v);
        }
        Value::Object(base)
    };
    let map = |v: Value| match v {
        Value::Object(m) => m,
        _ => unreachable!("a literal object"),
    };
    let paths = json!({
        "/api/metrics": {"post": {
            "operationId": "recordMetrics",
            "tags": ["metrics"],
            "summary": "Records one value or a list of them; answered once they are readable.",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/MetricValue"},
                {"type": "array", "items": {"$ref": "#/components/schemas/MetricValue"}}
            ]}}}},
            "responses": with(map(json!({
                "202": ok("Recorded.", json!({"type": "object", "required": ["recorded"], "properties": {"recorded": {"type": "integer", "minimum": 0}}})),
                "400": error("An invalid value (the message names it); nothing of the batch was recorded."),
                "413": error("Body too large."),
                "429": error("limit_exceeded: the memory budget has no room for a new series.")
            })))
        }},
        "/api/metrics/summary": {"get": {
            "operationId": "metricsSummary",
            "tags": ["metrics"],
            "summary": "Every metric (by name, at most limit): last value and statistics over 1m, 5m, 1h.",
            "parameters": [limit(1000)],
            "responses": with(map(json!({
                "200": ok("The metrics.", json!({"type": "array", "items": {"$ref": "#/components/schemas/MetricSummary"}})),
                "400": error("An invalid parameter.")
            })))
        }},
        "/api/metrics/{metric}/statistics": {"get": {
            "operationId": "metricStatistics",
            "tags": ["metrics"],
            "summary": "Statistics of a metric over a window ending now.",
            "parameters": [metric, window],
            "responses": with(map(json!({
                "200": ok("The statistics.", json!({"$ref": "#/components/schemas/MetricStatistics"})),
                "400": error("An invalid parameter."),
                "404": error("No such metric.")
            })))
        }},
        "/api/metrics/{metric}/history": {"get": {
            "operationId": "metricHistory",
            "tags": ["metrics"],
            "summary": "A metric's values over a window ending now, downsampled to at most points.",
            "parameters": [metric, window, {"name": "points", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}],
            "responses": with(map(json!({
                "200": ok("Oldest first.", json!({"type": "array", "items": {"$ref": "#/components/schemas/MetricPoint"}})),
                "400": error("An invalid parameter."),
                "404": error("No such metric.")
            })))
        }},
        "/api/alerts": {"get": {
            "operationId": "alerts",
            "tags": ["metrics"],
            "summary": "The latest alerts, newest first.",
            "parameters": [limit(100)],
            "responses": with(map(json!({
                "200": ok("The alerts.", json!({"type": "array", "items": {"$ref": "#/components/schemas/AlertRecord"}})),
                "400": error("An invalid parameter.")
            })))
        }},
        "/api/alerts/rules": {"get": {
            "operationId": "alertRules",
            "tags": ["metrics"],
            "summary": "The alert rules set, by metric.",
            "responses": with(map(json!({
                "200": ok("The rules.", json!({"type": "array", "items": {"$ref": "#/components/schemas/AlertRule"}}))
            })))
        }},
        "/api/alerts/rules/{metric}": {"put": {
            "operationId": "setAlertRule",
            "tags": ["metrics"],
            "summary": "Sets a metric's threshold and z-score rule (replacing any).",
            "parameters": [metric],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertRuleBody"}}}},
            "responses": with(map(json!({
                "200": ok("The rule as stored.", json!({"$ref": "#/components/schemas/AlertRule"})),
                "400": error("An invalid rule: a bound not finite, below not under above, z_score not positive."),
                "413": error("Body too large."),
                "429": error("limit_exceeded: the memory budget has no room for a new rule.")
            })))
        }}
    });
    let num = json!({"type": "number", "nullable": true});
    let stats = json!({
        "type": "object",
        "required": ["count", "min", "max", "avg", "median", "stddev", "p95"],
        "properties": {"count": {"type": "integer", "minimum": 0}, "min": num, "max": num, "avg": num, "median": num, "stddev": num, "p95": num}
    });
    let point = json!({"type": "object", "required": ["timestamp", "value"], "properties": {"timestamp": {"type": "integer"}, "value": {"type": "number"}}});
    let rule_props = json!({"above": {"type": "number"}, "below": {"type": "number"}, "z_score": {"type": "number", "minimum": 0, "exclusiveMinimum": true}});
    let mut rule_named = map(rule_props.clone());
    rule_named.insert("metric".into(), json!({"type": "string"}));
    let schemas = json!({
        "MetricValue": {
            "type": "object",
            "required": ["metric", "value"],
            "additionalProperties": false,
            "properties": {
                "metric": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,200}$"},
                "value": {"type": "number"},
                "timestamp": {"type": "integer", "description": "ms since the Unix epoch; now when absent. Within the last 7 days and at most max_future_ms ahead."}
            }
        },
        "MetricStatistics": stats,
        "MetricPoint": point,
        "MetricSummary": {
            "type": "object",
            "required": ["metric", "last", "1m", "5m", "1h"],
            "properties": {
                "metric": {"type": "string"},
                "last": {"allOf": [{"$ref": "#/components/schemas/MetricPoint"}], "nullable": true},
                "1m": {"$ref": "#/components/schemas/MetricStatistics"},
                "5m": {"$ref": "#/components/schemas/MetricStatistics"},
                "1h": {"$ref": "#/components/schemas/MetricStatistics"}
            }
        },
        "AlertRuleBody": {"type": "object", "additionalProperties": false, "properties": rule_props},
        "AlertRule": {"type": "object", "required": ["metric", "z_score"], "properties": rule_named},
        "AlertRecord": {
            "type": "object",
            "required": ["timestamp", "type", "metric", "value", "severity"],
            "properties": {
                "timestamp": {"type": "integer"},
                "type": {"type": "string", "enum": ["threshold_exceeded", "anomaly_detected"]},
                "metric": {"type": "string"},
                "value": {"type": "number"},
                "threshold": {"type": "number"},
                "z_score": {"type": "number"},
                "severity": {"type": "string", "enum": ["low", "medium", "high"]}
            }
        }
    });
    (paths, schemas)
}
