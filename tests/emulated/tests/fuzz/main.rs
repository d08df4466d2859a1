//! Fuzzing the API: random requests through the router, and schemathesis from the OpenAPI
//! document against the local stack.

mod requests;
mod schema;
