use super::*;
use crate::btf::BtfKind;

/// Encodes small BTF blobs (the btf module's test builder is private to it).
struct B {
    types: Vec<u8>,
    strings: Vec<u8>,
    next: u32,
}

impl B {
    fn new() -> B {
        B {
            types: Vec::new(),
            strings: vec![0],
            next: 1,
        }
    }
    fn s(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }
    fn add(
        &mut self,
        kind: BtfKind,
        name: &str,
        vlen: u32,
        kflag: bool,
        third: u32,
        tail: &[u32],
    ) -> u32 {
        let name = self.s(name);
        let info = (u32::from(kflag) << 31) | (kind.as_raw() << 24) | vlen;
        for w in [name, info, third].iter().chain(tail) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        self.next += 1;
        self.next - 1
    }
    fn int(&mut self, name: &str, size: u32, enc: u32) -> u32 {
        self.add(
            BtfKind::Int,
            name,
            0,
            false,
            size,
            &[(enc << 24) | (size * 8)],
        )
    }
    fn typedef(&mut self, name: &str, t: u32) -> u32 {
        self.add(BtfKind::Typedef, name, 0, false, t, &[])
    }
    fn ptr(&mut self, t: u32) -> u32 {
        self.add(BtfKind::Ptr, "", 0, false, t, &[])
    }
    fn konst(&mut self, t: u32) -> u32 {
        self.add(BtfKind::Const, "", 0, false, t, &[])
    }
    fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        self.add(BtfKind::Array, "", 0, false, 0, &[elem, index, n])
    }
    /// Members: (name, type, bit offset).
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let mut tail = Vec::new();
        for &(m, t, off) in members {
            let m = self.s(m);
            tail.extend([m, t, off]);
        }
        self.add(
            BtfKind::Struct,
            name,
            members.len() as u32,
            false,
            size,
            &tail,
        )
    }
    /// A struct with `kind_flag` (bitfield sizes in the offset word's top byte).
    fn strukt_kflag(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        let mut tail = Vec::new();
        for &(m, t, off, bits) in members {
            let m = self.s(m);
            tail.extend([m, t, (bits << 24) | off]);
        }
        self.add(
            BtfKind::Struct,
            name,
            members.len() as u32,
            true,
            size,
            &tail,
        )
    }
    fn enm(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
        let mut tail = Vec::new();
        for &(v, val) in values {
            let v = self.s(v);
            tail.extend([v, val as u32]);
        }
        self.add(BtfKind::Enum, name, values.len() as u32, false, 4, &tail)
    }
    fn proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let mut tail = Vec::new();
        for &(p, t) in params {
            let p = self.s(p);
            tail.extend([p, t]);
        }
        self.add(
            BtfKind::FuncProto,
            "",
            params.len() as u32,
            false,
            ret,
            &tail,
        )
    }
    fn func(&mut self, name: &str, proto: u32) -> u32 {
        self.add(BtfKind::Func, name, 1, false, proto, &[])
    }
    fn kfunc_tag(&mut self, func: u32) -> u32 {
        self.add(BtfKind::DeclTag, "bpf_kfunc", 0, false, func, &[u32::MAX])
    }
    fn btf(&self) -> Btf {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        let (tl, sl) = (self.types.len() as u32, self.strings.len() as u32);
        for w in [24u32, 0, tl, tl, sl] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        Btf::parse(out).expect("test BTF parses")
    }
}

