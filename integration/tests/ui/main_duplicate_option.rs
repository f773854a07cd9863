#[taskscope::main(shutdown_grace = "5s", shutdown_grace = "10s")]
async fn main() {}
