#[taskscope::main(shutdown_grace = "soon")]
async fn main() {}
