//! Javy dynamic modules (`jobmesh job build --wasm`): a job's QuickJS bytecode in a small WebAssembly module
//! that imports its plugin — `memory`, `cabi_realloc` and `invoke` under the plugin's import namespace — as
//! Javy's own dynamically linked modules do. Any wasm runtime given the plugin runs it, e.g.
//! `wasmtime run --preload jobmesh_javy_v1=exec/plugin/jobmesh-plugin.wasm job.wasm`.
//!
//! The module also names its plugin by CID (custom section [`PLUGIN_SECTION`]): bytecode only runs on the
//! plugin build that compiled it. jobmesh runs such a module as the bytecode it carries, on that plugin —
//! the same output, fuel and statuses as the `.jsbc` (what `_start` does through `invoke`, except that a
//! JavaScript exception is reported as one rather than as a trap).

use std::borrow::Cow;

use cid::Cid;
use wasm_encoder::{
    CodeSection, CustomSection, DataCountSection, DataSection, EntityType, ExportKind,
    ExportSection, Function, FunctionSection, ImportSection, Instruction, MemoryType, Module,
    TypeSection, ValType,
};
use wasmparser::{DataKind, Parser, Payload, TypeRef};

use crate::{ExecError, JsBytecode};

/// Custom section naming the plugin (its CID's binary form) a module's bytecode was compiled by.
pub const PLUGIN_SECTION: &str = "jobmesh-plugin";

/// Wraps bytecode in a Javy dynamic module importing from `namespace` (the plugin's `import_namespace`).
pub fn to_module(code: &JsBytecode, namespace: &str) -> Vec<u8> {
    let len = code.bytecode.len() as i32;
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32; 4], [ValType::I32]); // cabi_realloc(old, old_len, align, len) -> ptr
    types.ty().function([ValType::I32; 5], []); // invoke(ptr, len, has_fn_name, fn_ptr, fn_len)
    types.ty().function([], []); // _start
    let (realloc, invoke, start) = (0u32, 1u32, 2u32);

    let mut imports = ImportSection::new();
    imports.import(namespace, "cabi_realloc", EntityType::Function(0));
    imports.import(namespace, "invoke", EntityType::Function(1));
    imports.import(
        namespace,
        "memory",
        EntityType::Memory(MemoryType {
            minimum: 0,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        }),
    );
    let mut functions = FunctionSection::new();
    functions.function(2);
    let mut exports = ExportSection::new();
    exports.export("_start", ExportKind::Func, start);

    // _start: copy the bytecode into memory the plugin allocates, then run it (no function name: the
    // top-level code).
    let mut body = Function::new([(1, ValType::I32)]);
    for i in [
        Instruction::I32Const(0),
        Instruction::I32Const(0),
        Instruction::I32Const(1),
        Instruction::I32Const(len),
        Instruction::Call(realloc),
        Instruction::LocalTee(0),
        Instruction::I32Const(0),
        Instruction::I32Const(len),
        Instruction::MemoryInit {
            mem: 0,
            data_index: 0,
        },
        Instruction::DataDrop(0),
        Instruction::LocalGet(0),
        Instruction::I32Const(len),
        Instruction::I32Const(0),
        Instruction::I32Const(0),
        Instruction::I32Const(0),
        Instruction::Call(invoke),
        Instruction::End,
    ] {
        body.instruction(&i);
    }
    let mut code_section = CodeSection::new();
    code_section.function(&body);
    let mut data = DataSection::new();
    data.passive(code.bytecode.iter().copied());

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&exports)
        .section(&DataCountSection { count: 1 })
        .section(&code_section)
        .section(&data)
        .section(&CustomSection {
            name: Cow::Borrowed(PLUGIN_SECTION),
            data: Cow::Owned(code.plugin.to_bytes()),
        });
    module.finish()
}

/// The bytecode a module built by [`to_module`] carries, with its plugin; `Ok(None)` for a module without
/// the [`PLUGIN_SECTION`] (a plain WASI module); an error for a malformed one.
pub fn from_module(wasm: &[u8]) -> Result<Option<JsBytecode>, ExecError> {
    let bad = |why: String| ExecError::NotAJob(format!("not a jobmesh Javy module: {why}"));
    let mut plugin = None;
    let mut bytecode = None;
    let mut imports_plugin = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| ExecError::NotAJob(format!("invalid WebAssembly: {e}")))? {
            Payload::CustomSection(c) if c.name() == PLUGIN_SECTION => {
                let cid = Cid::try_from(c.data()).map_err(|e| bad(format!("plugin CID: {e}")))?;
                plugin = Some(cid);
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| bad(e.to_string()))?;
                    imports_plugin |=
                        import.name == "invoke" && matches!(import.ty, TypeRef::Func(_));
                }
            }
            Payload::DataSection(reader) => {
                for segment in reader {
                    let segment = segment.map_err(|e| bad(e.to_string()))?;
                    if bytecode.is_none() && matches!(segment.kind, DataKind::Passive) {
                        bytecode = Some(segment.data.to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    let Some(plugin) = plugin else {
        return Ok(None);
    };
    if !imports_plugin {
        return Err(bad(
            "it names a plugin but does not import its `invoke`".into()
        ));
    }
    let bytecode = bytecode.ok_or_else(|| bad("no bytecode segment".into()))?;
    Ok(Some(JsBytecode { plugin, bytecode }))
}
