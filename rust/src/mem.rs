//! Fallible allocation of the large buffers (matrices, traceback tables): a request that cannot
//! be met is an [`Error::Memory`] naming its size, never an abort of the host process.

use crate::error::{Error, Result};

/// Total physical memory in bytes, if the system says (asked once: `sysconf` is a system
/// call, which would cost more than the small alignments and matrices it guards).
#[must_use]
pub fn physical_memory() -> Option<u128> {
    static TOTAL: std::sync::OnceLock<Option<u128>> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: sysconf only reads system configuration.
            let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
            if pages > 0 && page > 0 {
                return Some(pages as u128 * page as u128);
            }
        }
        None
    })
}

/// Bytes as a short human string: "74.5 GiB".
#[must_use]
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes >= 1 << 64 {
        return "more than 16 EiB".into();
    }
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The byte size of `count` elements of `T`, or an [`Error::Memory`] if it overflows.
fn bytes_of<T>(count: u128, what: &dyn Fn() -> String) -> Result<u128> {
    count
        .checked_mul(std::mem::size_of::<T>() as u128)
        .ok_or_else(|| Error::Memory {
            what: what(),
            bytes: u128::MAX,
            detail: "the size overflows".into(),
        })
}

/// Check that `count` elements of `T` could be allocated at all: not above the machine's
/// physical memory (such a buffer could only thrash or be killed), and addressable.
///
/// # Errors
/// [`Error::Memory`] naming `what` and the size.
pub fn check<T>(count: u128, what: &dyn Fn() -> String) -> Result<usize> {
    let bytes = bytes_of::<T>(count, what)?;
    if let Some(total) = physical_memory() {
        if bytes > total {
            return Err(Error::Memory {
                what: what(),
                bytes,
                detail: format!("the machine has {} of memory", human(total)),
            });
        }
    }
    usize::try_from(count)
        .ok()
        .filter(|_| bytes <= isize::MAX as u128)
        .ok_or_else(|| Error::Memory {
            what: what(),
            bytes,
            detail: "beyond the address space".into(),
        })
}

/// Types whose all-zero bit pattern is a valid value (their zero).
///
/// # Safety
/// Implement only for such types.
pub unsafe trait Zeroed: Copy {}
// SAFETY: all-zero bits are +0.0.
unsafe impl Zeroed for f64 {}
// SAFETY: as above.
unsafe impl Zeroed for f32 {}
// SAFETY: all-zero bits are 0.
unsafe impl Zeroed for i64 {}

/// A vector of `count` zeros, allocated fallibly and zeroed by the allocator: a large one gets
/// fresh zero pages from the system, so nothing is written here and the threads that fill it
/// later take its page faults between them (zeroing first would be a serial pass over the whole
/// output on the calling thread before the parallel work; BENCHMARKS.md has the figure).
///
/// # Errors
/// [`Error::Memory`] naming `what` and the size when it cannot be allocated.
pub fn zeroed<T: Zeroed>(count: u128, what: &dyn Fn() -> String) -> Result<Vec<T>> {
    let len = check::<T>(count, what)?;
    if len == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let fail = |detail: &str| Error::Memory {
        what: what(),
        bytes: len as u128 * std::mem::size_of::<T>() as u128,
        detail: detail.into(),
    };
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| fail("beyond the address space"))?;
    // SAFETY: the layout has a non-zero size (len > 0 and T is not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(fail("the allocation failed"));
    }
    // SAFETY: allocated by the global allocator with the layout of exactly `len` T (capacity
    // and length `len`), every one of them all-zero bits, a valid T (the trait's contract).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// A vector of `count` copies of `value`, allocated fallibly.
///
/// # Errors
/// [`Error::Memory`] naming `what` and the size when it cannot be allocated.
pub fn filled<T: Clone>(count: u128, value: T, what: &dyn Fn() -> String) -> Result<Vec<T>> {
    let len = check::<T>(count, what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::Memory {
        what: what(),
        bytes: len as u128 * std::mem::size_of::<T>() as u128,
        detail: "the allocation failed".into(),
    })?;
    v.resize(len, value);
    Ok(v)
}
