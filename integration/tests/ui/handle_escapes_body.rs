// A task handle borrows its scope, so it cannot be returned from the body.
#[tokio::main]
async fn main() {
    let handle = taskscope::scope(async |s| {
        Ok::<_, taskscope::Cancelled>(s.spawn(async { Ok::<_, taskscope::Cancelled>(1) }))
    })
    .await;
    drop(handle);
}
