// The configuration space of a kernel: the cartesian product of its tunables, filtered by
// its `where` constraint. The first config is the all-defaults one when it is allowed.
import type { Kernel, TunableValue } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";

export type Config = Record<string, TunableValue>;

export function enumerateConfigs(k: Kernel): Config[] {
  const names = Object.keys(k.tunables);
  let configs: Config[] = [{}];
  for (const n of names) configs = configs.flatMap((c) => k.tunables[n]!.map((v) => ({ ...c, [n]: v })));
  return configs.filter((c) => satisfies(k, c));
}

/** Does config `c` satisfy the kernel's constraint? Strings cannot take part in arithmetic,
 *  so a constraint that mentions a string tunable only sees the numeric ones. */
export function satisfies(k: Kernel, c: Config): boolean {
  if (!k.where) return true;
  const env: Record<string, number | boolean> = {};
  for (const [n, val] of Object.entries(c)) if (typeof val !== "string") env[n] = val;
  const r = evalConst(k.where, env);
  if (r === undefined) throw new Error(`kernel ${k.name}: its 'where' constraint does not evaluate to a constant for ${configKey(c)}`);
  return r !== 0;
}

export function configKey(c: Config): string {
  return Object.entries(c).map(([n, val]) => `${n}=${val}`).join(",");
}

export { numericConfig } from "../ir/expr.ts";

/** Every combination of tunable values, the constraint not applied (to report what it removed). */
export function allConfigs(k: Kernel): Config[] {
  let configs: Config[] = [{}];
  for (const [n, vals] of Object.entries(k.tunables)) configs = configs.flatMap((c) => vals.map((v) => ({ ...c, [n]: v })));
  return configs;
}

/** The first value of every tunable: what a kernel compiles with when nobody tuned it. */
export function defaultConfig(k: Kernel): Config {
  return Object.fromEntries(Object.entries(k.tunables).map(([n, vals]) => [n, vals[0]!]));
}

/** Is `c` a point of the kernel's space (every tunable set to one of its values, constraint met)? */
export function inSpace(k: Kernel, c: Config): boolean {
  const names = Object.keys(k.tunables);
  if (Object.keys(c).length !== names.length) return false;
  for (const n of names) if (!(n in c) || !k.tunables[n]!.includes(c[n]!)) return false;
  return satisfies(k, c);
}
