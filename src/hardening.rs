//! Process hardening for a process that holds unwrapped keys.
//!
//! The one module of the crate allowed `unsafe`: each block is a single libc call with plain
//! integer arguments (or a pointer to a local `rlimit`) that affects only this process
//! (its dumpability, its open-file limit, its allocator's free lists). Nothing else belongs
//! here.
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

/// The soft open-file limit of this process.
pub fn open_file_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the local struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// Raises the soft open-file limit to the hard one, so connections, not the default 1024
/// descriptors, are what the server runs out of last; returns the (old, new) soft limit.
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the local struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let old = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit only reads the local struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((old, lim.rlim_cur))
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

    #[test]
    fn the_open_file_limit_ends_at_the_hard_limit() {
        let (old, new) = super::raise_open_file_limit().unwrap();
        assert!(new >= old);
        let (again, same) = super::raise_open_file_limit().unwrap();
        assert_eq!((again, same), (new, new));
    }
}
