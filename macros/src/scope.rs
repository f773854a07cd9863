//! `scope!`: options as `key = value` pairs, then the body as a closure.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprClosure, Ident, Token};

/// How an option's value becomes a builder call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `.key(value)`.
    Plain,
    /// `.key(value)` with a `Duration` value.
    Duration,
    /// `.key(&value)`.
    Reference,
    /// `fail_fast` or `supervise`.
    Policy,
    /// `.timeout(value)`, and the "move on" form of running.
    MoveOnAfter,
    /// `(KEY, value)` → `.bind(&KEY, value)`; the one key that may repeat.
    Bind,
}

/// Every option of `scope!`: its key (the `ScopeBuilder` method it calls),
/// how its value is passed, and whether it bounds the scope (a scope has at
/// most one bound). The one list: the parser, the error messages and the
/// test that checks the crate's documentation all read it.
const OPTIONS: &[(&str, Kind, bool)] = &[
    ("name", Kind::Plain, false),
    ("policy", Kind::Policy, false),
    ("limit", Kind::Plain, false),
    ("grace_period", Kind::Duration, false),
    ("warn_after", Kind::Duration, false),
    ("timeout", Kind::Duration, true),
    ("move_on_after", Kind::MoveOnAfter, true),
    ("deadline", Kind::Plain, true),
    ("shielded", Kind::Duration, true),
    ("parent", Kind::Reference, false),
    ("cancel_on_exit", Kind::Plain, false),
    ("bind", Kind::Bind, false),
];

/// The keys, for an error message: "`name`, `policy`, …".
fn allowed() -> String {
    OPTIONS
        .iter()
        .map(|(key, _, _)| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

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
    let mut bound: Option<String> = None;
    for (key, value) in &options {
        let name = key.to_string();
        let Some(&(_, kind, bounds)) = OPTIONS.iter().find(|(k, _, _)| *k == name) else {
            return Err(Error::new(
                key.span(),
                format!("unknown scope! option `{name}`; allowed: {}", allowed()),
            ));
        };
        if seen.contains(&name) && kind != Kind::Bind {
            return Err(Error::new(key.span(), format!("duplicate option `{name}`")));
        }
        seen.push(name.clone());
        if bounds {
            if let Some(earlier) = &bound {
                return Err(Error::new(
                    key.span(),
                    format!(
                        "`{name}` and `{earlier}` both bound the scope (`timeout`, \
                         `move_on_after`, `deadline` and `shielded` each do); use one"
                    ),
                ));
            }
            bound = Some(name.clone());
        }
        let method = Ident::new(&name, key.span());
        builder = match kind {
            Kind::Plain => quote!(#builder.#method(#value)),
            Kind::Duration => {
                check_duration_literal(value)?;
                quote!(#builder.#method(#value))
            }
            Kind::Reference => quote!(#builder.#method(&#value)),
            Kind::MoveOnAfter => {
                check_duration_literal(value)?;
                form = quote!(run_or_move_on);
                quote!(#builder.timeout(#value))
            }
            Kind::Policy => policy(&builder, value)?,
            Kind::Bind => bind(&builder, value)?,
        };
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

/// `bind = (KEY, value)`: a scope-local key (a `static`) and its value.
fn bind(builder: &TokenStream, value: &Expr) -> syn::Result<TokenStream> {
    match value {
        Expr::Tuple(tuple) if tuple.elems.len() == 2 => {
            let key = &tuple.elems[0];
            let bound = &tuple.elems[1];
            Ok(quote!(#builder.bind(&#key, #bound)))
        }
        _ => Err(Error::new(
            value.span(),
            "`bind` takes a key and its value: `bind = (REQUEST_ID, id)`",
        )),
    }
}

/// `policy = fail_fast` or `policy = supervise`.
fn policy(builder: &TokenStream, value: &Expr) -> syn::Result<TokenStream> {
    let policy = match value {
        Expr::Path(path) => path.path.get_ident().map(ToString::to_string),
        _ => None,
    };
    match policy.as_deref() {
        Some("fail_fast") => Ok(quote!(#builder.policy(::taskscope::Policy::FailFast))),
        Some("supervise") => Ok(quote!(#builder.policy(::taskscope::Policy::Supervise))),
        Some("race") => Err(Error::new(
            value.span(),
            "a race is not a policy: its body enters contestants and it returns \
             the winner; use `taskscope::race(async |r| { r.spawn(…); Ok(()) })` \
             or `ScopeBuilder::new()…race(…)`",
        )),
        _ => Err(Error::new(
            value.span(),
            "`policy` is one of `fail_fast`, `supervise`",
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::OPTIONS;

    /// The crate's documentation of `scope!` lists exactly these options,
    /// in this order.
    #[test]
    fn the_documented_options_are_the_options() {
        let docs = include_str!("../../src/lib.rs");
        let table = docs
            .lines()
            .skip_while(|line| !line.starts_with("/// | option |"))
            .skip(2)
            .take_while(|line| line.starts_with("/// | `"));
        let documented: Vec<&str> = table
            .map(|line| line.split('`').nth(1).expect("an option in backquotes"))
            .collect();
        let options: Vec<&str> = OPTIONS.iter().map(|(key, _, _)| *key).collect();
        assert_eq!(documented, options);
    }
}
