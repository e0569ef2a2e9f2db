use super::*;

/// Encodes BTF blobs for tests.
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    str_base: u32,
    next_id: u32,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            types: Vec::new(),
            strings: vec![0],
            str_base: 0,
            next_id: 1,
        }
    }

    /// A split blob on top of `base`: ids and string offsets continue after the base's.
    fn split(base: &Btf) -> Builder {
        Builder {
            types: Vec::new(),
            strings: Vec::new(),
            str_base: base.str_end(),
            next_id: base.len(),
        }
    }

    fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() && self.str_base == 0 {
            return 0;
        }
        let off = self.str_base + self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a record whose name offset is already known.
    fn raw(
        &mut self,
        name_off: u32,
        kind: u32,
        vlen: usize,
        kflag: bool,
        third: u32,
        tail: &[u32],
    ) -> u32 {
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen as u32;
        for word in [name_off, info, third].iter().chain(tail) {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        self.next_id += 1;
        self.next_id - 1
    }

    fn add(
        &mut self,
        kind: BtfKind,
        name: &str,
        vlen: usize,
        kflag: bool,
        third: u32,
        tail: &[u32],
    ) -> u32 {
        let name_off = self.str(name);
        self.raw(name_off, kind.as_raw(), vlen, kflag, third, tail)
    }

    fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        self.int_bits(name, size, u32::from(signed), size * 8, 0)
    }

    fn int_bits(&mut self, name: &str, size: u32, encoding: u32, bits: u32, offset: u32) -> u32 {
        self.add(
            BtfKind::Int,
            name,
            0,
            false,
            size,
            &[(encoding << 24) | (offset << 16) | bits],
        )
    }

    fn simple(&mut self, kind: BtfKind, name: &str, target: u32) -> u32 {
        self.add(kind, name, 0, false, target, &[])
    }

    fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.add(BtfKind::Array, "", 0, false, 0, &[elem, index, nelems])
    }

    /// Members are `(name, type, offset word)`.
    fn composite(
        &mut self,
        kind: BtfKind,
        name: &str,
        size: u32,
        kflag: bool,
        members: &[(&str, u32, u32)],
    ) -> u32 {
        let mut tail = Vec::new();
        for &(m, ty, off) in members {
            tail.extend([self.str(m), ty, off]);
        }
        self.add(kind, name, members.len(), kflag, size, &tail)
    }

    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(BtfKind::Struct, name, size, false, members)
    }

    fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let mut tail = Vec::new();
        for &(p, ty) in params {
            tail.extend([self.str(p), ty]);
        }
        self.add(BtfKind::FuncProto, "", params.len(), false, ret, &tail)
    }

    fn func(&mut self, name: &str, proto: u32, linkage: usize) -> u32 {
        self.add(BtfKind::Func, name, linkage, false, proto, &[])
    }

    fn var(&mut self, name: &str, ty: u32, linkage: u32) -> u32 {
        self.add(BtfKind::Var, name, 0, false, ty, &[linkage])
    }

    /// Entries are `(type, offset, size)`.
    fn datasec(&mut self, name: &str, size: u32, entries: &[(u32, u32, u32)]) -> u32 {
        let tail: Vec<u32> = entries.iter().flat_map(|&(t, o, s)| [t, o, s]).collect();
        self.add(BtfKind::Datasec, name, entries.len(), false, size, &tail)
    }

    fn build(&self) -> Vec<u8> {
        let mut out = encode_header(self.types.len() as u32, self.strings.len() as u32);
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }

    fn parse(&self) -> Btf {
        Btf::parse(self.build()).expect("test blob parses")
    }
}

/// A blob exercising every kind. Returns the ids in creation order.
fn all_kinds() -> (Btf, Vec<u32>) {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let ids = vec![
        int,
        b.simple(BtfKind::Ptr, "", int),
        b.array(int, int, 3),
        b.strukt("pair", 8, &[("a", int, 0), ("b", int, 32)]),
        b.composite(BtfKind::Union, "u", 4, false, &[("x", int, 0)]),
        {
            let (one, minus) = (b.str("ONE"), b.str("MINUS"));
            b.add(
                BtfKind::Enum,
                "e",
                2,
                true,
                4,
                &[one, 1, minus, -1i32 as u32],
            )
        },
        b.add(BtfKind::Fwd, "later", 0, true, 0, &[]),
        b.simple(BtfKind::Typedef, "int_t", int),
        b.simple(BtfKind::Volatile, "", int),
        b.simple(BtfKind::Const, "", int),
        b.simple(BtfKind::Restrict, "", int),
        {
            let proto = b.func_proto(int, &[("ctx", int), ("", 0)]);
            b.func("f", proto, 1)
        },
        b.var("v", int, 1),
        b.datasec(".data", 4, &[(14, 0, 4)]),
        b.add(BtfKind::Float, "double", 0, false, 8, &[]),
        b.add(BtfKind::DeclTag, "tag", 0, false, int, &[-1i32 as u32]),
        b.add(BtfKind::TypeTag, "user", 0, false, int, &[]),
        {
            let big = b.str("BIG");
            b.add(
                BtfKind::Enum64,
                "e64",
                1,
                false,
                8,
                &[big, 0x89ab_cdef, 0x0123_4567],
            )
        },
    ];
    (b.parse(), ids)
}

