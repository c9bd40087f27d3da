//! `lockcheck analyze --format dot`: the lock-order graph in Graphviz DOT, edges labelled with
//! their sites, the edges of violations red.

mod common;

use common::{corpus, fixture, lockcheck};

fn dot(args: &[&str]) -> String {
    let mut all = vec!["analyze", "--format", "dot"];
    all.extend(args);
    let run = lockcheck(all);
    assert!(matches!(run.code, Some(0 | 1)), "{}", run.stderr);
    run.stdout
}

#[test]
fn the_cycle_is_red_and_edges_name_their_sites() {
    let out = dot(&[fixture("ab-ba.json").to_str().unwrap()]);
    assert!(out.starts_with("digraph lockcheck {"), "{out}");
    assert!(out.trim_end().ends_with('}'));
    assert!(
        out.contains("n0 [label=\"accounts\\n(mutex)\", color=red"),
        "{out}"
    );
    assert!(
        out.contains("n0 -> n1 [label=\"src/bank.rs:21\", color=red"),
        "{out}"
    );
    assert!(
        out.contains("n1 -> n0 [label=\"src/audit.rs:41\", color=red"),
        "{out}"
    );
}

#[test]
fn a_graph_without_violations_has_no_red() {
    let out = dot(&[fixture("clean.json").to_str().unwrap()]);
    assert!(out.contains("n0 -> n1"), "{out}");
    assert!(!out.contains("color=red"), "{out}");
}

#[test]
fn two_instances_of_one_class_make_a_red_self_loop() {
    // Instance-level inversion between two locks of one class: drawn on the class's self-loop.
    let out = dot(&[corpus("std", "Bensalem.std").to_str().unwrap()]);
    assert!(out.contains("color=red"), "{out}");
    let out = dot(&[
        "--level",
        "instance",
        corpus("std", "Bensalem.std").to_str().unwrap(),
    ]);
    assert!(out.contains("instance level"), "{out}");
    assert!(out.contains("color=red"), "{out}");
}

#[test]
fn a_hierarchy_violation_is_red_too() {
    let config = common::root("fixtures/json/config/hierarchy.toml");
    let out = dot(&[
        "--config",
        config.to_str().unwrap(),
        fixture("hierarchy-sites.json").to_str().unwrap(),
    ]);
    assert!(
        out.contains("n0 -> n1 [label=\"src/bank.rs:21\\nsrc/report.rs:8\", color=red"),
        "{out}"
    );
}
