//! `#[taskscope::main]` and `#[taskscope::test]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ItemFn, Lit, MetaNameValue, Token};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "#[taskscope::main]",
            Kind::Test => "#[taskscope::test]",
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Kind::Main => "`flavor`, `worker_threads`, `shutdown_grace`, `bind`",
            Kind::Test => "`flavor`, `worker_threads`, `start_paused`, `bind`",
        }
    }
}

#[derive(Default)]
struct Options {
    multi_thread: Option<bool>,
    worker_threads: Option<(usize, Span)>,
    start_paused: Option<bool>,
    grace_millis: Option<u64>,
    /// `bind = (KEY, value)`, in order; the one option that may repeat.
    binds: Vec<(Expr, Expr)>,
}

fn string(value: &Expr, key: &str) -> syn::Result<String> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.value()),
        other => Err(Error::new(
            other.span(),
            format!("`{key}` takes a string literal"),
        )),
    }
}

/// Parses `500ms`, `30s` or `2m`.
fn duration_millis(text: &str, span: Span) -> syn::Result<u64> {
    let error = || {
        Error::new(
            span,
            "`shutdown_grace` takes a duration such as \"500ms\", \"30s\" or \"2m\"",
        )
    };
    let (number, factor) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else {
        return Err(error());
    };
    let number: u64 = number.trim().parse().map_err(|_| error())?;
    number.checked_mul(factor).ok_or_else(error)
}

fn parse_options(kind: Kind, args: TokenStream) -> syn::Result<Options> {
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    let mut options = Options::default();
    let mut seen = Vec::new();
    for pair in pairs {
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if seen.contains(&key) && key != "bind" {
            return Err(Error::new(
                pair.path.span(),
                format!("duplicate option `{key}`"),
            ));
        }
        seen.push(key.clone());
        let value = &pair.value;
        match (kind, key.as_str()) {
            (_, "flavor") => {
                options.multi_thread = Some(match string(value, "flavor")?.as_str() {
                    "multi_thread" => true,
                    "current_thread" => false,
                    _ => {
                        return Err(Error::new(
                            value.span(),
                            "`flavor` is \"multi_thread\" or \"current_thread\"",
                        ))
                    }
                })
            }
            (_, "worker_threads") => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(n), ..
                }) => options.worker_threads = Some((n.base10_parse()?, value.span())),
                other => {
                    return Err(Error::new(
                        other.span(),
                        "`worker_threads` takes an integer literal",
                    ))
                }
            },
            (Kind::Test, "start_paused") => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => options.start_paused = Some(b.value),
                other => {
                    return Err(Error::new(
                        other.span(),
                        "`start_paused` takes `true` or `false`",
                    ))
                }
            },
            (_, "bind") => match value {
                Expr::Tuple(tuple) if tuple.elems.len() == 2 => options
                    .binds
                    .push((tuple.elems[0].clone(), tuple.elems[1].clone())),
                other => {
                    return Err(Error::new(
                        other.span(),
                        "`bind` takes a key and its value: `bind = (REQUEST_ID, id)`",
                    ))
                }
            },
            (Kind::Main, "shutdown_grace") => {
                options.grace_millis = Some(duration_millis(
                    &string(value, "shutdown_grace")?,
                    value.span(),
                )?)
            }
            _ => {
                return Err(Error::new(
                    pair.path.span(),
                    format!(
                        "unknown option `{key}` for {}; allowed: {}",
                        kind.name(),
                        kind.allowed()
                    ),
                ))
            }
        }
    }
    if let (Some(false), Some((_, span))) = (options.multi_thread, options.worker_threads) {
        return Err(Error::new(
            span,
            "`worker_threads` needs `flavor = \"multi_thread\"`",
        ));
    }
    Ok(options)
}

pub fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    if function.sig.asyncness.is_none() {
        return Err(Error::new(
            function.sig.fn_token.span(),
            format!("{} needs an `async fn`", kind.name()),
        ));
    }
    if !function.sig.inputs.is_empty() {
        return Err(Error::new(
            function.sig.inputs.span(),
            format!("{} takes a function without parameters", kind.name()),
        ));
    }
    let options = parse_options(kind, args)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let output = &sig.output;
    let multi_thread = options.multi_thread.unwrap_or(kind == Kind::Main);
    let mut builder = if multi_thread {
        quote!(::taskscope::__private::tokio::runtime::Builder::new_multi_thread())
    } else {
        quote!(::taskscope::__private::tokio::runtime::Builder::new_current_thread())
    };
    if let Some((threads, span)) = options.worker_threads {
        builder = quote_spanned!(span=> #builder.worker_threads(#threads));
    }
    if options.start_paused == Some(true) {
        builder = quote!(#builder.start_paused(true));
    }
    let runtime = quote! {
        #builder
            .enable_all()
            .build()
            .expect("failed to build the Tokio runtime")
    };
    let (keys, values): (Vec<_>, Vec<_>) = options.binds.iter().cloned().unzip();
    let bind = quote! {
        |root: ::taskscope::ScopeBuilder| root #(.bind(&#keys, #values))*
    };
    let scope_name = quote!(::core::concat!(
        ::core::stringify!(#name),
        " (",
        ::core::file!(),
        ":",
        ::core::line!(),
        ")"
    ));
    Ok(match kind {
        Kind::Main => {
            if name != "main" {
                return Err(Error::new(
                    name.span(),
                    "#[taskscope::main] goes on `async fn main`",
                ));
            }
            let grace = match options.grace_millis {
                Some(ms) => quote!(::core::time::Duration::from_millis(#ms)),
                None => quote!(::taskscope::__private::DEFAULT_SHUTDOWN_GRACE),
            };
            quote! {
                #(#attrs)*
                #vis fn main() -> ::std::process::ExitCode {
                    async fn __taskscope_main() #output #block
                    ::taskscope::__private::run_main_bound(
                        #runtime,
                        #scope_name,
                        #grace,
                        #bind,
                        __taskscope_main(),
                    )
                }
            }
        }
        Kind::Test => quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis fn #name() {
                async fn __taskscope_test() #output #block
                ::taskscope::__private::run_test(#runtime, #scope_name, #bind, __taskscope_test())
            }
        },
    })
}
