//! A trace that cannot be written in full (disk full, file size limit) is never silently
//! incomplete: `record::stop` returns the error (and stderr said so when it happened); a trace
//! written in full stops clean.

#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;

#[cfg(target_os = "linux")]
#[test]
fn a_failed_trace_write_is_reported_by_stop() {
    // /dev/full fails at once: `start` says so.
    assert!(lockcheck::record::start("/dev/full").is_err());

    let dir = Scratch::new("rwe");
    let a = lockcheck::Mutex::named("rwe.a", 0u32);
    let b = lockcheck::Mutex::named("rwe.b", 0u32);

    // A file that fills up mid-run: a 64 KiB file size limit (writes past it fail with EFBIG
    // once SIGXFSZ is ignored). This test is alone in its binary: nothing else writes files.
    lockcheck::record::start(dir.join("full.json")).unwrap();
    // SAFETY: plain libc calls with valid arguments.
    let old = unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut old = std::mem::zeroed::<libc::rlimit>();
        libc::getrlimit(libc::RLIMIT_FSIZE, &mut old);
        let lim = libc::rlimit {
            rlim_cur: 64 * 1024,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        old
    };
    for _ in 0..20_000 {
        let _a = a.lock();
        *b.lock() += 1;
    }
    // Written (and failed) now; then the limit goes away, so that the final writes succeed: the
    // events lost in between must still be reported.
    lockcheck::record::flush();
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) };
    let r = lockcheck::record::stop();
    let e = r.expect_err("the lost events must be reported");
    assert!(e.to_string().contains("incomplete"), "{e}");

    // The look-alike: a trace written in full.
    lockcheck::record::start(dir.join("ok.json")).unwrap();
    for _ in 0..20_000 {
        let _a = a.lock();
        *b.lock() += 1;
    }
    let written = lockcheck::record::stop().expect("written in full");
    assert!(written.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
