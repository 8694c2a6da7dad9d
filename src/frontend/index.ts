// parseKernels: a kernel file's source -> one tile-level Kernel per exported T.kernel(...).
// The source is read with ts-morph and never executed.
import { readFileSync } from "node:fs";
import { Node, Project, type SourceFile } from "ts-morph";
import { CompileError, type Diagnostic, type Kernel } from "../ir/ir.ts";
import { Ctx } from "./ctx.ts";
import { failAt } from "./diag.ts";
import { translateExpr, unwrapParens } from "./expr.ts";
import { translateKernel } from "./kernel.ts";
import { HelperTable, type ModuleLoader, ProjectModules } from "./modules.ts";
import { Scope } from "./scope.ts";
import type { Names } from "./signature.ts";

let project: Project | undefined;

export function parseKernels(file: string, source?: string): Kernel[] {
  const text = source ?? readFileSync(file, "utf8");
  // One in-memory project serves every call; each file replaces its previous version.
  project ??= new Project({ useInMemoryFileSystem: true, skipLoadingLibFiles: true, compilerOptions: { allowJs: false } });
  const sf = project.createSourceFile(`/kernels/${project.getSourceFiles().length}.ts`, text, { overwrite: true });
  const modules = new ProjectModules(project, moduleTable);
  try {
    return kernelsOf(sf, file, modules);
  } finally {
    modules.dispose();
    project.removeSourceFile(sf);
  }
}

function kernelsOf(sf: SourceFile, file: string, modules: ProjectModules): Kernel[] {
  const syntax = (sf.compilerNode as unknown as { parseDiagnostics?: { start?: number; messageText: unknown }[] }).parseDiagnostics;
  if (syntax && syntax.length > 0) {
    const d = syntax[0]!;
    const { line, column } = sf.getLineAndColumnAtPos(d.start ?? 0);
    const msg = typeof d.messageText === "string" ? d.messageText : "syntax error";
    failAt({ file, line, col: column }, `syntax error: ${msg}`);
  }
  const names = importedNames(sf);
  if (!names) return [];
  const moduleScope = moduleConstants(sf, file, names);
  names.helpers = HelperTable.of(sf, file, modules);
  names.helpers.adopt({ file, tName: names.tName, moduleScope, helpers: names.helpers });
  modules.register(file, names.helpers);
  const kernels: Kernel[] = [];
  // One error per kernel: a mistake in one kernel should not hide those in the next.
  const diagnostics: Diagnostic[] = [];
  for (const st of sf.getVariableStatements()) {
    if (!st.isExported()) continue;
    for (const d of st.getDeclarations()) {
      const init = d.getInitializer();
      const call = init && unwrapParens(init);
      if (!call || !Node.isCallExpression(call) || call.getExpression().getText() !== `${names.tName}.kernel`) continue;
      const name = d.getName();
      try {
        kernels.push(translateKernel(call, name, file, names, moduleScope));
      } catch (e) {
        if (e instanceof CompileError) { diagnostics.push(...e.diagnostics); continue; }
        // A bug in the front end must still point at the kernel, not surface as a trace.
        const { line, column } = sf.getLineAndColumnAtPos(call.getStart());
        diagnostics.push({ loc: { file, line, col: column }, severity: "error",
          message: `internal error while compiling kernel '${name}': ${(e as Error).message}` });
      }
    }
  }
  if (diagnostics.length > 0) throw new CompileError(diagnostics);
  return kernels;
}

/** A module another file imports helpers from: its functions, at home with its constants. */
function moduleTable(sf: SourceFile, file: string, modules: ModuleLoader): HelperTable {
  const names = importedNames(sf) ?? { tName: "T", tensorName: "Tensor" };
  const moduleScope = moduleConstants(sf, file, names);
  const table = HelperTable.of(sf, file, modules);
  table.adopt({ file, tName: names.tName, moduleScope, helpers: table });
  return table;
}

/** Local names of `T` and `Tensor` as imported from "tilemoe"; undefined if not imported. */
function importedNames(sf: SourceFile): Names | undefined {
  for (const imp of sf.getImportDeclarations()) {
    if (imp.getModuleSpecifierValue() !== "tilemoe") continue;
    const names: Names = { tName: "T", tensorName: "Tensor" };
    for (const n of imp.getNamedImports()) {
      const local = n.getAliasNode()?.getText() ?? n.getName();
      if (n.getName() === "T") names.tName = local;
      if (n.getName() === "Tensor") names.tensorName = local;
    }
    return names;
  }
  return undefined;
}

/** Module-level `const X = <number expr>` usable from kernels; others fail only when used. */
function moduleConstants(sf: SourceFile, file: string, names: Names): Scope {
  const scope = new Scope();
  const ctx = new Ctx(file, names.tName, new Set(), scope);
  for (const st of sf.getVariableStatements()) {
    for (const d of st.getDeclarations()) {
      const init = d.getInitializer();
      const nameNode = d.getNameNode();
      if (!init || !Node.isIdentifier(nameNode)) continue;
      const u = unwrapParens(init);
      if (Node.isCallExpression(u) && u.getExpression().getText() === `${names.tName}.kernel`) continue;
      const name = nameNode.getText();
      if (!st.getDeclarationKind || st.getDeclarationKind() !== "const") {
        scope.define(name, { kind: "bad", reason: `'${name}' is a module-level let/var; kernels can only use module-level const numbers` });
        continue;
      }
      try {
        const r = translateExpr(init, ctx);
        scope.define(name, { kind: "value", expr: r.e, dtype: r.t, what: "module constant" });
      } catch (e) {
        if (!(e instanceof CompileError)) throw e;
        scope.define(name, { kind: "bad", reason: `module-level '${name}' is not a number constant kernels can use: ${e.diagnostics[0]!.message}` });
      }
    }
  }
  return scope;
}