#[test]
fn parses_and_decodes_every_kind() {
    let (btf, ids) = all_kinds();
    assert_eq!(btf.first_id(), 1);
    assert_eq!(btf.len(), 20);
    assert!(matches!(btf.type_by_id(0).unwrap(), Type::Void));
    assert!(matches!(
        btf.type_by_id(ids[0]).unwrap(),
        Type::Int {
            name: "int",
            size: 4,
            encoding: 1,
            bits: 32,
            offset: 0
        }
    ));
    assert!(matches!(
        btf.type_by_id(ids[1]).unwrap(),
        Type::Ptr { target: 1 }
    ));
    assert!(matches!(
        btf.type_by_id(ids[2]).unwrap(),
        Type::Array {
            elem: 1,
            index: 1,
            nelems: 3
        }
    ));
    let Type::Struct(pair) = btf.type_by_id(ids[3]).unwrap() else {
        panic!("struct")
    };
    assert_eq!((pair.name, pair.size, pair.len()), ("pair", 8, 2));
    let members: Vec<_> = pair.members().map(|m| (m.name, m.bit_offset)).collect();
    assert_eq!(members, [("a", 0), ("b", 32)]);
    assert_eq!(pair.member("b").unwrap().0, 1);
    assert!(pair.member("c").is_none());
    assert!(matches!(btf.type_by_id(ids[4]).unwrap(), Type::Union(c) if c.name == "u"));
    let Type::Enum {
        name: "e",
        signed: true,
        values,
        ..
    } = btf.type_by_id(ids[5]).unwrap()
    else {
        panic!("enum")
    };
    let values: Vec<_> = values.map(|v| (v.name, v.value as i64)).collect();
    assert_eq!(values, [("ONE", 1), ("MINUS", -1)]);
    assert!(matches!(
        btf.type_by_id(ids[6]).unwrap(),
        Type::Fwd {
            name: "later",
            is_union: true
        }
    ));
    assert!(matches!(
        btf.type_by_id(ids[7]).unwrap(),
        Type::Typedef {
            name: "int_t",
            target: 1
        }
    ));
    assert!(matches!(
        btf.type_by_id(ids[8]).unwrap(),
        Type::Volatile { target: 1 }
    ));
    assert!(matches!(
        btf.type_by_id(ids[9]).unwrap(),
        Type::Const { target: 1 }
    ));
    assert!(matches!(
        btf.type_by_id(ids[10]).unwrap(),
        Type::Restrict { target: 1 }
    ));
    let Type::Func {
        name: "f",
        proto,
        linkage: 1,
    } = btf.type_by_id(ids[11]).unwrap()
    else {
        panic!("func")
    };
    let Type::FuncProto { ret: 1, params } = btf.type_by_id(proto).unwrap() else {
        panic!("proto")
    };
    let params: Vec<_> = params.map(|p| (p.name, p.type_id)).collect();
    assert_eq!(params, [("ctx", 1), ("", 0)]);
    assert!(matches!(
        btf.type_by_id(ids[12]).unwrap(),
        Type::Var {
            name: "v",
            target: 1,
            linkage: 1
        }
    ));
    let Type::Datasec {
        name: ".data",
        size: 4,
        vars,
    } = btf.type_by_id(ids[13]).unwrap()
    else {
        panic!("datasec")
    };
    assert_eq!(
        vars.collect::<Vec<_>>(),
        [VarSecinfo {
            type_id: 14,
            offset: 0,
            size: 4
        }]
    );
    assert!(matches!(
        btf.type_by_id(ids[14]).unwrap(),
        Type::Float {
            name: "double",
            size: 8
        }
    ));
    assert!(matches!(
        btf.type_by_id(ids[15]).unwrap(),
        Type::DeclTag {
            name: "tag",
            target: 1,
            component_idx: -1
        }
    ));
    assert!(matches!(
        btf.type_by_id(ids[16]).unwrap(),
        Type::TypeTag {
            name: "user",
            target: 1
        }
    ));
    let Type::Enum64 {
        name: "e64",
        size: 8,
        signed: false,
        values,
    } = btf.type_by_id(ids[17]).unwrap()
    else {
        panic!("enum64")
    };
    assert_eq!(
        values.collect::<Vec<_>>(),
        [Enumerator {
            name: "BIG",
            value: 0x0123_4567_89ab_cdef
        }]
    );
}

#[test]
fn kinds_and_names() {
    let (btf, ids) = all_kinds();
    let kinds: Vec<_> = ids.iter().map(|&id| btf.kind(id).unwrap()).collect();
    use BtfKind::*;
    assert_eq!(
        kinds,
        [
            Int, Ptr, Array, Struct, Union, Enum, Fwd, Typedef, Volatile, Const, Restrict, Func,
            Var, Datasec, Float, DeclTag, TypeTag, Enum64
        ]
    );
    for kind in kinds {
        assert_eq!(BtfKind::from_raw(kind.as_raw()), Some(kind));
    }
    assert_eq!(FuncProto.to_string(), "func_proto");
    assert_eq!(Struct.to_string(), "struct");
    assert_eq!(DeclTag.to_string(), "decl_tag");
    assert!(matches!(btf.kind(0), Err(BtfError::Void)));
    assert_eq!(btf.name_of(0).unwrap(), "");
    assert_eq!(btf.name_of(ids[1]).unwrap(), "");
    assert_eq!(btf.name_of(ids[3]).unwrap(), "pair");
    assert_eq!(btf.find(Struct, "pair"), Some(ids[3]));
    assert_eq!(btf.find(Typedef, "int_t"), Some(ids[7]));
    assert_eq!(btf.find(Func, "f"), Some(ids[11]));
    assert_eq!(btf.find(Struct, "int_t"), None);
    assert_eq!(btf.find(Struct, ""), None);
    assert_eq!(btf.find(Union, "nope"), None);
    assert!(matches!(
        btf.require(Union, "nope"),
        Err(BtfError::NotFound { kind: Union, .. })
    ));
    assert_eq!(btf.describe(ids[3]), "struct pair");
    assert_eq!(btf.describe(ids[2]), "array <anon> (id 3)");
}

#[test]
fn find_returns_first_of_duplicates() {
    let mut b = Builder::new();
    let int = b.int("dup", 4, false);
    let s1 = b.strukt("dup", 4, &[("x", int, 0)]);
    let s2 = b.strukt("dup", 4, &[("y", int, 0)]);
    let btf = b.parse();
    assert_eq!(btf.find(BtfKind::Int, "dup"), Some(int));
    assert_eq!(btf.find(BtfKind::Struct, "dup"), Some(s1));
    assert_ne!(s1, s2);
}

/// The scan (before the name index exists) and the index give the same answers: lowest id of the
/// kind, names that are suffixes of other strings or share them, members named like the type,
/// absent names, empty names and names with a NUL.
#[test]
fn scan_and_index_agree() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    // "ops" is stored only as the tail of "tcp_ops": a type may point into the middle of a string.
    let tcp_ops_off = b.str("tcp_ops");
    let ops = b.raw(
        tcp_ops_off + 4,
        BtfKind::Struct.as_raw(),
        1,
        false,
        4,
        &[
            b.strings.len() as u32 - 4, // member name "ops" too (the same string)
            int,
            0,
        ],
    );
    let tcp_ops = b.raw(tcp_ops_off, BtfKind::Struct.as_raw(), 0, false, 0, &[]);
    let f1 = b.simple(BtfKind::Func, "ops", 0);
    let s2 = b.strukt("ops", 4, &[("int", int, 0)]);
    let btf_scan = b.parse();
    let btf_index = b.parse();
    btf_index.index_names();
    let queries = [
        (BtfKind::Struct, "ops"),
        (BtfKind::Struct, "tcp_ops"),
        (BtfKind::Func, "ops"),
        (BtfKind::Int, "int"),
        (BtfKind::Struct, "int"),
        (BtfKind::Struct, "cp_ops"),
        (BtfKind::Struct, "absent"),
        (BtfKind::Struct, ""),
        (BtfKind::Struct, "ops\0"),
    ];
    let expect = [
        Some(ops),
        Some(tcp_ops),
        Some(f1),
        Some(int),
        None,
        None,
        None,
        None,
        None,
    ];
    assert_ne!(ops, s2);
    let batch = btf_scan.find_all(&queries);
    assert_eq!(batch, expect);
    for ((kind, name), want) in queries.iter().zip(expect) {
        assert_eq!(btf_index.find(*kind, name), want, "index: {kind} {name:?}");
        assert_eq!(
            btf_scan.find(*kind, name),
            want,
            "scan memo: {kind} {name:?}"
        );
        let fresh = b.parse();
        assert_eq!(
            fresh.find(*kind, name),
            want,
            "single scan: {kind} {name:?}"
        );
    }
    assert!(
        btf_scan.inner.names.get().is_none(),
        "a batch and its memo need no index"
    );
    // The pass over the words (the type index built before the scan) finds the same.
    let validated = b.parse();
    validated.validate().unwrap();
    assert_eq!(validated.find_all(&queries), expect);
    // More than DIRECT_COMPARE offsets (a name that ends many strings): the filtered comparison.
    let mut b = Builder::new();
    let tails: Vec<u32> = (0..12)
        .map(|i| b.int(&format!("t{i}_x"), 4, false))
        .collect();
    let x = b.int("x", 4, false);
    for validate in [false, true] {
        let btf = b.parse();
        if validate {
            btf.validate().unwrap();
        }
        assert_eq!(
            btf.find_all(&[
                (BtfKind::Int, "x"),
                (BtfKind::Int, "t11_x"),
                (BtfKind::Struct, "x")
            ]),
            [Some(x), Some(tails[11]), None]
        );
    }
}

