//! `GET /v1/transfers`: the tenant's transfers by account (either side), status, kind, creation
//! range, batch, linked chain and metadata, newest first, a page at a time.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use ledger::{AccountId, BatchId, KindName, LedgerError, StatusName, Transfer, TransferId, TransferQuery};

use crate::body::ListBody;
use crate::cursor;
use crate::extract::{Instants, PageParams, invalid, metadata_filter};
use crate::problem::ApiError;
use crate::rate_limit::Admitted;
use crate::state::AppState;

/// The parameters a search takes besides `metadata[key]`.
const PARAMETERS: &[&str] = &["account", "status", "kind", "from", "to", "batch", "chain", "limit", "cursor"];

/// `GET /v1/transfers?account=…&status=…&kind=…&from=…&to=…&batch=…&chain=…&metadata[key]=value`: `from`
/// inclusive, `to` exclusive (RFC 3339). An unknown parameter is refused, so a misspelt filter
/// never widens a search to everything.
pub async fn search_transfers(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Query(raw): Query<HashMap<String, String>>,
    instants: Instants,
    page: PageParams,
) -> Result<Json<ListBody<Transfer>>, ApiError> {
    let query = parse(&raw, &instants)?;
    let after = page.cursor.as_deref().map(cursor::parse_search_cursor).transpose()?;
    let found = app.store.search_transfers(&tenant, &query, page.size, after.as_ref(), app.now()).await?;
    Ok(Json(ListBody { data: found.items, next_cursor: found.next.as_ref().map(cursor::search_cursor) }))
}

fn parse(raw: &HashMap<String, String>, instants: &Instants) -> Result<TransferQuery, ApiError> {
    let field = |name: &str, e| ApiError::from(LedgerError::invalid(name, e));
    let metadata = metadata_filter(raw, PARAMETERS)?;
    let query = TransferQuery {
        account: raw
            .get("account")
            .map(|a| AccountId::parse(a.as_str()))
            .transpose()
            .map_err(|e| field("account", e))?,
        status: raw
            .get("status")
            .map(|s| StatusName::parse(s))
            .transpose()
            .map_err(|e| field("status", e))?,
        kind: raw.get("kind").map(|k| KindName::parse(k)).transpose().map_err(|e| field("kind", e))?,
        created_from: instants.get("from")?,
        created_to: instants.get("to")?,
        batch: raw
            .get("batch")
            .map(|b| BatchId::parse(b.as_str()))
            .transpose()
            .map_err(|e| field("batch", e))?,
        chain: raw
            .get("chain")
            .map(|c| TransferId::parse(c.as_str()))
            .transpose()
            .map_err(|e| field("chain", e))?,
        metadata,
    };
    if let (Some(from), Some(to)) = (query.created_from, query.created_to)
        && from >= to
    {
        return Err(invalid("to", "must be later than `from`"));
    }
    Ok(query)
}