/// A kernel with `struct my_ops`. `newer` adds the member `cong_avoid`, the member `yield` and a kfunc.
fn kernel(newer: bool) -> Btf {
    let mut b = B::new();
    let uint = b.int("unsigned int", 4, 0);
    let int = b.int("int", 4, 1);
    let chr = b.int("char", 1, 0);
    let boolean = b.int("_Bool", 1, 4);
    let u32t = b.typedef("u32", uint);
    let sock = b.strukt("sock", 64, &[]);
    let sock_p = b.ptr(sock);
    let sample = b.strukt("ack_sample", 8, &[]);
    let sample_c = b.konst(sample);
    let sample_cp = b.ptr(sample_c);
    let event = b.enm(
        "tcp_ca_event",
        &[("CA_EVENT_TX_START", 0), ("CA_EVENT_LOSS", 3)],
    );
    let list = b.strukt("list_head", 16, &[]);
    let module = b.strukt("module", 128, &[]);
    let module_p = b.ptr(module);
    let name = b.array(chr, uint, 16);
    let void_p = b.ptr(0);
    let cb = b.proto(0, &[("", int)]);
    let cb_p = b.ptr(cb);

    let ssthresh = b.proto(u32t, &[("", sock_p)]);
    let ssthresh_p = b.ptr(ssthresh);
    let cong_avoid = b.proto(0, &[("", sock_p), ("", u32t), ("", u32t)]);
    let cong_avoid_p = b.ptr(cong_avoid);
    let cwnd_event = b.proto(
        0,
        &[
            ("", sock_p),
            ("", event),
            ("", sample_cp),
            ("", cb_p),
            ("", void_p),
        ],
    );
    let cwnd_event_p = b.ptr(cwnd_event);
    let yld = b.proto(boolean, &[("", sock_p)]);
    let yld_p = b.ptr(yld);

    let mut members = vec![("ssthresh", ssthresh_p, 0u32)];
    if newer {
        members.push(("cong_avoid", cong_avoid_p, 64));
        members.push(("yield", yld_p, 128));
    }
    members.extend([
        ("cwnd_event", cwnd_event_p, 192),
        ("name", name, 256),
        ("owner", module_p, 384),
        ("list", list, 448),
        ("flags", u32t, 576),
        ("", uint, 608),
    ]);
    b.strukt("my_ops", 80, &members);
    b.strukt("bpf_struct_ops_my_ops", 88, &[]);

    // The CFI stub names the parameters of `ssthresh`; a same-suffix function of another shape does not.
    let stub = b.proto(u32t, &[("sk", sock_p)]);
    b.func("my_ops__ssthresh", stub);
    let other = b.proto(u32t, &[("nope", int)]);
    b.func("unrelated_ssthresh", other);

    let kproto = b.proto(boolean, &[("sk", sock_p), ("type", int)]);
    let kf = b.func("my_kfunc", kproto);
    b.kfunc_tag(kf);
    let untagged = b.func("my_plain_function", kproto);
    let _ = untagged;
    if newer {
        let kproto2 = b.proto(0, &[("tp", sock_p)]);
        let kf2 = b.func("my_newer_kfunc", kproto2);
        b.kfunc_tag(kf2);
        let other = b.func("other_kfunc", kproto2);
        b.kfunc_tag(other);
    }
    // A field owner for --field.
    b.strukt("tcp_sock", 2048, &[("snd_cwnd", u32t, 1444 * 8)]);
    // A layout type: int at 0, a 3-bit bitfield at 4, a pointer at 8.
    b.strukt_kflag(
        "state",
        16,
        &[
            ("val", int, 0, 0),
            ("bits", uint, 32, 3),
            ("next", sock_p, 64, 0),
        ],
    );
    b.btf()
}

fn opts() -> Options {
    let mut o = Options::new("my_ops", "a test kernel");
    o.crate_path = "crate".into();
    o.label = "7.3".into();
    o.kfunc_prefixes = vec!["my_".into()];
    o
}

