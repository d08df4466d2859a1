//! The restore drill: the ledger table restored into a new table, then proven whole. In AWS the
//! restore is DynamoDB's point-in-time recovery (`RestoreTableToPointInTime`); on this machine it
//! is an export of the table (`ledger_dynamodb::export`: DynamoDB JSON lines, a consistent Scan)
//! imported into a fresh table of the same shape. Then every tenant of the restored table has its
//! books checked from the first entry (`ledger::notarize::check_books`: every chain, every entry's
//! other side, balances summing to zero per currency) and, where the archive holds a checkpoint
//! taken before the restore point, against that signed checkpoint too. The report states the
//! recovery point and the time to a verified table.

use std::io;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, Projection, ProjectionType, PutRequest, TableStatus, WriteRequest,
};
use futures::{StreamExt, TryStreamExt};
use ledger::TenantId;
use ledger::notarize::{PAGE, check_books};
use ledger::port::{Archive, Store};
use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::export::{read_export, write_export};
use ledger_kms::LocalNotary;
use time::OffsetDateTime;

/// How the table is restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restore {
    /// Export the table now and import it into a fresh one (DynamoDB Local).
    ExportImport,
    /// DynamoDB's point-in-time recovery: to `at`, or to the latest restorable instant.
    PointInTime { at: Option<OffsetDateTime> },
}

/// One tenant of the restored table, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantCheck {
    pub tenant: TenantId,
    pub shards: usize,
    pub entries: usize,
    /// Entries whose other side the restore did not hold (a transaction cut by the restore point).
    pub open_sides: usize,
    /// The archived checkpoint's run the table was also checked against, if any.
    pub against_run: Option<u64>,
    pub faults: Vec<String>,
}

/// What a drill did and measured.
#[derive(Clone, Debug)]
pub struct DrillReport {
    pub source: String,
    pub restored: String,
    /// The instant the restored table holds the ledger as of.
    pub restore_point: OffsetDateTime,
    pub started: OffsetDateTime,
    /// From the start to the restored table being ready, then to its being checked.
    pub restore_took: Duration,
    pub check_took: Duration,
    pub items: usize,
    pub tenants: Vec<TenantCheck>,
}

impl DrillReport {
    /// Recovery time: from the decision to restore to a table proven whole.
    pub fn rto(&self) -> Duration {
        self.restore_took + self.check_took
    }

    /// Recovery point: what a disaster at the start would have lost (the ledger's writes after the
    /// restore point).
    pub fn rpo(&self) -> Duration {
        (self.started - self.restore_point).try_into().unwrap_or_default()
    }

    pub fn passed(&self) -> bool {
        self.tenants.iter().all(|t| t.faults.is_empty())
    }
}

