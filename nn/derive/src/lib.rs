//! `#[derive(Module)]`: a module's children, parameters and buffers from its
//! fields, so that no list is written twice (PyTorch registers children when
//! they are assigned; this reads them off the struct).
//!
//! Every field is a child module unless it says otherwise, in field order:
//!
//! | field | becomes |
//! |---|---|
//! | `conv1: Conv2d<T>` (any module, `Box<dyn Module<T>>` too) | child `conv1` |
//! | `blocks: Vec<M>` | children `blocks.0`, `blocks.1`, ... |
//! | `#[module(flatten)] layers: Vec<M>` | children `0`, `1`, ... (as `Sequential`) |
//! | `head: Option<M>` | child `head` when `Some` |
//! | `#[module(name = "0")] first: M` | child `0` |
//! | `#[module(name = "layer{}", start = 1)] layers: Vec<M>` | children `layer1`, `layer2`, ... |
//! | `#[param] weight: Tensor<T>` / `Option<Tensor<T>>` | parameter `weight` |
//! | `#[buffer] running_mean: Tensor<T>` / `Option<..>` | buffer `running_mean` |
//! | `#[param(name = "w")]`, `#[buffer(name = "..")]` | renamed |
//! | `#[buffer(dtype = "i64")] num_batches_tracked: Tensor<T>` | buffer saved as int64 in every state dict |
//! | `hooks: Hooks` (or `#[module(hooks)]`) | the forward-hook slot |
//! | `#[module(skip)] config: Config`, `PhantomData<_>` | nothing |
//!
//! A field that is none of these and not a module does not compile (the
//! error names the field), so a child cannot be left out silently.
//! Parameters come before buffers, each in field order, as in PyTorch's
//! `state_dict`.
//!
//! The float type is the struct's type parameter `T` (or the one named by
//! `#[module(float = U)]`); a struct without one is a module for the float
//! type its fields are of (`f32` for `Conv2d`, `f64` for `Conv2d<f64>`, any
//! for a struct of activations). Generated paths start with `nn::`; a crate that reaches
//! the library through another path says so with `#[module(crate = dlfs::nn)]`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Data, DeriveInput, Fields, GenericArgument, Ident, LitStr, Path,
    PathArguments, Type,
};

/// Generates `nn::ModuleFields` (children, own tensors, hook slot) from the
/// struct's fields. See the crate documentation for the field rules.
#[proc_macro_derive(Module, attributes(module, param, buffer))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

enum Role {
    Child {
        name: String,
        shape: Shape,
        start: usize,
    },
    Tensor {
        name: String,
        buffer: bool,
        optional: bool,
        /// The `FileDtype` variant it is saved as, from `dtype = "i64"`.
        dtype: Option<Ident>,
    },
    Hooks,
    Skip,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    One,
    Optional,
    List { flatten: bool },
}

struct StructOptions {
    krate: Path,
    float: Option<Ident>,
}

fn struct_options(input: &DeriveInput) -> syn::Result<StructOptions> {
    let mut krate: Path = syn::parse_quote!(nn);
    let mut float = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let v = meta.value()?;
                krate = if v.peek(LitStr) {
                    v.parse::<LitStr>()?.parse()?
                } else {
                    v.parse()?
                };
                Ok(())
            } else if meta.path.is_ident("float") {
                float = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected `crate = path` or `float = T`"))
            }
        })?;
    }
    Ok(StructOptions { krate, float })
}

fn last_segment(ty: &Type) -> Option<(&Ident, &PathArguments)> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().map(|s| (&s.ident, &s.arguments))
        }
        _ => None,
    }
}

fn is_named(ty: &Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|(id, _)| id == name)
}