#[test]
fn members_signatures_types_and_kfuncs() {
    let btf = kernel(true);
    let mut o = opts();
    o.older = vec![OlderKernel {
        label: "6.12".into(),
        btf: kernel(false),
    }];
    let out = generate(&btf, &o).unwrap();
    let has = |s: &str| assert!(out.contains(s), "missing {s:?} in:\n{out}");
    let lacks = |s: &str| assert!(!out.contains(s), "unexpected {s:?} in:\n{out}");

    has("Generated by `structops codegen my_ops --in-crate --kfunc-prefix my_`");
    has("from a test kernel; do not edit.");
    // Function-pointer members: ProgFn, the C prototype (names from the stub), "Since" for new members.
    has("/// `u32 (*ssthresh)(struct sock *sk)`\npub type ssthresh = crate::ProgFn;");
    has("/// `void (*cong_avoid)(struct sock *arg0, u32 arg1, u32 arg2)` (Since 7.3).");
    has("pub type r#yield = crate::ProgFn;");
    // Signatures: exact Rust types, a named label, the second impl.
    has("impl ssthresh for crate::Signature<fn(*mut sock) -> u32> {}");
    has("impl ssthresh for crate::Signature<crate::NoOtherSignature> {}");
    has("label = \"expected `fn(sk: *mut sock) -> u32`\"");
    has("message = \"this program does not have the signature of `my_ops.ssthresh`\"");
    has("impl cong_avoid for crate::Signature<fn(*mut sock, u32, u32)> {}");
    has("impl r#yield for crate::Signature<fn(*mut sock) -> bool> {}");
    has(
        "impl cwnd_event for crate::Signature<fn(*mut sock, tcp_ca_event, *const ack_sample, *mut core::ffi::c_void, *mut core::ffi::c_void)> {}",
    );
    // Data members: same kind and size.
    has("pub type name = [u8; 16];");
    has("pub type owner = *mut module;");
    has("pub type list = list_head;");
    has("pub type flags = u32;");
    // Types: opaque behind pointers, sized when held by value, enums as an alias and constants.
    has("pub struct sock {\n    _opaque: [u8; 0],\n}");
    has("#[repr(C)]\npub struct list_head {\n    _opaque: [u8; 16],\n}");
    has("pub type tcp_ca_event = u32;");
    has("pub const CA_EVENT_LOSS: tcp_ca_event = 3;");
    // Kfuncs: tagged, matching a prefix; "Since" when older kernels lack them; keywords escaped.
    has("pub fn my_kfunc(sk: *mut sock, r#type: i32) -> bool;");
    has("/// `void my_newer_kfunc(struct sock *tp)` (Since 7.3).");
    lacks("my_plain_function");
    lacks("other_kfunc");
    lacks("unrelated_ssthresh");
    // Deterministic.
    assert_eq!(out, generate(&btf, &o).unwrap());
}

#[test]
fn user_crate_paths_and_fields() {
    let btf = kernel(true);
    let mut o = opts();
    o.crate_path = "aya_structops_ebpf".into();
    o.fields = vec![
        FieldSpec::parse("tcp_sock.snd_cwnd").unwrap(),
        FieldSpec::parse("tcp_sock.snd_cwnd:CWND_AGAIN=1400").unwrap(),
    ];
    let out = generate(&btf, &o).unwrap();
    assert!(
        out.contains("pub type ssthresh = aya_structops_ebpf::ProgFn;"),
        "{out}"
    );
    assert!(!out.contains("crate::"), "{out}");
    assert!(
        out.contains("aya_structops_ebpf::kernel_field!(\n"),
        "{out}"
    );
    assert!(
        out.contains("    pub SND_CWND: tcp_sock.snd_cwnd as u32 = 1444\n"),
        "{out}"
    );
    assert!(
        out.contains("    pub CWND_AGAIN: tcp_sock.snd_cwnd as u32 = 1400\n"),
        "{out}"
    );
    assert!(
        out.contains("default offset 1400 as given; 1444 in this BTF"),
        "{out}"
    );
    assert!(out.contains("pub struct tcp_sock {"), "{out}");
}

#[test]
fn layout_types_keep_offsets_and_pad_what_they_cannot_name() {
    let btf = kernel(true);
    let mut o = opts();
    o.layouts = vec!["state".into()];
    let out = generate(&btf, &o).unwrap();
    let expected = "#[repr(C, align(8))]\npub struct state {\n    /// `struct state.val`.\n    pub val: i32,\n    _pad4: [u8; 4],\n    /// `struct state.next`.\n    pub next: *mut sock,\n}\n";
    assert!(out.contains(expected), "{out}");
    assert!(
        out.contains("Not named here (bitfields, anonymous members): `bits`."),
        "{out}"
    );
    assert!(
        out.contains("const _: () = assert!(core::mem::size_of::<state>() == 16);"),
        "{out}"
    );
    assert!(
        out.contains("const _: () = assert!(core::mem::offset_of!(state, next) == 8);"),
        "{out}"
    );
}

