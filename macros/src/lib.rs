//! `#[kiln::trace]`: turns a plain `fn` over `&Tensor`s into a traced, compiled function
//! with the same signature (TensorFlow's `@tf.function`).
//!
//! (Doc-tested on its re-export, `kiln::trace`: this crate cannot depend on `kiln`.)
//!
//! ```ignore
//! #[kiln::trace]
//! fn gelu(x: &Tensor) -> Tensor {
//!     0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.797_884_6).tanh())
//! }
//! ```
//!
//! The function traces once per argument signature (dtype and shape of each argument) and
//! reuses the compiled graph afterwards; it is safe to call from several threads. A function
//! returning `Tensor` (or a tuple of them) panics with the error's message if the call fails;
//! one returning `Result<..>` returns the error.
//!
//! Options: `#[trace(jit = false)]` runs the graph with the reference interpreter;
//! `#[trace(name = "my_name")]` names it in dumps (default: the function's name).

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Error, FnArg, ItemFn, Lit, Meta, Pat, ReturnType, Token, Type};

struct Options {
    jit: bool,
    name: Option<String>,
}

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut opts = Options { jit: true, name: None };
        for meta in Punctuated::<Meta, Token![,]>::parse_terminated(input)? {
            let nv = match &meta {
                Meta::NameValue(nv) => nv,
                _ => return Err(Error::new_spanned(meta, "expected `jit = false` or `name = \"..\"`")),
            };
            let lit = match &nv.value {
                syn::Expr::Lit(l) => &l.lit,
                other => return Err(Error::new_spanned(other, "expected a literal")),
            };
            match (nv.path.get_ident().map(|i| i.to_string()).as_deref(), lit) {
                (Some("jit"), Lit::Bool(b)) => opts.jit = b.value,
                (Some("name"), Lit::Str(s)) => opts.name = Some(s.value()),
                _ => return Err(Error::new_spanned(nv, "unknown option: expected `jit = <bool>` or `name = \"..\"`")),
            }
        }
        Ok(opts)
    }
}

/// See the crate docs.
#[proc_macro_attribute]
pub fn trace(attr: TokenStream, item: TokenStream) -> TokenStream {
    let opts = parse_macro_input!(attr as Options);
    let func = parse_macro_input!(item as ItemFn);
    match expand(opts, func) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(opts: Options, func: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig = &func.sig;
    if !sig.generics.params.is_empty() || sig.asyncness.is_some() || sig.variadic.is_some() {
        return Err(Error::new_spanned(sig, "#[trace] needs a plain, non-generic, non-async fn"));
    }
    let mut names = Vec::new();
    let mut types = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Typed(pt) => match (&*pt.pat, &*pt.ty) {
                (Pat::Ident(id), Type::Reference(_)) => {
                    names.push(id.ident.clone());
                    types.push((*pt.ty).clone());
                }
                _ => return Err(Error::new_spanned(pt, "#[trace] arguments must be `name: &Tensor`")),
            },
            FnArg::Receiver(r) => return Err(Error::new_spanned(r, "#[trace] does not support methods")),
        }
    }
    if names.len() > 8 {
        return Err(Error::new_spanned(&sig.inputs, "#[trace] supports at most 8 arguments"));
    }
    let ret: Type = match &sig.output {
        ReturnType::Type(_, t) => (**t).clone(),
        ReturnType::Default => syn::parse_quote!(()),
    };
    let returns_result = matches!(&ret, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result"));
    let name = opts.name.unwrap_or_else(|| sig.ident.to_string());
    let backend = if opts.jit { quote!() } else { quote!(.with_backend(::kiln::Backend::Interpreter)) };
    let body = &func.block;
    let attrs = &func.attrs;
    let vis = &func.vis;
    let call = if returns_result {
        quote!(__KILN_FN.get_or_init(__kiln_build).call((#(#names,)*)))
    } else {
        quote!(match __KILN_FN.get_or_init(__kiln_build).call((#(#names,)*)) {
            ::std::result::Result::Ok(v) => v,
            ::std::result::Result::Err(e) => ::std::panic!("{}", e),
        })
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            static __KILN_FN: ::std::sync::OnceLock<::kiln::Function<#ret>> = ::std::sync::OnceLock::new();
            fn __kiln_build() -> ::kiln::Function<#ret> {
                ::kiln::function(|#(#names: #types),*| -> #ret #body)
                    .with_name(#name)
                    #backend
            }
            #call
        }
    })
}
