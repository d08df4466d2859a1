//! A function's instances, as Lambda runs them: each serves one invocation at a time, the last to
//! finish serves the next (a warm one), and an invocation that finds every instance busy starts
//! another. What instances hold in memory (a store's cached balances, contention levels and
//! turns) is then never shared by two invocations at once: they meet only in the table.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

pub struct Instances<T> {
    idle: Arc<Mutex<Vec<T>>>,
    start: Arc<dyn Fn() -> T + Send + Sync>,
}

impl<T> Clone for Instances<T> {
    fn clone(&self) -> Self {
        Self { idle: self.idle.clone(), start: self.start.clone() }
    }
}

impl<T: Clone> Instances<T> {
    /// Instances started by `start`, none yet.
    pub fn new(start: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self { idle: Arc::default(), start: Arc::new(start) }
    }

    /// Runs `invocation` on an idle instance, or on a new one if none is idle.
    pub async fn serve<F: Future>(&self, invocation: impl FnOnce(T) -> F) -> F::Output {
        let idle = || self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let instance = idle().pop().unwrap_or_else(|| (self.start)());
        let output = invocation(instance.clone()).await;
        idle().push(instance);
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn invocations_at_once_get_instances_of_their_own_and_later_ones_reuse_them() {
        let count = Arc::new(AtomicUsize::new(0));
        let instances = {
            let count = count.clone();
            Instances::new(move || count.fetch_add(1, Ordering::SeqCst))
        };
        let (gate, _) = tokio::sync::broadcast::channel::<()>(1);
        let at_once = (0..3).map(|_| {
            let (instances, mut open) = (instances.clone(), gate.subscribe());
            tokio::spawn(async move {
                instances
                    .serve(|id| async move {
                        let _ = open.recv().await;
                        id
                    })
                    .await
            })
        });
        let handles: Vec<_> = at_once.collect();
        while count.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        gate.send(()).unwrap();
        let mut ids = Vec::new();
        for handle in handles {
            ids.push(handle.await.unwrap());
        }
        ids.sort();
        assert_eq!(ids, vec![0, 1, 2], "three at once: three instances");
        assert!(instances.serve(|id| async move { id }).await < 3);
        assert_eq!(count.load(Ordering::SeqCst), 3, "one after them is served by a warm one");
    }
}
