//! The API's scenarios on DynamoDB Local (the same list the fast tier runs on the memory store),
//! and what only the real store shows: its faults answered as problems, and what each read costs
//! it, counted at the fault proxy.

harness::api_scenarios!(harness::Api::new().await);

mod dynamodb;
