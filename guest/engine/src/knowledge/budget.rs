//! The budget of one SPARQL evaluation: wall-clock time and memory. A 4-way cartesian product of
//! a few thousand triples would otherwise run until the host's deadline kills the instance (and
//! everything loaded in it), or allocate until linear memory is exhausted, which traps.
//!
//! spareval checks a [`CancellationToken`] each time it reads from the store, but nothing else
//! runs while it evaluates: in a component there is no second thread to cancel it. So the
//! engine's counting allocator (see [`crate::memory`]) looks at the armed budget: every
//! [`CHECK_EVERY`] allocations it reads the clock, and on each allocation it compares the bytes
//! allocated with the budget's share. Once either is spent it cancels the token, and the next
//! read from the store ends the evaluation with `Cancelled`, which becomes
//! [`EngineError::ResourceExhausted`] naming the budget. Updates are all or nothing, so an
//! update stopped this way changes nothing.
//!
//! Where the counting allocator is not installed (native tests that do not install it), only
//! the explicit checks between result rows apply.

use std::cell::Cell;
use std::time::{Duration, Instant};

use spareval::CancellationToken;

use crate::error::EngineError;

/// Wall-clock time one query or update may evaluate.
pub const EVALUATION_TIME: Duration = Duration::from_secs(5);

/// Bytes one evaluation may allocate beyond what was allocated when it began (solutions held
/// for joins, sorting, grouping).
pub const EVALUATION_MEMORY: usize = 512 << 20;

/// Allocations between two readings of the clock.
const CHECK_EVERY: u32 = 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Spent {
    Time,
    Memory,
}

pub struct Budget {
    token: CancellationToken,
    started: Instant,
    time: Duration,
    memory_base: usize,
    memory: usize,
    allocations: Cell<u32>,
    spent: Cell<Option<Spent>>,
}

thread_local! {
    /// The budget being spent on this thread, if any (a raw pointer: read by the allocator,
    /// which must neither allocate nor run destructors).
    static ARMED: Cell<*const Budget> = const { Cell::new(std::ptr::null()) };
}

/// Called by the counting allocator after each allocation, with the bytes now allocated.
pub(crate) fn on_allocation(allocated: usize) {
    let _ = ARMED.try_with(|armed| {
        let budget = armed.get();
        if !budget.is_null() {
            // SAFETY: the pointer is set by `Budget::arm` and cleared when the returned guard
            // drops, which happens before the budget itself can move or drop (the guard
            // borrows it).
            unsafe { (*budget).tick(allocated) };
        }
    });
}

/// While alive, allocations on this thread count against the budget.
pub struct Armed<'a> {
    previous: *const Budget,
    _budget: std::marker::PhantomData<&'a Budget>,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let _ = ARMED.try_with(|armed| armed.set(self.previous));
    }
}

impl Budget {
    pub fn new() -> Self {
        Self::with_limits(EVALUATION_TIME, EVALUATION_MEMORY)
    }

    pub fn with_limits(time: Duration, memory: usize) -> Self {
        Budget {
            token: CancellationToken::new(),
            started: Instant::now(),
            time,
            memory_base: crate::memory::allocated_bytes().0 as usize,
            memory,
            allocations: Cell::new(0),
            spent: Cell::new(None),
        }
    }

    /// The token to give the evaluator.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Counts this thread's allocations against the budget until the guard drops.
    pub fn arm(&self) -> Armed<'_> {
        let previous = ARMED.with(|armed| armed.replace(self as *const Budget));
        Armed { previous, _budget: std::marker::PhantomData }
    }

    fn spend(&self, spent: Spent) {
        if self.spent.get().is_none() {
            self.spent.set(Some(spent));
        }
        self.token.cancel();
    }

    fn tick(&self, allocated: usize) {
        if allocated.saturating_sub(self.memory_base) > self.memory {
            self.spend(Spent::Memory);
        }
        let n = self.allocations.get().wrapping_add(1);
        self.allocations.set(n);
        if n.is_multiple_of(CHECK_EVERY) && self.started.elapsed() > self.time {
            self.spend(Spent::Time);
        }
    }

    /// Between result rows: the clock (the allocator may not be counting).
    pub fn check(&self) -> Result<(), EngineError> {
        if self.spent.get().is_none() && self.started.elapsed() > self.time {
            self.spend(Spent::Time);
        }
        match self.spent.get() {
            None => Ok(()),
            Some(spent) => Err(self.exhausted(spent)),
        }
    }

    fn exhausted(&self, spent: Spent) -> EngineError {
        let what = match spent {
            Spent::Time => format!("its time budget of {:?}", self.time),
            Spent::Memory => format!("its memory budget of {} MiB", self.memory >> 20),
        };
        EngineError::ResourceExhausted(format!(
            "the SPARQL evaluation was stopped after {:.1} s: it used up {what} (the engine's limit per query or update); \
             nothing was changed. Narrow the query (bind variables, avoid cartesian products) or add a LIMIT",
            self.started.elapsed().as_secs_f64()
        ))
    }

    /// The error for a failed evaluation: the budget's when it was spent (the evaluator then
    /// reports `Cancelled`), else the evaluator's own, in `context`.
    pub fn error(&self, context: &str, e: impl std::fmt::Display) -> EngineError {
        match self.spent.get() {
            Some(spent) => self.exhausted(spent),
            None => EngineError::InvalidInput(format!("{context}: {e}")),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}
