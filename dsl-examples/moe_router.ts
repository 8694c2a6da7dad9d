// The router of a MoE layer: logits[t][e] = x_t . W_router[e], bf16 inputs, f32 logits (the
// gating kernels of moe_gate.ts read f32). A small GEMM: E is 8..256, so a column tile covers
// most of it and the grid is mostly along the tokens.
// Decode (a few tokens) has one or two blocks along the tokens and E / BN along the experts:
// without more, one block walks all of H (Mixtral: 64 K tiles of 64) and the launch takes
// the latency of 64 dependent loads. Split K (as in gemm_w4a16.ts): block z sums one slice
// of the K tiles, pipelined over `stages` buffers, and adds its partial tile into `logits`
// with f32 atomics. The slice count is chosen at run time, up to the tunable splitK: as many
// as bring the grid to about BLOCKS blocks (a few tokens: many slices; prefill, whose row
// blocks fill the GPU already: one), never more than the K tiles. With splitK > 1 `logits`
// is written only by atomic adds, so every launcher clears it before the launch
// (src/ir/zero-init.ts); splitK = 1 stores the tile.
import { T, type Tensor } from "tilemoe";

/** About the SM count of an H100 / H200 (132): enough blocks that each SM gets one. */
const BLOCKS = 128;

export const moe_router = T.kernel(
  {
    tune: { BM: [16, 64], BN: [64, 128], BK: [64, 32], warps: [4, 8], stages: [2, 3, 4], splitK: [1, 2, 4, 8, 16, 32, 64] },
    where: ({ BM, BN, BK, stages }) => (BM + BN) * BK * 2 * stages <= 160 * 1024,
  },
  function moe_router(X: Tensor<"T, H", "bf16">, Wr: Tensor<"E, H", "bf16">, logits: Tensor<"T, E", "f32">,
                      { BM, BN, BK, warps, stages, splitK }: T.Config) {
    const [tokens, H] = X.shape;
    const [E] = Wr.shape;
    // S slices of KT tiles; block (bx, by, bz) sums K tiles [bz * KT, (bz + 1) * KT), and
    // tiles past H read as 0.
    const S = T.max(1, T.min(T.min(splitK, T.cdiv(H, BK)), Math.floor(BLOCKS / T.max(1, T.cdiv(E, BN) * T.cdiv(tokens, BM)))));
    const KT = T.cdiv(T.cdiv(H, BK), S);
    T.launch([T.cdiv(E, BN), T.cdiv(tokens, BM), S], { threads: warps * 32 }, (bx, by, bz) => {
      const As = T.shared([BM, BK], "bf16");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(KT, stages)) {
        T.copy(X.tile([by * BM, (bz * KT + k) * BK], [BM, BK]), As);
        T.copy(Wr.tile([bx * BN, (bz * KT + k) * BK], [BN, BK]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      if (splitK == 1) {
        T.copy(acc, logits.tile([by * BM, bx * BN], [BM, BN]));
      } else {
        // The launcher clears logits (an output written only by atomic adds, src/ir/zero-init.ts).
        for (const [i, j] of T.parallel(BM, BN)) {
          if (by * BM + i < tokens && bx * BN + j < E) {
            T.atomicAdd(logits[by * BM + i][bx * BN + j], acc[i][j]);
          }
        }
      }
    });
  },
);

// ---- what the checker compares against (plain float64)
import { defineCheck, ref } from "tilemoe/check";

// T = 1 is a single token; E below the column tile leaves most of it ragged. H up to 300 gives
// up to 10 K tiles of 32: split-K slices of one tile, of several, and empty ones (bz * KT past H).
export const moe_router_check = defineCheck({
  kernel: "moe_router",
  dims: { T: [1, 40], H: [1, 300], E: [1, 20] },
  inputs: { X: { lo: -1, hi: 1 }, Wr: { lo: -0.5, hi: 0.5 } },
  reference: ({ X, Wr }) => ({ logits: ref.gemmRef(X!, Wr!, { transB: true }).data }),
  reduction: ({ H }) => H!,
});
