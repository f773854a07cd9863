#[taskscope::main(flavor = "multi_thread", worker_threads = "two")]
async fn main() {}
