//! Process hardening for a process that holds unwrapped keys.
//!
//! The one module of the crate allowed `unsafe`: each block is a single libc call with plain
//! integer arguments that affects only this process (its dumpability, its allocator's free
//! lists). Nothing else belongs here.
#![allow(unsafe_code)]

/// Keeps key material out of core dumps and away from ptrace by other processes of the
/// same user (`PR_SET_DUMPABLE` 0).
pub fn disable_core_dumps() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_DUMPABLE) takes integers only and reads no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Hands memory freed by the allocator back to the kernel (glibc keeps freed heap pages
/// for reuse, so a large verification's peak otherwise stays resident; issue 12 point 5).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer, touches only the allocator's own free lists and
    // is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_is_no_longer_dumpable() {
        super::disable_core_dumps().unwrap();
        // SAFETY: PR_GET_DUMPABLE takes no pointer and only reads the process's flag.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        assert_eq!(dumpable, 0);
    }
}
