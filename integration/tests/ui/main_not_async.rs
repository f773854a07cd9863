#[taskscope::main]
fn main() {}
