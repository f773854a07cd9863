//! Procedural macros for [`taskscope`](https://docs.rs/taskscope).
//!
//! Use them through the `taskscope` crate, which re-exports them
//! (`taskscope::scope!`, `#[taskscope::main]`, `#[taskscope::test]`) and
//! documents them with examples; do not depend on this crate directly.

mod entry;
mod scope;

use proc_macro::TokenStream;

/// Writes the scope boilerplate around a body; see `taskscope::scope!`.
#[proc_macro]
pub fn scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Runs `async fn main` in a root scope wired to shutdown signals; see
/// `taskscope::main`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Main, args.into(), item.into())
        .unwrap_or_else(|error| {
            // A stub `main` keeps the error the only one reported.
            let error = error.into_compile_error();
            quote::quote!(#error fn main() {})
        })
        .into()
}

/// Runs an `async fn` test in a root scope that fails if a task escapes;
/// see `taskscope::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Test, args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
