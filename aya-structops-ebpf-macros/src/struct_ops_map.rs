use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{
    Attribute, Expr, ExprLit, Ident, Lit, Path, Result, Token, Visibility, braced,
    parse::{Parse, ParseStream},
    parse2,
    punctuated::Punctuated,
    spanned::Spanned,
};

/// `[#[attrs]] vis static NAME: path::to::ops_type = { member: value, ... };`
pub(crate) struct StructOpsMap {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    ty: Path,
    members: Vec<(Ident, Expr)>,
    link: bool,
    optional: bool,
}

struct Member {
    name: Ident,
    value: Expr,
}

impl Parse for Member {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        let name = input.parse()?;
        input.parse::<Token![:]>()?;
        let value = input.parse()?;
        Ok(Self { name, value })
    }
}

impl Parse for StructOpsMap {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        input.parse::<Token![static]>()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let ty: Path = input.parse()?;
        input.parse::<Token![=]>()?;
        let content;
        braced!(content in input);
        let members = Punctuated::<Member, Token![,]>::parse_terminated(&content)?;
        input.parse::<Token![;]>()?;
        let mut link = true;
        let mut optional = false;
        let mut kept = Vec::new();
        for attr in attrs.drain(..) {
            if !attr.path().is_ident("struct_ops") {
                kept.push(attr);
                continue;
            }
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("optional") {
                    optional = true;
                    Ok(())
                } else if meta.path.is_ident("link") {
                    let v: syn::LitBool = meta.value()?.parse()?;
                    link = v.value;
                    Ok(())
                } else {
                    Err(meta.error("expected `link = true|false` or `optional`"))
                }
            })?;
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for m in members {
            if !seen.insert(m.name.to_string()) {
                return Err(syn::Error::new(
                    m.name.span(),
                    format!("member `{}` is set twice", m.name),
                ));
            }
            out.push((m.name, m.value));
        }
        Ok(Self {
            attrs: kept,
            vis,
            name,
            ty,
            members: out,
            link,
            optional,
        })
    }
}

/// A member value that names a program: a path whose last segment is a snake_case (function) name.
/// Constants (`SCREAMING_CASE`) and any other expression are data.
fn is_program_path(path: &Path) -> bool {
    path.segments.last().is_some_and(|s| {
        s.ident
            .to_string()
            .trim_start_matches("r#")
            .chars()
            .find(|c| *c != '_')
            .is_some_and(|c| c.is_ascii_lowercase())
    })
}

impl StructOpsMap {
    pub(crate) fn parse(input: TokenStream) -> Result<Self> {
        parse2(input)
    }

