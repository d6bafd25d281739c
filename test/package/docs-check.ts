// Lists the exported names of a package entry (a source module) that have no
// doc comment, through the TypeScript compiler's own view of the program.
import ts from "typescript";

export interface EntryExports {
  names: string[];
  undocumented: string[];
}

/** A `/** ... *\/` comment right before the statement that declares `sym` (TypeScript attaches none to `export * as ns`). */
function leadingDoc(sym: ts.Symbol): string {
  const decl = sym.declarations?.[0];
  if (!decl) return "";
  let stmt: ts.Node = decl;
  while (stmt.parent && !ts.isSourceFile(stmt.parent)) stmt = stmt.parent;
  const text = stmt.getSourceFile().getFullText();
  const ranges = ts.getLeadingCommentRanges(text, stmt.getFullStart()) ?? [];
  const last = ranges.at(-1);
  return last && text.startsWith("/**", last.pos) ? text.slice(last.pos + 3, last.end - 2).trim() : "";
}

export function entryExports(files: string[]): Map<string, EntryExports> {
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
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
      // The export's own doc comment (e.g. on `export * as ns`), else its declaration's.
      const own = ts.displayPartsToString(sym.getDocumentationComment(checker)).trim() || leadingDoc(sym);
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      const doc = own || ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
      if (doc === "") undocumented.push(sym.name);
    }
    out.set(f, { names: names.sort(), undocumented: undocumented.sort() });
  }
  return out;
}
