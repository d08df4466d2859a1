//! Checks of template.yaml that the linters do not make: runtime and architecture spelled right,
//! every function built from a crate of this workspace, the API's routes exactly the router's, and
//! the table's keys exactly the store's.

use std::collections::BTreeSet;

use serde_norway::Value;

fn template() -> Value {
    serde_norway::from_str(&std::fs::read_to_string(harness::paths::template()).unwrap()).unwrap()
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    let resources = t["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| (name.as_str().unwrap().to_owned(), r))
        .collect()
}

/// A function property, or the Globals' value for it.
fn property<'a>(t: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    match &function["Properties"][name] {
        Value::Null => &t["Globals"]["Function"][name],
        v => v,
    }
}

/// The logical id of the resource whose `Arn` this value takes, in any spelling of GetAtt:
/// `!GetAtt X.Arn`, `!GetAtt [X, Arn]`, `Fn::GetAtt: X.Arn` or `Fn::GetAtt: [X, Arn]`.
/// serde_norway keeps a short-form intrinsic as `Value::Tagged`, whose tag compares equal
/// with or without the leading `!`.
fn get_att_arn(v: &Value) -> Option<&str> {
    let args = match v {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => &tagged.value,
        Value::Mapping(_) => v.get("Fn::GetAtt")?,
        _ => return None,
    };
    match args {
        Value::String(s) => s.strip_suffix(".Arn"),
        Value::Sequence(parts) => match parts.as_slice() {
            [resource, attribute] if attribute.as_str() == Some("Arn") => resource.as_str(),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn every_function_runs_a_workspace_binary_on_al2023_arm64_with_limits_and_tracing() {
    let t = template();
    let fns = functions(&t);
    assert!(!fns.is_empty());
    for (name, f) in fns {
        assert_eq!(property(&t, f, "Runtime"), "provided.al2023", "{name}");
        assert_eq!(property(&t, f, "Architectures")[0], "arm64", "{name}");
        assert_eq!(property(&t, f, "Handler"), "bootstrap", "{name}");
        assert_eq!(property(&t, f, "Tracing"), "Active", "{name}");
        assert!(f["Properties"]["MemorySize"].is_number(), "{name}: MemorySize");
        assert!(f["Properties"]["Timeout"].is_number(), "{name}: Timeout");
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let crate_dir = harness::paths::workspace_root().join("functions").join(binary);
        assert!(crate_dir.join("Cargo.toml").exists(), "{name}: no crate functions/{binary}");
    }
}

/// Each route, with the scopes API Gateway's authorizer accepts for it: exactly the route table's.
#[test]
fn the_api_routes_and_their_scopes_are_exactly_the_routers() {
    let t = template();
    let mut routes = BTreeSet::new();
    for (_, f) in functions(&t) {
        let Some(events) = f["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"] == "HttpApi" {
                let p = &event["Properties"];
                let scopes: Vec<String> = p["Auth"]["AuthorizationScopes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect();
                routes.insert((
                    p["Method"].as_str().unwrap().to_uppercase(),
                    p["Path"].as_str().unwrap().to_owned(),
                    scopes,
                ));
            }
        }
    }
    let router: BTreeSet<_> = ledger_http::scoped_routes()
        .iter()
        .map(|(m, p, scope)| (m.to_string(), p.to_string(), scope.names().map(String::from).to_vec()))
        .collect();
    assert_eq!(routes, router);
}

#[test]
fn the_table_has_the_keys_and_index_the_store_uses() {
    use ledger_dynamodb::keys;
    let table =
        harness::template::table(&harness::paths::template(), harness::emulated::LEDGER_TABLE).unwrap();
    let schema: Vec<_> =
        table.key_schema.iter().map(|k| (k.attribute_name.as_str(), k.key_type.as_str())).collect();
    assert_eq!(schema, vec![(keys::PK, "HASH"), (keys::SK, "RANGE")]);
    let index = table.global_secondary_indexes.iter().find(|i| i.index_name == keys::GSI1).unwrap();
    let schema: Vec<_> =
        index.key_schema.iter().map(|k| (k.attribute_name.as_str(), k.key_type.as_str())).collect();
    assert_eq!(schema, vec![(keys::GSI1_PK, "HASH"), (keys::GSI1_SK, "RANGE")]);
    assert_eq!(index.projection.projection_type, "ALL");
}

/// The linters accept a misspelled `ReportBatchItemFailure` (then one bad record makes the
/// whole batch be retried), an unbounded poller, and a queue whose visibility timeout is shorter
/// than the function's run (then messages are redelivered while still being processed).
#[test]
fn sqs_event_sources_report_batch_item_failures_and_fit_the_visibility_timeout() {
    let t = template();
    let mut sqs_events = 0;
    for (name, f) in functions(&t) {
        let Some(events) = f["Properties"]["Events"].as_mapping() else { continue };
        for (event_name, event) in events {
            if event["Type"] != "SQS" {
                continue;
            }
            sqs_events += 1;
            let what = format!("{name}/{}", event_name.as_str().unwrap_or("?"));
            let p = &event["Properties"];

            let response_types: Vec<Option<&str>> = p["FunctionResponseTypes"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{what}: no FunctionResponseTypes"))
                .iter()
                .map(Value::as_str)
                .collect();
            assert_eq!(response_types, vec![Some("ReportBatchItemFailures")], "{what}");
            assert!(p["BatchSize"].is_u64(), "{what}: BatchSize");
            assert!(
                p["ScalingConfig"]["MaximumConcurrency"].is_u64(),
                "{what}: ScalingConfig.MaximumConcurrency"
            );

            let queue_id = get_att_arn(&p["Queue"])
                .unwrap_or_else(|| panic!("{what}: Queue is not a GetAtt Arn: {:?}", p["Queue"]));
            let queue = &t["Resources"][queue_id];
            assert_eq!(queue["Type"], "AWS::SQS::Queue", "{what}: {queue_id}");
            let visibility = queue["Properties"]["VisibilityTimeout"]
                .as_u64()
                .unwrap_or_else(|| panic!("{what}: {queue_id} has no VisibilityTimeout"));
            let timeout = property(&t, f, "Timeout")
                .as_u64()
                .unwrap_or_else(|| panic!("{what}: {name} has no Timeout"));
            assert!(
                visibility >= 6 * timeout,
                "{what}: {queue_id} VisibilityTimeout {visibility} < 6 x Timeout {timeout}"
            );
            assert!(
                queue["Properties"]["RedrivePolicy"]["maxReceiveCount"].is_u64(),
                "{what}: {queue_id} has no RedrivePolicy.maxReceiveCount"
            );
        }
    }
    assert!(sqs_events > 0, "no function has an SQS event source");
}

/// A metric the template names in the ledger's own namespace: its name and dimensions (name, value).
#[derive(Debug)]
struct NamedMetric {
    name: String,
    dimensions: Vec<(String, String)>,
    place: String,
}

fn is_own_namespace(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == "Ref" && t.value == "MetricsNamespace")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Tagged(t) => format!("!{} {}", t.tag, scalar(&t.value)),
        other => format!("{other:?}"),
    }
}

/// Every `{Namespace: !Ref MetricsNamespace, MetricName, Dimensions}` anywhere in the resources
/// (alarms, anomaly detectors).
fn metrics_in_resources(v: &Value, place: &str, out: &mut Vec<NamedMetric>) {
    match v {
        Value::Mapping(m) => {
            if m.get("Namespace").is_some_and(is_own_namespace) {
                let dimensions = m
                    .get("Dimensions")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .map(|d| (scalar(&d["Name"]), scalar(&d["Value"])))
                    .collect();
                out.push(NamedMetric { name: scalar(&m["MetricName"]), dimensions, place: place.to_owned() });
            }
            m.values().for_each(|v| metrics_in_resources(v, place, out));
        }
        Value::Sequence(s) => s.iter().for_each(|v| metrics_in_resources(v, place, out)),
        Value::Tagged(t) => metrics_in_resources(&t.value, place, out),
        _ => {}
    }
}

/// The metrics of the dashboard's widgets whose namespace is `${MetricsNamespace}`.
fn metrics_on_dashboard(t: &Value) -> Vec<NamedMetric> {
    let body = &t["Resources"]["LedgerDashboard"]["Properties"]["DashboardBody"];
    let Value::Tagged(sub) = body else { panic!("DashboardBody is a !Sub string") };
    let text = sub.value.as_str().unwrap().replace("${MetricsNamespace}", "NS");
    let text = blank_substitutions(&text);
    let body: serde_json::Value = serde_json::from_str(&text).expect("the dashboard body is JSON");
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let parts = metric.as_array().unwrap();
            if parts[0] != "NS" {
                continue;
            }
            let strings: Vec<String> =
                parts[1..].iter().filter_map(|p| p.as_str().map(str::to_owned)).collect();
            let dimensions = strings[1..].chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect();
            out.push(NamedMetric { name: strings[0].clone(), dimensions, place: "dashboard".into() });
        }
    }
    out
}

