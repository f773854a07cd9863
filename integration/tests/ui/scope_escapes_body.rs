// A `&Scope` cannot leave its body: nothing can be spawned into a scope that
// has finished.
#[tokio::main]
async fn main() {
    let mut leaked = None;
    let _ = taskscope::scope(async |s| {
        leaked = Some(s);
        Ok::<_, taskscope::Cancelled>(())
    })
    .await;
}
