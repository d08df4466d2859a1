//! Bank statements read into the ledger's terms (`ledger::reconcile::Statement`): each line's
//! booking date, side, amount in the currency's minor unit, reference and description.
//!
//! - **CSV**: a header row naming the columns, in any order (case ignored): `date` (or
//!   `booking_date`, `YYYY-MM-DD`), `amount` (a signed decimal in the currency's major unit:
//!   `-12.50` is money out), and optionally `currency` (the account's), `reference`,
//!   `description`.
//! - **camt.053** (ISO 20022 `BkToCstmrStmt`, any version): each booked `Ntry` of the first `Stmt`:
//!   `Amt` and its `Ccy`, `CdtDbtInd`, `BookgDt` (else `ValDt`), the reference (the first
//!   `EndToEndId` other than `NOTPROVIDED`, else `AcctSvcrRef`), the description (`Ustrd`, else
//!   `AddtlNtryInf`). Pending entries (`Sts` `PDNG`) are left out.
//!
//! Every error names the line (CSV row or camt entry) at fault.

use ledger::field::FieldError;
use ledger::reconcile::{Statement, StatementLine};
use ledger::{Amount, Currency, Direction};
use quick_xml::events::Event;
use time::Date;
use time::format_description::well_known::Iso8601;

/// The statement formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Camt053,
}

impl Format {
    pub fn parse(raw: &str) -> Result<Format, FieldError> {
        match raw {
            "csv" => Ok(Format::Csv),
            "camt.053" => Ok(Format::Camt053),
            _ => Err(FieldError::new("must be csv or camt.053")),
        }
    }
}

/// `text`, a statement in `format` of an account in `currency`.
pub fn parse(format: Format, text: &str, currency: Currency) -> Result<Statement, FieldError> {
    match format {
        Format::Csv => parse_csv(text, currency),
        Format::Camt053 => parse_camt053(text, currency),
    }
}

fn at(line: u32, reason: impl std::fmt::Display) -> FieldError {
    FieldError::new(format!("line {line}: {reason}"))
}

/// `raw` (a decimal in `currency`'s major unit, no sign) in its minor unit.
fn minor_units(raw: &str, currency: Currency) -> Result<u64, String> {
    let exponent =
        iso_currency::Currency::from_code(currency.as_str()).and_then(|c| c.exponent()).map_or(2, u32::from);
    let (whole, fraction) = raw.trim().split_once('.').unwrap_or((raw.trim(), ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return Err(format!("amount {raw:?} is not a decimal"));
    }
    if fraction.len() > exponent as usize {
        return Err(format!("amount {raw} has more decimals than {currency}'s {exponent}"));
    }
    let scaled = format!("{whole}{fraction:0<width$}", width = exponent as usize);
    scaled.parse::<u64>().map_err(|_| format!("amount {raw} is too large"))
}

fn amount(raw: &str, currency: Currency) -> Result<Amount, String> {
    let units = minor_units(raw, currency)?;
    Amount::new(units).map_err(|e| format!("amount {raw}: {}", e.reason()))
}

fn date(raw: &str) -> Result<Date, String> {
    // A date, or the date of a date-time.
    let day = raw.trim().get(..10).unwrap_or(raw.trim());
    Date::parse(day, &Iso8601::DATE).map_err(|_| format!("date {raw:?} is not YYYY-MM-DD"))
}

fn text(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A CSV statement (see the crate's documentation).
pub fn parse_csv(input: &str, currency: Currency) -> Result<Statement, FieldError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input.as_bytes());
    let headers = reader.headers().map_err(|e| at(1, e))?.clone();
    let column =
        |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
    let date_at = column(&["date", "booking_date"]).ok_or_else(|| at(1, "no date column"))?;
    let amount_at = column(&["amount"]).ok_or_else(|| at(1, "no amount column"))?;
    let (currency_at, reference_at, description_at) =
        (column(&["currency"]), column(&["reference"]), column(&["description"]));
    let mut lines = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let number = index as u32 + 2;
        let record = record.map_err(|e| at(number, e))?;
        let field = |i: Option<usize>| i.and_then(|i| record.get(i));
        if let Some(code) = text(field(currency_at)) {
            if code != currency.as_str() {
                return Err(at(number, format!("currency {code} is not the account's {currency}")));
            }
        }
        let raw = field(Some(amount_at)).unwrap_or_default();
        let (direction, magnitude) = match raw.strip_prefix('-') {
            Some(rest) => (Direction::Debit, rest),
            None => (Direction::Credit, raw.strip_prefix('+').unwrap_or(raw)),
        };
        lines.push(StatementLine {
            line: lines.len() as u32 + 1,
            booked_on: date(field(Some(date_at)).unwrap_or_default()).map_err(|e| at(number, e))?,
            direction,
            amount: amount(magnitude, currency).map_err(|e| at(number, e))?,
            reference: text(field(reference_at)),
            description: text(field(description_at)),
        });
    }
    Statement::new(None, currency, lines)
}

