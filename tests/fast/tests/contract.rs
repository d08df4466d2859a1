//! The store contract on the memory store.

fn store() -> std::sync::Arc<dyn ledger::port::Store> {
    std::sync::Arc::new(ledger_memory::MemoryStore::new())
}

harness::contract_tests!(crate::store());
