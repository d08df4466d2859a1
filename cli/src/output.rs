//! What the CLI prints: aligned tables for people, or the API's JSON for scripts.

use std::io::{self, Write};

use ledger_client::types::*;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug)]
pub enum Format {
    Table,
    Json,
}

pub struct Printer<'a> {
    pub out: &'a mut dyn Write,
    pub format: Format,
}

fn at(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

impl Printer<'_> {
    pub fn json_value(&mut self, value: &serde_json::Value) -> Result<(), crate::CliError> {
        Ok(self.json(value)?)
    }

    fn json(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *self.out, value).map_err(io::Error::other)?;
        writeln!(self.out)
    }

    /// Rows under a header, each column as wide as its widest cell.
    fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            padded.join("  ").trim_end().to_owned()
        };
        writeln!(self.out, "{}", line(header.iter().map(|h| h.to_uppercase()).collect()))?;
        for row in rows {
            writeln!(self.out, "{}", line(row))?;
        }
        Ok(())
    }

    /// A line for people: printed with tables, left out of JSON so the output stays parseable.
    pub fn note(&mut self, text: &str) -> Result<(), crate::CliError> {
        if matches!(self.format, Format::Table) {
            writeln!(self.out, "{text}")?;
        }
        Ok(())
    }

    pub fn written(&mut self, replayed: bool) -> Result<(), crate::CliError> {
        if replayed {
            self.note("(a replay: this id was already written; nothing applied again)")
        } else {
            Ok(())
        }
    }

    pub fn accounts(&mut self, accounts: &[Account]) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(&accounts)?);
        }
        let rows = accounts
            .iter()
            .map(|a| {
                vec![
                    a.id.to_string(),
                    a.currency.to_string(),
                    a.balance.to_string(),
                    a.available.to_string(),
                    a.status.as_str().to_owned(),
                    a.allow_overdraft.to_string(),
                    serde_json::to_string(&a.metadata).unwrap_or_default(),
                ]
            })
            .collect();
        Ok(self.table(&["id", "currency", "balance", "available", "status", "overdraft", "metadata"], rows)?)
    }

    pub fn transfers(&mut self, transfers: &[Transfer]) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(&transfers)?);
        }
        let rows = transfers
            .iter()
            .map(|t| {
                let reason = t.reason.as_ref().and_then(|r| r["code"].as_str().map(str::to_owned));
                vec![
                    t.id.to_string(),
                    t.status.name().to_owned(),
                    or_dash(t.debit_account_id.as_ref()),
                    or_dash(t.credit_account_id.as_ref()),
                    or_dash(t.amount.map(|a| a.get())),
                    or_dash(t.currency),
                    at(t.created_at),
                    reason.unwrap_or_default(),
                ]
            })
            .collect();
        Ok(self.table(&["id", "status", "from", "to", "amount", "currency", "created", "reason"], rows)?)
    }

    pub fn entries(&mut self, entries: &[Entry]) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(&entries)?);
        }
        let rows = entries
            .iter()
            .map(|e| {
                vec![
                    e.sequence.to_string(),
                    e.transfer_id.to_string(),
                    format!("{:?}", e.direction).to_lowercase(),
                    e.effect.clone(),
                    e.amount.get().to_string(),
                    e.balance_after.to_string(),
                    at(e.created_at),
                ]
            })
            .collect();
        Ok(self.table(&["seq", "transfer", "side", "effect", "amount", "balance after", "at"], rows)?)
    }

    pub fn balance(&mut self, b: &BalanceAt) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(b)?);
        }
        let row = vec![
            b.account_id.to_string(),
            at(b.at),
            b.balance.to_string(),
            b.available.to_string(),
            b.entry_count.to_string(),
        ];
        Ok(self.table(&["account", "at", "balance", "available", "entries"], vec![row])?)
    }

    pub fn statement(&mut self, s: &Statement) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(s)?);
        }
        writeln!(self.out, "{}: opening balance {}", s.account_id, s.opening_balance.balance)?;
        self.entries(&s.entries)?;
        if let Some(closing) = &s.closing_balance {
            writeln!(self.out, "closing balance {} at {}", closing.balance, at(s.to))?;
        }
        Ok(())
    }

    pub fn reconciliation(&mut self, r: &Reconciliation) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(r)?);
        }
        writeln!(
            self.out,
            "{} reconciled {} to {}: {} matched, {} lines the ledger lacks, {} entries the bank lacks (id {})",
            r.account_id,
            r.from,
            r.to,
            r.matched.len(),
            r.unmatched_lines.len(),
            r.unmatched_entries.len(),
            r.id
        )?;
        let rows = r
            .unmatched_lines
            .iter()
            .map(|l| {
                let adjusted = r.adjustments.iter().find(|a| a.as_str().ends_with(&format!("-{}", l.line)));
                vec![
                    l.line.to_string(),
                    l.booked_on.to_string(),
                    l.direction.code().to_owned(),
                    l.amount.get().to_string(),
                    or_dash(l.reference.as_ref()),
                    or_dash(adjusted),
                ]
            })
            .collect();
        self.table(&["line", "booked", "side", "amount", "reference", "booked by"], rows)?;
        let rows = r
            .unmatched_entries
            .iter()
            .map(|e| {
                vec![
                    e.transfer_id.to_string(),
                    at(e.created_at),
                    e.direction.code().to_owned(),
                    e.amount.get().to_string(),
                ]
            })
            .collect();
        Ok(self.table(&["transfer (not on the statement)", "at", "side", "amount"], rows)?)
    }

    pub fn batch(&mut self, b: &TransferBatch) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(b)?);
        }
        let row = vec![
            b.id.to_string(),
            b.total.to_string(),
            b.queued.to_string(),
            b.committed.to_string(),
            b.rejected.to_string(),
        ];
        Ok(self.table(&["batch", "total", "queued", "committed", "rejected"], vec![row])?)
    }

    pub fn events(&mut self, events: &[Event]) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            // One event a line: a tail's output is a stream of JSON documents.
            for event in events {
                writeln!(self.out, "{}", serde_json::to_string(event).map_err(io::Error::other)?)?;
            }
            return Ok(());
        }
        let rows = events.iter().map(|e| vec![at(e.created), e.kind.clone(), e.id.to_string()]).collect();
        Ok(self.table(&["created", "type", "id"], rows)?)
    }

    pub fn endpoints(&mut self, endpoints: &[WebhookEndpoint]) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(&endpoints)?);
        }
        let rows = endpoints
            .iter()
            .map(|e| vec![e.id.to_string(), e.url.clone(), e.event_types.join(","), e.enabled.to_string()])
            .collect();
        Ok(self.table(&["id", "url", "events", "enabled"], rows)?)
    }

    pub fn with_secret(&mut self, e: &WebhookEndpointWithSecret) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(e)?);
        }
        let row = vec![e.id.to_string(), e.url.clone(), e.event_types.join(","), e.enabled.to_string()];
        self.table(&["id", "url", "events", "enabled"], vec![row])?;
        Ok(writeln!(self.out, "signing secret (shown once): {}", e.secret)?)
    }

    pub fn deliveries(&mut self, deliveries: &[WebhookDelivery]) -> Result<(), crate::CliError> {
        if let Format::Json = self.format {
            return Ok(self.json(&deliveries)?);
        }
        let rows = deliveries
            .iter()
            .map(|d| {
                vec![
                    d.event_id.to_string(),
                    d.status.clone(),
                    d.attempts.len().to_string(),
                    or_dash(d.next_attempt_at.map(at)),
                ]
            })
            .collect();
        Ok(self.table(&["event", "status", "attempts", "next attempt"], rows)?)
    }
}
