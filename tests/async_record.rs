//! A recorded run with tokio tasks: each task's lock events form their own stream (`task #N`),
//! so `lockcheck analyze` finds an inversion between tasks from the trace alone (checking off
//! here, as in `record.rs`: only the trace sees it).

#[path = "support/rt.rs"]
mod rt;
#[path = "support/scratch.rs"]
mod scratch;
mod support;

use lockcheck::tokio::Mutex;
use lockcheck_core::trace::Event;
use scratch::Scratch;
use std::sync::Arc;

#[test]
fn an_inversion_between_tasks_is_found_offline() {
    lockcheck::set_action(lockcheck::Action::Off);
    let dir = Scratch::new("async-rec");
    let path = dir.join("tasks.json");
    lockcheck::record::start(&path).unwrap();
    rt::run(rt::Flavor::MultiThread, || async {
        let a = Arc::new(Mutex::named("arec.a", 0));
        let b = Arc::new(Mutex::named("arec.b", 0));
        let (a1, b1) = (a.clone(), b.clone());
        lockcheck::tokio::spawn(async move {
            let _a = a1.lock().await;
            let _b = b1.lock().await;
        })
        .await
        .unwrap();
        lockcheck::tokio::spawn(async move {
            let _b = b.lock().await;
            let _a = a.lock().await;
        })
        .await
        .unwrap();
    })
    .unwrap();
    let written = lockcheck::record::stop().unwrap().expect("was recording");
    assert!(lockcheck::violations().is_empty(), "checking is off");
    let report =
        lockcheck_analyze::analyze(std::slice::from_ref(&written), &Default::default()).unwrap();
    assert_eq!(report.violations.len(), 1, "{report:#?}");
    let mut classes: Vec<&str> = report.violations[0]
        .locks
        .iter()
        .map(|l| l.class.as_str())
        .collect();
    classes.sort();
    assert_eq!(classes, ["arec.a", "arec.b"]);
    let names: Vec<String> = lockcheck_analyze::read::TraceReader::open(&written, None)
        .unwrap()
        .filter_map(|e| match e.unwrap() {
            Event::Thread { name, .. } => name,
            _ => None,
        })
        .collect();
    assert!(
        names.iter().filter(|n| n.starts_with("task #")).count() >= 2,
        "task streams: {names:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
