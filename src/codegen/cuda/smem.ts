// Shared buffers are carved from one dynamic `smem` array, in order of first allocation
// (a buffer placed `over` another shares its host's bytes).
// Each starts on a 128-byte boundary: cp.async/ldmatrix need 16, and the XOR swizzles assume
// a tile's rows start at the same bank phase, which a 128-byte base guarantees.
import { type Buffer, type Stmt, byteSize } from "../../ir/ir.ts";
import { type Env, constInt } from "./fold.ts";
import { wgmmaOperandBuffers } from "./wgmma.ts";
import { WGMMA_SMEM_ALIGN } from "../../ir/registers.ts";

export interface SmemSlot { buf: Buffer; offset: number; bytes: number }

export const SMEM_ALIGN = 128;
export { WGMMA_SMEM_ALIGN };

export function sharedAllocs(body: Stmt[]): Buffer[] {
  const out: Buffer[] = [];
  const walk = (ss: Stmt[]) => {
    for (const s of ss) {
      if (s.k === "alloc" && s.buf.scope === "shared") out.push(s.buf);
      else if (s.k === "for") walk(s.body);
      else if (s.k === "if") { walk(s.then); walk(s.else); }
    }
  };
  walk(body);
  return out;
}

export function elementCount(b: Buffer, env: Env): number {
  return b.shape.reduce((n, e) => n * constInt(e, env, `shape of ${b.name}`), 1);
}

export function carveSmem(body: Stmt[], env: Env): { slots: SmemSlot[]; total: number } {
  const slots: SmemSlot[] = [];
  const seen = new Set<string>();
  const wgmmaOps = wgmmaOperandBuffers(body);
  let offset = 0;
  for (const buf of sharedAllocs(body)) {
    if (seen.has(buf.name)) throw new Error(`shared buffer ${buf.name} is allocated twice`);
    seen.add(buf.name);
    if (buf.over !== undefined) {
      // Placed over a dead buffer's bytes: no space of its own.
      const host = slots.find((x) => x.buf.name === buf.over);
      const bytes = elementCount(buf, env) * byteSize(buf.dtype);
      if (!host || bytes > host.bytes) throw new Error(`shared buffer ${buf.name} (${bytes} B) is placed over ${buf.over}, which is ${host ? `only ${host.bytes} B` : "not allocated before it"}`);
      slots.push({ buf, offset: host.offset, bytes });
      continue;
    }
    if (wgmmaOps.has(buf.name)) offset = Math.ceil(offset / WGMMA_SMEM_ALIGN) * WGMMA_SMEM_ALIGN;
    const bytes = elementCount(buf, env) * byteSize(buf.dtype);
    slots.push({ buf, offset, bytes });
    offset += Math.ceil(bytes / SMEM_ALIGN) * SMEM_ALIGN;
  }
  return { slots, total: offset };
}
