//! Which connections are idle, oldest first, so that a full server makes
//! room by closing the connection that has waited longest without a request
//! in flight (an idle keep-alive, or a client still trickling its headers),
//! never one that is being served.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

#[derive(Default)]
struct Inner {
    /// Bumped on every transition to idle: orders idle connections by age.
    clock: u64,
    conns: HashMap<u64, Entry>,
    /// Idle connections by the `clock` value at which they became idle.
    idle: BTreeMap<u64, u64>,
}

struct Entry {
    task: AbortHandle,
    in_flight: u32,
    idle_since: Option<u64>,
}

impl Inner {
    fn mark_idle(&mut self, id: u64) {
        self.clock += 1;
        let at = self.clock;
        if let Some(e) = self.conns.get_mut(&id) {
            e.idle_since = Some(at);
            self.idle.insert(at, id);
        }
    }
}

#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Inner>>);

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every
        // critical section is a few map operations.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a connection as idle; `spawn` starts its task. The lock is
    /// held across the spawn so the task cannot report activity before it
    /// is registered.
    pub fn add(&self, id: u64, spawn: impl FnOnce() -> AbortHandle) {
        let mut inner = self.lock();
        let task = spawn();
        inner.conns.insert(
            id,
            Entry {
                task,
                in_flight: 0,
                idle_since: None,
            },
        );
        inner.mark_idle(id);
    }

    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// A request started on `id`; the guard marks its end.
    pub fn busy(&self, id: u64) -> Busy {
        let mut inner = self.lock();
        if let Some(e) = inner.conns.get_mut(&id) {
            e.in_flight += 1;
            if let Some(at) = e.idle_since.take() {
                inner.idle.remove(&at);
            }
        }
        Busy {
            registry: self.clone(),
            id,
        }
    }

    pub fn remove(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(e) = inner.conns.remove(&id)
            && let Some(at) = e.idle_since
        {
            inner.idle.remove(&at);
        }
    }

    /// Close the connection idle the longest; `false` if none is idle.
    pub fn evict_oldest_idle(&self) -> bool {
        let mut inner = self.lock();
        let Some((_, id)) = inner.idle.pop_first() else {
            return false;
        };
        if let Some(e) = inner.conns.remove(&id) {
            e.task.abort();
        }
        true
    }

    /// Close every idle connection (shutdown); busy ones finish their request.
    pub fn close_idle(&self) {
        while self.evict_oldest_idle() {}
    }
}

/// Held while a request's response is being produced and written.
pub struct Busy {
    registry: Registry,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        let Some(e) = inner.conns.get_mut(&self.id) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        if e.in_flight == 0 {
            inner.mark_idle(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked() -> AbortHandle {
        tokio::spawn(std::future::pending::<()>()).abort_handle()
    }

    #[tokio::test]
    async fn evicts_the_longest_idle_and_never_a_busy_one() {
        let reg = Registry::default();
        for id in 1..=3 {
            reg.add(id, parked);
        }
        let busy = reg.busy(1);
        // 2 has been idle longest now that 1 is busy.
        assert!(reg.evict_oldest_idle());
        assert_eq!(reg.len(), 2);
        drop(busy);
        // 1 went idle after 3, so 3 goes next, then 1.
        assert!(reg.evict_oldest_idle());
        let _busy = reg.busy(1);
        assert!(!reg.evict_oldest_idle(), "a busy connection is not evicted");
        assert_eq!(reg.len(), 1);
        reg.remove(1);
        assert_eq!(reg.len(), 0);
    }
}
