//! The API's scenarios on the memory store: through the router, the worker and the sweeper, in
//! process.

harness::api_scenarios!(harness::Api::memory());
