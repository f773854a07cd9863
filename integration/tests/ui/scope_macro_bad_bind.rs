static REQUEST_ID: taskscope::ScopeLocal<String> = taskscope::ScopeLocal::new("request_id");

fn main() {
    let _ = taskscope::scope!(bind = REQUEST_ID, |s| Ok::<_, taskscope::Cancelled>(()));
}
