//! `scope!`: options as `key = value` pairs, then the body as a closure.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprClosure, Ident, Token};

const ALLOWED: &str = "`name`, `policy`, `limit`, `grace_period`, `warn_after`, `timeout`, \
                       `move_on_after`, `deadline`, `shielded`, `parent`, `cancel_on_exit`";

struct Input {
    options: Vec<(Ident, Expr)>,
    body: ExprClosure,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Vec::new();
        while input.peek(Ident) && input.peek2(Token![=]) {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            options.push((key, value));
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        if input.is_empty() {
            return Err(Error::new(
                input.span(),
                "scope! needs a body: a closure such as `|s| { … }` after the options",
            ));
        }
        let body: ExprClosure = input.parse().map_err(|e| {
            Error::new(
                e.span(),
                "expected the scope's body: a closure such as `|s| { … }` (options go first, as `key = value`)",
            )
        })?;
        if body.inputs.len() != 1 {
            return Err(Error::new(
                body.inputs.span(),
                "the scope's body takes one parameter, the scope: `|s| { … }`",
            ));
        }
        let _ = input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(Error::new(
                input.span(),
                "nothing may follow the scope's body",
            ));
        }
        Ok(Input { options, body })
    }
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let Input { options, body } = syn::parse2(input)?;
    let mut builder = quote!(::taskscope::ScopeBuilder::new());
    let mut seen: Vec<String> = Vec::new();
    let mut form = quote!(run);
    let mut deadline_option: Option<String> = None;
    for (key, value) in &options {
        let name = key.to_string();
        if seen.contains(&name) {
            return Err(Error::new(key.span(), format!("duplicate option `{name}`")));
        }
        seen.push(name.clone());
        if matches!(
            name.as_str(),
            "timeout" | "move_on_after" | "shielded" | "grace_period" | "warn_after"
        ) {
            check_duration_literal(value)?;
        }
        if matches!(
            name.as_str(),
            "timeout" | "move_on_after" | "deadline" | "shielded"
        ) {
            if let Some(earlier) = &deadline_option {
                return Err(Error::new(
                    key.span(),
                    format!("`{name}` and `{earlier}` both set the scope's deadline; use one"),
                ));
            }
            deadline_option = Some(name.clone());
        }
        builder = match name.as_str() {
            "name" => quote!(#builder.name(#value)),
            "limit" => quote!(#builder.limit(#value)),
            "grace_period" => quote!(#builder.grace_period(#value)),
            "cancel_on_exit" => quote!(#builder.cancel_on_exit(#value)),
            "warn_after" => quote!(#builder.warn_after(#value)),
            "timeout" => quote!(#builder.timeout(#value)),
            "deadline" => quote!(#builder.deadline(#value)),
            "shielded" => quote!(#builder.shielded(#value)),
            // The first release's names: say what they are called now.
            "grace" | "shield" => {
                let now = if name == "grace" {
                    "grace_period"
                } else {
                    "shielded"
                };
                return Err(Error::new(
                    key.span(),
                    format!("`{name}` is now `{now}`, as the `ScopeBuilder` method it sets"),
                ));
            }
            "parent" => quote!(#builder.parent(&#value)),
            "move_on_after" => {
                form = quote!(run_or_move_on);
                quote!(#builder.timeout(#value))
            }
            "policy" => {
                let policy = match value {
                    Expr::Path(path) => path.path.get_ident().map(ToString::to_string),
                    _ => None,
                };
                match policy.as_deref() {
                    Some("fail_fast") => quote!(#builder.policy(::taskscope::Policy::FailFast)),
                    Some("supervise") => quote!(#builder.policy(::taskscope::Policy::Supervise)),
                    Some("race") => {
                        return Err(Error::new(
                            value.span(),
                            "a race is not a policy: its body enters contestants and it returns \
                             the winner; use `taskscope::race(async |r| { r.spawn(…); Ok(()) })` \
                             or `ScopeBuilder::new()…race(…)`",
                        ))
                    }
                    _ => {
                        return Err(Error::new(
                            value.span(),
                            "`policy` is one of `fail_fast`, `supervise`",
                        ))
                    }
                }
            }
            _ => {
                return Err(Error::new(
                    key.span(),
                    format!("unknown scope! option `{name}`; allowed: {ALLOWED}"),
                ))
            }
        };
    }
    if seen.iter().any(|k| k == "shielded") && seen.iter().any(|k| k == "parent") {
        let key = options
            .iter()
            .map(|(key, _)| key)
            .find(|key| *key == "parent")
            .expect("seen above");
        return Err(Error::new(
            key.span(),
            "`parent` and `shielded` conflict: a shielded scope is linked to no token; use one",
        ));
    }
    let ExprClosure {
        attrs,
        capture,
        inputs,
        body,
        ..
    } = body;
    Ok(quote! {
        #builder.#form(#(#attrs)* async #capture |#inputs| #body)
    })
}

/// `timeout = 10s` is not Rust: a number with a unit suffix. Say what to
/// write instead, rather than leave rustc to complain about the suffix.
fn check_duration_literal(value: &Expr) -> syn::Result<()> {
    let Expr::Lit(literal) = value else {
        return Ok(());
    };
    let (digits, suffix) = match &literal.lit {
        syn::Lit::Int(int) => (int.base10_digits().to_owned(), int.suffix().to_owned()),
        syn::Lit::Float(float) => (float.base10_digits().to_owned(), float.suffix().to_owned()),
        _ => return Ok(()),
    };
    let suggestion = match suffix.as_str() {
        "" => format!("Duration::from_secs({digits}) (or from_millis, …)"),
        "s" | "sec" | "secs" => format!("Duration::from_secs({digits})"),
        "ms" => format!("Duration::from_millis({digits})"),
        "us" => format!("Duration::from_micros({digits})"),
        "ns" => format!("Duration::from_nanos({digits})"),
        "m" | "min" | "mins" => format!("Duration::from_secs({digits} * 60)"),
        "h" => format!("Duration::from_secs({digits} * 3600)"),
        // An ordinary integer type suffix (`10u64`): not ours to judge.
        _ => return Ok(()),
    };
    let suggestion = if digits.contains('.') && !suggestion.contains("(or") {
        format!("Duration::from_secs_f64({digits}{})", scale(&suffix))
    } else {
        suggestion
    };
    Err(Error::new(
        literal.span(),
        format!(
            "a scope! duration is a `std::time::Duration` expression, not `{digits}{suffix}`: \
             write `{suggestion}`"
        ),
    ))
}

/// The factor to seconds of a unit suffix, as written after a float.
fn scale(suffix: &str) -> &'static str {
    match suffix {
        "ms" => " / 1e3",
        "us" => " / 1e6",
        "ns" => " / 1e9",
        "m" | "min" | "mins" => " * 60.0",
        "h" => " * 3600.0",
        _ => "",
    }
}