/// Replaces the remaining `${…}` of a !Sub string with a placeholder, so the JSON parses.
fn blank_substitutions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e + 1).unwrap_or(rest.len());
        out.push_str("SUB");
        rest = &rest[end..];
    }
    out + rest
}

#[test]
fn dashboard_and_alarms_name_exactly_metrics_the_code_emits() {
    use ledger_telemetry::metrics::{CATALOG, SERVICE_DIMENSION};
    let t = template();
    let mut named = metrics_on_dashboard(&t);
    let on_dashboard: BTreeSet<String> = named.iter().map(|m| m.name.clone()).collect();
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        metrics_in_resources(resource, id.as_str().unwrap(), &mut named);
    }
    assert!(named.len() > CATALOG.len(), "the template names the ledger's metrics: {named:?}");
    for metric in &named {
        let spec = CATALOG
            .iter()
            .find(|s| s.name == metric.name)
            .unwrap_or_else(|| panic!("{} names {}, which the code never emits", metric.place, metric.name));
        let mut expected: Vec<&str> = spec.dimensions.to_vec();
        expected.push(SERVICE_DIMENSION);
        expected.sort();
        let mut names: Vec<&str> = metric.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        assert_eq!(names, expected, "{} names {} with other dimensions", metric.place, metric.name);
        for (name, value) in &metric.dimensions {
            match name.as_str() {
                "reason" => {
                    assert!(ledger_http::problem_codes().any(|c| c == value.as_str()), "reason {value}")
                }
                "outcome" => {
                    let outcomes = ledger_telemetry::metrics::WEBHOOK_OUTCOMES;
                    assert!(outcomes.contains(&value.as_str()), "outcome {value}")
                }
                "function" => {
                    let functions = ledger_telemetry::Function::ALL.map(|f| f.as_str());
                    assert!(functions.contains(&value.as_str()), "function {value}")
                }
                _ => {}
            }
        }
    }
    let charted: BTreeSet<String> = CATALOG.iter().map(|s| s.name.to_owned()).collect();
    assert_eq!(on_dashboard, charted, "the dashboard charts every metric the code emits");
}

