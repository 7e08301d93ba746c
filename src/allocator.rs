//! The static builds' memory allocator: dlmalloc in place of the C
//! library's malloc, for OpenSSL and Rust alike, with large blocks kept
//! apart.
//!
//! The static link's libc is zig's musl, whose malloc (zig 0.17,
//! lib/c/malloc.zig over std.heap.SmpAllocator) rounds each request and its
//! header up to a power of two and keeps freed slots on one free list per
//! size class, never merged and never returned. A 16 KiB buffer took a
//! 32 KiB slot, memory freed in one class could not serve another, and
//! every open connection pinned about 58 KiB of resident memory for 24 kB
//! of live heap. dlmalloc merges freed neighbours, and any size reuses them.
//!
//! One heap is still not enough: a long-lived object carved out of a freed
//! 16 KiB buffer leaves a hole that the next buffer no longer fits. So blocks
//! of `LARGE` bytes or more (record and read buffers, the handshake's
//! buffers: all short-lived) come from a second dlmalloc heap that lives in
//! one reserved address range, grown and trimmed at its end like a classic
//! `sbrk` heap; everything smaller (the connection's state) comes from the
//! first. The figures are in docs/performance.md, "Memory per connection".
//!
//! Every allocation entry point of the C library is defined here, so that the
//! static link takes none of its allocator (`nm` of an unstripped build shows
//! none); Rust's `System` allocator calls the same ones. Host builds keep the
//! C library's allocator. `malloc_usable_size` is left out: dlmalloc does not
//! offer it, and nothing linked calls it.

// Host builds keep the C library's allocator: there all but the unit tests
// is unused.
#![cfg_attr(not(target_env = "musl"), allow(dead_code))]

use std::cell::UnsafeCell;
use std::os::raw::c_void;
use std::ptr;

use dlmalloc::{Allocator, Dlmalloc};
use nix::libc;

/// Requests of this size or more go to the large heap. Above every
/// long-lived object of a connection (OpenSSL's SSL, 3.4 kB; the
/// connection's task, 2.3 kB), below the buffers (16 kB) and certificates.
const LARGE: usize = 4096;

/// Address space reserved for the large heap, never all of it backed:
/// room for 2,000 16 KiB buffers in use at once. Past it, large blocks
/// come from the small heap.
const LARGE_RESERVE: usize = 32 << 20;

/// Free memory the large heap keeps at its end after a free, so that a
/// stream's buffers do not go back to the kernel and fault in again on
/// every record.
const LARGE_KEPT: usize = 256 << 10;

/// What C's malloc guarantees, and dlmalloc's natural alignment.
const MALLOC_ALIGN: usize = 2 * std::mem::size_of::<usize>();

/// System memory for a heap. The large heap's is one range reserved at the
/// first large request, handed out from its start upwards, so that dlmalloc
/// sees one segment that grows and shrinks at its end. The small heap's is
/// plain anonymous mappings. (One type for both, so that dlmalloc's code is
/// in the binary once.)
struct Pages {
    reserved: bool,
    base: UnsafeCell<usize>,
    end: UnsafeCell<usize>,
}

// SAFETY: only used under HEAP's lock.
unsafe impl Send for Pages {}

impl Pages {
    const fn new(reserved: bool) -> Pages {
        Pages {
            reserved,
            base: UnsafeCell::new(0),
            end: UnsafeCell::new(0),
        }
    }

    /// Where the range starts, reserving it on first use; 0 if it cannot be.
    fn base(&self) -> usize {
        // SAFETY: under HEAP's lock (see Heap).
        unsafe {
            if *self.base.get() == 0 {
                let p = libc::mmap(
                    ptr::null_mut(),
                    LARGE_RESERVE,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                if p == libc::MAP_FAILED {
                    // usize::MAX: tried, and failed; never again.
                    *self.base.get() = usize::MAX;
                } else {
                    *self.base.get() = p as usize;
                    *self.end.get() = p as usize;
                }
            }
            match *self.base.get() {
                usize::MAX => 0,
                b => b,
            }
        }
    }

    /// Whether `p` is in the reserved range (never, for the small heap).
    fn holds(&self, p: *mut c_void) -> bool {
        // SAFETY: under HEAP's lock.
        let base = unsafe { *self.base.get() };
        base != 0 && base != usize::MAX && (p as usize).wrapping_sub(base) < LARGE_RESERVE
    }
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: a new private anonymous mapping.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: regions handed out are fresh (zeroed) anonymous memory, never
// overlapping: in the reserved range, `end` only moves past what was given.
unsafe impl Allocator for Pages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if !self.reserved {
            let p = map(size);
            return (p, if p.is_null() { 0 } else { size }, 0);
        }
        let base = self.base();
        if base == 0 {
            return (ptr::null_mut(), 0, 0);
        }
        // SAFETY: under HEAP's lock; the range is ours.
        unsafe {
            let end = *self.end.get();
            if end - base + size > LARGE_RESERVE
                || libc::mprotect(end as *mut c_void, size, libc::PROT_READ | libc::PROT_WRITE) != 0
            {
                return (ptr::null_mut(), 0, 0);
            }
            *self.end.get() = end + size;
            (end as *mut u8, size, 0)
        }
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        if !self.reserved {
            // SAFETY: dlmalloc no longer uses the tail.
            return unsafe { libc::munmap(ptr.add(new).cast(), old - new) == 0 };
        }
        // dlmalloc trims the one segment at its end, which is ours.
        // SAFETY: under HEAP's lock; the tail is no longer in use.
        unsafe {
            let tail = ptr as usize + new;
            if tail + (old - new) != *self.end.get() {
                return false;
            }
            libc::mmap(
                tail as *mut c_void,
                old - new,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            );
            *self.end.get() = tail;
        }
        true
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        self.free_part(ptr, size, 0)
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        4096
    }
}

