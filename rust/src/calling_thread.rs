//! Small work on the calling thread ("here", as opposed to on a pool).
//!
//! Handing work to a pool wakes its sleeping threads and waits for them: tens of
//! microseconds, more than a 25 x 25 matrix or a handful of archive queries cost. Such work
//! runs here instead, on the thread that asked for it, its rayon calls included: the first
//! call on a thread makes that thread the only worker of a pool of its own
//! (`use_current_thread`), so `par_iter` inside the work runs inline, with no dispatch and no
//! other thread. That pool lives as long as the thread; rayon keeps its small registry
//! (a few hundred bytes) for the life of the process, once per thread that ever ran small work.
//! Only this copy of rayon (the one linked into pyevonas's extension) sees the thread as a
//! worker, so other libraries' rayon pools are unaffected.

use rayon::ThreadPool;

thread_local! {
    static HERE: Option<ThreadPool> = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .ok();
}

/// Run `f` on the calling thread; rayon calls inside it run here too.
///
/// On a thread that already works for a pool (a pyevonas worker, say), `f` simply runs:
/// its rayon calls go to that pool. Should the thread's own pool be impossible to make,
/// `f` runs on pyevonas's pool of one thread (correct, only not inline).
///
/// # Errors
/// [`crate::Error::ThreadPool`] when neither pool can be had.
pub fn run_here<R: Send>(f: impl FnOnce() -> R + Send) -> crate::Result<R> {
    if rayon::current_thread_index().is_some() {
        return Ok(f());
    }
    let mut f = Some(f);
    let mut out = None;
    HERE.with(|pool| {
        if let Some(pool) = pool {
            let f = f.take().expect("run once");
            out = Some(pool.install(f));
        }
    });
    match (out, f) {
        (Some(r), _) => Ok(r),
        (None, Some(f)) => Ok(crate::threads::pool(Some(1))?.install(f)),
        (None, None) => unreachable!("f either ran or is still here"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn runs_on_the_calling_thread() {
        let me = std::thread::current().id();
        let ids: Vec<_> = run_here(|| (0..64).into_par_iter().map(|_| std::thread::current().id()).collect()).unwrap();
        assert!(ids.iter().all(|&id| id == me));
        // Again, and from another thread: each thread gets its own.
        assert_eq!(run_here(rayon::current_num_threads).unwrap(), 1);
        let other = std::thread::spawn(|| run_here(|| (0..10).into_par_iter().sum::<i32>()).unwrap());
        assert_eq!(other.join().unwrap(), 45);
    }
}
