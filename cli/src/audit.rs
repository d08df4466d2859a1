//! `ledger audit`: a tenant's history checked offline, with no AWS access and no token. Its inputs
//! are an export of the table (DynamoDB JSON lines, as DynamoDB's own export writes them), a
//! digest document (the signed digest and its leaves) and the signer's public key (DER, as KMS's
//! `GetPublicKey` exports it).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clap::Args;
use ledger::audit::{DigestDocument, audit};
use ledger::digest::DigestTree;
use ledger::{AccountId, TenantId};
use ledger_dynamodb::export::{read_export, shard_histories, transfers};
use serde_json::json;

use crate::output::{Format, Printer};
use crate::{CliError, usage};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The table's export: one `{"Item": {...}}` per line (DynamoDB JSON).
    #[arg(long)]
    export: PathBuf,
    /// The digest document (JSON): the signed digest and the leaves it was taken over.
    #[arg(long)]
    digest: PathBuf,
    /// The signer's public key: DER SubjectPublicKeyInfo.
    #[arg(long)]
    public_key: PathBuf,
    /// Also print this account's proof: its leaves and their Merkle paths to the signed root.
    #[arg(long)]
    proof: Option<String>,
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|e| usage(&path.display().to_string(), e))
}

/// Checks the export against the digest; fails (after printing what it found) unless everything
/// is as signed.
pub fn run(args: AuditArgs, print: &mut Printer<'_>) -> Result<(), CliError> {
    let document: DigestDocument =
        serde_json::from_reader(BufReader::new(open(&args.digest)?)).map_err(|e| usage("--digest", e))?;
    let public_key = std::fs::read(&args.public_key).map_err(|e| usage("--public-key", e))?;
    let items = read_export(BufReader::new(open(&args.export)?)).map_err(|e| usage("--export", e))?;
    let tenant: &TenantId = &document.signed.digest.tenant;
    let histories = shard_histories(&items, tenant).map_err(|e| usage("--export", e))?;
    let transfers = transfers(&items, tenant).map_err(|e| usage("--export", e))?;
    let report = audit(&histories, &transfers, &document, &public_key);
    let proofs = match &args.proof {
        Some(raw) => {
            let account = AccountId::parse(raw).map_err(|e| usage("--proof", e))?;
            DigestTree::new(document.leaves.clone()).proofs(&account)
        }
        None => Vec::new(),
    };
    let signature = match &report.signature {
        Ok(()) => "good".to_owned(),
        Err(err) => err.to_string(),
    };
    match print.format {
        Format::Json => print.json_value(&json!({
            "passed": report.passed(),
            "tenant": tenant,
            "digest": document.signed.digest,
            "signature": signature,
            "leaves_match_root": report.leaves_match_root,
            "accounts": report.accounts,
            "shards": report.shards,
            "entries": report.entries,
            "transfers": report.transfers,
            "findings": report.findings.iter().map(|f| json!({
                "account_id": f.account_id, "shard": f.shard, "fault": f.fault.to_string(),
            })).collect::<Vec<_>>(),
            "transfer_findings": report.transfer_findings.iter().map(|f| json!({
                "transfer_id": f.transfer_id, "fault": f.fault.to_string(),
            })).collect::<Vec<_>>(),
            "pending_findings": report.pending_findings.iter().map(|f| json!({
                "account_id": f.account_id, "fault": f.to_string(),
            })).collect::<Vec<_>>(),
            "proofs": proofs,
        }))?,
        Format::Table => {
            print.note(&format!(
                "tenant {tenant}: {} accounts, {} shards, {} entries, {} transfers; digest of {} leaves, signature {signature}, leaves {} its root",
                report.accounts,
                report.shards,
                report.entries,
                report.transfers,
                document.signed.digest.size,
                if report.leaves_match_root { "give" } else { "do not give" },
            ))?;
            for finding in &report.findings {
                print.note(&format!("{} shard {}: {}", finding.account_id, finding.shard, finding.fault))?;
            }
            for finding in &report.transfer_findings {
                print.note(&format!("transfer {}: {}", finding.transfer_id, finding.fault))?;
            }
            for finding in &report.pending_findings {
                print.note(&format!("account {}: {finding}", finding.account_id))?;
            }
            if !proofs.is_empty() {
                print.json_value(&json!(proofs))?;
            }
        }
    }
    let found = report.findings.len() + report.transfer_findings.len() + report.pending_findings.len();
    if report.passed() { Ok(()) } else { Err(CliError::AuditFailed(found)) }
}