#[test]
fn anomaly_alarms_and_canary_deployments_are_wired() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let of_type = |ty: &'static str| resources.iter().filter(move |(_, r)| r["Type"] == ty);
    assert_eq!(of_type("AWS::CloudWatch::AnomalyDetector").count(), 3);
    let bands: Vec<&str> =
        of_type("AWS::CloudWatch::Alarm")
            .filter(|(_, r)| {
                r["Properties"]["Metrics"].as_sequence().into_iter().flatten().any(|m| {
                    m["Expression"].as_str().is_some_and(|e| e.starts_with("ANOMALY_DETECTION_BAND("))
                })
            })
            .map(|(id, _)| id.as_str().unwrap())
            .collect();
    assert_eq!(bands.len(), 3, "anomaly alarms on rate, error rate and p99 latency: {bands:?}");
    for (name, function) in functions(&t) {
        let props = &function["Properties"];
        assert_eq!(props["AutoPublishAlias"], "live", "{name}");
        let preference = &props["DeploymentPreference"];
        assert!(preference["Type"].as_str().unwrap().starts_with("Canary"), "{name}");
        let alarms = preference["Alarms"].as_sequence().unwrap();
        for alarm in alarms {
            let Value::Tagged(r) = alarm else { panic!("{name}: alarms are !Ref") };
            let id = r.value.as_str().unwrap();
            assert_eq!(resources[id]["Type"], "AWS::CloudWatch::Alarm", "{name} rolls back on {id}");
        }
        assert_eq!(property(&t, function, "Tracing"), "Active", "{name}");
    }
    assert!(of_type("AWS::SNS::Topic").count() == 1 && of_type("AWS::CloudWatch::Dashboard").count() == 1);
}

/// The text of a scalar, or of the string a short-form `!Sub` holds (alone, or first of a list).
fn text(v: &Value) -> &str {
    match v {
        Value::Tagged(t) if t.tag == "Sub" => match &t.value {
            Value::Sequence(parts) => parts[0].as_str().unwrap_or_default(),
            other => other.as_str().unwrap_or_default(),
        },
        other => other.as_str().unwrap_or_default(),
    }
}

