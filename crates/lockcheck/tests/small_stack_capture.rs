//! A thread with a small stack (`thread::Builder::stack_size`) that closes an inversion deep in a
//! call path never captured before: lockcheck's backtrace capture must not overflow its stack
//! (computing a new unwind rule takes tens of KiB in a debug build), and a capture it had to cut
//! short says so in the report.
//!
//! Each stack size runs in a child process (this test binary, run again for this test with
//! `SMALL_STACK_CHILD` set): an overflow aborts the child, which fails the test instead of
//! killing the runner.

use lockcheck::{Action, Mutex};
use std::hint::black_box;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

const CHILD: &str = "SMALL_STACK_CHILD";

/// (thread stack, stack left when the inversion is taken), in KiB: with 40 KiB left a capture
/// has too little room to compute new unwind rules (it takes the system unwinder's frames), with
/// 20 KiB too little for the system unwinder (it is cut short, and says so). The thread's static
/// thread-locals (about 20 KiB in this debug test binary) are carved from its stack too.
const CASES: [(usize, usize); 3] = [(64, 40), (64, 20), (48, 20)];

/// The stack left below the caller's frame on this thread.
#[inline(never)]
fn stack_left() -> usize {
    let marker = 0u8;
    let here = black_box(std::ptr::addr_of!(marker)) as usize;
    // SAFETY: the attributes are initialised by `pthread_getattr_np` before use and destroyed
    // after.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        assert_eq!(
            libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()),
            0
        );
        let (mut addr, mut size) = (std::ptr::null_mut(), 0);
        assert_eq!(
            libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size),
            0
        );
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        here - addr as usize
    }
}

/// Defines `name`: a frame with a local buffer, calling `next` until at most `left` bytes of
/// stack are left (and at least 8 deep): a chain of distinct functions, so that each return
/// address is one the unwind cache has never seen.
macro_rules! chain {
    ($($name:ident -> $next:ident),* $(,)?) => {
        $(
            #[inline(never)]
            fn $name(depth: usize, left: usize, f: &mut dyn FnMut()) {
                let mut buf = [0u8; 256];
                black_box(&mut buf);
                if depth >= 8 && stack_left() <= left {
                    f();
                } else {
                    $next(depth + 1, left, f);
                }
                black_box(&buf);
            }
        )*
    };
}

chain!(
    f00 -> f01, f01 -> f02, f02 -> f03, f03 -> f04, f04 -> f05, f05 -> f06, f06 -> f07,
    f07 -> f08, f08 -> f09, f09 -> f10, f10 -> f11, f11 -> f12, f12 -> f13, f13 -> f14,
    f14 -> f15, f15 -> f16, f16 -> f17, f17 -> f18, f18 -> f19, f19 -> f20, f20 -> f21,
    f21 -> f22, f22 -> f23, f23 -> f24, f24 -> f25, f25 -> f26, f26 -> f27, f27 -> f28,
    f28 -> f29, f29 -> f30, f30 -> f31, f31 -> f00,
);

/// The child: thread 1 (default stack) takes `a -> b` and stays alive; thread 2 (`kib` KiB of
/// stack) goes down the chain until `left` KiB are left, then takes `b -> a`: the inversion is
/// found there, with a new edge whose backtrace is captured and a report rendered.
fn child(kib: usize, left: usize) {
    lockcheck::set_action(Action::Warn);
    let a = Arc::new(Mutex::named("small_stack.a", 0));
    let b = Arc::new(Mutex::named("small_stack.b", 0));
    let (a1, b1) = (a.clone(), b.clone());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        {
            let _ga = a1.lock();
            let _gb = b1.lock();
        }
        done_tx.send(()).unwrap();
        let _ = exit_rx.recv_timeout(Duration::from_secs(30));
    });
    done_rx.recv().unwrap();
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(move || {
            eprintln!(
                "small-stack child: {kib} KiB, {} KiB left at entry",
                stack_left() >> 10
            );
            f00(0, left * 1024, &mut || {
                eprintln!("small-stack child: {} KiB left", stack_left() >> 10);
                let _gb = b.lock();
                let _ga = a.lock();
            });
        })
        .unwrap()
        .join()
        .unwrap();
    exit_tx.send(()).unwrap();
    first.join().unwrap();
    let found = lockcheck::violations();
    assert!(
        found.iter().any(|v| v.involves("small_stack.a")),
        "the inversion is reported: {found:#?}"
    );
}

#[test]
fn an_inversion_on_a_small_stack_thread_through_a_new_call_path_does_not_overflow() {
    if let Ok(case) = std::env::var(CHILD) {
        let (kib, left) = case.split_once(',').unwrap();
        child(kib.parse().unwrap(), left.parse().unwrap());
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (kib, left) in CASES {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "an_inversion_on_a_small_stack_thread_through_a_new_call_path_does_not_overflow",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{kib},{left}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let case = format!("{kib} KiB, {left} KiB left");
        assert!(
            out.status.success(),
            "{case}: the child failed ({}):\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("small_stack.a") && stderr.contains("small_stack.b"),
            "{case}: the report names both locks:\n{stderr}"
        );
        if left >= 32 {
            // The system unwinder's frames, in full: the chain is in the report.
            assert!(
                stderr.contains("small_stack_capture::f07"),
                "{case}:\n{stderr}"
            );
            assert!(!stderr.contains("cut short"), "{case}:\n{stderr}");
        } else {
            // Cut short, and said: in the report and once on stderr.
            assert!(
                stderr.contains("outer frames not captured: the thread had"),
                "{case}:\n{stderr}"
            );
            assert!(
                stderr.contains("a backtrace was cut short"),
                "{case}:\n{stderr}"
            );
        }
    }
}
