//! The queued path end to end: the API, moto's queue, the event source's concurrent invocations
//! of the worker, with duplicated and killed deliveries; request limits; a spike.

mod fairness;
mod queued;
mod spike;
