use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{
    FnArg, ItemFn, LitStr, Pat, Result, ReturnType, Token, parse::Parser, parse2,
    punctuated::Punctuated, spanned::Spanned,
};

/// A parsed `#[struct_ops(...)] fn`.
pub(crate) struct StructOps {
    item: ItemFn,
    sleepable: bool,
    name: Option<String>,
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
        if let Some(v) = &item.sig.variadic {
            return Err(syn::Error::new(
                v.span(),
                "struct_ops programs are not variadic",
            ));
        }
        if !item.sig.generics.params.is_empty() {
            return Err(syn::Error::new(
                item.sig.generics.span(),
                "struct_ops programs cannot be generic",
            ));
        }
        Ok(Self {
            item,
            sleepable,
            name,
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
        let inner = format_ident!("__{}_inner", fn_name);
        let inputs = &sig.inputs;
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        };
        let args = inputs.iter().enumerate().map(|(i, arg)| {
            let ty = match arg {
                FnArg::Typed(t) => &t.ty,
                FnArg::Receiver(r) => {
                    return syn::Error::new(r.span(), "struct_ops programs take no self")
                        .to_compile_error();
                }
            };
            if let FnArg::Typed(t) = arg {
                if !matches!(*t.pat, Pat::Ident(_) | Pat::Wild(_)) {
                    return syn::Error::new(t.pat.span(), "use a plain argument name")
                        .to_compile_error();
                }
            }
            quote! {
                <#ty as ::aya_structops_ebpf::FromArg>::from_arg(
                    // SAFETY: the kernel passes one u64 per argument of the ops member.
                    unsafe { ::core::ptr::read(ctx.add(#i)) }
                )
            }
        });
        let unsafety = &sig.unsafety;
        let call = quote!(#inner(#(#args),*));
        let call = if unsafety.is_some() {
            quote!(unsafe { #call })
        } else {
            call
        };
        quote! {
            #(#attrs)*
            #[unsafe(export_name = #symbol)]
            #[unsafe(link_section = #section)]
            #vis extern "C" fn #fn_name(ctx: *const u64) -> u64 {
                #[inline(always)]
                #unsafety fn #inner(#inputs) -> #output #block
                ::aya_structops_ebpf::IntoRet::into_ret(#call)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_typed_args_into_ctx_reads() {
        let p = StructOps::parse(
            quote!(),
            quote! {
                fn cong_avoid(sk: *mut sock, ack: u32) { body() }
            },
        )
        .unwrap();
        let expected = quote! {
            #[unsafe(export_name = "cong_avoid")]
            #[unsafe(link_section = "struct_ops/cong_avoid")]
            extern "C" fn cong_avoid(ctx: *const u64) -> u64 {
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
        assert!(s.contains("unsafe { __t_inner"), "{s}");
    }

    #[test]
    fn rejects_unknown_option_and_generics() {
        assert!(
            StructOps::parse(
                quote!(bogus),
                quote!(
                    fn f() {}
                )
            )
            .is_err()
        );
        assert!(
            StructOps::parse(
                quote!(),
                quote!(
                    fn f<T>() {}
                )
            )
            .is_err()
        );
    }
}