/// The branch-free record length agrees with `trailing_len` for every kind and vlen; unknown kinds
/// have none.
#[test]
fn record_len_table_matches_trailing_len() {
    for raw in 0..32u32 {
        for vlen in [0usize, 1, 2, 7, 0xffff] {
            let info = (raw << 24) | vlen as u32;
            let want = BtfKind::from_raw(raw).map(|k| TYPE_HEADER_LEN + k.trailing_len(vlen));
            assert_eq!(types::record_len(info), want, "kind {raw} vlen {vlen}");
            // kind_flag does not change the length.
            assert_eq!(types::record_len(info | 1 << 31), want);
        }
    }
}

/// The sparse type index (checkpoints every `STRIDE` types) and the full one built after many
/// lookups give the same records; `at` finds record starts and nothing else.
#[test]
fn sparse_and_full_type_index_agree() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    for i in 0..(STRIDE * 7 + 3) {
        // Records of 12 to 12 + 12 * 3 bytes.
        let members: Vec<(String, u32, u32)> = (0..i % 4)
            .map(|m| (format!("m{m}"), int, 32 * m as u32))
            .collect();
        let members: Vec<(&str, u32, u32)> = members
            .iter()
            .map(|(n, t, o)| (n.as_str(), *t, *o))
            .collect();
        match i % 3 {
            0 => b.strukt(&format!("s{i}"), 16, &members),
            1 => b.simple(BtfKind::Ptr, "", int),
            _ => b.int(&format!("i{i}"), 8, false),
        };
    }
    let btf = b.parse();
    let index = btf.index().unwrap();
    assert!(index.full.get().is_none());
    let sparse: Vec<Vec<u8>> = (1..btf.len())
        .map(|id| btf.raw_type(id).unwrap().0.bytes.to_vec())
        .collect();
    assert!(index.full.get().is_none(), "{} lookups", sparse.len());
    let starts: Vec<u32> = index.offsets(&btf.inner.types).collect();
    assert_eq!(starts.len(), index.count() + 1);
    for pos in 0..btf.inner.types.len() + 8 {
        let want = starts[..index.count()]
            .iter()
            .position(|&s| s as usize == pos);
        assert_eq!(index.at(&btf.inner.types, pos), want, "sparse at {pos}");
    }
    while index.full.get().is_none() {
        btf.type_by_id(2).unwrap();
    }
    let full: Vec<Vec<u8>> = (1..btf.len())
        .map(|id| btf.raw_type(id).unwrap().0.bytes.to_vec())
        .collect();
    assert_eq!(sparse, full);
    for pos in 0..btf.inner.types.len() + 8 {
        let want = starts[..index.count()]
            .iter()
            .position(|&s| s as usize == pos);
        assert_eq!(index.at(&btf.inner.types, pos), want, "full at {pos}");
    }
    assert!(matches!(
        btf.type_by_id(btf.len()),
        Err(BtfError::IdOutOfRange { .. })
    ));
}

/// After `SCAN_BUDGET` scans a lookup builds the name index; the answers do not change.
#[test]
fn scans_switch_to_the_index() {
    let mut b = Builder::new();
    let ids: Vec<u32> = (0..lookup::SCAN_BUDGET + 4)
        .map(|i| b.int(&format!("t{i}"), 4, false))
        .collect();
    let btf = b.parse();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(btf.find(BtfKind::Int, &format!("t{i}")), Some(*id));
        let indexed = btf.inner.names.get().is_some();
        assert_eq!(indexed, i as u32 >= lookup::SCAN_BUDGET, "lookup {i}");
    }
    // A batch larger than MAX_BATCH goes to the index at once.
    let btf = b.parse();
    let names: Vec<String> = (0..=lookup::MAX_BATCH).map(|i| format!("x{i}")).collect();
    let queries: Vec<(BtfKind, &str)> = names.iter().map(|n| (BtfKind::Int, n.as_str())).collect();
    assert!(btf.find_all(&queries).iter().all(Option::is_none));
    assert!(btf.inner.names.get().is_some());
}

/// Split BTF: own types named by base strings or own strings are found by the scan, base types
/// first.
#[test]
fn scan_finds_split_types_by_base_and_own_strings() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let base_ops = b.strukt("base_ops", 4, &[("x", int, 0)]);
    let base = b.parse();
    let mut s = Builder::split(&base);
    // An own FUNC named by the base's "base_ops" string, an own struct with its own string.
    let base_ops_off = base.find(BtfKind::Struct, "base_ops").map(|id| {
        let (raw, _) = base.raw_type(id).unwrap();
        raw.name_off()
    });
    let f = s.raw(
        base_ops_off.unwrap(),
        BtfKind::Func.as_raw(),
        0,
        false,
        0,
        &[],
    );
    let own = s.strukt("mod_ops", 4, &[("x", int, 0)]);
    let module = Btf::parse_split(s.build(), &base).unwrap();
    let queries = [
        (BtfKind::Struct, "base_ops"),
        (BtfKind::Func, "base_ops"),
        (BtfKind::Struct, "mod_ops"),
        (BtfKind::Int, "int"),
    ];
    assert_eq!(
        module.find_all(&queries),
        [Some(base_ops), Some(f), Some(own), Some(int)]
    );
    let module = Btf::parse_split(s.build(), &base).unwrap();
    assert_eq!(module.find_own(BtfKind::Func, "base_ops"), Some(f));
    assert_eq!(module.find_own(BtfKind::Struct, "base_ops"), None);
    // Split BTF goes to its (small) name index; the scan itself finds the same.
    assert!(module.inner.names.get().is_some());
    let module = Btf::parse_split(s.build(), &base).unwrap();
    let queries = [
        lookup::Query::first(BtfKind::Func, "base_ops"),
        lookup::Query::first(BtfKind::Struct, "mod_ops"),
    ];
    assert_eq!(lookup::scan(&module, &queries), [vec![f], vec![own]]);
}

/// A corrupt type section finds nothing, by scan as by index.
#[test]
fn scan_of_corrupt_types_finds_nothing() {
    let mut b = Builder::new();
    b.int("int", 4, true);
    b.raw(0, 25, 0, false, 0, &[]);
    let btf = b.parse();
    assert_eq!(btf.find_all(&[(BtfKind::Int, "int")]), [None]);
    assert_eq!(btf.find(BtfKind::Int, "int"), None);
}

/// struct outer {                    // size 32
///     int a;                        // 0
///     union {                       // 4
///         struct { int x; int y; }; // x at 4, y at 8
///         long z;
///     };
///     struct inner in;              // 16: { int p; unsigned flag:1 (kind_flag); int q; }
///     const outer_inner_t t;        // 28: typedef of struct tiny { int w; }
/// };
fn nested() -> (Btf, u32, u32) {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let long = b.int("long", 8, true);
    let xy = b.strukt("", 8, &[("x", int, 0), ("y", int, 32)]);
    let anon_union = b.composite(BtfKind::Union, "", 8, false, &[("", xy, 0), ("z", long, 0)]);
    let inner = b.composite(
        BtfKind::Struct,
        "inner",
        12,
        true,
        &[("p", int, 0), ("flag", int, (1 << 24) | 32), ("q", int, 64)],
    );
    let tiny = b.strukt("tiny", 4, &[("w", int, 0)]);
    let typedef = b.simple(BtfKind::Typedef, "outer_inner_t", tiny);
    let konst = b.simple(BtfKind::Const, "", typedef);
    let outer = b.strukt(
        "outer",
        32,
        &[
            ("a", int, 0),
            ("", anon_union, 32),
            ("in", inner, 128),
            ("t", konst, 224),
        ],
    );
    let legacy_bits = b.int_bits("u3", 4, 0, 3, 0);
    let legacy = b.strukt("legacy", 4, &[("three", legacy_bits, 0)]);
    (b.parse(), outer, legacy)
}

