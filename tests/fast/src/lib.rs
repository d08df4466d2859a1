//! The fast tier's tests are in `tests/`: they need no code of their own.
