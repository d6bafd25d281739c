// Lists the exported names of a package entry (a source module) that have no
// doc comment, through the TypeScript compiler's own view of the program.
import ts from "typescript";

export interface EntryExports {
  names: string[];
  undocumented: string[];
}

export function entryExports(files: string[]): Map<string, EntryExports> {
  const program = ts.createProgram(files, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const out = new Map<string, EntryExports>();
  for (const f of files) {
    const sf = program.getSourceFile(f);
    if (!sf) throw new Error(`no source file ${f}`);
    const mod = checker.getSymbolAtLocation(sf)!;
    const names: string[] = [];
    const undocumented: string[] = [];
    for (const sym of checker.getExportsOfModule(mod)) {
      names.push(sym.name);
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      const doc = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
      if (doc === "") undocumented.push(sym.name);
    }
    out.set(f, { names: names.sort(), undocumented: undocumented.sort() });
  }
  return out;
}
