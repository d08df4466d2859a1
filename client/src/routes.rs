//! Every route the client calls, once: the methods build their requests from these, and a test
//! holds this table to `openapi.yaml` and to the router's, so the client cannot drift from the API.

/// One route: its method and path template (`{id}` stands for the resource's id, and a nested
/// resource's id follows it, as `{reconciliation_id}`), and whether
/// sending it again after an indefinite answer is safe (the request names its own id, or changes
/// nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub idempotent: bool,
}

const fn route(method: &'static str, path: &'static str, idempotent: bool) -> Route {
    Route { method, path, idempotent }
}

pub const CREATE_ACCOUNT: Route = route("POST", "/v1/accounts", true);
pub const LIST_ACCOUNTS: Route = route("GET", "/v1/accounts", true);
pub const GET_ACCOUNT: Route = route("GET", "/v1/accounts/{id}", true);
/// Conditioned on the version it names: sent twice, the second finds it moved (412) or, with
/// `*`, sets what is there already.
pub const UPDATE_ACCOUNT: Route = route("PATCH", "/v1/accounts/{id}", true);
pub const FREEZE_ACCOUNT: Route = route("POST", "/v1/accounts/{id}/freeze", true);
pub const UNFREEZE_ACCOUNT: Route = route("POST", "/v1/accounts/{id}/unfreeze", true);
pub const CLOSE_ACCOUNT: Route = route("POST", "/v1/accounts/{id}/close", true);
pub const LIST_ENTRIES: Route = route("GET", "/v1/accounts/{id}/entries", true);
pub const BALANCE_AT: Route = route("GET", "/v1/accounts/{id}/balance", true);
pub const STATEMENT: Route = route("GET", "/v1/accounts/{id}/statement", true);
/// The statement is its own key: sent twice, the kept reconciliation answers.
pub const RECONCILE: Route = route("POST", "/v1/accounts/{id}/reconciliations", true);
pub const GET_RECONCILIATION: Route =
    route("GET", "/v1/accounts/{id}/reconciliations/{reconciliation_id}", true);
pub const CREATE_TRANSFER: Route = route("POST", "/v1/transfers", true);
pub const SEARCH_TRANSFERS: Route = route("GET", "/v1/transfers", true);
pub const GET_TRANSFER: Route = route("GET", "/v1/transfers/{id}", true);
pub const UPDATE_TRANSFER: Route = route("PATCH", "/v1/transfers/{id}", true);
pub const CREATE_LINKED: Route = route("POST", "/v1/linked-transfers", true);
pub const SUBMIT_BATCH: Route = route("POST", "/v1/transfer-batches", true);
pub const GET_BATCH: Route = route("GET", "/v1/transfer-batches/{id}", true);
pub const LIST_EVENTS: Route = route("GET", "/v1/events", true);
pub const GET_EVENT: Route = route("GET", "/v1/events/{id}", true);
/// The server picks the endpoint's id: a retry after an indefinite answer could add a second one.
pub const CREATE_ENDPOINT: Route = route("POST", "/v1/webhook-endpoints", false);
pub const LIST_ENDPOINTS: Route = route("GET", "/v1/webhook-endpoints", true);
pub const GET_ENDPOINT: Route = route("GET", "/v1/webhook-endpoints/{id}", true);
pub const UPDATE_ENDPOINT: Route = route("PATCH", "/v1/webhook-endpoints/{id}", true);
pub const DELETE_ENDPOINT: Route = route("DELETE", "/v1/webhook-endpoints/{id}", true);
pub const ROTATE_SECRET: Route = route("POST", "/v1/webhook-endpoints/{id}/rotate-secret", false);
pub const LIST_DELIVERIES: Route = route("GET", "/v1/webhook-endpoints/{id}/deliveries", true);
pub const REDELIVER: Route = route("POST", "/v1/webhook-endpoints/{id}/deliveries", false);
pub const REPLAY: Route = route("POST", "/v1/webhook-endpoints/{id}/replay", false);

/// Every route, as the API's route table lists them.
pub const ALL: [Route; 30] = [
    CREATE_ACCOUNT,
    LIST_ACCOUNTS,
    GET_ACCOUNT,
    UPDATE_ACCOUNT,
    FREEZE_ACCOUNT,
    UNFREEZE_ACCOUNT,
    CLOSE_ACCOUNT,
    LIST_ENTRIES,
    BALANCE_AT,
    STATEMENT,
    RECONCILE,
    GET_RECONCILIATION,
    CREATE_TRANSFER,
    SEARCH_TRANSFERS,
    GET_TRANSFER,
    UPDATE_TRANSFER,
    CREATE_LINKED,
    SUBMIT_BATCH,
    GET_BATCH,
    LIST_EVENTS,
    GET_EVENT,
    CREATE_ENDPOINT,
    LIST_ENDPOINTS,
    GET_ENDPOINT,
    UPDATE_ENDPOINT,
    DELETE_ENDPOINT,
    ROTATE_SECRET,
    LIST_DELIVERIES,
    REDELIVER,
    REPLAY,
];

impl Route {
    /// The path with its parameter filled in (ids hold only URL-safe characters).
    pub fn path_with(&self, id: Option<&str>, nested: Option<&str>) -> String {
        let path = match id {
            Some(id) => self.path.replace("{id}", id),
            None => self.path.to_owned(),
        };
        match nested {
            Some(nested) => path.replace("{reconciliation_id}", nested),
            None => path,
        }
    }
}
