// What kernel files and other projects import as `from "tilemoe/moe"`: facts of the MoE routing
// that both the layer (src/moe/layer.ts) and a caller of the routed kernels need to agree on.

/** The routing's capacity in blocks of BS slots for P pairs over E experts: the u <= min(E, P)
 *  experts that receive pairs take cdiv(c_e, BS) blocks each with sum c_e = P, so at most
 *  floor((P + u (BS - 1)) / BS) in all; some routing reaches it. The layer gives `sorted` /
 *  `block_expert` (and the grouped GEMMs' grids) this many blocks; the routed kernels' check
 *  specs draw NB from it up. Each block past the used ones is a grid row of blocks with no work:
 *  with cdiv(P, BS) + min(E, P) (one more at Mixtral T = 1, a third of the grid) the decode up
 *  kernel on 80 registers ran 97 us against 71 (H200, bench/RESULTS.md, thirteenth session). */
export function routingBlocks(P: number, E: number, BS: number): number {
  return Math.floor((P + Math.min(E, P) * (BS - 1)) / BS);
}
