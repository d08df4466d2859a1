//! The client cannot drift from the API: its route table is `openapi.yaml`'s operations and the
//! router's routes, and each answer type has exactly the properties of its document's schema.

use std::collections::BTreeSet;

use ledger_client::routes;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_norway::Value;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_clients_routes_are_the_documents_and_the_routers() {
    let client: BTreeSet<(String, String)> =
        routes::ALL.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(client.len(), routes::ALL.len(), "each route once");
    let router: BTreeSet<(String, String)> =
        ledger_http::routes().iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(client, router);
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for method in ["get", "post", "patch", "delete", "put"] {
            if !item[method].is_null() {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    assert_eq!(client, documented);
}

/// A deserializer that only records the field names a struct asks for.
struct Fields<'a>(&'a mut Vec<&'static str>);

impl<'de> Deserializer<'de> for Fields<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend(fields);
        Err(de::Error::custom("fields read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn fields_of<'de, T: Deserialize<'de>>() -> BTreeSet<String> {
    let mut names = Vec::new();
    let _ = T::deserialize(Fields(&mut names));
    names.into_iter().map(str::to_owned).collect()
}

/// A schema's properties, its `allOf` parts merged.
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return properties(doc, &doc["components"]["schemas"][name]);
    }
    let mut out: BTreeSet<String> = schema["properties"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    for part in schema["allOf"].as_sequence().into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

#[test]
fn each_answer_type_has_exactly_its_schemas_properties() {
    use ledger_client::types::*;
    let doc = document();
    let schema = |name: &str| properties(&doc, &doc["components"]["schemas"][name]);
    let pairs = [
        ("Account", fields_of::<Account>()),
        ("Transfer", fields_of::<Transfer>()),
        ("LinkedTransfers", fields_of::<LinkedTransfers>()),
        ("TransferBatch", fields_of::<TransferBatch>()),
        ("Entry", fields_of::<Entry>()),
        ("Totals", fields_of::<Totals>()),
        ("DryRun", fields_of::<DryRun>()),
        ("DryRunAccount", fields_of::<DryRunAccount>()),
        ("BalanceAt", fields_of::<BalanceAt>()),
        ("Statement", fields_of::<Statement>()),
        ("Reconciliation", fields_of::<Reconciliation>()),
        ("Event", fields_of::<Event>()),
        ("WebhookEndpoint", fields_of::<WebhookEndpoint>()),
        ("WebhookEndpointWithSecret", fields_of::<WebhookEndpointWithSecret>()),
        ("WebhookDelivery", fields_of::<WebhookDelivery>()),
        ("WebhookQueued", fields_of::<WebhookQueued>()),
        ("TransferList", fields_of::<Page<Transfer>>()),
        ("Problem", fields_of::<Problem>()),
    ];
    for (name, fields) in pairs {
        assert!(!fields.is_empty(), "{name}: fields read");
        assert_eq!(fields, schema(name), "{name}");
    }
}