/// One `Ntry` as read.
#[derive(Default)]
struct Ntry {
    amount: Option<String>,
    currency: Option<String>,
    side: Option<String>,
    status: Option<String>,
    booked: Option<String>,
    valued: Option<String>,
    end_to_end: Option<String>,
    servicer_ref: Option<String>,
    remittance: Option<String>,
    info: Option<String>,
}

/// A camt.053 statement (see the crate's documentation).
pub fn parse_camt053(input: &str, currency: Currency) -> Result<Statement, FieldError> {
    let mut reader = quick_xml::Reader::from_str(input);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let (mut statement_id, mut account_currency) = (None, None);
    let (mut entries, mut current): (Vec<Ntry>, Option<Ntry>) = (Vec::new(), None);
    let mut statements = 0;
    let malformed = |e: &dyn std::fmt::Display| FieldError::new(format!("is not camt.053 XML: {e}"));
    loop {
        match reader.read_event().map_err(|e| malformed(&e))? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if name == "Stmt" {
                    statements += 1;
                }
                if statements == 1 && name == "Ntry" && path.last().is_some_and(|p| p == "Stmt") {
                    current = Some(Ntry::default());
                }
                if name == "Amt" {
                    if let Some(entry) = current.as_mut().filter(|_| path.last().is_some_and(|p| p == "Ntry"))
                    {
                        for attribute in start.attributes().flatten() {
                            if attribute.key.local_name().as_ref() == b"Ccy" {
                                entry.currency = Some(String::from_utf8_lossy(&attribute.value).into_owned());
                            }
                        }
                    }
                }
                path.push(name);
            }
            Event::End(_) => {
                let closed = path.pop();
                if closed.as_deref() == Some("Ntry") && path.last().is_some_and(|p| p == "Stmt") {
                    entries.extend(current.take());
                }
            }
            Event::Text(value) => {
                let value = value.unescape().map_err(|e| malformed(&e))?.trim().to_owned();
                let ends =
                    |tail: &[&str]| path.len() >= tail.len() && path[path.len() - tail.len()..] == *tail;
                if statements == 1 && current.is_none() {
                    if ends(&["Stmt", "Id"]) {
                        statement_id.get_or_insert(value);
                    } else if ends(&["Stmt", "Acct", "Ccy"]) {
                        account_currency.get_or_insert(value);
                    }
                } else if let Some(entry) = current.as_mut() {
                    let slot = if ends(&["Ntry", "Amt"]) {
                        &mut entry.amount
                    } else if ends(&["Ntry", "CdtDbtInd"]) {
                        &mut entry.side
                    } else if ends(&["Ntry", "Sts"]) || ends(&["Ntry", "Sts", "Cd"]) {
                        &mut entry.status
                    } else if ends(&["BookgDt", "Dt"]) || ends(&["BookgDt", "DtTm"]) {
                        &mut entry.booked
                    } else if ends(&["ValDt", "Dt"]) || ends(&["ValDt", "DtTm"]) {
                        &mut entry.valued
                    } else if ends(&["Refs", "EndToEndId"]) && value != "NOTPROVIDED" {
                        &mut entry.end_to_end
                    } else if ends(&["Ntry", "AcctSvcrRef"]) {
                        &mut entry.servicer_ref
                    } else if ends(&["RmtInf", "Ustrd"]) {
                        &mut entry.remittance
                    } else if ends(&["Ntry", "AddtlNtryInf"]) {
                        &mut entry.info
                    } else {
                        continue;
                    };
                    slot.get_or_insert(value);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if statements == 0 {
        return Err(FieldError::new("is not camt.053: no BkToCstmrStmt/Stmt"));
    }
    if let Some(code) = account_currency.filter(|c| c != currency.as_str()) {
        return Err(FieldError::new(format!("is of an account in {code}, not the account's {currency}")));
    }
    let mut lines = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let number = index as u32 + 1;
        if entry.status.as_deref().is_some_and(|s| s != "BOOK") {
            continue;
        }
        if let Some(code) = entry.currency.as_deref().filter(|c| *c != currency.as_str()) {
            return Err(at(number, format!("currency {code} is not the account's {currency}")));
        }
        let direction = match entry.side.as_deref() {
            Some("CRDT") => Direction::Credit,
            Some("DBIT") => Direction::Debit,
            other => return Err(at(number, format!("CdtDbtInd {other:?} is neither CRDT nor DBIT"))),
        };
        let booked = entry.booked.or(entry.valued).ok_or_else(|| at(number, "no BookgDt nor ValDt"))?;
        lines.push(StatementLine {
            line: lines.len() as u32 + 1,
            booked_on: date(&booked).map_err(|e| at(number, e))?,
            direction,
            amount: amount(entry.amount.as_deref().unwrap_or_default(), currency)
                .map_err(|e| at(number, e))?,
            reference: entry.end_to_end.or(entry.servicer_ref),
            description: entry.remittance.or(entry.info),
        });
    }
    Statement::new(statement_id, currency, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn sample(name: &str) -> String {
        let path = format!("{}/../../events/statements/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_sample_statements_read_as_the_same_lines() {
        let csv = parse_csv(&sample("statement.csv"), eur()).unwrap();
        let camt = parse_camt053(&sample("camt053.xml"), eur()).unwrap();
        assert_eq!(camt.bank_id.as_deref(), Some("STMT-2026-12-07"));
        let first = &csv.lines[0];
        assert_eq!(
            (first.booked_on, first.direction, first.amount.get()),
            (date!(2026 - 12 - 07), Direction::Credit, 250_000)
        );
        assert_eq!(first.reference.as_deref(), Some("fund-1"));
        assert_eq!(csv.lines.len(), 4);
        assert_eq!(camt.lines.len(), 4, "the pending entry is left out");
        assert_eq!(csv.digest(), camt.digest(), "the same statement in both formats");
    }

    #[test]
    fn amounts_keep_to_the_currency_s_decimals_and_errors_name_the_line() {
        assert_eq!(minor_units("12.5", eur()), Ok(1250));
        assert_eq!(minor_units("12", eur()), Ok(1200));
        assert_eq!(minor_units("1200", Currency::parse("JPY").unwrap()), Ok(1200));
        assert!(minor_units("12.345", eur()).unwrap_err().contains("more decimals"));
        assert!(minor_units("1,2", eur()).is_err());
        let bad = parse_csv("date,amount\n2026-12-01,10.00\n2026-12-02,ten\n", eur()).unwrap_err();
        assert!(bad.reason().starts_with("line 3:"), "{}", bad.reason());
        let usd = parse_csv("date,amount,currency\n2026-12-01,1.00,USD\n", eur()).unwrap_err();
        assert!(usd.reason().contains("USD"), "{}", usd.reason());
        assert!(parse_camt053("<Document/>", eur()).is_err());
        assert!(parse_camt053("not xml <", eur()).is_err());
        assert!(parse_csv("date,amount\n", eur()).is_err(), "no line");
        assert_eq!(Format::parse("mt940").unwrap_err().reason(), "must be csv or camt.053");
    }
}