/// Both heaps, behind one pthread mutex: async-io's helper thread and the
/// resolver thread allocate too, rarely. pthread_mutex_lock never allocates.
struct Heap {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    small: UnsafeCell<Dlmalloc<Pages>>,
    large: UnsafeCell<Dlmalloc<Pages>>,
}

// SAFETY: every access to the heaps holds `lock`.
unsafe impl Sync for Heap {}

impl Heap {
    const fn new() -> Heap {
        Heap {
            lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
            small: UnsafeCell::new(Dlmalloc::new_with_allocator(Pages::new(false))),
            large: UnsafeCell::new(Dlmalloc::new_with_allocator(Pages::new(true))),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Heaps) -> T) -> T {
        // SAFETY: the mutex is initialised with the heap and never destroyed;
        // the heaps are only touched while it is held.
        unsafe {
            libc::pthread_mutex_lock(self.lock.get());
            let result = f(&mut Heaps {
                small: &mut *self.small.get(),
                large: &mut *self.large.get(),
            });
            libc::pthread_mutex_unlock(self.lock.get());
            result
        }
    }
}

/// The process's heap: in static builds only, where the C library's
/// allocator is the one replaced. (Unit tests make heaps of their own.)
#[cfg(target_env = "musl")]
static HEAP: Heap = Heap::new();

struct Heaps<'a> {
    small: &'a mut Dlmalloc<Pages>,
    large: &'a mut Dlmalloc<Pages>,
}

impl Heaps<'_> {
    /// A block of `size` bytes at `align`, from the heap its size belongs to.
    unsafe fn alloc(&mut self, size: usize, align: usize, zeroed: bool) -> *mut u8 {
        if size >= LARGE {
            let p = if zeroed {
                self.large.calloc(size, align)
            } else {
                self.large.malloc(size, align)
            };
            if !p.is_null() {
                return p;
            }
        }
        if zeroed {
            self.small.calloc(size, align)
        } else {
            self.small.malloc(size, align)
        }
    }

    unsafe fn free(&mut self, p: *mut c_void) {
        if self.large.allocator().holds(p) {
            self.large.c_free(p.cast());
            self.large.trim(LARGE_KEPT);
        } else {
            self.small.c_free(p.cast());
        }
    }

    /// Resizes in the heap that holds the block: moving it across would
    /// need its old size, which only dlmalloc's chunk header knows.
    unsafe fn realloc(&mut self, p: *mut c_void, size: usize) -> *mut u8 {
        if self.large.allocator().holds(p) {
            self.large.c_realloc(p.cast(), size)
        } else {
            self.small.c_realloc(p.cast(), size)
        }
    }
}

#[cfg(target_env = "musl")]
fn with_heaps<T>(f: impl FnOnce(&mut Heaps) -> T) -> T {
    HEAP.with(f)
}

#[cfg(target_env = "musl")]
extern "C" fn lock_for_fork() {
    // SAFETY: as in with_heaps; released by the two handlers below.
    unsafe { libc::pthread_mutex_lock(HEAP.lock.get()) };
}

#[cfg(target_env = "musl")]
extern "C" fn unlock_after_fork() {
    // SAFETY: the lock was taken by lock_for_fork, in this process or (in
    // the child) in its parent; a normal mutex may be released by any thread.
    unsafe { libc::pthread_mutex_unlock(HEAP.lock.get()) };
}

