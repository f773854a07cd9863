#[taskscope::test(shutdown_grace = "5s")]
async fn checks_something() {}

fn main() {}
