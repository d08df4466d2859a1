//! Checks of template.yaml that the linters do not make: runtime and architecture spelled right,
//! every function built from a crate of this workspace, the API's routes exactly the router's, and
//! the table's keys exactly the store's.

use std::collections::BTreeSet;

use serde_norway::Value;

fn template() -> Value {
    serde_norway::from_str(&std::fs::read_to_string(devkit::paths::template()).unwrap()).unwrap()
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
        let crate_dir = devkit::paths::workspace_root().join("functions").join(binary);
        assert!(crate_dir.join("Cargo.toml").exists(), "{name}: no crate functions/{binary}");
    }
}

#[test]
fn the_api_routes_are_exactly_the_routers() {
    let t = template();
    let mut routes = BTreeSet::new();
    for (_, f) in functions(&t) {
        let Some(events) = f["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"] == "HttpApi" {
                let p = &event["Properties"];
                routes.insert((
                    p["Method"].as_str().unwrap().to_uppercase(),
                    p["Path"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    let router: BTreeSet<_> =
        ledger_http::routes().iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(routes, router);
}

#[test]
fn the_table_has_the_keys_and_index_the_store_uses() {
    use ledger_dynamodb::keys;
    let table = devkit::template::table(&devkit::paths::template(), devkit::LEDGER_TABLE).unwrap();
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
