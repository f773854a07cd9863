// Tasks run on tokio's threads and may outlive the body's borrows, so they
// must be 'static; borrowing the caller's stack is for the body itself.
#[tokio::main]
async fn main() {
    let name = String::from("local");
    let _ = taskscope::scope(async |s| {
        s.spawn(async { Ok::<_, taskscope::Cancelled>(name.len()) });
        Ok::<_, taskscope::Cancelled>(())
    })
    .await;
}