fn first_type_arg(ty: &Type) -> Option<&Type> {
    match last_segment(ty)?.1 {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn field_role(field: &syn::Field, ident: &Ident) -> syn::Result<Role> {
    let mut role = None;
    let mut child_name = None;
    let mut flatten = false;
    let mut start = None;
    let set = |role: &mut Option<Role>, r: Role, span: Span| {
        if role.is_some() {
            return Err(syn::Error::new(
                span,
                "a field has one role: module, param, buffer, hooks or skip",
            ));
        }
        *role = Some(r);
        Ok(())
    };
    for attr in &field.attrs {
        let is_param = attr.path().is_ident("param");
        if is_param || attr.path().is_ident("buffer") {
            let mut name = ident.to_string();
            let mut dtype = None;
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("name") {
                        name = meta.value()?.parse::<LitStr>()?.value();
                        Ok(())
                    } else if meta.path.is_ident("dtype") {
                        let lit = meta.value()?.parse::<LitStr>()?;
                        dtype = Some(file_dtype(&lit)?);
                        Ok(())
                    } else {
                        Err(meta.error("expected `name = \"...\"` or `dtype = \"i64\"`"))
                    }
                })?;
            }
            let optional = is_named(&field.ty, "Option");
            set(
                &mut role,
                Role::Tensor {
                    name,
                    buffer: !is_param,
                    optional,
                    dtype,
                },
                attr.span(),
            )?;
        } else if attr.path().is_ident("module") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") {
                    set(&mut role, Role::Skip, meta.path.span())
                } else if meta.path.is_ident("hooks") {
                    set(&mut role, Role::Hooks, meta.path.span())
                } else if meta.path.is_ident("flatten") {
                    flatten = true;
                    Ok(())
                } else if meta.path.is_ident("name") {
                    child_name = Some(meta.value()?.parse::<LitStr>()?.value());
                    Ok(())
                } else if meta.path.is_ident("start") {
                    start = Some(
                        meta.value()?
                            .parse::<syn::LitInt>()?
                            .base10_parse::<usize>()?,
                    );
                    Ok(())
                } else {
                    Err(meta.error(
                        "expected `skip`, `hooks`, `flatten`, `name = \"...\"` or `start = N`",
                    ))
                }
            })?;
        }
    }
    if let Some(r) = role {
        if flatten || child_name.is_some() || start.is_some() {
            return Err(syn::Error::new(
                field.span(),
                "`flatten`, `name` and `start` apply to child modules only",
            ));
        }
        return Ok(r);
    }
    if child_name.is_none() && !flatten {
        if is_named(&field.ty, "Hooks") {
            return Ok(Role::Hooks);
        }
        if is_named(&field.ty, "PhantomData") {
            return Ok(Role::Skip);
        }
    }
    let shape = if is_named(&field.ty, "Vec") {
        Shape::List { flatten }
    } else if flatten {
        return Err(syn::Error::new(
            field.span(),
            "`flatten` applies to a `Vec` of modules",
        ));
    } else if is_named(&field.ty, "Option") {
        Shape::Optional
    } else {
        Shape::One
    };
    let templated = child_name.as_deref().is_some_and(|n| n.contains("{}"));
    if (templated || start.is_some()) && !matches!(shape, Shape::List { flatten: false }) {
        return Err(syn::Error::new(
            field.span(),
            "a `{}` name and `start` apply to a `Vec` of modules (not flattened)",
        ));
    }
    Ok(Role::Child {
        name: child_name.unwrap_or_else(|| ident.to_string()),
        shape,
        start: start.unwrap_or(0),
    })
}

/// The `nn::FileDtype` variant named by PyTorch's lower-case dtype name.
fn file_dtype(lit: &LitStr) -> syn::Result<Ident> {
    let variant = match lit.value().as_str() {
        "f64" => "F64",
        "f32" => "F32",
        "f16" => "F16",
        "bf16" => "BF16",
        "i64" => "I64",
        "i32" => "I32",
        "i16" => "I16",
        "i8" => "I8",
        "u8" => "U8",
        "bool" => "Bool",
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                "expected a dtype: f64, f32, f16, bf16, i64, i32, i16, i8, u8 or bool",
            ))
        }
    };
    Ok(Ident::new(variant, lit.span()))
}

