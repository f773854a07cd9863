use std::time::Duration;

fn main() {
    let _ = taskscope::scope!(
        timeout = Duration::from_secs(1),
        move_on_after = Duration::from_secs(2),
        |s| Ok::<_, taskscope::Cancelled>(())
    );
}
