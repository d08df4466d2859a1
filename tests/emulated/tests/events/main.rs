//! Events out: the events API, the publisher on the table's stream, and webhook deliveries.

mod api;
mod deliver;
mod publish;
