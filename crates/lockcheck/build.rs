//! Decides whether lockcheck's instrumentation is compiled in, as the cfg `lockcheck_on`.
//!
//! On by default in builds with debug assertions (test and dev builds), off in release builds;
//! the feature `instrument` forces it on, `no-instrument` forces it off (`instrument` wins when a
//! dependency graph enables both: missing a deadlock is worse than paying for a check).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(lockcheck_on)");
    println!("cargo::rerun-if-changed=build.rs");
    let forced_on = std::env::var_os("CARGO_FEATURE_INSTRUMENT").is_some();
    let forced_off = std::env::var_os("CARGO_FEATURE_NO_INSTRUMENT").is_some();
    let debug = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some();
    if forced_on || (debug && !forced_off) {
        println!("cargo::rustc-cfg=lockcheck_on");
    }
}