#[test]
fn the_workers_role_reaches_no_further_than_the_worker_needs() {
    let t = template();
    let worker = &t["Resources"]["WorkerFunction"]["Properties"];
    assert_eq!(get_att_arn(&worker["Role"]), Some("WorkerRole"), "an explicit role, not SAM's");
    assert!(worker["Policies"].is_null(), "no policies beside the role");
    let statements = t["Resources"]["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    for statement in statements {
        let sid = statement["Sid"].as_str().unwrap();
        for action in statement["Action"].as_sequence().unwrap() {
            assert!(!action.as_str().unwrap().contains('*'), "{sid}: {action:?}");
            assert_ne!(action, "dynamodb:BatchWriteItem", "{sid}");
        }
        // X-Ray's actions have no resource-level permissions: the only statement on "*".
        if sid == "Traces" {
            assert_eq!(statement["Resource"], "*");
        } else {
            let resources = statement["Resource"].as_sequence().unwrap();
            assert!(resources.iter().all(|r| get_att_arn(r).is_some()), "{sid}: {resources:?}");
        }
    }
    let logs = &t["Resources"]["WorkerLogsPolicy"]["Properties"];
    assert_eq!(
        get_att_arn(&logs["PolicyDocument"]["Statement"][0]["Resource"][0]),
        Some("WorkerFunctionLogGroup")
    );
}

