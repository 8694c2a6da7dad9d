import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { simplify } from "../../src/passes/simplify.ts";

const k = (body: string) => `kernel k(X: global f32[N] out)
  dims N
launch thread grid [1] threads 32 blocks [bx] thread tx {
  alloc S: shared f32[32]
  alloc R: shared f32[32]
${body}}
`;
const run = (body: string) => printKernel(simplify(parseKernel(k(body))));

describe("simplify", () => {
  it("folds, drops unused lets (transitively) and empty blocks", () => {
    expect(run(`  let a: i32 = tx * 1 + 0
  let b: i32 = a + 1
  let c: i32 = 4 * 8
  for i in serial(0, 0) {
    store X[i] = 1.0
  }
  if (tx < 3) {
  }
  store X[tx] = cast<f32>(c)
`)).toBe(k(`  store X[tx] = 32.0
`));
  });
  it("drops a named barrier right after the same one, keeps one of another id or count", () => {
    expect(run(`  store S[tx] = 1.0
  barrier 1, 32
  barrier 1, 32
  barrier 2, 32
  barrier 1, 64
  store X[tx] = S[31 - tx]
`)).toBe(k(`  store S[tx] = 1.0
  barrier 1, 32
  barrier 2, 32
  barrier 1, 64
  store X[tx] = S[31 - tx]
`));
  });
  it("keeps barriers that order shared accesses and drops the others", () => {
    const body = `  store X[0] = 0.0
  barrier
  store S[tx] = 1.0
  barrier
  barrier
  store R[tx] = 2.0
  barrier
  store X[tx] = S[31 - tx] + R[31 - tx]
  barrier
  store X[tx] = 1.0
`;
    // the first barrier has nothing of this block before it (kept: the block is not analysed
    // beyond its start); S and R are independent; the reads need one barrier; the last is
    // kept at the block's end.
    expect(run(body)).toBe(k(`  store X[0] = 0.0
  barrier
  store S[tx] = 1.0
  store R[tx] = 2.0
  barrier
  store X[tx] = S[31 - tx] + R[31 - tx]
  barrier
  store X[tx] = 1.0
`));
  });
  it("keeps a barrier between a read and a later overwrite of the same buffer", () => {
    const body = `  barrier
  store X[tx] = S[31 - tx]
  barrier
  store S[tx] = 0.0
  barrier
  store X[tx] = R[tx]
`;
    expect(run(body)).toBe(k(body));
  });
});
