//! Tables created in the emulator exactly as template.yaml declares them (keys, indexes, TTL, stream):
//! the template is the one source of truth for the table's shape.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde::Deserialize;
use serde_norway::{Mapping, Value};

/// A table's shape as the template declares it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableSpec {
    #[serde(skip)]
    pub logical_id: String,
    pub attribute_definitions: Vec<AttributeSpec>,
    pub key_schema: Vec<KeySpec>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexSpec>,
    pub time_to_live_specification: Option<TtlSpec>,
    pub stream_specification: Option<StreamSpecification>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    pub stream_view_type: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeSpec {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySpec {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexSpec {
    pub index_name: String,
    pub key_schema: Vec<KeySpec>,
    pub projection: ProjectionSpec,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionSpec {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlSpec {
    pub attribute_name: String,
    pub enabled: bool,
}

fn invalid(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("template.yaml: {why}"))
}

/// The template, parsed once per process: each stack a test builds reads it about nine times
/// (table, queues, event sources), and parsing its 100 KB nine times took a tenth of a debug
/// test binary's CPU.
pub fn document(template: &Path) -> io::Result<&'static Value> {
    static PARSED: OnceLock<Mutex<HashMap<PathBuf, &'static Value>>> = OnceLock::new();
    let mut parsed = PARSED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(document) = parsed.get(template) {
        return Ok(document);
    }
    let document: Value = serde_norway::from_str(&std::fs::read_to_string(template)?).map_err(invalid)?;
    // Lives as long as the process, as the file it was read from is not expected to change.
    let document: &'static Value = Box::leak(Box::new(document));
    parsed.insert(template.to_owned(), document);
    Ok(document)
}

/// The template's `Resources`, by logical id.
pub fn resources(template: &Path) -> io::Result<&'static Mapping> {
    document(template)?["Resources"].as_mapping().ok_or_else(|| invalid("no Resources"))
}

/// Every `AWS::DynamoDB::Table` of the template.
pub fn tables(template: &Path) -> io::Result<Vec<TableSpec>> {
    let mut tables = Vec::new();
    for (logical_id, resource) in resources(template)? {
        if resource["Type"] != "AWS::DynamoDB::Table" {
            continue;
        }
        let logical_id = logical_id.as_str().ok_or_else(|| invalid("a logical id that is not a string"))?;
        let properties = match &resource["Properties"] {
            Value::Null => return Err(invalid(format!("{logical_id} has no Properties"))),
            properties => properties.clone(),
        };
        let mut spec: TableSpec = serde_norway::from_value(properties).map_err(invalid)?;
        spec.logical_id = logical_id.to_owned();
        tables.push(spec);
    }
    Ok(tables)
}

/// The memory size the template gives the function with this logical id: its own, else the
/// `Globals`' (in MB).
pub fn memory_mb(template: &Path, logical_id: &str) -> io::Result<u32> {
    let template = document(template)?;
    let own = &template["Resources"][logical_id]["Properties"]["MemorySize"];
    let size = if own.is_null() { &template["Globals"]["Function"]["MemorySize"] } else { own };
    size.as_u64()
        .and_then(|mb| u32::try_from(mb).ok())
        .ok_or_else(|| invalid(format!("the template gives {logical_id} no MemorySize")))
}

/// The table of the template with this logical id.
pub fn table(template: &Path, logical_id: &str) -> io::Result<TableSpec> {
    tables(template)?
        .into_iter()
        .find(|t| t.logical_id == logical_id)
        .ok_or_else(|| invalid(format!("no AWS::DynamoDB::Table named {logical_id}")))
}

fn key_schema(keys: &[KeySpec]) -> io::Result<Vec<KeySchemaElement>> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(invalid)
        })
        .collect()
}

impl TableSpec {
    /// Creates the table under `name` (on-demand, as in the template), then its TTL if declared.
    pub async fn create(&self, client: &Client, name: &str) -> io::Result<()> {
        let mut create = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
        for a in &self.attribute_definitions {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .map_err(invalid)?,
            );
        }
        create = create.set_key_schema(Some(key_schema(&self.key_schema)?));
        if let Some(stream) = &self.stream_specification {
            create = create.stream_specification(
                aws_sdk_dynamodb::types::StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(
                        stream.stream_view_type.as_str(),
                    ))
                    .build()
                    .map_err(invalid)?,
            );
        }
        for index in &self.global_secondary_indexes {
            let projection = Projection::builder()
                .projection_type(ProjectionType::from(index.projection.projection_type.as_str()))
                .set_non_key_attributes(
                    (!index.projection.non_key_attributes.is_empty())
                        .then(|| index.projection.non_key_attributes.clone()),
                )
                .build();
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&index.index_name)
                    .set_key_schema(Some(key_schema(&index.key_schema)?))
                    .projection(projection)
                    .build()
                    .map_err(invalid)?,
            );
        }
        create
            .send()
            .await
            .map_err(|e| io::Error::other(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
        if let Some(ttl) = &self.time_to_live_specification {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(&ttl.attribute_name)
                        .enabled(ttl.enabled)
                        .build()
                        .map_err(invalid)?,
                )
                .send()
                .await
                .map_err(|e| io::Error::other(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
        }
        Ok(())
    }
}
