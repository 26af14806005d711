//! Memory accounting: a counting global allocator (installed by the component), the size of
//! linear memory, and an up-front check that a large allocation can succeed.
//!
//! Why the check: inside a component an allocation failure aborts, which traps and kills the
//! instance with everything loaded in it. Reserving the bytes with `try_reserve` first turns
//! "the host's memory limit is too small for this model" into an error value.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{EngineError, Result};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Wraps an allocator and counts the bytes it has handed out, and the peak.
pub struct CountingAllocator<A>(pub A);

impl<A> CountingAllocator<A> {
    fn grew(size: usize) {
        let now = ALLOCATED.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
        // A SPARQL evaluation in progress is stopped here when its budget is spent.
        crate::knowledge::budget::on_allocation(now);
    }
    fn shrank(size: usize) {
        ALLOCATED.fetch_sub(size, Ordering::Relaxed);
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Self::shrank(layout.size());
            Self::grew(new_size);
        }
        p
    }
}

/// Bytes currently allocated and the peak, as counted by [`CountingAllocator`] (zero when the
/// process does not install it).
pub fn allocated_bytes() -> (u64, u64) {
    (ALLOCATED.load(Ordering::Relaxed) as u64, PEAK.load(Ordering::Relaxed) as u64)
}

/// Size of linear memory (wasm), or 0 natively where there is no such thing.
pub fn linear_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u64 * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Fails with `resource-exhausted` unless `bytes` more can be allocated right now. The probe
/// is freed again; the allocator keeps the grown memory, so the real allocations that follow
/// reuse it.
pub fn ensure_available(bytes: u64, what: &str) -> Result<()> {
    let exhausted = || {
        EngineError::ResourceExhausted(format!(
            "{what} needs {} more, beyond the memory the host allows this component \
             (currently {} in use)",
            human_bytes(bytes),
            human_bytes(allocated_bytes().0)
        ))
    };
    let bytes = usize::try_from(bytes).map_err(|_| exhausted())?;
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(bytes).map_err(|_| exhausted())?;
    Ok(())
}

pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (MIB * 1024.0))
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}
