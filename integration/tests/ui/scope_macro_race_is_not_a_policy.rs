fn main() {
    let _ = taskscope::scope!(policy = race, |r| Ok::<_, taskscope::Cancelled>(()));
}
