//! The store's resource limiter: wasmtime's [`StoreLimits`] (linear memory
//! capped, a refused growth traps), which also remembers that it stopped the
//! guest's memory from growing, so a failed activation is classified
//! `memory_limit` from that fact rather than from the error's text.

use wasmtime::{ResourceLimiter, Result, StoreLimits, StoreLimitsBuilder};

pub struct Limiter {
    limits: StoreLimits,
    memory_refused: bool,
}

impl Limiter {
    pub fn new(memory_bytes: usize) -> Limiter {
        Limiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            memory_refused: false,
        }
    }

    /// Whether a memory growth was refused or failed (either traps the guest).
    pub fn memory_refused(&self) -> bool {
        self.memory_refused
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        self.memory_refused |= !matches!(allowed, Ok(true));
        allowed
    }

    // Growth past the memory's own maximum or the pool's slot ends the guest
    // as surely as our cap does.
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> Result<()> {
        self.memory_refused = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_growth_traps_and_is_remembered() {
        let mut limiter = Limiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_refused());
        assert!(limiter.memory_growing(1 << 20, 2 << 20, None).is_err());
        assert!(limiter.memory_refused());
    }
}
