//! Reads CloudWatch Embedded Metric Format documents, the lines the functions' metrics collector
//! writes. The local dashboard and the tests read the same lines CloudWatch would.

use std::collections::BTreeMap;

use serde_json::Value;

/// One metric of one EMF document.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub namespace: String,
    pub name: String,
    pub unit: Option<String>,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: u64,
    /// The dimension names the document declares for it, with their values.
    pub dimensions: BTreeMap<String, String>,
    /// A counter's value, or a histogram's values.
    pub values: Vec<f64>,
}

/// The samples of every EMF document in `text` (other lines are skipped: logs share the stream).
pub fn read(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .flat_map(|doc| samples(&doc))
        .collect()
}

fn samples(doc: &Value) -> Vec<Sample> {
    let Some(aws) = doc.get("_aws") else { return vec![] };
    let timestamp = aws.get("Timestamp").and_then(Value::as_u64).unwrap_or_default();
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for directive in directives {
        let namespace = directive.get("Namespace").and_then(Value::as_str).unwrap_or_default().to_owned();
        // The collector declares one dimension set per document.
        let names: Vec<&str> = directive["Dimensions"]
            .get(0)
            .and_then(Value::as_array)
            .map(|set| set.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let dimensions: BTreeMap<String, String> = names
            .iter()
            .map(|name| {
                (name.to_string(), doc.get(*name).and_then(Value::as_str).unwrap_or_default().to_owned())
            })
            .collect();
        for metric in directive.get("Metrics").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = metric.get("Name").and_then(Value::as_str) else { continue };
            let values = match doc.get(name) {
                Some(Value::Array(values)) => values.iter().filter_map(Value::as_f64).collect(),
                Some(value) => value.as_f64().into_iter().collect(),
                None => vec![],
            };
            out.push(Sample {
                namespace: namespace.clone(),
                name: name.to_owned(),
                unit: metric.get("Unit").and_then(Value::as_str).map(str::to_owned),
                timestamp,
                dimensions: dimensions.clone(),
                values,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_and_histograms_with_their_dimensions() {
        let text = r#"{"level":"INFO","message":"not a metric"}
{"_aws":{"Timestamp":1000,"CloudWatchMetrics":[{"Namespace":"Ledger","Dimensions":[["service","reason"]],"Metrics":[{"Name":"TransfersRejected","Unit":"Count"}]}]},"service":"ledger","reason":"insufficient_funds","TransfersRejected":2}
{"_aws":{"Timestamp":2000,"CloudWatchMetrics":[{"Namespace":"Ledger","Dimensions":[["service"]],"Metrics":[{"Name":"ApiLatency","Unit":"Milliseconds"}]}]},"service":"ledger","ApiLatency":[1.5,3.0]}"#;
        let samples = read(text);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].name, "TransfersRejected");
        assert_eq!(samples[0].dimensions["reason"], "insufficient_funds");
        assert_eq!(samples[0].values, vec![2.0]);
        assert_eq!(samples[1].values, vec![1.5, 3.0]);
        assert_eq!(samples[1].unit.as_deref(), Some("Milliseconds"));
        assert_eq!(samples[1].timestamp, 2000);
    }
}
