//! Misuse that must not compile: a scope or a task handle escaping the
//! body, a task borrowing from the stack. The expected messages are checked
//! in `integration/tests/ui/*.stderr`.

#[test]
fn misuse_is_rejected_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