#[test]
fn member_path_walks_anonymous_members() {
    let (btf, outer, _) = nested();
    let at = |path: &[&str]| btf.member_path(outer, path).unwrap();
    assert_eq!(
        at(&["a"]),
        MemberLocation {
            byte_offset: 0,
            type_id: 1,
            size: 4
        }
    );
    assert_eq!(at(&["x"]).byte_offset, 4);
    assert_eq!(at(&["y"]).byte_offset, 8);
    assert_eq!(
        at(&["z"]),
        MemberLocation {
            byte_offset: 4,
            type_id: 2,
            size: 8
        }
    );
    assert_eq!(at(&["in", "q"]).byte_offset, 24);
    assert_eq!(at(&["t", "w"]).byte_offset, 28);
    assert_eq!(at(&["t"]).size, 4);
    assert_eq!(
        at(&[]),
        MemberLocation {
            byte_offset: 0,
            type_id: outer,
            size: 32
        }
    );
}

#[test]
fn member_path_errors() {
    let (btf, outer, legacy) = nested();
    let err = btf.member_path(outer, &["in", "nope"]).unwrap_err();
    let BtfError::MemberNotFound {
        type_name,
        path,
        missing,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (type_name.as_str(), path.as_str(), missing.as_str()),
        ("struct inner", "in.nope", "nope")
    );
    assert!(
        err.to_string()
            .contains("struct inner has no member `nope`"),
        "{err}"
    );

    let err = btf.member_path(outer, &["in", "flag"]).unwrap_err();
    let BtfError::Bitfield { type_name, member } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (type_name.as_str(), member.as_str()),
        ("struct inner", "in.flag")
    );

    let err = btf.member_path(legacy, &["three"]).unwrap_err();
    assert!(matches!(err, BtfError::Bitfield { .. }), "{err}");

    let err = btf.member_path(outer, &["a", "deeper"]).unwrap_err();
    assert!(
        matches!(err, BtfError::UnexpectedKind { found: "int", .. }),
        "{err}"
    );
    assert!(matches!(
        btf.member_path(1, &["a"]),
        Err(BtfError::UnexpectedKind { .. })
    ));
}

#[test]
fn size_of_resolves_typedefs_arrays_and_modifiers() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let konst = b.simple(BtfKind::Const, "", int);
    let arr = b.array(konst, int, 4);
    let typedef = b.simple(BtfKind::Typedef, "quad", arr);
    let arr2 = b.array(typedef, int, 3);
    let ptr = b.simple(BtfKind::Ptr, "", arr2);
    let proto = b.func_proto(0, &[]);
    let fwd = b.add(BtfKind::Fwd, "opaque", 0, false, 0, &[]);
    let s = b.strukt("s", 24, &[]);
    let huge = b.array(s, int, u32::MAX);
    let btf = b.parse();
    assert_eq!(btf.size_of(int).unwrap(), 4);
    assert_eq!(btf.size_of(konst).unwrap(), 4);
    assert_eq!(btf.size_of(typedef).unwrap(), 16);
    assert_eq!(btf.size_of(arr2).unwrap(), 48);
    assert_eq!(btf.size_of(ptr).unwrap(), 8);
    assert_eq!(btf.size_of(s).unwrap(), 24);
    assert!(matches!(
        btf.size_of(proto),
        Err(BtfError::NoSize {
            kind: "func_proto",
            ..
        })
    ));
    assert!(matches!(
        btf.size_of(fwd),
        Err(BtfError::NoSize { kind: "fwd", .. })
    ));
    assert!(matches!(
        btf.size_of(0),
        Err(BtfError::NoSize { kind: "void", .. })
    ));
    assert!(matches!(
        btf.size_of(huge),
        Err(BtfError::SizeOverflow { .. })
    ));
    assert_eq!(btf.skip_mods_and_typedefs(typedef).unwrap(), arr);
    assert_eq!(btf.skip_mods_and_typedefs(konst).unwrap(), int);
    assert_eq!(btf.skip_mods_and_typedefs(0).unwrap(), 0);
}

#[test]
fn cyclic_typedefs_are_detected() {
    let mut b = Builder::new();
    b.simple(BtfKind::Typedef, "a", 2);
    b.simple(BtfKind::Typedef, "b", 1);
    let btf = b.parse();
    assert!(matches!(
        btf.skip_mods_and_typedefs(1),
        Err(BtfError::TooDeep { id: 1 })
    ));
    assert!(matches!(btf.size_of(2), Err(BtfError::TooDeep { id: 2 })));
}

#[test]
fn split_btf_continues_ids_and_strings() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let base_struct = b.strukt("shared", 4, &[("v", int, 0)]);
    let base = b.parse();
    assert_eq!(base.len(), 3);

    let mut s = Builder::split(&base);
    let ptr = s.simple(BtfKind::Ptr, "", base_struct);
    // A struct named by a base string ("shared") and members naming own and base strings.
    let name_in_base = base.raw_type(base_struct).unwrap().0.name_off();
    assert_eq!(base.str_at(name_in_base).unwrap(), "shared");
    let own_member = s.str("own");
    let v_in_base = base.raw_type(base_struct).unwrap().0.word(0);
    assert_eq!(base.str_at(v_in_base).unwrap(), "v");
    let members = [own_member, ptr, 0, v_in_base, int, 64];
    let own_struct = s.raw(
        name_in_base,
        BtfKind::Struct.as_raw(),
        2,
        false,
        16,
        &members,
    );
    let module = Btf::parse_split(s.build(), &base).unwrap();

    assert_eq!(module.first_id(), 3);
    assert_eq!(module.len(), 5);
    assert_eq!((ptr, own_struct), (3, 4));
    assert!(matches!(
        module.type_by_id(ptr).unwrap(),
        Type::Ptr { target: 2 }
    ));
    assert_eq!(module.name_of(base_struct).unwrap(), "shared");
    assert_eq!(module.name_of(own_struct).unwrap(), "shared");
    let Type::Struct(c) = module.type_by_id(own_struct).unwrap() else {
        panic!("struct")
    };
    let names: Vec<_> = c.members().map(|m| m.name).collect();
    assert_eq!(names, ["own", "v"]);
    assert_eq!(module.find(BtfKind::Struct, "shared"), Some(base_struct));
    assert_eq!(module.find_own(BtfKind::Struct, "shared"), Some(own_struct));
    assert_eq!(module.find(BtfKind::Int, "int"), Some(int));
    assert_eq!(module.find_own(BtfKind::Int, "int"), None);
    assert_eq!(module.member_path(own_struct, &["own"]).unwrap().size, 8);
    assert!(matches!(
        module.type_by_id(5),
        Err(BtfError::IdOutOfRange { id: 5, len: 5 })
    ));
    assert_eq!(module.raw(), &s.build()[..]);
    assert!(matches!(
        module.sanitize_for_kernel(&|_| None, &|_| None),
        Err(BtfError::SplitNotSupported { .. })
    ));
}

