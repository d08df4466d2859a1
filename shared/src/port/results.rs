//! What the port's operations give back besides domain values: a create's replay flag, a list's
//! page.

/// The result of an idempotent create: either it wrote a new item, or the id already held an
/// identical request and this is a replay of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn value(&self) -> &T {
        match self {
            Created::New(v) | Created::Replayed(v) => v,
        }
    }

    pub fn into_value(self) -> T {
        match self {
            Created::New(v) | Created::Replayed(v) => v,
        }
    }

    pub fn is_replay(&self) -> bool {
        matches!(self, Created::Replayed(_))
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Created<U> {
        match self {
            Created::New(v) => Created::New(f(v)),
            Created::Replayed(v) => Created::Replayed(f(v)),
        }
    }
}

/// One page of a list, and where the next starts (`None`: this was the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    pub fn empty() -> Self {
        Self { items: Vec::new(), next: None }
    }
}
