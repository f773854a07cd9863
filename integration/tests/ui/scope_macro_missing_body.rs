fn main() {
    let _ = taskscope::scope!(name = "no body");
}