#[test]
fn sanitize_fixes_datasecs_and_linkage() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let a = b.var("a", int, 1);
    let c = b.var("c", int, 1);
    let data = b.datasec(".data", 0, &[(a, 0, 4), (c, 0, 4)]);
    let ext = b.var("CONFIG_X", int, 2);
    let kconfig = b.datasec(".kconfig", 0, &[(ext, 0, 4)]);
    let proto = b.func_proto(int, &[]);
    let kfunc = b.func("bpf_kfunc", proto, 2);
    let ksyms = b.datasec(".ksyms", 0, &[(kfunc, 0, 0)]);
    let empty = b.datasec(".bss", 0, &[]);
    let global = b.func("prog", proto, 1);
    let after = b.strukt("after", 4, &[("m", int, 0)]);
    let btf = b.parse();

    let section_size = |name: &str| match name {
        ".data" => Some(8),
        ".bss" => Some(0),
        _ => None,
    };
    let symbol_offset = |name: &str| match name {
        "a" => Some(4),
        "c" => Some(0),
        _ => None,
    };
    let out = Btf::parse(
        btf.sanitize_for_kernel(&section_size, &symbol_offset)
            .unwrap(),
    )
    .unwrap();
    out.validate().unwrap();
    assert_eq!(out.len(), btf.len());

    let Type::Datasec {
        name: ".data",
        size: 8,
        vars,
    } = out.type_by_id(data).unwrap()
    else {
        panic!("datasec")
    };
    let vars: Vec<_> = vars.map(|v| (v.type_id, v.offset)).collect();
    assert_eq!(vars, [(c, 0), (a, 4)]);
    for id in [kconfig, ksyms, empty] {
        let Type::Struct(s) = out.type_by_id(id).unwrap() else {
            panic!("struct")
        };
        assert_eq!((s.name, s.size, s.len()), ("", 0, 0));
    }
    assert!(matches!(
        out.type_by_id(ext).unwrap(),
        Type::Var {
            name: "CONFIG_X",
            linkage: 0,
            ..
        }
    ));
    assert!(
        matches!(
            out.type_by_id(kfunc).unwrap(),
            Type::Fwd {
                name: "bpf_kfunc",
                is_union: false
            }
        ),
        "an extern FUNC (kfunc declaration) becomes a forward declaration with the same id"
    );
    assert!(matches!(
        out.type_by_id(global).unwrap(),
        Type::Func { linkage: 1, .. }
    ));
    assert!(matches!(
        out.type_by_id(a).unwrap(),
        Type::Var { linkage: 1, .. }
    ));
    assert_eq!(out.find(BtfKind::Struct, "after"), Some(after));
    assert_eq!(out.member_path(after, &["m"]).unwrap().size, 4);
    // Strings are kept as is.
    let str_len = |raw: &[u8]| types::le_u32(raw, 20);
    assert_eq!(str_len(out.raw()), str_len(btf.raw()));
}

#[test]
fn sanitize_keeps_a_sized_datasec() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let a = b.var("a", int, 1);
    let data = b.datasec(".struct_ops", 16, &[(a, 8, 4)]);
    let btf = b.parse();
    let out = Btf::parse(btf.sanitize_for_kernel(&|_| Some(99), &|_| None).unwrap()).unwrap();
    let Type::Datasec {
        size: 16, mut vars, ..
    } = out.type_by_id(data).unwrap()
    else {
        panic!("datasec")
    };
    assert_eq!(vars.next().unwrap().offset, 8);
}

#[test]
fn header_errors() {
    let good = all_kinds().0.raw().to_vec();
    assert!(matches!(
        Btf::parse(good[..10].to_vec()),
        Err(BtfError::HeaderTooShort { len: 10 })
    ));
    let mut bad = good.clone();
    bad[0] = 0x12;
    assert!(matches!(Btf::parse(bad), Err(BtfError::BadMagic { .. })));
    let mut be = good.clone();
    be.swap(0, 1);
    assert!(matches!(Btf::parse(be), Err(BtfError::BigEndian)));
    let mut version = good.clone();
    version[2] = 2;
    assert!(matches!(
        Btf::parse(version),
        Err(BtfError::UnsupportedVersion { version: 2 })
    ));
    let mut hdr_len = good.clone();
    hdr_len[4] = 8;
    assert!(matches!(
        Btf::parse(hdr_len),
        Err(BtfError::BadHeaderLen { hdr_len: 8, .. })
    ));
    let cut = good[..good.len() - 1].to_vec();
    assert!(matches!(
        Btf::parse(cut),
        Err(BtfError::SectionOutOfBounds {
            section: "string",
            ..
        })
    ));
    let err = Btf::parse(b"\x9f\xeb".to_vec()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "BTF blob of 2 bytes is too short for a header"
    );
}

#[test]
fn truncated_and_unknown_types_are_reported_lazily() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    b.strukt("s", 8, &[("a", int, 0), ("b", int, 32)]);
    // Claim the struct is one byte shorter than it is: its last member is cut.
    let mut short = b.types.clone();
    short.truncate(short.len() - 1);
    let blob = Builder {
        types: short,
        ..Builder::new()
    }
    .build();
    let btf = Btf::parse(blob).unwrap();
    let err = btf.validate().unwrap_err();
    // The struct record starts after the 24-byte header and the 16-byte int record.
    assert!(matches!(err, BtfError::Truncated { offset: 40 }), "{err}");
    assert_eq!(err.to_string(), "BTF truncated at byte 40");
    assert!(matches!(btf.type_by_id(1), Err(BtfError::Truncated { .. })));
    assert_eq!(btf.len(), 1);
    assert_eq!(btf.find(BtfKind::Int, "int"), None);

    let mut b = Builder::new();
    b.int("int", 4, true);
    b.raw(0, 25, 0, false, 0, &[]);
    let btf = b.parse();
    let err = btf.validate().unwrap_err();
    assert!(
        matches!(err, BtfError::UnknownKind { kind: 25, id: 2 }),
        "{err}"
    );
    assert_eq!(err.to_string(), "unknown BTF kind 25 at type id 2");

    let (btf, _) = all_kinds();
    assert!(matches!(
        btf.type_by_id(99),
        Err(BtfError::IdOutOfRange { id: 99, len: 20 })
    ));
    assert!(matches!(
        btf.str_at(10_000),
        Err(BtfError::InvalidString { offset: 10_000 })
    ));
}

#[test]
fn btf_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Btf>();
    let (btf, _) = all_kinds();
    let clone = btf.clone();
    assert_eq!(clone.raw().as_ptr(), btf.raw().as_ptr());
}

// ---- The running kernel's BTF ----

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// vmlinux BTF, or `None` after printing why the test is skipped.
fn vmlinux(test: &str) -> Option<Btf> {
    match Btf::from_sys_fs() {
        Ok(btf) => Some(btf),
        Err(err) => {
            crate::test_skip::skip(test, "vmlinux_btf", format!("cannot read {VMLINUX}: {err}"));
            None
        }
    }
}

