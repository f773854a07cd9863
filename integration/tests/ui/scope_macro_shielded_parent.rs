fn main() {
    let request = taskscope::CancellationSource::new();
    let _ = taskscope::scope!(
        shielded = std::time::Duration::from_secs(5),
        parent = request.token(),
        |s| Ok::<_, taskscope::Cancelled>(())
    );
}
