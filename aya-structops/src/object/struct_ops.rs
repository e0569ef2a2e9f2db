//! struct_ops map specs: one per variable in a `.struct_ops*` section.

/// What a member of an ops value is in the object's BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberKind {
    /// A pointer to a function prototype: a program goes here.
    FuncPtr,
    /// Plain data, copied to the kernel.
    Data,
    /// A bitfield: not supported by struct_ops.
    Bitfield,
}

/// A member of an ops value as the object lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjMember {
    /// Member name.
    pub name: String,
    /// Byte offset in the object's value.
    pub offset: u32,
    /// Size in bytes (0 for bitfields).
    pub size: u32,
    /// Kind.
    pub kind: MemberKind,
    /// The program bound to this member, for function pointers.
    pub program: Option<String>,
    /// The member's type id in the object's BTF.
    pub type_id: u32,
}

/// One struct_ops map: a variable in `.struct_ops`, `.struct_ops.link` or their `?` (optional) forms.
#[derive(Debug, Clone)]
pub struct StructOpsSpec {
    /// Map name (the variable's name).
    pub(crate) name: String,
    /// The ELF section it was found in.
    pub(crate) section: String,
    /// Registered through a BPF link (`.struct_ops.link`) rather than by a map update.
    pub(crate) link: bool,
    /// Whether the loader creates this map (false for `?`-sections until asked).
    pub(crate) autocreate: bool,
    /// The object's name for the type, possibly with a `___flavor` suffix.
    pub(crate) type_name: String,
    pub(crate) data: Vec<u8>,
    pub(crate) members: Vec<ObjMember>,
}

impl StructOpsSpec {
    /// The map's name (the variable's name); programs and registration refer to it by this name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ELF section it was found in (`.struct_ops`, `.struct_ops.link`, or their `?` forms).
    pub fn section(&self) -> &str {
        &self.section
    }

    /// Whether it registers through a BPF link (the default for `.struct_ops.link`) rather than by a map
    /// update; see [`StructOpsSpec::set_link`].
    pub fn link(&self) -> bool {
        self.link
    }

    /// Whether the loader creates this map (false for `?`-sections until asked); see
    /// [`StructOpsSpec::set_autocreate`].
    pub fn autocreate(&self) -> bool {
        self.autocreate
    }

    /// The object's name for the ops type, possibly with a `___flavor` suffix (see
    /// [`StructOpsSpec::kernel_type_name`]).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The kernel type name: `type_name` without a `___flavor` suffix.
    pub fn kernel_type_name(&self) -> &str {
        strip_flavor(&self.type_name)
    }

    /// Members as laid out in the object.
    pub fn members(&self) -> &[ObjMember] {
        &self.members
    }

    /// One member by name.
    pub fn member(&self, name: &str) -> Option<&ObjMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The value bytes as the object has them (program slots hold relocation addends, not fds).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The bytes of one member.
    pub fn member_data(&self, name: &str) -> Option<&[u8]> {
        let m = self.member(name)?;
        self.data
            .get(m.offset as usize..(m.offset + m.size) as usize)
    }

    /// Programs this map binds, member by member.
    pub fn programs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members
            .iter()
            .filter_map(|m| m.program.as_deref().map(|p| (m.name.as_str(), p)))
    }

    /// Registers through a BPF link (`true`, the default for `.struct_ops.link`) or by a map update
    /// (`false`, what kernels before 6.4 support). Without a link, a registration outlives a crashed
    /// process unless deleted; with one it ends when the last link fd closes.
    pub fn set_link(&mut self, link: bool) {
        self.link = link;
    }

    /// Ask for (or decline) creation of this map at load; `?`-section maps start declined.
    pub fn set_autocreate(&mut self, create: bool) {
        self.autocreate = create;
    }

    /// Sets a data member's bytes before load (e.g. `name`, `flags`). The size must be the member's.
    pub fn set_data(&mut self, member: &str, bytes: &[u8]) -> Result<(), crate::Error> {
        let map = self.name.clone();
        let m = self
            .members
            .iter()
            .find(|m| m.name == member)
            .ok_or_else(|| crate::Error::NoSuchMember {
                map: map.clone(),
                member: member.into(),
            })?;
        if m.kind != MemberKind::Data {
            return Err(crate::Error::MemberKind {
                map,
                member: member.into(),
                expected: "data",
            });
        }
        if bytes.len() > m.size as usize {
            return Err(crate::Error::MemberSize {
                map,
                member: member.into(),
                size: m.size,
                got: bytes.len(),
            });
        }
        let at = m.offset as usize;
        let slot = &mut self.data[at..at + m.size as usize];
        slot.fill(0);
        slot[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// Binds a program to a function-pointer member, or clears it with `None`, before load. A program
    /// left bound to no created map is not loaded.
    pub fn set_program(&mut self, member: &str, program: Option<&str>) -> Result<(), crate::Error> {
        let map = self.name.clone();
        let m = self
            .members
            .iter_mut()
            .find(|m| m.name == member)
            .ok_or_else(|| crate::Error::NoSuchMember {
                map: map.clone(),
                member: member.into(),
            })?;
        if m.kind != MemberKind::FuncPtr {
            return Err(crate::Error::MemberKind {
                map,
                member: member.into(),
                expected: "function pointer",
            });
        }
        m.program = program.map(str::to_owned);
        let at = m.offset as usize;
        self.data[at..at + m.size as usize].fill(0);
        Ok(())
    }
}

/// `tcp_congestion_ops___v2` -> `tcp_congestion_ops`.
pub(crate) fn strip_flavor(name: &str) -> &str {
    match name.find("___") {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_suffix_is_stripped() {
        assert_eq!(
            strip_flavor("tcp_congestion_ops___mine"),
            "tcp_congestion_ops"
        );
        assert_eq!(strip_flavor("sched_ext_ops"), "sched_ext_ops");
        assert_eq!(strip_flavor("___x"), "___x");
    }
}
