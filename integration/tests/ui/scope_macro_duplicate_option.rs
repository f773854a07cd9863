fn main() {
    let _ = taskscope::scope!(name = "a", name = "b", |s| Ok::<_, taskscope::Cancelled>(()));
}