#[test]
fn sysfs_vmlinux() {
    let Some(btf) = vmlinux("sysfs_vmlinux") else {
        return;
    };
    btf.validate().unwrap();
    assert!(btf.len() > 10_000);
    let ops = btf
        .find(BtfKind::Struct, "tcp_congestion_ops")
        .expect("tcp_congestion_ops");
    assert_eq!(btf.name_of(ops).unwrap(), "tcp_congestion_ops");
    btf.find(BtfKind::Struct, "bpf_struct_ops_tcp_congestion_ops")
        .expect("value type");
    let func = btf
        .find(BtfKind::Func, "tcp_reno_cong_avoid")
        .expect("tcp_reno_cong_avoid");
    let Type::Func { proto, .. } = btf.type_by_id(func).unwrap() else {
        panic!("func")
    };
    assert!(matches!(
        btf.type_by_id(proto).unwrap(),
        Type::FuncProto { .. }
    ));

    let tcp_sock = btf.find(BtfKind::Struct, "tcp_sock").expect("tcp_sock");
    let cwnd = btf.member_path(tcp_sock, &["snd_cwnd"]).unwrap();
    println!("tcp_sock.snd_cwnd: {cwnd:?} (kernel {})", kernel_release());
    assert_eq!(cwnd.size, 4);
    if kernel_release().starts_with("6.18") {
        assert_eq!(cwnd.byte_offset, 1444);
    }
    // A path through nested structs: tcp_sock -> inet_conn -> icsk_inet -> sk.
    let rcvbuf = btf
        .member_path(tcp_sock, &["inet_conn", "icsk_inet", "sk", "sk_rcvbuf"])
        .unwrap();
    assert_eq!(rcvbuf.size, 4);
    // Every type decodes.
    for id in 0..btf.len() {
        btf.type_by_id(id)
            .unwrap_or_else(|e| panic!("type {id}: {e}"));
    }
}

