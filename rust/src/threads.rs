//! pyevonas's own rayon pools: how many threads a call may use, a small cache of pools, and
//! the fork guard.
//!
//! pyevonas never uses rayon's global pool, so it cannot fight other rayon users (or PyTorch).
//! - **Thread count**: `n_threads`, else `PYEVONAS_NUM_THREADS`, else the machine's available
//!   parallelism. Values outside `1..=max_threads()` are refused with [`Error::Threads`]
//!   (never clamped silently), as is an environment value that is not a whole number.
//! - **Cache**: the [`POOL_CACHE`] most recently used pools are kept; an older one is dropped,
//!   and its threads exit once no call still uses it.
//! - **Fork guard**: after `fork()` the child has the parent's pools but none of their threads;
//!   a job sent to them would wait forever. A `pthread_atfork` child handler bumps a fork
//!   generation, and every cache tagged with an older generation is abandoned (never locked,
//!   never dropped: its lock may be held by a thread that no longer exists). The child then
//!   builds fresh pools on first use.

use std::num::NonZero;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// The environment variable that sets the default thread count.
pub const ENV_VAR: &str = "PYEVONAS_NUM_THREADS";

/// The thread cap on machines with fewer cores: see [`max_threads`].
pub const THREAD_CAP: usize = 256;

/// How many pools (one per distinct thread count) are kept alive.
pub const POOL_CACHE: usize = 4;

/// The machine's available parallelism (1 if unknown), asked once per process: on Linux the
/// standard library reads the cgroup's CPU quota from files for each question, some ten
/// microseconds, which every small matrix and archive addition asked (more than a 25 x 25
/// matrix's alignments). A quota changed while the process runs is not seen (the pools, sized
/// once, would not follow it either).
#[must_use]
pub fn available() -> usize {
    static AVAILABLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZero::get))
}

/// Most threads one call may ask for: [`THREAD_CAP`], or the machine's parallelism if larger.
#[must_use]
pub fn max_threads() -> usize {
    THREAD_CAP.max(available())
}

/// `n` if it is a usable thread count.
///
/// # Errors
/// [`Error::Threads`] naming `source` when `n` is 0 or above [`max_threads`].
pub fn check_threads(n: usize, source: &str) -> Result<usize> {
    let max = max_threads();
    if n == 0 || n > max {
        return Err(Error::Threads(format!(
            "{source} must be between 1 and {max} threads, got {n}"
        )));
    }
    Ok(n)
}

/// Thread count from `PYEVONAS_NUM_THREADS`, else the machine's available parallelism. An
/// unset or empty variable means the default.
///
/// # Errors
/// [`Error::Threads`] naming the variable when its value is not a whole number in
/// `1..=max_threads()`.
pub fn default_threads() -> Result<usize> {
    let raw = match std::env::var(ENV_VAR) {
        Err(std::env::VarError::NotPresent) => return Ok(available()),
        Err(std::env::VarError::NotUnicode(v)) => {
            return Err(Error::Threads(format!("{ENV_VAR}={v:?} is not a number of threads")))
        }
        Ok(v) => v,
    };
    let v = raw.trim();
    if v.is_empty() {
        return Ok(available());
    }
    match v.parse::<usize>() {
        Ok(n) => check_threads(n, &format!("{ENV_VAR}={raw:?}")),
        Err(_) => Err(Error::Threads(format!(
            "{ENV_VAR}={raw:?} is not a whole number of threads (1 to {})",
            max_threads()
        ))),
    }
}

static FORKS: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn child_after_fork() {
    // Only an atomic add: async-signal-safe, as a fork handler must be.
    FORKS.fetch_add(1, Ordering::SeqCst);
}

/// Register the fork handler (once per process; the child inherits it).
pub fn install_fork_guard() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: registers a handler that only does an atomic add.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(child_after_fork)) };
            // A failed registration (ENOMEM) leaves the guard off; nothing else to do.
            let _ = rc;
        });
    }
}

/// How many forks separate this process from the one that loaded pyevonas. Caches tagged
/// with another value were inherited through `fork()` and must not be used.
#[must_use]
pub fn fork_generation() -> u64 {
    FORKS.load(Ordering::SeqCst)
}

/// The pools of one fork generation, most recently used last.
struct Pools {
    generation: u64,
    lru: Mutex<Vec<(usize, Arc<ThreadPool>)>>,
}

static POOLS: AtomicPtr<Pools> = AtomicPtr::new(std::ptr::null_mut());

/// The pool cache of this process (a fresh one after a fork; the inherited one is leaked).
fn pools() -> &'static Pools {
    let generation = fork_generation();
    loop {
        let cur = POOLS.load(Ordering::Acquire);
        // SAFETY: a published Pools is never freed (a stale one is leaked on purpose).
        if let Some(p) = unsafe { cur.as_ref() } {
            if p.generation == generation {
                return p;
            }
        }
        let fresh = Box::into_raw(Box::new(Pools {
            generation,
            lru: Mutex::new(Vec::new()),
        }));
        match POOLS.compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just published; never freed.
            Ok(_) => return unsafe { &*fresh },
            // SAFETY: `fresh` was never shared.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

/// The pool for `n_threads` (None: [`default_threads`]).
///
/// # Errors
/// [`Error::Threads`] for a thread count outside `1..=max_threads()` (from the argument or
/// the environment); [`Error::ThreadPool`] when the threads cannot be started.
pub fn pool(n_threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    install_fork_guard();
    let n = match n_threads {
        Some(n) => check_threads(n, "n_threads")?,
        None => default_threads()?,
    };
    let cache = pools();
    let lock = || cache.lru.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    {
        let mut lru = lock();
        if let Some(pos) = lru.iter().position(|(k, _)| *k == n) {
            let hit = lru.remove(pos);
            let pool = hit.1.clone();
            lru.push(hit);
            return Ok(pool);
        }
    }
    // Started outside the lock: spawning threads takes a while.
    let built = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("pyevonas-{i}"))
        .build()
        .map_err(|e| Error::ThreadPool(format!("cannot start a pool of {n} threads: {e}")))?;
    let built = Arc::new(built);
    let evicted = {
        let mut lru = lock();
        if let Some((_, p)) = lru.iter().find(|(k, _)| *k == n) {
            // Another call built the same pool meanwhile: use that one.
            return Ok(p.clone());
        }
        lru.push((n, built.clone()));
        if lru.len() > POOL_CACHE {
            Some(lru.remove(0))
        } else {
            None
        }
    };
    // Dropped outside the lock; its threads exit when the last call using it is done.
    drop(evicted);
    Ok(built)
}

/// Thread counts of the cached pools, least recently used first (for tests and diagnostics).
#[must_use]
pub fn cached_pools() -> Vec<usize> {
    let cache = pools();
    let lru = cache.lru.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    lru.iter().map(|(k, _)| *k).collect()
}
