// Helper functions shared between kernel files: `import { rowGather } from "./lib/moe.ts"`
// makes the exported top-level functions of that module callable from kernel code like the
// file's own helpers. A module is read and parsed (never executed) the first time kernel code
// calls one of its names; its helpers' bodies see that module's own constants, `T` name and
// helpers, as TypeScript scoping says, and errors inside them name that module's file.
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { FunctionDeclaration, Project, SourceFile } from "ts-morph";
import type { Scope } from "./scope.ts";

/** Where a helper function is at home: what its body sees. */
export interface HelperHome {
  file: string;
  tName: string;
  moduleScope: Scope;
  helpers: HelperTable;
}

/** The module a function was declared in (every function a HelperTable hands out has one). */
export const helperHomes = new WeakMap<FunctionDeclaration, HelperHome>();

type Lookup = { fn: FunctionDeclaration } | { error: string } | undefined;

/** What loads a module for an import: its helpers, or why it cannot be loaded. */
export interface ModuleLoader {
  load(path: string): HelperTable | string;
}

/** The functions kernel code of one module may call: its own top-level functions, and the
 *  names it imports from relative modules (resolved when first looked up). */
export class HelperTable {
  private readonly resolved = new Map<string, Lookup>();

  constructor(
    private readonly own = new Map<string, FunctionDeclaration>(),
    private readonly imported = new Map<string, { path: string; spec: string; name: string }>(),
    private readonly loader?: ModuleLoader,
  ) {}

  /** The table of a parsed module `file`. */
  static of(sf: SourceFile, file: string, loader: ModuleLoader): HelperTable {
    const own = new Map<string, FunctionDeclaration>();
    for (const f of sf.getFunctions()) {
      const name = f.getName();
      if (name) own.set(name, f);
    }
    const imported = new Map<string, { path: string; spec: string; name: string }>();
    for (const imp of sf.getImportDeclarations()) {
      const spec = imp.getModuleSpecifierValue();
      if (imp.isTypeOnly() || !(spec.startsWith("./") || spec.startsWith("../"))) continue;
      const path = modulePath(file, spec);
      for (const n of imp.getNamedImports()) {
        if (n.isTypeOnly()) continue;
        imported.set(n.getAliasNode()?.getText() ?? n.getName(), { path, spec, name: n.getName() });
      }
    }
    return new HelperTable(own, imported, loader);
  }

  /** Registers the home of the module's own functions (done once the home exists). */
  adopt(home: HelperHome): void {
    for (const f of this.own.values()) helperHomes.set(f, home);
  }

  /** The function `name` calls; an error string when it is an import that cannot be used. */
  lookup(name: string): Lookup {
    const own = this.own.get(name);
    if (own) return { fn: own };
    if (this.resolved.has(name)) return this.resolved.get(name);
    const imp = this.imported.get(name);
    let r: Lookup;
    if (imp && this.loader) {
      const mod = this.loader.load(imp.path);
      if (typeof mod === "string") r = { error: `'${name}' is imported from '${imp.spec}', which cannot be read as a kernel module: ${mod}` };
      else {
        const fn = mod.ownFunction(imp.name);
        r = fn ? { fn } : { error: `'${imp.spec}' has no exported top-level function '${imp.name}' (kernel code can call imported functions only)` };
      }
    }
    this.resolved.set(name, r);
    return r;
  }

  /** An exported function of this module (what another module may import). */
  ownFunction(name: string): FunctionDeclaration | undefined {
    const f = this.own.get(name);
    return f?.isExported() ? f : undefined;
  }
}

/** `spec` relative to the importing file; TypeScript's `./x` may leave out the `.ts`. */
function modulePath(from: string, spec: string): string {
  const p = resolve(dirname(from), spec);
  return existsSync(p) || /\.[cm]?tsx?$/.test(p) ? p : `${p}.ts`;
}

/** Loads modules into `project` once each; `build` makes a module's table and home. */
export class ProjectModules implements ModuleLoader {
  private readonly tables = new Map<string, HelperTable | string>();
  private readonly files: SourceFile[] = [];

  constructor(private readonly project: Project, private readonly build: (sf: SourceFile, file: string, loader: ModuleLoader) => HelperTable) {}

  load(path: string): HelperTable | string {
    const hit = this.tables.get(path);
    if (hit !== undefined) return hit;
    let r: HelperTable | string;
    try {
      const sf = this.project.createSourceFile(`/kernels/module-${this.files.length}-${Date.now()}.ts`, readFileSync(path, "utf8"), { overwrite: true });
      this.files.push(sf);
      r = this.build(sf, path, this);
    } catch (e) {
      r = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message.split("\n")[0]!;
    }
    this.tables.set(path, r);
    return r;
  }

  /** A module already parsed (the kernel file itself), so that imports of it reuse it. */
  register(path: string, table: HelperTable): void {
    this.tables.set(resolve(path), table);
  }

  /** Drops the loaded modules from the project. */
  dispose(): void {
    for (const sf of this.files) this.project.removeSourceFile(sf);
  }
}