#[test]
fn only_the_api_sends_to_the_transfer_queue_and_only_it_redrives_into_the_dead_letter_queue() {
    let t = template();
    let r = &t["Resources"];
    let policy = &r["TransferQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(policy["Effect"], "Deny");
    assert_eq!(policy["Principal"], "*");
    assert_eq!(policy["Action"], "sqs:SendMessage");
    let allowed = policy["Condition"]["ArnNotEquals"]["aws:PrincipalArn"].as_sequence().unwrap();
    assert_eq!(get_att_arn(&allowed[0]), Some("ApiFunctionRole"));

    let name = text(&r["TransferQueue"]["Properties"]["QueueName"]);
    let redrive = &r["TransferDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"];
    assert_eq!(redrive["redrivePermission"], "byQueue");
    let source = text(&redrive["sourceQueueArns"][0]);
    assert!(source.ends_with(&format!(":{name}")), "{source} names {name}");
}

#[test]
fn the_table_cannot_be_deleted_by_accident_and_a_stale_backlog_pages_long_before_retention() {
    let t = template();
    let r = &t["Resources"];
    assert_eq!(r["LedgerTable"]["Properties"]["DeletionProtectionEnabled"], true);
    assert_eq!(r["LedgerTable"]["DeletionPolicy"], "Retain");
    let alarm = &r["QueueAgeAlarm"]["Properties"];
    assert_eq!(alarm["MetricName"], "ApproximateAgeOfOldestMessage");
    let retention = r["TransferQueue"]["Properties"]["MessageRetentionPeriod"].as_f64().unwrap();
    let threshold = alarm["Threshold"].as_f64().unwrap();
    assert!(threshold * 24.0 <= retention, "{threshold} s against a retention of {retention} s");
}

#[test]
fn access_logs_name_the_caller_and_the_tenant() {
    let t = template();
    let format = text(&t["Resources"]["LedgerApi"]["Properties"]["AccessLogSettings"]["Format"]);
    assert!(format.contains(r#""sub":"$context.authorizer.claims.sub""#), "{format}");
    assert!(format.contains(r#""client":"$context.authorizer.claims.client_id""#), "{format}");
    assert!(format.contains(r#""tenant":"$context.authorizer.claims.${Claim}""#), "{format}");
    let Value::Tagged(sub) = &t["Resources"]["LedgerApi"]["Properties"]["AccessLogSettings"]["Format"] else {
        panic!("the format is a !Sub")
    };
    // The claim the API function reads: the TenantClaim parameter.
    let claim = &sub.value[1]["Claim"];
    let api_claim = &t["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]["TENANT_CLAIM"];
    assert_eq!(claim, api_claim);
}

/// The created pool issues client-credentials tokens carrying the routes' scopes, to its one
/// machine client, whose tenant the API is told (the token names only the client); nobody can sign
/// up.
#[test]
fn the_created_pool_issues_tokens_with_the_routes_scopes_to_a_client_mapped_to_its_tenant() {
    let t = template();
    let r = &t["Resources"];
    assert_eq!(r["UserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], true);
    let server = &r["UserPoolResourceServer"]["Properties"];
    let identifier = server["Identifier"].as_str().unwrap();
    let offered: BTreeSet<String> = server["Scopes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| format!("{identifier}/{}", s["ScopeName"].as_str().unwrap()))
        .collect();
    let required: BTreeSet<String> =
        ledger_http::Scope::ALL.iter().map(|s| s.names()[1].to_owned()).collect();
    assert_eq!(offered, required, "Cognito spells each scope the routes require");
    let client = &r["MachineClient"]["Properties"];
    assert_eq!(client["GenerateSecret"], true);
    assert_eq!(scalar(&client["AllowedOAuthFlows"]), scalar(&Value::from(vec!["client_credentials"])));
    let granted: BTreeSet<String> = client["AllowedOAuthScopes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().into())
        .collect();
    assert_eq!(granted, required);
    let variables = &r["ApiFunction"]["Properties"]["Environment"]["Variables"];
    let mapped = scalar(&variables["CLIENT_TENANTS"]);
    assert!(mapped.contains("${MachineClient}=${MachineClientTenant}"), "{mapped}");
    let audience = scalar(
        &r["LedgerApi"]["Properties"]["Auth"]["Authorizers"]["LedgerJwt"]["JwtConfiguration"]["audience"],
    );
    assert!(audience.contains("MachineClient"), "{audience}");
}

/// Each stage's per-tenant limit reaches the API as the variables `ledger_config` reads, parses,
/// and leaves no one tenant the whole stage throttle, rate or burst; its burst outlasts an API
/// instance's hold-off after a refusal (0.2 s at most), so a busy tenant still gets its rate.
#[test]
fn every_stage_holds_each_tenant_to_a_limit_below_the_stage_throttle() {
    let t = template();
    let variables = &t["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"];
    let stages = t["Mappings"]["StageConfig"].as_mapping().unwrap();
    assert_eq!(stages.len(), 2);
    for (stage, config) in stages {
        let setting = |variable: &str| {
            // `!FindInMap [StageConfig, !Ref Stage, Key]`: the key this stage's value sits under.
            let Value::Tagged(find) = &variables[variable] else { panic!("{variable} is not a !FindInMap") };
            assert_eq!(find.tag, "FindInMap");
            let key = find.value[2].as_str().unwrap();
            config[key].as_u64().unwrap_or_else(|| panic!("{stage:?} has no {key}")).to_string()
        };
        let (rate, burst) = (setting("TENANT_OPERATIONS_PER_SECOND"), setting("TENANT_BURST"));
        let env = [("TENANT_OPERATIONS_PER_SECOND", rate.as_str()), ("TENANT_BURST", burst.as_str())];
        let limit = ledger_config::tenant_limit(&env).unwrap().expect("a limit");
        let stage_rate = config["ThrottlingRateLimit"].as_u64().unwrap();
        let stage_burst = config["ThrottlingBurstLimit"].as_u64().unwrap();
        // Four tenants at their limits together fit the stage throttle.
        assert!(u64::from(limit.per_second()) * 4 <= stage_rate, "{stage:?}: {rate}/s of {stage_rate}/s");
        assert!(u64::from(limit.burst()) * 4 <= stage_burst, "{stage:?}: burst {burst} of {stage_burst}");
        assert!(limit.burst() * 5 >= limit.per_second(), "{stage:?}: burst {burst} under 0.2 s of {rate}/s");
    }
}

#[test]
fn only_the_ledgers_functions_send_to_the_webhook_queue_and_only_two_may_use_the_secrets_key() {
    let t = template();
    let r = &t["Resources"];
    let policy = &r["WebhookQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        (policy["Effect"].as_str(), policy["Action"].as_str()),
        (Some("Deny"), Some("sqs:SendMessage"))
    );
    let allowed: Vec<_> = policy["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(get_att_arn)
        .collect();
    assert_eq!(allowed, ["ApiFunctionRole", "PublisherRole", "DelivererRole"]);
    // The key's policy: administration for the account, data keys for the API, opening for the
    // deliverer, each bound to a tenant and an endpoint.
    let statements = r["WebhookSecretsKey"]["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
    let uses: Vec<(Option<&str>, &Value)> = statements
        .iter()
        .filter(|s| s["Sid"] != "AccountAdministration")
        .map(|s| (get_att_arn(&s["Principal"]["AWS"]), &s["Action"]))
        .collect();
    assert_eq!(uses.len(), 2);
    assert_eq!((uses[0].0, uses[0].1.as_str()), (Some("ApiFunctionRole"), Some("kms:GenerateDataKey")));
    assert_eq!((uses[1].0, uses[1].1.as_str()), (Some("DelivererRole"), Some("kms:Decrypt")));
    let admin = statements.iter().find(|s| s["Sid"] == "AccountAdministration").unwrap();
    for action in admin["Action"].as_sequence().unwrap() {
        let action = action.as_str().unwrap();
        assert!(
            !["kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"].contains(&action),
            "{action}"
        );
    }
    for function in ["ApiFunction", "DelivererFunction"] {
        let key = &r[function]["Properties"]["Environment"]["Variables"]["WEBHOOK_SECRETS_KEY"];
        assert_eq!(get_att_arn(key), Some("WebhookSecretsKey"), "{function}");
    }
}

#[test]
fn every_function_but_the_api_reserves_concurrency_and_every_tenant_is_ranked() {
    let t = template();
    let r = &t["Resources"];
    for (function, reserved) in
        [("WorkerFunction", 10), ("SweeperFunction", 2), ("PublisherFunction", 20), ("DelivererFunction", 10)]
    {
        let Value::Tagged(when) = &r[function]["Properties"]["ReservedConcurrentExecutions"] else {
            panic!("{function} reserves no concurrency")
        };
        assert_eq!(when.value[0], "ReservesConcurrency", "{function}");
        assert_eq!(when.value[1].as_u64(), Some(reserved), "{function}");
    }
    assert!(r["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"].is_null());
    // Each event source's concurrency fits what its function reserves.
    for function in ["WorkerFunction", "DelivererFunction"] {
        let events = r[function]["Properties"]["Events"].as_mapping().unwrap();
        let source = events.values().next().unwrap();
        let max = source["Properties"]["ScalingConfig"]["MaximumConcurrency"].as_u64().unwrap();
        let Value::Tagged(when) = &r[function]["Properties"]["ReservedConcurrentExecutions"] else {
            unreachable!()
        };
        assert!(when.value[1].as_u64().unwrap() >= max, "{function}");
    }
    // The Contributor Insights rules rank tenants, and the dashboard shows each.
    let body = text(&r["LedgerDashboard"]["Properties"]["DashboardBody"]).to_owned();
    let rules: Vec<&str> = r
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["Type"] == "AWS::CloudWatch::InsightRule")
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 5, "{rules:?}");
    for rule in rules {
        let rule_body = text(&r[rule]["Properties"]["RuleBody"]);
        let rule_body: serde_json::Value = serde_json::from_str(&blank_substitutions(rule_body)).unwrap();
        assert_eq!(rule_body["Contribution"]["Keys"], serde_json::json!(["$.tenant"]), "{rule}");
        assert!(body.contains(&format!("${{{rule}.RuleName}}")), "{rule} is not on the dashboard");
    }
    assert_eq!(r["LedgerTable"]["Properties"]["ContributorInsightsSpecification"]["Enabled"], true);
}

#[test]
fn the_apis_deletes_and_the_deliverers_writes_are_held_to_their_partitions() {
    let t = template();
    let r = &t["Resources"];
    let leading = |statement: &Value| -> Vec<String> {
        statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            .as_sequence()
            .unwrap_or_else(|| panic!("no leading keys: {statement:?}"))
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let statements = |v: &Value| v.as_sequence().unwrap().clone();
    let api = statements(&r["ApiFunction"]["Properties"]["Policies"][0]["Statement"]);
    for statement in &api {
        let actions: Vec<&str> =
            statement["Action"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
        if actions.contains(&"dynamodb:DeleteItem") {
            assert_eq!(actions, ["dynamodb:DeleteItem"], "deletes apart from the rest");
            assert_eq!(leading(statement), ["T#*#X#*", "T#*#Q#*", "T#*#W#*", "T#*#A#*", "S#*"]);
        }
    }
    let deliverer =
        statements(&r["DelivererRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]);
    for statement in &deliverer {
        let actions: Vec<&str> =
            statement["Action"].as_sequence().into_iter().flatten().filter_map(|a| a.as_str()).collect();
        if actions
            .iter()
            .any(|a| ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"].contains(a))
        {
            assert!(!actions.contains(&"dynamodb:DeleteItem"));
            assert_eq!(leading(statement), ["T#*#W#*", "T#*#V#*"]);
        }
    }
}