/// Keeps the heaps usable in a child of `fork` (--daemon): another thread
/// could hold the lock at the moment of the fork, and the child would never
/// see it released. Called once at start, before any fork. (musl's own
/// malloc does the same inside fork.)
#[cfg(target_env = "musl")]
pub fn install_fork_handlers() {
    // SAFETY: the handlers only take and release the heaps' mutex.
    unsafe {
        libc::pthread_atfork(
            Some(lock_for_fork),
            Some(unlock_after_fork),
            Some(unlock_after_fork),
        );
    }
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    with_heaps(|h| h.alloc(size, MALLOC_ALIGN, false)).cast()
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if !p.is_null() {
        with_heaps(|h| h.free(p));
    }
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(bytes) = count.checked_mul(size) else {
        nix::errno::Errno::ENOMEM.set();
        return ptr::null_mut();
    };
    // dlmalloc clears only what may hold old bytes: fresh pages are zero.
    with_heaps(|h| h.alloc(bytes, MALLOC_ALIGN, true)).cast()
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return malloc(size);
    }
    with_heaps(|h| h.realloc(p, size)).cast()
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        nix::errno::Errno::EINVAL.set();
        return ptr::null_mut();
    }
    with_heaps(|h| h.alloc(size, align, false)).cast()
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    memalign(align, size)
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> std::os::raw::c_int {
    if !align.is_power_of_two() || align % std::mem::size_of::<usize>() != 0 {
        return libc::EINVAL;
    }
    let p = with_heaps(|h| h.alloc(size, align, false));
    if p.is_null() {
        return libc::ENOMEM;
    }
    *out = p.cast();
    0
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(bytes) => realloc(p, bytes),
        None => {
            nix::errno::Errno::ENOMEM.set();
            ptr::null_mut()
        }
    }
}

#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    memalign(4096, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 16 << 10;

    fn reserved_in_use(h: &Heaps) -> usize {
        let pages = h.large.allocator();
        // SAFETY: the test holds the heap's lock.
        unsafe { *pages.end.get() - *pages.base.get() }
    }

    #[test]
    fn large_blocks_fill_their_range_then_spill_into_the_small_heap() {
        let heap = Heap::new();
        heap.with(|h| unsafe {
            let small = h.alloc(100, MALLOC_ALIGN, false);
            assert!(!small.is_null());
            assert!(!h.large.allocator().holds(small.cast()));
            // More 16 KiB blocks than the reserved range can hold.
            let n = LARGE_RESERVE / BLOCK + 64;
            let mut blocks = Vec::with_capacity(n);
            for i in 0..n {
                let p = h.alloc(BLOCK, MALLOC_ALIGN, false);
                assert!(!p.is_null(), "block {i}");
                p.write_bytes(i as u8, BLOCK);
                blocks.push(p);
            }
            let inside = blocks
                .iter()
                .filter(|p| h.large.allocator().holds(p.cast()))
                .count();
            assert!(inside > n / 2, "{inside} of {n} in the range");
            assert!(inside < n, "none spilled over");
            for (i, p) in blocks.iter().enumerate() {
                assert_eq!(**p, i as u8);
                assert_eq!(*p.add(BLOCK - 1), i as u8);
            }
            for p in blocks {
                h.free(p.cast());
            }
            // Freed, the range is given back to the kernel but for what is
            // kept for the next stream.
            let kept = reserved_in_use(h);
            assert!(kept <= LARGE_KEPT + (128 << 10), "{kept} bytes kept");
            h.free(small.cast());
        });
    }

    #[test]
    fn zeroed_blocks_are_zero_when_memory_is_reused() {
        let heap = Heap::new();
        heap.with(|h| unsafe {
            for size in [24, 1000, LARGE, BLOCK] {
                let p = h.alloc(size, MALLOC_ALIGN, false);
                p.write_bytes(0xa5, size);
                h.free(p.cast());
                let z = h.alloc(size, MALLOC_ALIGN, true);
                assert!((0..size).all(|i| *z.add(i) == 0), "size {size}");
                h.free(z.cast());
            }
        });
    }

    #[test]
    fn realloc_keeps_contents_and_alignment_is_honoured() {
        let heap = Heap::new();
        heap.with(|h| unsafe {
            // Grows from the small heap past LARGE (stays there), and a
            // large block shrinks (stays in the large heap).
            let mut p = h.alloc(64, MALLOC_ALIGN, false);
            p.write_bytes(7, 64);
            for size in [512, LARGE * 2, BLOCK * 3] {
                p = h.realloc(p.cast(), size);
                assert!(!p.is_null());
                assert!((0..64).all(|i| *p.add(i) == 7), "size {size}");
            }
            h.free(p.cast());
            let big = h.alloc(BLOCK, MALLOC_ALIGN, false);
            big.write_bytes(9, BLOCK);
            let small = h.realloc(big.cast(), 100);
            assert!((0..100).all(|i| *small.add(i) == 9));
            h.free(small.cast());
            for align in [64, 4096] {
                for size in [8, BLOCK] {
                    let p = h.alloc(size, align, false);
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    h.free(p.cast());
                }
            }
        });
    }
}
