//! Settings of the whole process that the binaries (and the benches that stand in for them)
//! apply when they start.

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for huge pages
/// on its arenas; with request-sized buffers freed and allocated again at a high rate, many
/// page faults then zero a whole fresh 2 MB page (perf of `tablestore serve` during a full
/// copy: 9% of its CPU in the kernel's `clear_page_erms`; CPU per copied row, server and copy
/// process together, 7.9 µs → 7.3 µs with huge pages off). Best effort: where the call is not
/// supported nothing changes but speed.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_THP_DISABLE) sets a flag of this process's memory map; no pointer
    // is passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
