fn main() {
    let _ = taskscope::scope!(timeout = "5s", |s| Ok::<_, taskscope::Cancelled>(()));
}