#[test]
fn errors_name_the_culprit() {
    let btf = kernel(true);
    let e = generate(&btf, &Options::new("no_such_ops", "t")).unwrap_err();
    assert!(
        matches!(&e, CodegenError::NoSuchType { name } if name == "no_such_ops"),
        "{e}"
    );

    let mut o = opts();
    o.fields = vec![FieldSpec::parse("tcp_sock.no_such_field").unwrap()];
    let e = generate(&btf, &o).unwrap_err();
    assert!(e.to_string().contains("tcp_sock.no_such_field"), "{e}");
    assert!(matches!(e, CodegenError::Field { .. }), "{e}");

    let mut o = opts();
    o.layouts = vec!["no_such_layout".into()];
    let e = generate(&btf, &o).unwrap_err();
    assert!(
        matches!(&e, CodegenError::NoSuchLayoutType { name } if name == "no_such_layout"),
        "{e}"
    );

    for bad in [
        "tcp_sock",
        "tcp_sock.snd_cwnd=x",
        "tcp_sock.snd cwnd",
        "tcp_sock.snd_cwnd:1X",
    ] {
        let e = FieldSpec::parse(bad).unwrap_err();
        assert!(
            matches!(&e, CodegenError::BadFieldSpec { spec, .. } if spec == bad),
            "{e}"
        );
    }
}

#[test]
fn a_member_named_like_a_type_is_a_clash() {
    let mut b = B::new();
    let s = b.strukt("sock", 8, &[]);
    let sp = b.ptr(s);
    let p = b.proto(0, &[("", sp)]);
    let pp = b.ptr(p);
    b.strukt("clash_ops", 8, &[("sock", pp, 0)]);
    let e = generate(&b.btf(), &Options::new("clash_ops", "t")).unwrap_err();
    assert!(matches!(e, CodegenError::NameClash { .. }), "{e}");
    assert!(e.to_string().contains("`sock`"), "{e}");
}

#[test]
fn field_spec_round_trips() {
    let f = FieldSpec::parse("scx_exit_info.kind:EXIT_KIND=0").unwrap();
    assert_eq!(f.type_name, "scx_exit_info");
    assert_eq!(f.path, vec!["kind".to_owned()]);
    assert_eq!(f.name(), "EXIT_KIND");
    assert_eq!(f.default_offset, Some(0));
    assert_eq!(f.to_arg(), "scx_exit_info.kind:EXIT_KIND=0");
    let f = FieldSpec::parse("sock.__sk_common.skc_state").unwrap();
    assert_eq!(f.name(), "SKC_STATE");
    assert_eq!(f.dotted(), "sock.__sk_common.skc_state");
}

/// The running kernel's `tcp_congestion_ops` (the hosts' kernels have BTF; say so when one does not).
#[test]
fn sysfs_tcp_congestion_ops() {
    let Ok(btf) = Btf::from_sys_fs() else {
        crate::test_skip::skip(
            "sysfs_tcp_congestion_ops",
            "vmlinux_btf",
            "no /sys/kernel/btf/vmlinux here",
        );
        return;
    };
    let mut o = Options::new("tcp_congestion_ops", "the running kernel");
    o.fields = vec![FieldSpec::parse("tcp_sock.snd_cwnd").unwrap()];
    let out = generate(&btf, &o).unwrap();
    for s in [
        "impl ssthresh for aya_structops_ebpf::Signature<fn(*mut sock) -> u32> {}",
        "impl cong_avoid for aya_structops_ebpf::Signature<fn(*mut sock, u32, u32)> {}",
        "impl cwnd_event for aya_structops_ebpf::Signature<fn(*mut sock, tcp_ca_event)> {}",
        "impl pkts_acked for aya_structops_ebpf::Signature<fn(*mut sock, *const ack_sample)> {}",
        "pub type name = [u8; 16];",
        "pub type tcp_ca_event = u32;",
        "pub fn tcp_reno_ssthresh(sk: *mut sock) -> u32;",
        "pub fn tcp_slow_start(tp: *mut tcp_sock, acked: u32) -> u32;",
        "pub SND_CWND: tcp_sock.snd_cwnd as u32 = ",
    ] {
        assert!(out.contains(s), "missing {s:?} in:\n{out}");
    }
}