fn expand(input: DeriveInput) -> syn::Result<Tokens> {
    let opts = struct_options(&input)?;
    let krate = &opts.krate;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(f) => &f.named,
            _ => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "derive(Module) needs a struct with named fields (the names become the state-dict names)",
                ))
            }
        },
        _ => return Err(syn::Error::new(input.ident.span(), "derive(Module) applies to structs")),
    };

    let mut params = Vec::new();
    let mut buffers = Vec::new();
    let mut children = Vec::new();
    let mut hooks = None;
    // Field types that must be modules / tensors of the float type, for a
    // struct whose float type is inferred from its fields.
    let mut module_types: Vec<Type> = Vec::new();
    let mut tensor_types: Vec<Type> = Vec::new();
    for field in fields {
        let ident = field.ident.as_ref().expect("named field");
        match field_role(field, ident)? {
            Role::Skip => {}
            Role::Hooks => {
                if hooks.is_some() {
                    return Err(syn::Error::new(field.span(), "a module has one hook slot"));
                }
                hooks = Some(ident.clone());
            }
            Role::Tensor {
                name,
                buffer,
                optional,
                dtype,
            } => {
                let ctor = if buffer {
                    quote!(buffer)
                } else {
                    quote!(param)
                };
                let stored = dtype.map(|d| quote!(.stored_as(#krate::FileDtype::#d)));
                let inner = if optional {
                    first_type_arg(&field.ty).unwrap_or(&field.ty)
                } else {
                    &field.ty
                };
                tensor_types.push(inner.clone());
                let push = if optional {
                    quote_spanned! {field.ty.span()=>
                        if let Some(t) = &self.#ident {
                            out.push(#krate::NamedTensor::#ctor(#name, #krate::module::as_tensor(t))#stored);
                        }
                    }
                } else {
                    quote_spanned! {field.ty.span()=>
                        out.push(#krate::NamedTensor::#ctor(#name, #krate::module::as_tensor(&self.#ident))#stored);
                    }
                };
                if buffer {
                    buffers.push(push)
                } else {
                    params.push(push)
                }
            }
            Role::Child { name, shape, start } => {
                let elem = match shape {
                    Shape::One => &field.ty,
                    _ => first_type_arg(&field.ty).unwrap_or(&field.ty),
                };
                module_types.push(elem.clone());
                let span = elem.span();
                let as_dyn = |e: Tokens| quote_spanned!(span=> #krate::module::as_child(#e));
                children.push(match shape {
                    Shape::One => {
                        let m = as_dyn(quote!(&self.#ident));
                        quote!(out.push((::std::string::String::from(#name), #m));)
                    }
                    Shape::Optional => {
                        let m = as_dyn(quote!(m));
                        quote! {
                            if let Some(m) = &self.#ident {
                                out.push((::std::string::String::from(#name), #m));
                            }
                        }
                    }
                    Shape::List { flatten } => {
                        let m = as_dyn(quote!(m));
                        let label = if flatten {
                            quote!((i + #start).to_string())
                        } else if name.contains("{}") {
                            quote!(#name.replace("{}", &(i + #start).to_string()))
                        } else {
                            quote!(format!("{}.{}", #name, i + #start))
                        };
                        quote! {
                            for (i, m) in self.#ident.iter().enumerate() {
                                out.push((#label, #m));
                            }
                        }
                    }
                });
            }
        }
    }

    let name = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let float = opts.float.clone().or_else(|| {
        input
            .generics
            .type_params()
            .find(|p| p.ident == "T")
            .map(|p| p.ident.clone())
    });
    let mut impl_generics = input.generics.clone();
    let float_ty: Tokens = match &float {
        Some(f) => quote!(#f),
        None => {
            // No float parameter: a module for every float type that its
            // fields are modules and tensors of (f32 for `Conv2d`, any for
            // a struct of activations).
            let f = Ident::new("__Float", Span::call_site());
            impl_generics
                .params
                .push(syn::parse_quote!(#f: #krate::__private::Float));
            let wc = impl_generics.make_where_clause();
            for t in &module_types {
                wc.predicates
                    .push(syn::parse_quote!(#t: #krate::Module<#f>));
            }
            for t in &tensor_types {
                wc.predicates
                    .push(syn::parse_quote!(#t: #krate::module::TensorOf<#f>));
            }
            quote!(#f)
        }
    };
    let (impl_generics, _, where_clause) = impl_generics.split_for_impl();
    let hooks_fn = hooks.map(|h| {
        quote! {
            fn hooks(&self) -> ::std::option::Option<&#krate::Hooks> {
                ::std::option::Option::Some(&self.#h)
            }
        }
    });
    Ok(quote! {
        impl #impl_generics #krate::ModuleFields<#float_ty> for #name #ty_generics #where_clause {
            fn own_tensors(&self) -> ::std::vec::Vec<#krate::NamedTensor<#float_ty>> {
                #[allow(unused_mut)]
                let mut out = ::std::vec::Vec::new();
                #(#params)*
                #(#buffers)*
                out
            }

            fn children(&self) -> ::std::vec::Vec<(::std::string::String, &dyn #krate::Module<#float_ty>)> {
                #[allow(unused_mut)]
                let mut out: ::std::vec::Vec<(::std::string::String, &dyn #krate::Module<#float_ty>)> =
                    ::std::vec::Vec::new();
                #(#children)*
                out
            }

            #hooks_fn
        }
    })
}
