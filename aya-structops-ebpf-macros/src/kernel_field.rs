use proc_macro2::TokenStream;
use quote::quote;
use syn::{
    Attribute, Expr, Ident, Result, Token, Type, Visibility,
    parse::{Parse, ParseStream},
    parse2,
    punctuated::Punctuated,
};

/// `[#[attrs]] vis NAME: type.field[.sub...] as T [= default]`
pub(crate) struct KernelFieldDecl {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    path: Vec<Ident>,
    ty: Type,
    default: Option<Expr>,
}

impl Parse for KernelFieldDecl {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let name = input.parse()?;
        input.parse::<Token![:]>()?;
        let path = Punctuated::<Ident, Token![.]>::parse_separated_nonempty(input)?;
        if path.len() < 2 {
            return Err(input.error("expected `kernel_type.field`"));
        }
        input.parse::<Token![as]>()?;
        let ty = input.parse()?;
        let default = if input.parse::<Option<Token![=]>>()?.is_some() {
            Some(input.parse()?)
        } else {
            None
        };
        let _ = input.parse::<Option<Token![;]>>()?;
        Ok(Self {
            attrs,
            vis,
            name,
            path: path.into_iter().collect(),
            ty,
            default,
        })
    }
}

impl KernelFieldDecl {
    pub(crate) fn parse(input: TokenStream) -> Result<Self> {
        parse2(input)
    }

    /// `disambiguator` makes the symbol unique to this declaration (two declarations of one kernel field
    /// must not define the same symbol); the loader ignores what follows the path.
    pub(crate) fn expand(&self, disambiguator: &str) -> TokenStream {
        let Self {
            attrs,
            vis,
            name,
            path,
            ty,
            default,
        } = self;
        let mut symbol = symbol_name(path.iter().map(|i| i.to_string()));
        if !disambiguator.is_empty() {
            symbol.push('_');
            symbol.push_str(disambiguator);
        }
        let default = default
            .clone()
            .map_or_else(|| quote!(u32::MAX), |d| quote!(#d));
        quote! {
            #(#attrs)*
            #[unsafe(export_name = #symbol)]
            #[unsafe(link_section = ".rodata")]
            #vis static #name: ::aya_structops_ebpf::KernelField<#ty> =
                ::aya_structops_ebpf::KernelField::new(#default);
        }
    }
}

/// `__aya_field_` followed by each path element as `<len><name>`: a valid C identifier (BTF VAR names must
/// be), unambiguous even for names that start with digits or contain `__`. The loader decodes it, up to a
/// `_` where the next length would start.
fn symbol_name(path: impl Iterator<Item = String>) -> String {
    let mut s = String::from("__aya_field_");
    for part in path {
        s.push_str(&format!("{}{}", part.len(), part));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_to_rodata_static_named_by_path() {
        let d =
            KernelFieldDecl::parse(quote!(pub SND_CWND: tcp_sock.snd_cwnd as u32 = 1444)).unwrap();
        let expected = quote! {
            #[unsafe(export_name = "__aya_field_8tcp_sock8snd_cwnd")]
            #[unsafe(link_section = ".rodata")]
            pub static SND_CWND: ::aya_structops_ebpf::KernelField<u32> =
                ::aya_structops_ebpf::KernelField::new(1444);
        };
        assert_eq!(d.expand("").to_string(), expected.to_string());
        let s = d.expand("my_crate_3_1").to_string();
        assert!(
            s.contains("\"__aya_field_8tcp_sock8snd_cwnd_my_crate_3_1\""),
            "{s}"
        );
    }

    #[test]
    fn nested_path_and_no_default() {
        let d = KernelFieldDecl::parse(quote!(X: sock.__sk_common.skc_state as u8)).unwrap();
        let s = d.expand("").to_string();
        assert!(
            s.contains("__aya_field_4sock11__sk_common9skc_state"),
            "{s}"
        );
        assert!(s.contains("u32 :: MAX"), "{s}");
    }

    #[test]
    fn needs_a_field() {
        assert!(KernelFieldDecl::parse(quote!(X: tcp_sock as u32)).is_err());
    }
}
