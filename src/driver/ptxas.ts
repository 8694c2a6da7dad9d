// Parses the resource report `-Xptxas -v` prints, e.g.
//   ptxas info    : Compiling entry function 'k' for 'sm_80'
//   ptxas info    : Function properties for k
//       0 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
//   ptxas info    : Used 40 registers, used 1 barriers, 16 bytes smem, 376 bytes cmem[0]

export interface KernelResources {
  arch?: string;
  registers: number;
  /** Static shared memory (dynamic shared memory is the launcher's business). */
  smemStatic: number;
  spillStores: number;
  spillLoads: number;
  stackFrame: number;
  barriers: number;
  /** Local memory per thread ("lmem"), other than stack. */
  lmem: number;
  cmem: number;
}

const blank = (): KernelResources => ({ registers: 0, smemStatic: 0, spillStores: 0, spillLoads: 0, stackFrame: 0, barriers: 0, lmem: 0, cmem: 0 });

export function parsePtxasInfo(log: string): Record<string, KernelResources> {
  const out: Record<string, KernelResources> = {};
  let current: KernelResources | undefined;
  const get = (name: string) => (out[name] ??= blank());
  for (const line of log.split(/\r?\n/)) {
    let m = /Compiling entry function '([^']+)' for '([^']+)'/.exec(line);
    if (m) { current = get(m[1]); current.arch = m[2]; continue; }
    m = /Function properties for (\S+)/.exec(line);
    if (m) { current = get(m[1]); continue; }
    if (!current) continue;
    m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (m) {
      current.stackFrame = +m[1];
      current.spillStores = +m[2];
      current.spillLoads = +m[3];
      continue;
    }
    m = /Used (\d+) registers/.exec(line);
    if (m) {
      current.registers = +m[1];
      const field = (re: RegExp) => { const x = re.exec(line); return x ? +x[1] : 0; };
      current.barriers = field(/used (\d+) barriers/);
      current.smemStatic = field(/(\d+) bytes smem/);
      current.lmem = field(/(\d+) bytes lmem/);
      current.cmem = field(/(\d+) bytes cmem\[0\]/);
    }
  }
  return out;
}