    pub(crate) fn expand(&self) -> TokenStream {
        let Self {
            attrs,
            vis,
            name,
            ty,
            members,
            link,
            optional,
        } = self;
        let type_name = &ty.segments.last().expect("a path has a segment").ident;
        let module = format_ident!("__struct_ops_{}", name);
        // Inside `#module` the struct named after the kernel type shadows a single-segment path such as
        // `tcp_congestion_ops`: such a path gets a name of its own; longer paths stay as written (so errors
        // name them as the user wrote them).
        let alias = format_ident!("__struct_ops_{}_ops", name);
        let (ops_use, ops) = if ty.segments.len() == 1 && ty.leading_colon.is_none() {
            (
                quote! {
                    #[doc(hidden)]
                    #[allow(unused_imports, non_camel_case_types)]
                    use #ty as #alias;
                },
                quote!(#alias),
            )
        } else {
            (quote!(), quote!(#ty))
        };
        let section = format!(
            "{}{}",
            if *optional { "?" } else { "" },
            if *link {
                ".struct_ops.link"
            } else {
                ".struct_ops"
            }
        );
        let symbol = name.to_string();
        let fields = members.iter().map(|(m, _)| quote!(pub #m: #ops::#m));
        let values = members.iter().map(|(m, v)| match v {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => {
                quote!(#m: ::aya_structops_ebpf::cstr(#s))
            }
            Expr::Path(p) if is_program_path(&p.path) => {
                // The program must implement `Program` (it has `#[struct_ops]`) and its signature must be
                // the member's: both are trait bounds, so a mistake is a compile error naming the member.
                let check = quote_spanned! {v.span()=>
                    __check(&#v)
                };
                quote! {
                    #m: {
                        const fn __check<P: ::aya_structops_ebpf::Program>(
                            _: &P,
                        ) -> ::aya_structops_ebpf::ProgFn
                        where
                            ::aya_structops_ebpf::Signature<
                                <P as ::aya_structops_ebpf::Program>::Signature,
                            >: #ops::signatures::#m,
                        {
                            <P as ::aya_structops_ebpf::Program>::PROG
                        }
                        #check
                    }
                }
            }
            _ => quote!(#m: #v),
        });
        quote! {
            #ops_use
            #[doc(hidden)]
            #[allow(non_snake_case)]
            mod #module {
                #[allow(unused_imports)]
                use super::*;
                /// The members this ops value sets, in the layout the object's BTF describes.
                #[repr(C)]
                #[allow(non_camel_case_types)]
                pub struct #type_name {
                    #(#fields),*
                }
                // SAFETY: an ops value is plain data read by the loader; BPF code never mutates it.
                unsafe impl ::core::marker::Sync for #type_name {}
            }
            #(#attrs)*
            #[unsafe(export_name = #symbol)]
            #[unsafe(link_section = #section)]
            #vis static #name: #module::#type_name = #module::#type_name { #(#values),* };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_link_map_with_only_given_members() {
        let m = StructOpsMap::parse(quote! {
            /// docs
            pub static RENO: ops::tcp_congestion_ops = {
                ssthresh: rust_ssthresh,
                name: "reno",
                flags: 0,
            };
        })
        .unwrap();
        let expected = quote! {
            #[doc(hidden)]
            #[allow(non_snake_case)]
            mod __struct_ops_RENO {
                #[allow(unused_imports)]
                use super::*;
                /// The members this ops value sets, in the layout the object's BTF describes.
                #[repr(C)]
                #[allow(non_camel_case_types)]
                pub struct tcp_congestion_ops {
                    pub ssthresh: ops::tcp_congestion_ops::ssthresh,
                    pub name: ops::tcp_congestion_ops::name,
                    pub flags: ops::tcp_congestion_ops::flags
                }
                unsafe impl ::core::marker::Sync for tcp_congestion_ops {}
            }
            /// docs
            #[unsafe(export_name = "RENO")]
            #[unsafe(link_section = ".struct_ops.link")]
            pub static RENO: __struct_ops_RENO::tcp_congestion_ops =
                __struct_ops_RENO::tcp_congestion_ops {
                    ssthresh: {
                        const fn __check<P: ::aya_structops_ebpf::Program>(
                            _: &P,
                        ) -> ::aya_structops_ebpf::ProgFn
                        where
                            ::aya_structops_ebpf::Signature<
                                <P as ::aya_structops_ebpf::Program>::Signature,
                            >: ops::tcp_congestion_ops::signatures::ssthresh,
                        {
                            <P as ::aya_structops_ebpf::Program>::PROG
                        }
                        __check(&rust_ssthresh)
                    },
                    name: ::aya_structops_ebpf::cstr("reno"),
                    flags: 0
                };
        };
        assert_eq!(m.expand().to_string(), expected.to_string());
    }

    #[test]
    fn section_options() {
        let m = StructOpsMap::parse(quote! {
            #[struct_ops(link = false, optional)]
            static X: t = { a: f };
        })
        .unwrap();
        assert!(m.expand().to_string().contains("\"?.struct_ops\""));
    }

    #[test]
    fn constants_are_data_and_functions_are_programs() {
        let m = StructOpsMap::parse(quote! {
            static X: ops::t = { flags: MY_FLAGS, timeout_ms: cfg::TIMEOUT, init: progs::my_init, r#yield: r#yield_prog };
        })
        .unwrap();
        let s = m.expand().to_string();
        assert!(s.contains("flags : MY_FLAGS"), "{s}");
        assert!(s.contains("timeout_ms : cfg :: TIMEOUT"), "{s}");
        assert!(s.contains("ops :: t :: signatures :: init"), "{s}");
        assert!(s.contains("__check (& progs :: my_init)"), "{s}");
        assert!(s.contains("__check (& r#yield_prog)"), "{s}");
        // A one-segment ops path gets a name the struct named after the kernel type can't shadow.
        let m = StructOpsMap::parse(quote!(static Y: t = { init: my_init };)).unwrap();
        let s = m.expand().to_string();
        assert!(s.contains("use t as __struct_ops_Y_ops"), "{s}");
        assert!(
            s.contains("__struct_ops_Y_ops :: signatures :: init"),
            "{s}"
        );
    }

    #[test]
    fn duplicate_member_is_an_error() {
        let e = StructOpsMap::parse(quote!(static X: t = { a: f, a: g };))
            .err()
            .unwrap();
        assert!(e.to_string().contains("member `a` is set twice"));
    }
}
