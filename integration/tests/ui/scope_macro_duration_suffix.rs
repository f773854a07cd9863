// The guide's shorthand that Rust does not have: a number with a unit.
fn main() {
    let _ = taskscope::scope!(timeout = 10s, |s| Ok::<_, taskscope::Cancelled>(()));
    let _ = taskscope::scope!(grace_period = 250ms, |s| Ok::<_, taskscope::Cancelled>(()));
}
