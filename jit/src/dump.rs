//! `KILN_DUMP` output of an executable: each kernel's Cranelift IR (and disassembly where
//! available) and the schedule with every node's mode, so nothing falls back silently.

use std::path::Path;

use kiln_ir::Result;

use crate::executor::Executable;

/// Writes `<fn>.kernelNN.clif`, `<fn>.kernelNN.disasm` and `<fn>.exec.txt` into `dir`.
pub(crate) fn write(dir: &Path, fn_name: &str, exe: &Executable) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let fn_name = kiln_ir::dump::file_stem(fn_name);
    for (number, kernel) in exe.kernels() {
        std::fs::write(dir.join(format!("{fn_name}.kernel{number:02}.clif")), kernel.clif())?;
        if let Some(asm) = kernel.disasm() {
            std::fs::write(dir.join(format!("{fn_name}.kernel{number:02}.disasm")), asm)?;
        }
    }
    std::fs::write(dir.join(format!("{fn_name}.exec.txt")), exe.schedule_text())?;
    Ok(())
}