/// The name index agrees with a plain scan on a sample of vmlinux's named types.
#[test]
fn sysfs_name_index_matches_scan() {
    let Some(btf) = vmlinux("sysfs_name_index_matches_scan") else {
        return;
    };
    let mut checked = 0;
    for id in (1..btf.len()).step_by(997) {
        let kind = btf.kind(id).unwrap();
        let name = btf.name_of(id).unwrap();
        if name.is_empty() {
            continue;
        }
        assert_eq!(
            btf.find(kind, name),
            scan_find(&btf, kind, name),
            "{kind} {name}"
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
}

/// On vmlinux, batches of scanned names (including absent ones and short names that end many
/// strings) agree with the name index.
#[test]
fn sysfs_scan_matches_name_index() {
    let Some(indexed) = vmlinux("sysfs_scan_matches_name_index") else {
        return;
    };
    indexed.index_names();
    let mut queries: Vec<(BtfKind, String)> = (1..indexed.len())
        .step_by(1999)
        .filter_map(|id| {
            let name = indexed.name_of(id).ok()?;
            let kind = indexed.kind(id).ok()?;
            (!name.is_empty()).then(|| (kind, name.to_owned()))
        })
        .collect();
    queries.extend([
        (BtfKind::Struct, "sk".to_owned()),
        (BtfKind::Struct, "no_such_type_anywhere".to_owned()),
        (BtfKind::Func, "tcp_sock".to_owned()),
        (BtfKind::Struct, "tcp_sock".to_owned()),
        (BtfKind::Typedef, "u32".to_owned()),
    ]);
    assert!(queries.len() > 20, "{}", queries.len());
    let queries: Vec<(BtfKind, &str)> = queries.iter().map(|(k, n)| (*k, n.as_str())).collect();
    let expect: Vec<Option<u32>> = queries.iter().map(|(k, n)| indexed.find(*k, n)).collect();
    assert!(expect.iter().filter(|e| e.is_some()).count() > 20);
    for chunk in queries.chunks(7).zip(expect.chunks(7)) {
        let fresh = Btf::from_sys_fs().unwrap();
        assert_eq!(fresh.find_all(chunk.0), chunk.1);
        assert!(fresh.inner.names.get().is_none());
    }
}

fn scan_find(btf: &Btf, kind: BtfKind, name: &str) -> Option<u32> {
    (btf.first_id()..btf.len()).find(|&id| {
        let (raw, owner) = btf.raw_type(id).unwrap();
        raw.raw_kind() == kind.as_raw() && owner.str_bytes(raw.name_off()) == Some(name.as_bytes())
    })
}

#[test]
fn sysfs_module_split_btf() {
    let Some(vmlinux) = vmlinux("sysfs_module_split_btf") else {
        return;
    };
    let modules = Btf::sys_fs_modules().unwrap();
    let Some(name) = modules.first() else {
        crate::test_skip::skip(
            "sysfs_module_split_btf",
            "module_btf",
            format!("no module BTF in {SYS_FS_BTF_DIR} (only vmlinux)"),
        );
        return;
    };
    let module = Btf::module_from_sys_fs(name, &vmlinux).unwrap();
    assert_eq!(module.first_id(), vmlinux.len());
    assert!(
        module.len() > module.first_id(),
        "module {name} has no types"
    );
    let first = module.type_by_id(module.first_id()).unwrap();
    println!(
        "module {name}: first own type {} {:?}",
        module.first_id(),
        first.kind()
    );
    for id in module.first_id()..module.len() {
        module
            .type_by_id(id)
            .unwrap_or_else(|e| panic!("{name} type {id}: {e}"));
    }
}

/// Split BTF on top of the real vmlinux, referencing its types and strings.
#[test]
fn sysfs_synthetic_split() {
    let Some(vmlinux) = vmlinux("sysfs_synthetic_split") else {
        return;
    };
    let tcp_sock = vmlinux.find(BtfKind::Struct, "tcp_sock").unwrap();
    let mut s = Builder::split(&vmlinux);
    let ptr = s.simple(BtfKind::Ptr, "", tcp_sock);
    let own = s.strukt("my_mod_ops", 8, &[("sk", ptr, 0)]);
    let module = Btf::parse_split(s.build(), &vmlinux).unwrap();
    assert_eq!(module.first_id(), vmlinux.len());
    assert_eq!(module.find(BtfKind::Struct, "my_mod_ops"), Some(own));
    assert_eq!(module.find(BtfKind::Struct, "tcp_sock"), Some(tcp_sock));
    let loc = module.member_path(own, &["sk"]).unwrap();
    assert_eq!((loc.byte_offset, loc.size), (0, 8));
    assert_eq!(
        module.describe(module.skip_mods_and_typedefs(tcp_sock).unwrap()),
        "struct tcp_sock"
    );
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn sanitize_blanks_datasecs_old_kernels_cannot_name() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let v = b.var("OPT", int, 1);
    let opt = b.datasec("?.struct_ops.link", 0, &[(v, 0, 4)]);
    let btf = b.parse();
    let sized = |_: &str| Some(4);
    let out = Btf::parse(btf.sanitize_for_kernel(&sized, &|_| Some(0)).unwrap()).unwrap();
    assert!(
        matches!(out.type_by_id(opt).unwrap(), Type::Struct(c) if c.name.is_empty() && c.size == 0),
        "a DATASEC named with `?` becomes an anonymous empty struct"
    );
}

/// `find_every` (CO-RE's candidates): every type of the kinds whose essential name is the name, so
/// same-named duplicates and flavors, in id order; not another kind, a double flavor (whose essential
/// name is `dup___a`), a name ending in the name, nor a `___` that is part of a longer underscore run.
/// A `find_batch` finds them in the pass that finds its exact names, and answers later calls.
#[test]
fn find_every_finds_duplicates_and_flavors_in_one_pass() {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let d1 = b.strukt("dup", 4, &[("a", int, 0)]);
    let _xdup = b.strukt("xdup", 4, &[("a", int, 0)]);
    let d2 = b.strukt("dup", 8, &[("a", int, 0)]);
    let _union = b.composite(BtfKind::Union, "dup", 4, false, &[("a", int, 0)]);
    let flavor = b.strukt("dup___v2", 4, &[("a", int, 0)]);
    let _double = b.strukt("dup___a___b", 4, &[("a", int, 0)]);
    let _underscores = b.strukt("dup____x", 4, &[("a", int, 0)]);
    let d3 = b.strukt("dup", 12, &[("a", int, 0)]);
    // A record named by the tail of "xdup" (offset + 1) is named `dup` too, as the name index says.
    let xdup_off = {
        let probe = b.parse();
        let id = probe.find(BtfKind::Struct, "xdup").unwrap();
        probe.raw_type(id).unwrap().0.name_off()
    };
    let tail = b.raw(xdup_off + 1, BtfKind::Struct.as_raw(), 0, false, 0, &[]);
    let other = b.int("other", 4, false);
    let btf = b.parse();
    assert_eq!(
        btf.find_batch(&[(BtfKind::Int, "other")], &[(&[BtfKind::Struct], "dup")]),
        [Some(other)]
    );
    assert_eq!(btf.scans(), 1);
    assert_eq!(
        btf.find_every(&[BtfKind::Struct], "dup"),
        [d1, d2, flavor, d3, tail]
    );
    assert_eq!(btf.find(BtfKind::Int, "other"), Some(other));
    assert_eq!(btf.scans(), 1, "answered from the one pass");
    // Other kinds and names are another scan; the union is found with its kind.
    assert_eq!(
        btf.find_every(&[BtfKind::Struct, BtfKind::Union], "dup")
            .len(),
        6
    );
    assert_eq!(btf.find_every(&[BtfKind::Struct], "dup___a"), [_double]);
    assert!(btf.find_every(&[BtfKind::Struct], "").is_empty());
    assert_eq!(btf.scans(), 4);
    // After the name index exists, find_every still scans (the index knows exact names only) and
    // agrees; a batch then answers its exact names from the index.
    let btf = b.parse();
    btf.index_names();
    assert_eq!(
        btf.find_every(&[BtfKind::Struct], "dup"),
        [d1, d2, flavor, d3, tail]
    );
    assert_eq!(
        btf.find_batch(&[(BtfKind::Struct, "xdup")], &[]),
        [Some(_xdup)]
    );
}

// ---- The per-kernel-build lookup cache (cache.rs) ----

/// A blob of a few checkpoints' worth of types, with flavors and duplicates, and the queries a loader
/// would make of it (exact names, misses, CO-RE candidates).
fn cache_blob() -> (Vec<u8>, Vec<(BtfKind, String)>) {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    for i in 0..(STRIDE as u32 * 3 + 5) {
        let name = format!("s{i}");
        b.strukt(&name, 4, &[("a", int, 0)]);
        if i % 7 == 0 {
            b.strukt(&format!("{name}___v2"), 4, &[("a", int, 0)]);
            b.func(&name, int, 1);
        }
    }
    let exact = vec![
        (BtfKind::Struct, "s3".to_owned()),
        (BtfKind::Struct, "s40".to_owned()),
        (BtfKind::Func, "s14".to_owned()),
        (BtfKind::Func, "s15".to_owned()),
        (BtfKind::Int, "int".to_owned()),
        (BtfKind::Struct, "absent".to_owned()),
    ];
    (b.build(), exact)
}

/// Every answer of `btf` to the queries: exact names, then the candidates of each name.
fn cache_answers(btf: &Btf, exact: &[(BtfKind, String)]) -> Vec<Vec<u32>> {
    let names: Vec<(BtfKind, &str)> = exact.iter().map(|(k, n)| (*k, n.as_str())).collect();
    let every: Vec<(&[BtfKind], &str)> = exact
        .iter()
        .map(|(_, n)| (&[BtfKind::Struct, BtfKind::Union][..], n.as_str()))
        .collect();
    let mut out: Vec<Vec<u32>> = btf
        .find_batch(&names, &every)
        .into_iter()
        .map(|id| id.into_iter().collect())
        .collect();
    out.extend(every.iter().map(|(k, n)| btf.find_every(k, n)));
    out
}

/// A fresh scratch directory for one cache test.
fn cache_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aya-structops-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn cache_round_trip_answers_without_a_scan() {
    let (raw, exact) = cache_blob();
    let expect = cache_answers(&Btf::parse(raw.clone()).unwrap(), &exact);
    assert!(expect.iter().filter(|a| !a.is_empty()).count() >= 8);
    let dir = cache_dir("cache_round_trip");
    let path = dir.join(cache::FILE);
    let cache = || Some(cache::Cache::new(path.clone(), b"boot-1", &raw));

    // Cold: scans, and writes the file.
    let cold = Btf::parse(raw.clone()).unwrap().with_cache(cache());
    assert_eq!(cache_answers(&cold, &exact), expect);
    assert!(cold.scans() >= 1);
    assert!(path.exists());
    // Warm: the same answers, no scan, the type index restored (decoding works).
    let warm = Btf::parse(raw.clone()).unwrap().with_cache(cache());
    assert!(warm.inner.index.get().is_some());
    assert_eq!(cache_answers(&warm, &exact), expect);
    assert_eq!(warm.scans(), 0);
    assert_eq!(warm.len(), cold.len());
    let s40 = warm.find(BtfKind::Struct, "s40").unwrap();
    assert_eq!(warm.name_of(s40).unwrap(), "s40");
    for id in 1..warm.len() {
        assert_eq!(warm.name_of(id).unwrap(), cold.name_of(id).unwrap());
    }
    // A name not in the cache is scanned for, and added to it.
    assert_eq!(
        warm.find(BtfKind::Struct, "s41"),
        cold.find(BtfKind::Struct, "s41")
    );
    assert_eq!(warm.scans(), 1);
    let again = Btf::parse(raw.clone()).unwrap().with_cache(cache());
    assert_eq!(
        again.find(BtfKind::Struct, "s41"),
        cold.find(BtfKind::Struct, "s41")
    );
    assert_eq!(again.scans(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cache_corrupt_stale_or_untrusted_is_ignored_and_answers_stay_right() {
    use std::os::unix::fs::PermissionsExt as _;
    let (raw, exact) = cache_blob();
    let expect = cache_answers(&Btf::parse(raw.clone()).unwrap(), &exact);
    let dir = cache_dir("cache_corrupt");
    let path = dir.join(cache::FILE);
    let cache = |boot: &[u8], raw: &[u8]| Some(cache::Cache::new(path.clone(), boot, raw));
    let _ = cache_answers(
        &Btf::parse(raw.clone())
            .unwrap()
            .with_cache(cache(b"b", &raw)),
        &exact,
    );
    let good = std::fs::read(&path).unwrap();
    let fresh = || Btf::parse(raw.clone()).unwrap();

    // Every single-byte corruption and every truncation is refused.
    let c = cache::Cache::new(path.clone(), b"b", &raw);
    assert!(c.decode(&good, &fresh()).is_some());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x41;
        assert!(c.decode(&bad, &fresh()).is_none(), "byte {i}");
    }
    for len in 0..good.len() {
        assert!(c.decode(&good[..len], &fresh()).is_none(), "length {len}");
    }
    // A corrupt file on disk: the process scans, answers right, and rewrites the file.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let btf = fresh().with_cache(cache(b"b", &raw));
    assert_eq!(cache_answers(&btf, &exact), expect);
    assert!(btf.scans() >= 1);
    assert_eq!(std::fs::read(&path).unwrap(), good, "rewritten");

    // Stale: another kernel build (or boot), or another blob.
    let btf = fresh().with_cache(cache(b"build-id:other", &raw));
    assert_eq!(cache_answers(&btf, &exact), expect);
    assert!(btf.scans() >= 1);
    std::fs::write(&path, &good).unwrap();
    let mut other = raw.clone();
    other.push(0);
    let other_btf = Btf::parse(other.clone()).unwrap();
    assert!(
        cache::Cache::new(path.clone(), b"b", &other)
            .decode(&good, &other_btf)
            .is_none()
    );

    // Written by someone else (group/world-writable): ignored.
    std::fs::write(&path, &good).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let btf = fresh().with_cache(cache(b"b", &raw));
    assert_eq!(cache_answers(&btf, &exact), expect);
    assert!(btf.scans() >= 1);
    // A symlink is not followed.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(dir.join("target"), &good).unwrap();
    std::os::unix::fs::symlink(dir.join("target"), &path).unwrap();
    let btf = fresh().with_cache(cache(b"b", &raw));
    assert_eq!(cache_answers(&btf, &exact), expect);
    assert!(btf.scans() >= 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file with a valid checksum and key whose content does not fit the blob (what a bug or a forged
/// checksum would give) is refused: a wrong index, or an answer naming another type.
#[test]
fn cache_inconsistent_with_the_blob_is_refused() {
    let (raw, _) = cache_blob();
    let btf = Btf::parse(raw.clone()).unwrap();
    let c = cache::Cache::new(PathBuf::from("/nonexistent/x"), b"b", &raw);
    btf.validate().unwrap();
    let index = btf.inner.index.get().unwrap().as_ref().unwrap();
    let s3 = btf.find(BtfKind::Struct, "s3").unwrap();
    let entry = |kinds: u32, every: bool, name: &str, ids: Vec<u32>| -> cache::Entry {
        (kinds, every, name.into(), ids)
    };
    let st = 1 << BtfKind::Struct.as_raw();
    let ok = c.encode(index, &[entry(st, false, "s3", vec![s3])]);
    assert!(c.decode(&ok, &Btf::parse(raw.clone()).unwrap()).is_some());
    for bad in [
        entry(st, false, "s3", vec![s3 + 1]),
        entry(1 << BtfKind::Func.as_raw(), false, "s3", vec![s3]),
        entry(st, false, "s3", vec![s3, s3 + 2]),
        entry(st, true, "s3", vec![s3, s3]),
        entry(st, false, "s3", vec![u32::MAX]),
        entry(st, false, "s3", vec![0]),
    ] {
        let file = c.encode(index, std::slice::from_ref(&bad));
        assert!(
            c.decode(&file, &Btf::parse(raw.clone()).unwrap()).is_none(),
            "{bad:?}"
        );
    }
    let types = &btf.inner.types[..];
    let restore =
        |sparse: Vec<u32>, count: usize| TypeIndex::restore(types, sparse, count, 0).is_some();
    assert!(restore(index.sparse.clone(), index.count));
    assert!(!restore(index.sparse.clone(), index.count + 1));
    assert!(!restore(index.sparse.clone(), index.count - 1));
    let mut shifted = index.sparse.clone();
    *shifted.last_mut().unwrap() += 4;
    assert!(!restore(shifted, index.count));
    let mut unordered = index.sparse.clone();
    unordered.swap(1, 2);
    assert!(!restore(unordered, index.count));
    assert!(!restore(Vec::new(), index.count));
    assert!(TypeIndex::restore(&[], Vec::new(), 0, 0).is_some());
}

/// One ELF note: `namesz`, `descsz`, `type`, then the name and the descriptor, each padded to 4 bytes.
fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    for part in [name, desc] {
        out.extend_from_slice(part);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

#[test]
fn build_id_is_found_among_notes_and_malformed_notes_give_none() {
    let id: Vec<u8> = (1..=20).collect();
    // Xen and Linux notes first, as in a real /sys/kernel/notes, then the build id.
    let mut notes = note(b"Xen\0", 6, b"linux");
    notes.extend(note(b"Linux\0", 0x100, &[1]));
    notes.extend(note(b"GNU\0", 3, &id));
    assert_eq!(cache::build_id(&notes), Some(&id[..]));
    // The last note without its trailing padding still counts.
    let odd = note(b"GNU\0", 3, &id[..5]);
    assert_eq!(cache::build_id(&odd[..odd.len() - 3]), Some(&id[..5]));

    // No GNU build id: another type, another owner, an empty or overlong descriptor.
    for other in [
        note(b"GNU\0", 4, &id),
        note(b"GNUX", 3, &id),
        note(b"GNU\0", 3, &[]),
        note(b"GNU\0", 3, &[7; 65]),
    ] {
        assert_eq!(cache::build_id(&other), None);
    }
    // Truncated anywhere before the descriptor's end, or sizes beyond the data: nothing, no panic.
    let good = note(b"GNU\0", 3, &id);
    for len in 0..good.len() {
        let found = cache::build_id(&good[..len]);
        assert!(found.is_none() || len >= 12 + 4 + id.len(), "len {len}");
    }
    let mut huge = good.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(cache::build_id(&huge), None);
    huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(cache::build_id(&huge), None);
}

/// The running kernel's notes carry a build id (every kernel this project runs on is linked with
/// one), so its lookup cache is kept per kernel build.
#[test]
fn running_kernel_has_a_build_id() {
    let Ok(notes) = std::fs::read("/sys/kernel/notes") else {
        eprintln!("SKIP running_kernel_has_a_build_id: /sys/kernel/notes unreadable");
        return;
    };
    let id = cache::build_id(&notes).expect("a GNU build id in /sys/kernel/notes");
    assert!(id.len() >= 16, "{id:?}");
}

/// The running kernel's vmlinux through the cache file the CLI uses gives the answers of a scan.
#[test]
fn sysfs_cache_matches_scan() {
    let Some(plain) = vmlinux("sysfs_cache_matches_scan") else {
        return;
    };
    let names = [
        (BtfKind::Struct, "tcp_congestion_ops"),
        (BtfKind::Struct, "bpf_struct_ops_tcp_congestion_ops"),
        (BtfKind::Func, "tcp_reno_cong_avoid"),
        (BtfKind::Struct, "no_such_type_anywhere"),
    ];
    let dir = cache_dir("sysfs_cache");
    let path = dir.join(cache::FILE);
    let raw = plain.raw().to_vec();
    let expect = Btf::parse(raw.clone()).unwrap().find_all(&names);
    for round in 0..2 {
        let btf = Btf::parse(raw.clone())
            .unwrap()
            .with_cache(Some(cache::Cache::new(path.clone(), b"boot", &raw)));
        assert_eq!(btf.find_all(&names), expect);
        assert_eq!(
            btf.find_every(&[BtfKind::Struct], "sock"),
            plain.find_every(&[BtfKind::Struct], "sock")
        );
        assert_eq!(btf.scans(), if round == 0 { 2 } else { 0 }, "round {round}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
