//! The table as an export: one item per line, `{"Item": {...}}` in DynamoDB JSON, the format of
//! DynamoDB's own export to S3 (`ExportTableToPointInTime`, `DYNAMODB_JSON`, its files
//! decompressed). Written by a Scan of a table, read back into items, and grouped into the account
//! shards' histories and the transfer records the offline verifier checks (`ledger::audit`).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ledger::audit::ShardHistory;
use ledger::chain::ChainHead;
use ledger::port::StoreError;
use ledger::{AccountId, Entry, TenantId, Transfer};
use serde_json::{Map, Value, json};

use crate::error::sdk;
use crate::items::{self, Item};
use crate::keys;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("an export line: {what}"))
}

/// An attribute in DynamoDB JSON: `{"S": "..."}`, `{"N": "..."}`, `{"M": {...}}`, ...
pub fn attribute_to_json(value: &AttributeValue) -> Value {
    let strings = |values: &[String]| Value::from(values.to_vec());
    let blob = |b: &Blob| Value::from(STANDARD.encode(b.as_ref()));
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": blob(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(values) => json!({ "SS": strings(values) }),
        AttributeValue::Ns(values) => json!({ "NS": strings(values) }),
        AttributeValue::Bs(values) => json!({ "BS": values.iter().map(blob).collect::<Vec<_>>() }),
        AttributeValue::L(values) => json!({ "L": values.iter().map(attribute_to_json).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": item_to_json(map) }),
        _ => Value::Null,
    }
}

/// An item in DynamoDB JSON: each attribute by name.
pub fn item_to_json(item: &Item) -> Map<String, Value> {
    let sorted: BTreeMap<_, _> = item.iter().collect();
    sorted.into_iter().map(|(name, value)| (name.clone(), attribute_to_json(value))).collect()
}

/// An attribute from DynamoDB JSON.
pub fn attribute_from_json(value: &Value) -> Result<AttributeValue, StoreError> {
    let Some((kind, inner)) = value.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(corrupt("an attribute is an object of one type"));
    };
    let text = || inner.as_str().map(str::to_owned).ok_or_else(|| corrupt(format!("{kind} is a string")));
    let texts = || -> Result<Vec<String>, StoreError> {
        let values = inner.as_array().ok_or_else(|| corrupt(format!("{kind} is an array")))?;
        values.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(|| corrupt(kind))).collect()
    };
    let blob = |text: &str| STANDARD.decode(text).map(Blob::new).map_err(|_| corrupt("a binary is base64"));
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(text()?),
        "N" => AttributeValue::N(text()?),
        "B" => AttributeValue::B(blob(&text()?)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or_else(|| corrupt("BOOL is a boolean"))?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(texts()?),
        "NS" => AttributeValue::Ns(texts()?),
        "BS" => AttributeValue::Bs(texts()?.iter().map(|t| blob(t)).collect::<Result<_, _>>()?),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or_else(|| corrupt("L is an array"))?
                .iter()
                .map(attribute_from_json)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        other => return Err(corrupt(format!("no attribute type {other}"))),
    })
}

/// An item from DynamoDB JSON.
pub fn item_from_json(value: &Value) -> Result<Item, StoreError> {
    let map = value.as_object().ok_or_else(|| corrupt("an item is an object"))?;
    map.iter().map(|(name, value)| Ok((name.clone(), attribute_from_json(value)?))).collect()
}

/// Writes every item of `table` to `out`, a line each; returns how many.
pub async fn write_export(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    out: &mut impl Write,
) -> Result<usize, StoreError> {
    let (mut written, mut start) = (0, None);
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(sdk)?;
        for item in page.items() {
            let line = json!({ "Item": item_to_json(item) });
            writeln!(out, "{line}")
                .map_err(|err| StoreError::Unexpected(format!("writing the export: {err}")))?;
            written += 1;
        }
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(written),
        }
    }
}

/// The items of an export, a line each (blank lines skipped).
pub fn read_export(input: impl BufRead) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let line = line.map_err(|err| StoreError::Unexpected(format!("reading the export: {err}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|err| corrupt(format!("line {}: {err}", number + 1)))?;
        let item = value.get("Item").ok_or_else(|| corrupt(format!("line {} has no Item", number + 1)))?;
        items.push(item_from_json(item)?);
    }
    Ok(items)
}

/// `tenant`'s account shards in `items`: each one's balance item and entries, oldest first, in
/// account and shard order.
pub fn shard_histories(items: &[Item], tenant: &TenantId) -> Result<Vec<ShardHistory>, StoreError> {
    let prefix = format!("T#{tenant}#A#");
    // By account and shard: its balance, and its entries with their sort keys.
    #[derive(Default)]
    struct Gathered {
        head: Option<ChainHead>,
        entries: Vec<(String, Entry)>,
    }
    let mut shards: BTreeMap<(String, u16), Gathered> = BTreeMap::new();
    for item in items {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
        let (Some(pk), Some(sk)) = (text(keys::PK), text(keys::SK)) else { continue };
        let Some(rest) = pk.strip_prefix(&prefix) else { continue };
        let (account, shard) = match rest.split_once('#') {
            Some((account, shard)) => (account, shard.parse().map_err(|_| corrupt(format!("key {pk}")))?),
            None => (rest, 0),
        };
        if sk == keys::BALANCE_SK {
            let balance = items::balance_from(item)?;
            shards.entry((account.to_owned(), shard)).or_default().head = Some(ChainHead::of(&balance));
        } else if sk.starts_with(keys::ENTRY_SK_PREFIX) {
            let entry = Entry { shard, ..items::entry_from(item)? };
            shards.entry((account.to_owned(), shard)).or_default().entries.push((sk.clone(), entry));
        }
    }
    shards
        .into_iter()
        .map(|((account, shard), Gathered { head, mut entries })| {
            // As a Query reads them: by sort key.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(ShardHistory {
                account_id: AccountId::parse(&account).map_err(|_| corrupt(format!("account {account}")))?,
                shard,
                head,
                entries: entries.into_iter().map(|(_, entry)| entry).collect(),
            })
        })
        .collect()
}

/// `tenant`'s transfer records in `items`, in key order.
pub fn transfers(items: &[Item], tenant: &TenantId) -> Result<Vec<Transfer>, StoreError> {
    let prefix = format!("T#{tenant}#X#");
    let mut found: Vec<(&str, Transfer)> = Vec::new();
    for item in items {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
        if let (Some(pk), Some(keys::TRANSFER_SK)) = (text(keys::PK), text(keys::SK).map(String::as_str))
            && pk.starts_with(&prefix)
        {
            found.push((pk, items::transfer_from(item)?));
        }
    }
    found.sort_by(|a, b| a.0.cmp(b.0));
    Ok(found.into_iter().map(|(_, transfer)| transfer).collect())
}
