fn main() {
    let _ = taskscope::scope!(
        shield = std::time::Duration::from_secs(1),
        |s| Ok::<_, taskscope::Cancelled>(())
    );
}
