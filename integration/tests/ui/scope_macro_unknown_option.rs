fn main() {
    let _ = taskscope::scope!(retries = 3, |s| Ok::<_, taskscope::Cancelled>(()));
}