fn sdk_err(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// Restores `source` into the new table `target`, checks it, and reports. `archive` (the books
/// archive) adds the check against each tenant's latest signed checkpoint.
pub async fn run(
    client: &Client,
    source: &str,
    target: &str,
    restore: Restore,
    archive: Option<&dyn Archive>,
) -> io::Result<DrillReport> {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let (restore_point, items) = match restore {
        Restore::ExportImport => (started, export_import(client, source, target).await?),
        Restore::PointInTime { at } => (point_in_time(client, source, target, at).await?, 0),
    };
    let restore_took = clock.elapsed();
    let store = DynamoStore::new(client.clone(), target);
    let tenants = check(&store, archive, restore_point).await.map_err(io::Error::other)?;
    Ok(DrillReport {
        source: source.to_owned(),
        restored: target.to_owned(),
        restore_point,
        started,
        restore_took,
        check_took: clock.elapsed() - restore_took,
        items,
        tenants,
    })
}

/// Every tenant of `store` checked from its first entry, and against its latest archived
/// checkpoint if that was taken at or before `restore_point`.
pub async fn check(
    store: &dyn Store,
    archive: Option<&dyn Archive>,
    restore_point: OffsetDateTime,
) -> Result<Vec<TenantCheck>, ledger::port::StoreError> {
    let notary = LocalNotary::new();
    let now = OffsetDateTime::now_utc();
    let mut checks = Vec::new();
    for books in store.tenants().await? {
        let tenant = &books.tenant;
        let (_, report) = check_books(store, &notary, tenant, None, PAGE, now).await?;
        let mut faults: Vec<String> = report.faults.iter().map(ToString::to_string).collect();
        let mut against_run = None;
        if let (Some(archive), Some(latest)) = (archive, &books.latest) {
            let checkpoint = archive.get(&latest.key).await?;
            if checkpoint.signed.digest.taken_at <= restore_point {
                let (_, signed) = check_books(store, &notary, tenant, Some(&checkpoint), PAGE, now).await?;
                let run = checkpoint.run;
                faults.extend(signed.faults.iter().map(|f| format!("against run {run}'s checkpoint: {f}")));
                against_run = Some(run);
            }
        }
        checks.push(TenantCheck {
            tenant: tenant.clone(),
            shards: report.shards,
            entries: report.entries,
            open_sides: report.open,
            against_run,
            faults,
        });
    }
    Ok(checks)
}

/// The local restore: `source` exported (DynamoDB JSON lines), a table shaped as `source` created,
/// the export imported into it. Returns the items imported.
async fn export_import(client: &Client, source: &str, target: &str) -> io::Result<usize> {
    let mut export = Vec::new();
    write_export(client, source, &mut export).await.map_err(io::Error::other)?;
    let items = read_export(export.as_slice()).map_err(io::Error::other)?;
    create_like(client, source, target).await?;
    // 8 BatchWriteItem calls in flight: a restore is bound by its writes.
    let calls = items.chunks(25).map(|chunk| import_chunk(client, target, chunk));
    futures::stream::iter(calls).buffer_unordered(8).try_collect::<Vec<()>>().await?;
    Ok(items.len())
}

/// One BatchWriteItem of up to 25 items, redone with what DynamoDB leaves unprocessed.
async fn import_chunk(
    client: &Client,
    target: &str,
    chunk: &[ledger_dynamodb::items::Item],
) -> io::Result<()> {
    let mut pending: Vec<WriteRequest> = chunk
        .iter()
        .map(|item| {
            let put = PutRequest::builder().set_item(Some(item.clone())).build().map_err(sdk_err)?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<io::Result<_>>()?;
    while !pending.is_empty() {
        let out = client.batch_write_item().request_items(target, pending).send().await.map_err(sdk_err)?;
        pending = out.unprocessed_items.and_then(|mut u| u.remove(target)).unwrap_or_default();
    }
    Ok(())
}

/// A new table with `source`'s keys, attributes and global indexes (on demand, every attribute
/// projected), once active.
async fn create_like(client: &Client, source: &str, target: &str) -> io::Result<()> {
    let described = client.describe_table().table_name(source).send().await.map_err(sdk_err)?;
    let table = described.table.ok_or_else(|| io::Error::other(format!("{source} is not described")))?;
    let indexes = table
        .global_secondary_indexes()
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .set_index_name(index.index_name.clone())
                .set_key_schema(index.key_schema.clone())
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(sdk_err)
        })
        .collect::<io::Result<Vec<_>>>()?;
    client
        .create_table()
        .table_name(target)
        .set_key_schema(table.key_schema)
        .set_attribute_definitions(table.attribute_definitions)
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(sdk_err)?;
    wait_active(client, target).await
}

/// The AWS restore: `RestoreTableToPointInTime` of `source` into `target` (to `at`, or to the
/// latest restorable instant), waited for. Returns the restore point.
async fn point_in_time(
    client: &Client,
    source: &str,
    target: &str,
    at: Option<OffsetDateTime>,
) -> io::Result<OffsetDateTime> {
    let restore_point = match at {
        Some(at) => at,
        None => {
            let backups =
                client.describe_continuous_backups().table_name(source).send().await.map_err(sdk_err)?;
            let latest = backups
                .continuous_backups_description
                .and_then(|d| d.point_in_time_recovery_description)
                .and_then(|p| p.latest_restorable_date_time)
                .ok_or_else(|| io::Error::other(format!("{source} has no point-in-time recovery")))?;
            OffsetDateTime::from_unix_timestamp_nanos(latest.as_nanos()).map_err(io::Error::other)?
        }
    };
    let restore_at = aws_sdk_dynamodb::primitives::DateTime::from_nanos(restore_point.unix_timestamp_nanos())
        .map_err(io::Error::other)?;
    client
        .restore_table_to_point_in_time()
        .source_table_name(source)
        .target_table_name(target)
        .restore_date_time(restore_at)
        .billing_mode_override(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(sdk_err)?;
    wait_active(client, target).await?;
    Ok(restore_point)
}

async fn wait_active(client: &Client, table: &str) -> io::Result<()> {
    loop {
        let described = client.describe_table().table_name(table).send().await.map_err(sdk_err)?;
        if described.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The report, as `cargo stack drill` prints it.
pub fn render(report: &DrillReport) -> String {
    let mut out = format!(
        "restored {} into {} ({} items)\n  restore point  {}\n  restore took   {:.1} s\n  check took     {:.1} s\n  RPO            {:.1} s (writes after the restore point)\n  RTO            {:.1} s (to a table proven whole)\n",
        report.source,
        report.restored,
        report.items,
        report.restore_point,
        report.restore_took.as_secs_f64(),
        report.check_took.as_secs_f64(),
        report.rpo().as_secs_f64(),
        report.rto().as_secs_f64(),
    );
    for tenant in &report.tenants {
        let against =
            tenant.against_run.map_or("no signed checkpoint before the restore point".to_owned(), |run| {
                format!("and against its signed checkpoint of run {run}")
            });
        out += &format!(
            "  tenant {}: {} shards, {} entries, {} open sides, checked from the first entry {against}: {}\n",
            tenant.tenant,
            tenant.shards,
            tenant.entries,
            tenant.open_sides,
            if tenant.faults.is_empty() {
                "whole".to_owned()
            } else {
                format!("{} faults", tenant.faults.len())
            },
        );
        for fault in &tenant.faults {
            out += &format!("    {fault}\n");
        }
    }
    out +=
        if report.passed() { "the restored table is whole\n" } else { "THE RESTORED TABLE IS NOT WHOLE\n" };
    out
}
