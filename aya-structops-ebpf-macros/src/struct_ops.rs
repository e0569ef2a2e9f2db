use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{
    FnArg, ItemFn, LitStr, Pat, PatType, Result, ReturnType, Token, Type, parse::Parser, parse2,
    punctuated::Punctuated, spanned::Spanned,
};

/// A parsed `#[struct_ops(...)] fn`.
pub(crate) struct StructOps {
    item: ItemFn,
    sleepable: bool,
    name: Option<String>,
    /// The first parameter is a `StructOpsContext` (not part of the kernel signature).
    takes_context: bool,
}

/// Whether a parameter's type is `StructOpsContext` (any path ending in it).
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "StructOpsContext"),
        _ => false,
    }
}

impl StructOps {
    pub(crate) fn parse(attrs: TokenStream, item: TokenStream) -> Result<Self> {
        let item: ItemFn = parse2(item)?;
        let mut sleepable = false;
        let mut name = None;
        let metas = Punctuated::<syn::Meta, Token![,]>::parse_terminated.parse2(attrs)?;
        for meta in metas {
            match &meta {
                syn::Meta::Path(p) if p.is_ident("sleepable") => sleepable = true,
                syn::Meta::NameValue(nv) if nv.path.is_ident("name") => {
                    let value = &nv.value;
                    let lit: LitStr = parse2(quote!(#value))
                        .map_err(|_| syn::Error::new(nv.value.span(), "expected a string"))?;
                    if syn::parse_str::<syn::Ident>(&lit.value()).is_err() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "the program name must be a valid identifier (it is the ELF symbol)",
                        ));
                    }
                    name = Some(lit.value());
                }
                _ => {
                    return Err(syn::Error::new(
                        meta.span(),
                        "expected `sleepable` or `name = \"...\"`",
                    ));
                }
            }
        }
        let sig = &item.sig;
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new(
                v.span(),
                "struct_ops programs are not variadic",
            ));
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(
                sig.generics.span(),
                "struct_ops programs cannot be generic",
            ));
        }
        if let Some(a) = &sig.asyncness {
            return Err(syn::Error::new(
                a.span(),
                "struct_ops programs cannot be async",
            ));
        }
        let mut takes_context = false;
        for (i, arg) in sig.inputs.iter().enumerate() {
            match arg {
                FnArg::Receiver(r) => {
                    return Err(syn::Error::new(
                        r.span(),
                        "struct_ops programs take no self",
                    ));
                }
                FnArg::Typed(PatType { pat, ty, .. }) => {
                    if !matches!(**pat, Pat::Ident(_) | Pat::Wild(_)) {
                        return Err(syn::Error::new(pat.span(), "use a plain argument name"));
                    }
                    if is_context(ty) {
                        if i != 0 {
                            return Err(syn::Error::new(
                                ty.span(),
                                "a `StructOpsContext` parameter must come first",
                            ));
                        }
                        takes_context = true;
                    }
                }
            }
        }
        if sig.inputs.len() > 12 + usize::from(takes_context) {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "struct_ops programs take at most 12 arguments (MAX_BPF_FUNC_ARGS)",
            ));
        }
        Ok(Self {
            item,
            sleepable,
            name,
            takes_context,
        })
    }

    pub(crate) fn expand(&self) -> TokenStream {
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = &self.item;
        let fn_name = &sig.ident;
        let symbol = self.name.clone().unwrap_or_else(|| fn_name.to_string());
        let section = format!(
            "{}/{}",
            if self.sleepable {
                "struct_ops.s"
            } else {
                "struct_ops"
            },
            symbol
        );
        // Doc comments describe the program (the type); everything else applies to the function.
        let (docs, fn_attrs): (Vec<_>, Vec<_>) =
            attrs.iter().partition(|a| a.path().is_ident("doc"));
        let entry = format_ident!("{}", symbol, span = fn_name.span());
        let inner = format_ident!("__{}_inner", fn_name);
        let inputs = &sig.inputs;
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        };
        let typed = || {
            inputs.iter().filter_map(|a| match a {
                FnArg::Typed(t) => Some(&t.ty),
                FnArg::Receiver(_) => None,
            })
        };
        let skip = usize::from(self.takes_context);
        let kernel_tys: Vec<_> = typed().skip(skip).collect();
        let mut args: Vec<TokenStream> = Vec::new();
        if self.takes_context {
            args.push(quote! {
                // SAFETY: `ctx` is the kernel's argument array of this program.
                unsafe { ::aya_structops_ebpf::StructOpsContext::new(ctx) }
            });
        }
        for (i, ty) in kernel_tys.iter().enumerate() {
            args.push(quote_spanned! {ty.span()=>
                <#ty as ::aya_structops_ebpf::FromArg>::from_arg(
                    // SAFETY: the kernel passes one u64 per argument of the ops member.
                    unsafe { ::core::ptr::read(ctx.add(#i)) }
                )
            });
        }
        let unsafety = &sig.unsafety;
        let call = quote!(#inner(#(#args),*));
        let call = if unsafety.is_some() {
            quote!(unsafe { #call })
        } else {
            call
        };
        let ret_span = match &sig.output {
            ReturnType::Default => fn_name.span(),
            ReturnType::Type(_, ty) => ty.span(),
        };
        let into_ret = quote_spanned!(ret_span=> ::aya_structops_ebpf::IntoRet::into_ret);
        quote! {
            #(#docs)*
            ///
            /// A struct_ops program (`#[struct_ops]`): set it as an ops member in `struct_ops_map!`.
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy)]
            #vis struct #fn_name;

            impl ::aya_structops_ebpf::Program for #fn_name {
                type Signature = fn(#(#kernel_tys),*) -> #output;
                const PROG: ::aya_structops_ebpf::ProgFn = {
                    #(#fn_attrs)*
                    #[unsafe(export_name = #symbol)]
                    #[unsafe(link_section = #section)]
                    extern "C" fn #entry(
                        ctx: *const u64,
                    ) -> <#output as ::aya_structops_ebpf::IntoRet>::Ret {
                        #[inline(always)]
                        #unsafety fn #inner(#inputs) -> #output #block
                        #into_ret(#call)
                    }
                    // SAFETY: only the kernel calls the entry point, with the argument array, and it reads
                    // `r0` as the member's return type, which is what the entry point returns.
                    unsafe {
                        ::core::mem::transmute::<
                            extern "C" fn(*const u64) -> <#output as ::aya_structops_ebpf::IntoRet>::Ret,
                            ::aya_structops_ebpf::ProgFn,
                        >(#entry)
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_to_a_program_type_and_an_exported_entry() {
        let p = StructOps::parse(
            quote!(),
            quote! {
                /// Docs.
                fn cong_avoid(sk: *mut sock, ack: u32) { body() }
            },
        )
        .unwrap();
        let expected = quote! {
            /// Docs.
            ///
            /// A struct_ops program (`#[struct_ops]`): set it as an ops member in `struct_ops_map!`.
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy)]
            struct cong_avoid;

            impl ::aya_structops_ebpf::Program for cong_avoid {
                type Signature = fn(*mut sock, u32) -> ();
                const PROG: ::aya_structops_ebpf::ProgFn = {
                    #[unsafe(export_name = "cong_avoid")]
                    #[unsafe(link_section = "struct_ops/cong_avoid")]
                    extern "C" fn cong_avoid(
                        ctx: *const u64,
                    ) -> <() as ::aya_structops_ebpf::IntoRet>::Ret {
                        #[inline(always)]
                        fn __cong_avoid_inner(sk: *mut sock, ack: u32) -> () { body() }
                        ::aya_structops_ebpf::IntoRet::into_ret(__cong_avoid_inner(
                            <*mut sock as ::aya_structops_ebpf::FromArg>::from_arg(
                                unsafe { ::core::ptr::read(ctx.add(0usize)) }
                            ),
                            <u32 as ::aya_structops_ebpf::FromArg>::from_arg(
                                unsafe { ::core::ptr::read(ctx.add(1usize)) }
                            )
                        ))
                    }
                    unsafe {
                        ::core::mem::transmute::<
                            extern "C" fn(*const u64) -> <() as ::aya_structops_ebpf::IntoRet>::Ret,
                            ::aya_structops_ebpf::ProgFn,
                        >(cong_avoid)
                    }
                };
            }
        };
        assert_eq!(p.expand().to_string(), expected.to_string());
    }

    #[test]
    fn sleepable_and_renamed() {
        let p = StructOps::parse(
            quote!(sleepable, name = "test_1"),
            quote! { pub unsafe fn t(x: u64) -> i32 { 0 } },
        )
        .unwrap();
        let s = p.expand().to_string();
        assert!(s.contains("\"struct_ops.s/test_1\""), "{s}");
        assert!(s.contains("export_name = \"test_1\""), "{s}");
        assert!(s.contains("extern \"C\" fn test_1"), "{s}");
        assert!(s.contains("pub struct t"), "{s}");
        assert!(s.contains("unsafe { __t_inner"), "{s}");
    }

    #[test]
    fn context_parameter_is_not_part_of_the_signature() {
        let p = StructOps::parse(
            quote!(),
            quote! { fn f(ctx: StructOpsContext, sk: *mut sock) -> u32 { 0 } },
        )
        .unwrap();
        let s = p.expand().to_string();
        assert!(s.contains("type Signature = fn (* mut sock) -> u32"), "{s}");
        assert!(s.contains("StructOpsContext :: new (ctx)"), "{s}");
        // the first kernel argument is still ctx[0]
        assert!(s.contains("ctx . add (0usize)"), "{s}");
        let e = StructOps::parse(
            quote!(),
            quote! { fn f(sk: *mut sock, ctx: StructOpsContext) {} },
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("must come first"), "{e}");
    }

    #[test]
    fn rejects_unknown_option_generics_and_bad_names() {
        let err =
            |a: TokenStream, f: TokenStream| StructOps::parse(a, f).err().unwrap().to_string();
        assert!(
            err(
                quote!(bogus),
                quote!(
                    fn f() {}
                )
            )
            .contains("expected `sleepable`")
        );
        assert!(
            err(
                quote!(),
                quote!(
                    fn f<T>() {}
                )
            )
            .contains("cannot be generic")
        );
        assert!(
            err(
                quote!(name = "a-b"),
                quote!(
                    fn f() {}
                )
            )
            .contains("valid identifier")
        );
        assert!(
            err(
                quote!(),
                quote!(
                    async fn f() {}
                )
            )
            .contains("cannot be async")
        );
        assert!(
            err(
                quote!(),
                quote!(
                    fn f((a, b): (u32, u32)) {}
                )
            )
            .contains("plain argument")
        );
    }
}
